//! A small TCP load balancer on 127.0.0.1, as a layer-4 balancer in front of several keymint
//! replicas: each accepted connection goes to the next backend in turn, and a backend that
//! refuses the connection (a killed replica) is skipped for the one after it. Backends can be
//! replaced while it runs, as a replica restarted on a new port is put back in rotation.
//!
//! It knows nothing of HTTP: a connection cut by a backend's death is cut for the client too,
//! as with a real layer-4 balancer. Clients that want every request balanced open a connection
//! per request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long a backend may take to accept before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A running balancer. Dropping it stops accepting; connections already forwarded run on until
/// either side closes them.
pub struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Vec<String>>>,
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free port of 127.0.0.1 and forwards to `backends` (`host:port` each).
    pub async fn start(backends: Vec<String>) -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the balancer");
        let addr = listener.local_addr().expect("the balancer's address");
        let backends = Arc::new(Mutex::new(backends));
        let next = Arc::new(AtomicUsize::new(0));
        let shared = backends.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // Everything after the accept runs on its own task, so a slow backend never
                // holds up the next connection.
                let first = next.fetch_add(1, Ordering::Relaxed);
                let targets = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                tokio::spawn(forward(client, targets, first));
            }
        });
        Balancer { addr, backends, accept }
    }

    /// `http://127.0.0.1:PORT`, for a [`crate::Client`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Puts `new` in place of `old` (a replica restarted on another port); adds it if `old`
    /// is not a backend.
    pub fn replace(&self, old: &str, new: &str) {
        let mut backends = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        match backends.iter_mut().find(|b| *b == old) {
            Some(slot) => *slot = new.to_owned(),
            None => backends.push(new.to_owned()),
        }
    }

    /// The backends connections are forwarded to now.
    pub fn backends(&self) -> Vec<String> {
        self.backends.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Connects to `targets[first]`, else the next that accepts, and copies bytes both ways until
/// either side closes. When none accepts, the client's connection is dropped unanswered.
async fn forward(mut client: TcpStream, targets: Vec<String>, first: usize) {
    for i in 0..targets.len() {
        let target = &targets[(first + i) % targets.len()];
        let Ok(Ok(mut backend)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await
        else {
            continue;
        };
        let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
        return;
    }
}
