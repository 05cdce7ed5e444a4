//! Lease rows: one per credential keymint issued, with what its revocation needs.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

/// Lifecycle states; a lease is `revoking` while a worker holds its claim.
pub const STATE_ACTIVE: &str = "active";

#[derive(Debug, Clone, FromRow)]
pub struct LeaseRow {
    /// Vault-style id, e.g. `aws/creds/deploy/<24 base62>`.
    pub id: String,
    pub mount_id: String,
    pub role_name: String,
    pub credential_type: String,
    pub issue_time: i64,
    pub expire_time: i64,
    pub last_renewal: Option<i64>,
    /// 0 or 1.
    pub renewable: i64,
    /// JSON of non-secret revocation data (user name, whether it is an STS credential).
    pub internal: String,
    /// Sealed secret revocation data, if any.
    pub secret: Option<Vec<u8>>,
    /// The token that asked for the lease, unless it was issued as an orphan.
    pub token_accessor: Option<String>,
    /// 0 or 1.
    pub orphan: i64,
    pub state: String,
}

pub async fn insert<'e>(exec: impl Executor<'e, Database = Any>, row: &LeaseRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO leases (id, mount_id, role_name, credential_type, issue_time, expire_time, \
         last_renewal, renewable, internal, secret, token_accessor, orphan, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&row.id)
    .bind(&row.mount_id)
    .bind(&row.role_name)
    .bind(&row.credential_type)
    .bind(row.issue_time)
    .bind(row.expire_time)
    .bind(row.last_renewal)
    .bind(row.renewable)
    .bind(&row.internal)
    .bind(row.secret.as_deref())
    .bind(row.token_accessor.as_deref())
    .bind(row.orphan)
    .bind(&row.state)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn get<'e>(exec: impl Executor<'e, Database = Any>, id: &str) -> Result<Option<LeaseRow>> {
    Ok(sqlx::query_as::<_, LeaseRow>(
        "SELECT id, mount_id, role_name, credential_type, issue_time, expire_time, last_renewal, \
         renewable, internal, secret, token_accessor, orphan, state FROM leases WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(exec)
    .await?)
}

pub async fn count_for_mount<'e>(exec: impl Executor<'e, Database = Any>, mount_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM leases WHERE mount_id = $1")
        .bind(mount_id)
        .fetch_one(exec)
        .await?)
}

/// A page of a mount's leases in id order, starting after `after` (keyset pagination: no
/// offset scans, nothing loaded beyond the page).
pub async fn page_for_mount<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<LeaseRow>> {
    Ok(sqlx::query_as::<_, LeaseRow>(
        "SELECT id, mount_id, role_name, credential_type, issue_time, expire_time, last_renewal, \
         renewable, internal, secret, token_accessor, orphan, state FROM leases \
         WHERE mount_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(mount_id)
    .bind(after)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM leases WHERE id = $1").bind(id).execute(exec).await?;
    Ok(())
}

/// Intents of a mount (a disabled mount's half-made users must still be torn down).
pub async fn count_intents_for_mount<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM wal_intents WHERE mount_id = $1")
        .bind(mount_id)
        .fetch_one(exec)
        .await?)
}
