//! The real `keymint` binary, started in dev mode on a port of its own choosing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::client::{Auth, Client, Resp};
use crate::process::{
    ADDRESS_MARKER, OutputLog, STARTUP_DEADLINE, announced_address, eventually, local_http, workspace_root,
};
use crate::storage::{Backend, Storage};

/// The root token every harness-started server is given.
pub const ROOT_TOKEN: &str = "root";

/// A running keymint server. Dropping it kills the process; if the test is panicking, the
/// server's output is printed so the failure shows what the server said.
pub struct Keymint {
    child: Option<Child>,
    base: String,
    storage: String,
    /// Production mode's config file ([`Keymint::start_with_config`]); dev mode when `None`.
    config: Option<ConfigFile>,
    /// The root token: [`ROOT_TOKEN`] in dev mode, the initial one printed in production mode.
    root_token: String,
    extra_args: Vec<String>,
    /// Environment variables set for the server process (on restarts too).
    extra_env: Vec<(String, String)>,
    log: OutputLog,
    client: Client,
    /// Storage this handle owns (see [`Keymint::start_on`]); dropped after the process is killed.
    _owned_storage: Option<Storage>,
}

impl Keymint {
    /// `keymint server --dev --dev-root-token-id root --dev-listen-address 127.0.0.1:0
    /// --storage <storage_url>`, waiting until `sys/health` answers 200.
    pub async fn start(storage_url: &str) -> Keymint {
        Self::start_with(storage_url, &[]).await
    }

    /// Like [`Keymint::start`] with extra command-line arguments appended.
    pub async fn start_with(storage_url: &str, extra_args: &[&str]) -> Keymint {
        Self::launch(storage_url.to_owned(), extra_args, None).await
    }

    /// Like [`Keymint::start`] with these environment variables set for the server.
    pub async fn start_with_env(storage_url: &str, env: &[(&str, &str)]) -> Keymint {
        let mut km = Self::unstarted(storage_url.to_owned(), &[], None);
        km.extra_env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        km.spawn().await;
        km
    }

    /// `keymint server --config FILE` (production mode) on `storage_url`, plain HTTP on a port
    /// of its choosing: `listener` is added to the file's `[listener]` section and `sections`
    /// (whole TOML sections) follow it. The seal key is made here, for this server only; the
    /// client's token is the initial root token the server prints. Settings that only a config
    /// file gives (`[listener] request_timeout`, the `x_forwarded_for_*` rules) need this mode.
    pub async fn start_with_config(storage_url: &str, listener: &str, sections: &str) -> Keymint {
        let mut km = Self::unstarted(storage_url.to_owned(), &[], None);
        let dir =
            tempfile::Builder::new().prefix("keymint-config-").tempdir().expect("a dir for the config file");
        let path = dir.path().join("keymint.toml");
        let text = format!(
            "[listener]\naddress = \"127.0.0.1:0\"\ntls_disable = true\n{listener}\n\
             [storage]\nurl = \"{storage_url}\"\n[seal]\nkey_env = \"{SEAL_KEY_VAR}\"\n{sections}\n"
        );
        std::fs::write(&path, text).expect("write the config file");
        let seal_key: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
        km.extra_env.push((SEAL_KEY_VAR.to_owned(), seal_key));
        km.config = Some(ConfigFile { path, _dir: dir });
        km.spawn().await;
        km
    }

    /// keymint on fresh storage of `backend` that lives as long as this handle: for tests
    /// that need no moto.
    pub async fn start_on(backend: Backend) -> Keymint {
        let storage = Storage::new(backend);
        Self::launch(storage.url().to_owned(), &[], Some(storage)).await
    }

    async fn launch(storage_url: String, extra_args: &[&str], owned: Option<Storage>) -> Keymint {
        let mut km = Self::unstarted(storage_url, extra_args, owned);
        km.spawn().await;
        km
    }

    fn unstarted(storage_url: String, extra_args: &[&str], owned: Option<Storage>) -> Keymint {
        Keymint {
            child: None,
            base: String::new(),
            storage: storage_url,
            config: None,
            root_token: ROOT_TOKEN.to_owned(),
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            extra_env: Vec::new(),
            log: OutputLog::default(),
            client: Client::new("http://invalid", Auth::None),
            _owned_storage: owned,
        }
    }

    async fn spawn(&mut self) {
        let bin = keymint_binary();
        let mut command = match &self.config {
            None => dev_server_command(&bin, ROOT_TOKEN, &self.storage),
            Some(config) => {
                let mut cmd = server_command(&bin);
                cmd.arg("--config").arg(&config.path);
                cmd
            }
        };
        let mut child = command
            .args(&self.extra_args)
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));

        // The stdout reader hands over the address from the first "Api Address:" line (and the
        // initial root token, printed before it in production mode) and keeps draining;
        // dropping the sender (EOF first) tells us the process ended without one.
        let (tx, rx) = tokio::sync::oneshot::channel::<(String, Option<String>)>();
        let mut tx = Some(tx);
        let mut initial_token = None;
        let stdout = self.log.drain(child.stdout.take().expect("piped stdout"), "", move |line| {
            if let Some(token) = line.strip_prefix(INITIAL_TOKEN_MARKER) {
                initial_token = Some(token.trim().to_owned());
            }
            if let Some(url) = announced_address(line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send((url.to_owned(), initial_token.take()));
            }
        });
        let stderr = self.log.drain(child.stderr.take().expect("piped stderr"), "[stderr] ", |_| {});
        self.child = Some(child);

        // On failure, Drop prints the server's output (it runs while the test panics).
        let announced = tokio::time::timeout(STARTUP_DEADLINE, rx).await;
        let base = match announced {
            Ok(Ok((url, token))) => {
                // Printed on the first start only; a restart keeps the token it had.
                if let Some(token) = token {
                    self.root_token = token;
                }
                url
            }
            Ok(Err(_closed)) => {
                let status = self.child.take().and_then(|mut c| c.wait().ok());
                // Exited, so both pipes are closed: collect its last words before reporting.
                let _ = (stdout.join(), stderr.join());
                let status = status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
                panic!("keymint exited ({status}) without printing {ADDRESS_MARKER:?}");
            }
            Err(_elapsed) => {
                panic!("keymint printed no {ADDRESS_MARKER:?} line within {STARTUP_DEADLINE:?}")
            }
        };
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "keymint announced {base:?}, expected http://127.0.0.1:PORT"
        );
        self.base = base;
        self.client = Client::new(&self.base, Auth::VaultToken(self.root_token.clone()));
        self.wait_healthy().await;
    }

    async fn wait_healthy(&mut self) {
        let http = local_http();
        // A config file may hold x_forwarded_for rules that refuse a request without the
        // header: keymint's readiness probe is answered whatever they say.
        let probe = if self.config.is_some() { "sys/ready" } else { "sys/health" };
        let health = format!("{}/v1/{probe}", self.base);
        let child = &mut self.child;
        eventually("keymint sys/health to answer 200", STARTUP_DEADLINE, async || {
            if let Some(Ok(Some(status))) = child.as_mut().map(Child::try_wait) {
                panic!("keymint exited ({status}) before it was healthy");
            }
            let resp = http.get(&health).send().await.ok()?;
            (resp.status() == 200).then_some(())
        })
        .await;
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> &str {
        &self.base
    }

    pub fn storage_url(&self) -> &str {
        &self.storage
    }

    /// SIGKILL: no shutdown handler runs, as in a crash or an OOM kill.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (up to `deadline`) for the process to end: the graceful shutdown.
    /// Returns the exit status; panics if it outlives the deadline. Async, so what the test
    /// runs on its own runtime (moto's fault proxy) keeps serving the server meanwhile.
    pub async fn terminate(&mut self, deadline: std::time::Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("keymint is running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait for keymint") {
                return status;
            }
            if started.elapsed() > deadline {
                let _ = child.kill();
                panic!("keymint did not stop within {deadline:?} of SIGTERM");
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// kill -9, then start again on the same storage with the same arguments. The port may
    /// change; clients from [`Keymint::client`] taken before the restart point at the old one.
    pub async fn restart(&mut self) {
        self.kill9();
        self.log.push("---- killed with SIGKILL; restarting ----".to_owned());
        self.spawn().await;
    }

    /// Everything the server printed so far (all runs).
    pub fn logs(&self) -> String {
        self.log.text()
    }

    /// A client with the root token.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client sending `X-Vault-Token: <token>`.
    pub fn with_token(&self, token: &str) -> Client {
        self.client.with_token(token)
    }

    /// A client sending no token at all.
    pub fn anonymous(&self) -> Client {
        self.client.with_auth(Auth::None)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.client.get(path).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.client.post(path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.client.put(path, body).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.client.delete(path).await
    }

    pub async fn list(&self, path: &str) -> Resp {
        self.client.list(path).await
    }
}

impl Drop for Keymint {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let at = if self.base.is_empty() { "(never listened)" } else { &self.base };
            eprintln!("--- keymint {at}, storage {}, output ---\n{}", self.storage, self.log.text());
        }
    }
}

/// `bin server --dev` with root token `token` on `storage`, listening on a port of its choosing
/// on 127.0.0.1 (read it back with [`crate::announced_address`]), stdout and stderr piped.
pub fn dev_server_command(bin: &Path, token: &str, storage: &str) -> Command {
    let mut cmd = server_command(bin);
    cmd.args(["--dev", "--dev-root-token-id", token])
        .args(["--dev-listen-address", "127.0.0.1:0"])
        .args(["--storage", storage]);
    cmd
}

/// Where production mode's config file asks for the seal key.
const SEAL_KEY_VAR: &str = "KEYMINT_TEST_SEAL_KEY";

/// What production mode prints before the initial root token.
const INITIAL_TOKEN_MARKER: &str = "Initial Root Token:";

/// A production-mode server's config file, deleted with the handle.
struct ConfigFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// `bin server`, in an environment fit for tests, stdout and stderr piped.
fn server_command(bin: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("server")
        // Never wait on an instance metadata service that does not exist here, and call
        // the loopback moto directly, never through a proxy of the environment.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `$KEYMINT_BIN`, else `<target>/debug/keymint`, brought up to date once per test process.
pub fn keymint_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEYMINT_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    // Built once per test process, whether or not a binary exists: an old binary left by an
    // earlier build would test yesterday's code. An up-to-date build takes a second.
    static BUILT: Mutex<bool> = Mutex::new(false);
    let root = workspace_root();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(|dir| root.join(dir)).unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug/keymint");
    // One build at a time; the others wait and then find it done.
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if !*built {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            // The same command as scripts/test.sh: building `-p keymint-cli` alone would
            // unify features differently and rebuild much of the dependency graph.
            .args(["build", "--workspace", "--bins"])
            .current_dir(&root)
            .stdin(Stdio::null())
            .status()
            .expect("run cargo build for the keymint binary");
        assert!(status.success(), "cargo build --workspace --bins failed");
        assert!(bin.is_file(), "cargo build succeeded but {} is missing", bin.display());
        *built = true;
    }
    bin
}
