//! Static roles of the AWS engine: the role (JSON body written by the engine) and keymint's
//! current access key for its IAM user, the secret sealed. Rotation state lives in
//! [`crate::rotation`] under the target `static-roles/<name>`.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

/// The identity a static role's secret is sealed with.
pub fn secret_identity(mount_id: &str, name: &str) -> String {
    format!("aws_static_roles/{mount_id}/{name}")
}

#[derive(Debug, Clone, FromRow)]
pub struct StaticRoleRow {
    pub body: String,
    /// keymint's current access key for the user; `None` until the first one is made.
    pub access_key: Option<String>,
    /// The sealed secret of `access_key`.
    pub secret: Option<Vec<u8>>,
    /// When `access_key` is rotated (unix ms).
    pub expiration: Option<i64>,
}

pub async fn get<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
) -> Result<Option<StaticRoleRow>> {
    Ok(sqlx::query_as::<_, StaticRoleRow>(
        "SELECT body, access_key, secret, expiration FROM aws_static_roles WHERE mount_id = $1 AND name = $2",
    )
    .bind(mount_id)
    .bind(name)
    .fetch_optional(exec)
    .await?)
}

/// Inserts a new role without keys; false when the name is taken.
pub async fn insert<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
    body: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO aws_static_roles (mount_id, name, body, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (mount_id, name) DO NOTHING",
    )
    .bind(mount_id)
    .bind(name)
    .bind(body)
    .bind(now)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn update_body<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
    body: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE aws_static_roles SET body = $1, updated_at = $2 WHERE mount_id = $3 AND name = $4",
    )
    .bind(body)
    .bind(now)
    .bind(mount_id)
    .bind(name)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a new current key and when it is to be rotated.
pub async fn set_key<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
    access_key: &str,
    sealed_secret: &[u8],
    expiration: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE aws_static_roles SET access_key = $1, secret = $2, expiration = $3 \
         WHERE mount_id = $4 AND name = $5",
    )
    .bind(access_key)
    .bind(sealed_secret)
    .bind(expiration)
    .bind(mount_id)
    .bind(name)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the time the current key is rotated (its `expiration`).
pub async fn set_expiration<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
    expiration: i64,
) -> Result<()> {
    sqlx::query("UPDATE aws_static_roles SET expiration = $1 WHERE mount_id = $2 AND name = $3")
        .bind(expiration)
        .bind(mount_id)
        .bind(name)
        .execute(exec)
        .await?;
    Ok(())
}

/// Forgets the current key (it was deleted in AWS).
pub async fn clear_key<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE aws_static_roles SET access_key = NULL, secret = NULL WHERE mount_id = $1 AND name = $2",
    )
    .bind(mount_id)
    .bind(name)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, mount_id: &str, name: &str) -> Result<()> {
    sqlx::query("DELETE FROM aws_static_roles WHERE mount_id = $1 AND name = $2")
        .bind(mount_id)
        .bind(name)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn list<'e>(exec: impl Executor<'e, Database = Any>, mount_id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT name FROM aws_static_roles WHERE mount_id = $1 ORDER BY name")
        .bind(mount_id)
        .fetch_all(exec)
        .await?)
}

/// Every sealed static role secret, for re-sealing under a new data key.
pub async fn sealed_secrets<'e>(
    exec: impl Executor<'e, Database = Any>,
) -> Result<Vec<(String, String, Vec<u8>)>> {
    Ok(sqlx::query_as::<_, (String, String, Vec<u8>)>(
        "SELECT mount_id, name, secret FROM aws_static_roles WHERE secret IS NOT NULL",
    )
    .fetch_all(exec)
    .await?)
}

/// Swaps a sealed secret for its re-sealed form if it is still the one that was read.
pub async fn reseal<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    name: &str,
    old: &[u8],
    new: &[u8],
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE aws_static_roles SET secret = $1 WHERE mount_id = $2 AND name = $3 AND secret = $4",
    )
    .bind(new)
    .bind(mount_id)
    .bind(name)
    .bind(old)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}
