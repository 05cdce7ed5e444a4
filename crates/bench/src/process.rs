//! The processes the benchmarks run: keymint servers in dev mode and moto, each on a port of
//! its choosing on 127.0.0.1, killed when dropped or stopped. The plumbing (the command line,
//! reading the announced address, capturing output, polling) is the black-box tests' own, from
//! keymint-tests; what is added here is the bench's needs: errors instead of panics, the time
//! to ready, and a count of moto's requests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use keymint_tests::{
    OutputLog, announced_address, dev_server_command, each_line, free_port, local_http, poll,
};

use crate::TOKEN;

/// How long a keymint server may take to come up: minutes with a million leases to load.
const SERVER_DEADLINE: Duration = Duration::from_secs(120);
/// How long moto may take to answer its first request.
const MOTO_DEADLINE: Duration = Duration::from_secs(60);

/// A keymint server in dev mode on a port of its choosing.
pub struct Server {
    child: Child,
    pub url: String,
    /// From spawning the process to the first 200 from `sys/health`.
    pub ready_after: Duration,
    output: OutputLog,
}

impl Server {
    pub async fn start(bin: &Path, storage: &str, extra: &[&str]) -> Result<Server> {
        let started = Instant::now();
        let mut child = dev_server_command(bin, TOKEN, storage)
            .args(extra)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let output = OutputLog::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let mut tx = Some(tx);
        output.drain(child.stdout.take().context("piped stdout")?, "", move |line| {
            if let Some(url) = announced_address(line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(url.to_owned());
            }
        });
        output.drain(child.stderr.take().context("piped stderr")?, "", |_| {});
        let mut server = Server { child, url: String::new(), ready_after: Duration::ZERO, output };
        server.url = tokio::time::timeout(SERVER_DEADLINE, rx)
            .await
            .with_context(|| format!("keymint printed no address within {SERVER_DEADLINE:?}"))?
            .with_context(|| {
                format!("keymint exited without printing its address:\n{}", server.output.tail(20))
            })?;
        let http = local_http();
        let health = format!("{}/v1/sys/health", server.url);
        // Polled every 2 ms: the time to ready is what the startup benchmark measures.
        poll(SERVER_DEADLINE, Duration::from_millis(2), async || {
            let r = http.get(&health).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await
        .with_context(|| format!("keymint was not healthy within {SERVER_DEADLINE:?}"))?;
        server.ready_after = started.elapsed();
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (stdout and stderr, interleaved as read).
    pub fn output_lines(&self) -> Vec<String> {
        self.output.snapshot()
    }

    /// Kills the server (as dropping it does).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto on a free port of 127.0.0.1, counting the requests it logs.
pub struct Moto {
    child: Child,
    port: u16,
    requests: Arc<AtomicU64>,
}

impl Moto {
    pub async fn start(bin: &Path) -> Result<Moto> {
        let port = free_port();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // moto (werkzeug) logs one line per request on stderr: counted, not kept, as a
        // benchmark makes hundreds of thousands.
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        each_line(child.stderr.take().context("piped stderr")?, move |line| {
            if line.contains("\"POST ") {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        let moto = Moto { child, port, requests };
        let http = local_http();
        let probe = format!("{}/moto-api/", moto.url());
        poll(MOTO_DEADLINE, Duration::from_millis(50), async || {
            http.get(&probe).send().await.ok().map(|_| ())
        })
        .await
        .with_context(|| format!("moto did not answer within {MOTO_DEADLINE:?}"))?;
        Ok(moto)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
