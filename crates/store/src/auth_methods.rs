//! Rows of the auth methods (AppRole, JWT/OIDC, Kubernetes): each mount's configuration and
//! roles as JSON bodies the method writes and reads, AppRole's role-id index, and AppRole's
//! secret ids, kept by keyed hash only.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

/// The kind of an entry: the method's configuration (name "").
pub const CONFIG: &str = "config";
/// A role, by name.
pub const ROLE: &str = "role";
/// AppRole's index from a role id (the name) to its role (the body).
pub const ROLE_ID: &str = "role_id";

/// The identity an entry's secret is sealed with: a sealed value copied to another row does
/// not open.
pub fn secret_identity(mount_id: &str, kind: &str, name: &str) -> String {
    format!("auth_entries/{mount_id}/{kind}/{name}")
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct EntryRow {
    pub body: String,
    pub secret: Option<Vec<u8>>,
    /// Changes on every write: caches built from an entry (a JWT method's key set) are keyed
    /// by it, so a replica notices a configuration written through another.
    pub updated_at: i64,
}

pub async fn get<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    kind: &str,
    name: &str,
) -> Result<Option<EntryRow>> {
    Ok(sqlx::query_as::<_, EntryRow>(
        "SELECT body, secret, updated_at FROM auth_entries WHERE mount_id = $1 AND kind = $2 AND name = $3",
    )
    .bind(mount_id)
    .bind(kind)
    .bind(name)
    .fetch_optional(exec)
    .await?)
}

/// Creates or replaces an entry.
pub async fn put<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    kind: &str,
    name: &str,
    row: &EntryRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO auth_entries (mount_id, kind, name, body, secret, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (mount_id, kind, name) DO UPDATE SET body = excluded.body, \
         secret = excluded.secret, updated_at = excluded.updated_at",
    )
    .bind(mount_id)
    .bind(kind)
    .bind(name)
    .bind(&row.body)
    .bind(row.secret.as_deref())
    .bind(row.updated_at)
    .execute(exec)
    .await?;
    Ok(())
}

/// Creates an entry unless one of that name exists: false when it does (a role id in use).
pub async fn insert_if_absent<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    kind: &str,
    name: &str,
    row: &EntryRow,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO auth_entries (mount_id, kind, name, body, secret, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (mount_id, kind, name) DO NOTHING",
    )
    .bind(mount_id)
    .bind(kind)
    .bind(name)
    .bind(&row.body)
    .bind(row.secret.as_deref())
    .bind(row.updated_at)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes an entry; false when there was none.
pub async fn delete<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    kind: &str,
    name: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM auth_entries WHERE mount_id = $1 AND kind = $2 AND name = $3")
        .bind(mount_id)
        .bind(kind)
        .bind(name)
        .execute(exec)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The names of a mount's entries of one kind, sorted.
pub async fn names<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    kind: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT name FROM auth_entries WHERE mount_id = $1 AND kind = $2 ORDER BY name",
    )
    .bind(mount_id)
    .bind(kind)
    .fetch_all(exec)
    .await?)
}

/// One AppRole secret id.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct SecretIdRow {
    pub mount_id: String,
    pub role_name: String,
    /// The keyed hash of the secret id (never the secret id itself).
    pub hash: String,
    pub accessor: String,
    /// 0: unlimited; n > 0: the logins left.
    pub uses_left: i64,
    pub expire_at: Option<i64>,
    /// JSON: metadata, CIDR lists, times, as the method keeps them.
    pub body: String,
    pub created_at: i64,
}

const SECRET_COLUMNS: &str = "mount_id, role_name, hash, accessor, uses_left, expire_at, body, created_at";

/// Stores a secret id: false when its hash or accessor is taken (a custom secret id given
/// twice).
pub async fn insert_secret_id<'e>(
    exec: impl Executor<'e, Database = Any>,
    row: &SecretIdRow,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO approle_secret_ids ({SECRET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT DO NOTHING"
    ))
    .bind(&row.mount_id)
    .bind(&row.role_name)
    .bind(&row.hash)
    .bind(&row.accessor)
    .bind(row.uses_left)
    .bind(row.expire_at)
    .bind(&row.body)
    .bind(row.created_at)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn secret_id_by_hash<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    hash: &str,
) -> Result<Option<SecretIdRow>> {
    Ok(sqlx::query_as::<_, SecretIdRow>(&format!(
        "SELECT {SECRET_COLUMNS} FROM approle_secret_ids WHERE mount_id = $1 AND hash = $2"
    ))
    .bind(mount_id)
    .bind(hash)
    .fetch_optional(exec)
    .await?)
}

pub async fn secret_id_by_accessor<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    accessor: &str,
) -> Result<Option<SecretIdRow>> {
    Ok(sqlx::query_as::<_, SecretIdRow>(&format!(
        "SELECT {SECRET_COLUMNS} FROM approle_secret_ids WHERE mount_id = $1 AND accessor = $2"
    ))
    .bind(mount_id)
    .bind(accessor)
    .fetch_optional(exec)
    .await?)
}

/// The accessors of a role's secret ids, sorted.
pub async fn secret_id_accessors<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    role_name: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT accessor FROM approle_secret_ids WHERE mount_id = $1 AND role_name = $2 ORDER BY accessor",
    )
    .bind(mount_id)
    .bind(role_name)
    .fetch_all(exec)
    .await?)
}

/// Deletes a secret id by its hash; false when there was none.
pub async fn delete_secret_id<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    hash: &str,
) -> Result<bool> {
    let done = sqlx::query("DELETE FROM approle_secret_ids WHERE mount_id = $1 AND hash = $2")
        .bind(mount_id)
        .bind(hash)
        .execute(exec)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes every secret id of a role (the role is being deleted).
pub async fn delete_role_secret_ids<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    role_name: &str,
) -> Result<u64> {
    let done = sqlx::query("DELETE FROM approle_secret_ids WHERE mount_id = $1 AND role_name = $2")
        .bind(mount_id)
        .bind(role_name)
        .execute(exec)
        .await?;
    Ok(done.rows_affected())
}

/// What spending one use of a secret id came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// The secret id has no use limit: nothing was spent.
    Unlimited,
    /// One use was spent and some are left.
    Used,
    /// This was its last use: the secret id is gone.
    LastUse,
    /// There is no such secret id (any more): another login spent its last use first.
    Gone,
}

/// Spends one use of a use-limited secret id. Each step is one atomic statement, so when
/// logins race (on one replica or several) every use is spent exactly once: the last use
/// deletes the row in the statement that spends it, and only one statement can delete it.
pub async fn spend_secret_id(pool: &sqlx::AnyPool, mount_id: &str, hash: &str) -> Result<Spent> {
    // Bounded: each round means another login spent a use in between.
    for _ in 0..64 {
        let last =
            sqlx::query("DELETE FROM approle_secret_ids WHERE mount_id = $1 AND hash = $2 AND uses_left = 1")
                .bind(mount_id)
                .bind(hash)
                .execute(pool)
                .await?;
        if last.rows_affected() == 1 {
            return Ok(Spent::LastUse);
        }
        let used = sqlx::query(
            "UPDATE approle_secret_ids SET uses_left = uses_left - 1 \
             WHERE mount_id = $1 AND hash = $2 AND uses_left > 1",
        )
        .bind(mount_id)
        .bind(hash)
        .execute(pool)
        .await?;
        if used.rows_affected() == 1 {
            return Ok(Spent::Used);
        }
        match sqlx::query_scalar::<_, i64>(
            "SELECT uses_left FROM approle_secret_ids WHERE mount_id = $1 AND hash = $2",
        )
        .bind(mount_id)
        .bind(hash)
        .fetch_optional(pool)
        .await?
        {
            None => return Ok(Spent::Gone),
            Some(0) => return Ok(Spent::Unlimited),
            // Down to one use by another login meanwhile: try again.
            Some(_) => continue,
        }
    }
    Ok(Spent::Gone)
}

/// Deletes secret ids expired by `now_ms`, at most `limit`; returns how many went.
pub async fn delete_expired_secret_ids(pool: &sqlx::AnyPool, now_ms: i64, limit: i64) -> Result<u64> {
    let done = sqlx::query(
        "DELETE FROM approle_secret_ids WHERE hash IN (SELECT hash FROM approle_secret_ids \
         WHERE expire_at IS NOT NULL AND expire_at <= $1 LIMIT $2)",
    )
    .bind(now_ms)
    .bind(limit)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
