//! The mount table: which path serves which engine, with its TTL tuning.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct MountRow {
    /// Stable identity of this mount instance: a mount disabled and enabled again at the same
    /// path is a new mount with none of the old one's data.
    pub id: String,
    /// Path with its trailing slash, e.g. `aws/`.
    pub path: String,
    pub mount_type: String,
    pub description: String,
    pub accessor: String,
    /// Seconds; 0 means the system default.
    pub default_lease_ttl: i64,
    /// Seconds; 0 means the system default.
    pub max_lease_ttl: i64,
    /// JSON object of mount options.
    pub options: String,
    pub created_at: i64,
}

const COLUMNS: &str =
    "id, path, mount_type, description, accessor, default_lease_ttl, max_lease_ttl, options, created_at";

pub async fn list<'e>(exec: impl Executor<'e, Database = Any>) -> Result<Vec<MountRow>> {
    Ok(sqlx::query_as::<_, MountRow>(&format!("SELECT {COLUMNS} FROM mounts ORDER BY path"))
        .fetch_all(exec)
        .await?)
}

pub async fn get_by_path<'e>(
    exec: impl Executor<'e, Database = Any>,
    path: &str,
) -> Result<Option<MountRow>> {
    Ok(sqlx::query_as::<_, MountRow>(&format!("SELECT {COLUMNS} FROM mounts WHERE path = $1"))
        .bind(path)
        .fetch_optional(exec)
        .await?)
}

/// Inserts a mount; false when the path is taken (unique constraint), so the caller can answer
/// Vault's `path is already in use` instead of a 500.
pub async fn insert<'e>(exec: impl Executor<'e, Database = Any>, row: &MountRow) -> Result<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO mounts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (path) DO NOTHING"
    ))
    .bind(&row.id)
    .bind(&row.path)
    .bind(&row.mount_type)
    .bind(&row.description)
    .bind(&row.accessor)
    .bind(row.default_lease_ttl)
    .bind(row.max_lease_ttl)
    .bind(&row.options)
    .bind(row.created_at)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn update_tune<'e>(
    exec: impl Executor<'e, Database = Any>,
    id: &str,
    default_lease_ttl: i64,
    max_lease_ttl: i64,
    description: &str,
    options: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE mounts SET default_lease_ttl = $1, max_lease_ttl = $2, description = $3, options = $4 \
         WHERE id = $5",
    )
    .bind(default_lease_ttl)
    .bind(max_lease_ttl)
    .bind(description)
    .bind(options)
    .bind(id)
    .execute(exec)
    .await?;
    Ok(())
}

/// Removes a mount; its config and roles go with it (foreign keys cascade).
pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM mounts WHERE id = $1").bind(id).execute(exec).await?;
    Ok(())
}

pub async fn get_by_id<'e>(exec: impl Executor<'e, Database = Any>, id: &str) -> Result<Option<MountRow>> {
    Ok(sqlx::query_as::<_, MountRow>(&format!("SELECT {COLUMNS} FROM mounts WHERE id = $1"))
        .bind(id)
        .fetch_optional(exec)
        .await?)
}
