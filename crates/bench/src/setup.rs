//! What the issuance and throughput benchmarks share: the AWS stand-in (moto, or the instant
//! upstream), the IAM fixtures the roles name, and keymint servers configured against it. The
//! direct client they are compared to is in `direct.rs`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::direct::iam_client;
use crate::instant::{self, InstantUpstream};
use crate::{Moto, Server, TOKEN};

/// The `assumed_role` role measured through `aws/sts/ROLE`.
pub const STS_ROLE: &str = "bench-sts";
/// The `iam_user` role measured through `aws/creds/ROLE`.
pub const USER_ROLE: &str = "bench-user";
pub const POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const TRUST_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
/// The `iam_tags` of the `iam_user` role, also what the direct client tags its users with.
pub const TAGS: [(&str, &str); 2] = [("team", "bench"), ("purpose", "issuance")];

/// Which AWS stand-in to measure against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UpstreamKind {
    /// moto_server, one Python process: realistic call handling, but slow and single-threaded.
    Moto,
    /// The bench's own canned-answer server (see `instant.rs`): measures keymint's own cost.
    Instant,
}

impl UpstreamKind {
    pub fn name(self) -> &'static str {
        match self {
            UpstreamKind::Moto => "moto",
            UpstreamKind::Instant => "instant",
        }
    }
}

/// The credential requests measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// `GET aws/sts/bench-sts` (an `assumed_role` role): one AssumeRole.
    Sts,
    /// `GET aws/creds/bench-user` (an `iam_user` role): seven IAM calls.
    #[value(name = "iam_user")]
    IamUser,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Sts => "sts",
            Workload::IamUser => "iam_user",
        }
    }

    /// The keymint path that issues it.
    pub fn path(self) -> String {
        match self {
            Workload::Sts => format!("aws/sts/{STS_ROLE}"),
            Workload::IamUser => format!("aws/creds/{USER_ROLE}"),
        }
    }

    /// What the direct client does instead.
    pub fn direct_label(self) -> &'static str {
        match self {
            Workload::Sts => "direct: AssumeRole (aws-sdk-sts)",
            Workload::IamUser => "direct: 7 calls in a row (aws-sdk-iam)",
        }
    }
}

/// How the benchmarks pick and start their upstream.
#[derive(Args)]
pub struct UpstreamArgs {
    /// The AWS stand-in.
    #[arg(long, value_enum, default_value = "moto")]
    pub upstream: UpstreamKind,
    /// The moto_server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    pub moto_server: PathBuf,
    /// With the instant upstream: milliseconds each AWS call takes (a model of AWS's round
    /// trip; 0 answers at once).
    #[arg(long, default_value_t = 0)]
    pub upstream_latency_ms: u64,
    /// Run each keymint on a fresh database of this PostgreSQL server instead of a SQLite file
    /// of its own: a URL whose user may create databases, e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres. The bench creates one database per keymint
    /// binary and drops it when done.
    #[arg(long)]
    pub postgres: Option<String>,
}

impl UpstreamArgs {
    /// How tables and plot titles name the upstream (and the storage, unless SQLite):
    /// `moto upstream`, `instant+30ms upstream`, `instant upstream, keymint on PostgreSQL`.
    pub fn describe(&self) -> String {
        let upstream = self.upstream_name();
        match self.postgres {
            Some(_) => format!("{upstream} upstream, keymint on PostgreSQL"),
            None => format!("{upstream} upstream"),
        }
    }

    fn upstream_name(&self) -> String {
        match (self.upstream, self.upstream_latency_ms) {
            (UpstreamKind::Instant, ms) if ms > 0 => format!("instant+{ms}ms"),
            (kind, _) => kind.name().to_owned(),
        }
    }

    /// The same for file names: `moto`, `instant`, `instant-30ms`, `instant-postgres`.
    pub fn slug(&self) -> String {
        let upstream = self.upstream_name().replace('+', "-");
        match self.postgres {
            Some(_) => format!("{upstream}-postgres"),
            None => upstream,
        }
    }
}

pub enum Upstream {
    Moto(Moto),
    Instant(InstantUpstream),
}

/// The IAM objects the roles name.
#[derive(Clone, Debug)]
pub struct Fixtures {
    pub role_arn: String,
    pub policy_arns: Vec<String>,
    pub group: String,
}

impl Upstream {
    pub async fn start(opts: &UpstreamArgs) -> Result<Upstream> {
        Ok(match opts.upstream {
            UpstreamKind::Moto if opts.upstream_latency_ms > 0 => {
                bail!("--upstream-latency-ms is for the instant upstream; moto takes its own time")
            }
            UpstreamKind::Moto => Upstream::Moto(Moto::start(&opts.moto_server).await?),
            UpstreamKind::Instant => {
                Upstream::Instant(InstantUpstream::start(opts.upstream_latency_ms).await?)
            }
        })
    }

    pub fn url(&self) -> String {
        match self {
            Upstream::Moto(m) => m.url(),
            Upstream::Instant(i) => i.url().to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        match self {
            Upstream::Moto(m) => m.pid(),
            Upstream::Instant(i) => i.pid(),
        }
    }

    /// The role, managed policies and group the roles name: made in moto, canned for the
    /// instant upstream (which keeps nothing).
    pub async fn fixtures(&self) -> Result<Fixtures> {
        if let Upstream::Instant(_) = self {
            return Ok(Fixtures {
                role_arn: instant::ROLE_ARN.into(),
                policy_arns: instant::POLICY_ARNS.iter().map(|a| a.to_string()).collect(),
                group: instant::GROUP.into(),
            });
        }
        let iam = iam_client(&self.url());
        let role = iam
            .create_role()
            .role_name("bench-assumed")
            .assume_role_policy_document(TRUST_POLICY)
            .send()
            .await?;
        let mut policy_arns = Vec::new();
        for name in ["bench-a", "bench-b"] {
            let out = iam.create_policy().policy_name(name).policy_document(POLICY).send().await?;
            policy_arns.push(out.policy.and_then(|p| p.arn).context("CreatePolicy returned no ARN")?);
        }
        iam.create_group().group_name(instant::GROUP).send().await?;
        Ok(Fixtures {
            role_arn: role.role.context("CreateRole returned no role")?.arn,
            policy_arns,
            group: instant::GROUP.into(),
        })
    }
}

/// A keymint binary under test, running on its own SQLite file or PostgreSQL database,
/// configured against the upstream with the two roles. Fields drop in order: the server
/// stops before its storage goes.
pub struct Keymint {
    /// How tables and plots name it.
    pub label: String,
    pub server: Server,
    http: reqwest::Client,
    /// Where it keeps its state, removed on drop: a SQLite file's directory, or a database.
    _storage: (Option<tempfile::TempDir>, Option<PgDatabase>),
}

/// A database the bench created on a PostgreSQL server, dropped on drop.
pub(crate) struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    /// Creates `name` (dropping a leftover of that name first); returns it with its URL.
    pub(crate) async fn create(admin_url: &str, name: &str) -> Result<(PgDatabase, String)> {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .with_context(|| format!("connecting to {admin_url}"))?;
        conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
        conn.close().await?;
        let db = PgDatabase { admin_url: admin_url.to_owned(), name: name.to_owned() };
        Ok((db, database_url(admin_url, name)))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the bench's runtime, which cannot be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || -> Result<()> {
            use sqlx::{Connection, Executor};
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await?;
                Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the bench's database {}", self.name);
        }
    }
}

/// `url` with its database name replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// `LABEL=PATH`, or `PATH` (labelled with its file name).
pub fn parse_binary(spec: &str) -> (String, PathBuf) {
    match spec.split_once('=') {
        Some((label, path)) => (label.to_owned(), PathBuf::from(path)),
        None => {
            let path = PathBuf::from(spec);
            let label = path.file_name().map_or(spec.to_owned(), |n| n.to_string_lossy().into_owned());
            (label, path)
        }
    }
}

impl Keymint {
    /// Starts the binary `spec` names, the `index`th of the run, on a SQLite file of its own or,
    /// with `postgres`, on a fresh database of that server.
    pub async fn start(
        spec: &str,
        index: usize,
        postgres: Option<&str>,
        upstream: &str,
        fixtures: &Fixtures,
    ) -> Result<Keymint> {
        let (label, bin) = parse_binary(spec);
        let (storage, url) = match postgres {
            Some(admin) => {
                let name = format!("keymint_bench_{}_{index}", std::process::id());
                let (db, url) = PgDatabase::create(admin, &name).await?;
                ((None, Some(db)), url)
            }
            None => {
                let dir = tempfile::Builder::new().prefix("keymint-bench-").tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("keymint.db").display());
                ((Some(dir), None), url)
            }
        };
        let server = Server::start(&bin, &url, &[]).await?;
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(300)).build()?;
        let km = Keymint { label, server, http, _storage: storage };
        let tags: serde_json::Map<String, Value> =
            TAGS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        for (path, body) in [
            (
                "aws/config/root",
                // keymint's default pacing: no caps, nothing held back until AWS throttles.
                json!({"access_key": "bench-root", "secret_key": "bench-root-secret", "region": "us-east-1",
                       "iam_endpoint": upstream, "sts_endpoint": upstream}),
            ),
            (
                &format!("aws/roles/{STS_ROLE}"),
                json!({"credential_type": "assumed_role", "role_arns": [fixtures.role_arn]}),
            ),
            (
                &format!("aws/roles/{USER_ROLE}"),
                json!({"credential_type": "iam_user", "policy_document": POLICY,
                       "policy_arns": fixtures.policy_arns, "iam_groups": [fixtures.group], "iam_tags": tags}),
            ),
        ] {
            let resp = km.post(path, body).await?;
            if !resp.status().is_success() {
                bail!("{}: {path}: {} {}", km.label, resp.status(), resp.text().await?);
            }
        }
        Ok(km)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.server.url)
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Result<reqwest::Response> {
        self.http.post(self.url(path)).header("X-Vault-Token", TOKEN).json(&body).send().await
    }

    /// A client of this server's own, and the URL of `GET /v1/{path}` on it.
    pub fn client_for(&self, path: &str) -> (reqwest::Client, String) {
        (self.http.clone(), self.url(path))
    }

    /// `GET /v1/{path}`: `Err` with the status and body unless it answered 200.
    pub async fn issue(http: &reqwest::Client, url: &str) -> Result<(), String> {
        let resp = http.get(url).header("X-Vault-Token", TOKEN).send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("{status} {}", String::from_utf8_lossy(&body)));
        }
        Ok(())
    }

    pub fn stop(self) {
        self.server.stop();
    }

    /// Revokes every lease of the `iam_user` role (its users torn down) before answering.
    pub async fn revoke_users_now(&self) -> Result<()> {
        let resp = self.post(&format!("sys/leases/revoke-prefix/aws/creds/{USER_ROLE}"), json!({})).await?;
        if !resp.status().is_success() {
            bail!("{}: revoke-prefix: {} {}", self.label, resp.status(), resp.text().await?);
        }
        Ok(())
    }

    /// Hands every lease of the `iam_user` role to the expiry worker (which revokes 8 at a
    /// time, faster than one request revoking them in turn) and waits until none is left.
    pub async fn revoke_users_and_wait(&self) -> Result<()> {
        let prefix = format!("aws/creds/{USER_ROLE}");
        let resp = self.post(&format!("sys/leases/revoke-prefix/{prefix}"), json!({"sync": false})).await?;
        if !resp.status().is_success() {
            bail!("{}: revoke-prefix: {} {}", self.label, resp.status(), resp.text().await?);
        }
        let started = Instant::now();
        loop {
            let resp = self
                .http
                .get(self.url(&format!("sys/leases/lookup/{prefix}/?list=true")))
                .header("X-Vault-Token", TOKEN)
                .send()
                .await?;
            if resp.status() == 404 {
                return Ok(());
            }
            let left: Value = resp.json().await?;
            let n = left["data"]["keys"].as_array().map_or(0, Vec::len);
            if n == 0 {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(3600) {
                bail!("{}: {n} iam_user leases still not revoked after an hour", self.label);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_keep_the_server_and_the_options() {
        let name = "keymint_bench_1_0";
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", name),
            "postgres://postgres@127.0.0.1:5432/keymint_bench_1_0"
        );
        assert_eq!(
            database_url("postgres://u:p@db:5432/app?sslmode=disable", name),
            "postgres://u:p@db:5432/keymint_bench_1_0?sslmode=disable"
        );
        assert_eq!(database_url("postgresql://u@db", name), "postgresql://u@db/keymint_bench_1_0");
    }
}
