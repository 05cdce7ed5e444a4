//! Applying the migrations, one process at a time.
//!
//! sqlx takes an advisory lock around PostgreSQL migrations, but none on SQLite: two processes
//! started at once on a fresh file would both find no migration applied, both run the first
//! one, and the loser would fail on a table that already exists. On SQLite the migrations run
//! under an exclusive lock on a file beside the database, `<database file>.lock`; the lock
//! belongs to the open file, so the operating system lets go of it if the process dies.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::AnyPool;
use sqlx::sqlite::SqliteConnectOptions;

use crate::{Backend, Result, StoreError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Applies the migrations `pool` lacks. `url` is the normalised storage URL the pool was made
/// from (see [`crate::parse_url`]).
pub(crate) async fn run(pool: &AnyPool, backend: Backend, url: &str) -> Result<()> {
    match backend {
        Backend::Postgres => POSTGRES_MIGRATIONS.run(pool).await?,
        Backend::Sqlite => {
            let _lock = match sqlite_file(url)? {
                Some(db) => Some(lock(lock_path(&db)).await?),
                None => None,
            };
            SQLITE_MIGRATIONS.run(pool).await?;
        }
    }
    Ok(())
}

/// The database file a SQLite URL names; `None` for an in-memory database, which no other
/// process can see.
fn sqlite_file(url: &str) -> Result<Option<PathBuf>> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let options = SqliteConnectOptions::from_str(url)?;
    Ok((!memory).then(|| options.get_filename().to_path_buf()))
}

/// `<database file>.lock`: `keymint.db` -> `keymint.db.lock`.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Waits for the exclusive lock on `path` (created if missing); dropping the file releases it.
async fn lock(path: PathBuf) -> Result<File> {
    let at = path.clone();
    let locked = tokio::task::spawn_blocking(move || {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&at)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    locked.map_err(|source| StoreError::MigrationLock { path, source })
}

#[cfg(test)]
mod tests {
    use sqlx::any::AnyPoolOptions;

    use super::*;
    use crate::{KeySource, Store, StoreOptions, parse_url};

    #[test]
    fn the_lock_file_sits_beside_the_database() {
        let (_, url) = parse_url("sqlite:///var/lib/keymint/keymint.db").unwrap();
        let db = sqlite_file(&url).unwrap().unwrap();
        assert_eq!(lock_path(&db), Path::new("/var/lib/keymint/keymint.db.lock"));
        let (_, url) = parse_url("sqlite://data/k.db?mode=rwc").unwrap();
        assert_eq!(lock_path(&sqlite_file(&url).unwrap().unwrap()), Path::new("data/k.db.lock"));
        assert_eq!(sqlite_file("sqlite::memory:").unwrap(), None);
    }

    /// The tables and indexes of a database, by name.
    async fn schema(url: &str) -> Vec<String> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(1).connect(url).await.unwrap();
        let names = sqlx::query_scalar::<_, String>(
            "SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let applied: Vec<(i64, i64)> =
            sqlx::query_as("SELECT version, CAST(success AS INTEGER) FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap();
        let expected: Vec<(i64, i64)> = SQLITE_MIGRATIONS.iter().map(|m| (m.version, 1)).collect();
        assert_eq!(applied, expected, "every migration applied once");
        pool.close().await;
        names
    }

    /// Two stores opened at once on one fresh file both open, and the schema is whole: the
    /// same as one store alone makes. Repeated, as a race only shows now and then.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_starts_migrate_once() {
        let dir = tempfile::tempdir().unwrap();
        let reference = format!("sqlite://{}", dir.path().join("reference.db").display());
        Store::open(&StoreOptions::new(&reference), KeySource::DevStored).await.unwrap().close().await;
        let (_, reference) = parse_url(&reference).unwrap();
        let whole = schema(&reference).await;
        assert!(whole.iter().any(|n| n == "table leases"), "{whole:?}");

        for round in 0..25 {
            let url = format!("sqlite://{}", dir.path().join(format!("race-{round}.db")).display());
            let open = |url: String| {
                tokio::spawn(async move { Store::open(&StoreOptions::new(url), KeySource::DevStored).await })
            };
            let (a, b) = tokio::join!(open(url.clone()), open(url.clone()));
            let (a, b) = (a.unwrap(), b.unwrap());
            let (a, b) = match (a, b) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => panic!("round {round}: {:?} / {:?}", a.err(), b.err()),
            };
            assert_eq!(a.installation_id(), b.installation_id(), "round {round}");
            a.close().await;
            b.close().await;
            let (_, url) = parse_url(&url).unwrap();
            assert_eq!(schema(&url).await, whole, "round {round}");
        }
    }
}
