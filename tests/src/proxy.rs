//! A fault-injecting proxy between keymint and moto, on 127.0.0.1, configured per test: AWS
//! throttling and limit errors, 5xx answers, latency before or after the call, a connection
//! dropped after the call went through, calls held until the test lets go of them, and new
//! access keys that IAM does not accept yet (eventual consistency). It records every call with
//! what became of it, so tests can count, e.g., the `DeleteUser` calls that reached moto.
//!
//! Point keymint at [`FaultProxy::url`] instead of moto's (see [`crate::root_config_via`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use aws_sdk_iam::config::retry::RetryConfig;

use crate::moto::{Moto, iam_client, minted, parse_call, sts_client};

/// What the proxy does to a call a rule matches.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer `400 Throttling: Rate exceeded` without calling moto.
    Throttle,
    /// Answer `409 LimitExceeded` without calling moto.
    LimitExceeded,
    /// Answer this 5xx status (`InternalFailure` / `ServiceUnavailable`) without calling moto.
    ServerError(u16),
    /// Wait this long, then forward.
    Latency(Duration),
    /// Forward at once, then wait this long before answering: the call has happened in AWS
    /// while the caller still waits.
    SlowAnswer(Duration),
    /// Forward, then drop the connection without answering: the call happened in AWS, but the
    /// caller sees a connection error.
    DropAfterForward,
    /// Neither forward nor answer until [`FaultProxy::release_held`] (then the connection is
    /// dropped) or the proxy goes away. The call never reaches moto.
    Hold,
    /// Answer this AWS error (status, code, message) without calling moto: what AWS says for
    /// a missing permission, an unknown role, a session too long...
    AwsError(u16, &'static str, &'static str),
}

/// What became of one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded to moto, which answered with this status, passed on to the caller.
    Answered(u16),
    /// Forwarded to moto (which answered with this status); the caller got a dropped connection.
    DroppedAfterForward(u16),
    /// Answered by the proxy with this status and AWS error code; moto never saw it.
    Injected(u16, String),
    /// Held; moto never saw it.
    Held,
    /// Being sent on to moto (a moment later: [`Outcome::Answered`]), or moto could not be
    /// reached.
    Sent,
}

/// One call through the proxy.
#[derive(Clone, Debug)]
pub struct ProxiedCall {
    pub action: String,
    pub params: Vec<(String, String)>,
    pub access_key: Option<String>,
    pub outcome: Outcome,
    /// When the call reached the proxy.
    pub at: Instant,
}

impl ProxiedCall {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// True when the call reached moto.
    pub fn forwarded(&self) -> bool {
        matches!(self.outcome, Outcome::Answered(_) | Outcome::DroppedAfterForward(_) | Outcome::Sent)
    }
}

struct Rule {
    /// `None`: every action.
    action: Option<String>,
    fault: Fault,
    /// Share of matching calls the rule hits, 0.0 to 1.0 (decided per call at random).
    share: f64,
    /// How many more calls the rule may hit; `None`: no limit.
    remaining: Option<u32>,
}

/// AWS's own rate limit on IAM writes, as a token bucket: calls beyond it are throttled.
struct RateLimit {
    per_second: f64,
    tokens: f64,
    refilled: Instant,
}

/// STS's actions; every other action the proxy sees is IAM's.
const STS_ACTIONS: &[&str] = &[
    "AssumeRole",
    "GetFederationToken",
    "GetSessionToken",
    "GetCallerIdentity",
    "AssumeRoleWithWebIdentity",
];

/// True for IAM calls that change something (what AWS rate-limits as writes).
pub fn is_iam_write(action: &str) -> bool {
    !action.is_empty()
        && !STS_ACTIONS.contains(&action)
        && !action.starts_with("Get")
        && !action.starts_with("List")
}

#[derive(Default)]
struct Rules {
    rules: Vec<Rule>,
    /// IAM writes beyond this rate are throttled.
    write_limit: Option<RateLimit>,
    /// Eventual consistency: a key created through the proxy is refused this long.
    key_delay: Option<Duration>,
    new_keys: HashMap<String, Instant>,
}

struct Shared {
    upstream: String,
    http: reqwest::Client,
    rules: Mutex<Rules>,
    calls: Mutex<Vec<ProxiedCall>>,
    /// Held calls wait on this; `release_held` wakes them all.
    release: Notify,
    held_now: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `moto`, with no rules yet.
    pub async fn start(moto: &Moto) -> FaultProxy {
        FaultProxy::start_for(moto.url()).await
    }

    /// A proxy forwarding to the moto at `upstream` (`http://127.0.0.1:PORT`), for callers
    /// that start moto themselves (the benchmarks).
    pub async fn start_for(upstream: String) -> FaultProxy {
        assert!(upstream.starts_with("http://127.0.0.1:"), "the proxy forwards to loopback only");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fault proxy on 127.0.0.1");
        let port = listener.local_addr().expect("the proxy's address").port();
        let shared = Arc::new(Shared {
            upstream,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("build the proxy's HTTP client"),
            rules: Mutex::default(),
            calls: Mutex::default(),
            release: Notify::new(),
            held_now: Mutex::new(0),
        });
        let accept = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = accept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    // A connection ends with an error when a fault drops it: that is the point.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FaultProxy { port, shared, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An IAM client through the proxy with the harness's dummy credentials and no SDK
    /// retries, so a test sees each injected fault.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        iam_client(&self.url(), RetryConfig::disabled())
    }

    /// An STS client through the proxy signing with the given keys, without SDK retries.
    pub fn sts_with(&self, access_key: &str, secret_key: &str) -> aws_sdk_sts::Client {
        sts_client(&self.url(), minted(access_key, secret_key, None), RetryConfig::disabled())
    }

    /// Applies `fault` to every call of `action` (`"*"`: every action) from now on.
    pub fn fail(&self, action: &str, fault: Fault) -> &Self {
        self.add_rule(action, fault, 1.0, None)
    }

    /// Applies `fault` to the next `times` calls of `action` (`"*"`: any).
    pub fn fail_times(&self, action: &str, fault: Fault, times: u32) -> &Self {
        self.add_rule(action, fault, 1.0, Some(times))
    }

    /// Applies `fault` to a share (0.0 to 1.0, at random) of the calls of `action` (`"*"`: any).
    pub fn fail_share(&self, action: &str, fault: Fault, share: f64) -> &Self {
        self.add_rule(action, fault, share, None)
    }

    fn add_rule(&self, action: &str, fault: Fault, share: f64, remaining: Option<u32>) -> &Self {
        let action = (action != "*").then(|| action.to_owned());
        lock(&self.shared.rules).rules.push(Rule { action, fault, share, remaining });
        self
    }

    /// Access keys created through the proxy from now on are refused with
    /// `InvalidClientTokenId` for `delay` after their creation, as IAM does for a few seconds.
    pub fn delay_new_keys(&self, delay: Duration) -> &Self {
        lock(&self.shared.rules).key_delay = Some(delay);
        self
    }

    /// Throttles IAM writes beyond `per_second` (one second's worth may come at once), as AWS
    /// does with an account's IAM write rate.
    pub fn limit_iam_writes(&self, per_second: f64) -> &Self {
        lock(&self.shared.rules).write_limit =
            Some(RateLimit { per_second, tokens: per_second, refilled: Instant::now() });
        self
    }

    /// Removes every rule, the rate limit and the key delay; held calls stay held.
    pub fn clear(&self) {
        let mut rules = lock(&self.shared.rules);
        rules.rules.clear();
        rules.key_delay = None;
        rules.write_limit = None;
    }

    /// Lets go of every held call: each caller still listening gets a dropped connection.
    pub fn release_held(&self) {
        self.shared.release.notify_waiters();
    }

    /// How many calls are held right now.
    pub fn held(&self) -> usize {
        *lock(&self.shared.held_now)
    }

    /// Every call so far, oldest first, optionally only those of `action`.
    pub fn calls(&self, action: Option<&str>) -> Vec<ProxiedCall> {
        lock(&self.shared.calls).iter().filter(|c| action.is_none_or(|a| c.action == a)).cloned().collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.release_held();
    }
}

type Answer = Response<Full<Bytes>>;

/// Why the proxy dropped a connection instead of answering.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, Dropped> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let call = parse_call(&path_and_query, &body, &|name| {
        parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    });
    let (action, params, access_key) = match call {
        Some(c) => (c.action, c.params, c.access_key),
        None => (String::new(), Vec::new(), None),
    };
    // Recorded on arrival and updated once settled: when the caller goes away, hyper drops this
    // future wherever it is, and a call already sent on must still show.
    let index = {
        let mut calls = lock(&shared.calls);
        calls.push(ProxiedCall {
            action: action.clone(),
            params,
            access_key: access_key.clone(),
            outcome: Outcome::Sent,
            at: Instant::now(),
        });
        calls.len() - 1
    };
    let record = |outcome: Outcome| lock(&shared.calls)[index].outcome = outcome;

    // A key created moments ago is not valid yet, whatever the call.
    if let Some(key) = &access_key {
        let rules = lock(&shared.rules);
        if let (Some(delay), Some(created)) = (rules.key_delay, rules.new_keys.get(key))
            && created.elapsed() < delay
        {
            drop(rules);
            let code = "InvalidClientTokenId";
            record(Outcome::Injected(403, code.into()));
            return Ok(aws_error(403, code, "The security token included in the request is invalid."));
        }
    }

    // Sent on from a task of its own: once the proxy has the call, it reaches moto even if the
    // caller dies meanwhile, as a request that reached AWS is carried out there.
    let send = |drop_answer: bool| {
        let shared = shared.clone();
        let (method, headers) = (parts.method.clone(), parts.headers.clone());
        let (path_and_query, action) = (path_and_query.clone(), action.clone());
        let task = tokio::spawn(async move {
            let answer = forward(&shared, &method, &headers, &path_and_query, body, &action).await;
            if let Ok(a) = &answer {
                let status = a.status().as_u16();
                lock(&shared.calls)[index].outcome = if drop_answer {
                    Outcome::DroppedAfterForward(status)
                } else {
                    Outcome::Answered(status)
                };
            }
            answer
        });
        async move { task.await.map_err(|_| Dropped)? }
    };

    match pick_fault(&shared, &action) {
        Some(Fault::Throttle) => {
            record(Outcome::Injected(400, "Throttling".into()));
            Ok(aws_error(400, "Throttling", "Rate exceeded"))
        }
        Some(Fault::LimitExceeded) => {
            record(Outcome::Injected(409, "LimitExceeded".into()));
            Ok(aws_error(409, "LimitExceeded", "Cannot exceed quota"))
        }
        Some(Fault::ServerError(status)) => {
            let code = if status == 503 { "ServiceUnavailable" } else { "InternalFailure" };
            record(Outcome::Injected(status, code.into()));
            Ok(aws_error(status, code, "injected by the fault proxy"))
        }
        Some(Fault::AwsError(status, code, message)) => {
            record(Outcome::Injected(status, code.into()));
            Ok(aws_error(status, code, message))
        }
        Some(Fault::Hold) => {
            record(Outcome::Held);
            *lock(&shared.held_now) += 1;
            shared.release.notified().await;
            *lock(&shared.held_now) -= 1;
            Err(Dropped)
        }
        Some(Fault::Latency(d)) => {
            tokio::time::sleep(d).await;
            send(false).await
        }
        Some(Fault::SlowAnswer(d)) => {
            let answer = send(false).await?;
            tokio::time::sleep(d).await;
            Ok(answer)
        }
        Some(Fault::DropAfterForward) => {
            send(true).await?;
            Err(Dropped)
        }
        None => send(false).await,
    }
}

/// The fault of the first rule that matches `action` and hits this call, if any; else a
/// throttle if the call is an IAM write beyond the rate limit.
fn pick_fault(shared: &Shared, action: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    for rule in rules.rules.iter_mut() {
        if rule.action.as_deref().is_some_and(|a| a != action) || rule.remaining == Some(0) {
            continue;
        }
        if rule.share < 1.0 && rand::random::<f64>() >= rule.share {
            continue;
        }
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        return Some(rule.fault.clone());
    }
    if is_iam_write(action)
        && let Some(limit) = rules.write_limit.as_mut()
    {
        let now = Instant::now();
        let elapsed = now.duration_since(limit.refilled).as_secs_f64();
        limit.refilled = now;
        limit.tokens = (limit.tokens + elapsed * limit.per_second).min(limit.per_second);
        if limit.tokens < 1.0 {
            return Some(Fault::Throttle);
        }
        limit.tokens -= 1.0;
    }
    None
}

/// Sends the call on to moto as it came (same method, path, headers, body: the signature
/// stays valid) and hands back moto's answer.
async fn forward(
    shared: &Shared,
    method: &http::Method,
    headers: &http::HeaderMap,
    path_and_query: &str,
    body: Bytes,
    action: &str,
) -> Result<Answer, Dropped> {
    let url = format!("{}{path_and_query}", shared.upstream);
    let mut out = shared.http.request(method.clone(), url).body(body);
    for (name, value) in headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::CONNECTION {
            out = out.header(name, value);
        }
    }
    let resp = out.send().await.map_err(|_| Dropped)?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.map_err(|_| Dropped)?;
    if action == "CreateAccessKey" && status.is_success() {
        remember_new_key(shared, &bytes);
    }
    let mut answer = Response::new(Full::new(bytes));
    *answer.status_mut() = status;
    for (name, value) in &headers {
        if name != http::header::CONTENT_LENGTH
            && name != http::header::TRANSFER_ENCODING
            && name != http::header::CONNECTION
        {
            answer.headers_mut().append(name, value.clone());
        }
    }
    Ok(answer)
}

/// Notes the key id of a CreateAccessKey answer when keys are to be refused for a while.
fn remember_new_key(shared: &Shared, body: &[u8]) {
    let mut rules = lock(&shared.rules);
    if rules.key_delay.is_none() {
        return;
    }
    let text = String::from_utf8_lossy(body);
    if let Some(id) =
        text.split_once("<AccessKeyId>").and_then(|(_, rest)| rest.split_once('<')).map(|(id, _)| id)
    {
        rules.new_keys.insert(id.to_owned(), Instant::now());
    }
}

/// An AWS query-protocol error document, as IAM and STS send them.
fn aws_error(status: u16, code: &str, message: &str) -> Answer {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let xml = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>{kind}</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    );
    let mut answer = Response::new(Full::new(Bytes::from(xml)));
    *answer.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    answer.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/xml"));
    answer
}
