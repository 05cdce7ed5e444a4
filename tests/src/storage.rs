//! Fresh, private storage for each test: a SQLite file in a temp dir, or a new database on the
//! throwaway PostgreSQL cluster that scripts/test.sh starts.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// The environment variable scripts/test.sh exports: an admin URL of its PostgreSQL cluster.
pub const POSTGRES_URL_VAR: &str = "KEYMINT_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A storage location keymint can be started on with `--storage <url>`. Dropping it removes
/// the SQLite file or drops the PostgreSQL database.
pub struct Storage {
    backend: Backend,
    url: String,
    _dir: Option<TempDir>,
    _postgres: Option<PostgresDb>,
}

impl Storage {
    pub fn new(backend: Backend) -> Storage {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("keymint-test-")
                    .tempdir()
                    .expect("create a temp dir for the SQLite file");
                let path = dir.path().join("keymint.db");
                let path = path.to_str().expect("temp dir paths are UTF-8");
                assert!(path.starts_with('/'), "temp path {path} is not absolute");
                Storage { backend, url: format!("sqlite://{path}"), _dir: Some(dir), _postgres: None }
            }
            Backend::Postgres => {
                let db = PostgresDb::create();
                Storage { backend, url: db.url.clone(), _dir: None, _postgres: Some(db) }
            }
        }
    }

    /// `sqlite:///tmp/keymint-test-XXXX/keymint.db` or `postgres://…/km_<random>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

struct PostgresDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDb {
    fn create() -> PostgresDb {
        let admin_url = std::env::var(POSTGRES_URL_VAR).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
            panic!(
                "{POSTGRES_URL_VAR} is not set, so the PostgreSQL variant of this test cannot \
                     run. Run the suite with scripts/test.sh: it starts a throwaway PostgreSQL \
                     cluster and exports {POSTGRES_URL_VAR}."
            )
        });
        // Lowercase: PostgreSQL folds unquoted names.
        let suffix = keymint_common::random::base62(16).to_ascii_lowercase();
        let name = format!("km_{suffix}");
        psql(&admin_url, &format!("CREATE DATABASE {name}"));
        let url = with_database(&admin_url, &name);
        PostgresDb { admin_url, name, url }
    }
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        // Best effort: the cluster is thrown away at the end of the run anyway. FORCE ends
        // connections of a keymint that is still shutting down.
        let _ = psql_command(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The admin URL with its database replaced by `name` (query parameters kept).
fn with_database(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url)
        .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR}={admin_url:?} is not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Runs one SQL statement with `psql` and returns its unaligned, tuples-only output
/// (`|`-separated columns, a row per line). Panics if psql fails.
pub fn psql(url: &str, sql: &str) -> String {
    let out = psql_command(url, sql)
        .output()
        .unwrap_or_else(|e| panic!("cannot run psql ({e}): it comes with PostgreSQL, see scripts/test.sh"));
    assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

fn psql_command(url: &str, sql: &str) -> Command {
    let mut cmd = Command::new(psql_binary());
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
    cmd
}

/// `psql` from PATH, else the newest one of Debian's `/usr/lib/postgresql/*/bin`.
fn psql_binary() -> PathBuf {
    postgres_bin_dir(&["psql"]).map_or_else(|| PathBuf::from("psql"), |dir| dir.join("psql"))
}

/// The first directory of PATH that holds all of PostgreSQL's `tools`, else the newest of
/// Debian's `/usr/lib/postgresql/*/bin` that does.
pub(crate) fn postgres_bin_dir(tools: &[&str]) -> Option<PathBuf> {
    let has_all = |dir: &std::path::Path| tools.iter().all(|t| dir.join(t).is_file());
    let on_path =
        std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).find(|dir| has_all(dir)));
    if on_path.is_some() {
        return on_path;
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}
