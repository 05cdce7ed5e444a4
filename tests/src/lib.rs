//! Black-box test harness for keymint: the real `keymint` binary against a private moto server
//! (IAM/STS emulator) and private storage (SQLite file or PostgreSQL database) per test.
//!
//! Everything listens on 127.0.0.1 only. Every child process is killed when its handle drops,
//! and a failing test prints the server output it captured. The suite is meant to be run through
//! `scripts/test.sh`, which provides moto (`MOTO_SERVER`) and PostgreSQL
//! (`KEYMINT_TEST_POSTGRES_URL`).
//!
//! For the auth methods it also stands in for the identity providers: a local OIDC issuer
//! ([`Issuer`], with claim builders for GitHub, GitLab and Kubernetes tokens) and a fake
//! Kubernetes API answering TokenReviews ([`TokenReviewServer`]).

// A test harness fails by panicking: `expect` with a message is the error handling here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod balancer;
mod client;
mod iam;
mod k8s;
mod keymint;
mod moto;
mod oidc;
mod pg_cluster;
mod process;
mod proxy;
mod serve;
mod storage;

pub use balancer::Balancer;
pub use client::{Auth, Client, Resp};
pub use iam::IamUser;
pub use k8s::{RecordedReview, TokenReviewServer};
pub use keymint::{Keymint, ROOT_TOKEN, dev_server_command, keymint_binary};
pub use moto::{
    ADMIN_BOOTSTRAP_CALLS, AwsCall, DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, MOTO_ACCOUNT_ID, Moto, aws_cli,
    python,
};
pub use oidc::claims::{
    DEFAULT_LIFETIME_SECS, github_claims, gitlab_claims, kubernetes_claims, unix_now,
    with_github_environment, with_times, without_claims,
};
pub use oidc::{Alg, Issuer, decode_json};
pub use pg_cluster::PgCluster;
pub use process::{
    ADDRESS_MARKER, OutputLog, STARTUP_DEADLINE, announced_address, each_line, eventually, free_port,
    local_http, poll, workspace_root,
};
pub use proxy::{Fault, FaultProxy, Outcome, ProxiedCall, is_iam_write};
pub use reqwest::{Method, StatusCode};
pub use serde_json::{Value, json};
pub use storage::{Backend, POSTGRES_URL_VAR, Storage, psql};

/// One moto, one keymint (dev mode, root token `root`) on fresh storage of one backend.
/// Fields drop in order: keymint first, so its database goes away after it.
pub struct TestEnv {
    pub km: Keymint,
    pub moto: Moto,
    pub storage: Storage,
}

impl TestEnv {
    pub async fn start(backend: Backend) -> TestEnv {
        let storage = Storage::new(backend);
        let (moto, km) = tokio::join!(Moto::start(), Keymint::start(storage.url()));
        TestEnv { km, moto, storage }
    }

    pub fn backend(&self) -> Backend {
        self.storage.backend()
    }

    /// Writes `aws/config/root` pointing at this env's moto and asserts the verified 200.
    pub async fn configure_root(&self) -> Resp {
        self.configure_mount_root("aws", &self.moto).await
    }

    /// Writes `<mount>/config/root` pointing at `moto` and asserts the verified 200.
    pub async fn configure_mount_root(&self, mount: &str, moto: &Moto) -> Resp {
        self.km.post(&format!("{mount}/config/root"), root_config(moto)).await.expect(200)
    }
}

/// Runs a real AWS consumer (boto3, the AWS CLI, the Rust SDK) in a clean environment: PATH,
/// HOME, no instance metadata, and `vars`, so the credentials it finds are the ones the test
/// gives it. It must succeed; its trimmed standard output is returned.
pub async fn run_consumer(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    home: &std::path::Path,
    vars: &[(&str, String)],
) -> String {
    let program = program.as_ref().to_owned();
    let out = tokio::process::Command::new(&program)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(out.status.success(), "{} failed: {}", program.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The dummy root keys [`root_config`] gives keymint: distinct from the harness's own
/// [`DUMMY_ACCESS_KEY`], so [`Moto::calls`] tells keymint's calls apart.
pub const ROOT_ACCESS_KEY: &str = "keymint-test-root";
pub const ROOT_SECRET_KEY: &str = "keymint-test-root-secret";

/// A `config/root` body for `moto`: dummy static keys, both endpoints, us-east-1.
pub fn root_config(moto: &Moto) -> Value {
    root_config_at(&moto.url())
}

/// A `config/root` body sending keymint's AWS calls through `proxy` (to its moto).
pub fn root_config_via(proxy: &FaultProxy) -> Value {
    root_config_at(&proxy.url())
}

fn root_config_at(endpoint: &str) -> Value {
    json!({
        "access_key": ROOT_ACCESS_KEY,
        "secret_key": ROOT_SECRET_KEY,
        "region": "us-east-1",
        "iam_endpoint": endpoint,
        "sts_endpoint": endpoint,
    })
}

/// A one-statement S3 read policy: the inline policy of the tests' `iam_user` roles.
pub const S3_READ_POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

/// Writes `aws/roles/<name>`: `iam_user`, [`S3_READ_POLICY`] inline, users under `user_path`.
pub async fn write_iam_user_role(km: &Keymint, name: &str, user_path: &str) {
    km.post(
        &format!("aws/roles/{name}"),
        json!({"credential_type": "iam_user", "policy_document": S3_READ_POLICY, "user_path": user_path}),
    )
    .await
    .expect(204);
}

/// The installation id a server tags its IAM users with (reported as `cluster_id`).
pub async fn installation_id(km: &Keymint) -> String {
    let health = km.anonymous().get("sys/health").await.expect(200);
    health.json()["cluster_id"].as_str().expect("cluster_id").to_owned()
}

/// Asserts a Vault lease id: `<prefix>` (e.g. `aws/creds/deploy/`) then 24 base62 characters.
#[track_caller]
pub fn assert_lease_id(lease_id: &Value, prefix: &str) {
    let id = lease_id.as_str().unwrap_or_else(|| panic!("lease_id is not a string: {lease_id}"));
    let suffix =
        id.strip_prefix(prefix).unwrap_or_else(|| panic!("lease_id {id:?} does not start with {prefix:?}"));
    assert!(
        suffix.len() == 24 && suffix.chars().all(|c| c.is_ascii_alphanumeric()),
        "lease_id {id:?}: expected 24 base62 characters after {prefix:?}"
    );
}

/// Runs async test bodies on both storage backends. For each `name` given, an
/// `async fn name(backend: Backend)` must exist beside the call; the macro adds the tests
/// `name::sqlite` and `name::postgres` (filter with `cargo test name` or `cargo test sqlite`).
/// The PostgreSQL variant fails, never skips, when `KEYMINT_TEST_POSTGRES_URL` is unset.
///
/// ```ignore
/// async fn roles_persist(backend: Backend) {
///     let env = TestEnv::start(backend).await;
///     // …
/// }
/// both_backends!(roles_persist);
/// ```
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        // A module and a function may share a name: they live in different namespaces.
        mod $name {
            #[::tokio::test]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }

            #[::tokio::test]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
            }
        }
    )+};
}
