//! Child-process plumbing shared by the moto and keymint handles: output capture, free ports,
//! polling with a deadline, and where things live in the workspace.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a child may take to come up (and any `eventually` default).
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

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
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']);
                        on_line(line);
                        log.push(format!("{tag}{line}"));
                    }
                }
            }
        })
    }
}

/// Polls `probe` until it yields `Some`, at most for `timeout`, pausing briefly between tries.
/// Panics with `what` when the deadline passes. Use it instead of sleeping for a condition.
pub async fn eventually<T>(what: &str, timeout: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
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
