//! Client tokens, stored only as keyed hashes.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    /// HMAC-SHA256 of the token (see `TokenHasher`).
    pub hash: String,
    pub accessor: String,
    /// JSON array of policy names.
    pub policies: String,
    pub display_name: String,
    /// JSON object of metadata.
    pub meta: String,
    pub created_at: i64,
    pub expire_at: Option<i64>,
}

/// Inserts a token unless one with the same hash exists (a dev root token given again at the
/// next start is the same token).
pub async fn insert_if_absent<'e>(exec: impl Executor<'e, Database = Any>, row: &TokenRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (hash, accessor, policies, display_name, meta, created_at, expire_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash) DO NOTHING",
    )
    .bind(&row.hash)
    .bind(&row.accessor)
    .bind(&row.policies)
    .bind(&row.display_name)
    .bind(&row.meta)
    .bind(row.created_at)
    .bind(row.expire_at)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn get_by_hash<'e>(
    exec: impl Executor<'e, Database = Any>,
    hash: &str,
) -> Result<Option<TokenRow>> {
    Ok(sqlx::query_as::<_, TokenRow>(
        "SELECT hash, accessor, policies, display_name, meta, created_at, expire_at \
         FROM tokens WHERE hash = $1",
    )
    .bind(hash)
    .fetch_optional(exec)
    .await?)
}

pub async fn count<'e>(exec: impl Executor<'e, Database = Any>) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tokens").fetch_one(exec).await?)
}
