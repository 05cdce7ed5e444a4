//! keymint-store: every byte keymint keeps lives here.
//!
//! One [`Store`] wraps a sqlx pool on SQLite (the embedded default, WAL journal) or PostgreSQL
//! (several replicas sharing one database), applies the migrations at start, seals secrets with
//! AES-256-GCM before they reach a row and hashes client tokens with HMAC-SHA256. Queries are
//! written once for both backends (sqlx's `Any` driver, `$n` placeholders); no other crate writes
//! SQL.

pub mod audit;
pub mod auth_methods;
pub mod aws;
pub mod backup;
pub mod cache;
pub mod crypto;
pub mod jobs;
pub mod leases;
mod migrate;
pub mod mounts;
pub mod pacing;
pub mod revocation;
pub mod rotation;
pub mod static_roles;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod token_roles;
pub mod tokens;
pub mod ui_sessions;
pub mod wal;
pub mod wrapping;

use std::str::FromStr;
use std::time::Duration;

use keymint_common::clock::Clock;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

pub use crypto::{KeyMaterial, Seal, TokenHasher};
pub use sqlx::{AnyConnection, Transaction};

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported storage URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot lock {} to apply the migrations: {source}", path.display())]
    MigrationLock { path: std::path::PathBuf, source: std::io::Error },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the seal key does not match the one this database was sealed with")]
    WrongKey,
    #[error(
        "this database was created in dev mode, which keeps its seal key in the database; open it \
with `keymint server --dev --storage <url>`, or give this server a new, empty database (a dev \
database cannot be converted)"
    )]
    DevKeyInProduction,
    #[error("the database holds no seal key and none was given")]
    NoKey,
    #[error("a secret is sealed under data key {0}, which this process has not loaded")]
    UnknownSealKey(u32),
}

impl StoreError {
    /// True when the database could not be reached or dropped the connection: refused, reset,
    /// shut down or starting up, or no pooled connection within the acquire timeout. Such a
    /// failure is the database's absence, not a fault of the request: the same request can
    /// succeed once the database answers again (the pool reconnects by itself).
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_sqlstate(&code)),
            _ => false,
        }
    }
}

/// PostgreSQL's SQLSTATEs for a server that is going away or not there yet: class 08
/// (connection exception), `57P01` admin_shutdown (a fast or smart stop), `57P02`
/// crash_shutdown, `57P03` cannot_connect_now (starting up or shutting down).
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a data key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The new active data key.
    pub version: u32,
    /// Secrets now sealed under it.
    pub resealed: u64,
    /// Secrets rewritten by a server meanwhile (run the rotation again to cover them).
    pub skipped: u64,
}

/// Where the seal key comes from.
pub enum KeySource {
    /// Dev mode: the key is generated on first start and kept in the database itself, so a dev
    /// server with `--storage` survives restarts. Not encryption at rest in any useful sense.
    DevStored,
    /// Production: the key is given (key file or environment); the database only keeps a check
    /// value so a wrong key is refused at start rather than discovered at the first decrypt.
    Given(KeyMaterial),
    /// `operator restore`: as `Given`, but a database that was never started is left
    /// untouched (no check value, no installation id): the backup brings both.
    Restoring(KeyMaterial),
}

/// The storage handle shared by every request and background task.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    seal: Seal,
    hasher: TokenHasher,
    audit_hasher: TokenHasher,
    /// Stable identity of this keymint installation (one per database), created at first start.
    installation_id: String,
    /// "Now" for everything built on this store: every stored time is compared with it.
    clock: Clock,
    /// The database's URL, for the connections that live outside the pool (PostgreSQL's
    /// notifications, see `pacing::CutListener`).
    url: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// A pooled PostgreSQL connection idle this long is pinged before it is used again.
const PING_IDLE_AFTER: Duration = Duration::from_secs(5);

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 10 }
    }
}

/// Tells the backend from a storage URL, and normalises SQLite URLs so the file is created.
pub fn parse_url(url: &str) -> Result<(Backend, String)> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        if path.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        let normalised =
            if path.contains('?') { format!("sqlite://{path}") } else { format!("sqlite://{path}?mode=rwc") };
        Ok((Backend::Sqlite, normalised))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

impl Store {
    /// Opens the database, applies migrations and sets up the seal.
    pub async fn open(options: &StoreOptions, key: KeySource) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = parse_url(&options.url)?;
        let connect = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection it hands out by default: a round trip per query, and on
            // SQLite two thread switches (the connection lives on its own thread), for a check
            // that cannot fail there. PostgreSQL connections are pinged only after sitting idle,
            // which is when a restarted server or a dropped link leaves them dead.
            .test_before_acquire(false);
        if backend == Backend::Postgres {
            pool_options = pool_options.before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IDLE_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            });
        }
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; busy_timeout turns writer
                    // contention into waiting instead of SQLITE_BUSY errors.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(connect).await?;
        migrate::run(&pool, backend, &url).await?;
        let restoring = matches!(key, KeySource::Restoring(_));
        let material = crypto::resolve_key(&pool, key).await?;
        let installation_id = if restoring {
            crypto::installation_id_if_any(&pool).await?
        } else {
            crypto::installation_id(&pool).await?
        };
        let store = Store {
            pool,
            backend,
            seal: Seal::new(&material),
            hasher: TokenHasher::new(&material),
            audit_hasher: TokenHasher::for_audit(&material),
            installation_id,
            clock: Clock::system(),
            url,
        };
        store.load_seal_keys().await?;
        Ok(store)
    }

    /// Loads the data keys this process does not have yet (another process may have rotated).
    pub async fn load_seal_keys(&self) -> Result<()> {
        let rows =
            sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT version, wrapped FROM seal_keys ORDER BY version")
                .fetch_all(&self.pool)
                .await?;
        for (version, wrapped) in rows {
            let version =
                u32::try_from(version).map_err(|_| StoreError::Corrupt("data key version".into()))?;
            if !self.seal.has_version(version) {
                self.seal.install_data_key(version, &wrapped)?;
            }
        }
        Ok(())
    }

    /// Opens a sealed value, loading data keys first if it names one not loaded yet.
    pub async fn open_sealed(&self, identity: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        match self.seal.open(identity, sealed) {
            Err(StoreError::UnknownSealKey(_)) => {
                self.load_seal_keys().await?;
                self.seal.open(identity, sealed)
            }
            other => other,
        }
    }

    /// Adds a data key and re-seals every stored secret under it, while servers keep running:
    /// each value is swapped only if it is still the one that was read (a concurrent write
    /// wins and is counted as skipped; run again to cover it). Old keys stay, so values
    /// sealed by a server that has not loaded the new key yet still open.
    pub async fn rotate_seal_key(&self) -> Result<Rotation> {
        self.load_seal_keys().await?;
        let version = loop {
            let version = self.seal.active_version() + 1;
            let wrapped = self.seal.wrap_data_key(version, &crypto::random_data_key());
            let inserted = sqlx::query(
                "INSERT INTO seal_keys (version, wrapped, created_at) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
            )
            .bind(i64::from(version))
            .bind(&wrapped)
            .bind(self.clock.now_ms())
            .execute(&self.pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                self.seal.install_data_key(version, &wrapped)?;
                break version;
            }
            // Another rotation took this number: load it and go one further.
            self.load_seal_keys().await?;
        };
        let mut rotation = Rotation { version, resealed: 0, skipped: 0 };
        let rows = sqlx::query_as::<_, (String, String, Vec<u8>)>(
            "SELECT mount_id, entry, secret FROM aws_config WHERE secret IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        for (mount_id, entry, sealed) in rows {
            if Seal::version_of(&sealed) == version {
                continue;
            }
            let identity = aws::config_identity(&mount_id, &entry);
            let plain = self.open_sealed(&identity, &sealed).await?;
            let resealed = self.seal.seal(&identity, &plain);
            let swapped = sqlx::query(
                "UPDATE aws_config SET secret = $1 WHERE mount_id = $2 AND entry = $3 AND secret = $4",
            )
            .bind(&resealed)
            .bind(&mount_id)
            .bind(&entry)
            .bind(&sealed)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if swapped == 1 {
                rotation.resealed += 1;
            } else {
                rotation.skipped += 1;
            }
        }
        for (mount_id, name, sealed) in static_roles::sealed_secrets(&self.pool).await? {
            if Seal::version_of(&sealed) == version {
                continue;
            }
            let identity = static_roles::secret_identity(&mount_id, &name);
            let plain = self.open_sealed(&identity, &sealed).await?;
            let resealed = self.seal.seal(&identity, &plain);
            if static_roles::reseal(&self.pool, &mount_id, &name, &sealed, &resealed).await? {
                rotation.resealed += 1;
            } else {
                rotation.skipped += 1;
            }
        }
        Ok(rotation)
    }

    /// The same store read through `clock` (tests: one following paused tokio time). The
    /// lease manager, the engine and the API take their clock from the store, so one call
    /// sets "now" for all of them.
    pub fn with_clock(mut self, clock: Clock) -> Store {
        self.clock = clock;
        self
    }

    /// Where "now" comes from, for every decision that compares a stored time with it.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The database's URL (normalised, see [`parse_url`]).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn seal(&self) -> &Seal {
        &self.seal
    }

    pub fn hasher(&self) -> &TokenHasher {
        &self.hasher
    }

    /// The keyed hash the audit log writes in place of secrets.
    pub fn audit_hasher(&self) -> &TokenHasher {
        &self.audit_hasher
    }

    /// This installation's identity: tagged on the IAM users it creates, so it never mistakes
    /// another installation's users in a shared account for its own.
    pub fn installation_id(&self) -> &str {
        &self.installation_id
    }

    pub async fn begin(&self) -> Result<Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin().await?)
    }

    /// A round trip to the database (`SELECT 1`) through the pool, for health checks. The
    /// caller bounds it in time: while the database refuses connections, the pool keeps trying
    /// until its acquire timeout (10 s).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn millis(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// The inverse of [`millis`].
pub fn from_millis(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The way out the message names exists: there is no migrate or convert command.
    #[test]
    fn the_dev_key_refusal_names_a_real_remedy() {
        let text = StoreError::DevKeyInProduction.to_string();
        assert!(text.contains("keymint server --dev --storage"), "{text}");
        assert!(text.contains("new, empty database"), "{text}");
        assert!(!text.contains("migrate"), "{text}");
    }

    #[test]
    fn a_database_that_is_gone_or_not_back_yet_is_unavailable() {
        for code in ["08006", "08001", "57P01", "57P02", "57P03"] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
        // A constraint, a syntax error, a cancelled statement: the request's or keymint's own.
        for code in ["23505", "42601", "57014", "40001"] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(StoreError::Database(sqlx::Error::Io(refused)).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::Database(sqlx::Error::PoolClosed).is_unavailable());
        assert!(!StoreError::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
    }

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            parse_url("sqlite:///tmp/a.db").unwrap(),
            (Backend::Sqlite, "sqlite:///tmp/a.db?mode=rwc".to_string())
        );
        assert_eq!(parse_url("postgres://u@h/db").unwrap().0, Backend::Postgres);
        assert_eq!(parse_url("postgresql://u@h/db").unwrap().0, Backend::Postgres);
        assert!(parse_url("mysql://x").is_err());
        assert!(parse_url("sqlite://").is_err());
    }
}
