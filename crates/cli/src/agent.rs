//! `keymint agent`: a sidecar that keeps fresh credentials for one or more paths and serves
//! them on loopback in the AWS container-credentials format, so any AWS SDK in the pod uses
//! them through `AWS_CONTAINER_CREDENTIALS_FULL_URI` and `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
//!
//! Each path has a keeper task: it fetches before the first request, then at a fraction of the
//! lifetime (with jitter) renews a renewable lease or fetches anew, revoking what it replaced.
//! Callers never get keys with less than `--min-ttl` left: they wait for the refresh, and
//! concurrent callers share it. When keymint cannot be reached, still-valid keys keep being
//! served while the keeper retries with backoff. On SIGTERM the agent revokes what it holds.
//!
//! With `--auth-method` the agent logs in itself (see [`crate::auto_auth`]) and holds no
//! stored token: a lease dies with the token that fetched it, so after each new login every
//! keeper fetches anew under the new token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

use crate::auto_auth::{AutoAuth, AutoAuthArgs, Tokens};
use crate::client::{Answer, Conn, Env, Exit};

#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  keymint agent --path aws/sts/deploy --listen 127.0.0.1:8100 --auth-token-file /run/agent-token\n  # in the application's environment:\n  AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:8100/creds\n  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/agent-token\n\nLogging in itself (no stored token):\n  keymint agent --path aws/sts/deploy --auth-token-file /run/agent-token \\\n    --auth-method approle --role-id-file /etc/keymint/role-id --secret-id-file /etc/keymint/secret-id\n  keymint agent --path aws/sts/deploy --auth-token-file /run/agent-token \\\n    --auth-method kubernetes --auth-role deploy"
)]
pub struct AgentArgs {
    /// A path to keep credentials for: `aws/sts/ROLE` (served at /creds) or `NAME=aws/sts/ROLE`
    /// (served at /creds/NAME). Repeat for several.
    #[arg(long = "path", required = true)]
    pub paths: Vec<String>,
    /// Where to serve, on loopback.
    #[arg(long, default_value = "127.0.0.1:8100")]
    pub listen: SocketAddr,
    /// Callers must send this file's content in `Authorization`.
    #[arg(long)]
    pub auth_token_file: PathBuf,
    /// The keymint server (else KEYMINT_ADDR, VAULT_ADDR, then http://127.0.0.1:8200).
    #[arg(long)]
    pub address: Option<String>,
    /// Refresh at this fraction of the credentials' lifetime.
    #[arg(long, default_value_t = 0.5)]
    pub refresh_at: f64,
    /// Never serve keys with less than this many seconds left (some SDKs refuse keys that
    /// expire within 15 minutes).
    #[arg(long, default_value_t = 300)]
    pub min_ttl: u64,
    /// Also write the credentials here, in ~/.aws/credentials format (a profile per name).
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,
    #[command(flatten)]
    pub auth: AutoAuthArgs,
}

/// Credentials held for one path.
#[derive(Clone)]
struct Held {
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
    lease_id: String,
    renewable: bool,
    issued: DateTime<Utc>,
    expires: DateTime<Utc>,
}

struct Slot {
    name: String,
    path: String,
    held: RwLock<Option<Held>>,
    /// One fetch at a time; callers that need fresh keys wait on it together.
    fetching: Mutex<()>,
    last_error: RwLock<Option<String>>,
}

struct Agent {
    conn: Conn,
    /// The keymint token: the environment's, or auto-auth's current one.
    tokens: Tokens,
    slots: BTreeMap<String, Arc<Slot>>,
    /// What callers must send in `Authorization`.
    token: String,
    min_ttl: chrono::Duration,
    refresh_at: f64,
    credentials_file: Option<PathBuf>,
}

fn parse_path(spec: &str) -> (String, String) {
    match spec.split_once('=') {
        Some((name, path)) => (name.to_owned(), path.trim_matches('/').to_owned()),
        None => ("default".to_owned(), spec.trim_matches('/').to_owned()),
    }
}

pub async fn run(env: &Env, args: AgentArgs) -> Result<(), Exit> {
    if !args.listen.ip().is_loopback() {
        return Err(Exit::local("the agent serves credentials on loopback only"));
    }
    if !(0.1..=0.9).contains(&args.refresh_at) {
        return Err(Exit::local("--refresh-at must be between 0.1 and 0.9"));
    }
    let token = std::fs::read_to_string(&args.auth_token_file)
        .map_err(|e| Exit::local(format!("reading {}: {e}", args.auth_token_file.display())))?
        .trim()
        .to_owned();
    if token.len() < 16 {
        return Err(Exit::local("the auth token file must hold at least 16 characters"));
    }
    let mut slots = BTreeMap::new();
    for spec in &args.paths {
        let (name, path) = parse_path(spec);
        let slot = Slot {
            name: name.clone(),
            path,
            held: RwLock::new(None),
            fetching: Mutex::new(()),
            last_error: RwLock::new(None),
        };
        if slots.insert(name.clone(), Arc::new(slot)).is_some() {
            return Err(Exit::local(format!("two --path share the name {name:?}")));
        }
    }
    let conn = Conn::new(env, args.address.as_deref())?;
    let auto = match args.auth.config()? {
        Some(config) => {
            let auth = Arc::new(AutoAuth::new(Conn::new(env, args.address.as_deref())?, config));
            match auth.login().await {
                Ok(_) => {}
                // Refused: the role or its secret is wrong, and waiting will not fix it.
                Err(e) if e.code == 2 => return Err(e),
                // Unreachable: keep trying in the background, as the keepers do.
                Err(e) => eprintln!("keymint agent: first login failed, retrying: {}", e.message),
            }
            Some(auth)
        }
        None => None,
    };
    let tokens = match &auto {
        Some(auth) => Tokens::Auto(auth.clone()),
        None => Tokens::Fixed(conn.token().map(str::to_owned)),
    };
    let agent = Arc::new(Agent {
        conn,
        tokens,
        slots,
        token,
        min_ttl: chrono::Duration::seconds(i64::try_from(args.min_ttl).unwrap_or(i64::MAX)),
        refresh_at: args.refresh_at,
        credentials_file: args.credentials_file,
    });
    let listener = tokio::net::TcpListener::bind(args.listen).await.map_err(Exit::local)?;
    let bound = listener.local_addr().map_err(Exit::local)?;
    println!("==> keymint agent serving on http://{bound}/creds");
    let shutdown = CancellationToken::new();
    tokio::spawn(crate::watch_signals(shutdown.clone()));
    let mut keepers = Vec::new();
    if let Some(auth) = &auto {
        let (auth, stop) = (auth.clone(), shutdown.clone());
        keepers.push(tokio::spawn(async move { auth.maintain(stop).await }));
    }
    for slot in agent.slots.values() {
        let logins = auto.as_ref().map(|a| a.logins());
        keepers.push(tokio::spawn(keep(agent.clone(), slot.clone(), logins, shutdown.clone())));
    }
    let app = axum::Router::new()
        .route("/creds", get(default_creds))
        .route("/creds/{name}", get(named_creds))
        .route("/healthz", get(|| async { "ok" }))
        .route("/status", get(status))
        .with_state(agent.clone());
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(Exit::local)?;
    for k in keepers {
        let _ = k.await;
    }
    // What the agent held dies with it: its IAM users are deleted now, not at lease end.
    for slot in agent.slots.values() {
        if let Some(h) = slot.held.read().await.as_ref() {
            let _ = agent.call("PUT", "sys/leases/revoke", Some(&json!({"lease_id": h.lease_id}))).await;
        }
    }
    if let Some(auth) = &auto {
        auth.revoke().await;
    }
    Ok(())
}

impl Agent {
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, Exit> {
        self.tokens.call(&self.conn, method, path, body).await
    }
}

/// Keeps one slot fresh until shutdown; with auto-auth, fetches anew after each new login
/// (`logins` changes), since what the old token fetched is revoked with it.
async fn keep(
    agent: Arc<Agent>,
    slot: Arc<Slot>,
    mut logins: Option<tokio::sync::watch::Receiver<u64>>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    let mut renew = true;
    if let Some(l) = logins.as_mut() {
        l.mark_unchanged();
    }
    loop {
        let next = match refresh(&agent, &slot, renew).await {
            Ok(h) => {
                backoff = Duration::from_secs(1);
                renew = true;
                let lifetime = (h.expires - h.issued).num_milliseconds().max(0) as f64;
                let jitter = 1.0 + (rand::random::<f64>() - 0.5) * 0.1;
                let at =
                    h.issued + chrono::Duration::milliseconds((lifetime * agent.refresh_at * jitter) as i64);
                (at - Utc::now()).to_std().unwrap_or(Duration::from_secs(1)).max(Duration::from_secs(1))
            }
            Err(e) => {
                *slot.last_error.write().await = Some(e);
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                wait
            }
        };
        let new_login = async {
            match logins.as_mut() {
                Some(l) => l.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(next) => {}
            changed = new_login => {
                if !changed {
                    logins = None;
                }
                renew = false;
            }
        }
    }
}

/// Renews the held lease when it can (and `renew` allows), else fetches anew (revoking the
/// replaced lease).
async fn refresh(agent: &Agent, slot: &Slot, renew: bool) -> Result<Held, String> {
    let _one = slot.fetching.lock().await;
    let current = slot.held.read().await.clone();
    if let Some(h) = current.as_ref().filter(|h| h.renewable && renew)
        && let Ok(a) = agent.call("PUT", "sys/leases/renew", Some(&json!({"lease_id": h.lease_id}))).await
        && a.status == 200
    {
        let secs = a.body["lease_duration"].as_i64().unwrap_or(0);
        let renewed =
            Held { issued: Utc::now(), expires: Utc::now() + chrono::Duration::seconds(secs), ..h.clone() };
        // A renewal that cannot reach --min-ttl (the lease hit its max TTL) is not enough.
        if renewed.expires - Utc::now() > agent.min_ttl {
            *slot.held.write().await = Some(renewed.clone());
            *slot.last_error.write().await = None;
            return Ok(renewed);
        }
    }
    let fresh = fetch(agent, slot).await?;
    *slot.held.write().await = Some(fresh.clone());
    *slot.last_error.write().await = None;
    write_credentials_file(agent).await;
    if let Some(old) = current.filter(|o| !o.lease_id.is_empty() && o.lease_id != fresh.lease_id) {
        let _ = agent.call("PUT", "sys/leases/revoke", Some(&json!({"lease_id": old.lease_id}))).await;
    }
    Ok(fresh)
}

async fn fetch(agent: &Agent, slot: &Slot) -> Result<Held, String> {
    let a = agent.call("GET", &slot.path, None).await.map_err(|e| e.message)?;
    if a.status != 200 {
        return Err(format!("reading {}: {} {}", slot.path, a.status, a.errors().join("; ")));
    }
    let d = &a.body["data"];
    let text = |k: &str| d[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let now = Utc::now();
    Ok(Held {
        access_key: text("access_key").ok_or("the answer holds no access_key")?,
        secret_key: text("secret_key").ok_or("the answer holds no secret_key")?,
        session_token: text("session_token").or_else(|| text("security_token")),
        lease_id: a.body["lease_id"].as_str().unwrap_or_default().to_owned(),
        renewable: a.body["renewable"].as_bool().unwrap_or(false),
        issued: now,
        expires: now + chrono::Duration::seconds(a.body["lease_duration"].as_i64().unwrap_or(0)),
    })
}

/// Credentials with at least --min-ttl left: the held ones, or a refresh shared with every
/// other caller waiting for it.
async fn usable(agent: &Agent, slot: &Slot) -> Result<Held, String> {
    let fresh_enough = |h: &Held| h.expires - Utc::now() > agent.min_ttl;
    if let Some(h) = slot.held.read().await.clone().filter(fresh_enough) {
        return Ok(h);
    }
    // Whoever gets the lock first refreshes; the others find the result when they get it.
    let waited = slot.fetching.lock().await;
    if let Some(h) = slot.held.read().await.clone().filter(fresh_enough) {
        return Ok(h);
    }
    drop(waited);
    match refresh(agent, slot, true).await {
        Ok(h) if fresh_enough(&h) => Ok(h),
        Ok(_) => Err("the credentials keymint issues live shorter than --min-ttl".into()),
        Err(e) => {
            // keymint is unreachable: still-valid keys beat none.
            match slot.held.read().await.clone().filter(|h| h.expires > Utc::now()) {
                Some(h) => Ok(h),
                None => Err(e),
            }
        }
    }
}

fn sdk_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"code": code, "message": message}))).into_response()
}

/// Compares digests of the two, every byte, so the time taken says nothing of the token.
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (
        ring::digest::digest(&ring::digest::SHA256, a.as_bytes()),
        ring::digest::digest(&ring::digest::SHA256, b.as_bytes()),
    );
    x.as_ref().iter().zip(y.as_ref()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// The refusal for a caller without the right token, if it is one.
fn refused(agent: &Agent, headers: &HeaderMap) -> Option<Response> {
    let Some(sent) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Some(sdk_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "the Authorization header is missing",
        ));
    };
    (!same_secret(sent.trim(), &agent.token))
        .then(|| sdk_error(StatusCode::FORBIDDEN, "AccessDenied", "the Authorization token is wrong"))
}

async fn serve(agent: &Agent, headers: &HeaderMap, name: &str) -> Response {
    if let Some(denied) = refused(agent, headers) {
        return denied;
    }
    let Some(slot) = agent.slots.get(name) else {
        return sdk_error(StatusCode::NOT_FOUND, "NotFound", &format!("no credentials named {name:?}"));
    };
    match usable(agent, slot).await {
        Ok(h) => axum::Json(container_credentials(&h)).into_response(),
        Err(e) => sdk_error(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", &e),
    }
}

/// The container-credentials answer. `Token` is always there, empty for keys without a session
/// token (iam_user): botocore (`response['Token']`) and the Rust SDK (`MissingField("Token")`)
/// refuse an answer without it, as ECS always sends one. botocore reads the empty string as
/// "no session token".
fn container_credentials(h: &Held) -> Value {
    json!({
        "AccessKeyId": h.access_key,
        "SecretAccessKey": h.secret_key,
        "Token": h.session_token.clone().unwrap_or_default(),
        "Expiration": h.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

async fn default_creds(State(agent): State<Arc<Agent>>, headers: HeaderMap) -> Response {
    let name = if agent.slots.len() == 1 {
        agent.slots.keys().next().cloned().unwrap_or_default()
    } else {
        "default".into()
    };
    serve(&agent, &headers, &name).await
}

async fn named_creds(
    State(agent): State<Arc<Agent>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    serve(&agent, &headers, &name).await
}

/// What the agent holds, never the secrets.
async fn status(State(agent): State<Arc<Agent>>) -> Response {
    let mut out = serde_json::Map::new();
    for (name, slot) in &agent.slots {
        let held = slot.held.read().await.clone();
        out.insert(
            name.clone(),
            json!({
                "path": slot.path,
                "lease_id": held.as_ref().map(|h| h.lease_id.clone()),
                "access_key": held.as_ref().map(|h| h.access_key.clone()),
                "expiration": held.as_ref().map(|h| h.expires.to_rfc3339()),
                "renewable": held.as_ref().map(|h| h.renewable),
                "last_error": slot.last_error.read().await.clone(),
            }),
        );
    }
    axum::Json(Value::Object(out)).into_response()
}

/// Rewrites the credentials file (a profile per name) atomically, owner-only.
async fn write_credentials_file(agent: &Agent) {
    let Some(file) = &agent.credentials_file else { return };
    let mut text = String::new();
    for slot in agent.slots.values() {
        if let Some(h) = slot.held.read().await.as_ref() {
            text.push_str(&format!(
                "[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                slot.name, h.access_key, h.secret_key
            ));
            if let Some(t) = &h.session_token {
                text.push_str(&format!("aws_session_token = {t}\n"));
            }
            text.push('\n');
        }
    }
    if let Err(e) = crate::commands::write_private(file, &text) {
        eprintln!("keymint agent: could not write {}: {}", file.display(), e.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdef", "0123456789abcdeg"));
        assert!(!same_secret("0123456789abcdef", "0123456789abcde"));
    }

    /// The SDKs refuse a container-credentials answer without `Token`: it is there for keys
    /// without a session token too, empty.
    #[test]
    fn the_token_field_is_always_sent() {
        let now = Utc::now();
        let held = |token: Option<&str>| Held {
            access_key: "AK".into(),
            secret_key: "SK".into(),
            session_token: token.map(str::to_owned),
            lease_id: String::new(),
            renewable: false,
            issued: now,
            expires: now,
        };
        let iam_user = container_credentials(&held(None));
        assert_eq!(iam_user["Token"], "", "{iam_user}");
        let sts = container_credentials(&held(Some("ST")));
        assert_eq!(sts["Token"], "ST", "{sts}");
        assert_eq!(sts["AccessKeyId"], "AK");
        assert_eq!(sts["SecretAccessKey"], "SK");
        assert!(sts["Expiration"].as_str().is_some_and(|e| e.ends_with('Z')), "{sts}");
    }

    #[test]
    fn paths_with_and_without_names() {
        assert_eq!(parse_path("aws/sts/deploy"), ("default".into(), "aws/sts/deploy".into()));
        assert_eq!(parse_path("ci=/aws/creds/ci/"), ("ci".into(), "aws/creds/ci".into()));
    }
}
