//! Fresh databases for the in-process tests in tests/it (feature `test-support`): a SQLite
//! file in a temporary directory, or a new database on the PostgreSQL server named by
//! `KEYMINT_TEST_POSTGRES_URL` (set by scripts/test.sh). Without that variable a PostgreSQL
//! test fails: it never skips silently.

use sqlx::Connection;

use crate::{KeySource, Result, Store, StoreOptions};

pub const POSTGRES_URL_VAR: &str = "KEYMINT_TEST_POSTGRES_URL";

/// A database that exists for one test.
pub enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl TestDb {
    /// # Panics
    /// When PostgreSQL is asked for and `KEYMINT_TEST_POSTGRES_URL` is unset or unusable.
    pub async fn new(postgres: bool) -> TestDb {
        if !postgres {
            return TestDb::Sqlite(tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}")));
        }
        let base = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!("{POSTGRES_URL_VAR} is unset: run scripts/test.sh, which starts PostgreSQL")
        });
        let name = format!("km_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn =
            sqlx::PgConnection::connect(&base).await.unwrap_or_else(|e| panic!("connect to {base}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        let head = base.rsplit_once('/').map_or(base.as_str(), |(h, _)| h);
        TestDb::Postgres(format!("{head}/{name}"))
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite(dir) => format!("sqlite://{}", dir.path().join("keymint.db").display()),
            TestDb::Postgres(url) => url.clone(),
        }
    }

    pub async fn open(&self, key: KeySource) -> Result<Store> {
        Store::open(&StoreOptions::new(self.url()), key).await
    }
}
