//! A private moto server (IAM and STS emulator) per test, and AWS SDK clients pointed at it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::config::timeout::TimeoutConfig;
use aws_sdk_iam::config::{BehaviorVersion, Region};
use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;

use crate::process::{OutputLog, STARTUP_DEADLINE, eventually, free_port, local_http, workspace_root};

/// The account moto reports for everything unless told otherwise.
pub const MOTO_ACCOUNT_ID: &str = "123456789012";

/// How many calls [`Moto::bootstrap_admin`] makes: the `INITIAL_NO_AUTH_ACTION_COUNT` that
/// switches moto's IAM enforcement on right after it.
pub const ADMIN_BOOTSTRAP_CALLS: &str = "3";

/// Dummy root credentials for the harness's own SDK clients. moto accepts any key unless auth
/// is switched on; these are obviously not real AWS keys.
pub const DUMMY_ACCESS_KEY: &str = "testing";
pub const DUMMY_SECRET_KEY: &str = "testing";

/// A running `moto_server`, killed when dropped. moto's request recorder is on, so
/// [`Moto::calls`] shows every AWS API call made to it, with all parameters, including the
/// ones moto's model ignores (e.g. `PermissionsBoundary` on `CreateUser`).
pub struct Moto {
    child: Child,
    port: u16,
    log: OutputLog,
    dir: TempDir,
}

/// One AWS query-protocol call (IAM or STS) as moto received it.
#[derive(Clone, Debug)]
pub struct AwsCall {
    /// `CreateUser`, `AssumeRole`, …
    pub action: String,
    /// Form and query parameters in order, e.g. `("PolicyArns.member.1.arn", "arn:…")`.
    pub params: Vec<(String, String)>,
    /// The access key id the call was signed with (from `Authorization`).
    pub access_key: Option<String>,
    /// The session token sent with the call (`X-Amz-Security-Token`), if any.
    pub session_token: Option<String>,
}

impl AwsCall {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Moto {
    /// Starts moto on a free port of 127.0.0.1 and waits until it answers HTTP.
    pub async fn start() -> Moto {
        Self::start_with_env(&[]).await
    }

    /// Like [`Moto::start`], with extra environment for the server, e.g.
    /// `("INITIAL_NO_AUTH_ACTION_COUNT", "5")` to switch signature checking on after 5 calls.
    pub async fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let bin = moto_binary();
        // The port is free when picked but another process may take it before moto binds it;
        // that shows as an early exit with "Address already in use", and we pick again.
        for _ in 0..5 {
            let port = free_port();
            let dir = tempfile::Builder::new()
                .prefix("keymint-moto-")
                .tempdir()
                .expect("create a temp dir for moto's recording");
            let mut cmd = Command::new(&bin);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_ENABLE_RECORDING", "True")
                .env("MOTO_RECORDER_FILEPATH", dir.path().join(RECORDING))
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot run moto server {}: {e}. Run the suite through scripts/test.sh (it \
                     installs moto[server] into .venv), or set MOTO_SERVER",
                    bin.display()
                )
            });
            let log = OutputLog::default();
            let readers = [
                log.drain(child.stdout.take().expect("piped stdout"), "", |_| {}),
                log.drain(child.stderr.take().expect("piped stderr"), "", |_| {}),
            ];

            let mut moto = Moto { child, port, log, dir };
            if moto.wait_ready().await {
                return moto;
            }
            // It exited: its pipes are closed, so the readers finish with the whole message.
            for reader in readers {
                let _ = reader.join();
            }
            if !moto.log.contains("already in use") {
                panic!("moto server exited during startup:\n{}", moto.log.text());
            }
        }
        panic!("moto server could not bind a free port after 5 attempts");
    }

    /// True once moto answers HTTP; false if it exited first.
    async fn wait_ready(&mut self) -> bool {
        let http = local_http();
        let probe_url = format!("{}/moto-api/", self.url());
        let child = &mut self.child;
        eventually("moto server to answer HTTP", STARTUP_DEADLINE, async || {
            if let Ok(Some(_status)) = child.try_wait() {
                return Some(false);
            }
            // Only moto's own answer counts: a test's local server (an OIDC issuer, a
            // TokenReview server) may have taken the port between its pick and moto's bind, and
            // it answers HTTP too (404 here); then moto exits "already in use" and we pick again.
            let probe = http.get(&probe_url).timeout(Duration::from_secs(2));
            let answer = probe.send().await.ok()?;
            answer.status().is_success().then_some(true)
        })
        .await
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every IAM/STS call moto has received so far, oldest first, optionally only those with
    /// `Action=<action>`. Includes the harness's own calls (signed with [`DUMMY_ACCESS_KEY`]).
    pub fn calls(&self, action: Option<&str>) -> Vec<AwsCall> {
        let recording = match std::fs::read_to_string(self.dir.path().join(RECORDING)) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => panic!("read moto's recording: {e}"),
        };
        recording
            .lines()
            .filter_map(parse_recorded_call)
            .filter(|call| action.is_none_or(|a| call.action == a))
            .collect()
    }

    /// The file moto records every call to, one JSON object a line (`method`, `url`, `headers`,
    /// `body`, `body_encoded`): for clients other than [`Moto::calls`], such as the browser suite.
    pub fn recording_path(&self) -> std::path::PathBuf {
        self.dir.path().join(RECORDING)
    }

    /// What moto logged so far (one line per request).
    pub fn logs(&self) -> String {
        self.log.text()
    }

    /// Makes IAM user `user`, allowed everything, and returns an access key of it: (key id,
    /// secret). Exactly [`ADMIN_BOOTSTRAP_CALLS`] calls with the dummy keys, so on a moto started
    /// with `INITIAL_NO_AUTH_ACTION_COUNT` set to that number, enforcement starts right after
    /// and this user is the only one who can act.
    pub async fn bootstrap_admin(&self, user: &str) -> (String, String) {
        let iam = self.iam();
        iam.create_user().user_name(user).send().await.expect("CreateUser for the administrator");
        let everything = serde_json::json!({"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
        iam.put_user_policy()
            .user_name(user)
            .policy_name("everything")
            .policy_document(everything.to_string())
            .send()
            .await
            .expect("PutUserPolicy for the administrator");
        let out = iam.create_access_key().user_name(user).send().await.expect("CreateAccessKey");
        let key = out.access_key.expect("CreateAccessKey returns a key");
        (key.access_key_id, key.secret_access_key)
    }

    /// An IAM client with the harness's dummy credentials.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        iam_client(&self.url(), RetryConfig::standard())
    }

    /// An STS client with the harness's dummy credentials.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        self.sts_client(dummy_credentials())
    }

    /// An STS client signing with the given (e.g. freshly minted) keys.
    pub fn sts_with(
        &self,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
    ) -> aws_sdk_sts::Client {
        self.sts_client(minted(access_key, secret_key, session_token))
    }

    /// The ARN that `GetCallerIdentity` reports for the given keys: the proof that minted keys
    /// belong to the user or role they claim to.
    pub async fn caller_arn(
        &self,
        access_key: &str,
        secret_key: &str,
        session_token: Option<&str>,
    ) -> String {
        let out = self
            .sts_with(access_key, secret_key, session_token)
            .get_caller_identity()
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetCallerIdentity with minted keys failed: {e:?}"));
        out.arn().expect("GetCallerIdentity returns an Arn").to_owned()
    }

    fn sts_client(&self, creds: Credentials) -> aws_sdk_sts::Client {
        sts_client(&self.url(), creds, RetryConfig::standard())
    }
}

/// An IAM client for `url` with the harness's dummy credentials.
pub(crate) fn iam_client(url: &str, retry: RetryConfig) -> aws_sdk_iam::Client {
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(dummy_credentials())
        .timeout_config(sdk_timeouts())
        .retry_config(retry)
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// An STS client for `url` signing with `creds`.
pub(crate) fn sts_client(url: &str, creds: Credentials, retry: RetryConfig) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(creds)
        .timeout_config(sdk_timeouts())
        .retry_config(retry)
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// Credentials for [`sts_client`] from minted keys.
pub(crate) fn minted(access_key: &str, secret_key: &str, session_token: Option<&str>) -> Credentials {
    Credentials::new(access_key, secret_key, session_token.map(str::to_owned), None, "keymint-tests-minted")
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- moto {} (last lines) ---\n{}", self.url(), self.log.tail(40));
        }
    }
}

const RECORDING: &str = "calls.jsonl";

/// One line of moto's recording: `{"method", "url", "headers", "body", "body_encoded"}`.
/// `None` for requests that are not query-protocol calls (no `Action`), such as S3's.
fn parse_recorded_call(line: &str) -> Option<AwsCall> {
    // A line that is not JSON would mean lost calls; better to fail than to assert on a gap.
    let entry: Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("moto's recording has a malformed line ({e}): {line}"));
    let mut body = entry["body"].as_str().unwrap_or_default().as_bytes().to_vec();
    if entry["body_encoded"].as_bool() == Some(true) {
        body = base64::engine::general_purpose::STANDARD
            .decode(&body)
            .unwrap_or_else(|e| panic!("moto recorded a body that is not base64 ({e}): {line}"));
    }
    let url = entry["url"].as_str().unwrap_or_default();
    let headers = entry["headers"].as_object()?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_owned)
    };
    parse_call(url, &body, &header)
}

/// A query-protocol call from its URL (or path and query), body and headers (looked up by
/// lower-case name); `None` without an `Action`.
pub(crate) fn parse_call(url: &str, body: &[u8], header: &dyn Fn(&str) -> Option<String>) -> Option<AwsCall> {
    let query = url.split_once('?').map(|(_, q)| q.as_bytes()).unwrap_or_default();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query)
        .chain(url::form_urlencoded::parse(body))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let action = params.iter().find(|(k, _)| k == "Action")?.1.clone();
    // "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request, …"
    let access_key = header("authorization")
        .and_then(|auth| auth.split_once("Credential=")?.1.split('/').next().map(str::to_owned));
    let session_token = header("x-amz-security-token");
    Some(AwsCall { action, params, access_key, session_token })
}

fn dummy_credentials() -> Credentials {
    Credentials::new(DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, None, None, "keymint-tests")
}

fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(30))
        .build()
}

/// The Python beside moto (its virtualenv has boto3): real AWS SDK consumers for the tests.
pub fn python() -> PathBuf {
    let moto = moto_binary();
    match moto.parent() {
        Some(dir) if dir.join("python").is_file() => dir.join("python"),
        _ => PathBuf::from("python3"),
    }
}

/// The AWS CLI beside moto (scripts/test.sh installs it into the same virtualenv).
pub fn aws_cli() -> PathBuf {
    match moto_binary().parent() {
        Some(dir) if dir.join("aws").is_file() => dir.join("aws"),
        _ => PathBuf::from("aws"),
    }
}

/// `$MOTO_SERVER`, else the repo's `.venv/bin/moto_server`, else `moto_server` on PATH.
fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let venv = workspace_root().join(".venv/bin/moto_server");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("moto_server")
}
