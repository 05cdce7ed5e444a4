//! Child-process plumbing shared by the moto and keymint handles, and by the benchmarks
//! (crates/bench): output capture, the address keymint announces, free ports, polling with a
//! deadline, and where things live in the workspace. Nothing here panics but [`eventually`],
//! so a caller that reports errors instead of panicking can use the rest.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a child may take to come up (and any `eventually` default).
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// What keymint prints before the URL it listens on (`--dev-listen-address 127.0.0.1:0`).
pub const ADDRESS_MARKER: &str = "Api Address:";

/// The URL in keymint's `Api Address: http://127.0.0.1:PORT` line, if `line` is that line.
pub fn announced_address(line: &str) -> Option<&str> {
    line.split_once(ADDRESS_MARKER).and_then(|(_, rest)| rest.split_whitespace().next())
}

/// The Cargo workspace root (the tests package sits directly below it).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("invariant: the tests package lives one level below the workspace root")
        .to_path_buf()
}

/// A port on 127.0.0.1 that was free a moment ago. Callers that hand it to another process
/// must cope with losing the race for it (retry on "address in use").
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local_addr of a bound listener").port()
}

/// Everything a child wrote to stdout and stderr, line by line, kept so a failing test can show
/// it. Readers run on their own threads until the pipe closes, so a chatty child never blocks
/// on a full pipe.
#[derive(Clone, Default)]
pub struct OutputLog(Arc<Mutex<Vec<String>>>);

impl OutputLog {
    pub fn push(&self, line: String) {
        self.lines().push(line);
    }

    /// The whole log, one line per entry.
    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.lines().iter().any(|l| l.contains(needle))
    }

    /// The lines so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.lines().clone()
    }

    fn lines(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        // A reader thread that panicked mid-push leaves a usable Vec behind.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drains `pipe` on a new thread, prefixing each line with `tag`, and calls `on_line` for
    /// each line as it arrives (before it is stored). The thread ends when the pipe closes.
    pub fn drain<R, F>(&self, pipe: R, tag: &'static str, mut on_line: F) -> JoinHandle<()>
    where
        R: Read + Send + 'static,
        F: FnMut(&str) + Send + 'static,
    {
        let log = self.clone();
        each_line(pipe, move |line| {
            on_line(line);
            log.push(format!("{tag}{line}"));
        })
    }
}

/// Reads `pipe` on a new thread until it closes, calling `on_line` with each line (without its
/// line ending; invalid UTF-8 replaced). For output too plentiful to keep, e.g. moto's request
/// log under a benchmark.
pub fn each_line<R, F>(pipe: R, mut on_line: F) -> JoinHandle<()>
where
    R: Read + Send + 'static,
    F: FnMut(&str) + Send + 'static,
{
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    on_line(line.trim_end_matches(['\n', '\r']));
                }
            }
        }
    })
}

/// Polls `probe` until it yields `Some`, at most for `timeout`, pausing briefly between tries.
/// Panics with `what` when the deadline passes. Use it instead of sleeping for a condition.
pub async fn eventually<T>(what: &str, timeout: Duration, probe: impl AsyncFnMut() -> Option<T>) -> T {
    match poll(timeout, Duration::from_millis(25), probe).await {
        Some(value) => value,
        None => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Polls `probe` every `every` until it yields `Some`; `None` once `timeout` has passed.
pub async fn poll<T>(
    timeout: Duration,
    every: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// A plain HTTP client for talking to local children: no proxy (CI may set one), bounded time.
pub fn local_http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build a reqwest client")
}
