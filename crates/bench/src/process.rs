//! The processes the benchmarks run: keymint servers in dev mode and moto, each on a port of
//! its choosing on 127.0.0.1, killed when dropped or stopped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::TOKEN;

/// A keymint server in dev mode on a port of its choosing.
pub struct Server {
    child: Child,
    pub url: String,
    /// From spawning the process to the first 200 from `sys/health`.
    pub ready_after: Duration,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub async fn start(bin: &Path, storage: &str, extra: &[&str]) -> Result<Server> {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .args(["server", "--dev", "--dev-root-token-id", TOKEN, "--dev-listen-address", "127.0.0.1:0"])
            .args(["--storage", storage])
            .args(extra)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().context("piped stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) =
                    line.split_once("Api Address:").and_then(|(_, r)| r.split_whitespace().next())
                {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().context("piped stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(120)))
            .await?
            .context("keymint printed no address within 120 s")?;
        let http = reqwest::Client::builder().no_proxy().build()?;
        let health = format!("{url}/v1/sys/health");
        loop {
            if let Ok(r) = http.get(&health).send().await
                && r.status() == 200
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("keymint was not healthy within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Server { child, url, ready_after: started.elapsed(), stderr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        // moto (werkzeug) logs one line per request on stderr.
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let pipe = child.stderr.take().context("piped stderr")?;
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("\"POST ") {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let moto = Moto { child, port, requests };
        let http = reqwest::Client::builder().no_proxy().build()?;
        let started = Instant::now();
        while http.get(format!("{}/moto-api/", moto.url())).send().await.is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("moto did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
