//! The leases the bench writes straight into keymint's store: many rows fast, of one role
//! ([`ROLE`]), so start-up and expiry can be measured against a known population.

use anyhow::{Context, Result, anyhow};
use keymint_store::{KeySource, Store, StoreOptions};
use serde_json::json;

use crate::ROLE;

pub async fn open_store(url: &str) -> Result<Store> {
    Store::open(&StoreOptions::new(url), KeySource::DevStored).await.context("opening the store")
}

/// The whole database's size in bytes, indexes included (on SQLite, as the connection sees it:
/// committed pages still in the WAL count).
pub async fn database_bytes(store: &Store) -> Result<u64> {
    let sql = match store.backend() {
        keymint_store::Backend::Sqlite => {
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        }
        keymint_store::Backend::Postgres => "SELECT pg_database_size(current_database())",
    };
    let bytes: i64 = sqlx::query_scalar(sql).fetch_one(store.pool()).await?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

pub async fn aws_mount_id(store: &Store) -> Result<String> {
    let mount = keymint_store::mounts::get_by_path(store.pool(), "aws/").await?;
    Ok(mount.ok_or_else(|| anyhow!("no aws/ mount in the store"))?.id)
}

/// Inserts leases `from..to` of role [`ROLE`] on `mount`, lease `i` due at `due(i)`, for IAM
/// user `bench-<i>`, 500 rows a statement.
pub async fn seed(store: &Store, mount: &str, from: u64, to: u64, due: impl Fn(u64) -> i64) -> Result<()> {
    const ROWS: u64 = 500;
    const COLS: usize = 10;
    let issued = chrono::Utc::now().timestamp_millis() - 600_000;
    let mut i = from;
    while i < to {
        let end = (i + ROWS).min(to);
        let rows: Vec<String> = (0..(end - i) as usize)
            .map(|r| {
                let p: Vec<String> = (1..=COLS).map(|c| format!("${}", r * COLS + c)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO leases (id, mount_id, role_name, credential_type, issue_time, expire_time, \
             renewable, internal, orphan, state) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for k in i..end {
            query = query
                .bind(format!("aws/creds/{ROLE}/{k:024}"))
                .bind(mount.to_owned())
                .bind(ROLE)
                .bind("iam_user")
                .bind(issued)
                .bind(due(k))
                .bind(1_i64)
                .bind(json!({"username": user_name(k), "is_sts": false}).to_string())
                .bind(0_i64)
                .bind("active");
        }
        query.execute(store.pool()).await?;
        i = end;
    }
    Ok(())
}

pub fn user_name(i: u64) -> String {
    format!("bench-{i}")
}
