//! Auto-auth for `keymint agent` and `keymint credential-process`, after Vault Agent's
//! `auto_auth`: log in with AppRole, JWT or Kubernetes instead of keeping a keymint token on
//! disk, renew the token while it can be renewed, and log in again before it runs out.
//!
//! A login token is renewed (`auth/token/renew-self`) at two thirds of its lease. When a
//! renewal is refused, or grants less than asked (the token reached its max TTL), the next
//! login happens at once, while the old token still lives. A JWT file that changes (projected
//! service-account tokens are rotated) triggers a login too. Everyone calling the server reads
//! the current token each time, and a 403 sends one fresh login and one retry.
//!
//! The secret id is kept in memory once read: with `--remove-secret-id-file-after-reading` the
//! file is gone after the first login, and a response-wrapping token unwraps only once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, RwLock, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{Answer, Conn, Exit, api_error};

/// Where Kubernetes mounts a pod's service-account token.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How often a JWT file is checked for a rotated token.
const JWT_POLL: Duration = Duration::from_secs(5);

/// The auth methods a client can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    Approle,
    Jwt,
    Kubernetes,
}

impl Method {
    /// The default mount, which is the method's name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Approle => "approle",
            Method::Jwt => "jwt",
            Method::Kubernetes => "kubernetes",
        }
    }
}

/// The auto-auth flags `agent` and `credential-process` share.
#[derive(Args, Debug, Clone, Default)]
pub struct AutoAuthArgs {
    /// Log in with this method instead of using KEYMINT_TOKEN/VAULT_TOKEN or ~/.keymint-token.
    #[arg(long, value_enum)]
    pub auth_method: Option<Method>,
    /// Where the method is mounted (default: the method's name).
    #[arg(long, requires = "auth_method")]
    pub auth_mount: Option<String>,
    /// The role to log in as (jwt, kubernetes).
    #[arg(long, requires = "auth_method")]
    pub auth_role: Option<String>,
    /// AppRole: the file holding the role id.
    #[arg(long, requires = "auth_method")]
    pub role_id_file: Option<PathBuf>,
    /// AppRole: the file holding the secret id (without it only the role id is sent).
    #[arg(long, requires = "auth_method")]
    pub secret_id_file: Option<PathBuf>,
    /// AppRole: delete the secret id file once read (Vault Agent does by default; keymint does
    /// not, so a restarted agent or the next credential-process run can log in again).
    #[arg(long, requires = "secret_id_file")]
    pub remove_secret_id_file_after_reading: bool,
    /// AppRole: the secret id file holds a response-wrapping token, unwrapped with
    /// sys/wrapping/unwrap (once: keep the agent running).
    #[arg(long, requires = "secret_id_file")]
    pub secret_id_wrapped: bool,
    /// JWT or Kubernetes: the file holding the JWT, read at every login (Kubernetes default:
    /// the pod's service-account token).
    #[arg(long, requires = "auth_method")]
    pub jwt_file: Option<PathBuf>,
}

/// What a login needs, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Approle { role_id_file: PathBuf, secret_id_file: Option<PathBuf>, remove: bool, wrapped: bool },
    Jwt { role: String, jwt_file: PathBuf },
}

/// A checked auto-auth configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub method: Method,
    pub mount: String,
    pub source: Source,
}

impl AutoAuthArgs {
    /// The configuration, `None` without `--auth-method`; flags that do not fit are refused.
    pub fn config(&self) -> Result<Option<Config>, Exit> {
        let Some(method) = self.auth_method else { return Ok(None) };
        let misplaced =
            |flag: &str| Exit::local(format!("{flag} does not apply to --auth-method {}", method.name()));
        let source = match method {
            Method::Approle => {
                if self.auth_role.is_some() {
                    return Err(misplaced("--auth-role"));
                }
                if self.jwt_file.is_some() {
                    return Err(misplaced("--jwt-file"));
                }
                let role_id_file = self
                    .role_id_file
                    .clone()
                    .ok_or_else(|| Exit::local("--auth-method approle needs --role-id-file"))?;
                Source::Approle {
                    role_id_file,
                    secret_id_file: self.secret_id_file.clone(),
                    remove: self.remove_secret_id_file_after_reading,
                    wrapped: self.secret_id_wrapped,
                }
            }
            Method::Jwt | Method::Kubernetes => {
                if self.role_id_file.is_some() {
                    return Err(misplaced("--role-id-file"));
                }
                if self.secret_id_file.is_some() {
                    return Err(misplaced("--secret-id-file"));
                }
                let role = self.auth_role.clone().filter(|r| !r.is_empty()).ok_or_else(|| {
                    Exit::local(format!("--auth-method {} needs --auth-role", method.name()))
                })?;
                let jwt_file = match (method, &self.jwt_file) {
                    (_, Some(f)) => f.clone(),
                    (Method::Kubernetes, None) => PathBuf::from(SERVICE_ACCOUNT_TOKEN),
                    _ => return Err(Exit::local("--auth-method jwt needs --jwt-file")),
                };
                Source::Jwt { role, jwt_file }
            }
        };
        let mount = self.auth_mount.clone().unwrap_or_else(|| method.name().to_owned());
        let mount = mount.trim_matches('/').trim_start_matches("auth/").to_owned();
        Ok(Some(Config { method, mount, source }))
    }
}

impl Config {
    /// Who logs in, as a cache key: method, mount and role (the role id for AppRole), never a
    /// secret.
    pub fn identity(&self) -> Result<String, Exit> {
        let role = match &self.source {
            Source::Approle { role_id_file, .. } => read_trimmed(role_id_file)?,
            Source::Jwt { role, .. } => role.clone(),
        };
        Ok(format!("auto-auth\n{}\n{}\n{role}", self.method.name(), self.mount))
    }
}

/// The login request's body: what Vault's own clients send for each method.
pub fn login_body(source: &Source, role_id: &str, secret: Option<&str>) -> Value {
    match source {
        Source::Approle { .. } => {
            let mut body = Map::new();
            body.insert("role_id".into(), json!(role_id));
            if let Some(s) = secret {
                body.insert("secret_id".into(), json!(s));
            }
            Value::Object(body)
        }
        Source::Jwt { role, .. } => json!({"role": role, "jwt": secret.unwrap_or_default()}),
    }
}

fn read_trimmed(file: &Path) -> Result<String, Exit> {
    let text =
        std::fs::read_to_string(file).map_err(|e| Exit::local(format!("reading {}: {e}", file.display())))?;
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err(Exit::local(format!("{} is empty", file.display())));
    }
    Ok(text)
}

/// A file whose content is re-read when it changes, remembered by digest only.
#[derive(Debug)]
pub struct WatchedFile {
    path: PathBuf,
    seen: Option<[u8; 32]>,
}

impl WatchedFile {
    pub fn new(path: PathBuf) -> WatchedFile {
        WatchedFile { path, seen: None }
    }

    /// The file's content, trimmed; it becomes the content [`WatchedFile::changed`] compares to.
    pub fn read(&mut self) -> Result<String, Exit> {
        let text = read_trimmed(&self.path)?;
        self.seen = Some(digest(&text));
        Ok(text)
    }

    /// Whether the file now holds something else than at the last read (a file that cannot be
    /// read is no change: the next login will say what is wrong).
    pub fn changed(&self) -> bool {
        match (self.seen, read_trimmed(&self.path)) {
            (Some(seen), Ok(now)) => digest(&now) != seen,
            _ => false,
        }
    }
}

fn digest(text: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// What to do next about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Renew,
    Login,
}

/// When (after the token was granted or renewed) to act, and how: `lease_secs` is what the
/// server granted, `asked_secs` what was asked (the login's own lease). `None`: the token never
/// expires. A renewal that granted less than asked means the max TTL is near: log in now,
/// while the old token still lives for the callers switching over.
pub fn schedule(lease_secs: u64, asked_secs: u64, renewable: bool) -> Option<(Duration, Step)> {
    if lease_secs == 0 {
        return None;
    }
    let two_thirds =
        Duration::from_millis(lease_secs.saturating_mul(2000) / 3).max(Duration::from_millis(200));
    if !renewable {
        return Some((two_thirds, Step::Login));
    }
    if lease_secs < asked_secs {
        return Some((Duration::ZERO, Step::Login));
    }
    Some((two_thirds, Step::Renew))
}

/// A keymint token; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientToken(String);

impl ClientToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientToken(***)")
    }
}

/// The token in use and what is known of its lease.
#[derive(Debug, Clone)]
struct Session {
    token: ClientToken,
    /// What the login granted: the increment renewals ask for.
    asked_secs: u64,
    /// The last grant (login or renewal) and when it came.
    lease_secs: u64,
    renewable: bool,
    granted: Instant,
}

/// What logins remember between them.
struct LoginState {
    secret: Option<WatchedFile>,
    /// The secret id read (or unwrapped) last, and the raw file content it came from.
    secret_id: Option<(String, [u8; 32])>,
    jwt: Option<WatchedFile>,
}

/// Logs in and keeps a token; shared by every task calling the server.
pub struct AutoAuth {
    conn: Conn,
    config: Config,
    session: RwLock<Option<Session>>,
    /// One login at a time: callers denied together share the next login.
    logins: Mutex<LoginState>,
    /// Counts logins, so holders of what an old token fetched can fetch again.
    generation: watch::Sender<u64>,
}

impl AutoAuth {
    pub fn new(conn: Conn, config: Config) -> AutoAuth {
        let jwt = match &config.source {
            Source::Jwt { jwt_file, .. } => Some(WatchedFile::new(jwt_file.clone())),
            Source::Approle { .. } => None,
        };
        let secret = match &config.source {
            Source::Approle { secret_id_file: Some(f), .. } => Some(WatchedFile::new(f.clone())),
            _ => None,
        };
        AutoAuth {
            conn,
            config,
            session: RwLock::new(None),
            logins: Mutex::new(LoginState { secret, secret_id: None, jwt }),
            generation: watch::channel(0).0,
        }
    }

    /// Changes each time a login replaces the token.
    pub fn logins(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The token in use, if a login succeeded.
    pub async fn token(&self) -> Option<ClientToken> {
        self.session.read().await.as_ref().map(|s| s.token.clone())
    }

    /// Seconds the current token had when granted (its login or last renewal).
    pub async fn lease_secs(&self) -> Option<u64> {
        self.session.read().await.as_ref().map(|s| s.lease_secs)
    }

    /// Logs in now, replacing the token; the server's whole answer is returned.
    pub async fn login(&self) -> Result<Answer, Exit> {
        let mut state = self.logins.lock().await;
        self.login_locked(&mut state).await
    }

    /// Logs in again unless someone did since `used` was handed out (after a 403).
    pub async fn login_after_denied(&self, used: Option<&ClientToken>) -> Result<(), Exit> {
        let mut state = self.logins.lock().await;
        if self.token().await.as_ref() != used {
            return Ok(());
        }
        self.login_locked(&mut state).await.map(|_| ())
    }

    async fn login_locked(&self, state: &mut LoginState) -> Result<Answer, Exit> {
        let (role_id, secret) = match &self.config.source {
            Source::Approle { role_id_file, .. } => {
                (read_trimmed(role_id_file)?, self.secret_id(state).await?)
            }
            Source::Jwt { .. } => {
                let jwt = state.jwt.as_mut().map(WatchedFile::read).transpose()?;
                (String::new(), jwt)
            }
        };
        let body = login_body(&self.config.source, &role_id, secret.as_deref());
        let path = format!("auth/{}/login", self.config.mount);
        let answer = self.conn.call_as(None, "POST", &path, Some(&body)).await?;
        if answer.status >= 400 {
            let url = format!("{}/v1/{path}", self.conn.addr());
            return Err(api_error("Error authenticating", "POST", &url, &answer));
        }
        let auth = &answer.body["auth"];
        let token = auth["client_token"].as_str().filter(|t| !t.is_empty());
        let token = token.ok_or_else(|| Exit::local("the login answer holds no auth.client_token"))?;
        let lease = auth["lease_duration"].as_u64().unwrap_or(0);
        *self.session.write().await = Some(Session {
            token: ClientToken(token.to_owned()),
            asked_secs: lease,
            lease_secs: lease,
            renewable: auth["renewable"].as_bool().unwrap_or(false),
            granted: Instant::now(),
        });
        self.generation.send_modify(|g| *g += 1);
        Ok(answer)
    }

    /// The secret id: read from its file when that changed, else the one read before.
    async fn secret_id(&self, state: &mut LoginState) -> Result<Option<String>, Exit> {
        let Source::Approle { secret_id_file: Some(file), remove, wrapped, .. } = &self.config.source else {
            return Ok(None);
        };
        let Some(watched) = state.secret.as_mut() else { return Ok(None) };
        let raw = match watched.read() {
            Ok(raw) => raw,
            // Removed after an earlier read: the secret id in memory is the one to use.
            Err(_) if state.secret_id.is_some() => {
                return Ok(state.secret_id.as_ref().map(|(s, _)| s.clone()));
            }
            Err(e) => return Err(e),
        };
        let raw_digest = digest(&raw);
        let secret = match &state.secret_id {
            Some((known, from)) if *from == raw_digest => known.clone(),
            _ if *wrapped => self.unwrap_secret_id(&raw).await?,
            _ => raw,
        };
        state.secret_id = Some((secret.clone(), raw_digest));
        if *remove && let Err(e) = std::fs::remove_file(file) {
            eprintln!("keymint: could not remove {}: {e}", file.display());
        }
        Ok(Some(secret))
    }

    /// Unwraps a response-wrapped secret id (`sys/wrapping/unwrap` with the wrapping token).
    async fn unwrap_secret_id(&self, wrapping_token: &str) -> Result<String, Exit> {
        let answer =
            self.conn.call_as(Some(wrapping_token), "POST", "sys/wrapping/unwrap", Some(&json!({}))).await?;
        if answer.status >= 400 {
            let url = format!("{}/v1/sys/wrapping/unwrap", self.conn.addr());
            return Err(api_error("Error unwrapping the secret id", "POST", &url, &answer));
        }
        answer.body["data"]["secret_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Exit::local("the unwrapped answer holds no data.secret_id"))
    }

    /// Renews the token by the lease its login granted; a refusal is an error.
    async fn renew(&self) -> Result<(), Exit> {
        let Some(current) = self.session.read().await.clone() else {
            return Err(Exit::local("no token to renew"));
        };
        let body = json!({"increment": current.asked_secs});
        let answer = self
            .conn
            .call_as(Some(current.token.expose()), "POST", "auth/token/renew-self", Some(&body))
            .await?;
        if answer.status >= 400 {
            let url = format!("{}/v1/auth/token/renew-self", self.conn.addr());
            return Err(api_error("Error renewing token", "POST", &url, &answer));
        }
        let lease = answer.body["auth"]["lease_duration"].as_u64().unwrap_or(0);
        let mut session = self.session.write().await;
        // A login may have replaced the token meanwhile: its lease is its own.
        if let Some(s) = session.as_mut().filter(|s| s.token == current.token) {
            s.lease_secs = lease;
            s.granted = Instant::now();
        }
        Ok(())
    }

    /// When the next renewal or login is due, and which.
    async fn next(&self) -> (Instant, Step) {
        match self.session.read().await.as_ref() {
            None => (Instant::now(), Step::Login),
            Some(s) => match schedule(s.lease_secs, s.asked_secs, s.renewable) {
                Some((after, step)) => (s.granted + after, step),
                // A token that never expires: only a JWT rotation calls for a new login.
                None => (Instant::now() + Duration::from_secs(86_400), Step::Renew),
            },
        }
    }

    /// Whether the JWT file holds another token than the one the last login sent.
    async fn jwt_rotated(&self) -> bool {
        self.logins.lock().await.jwt.as_ref().is_some_and(WatchedFile::changed)
    }

    /// Keeps a live token until `shutdown`: renews it, logs in again when it cannot be renewed
    /// or is about to run out, or when the JWT file changes; failures are retried with backoff.
    pub async fn maintain(&self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let (due, step) = self.next().await;
            let poll = matches!(self.config.source, Source::Jwt { .. });
            let wake = if poll { due.min(Instant::now() + JWT_POLL) } else { due };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
            }
            let outcome = if poll && self.jwt_rotated().await {
                self.login().await.map(|_| ())
            } else if Instant::now() < due {
                continue;
            } else {
                match step {
                    Step::Login => self.login().await.map(|_| ()),
                    // A refused renewal (past the max TTL, token revoked): log in instead.
                    Step::Renew => match self.renew().await {
                        Err(e) if e.code == 2 => self.login().await.map(|_| ()),
                        other => other,
                    },
                }
            };
            match outcome {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    eprintln!("keymint: auto-auth: {}", e.message);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Revokes the current token (when the agent stops: nothing outlives it).
    pub async fn revoke(&self) {
        if let Some(token) = self.token().await {
            let _ = self
                .conn
                .call_as(Some(token.expose()), "POST", "auth/token/revoke-self", Some(&json!({})))
                .await;
        }
    }
}

/// Where a client's token comes from: given (env, token file), or auto-auth.
pub enum Tokens {
    Fixed(Option<String>),
    Auto(std::sync::Arc<AutoAuth>),
}

impl Tokens {
    /// Calls the server with the current token; with auto-auth a 403 brings one new login and
    /// one retry.
    pub async fn call(
        &self,
        conn: &Conn,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, Exit> {
        match self {
            Tokens::Fixed(token) => conn.call_as(token.as_deref(), method, path, body).await,
            Tokens::Auto(auth) => {
                let used = auth.token().await;
                let answer = conn.call_as(used.as_ref().map(ClientToken::expose), method, path, body).await?;
                if answer.status != 403 {
                    return Ok(answer);
                }
                auth.login_after_denied(used.as_ref()).await?;
                let token = auth.token().await;
                conn.call_as(token.as_ref().map(ClientToken::expose), method, path, body).await
            }
        }
    }
}

#[cfg(test)]
mod tests;
