//! Rows of the AWS engine: per-mount configuration entries and roles. Bodies are JSON written
//! and read by the engine; secrets go in the sealed `secret` column.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

/// The identity a config entry's secret is sealed with: a sealed value copied to another
/// row does not open.
pub fn config_identity(mount_id: &str, entry: &str) -> String {
    format!("aws_config/{mount_id}/{entry}")
}

#[derive(Debug, Clone, FromRow)]
pub struct ConfigRow {
    pub body: String,
    pub secret: Option<Vec<u8>>,
    /// Changes on every write: cached AWS clients are keyed by it, so a replica notices a
    /// config written through another replica.
    pub updated_at: i64,
}

pub async fn get_config<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    entry: &str,
) -> Result<Option<ConfigRow>> {
    Ok(sqlx::query_as::<_, ConfigRow>(
        "SELECT body, secret, updated_at FROM aws_config WHERE mount_id = $1 AND entry = $2",
    )
    .bind(mount_id)
    .bind(entry)
    .fetch_optional(exec)
    .await?)
}

pub async fn put_config<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    entry: &str,
    row: &ConfigRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO aws_config (mount_id, entry, body, secret, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (mount_id, entry) DO UPDATE SET body = excluded.body, secret = excluded.secret, \
         updated_at = excluded.updated_at",
    )
    .bind(mount_id)
    .bind(entry)
    .bind(&row.body)
    .bind(row.secret.as_deref())
    .bind(row.updated_at)
    .execute(exec)
    .await?;
    Ok(())
}

/// Writes a config entry only if it is still at version `expected` (`None`: only if absent):
/// false when another write came first. Read-merge-write cycles use it so a concurrent write
/// (a rotation storing a new root key, another replica's config write) is never undone.
pub async fn put_config_if<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    entry: &str,
    row: &ConfigRow,
    expected: Option<i64>,
) -> Result<bool> {
    let done = match expected {
        None => sqlx::query(
            "INSERT INTO aws_config (mount_id, entry, body, secret, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (mount_id, entry) DO NOTHING",
        )
        .bind(mount_id)
        .bind(entry)
        .bind(&row.body)
        .bind(row.secret.as_deref())
        .bind(row.updated_at)
        .execute(exec)
        .await?,
        Some(version) => {
            sqlx::query(
                "UPDATE aws_config SET body = $1, secret = $2, updated_at = $3 \
                 WHERE mount_id = $4 AND entry = $5 AND updated_at = $6",
            )
            .bind(&row.body)
            .bind(row.secret.as_deref())
            .bind(row.updated_at)
            .bind(mount_id)
            .bind(entry)
            .bind(version)
            .execute(exec)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

pub async fn get_role<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT body FROM aws_roles WHERE mount_id = $1 AND name = $2")
        .bind(mount_id)
        .bind(name)
        .fetch_optional(exec)
        .await?)
}

pub async fn put_role<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
    body: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO aws_roles (mount_id, name, body, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (mount_id, name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(mount_id)
    .bind(name)
    .bind(body)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn delete_role<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM aws_roles WHERE mount_id = $1 AND name = $2")
        .bind(mount_id)
        .bind(name)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn list_roles<'e>(exec: impl Executor<'e, Database = Any>, mount_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT name FROM aws_roles WHERE mount_id = $1 ORDER BY name")
        .bind(mount_id)
        .fetch_all(exec)
        .await?)
}
