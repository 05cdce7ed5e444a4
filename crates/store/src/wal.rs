//! Write-ahead intents for AWS objects that exist before their lease does.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

#[derive(Debug, Clone, FromRow)]
pub struct IntentRow {
    pub id: String,
    pub mount_id: String,
    /// What to undo, e.g. `iam_user`.
    pub kind: String,
    /// JSON with what the undo needs (the user name).
    pub data: String,
    pub created_at: i64,
}

pub async fn insert<'e>(exec: impl Executor<'e, Database = Any>, row: &IntentRow) -> Result<()> {
    sqlx::query("INSERT INTO wal_intents (id, mount_id, kind, data, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&row.id)
        .bind(&row.mount_id)
        .bind(&row.kind)
        .bind(&row.data)
        .bind(row.created_at)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM wal_intents WHERE id = $1").bind(id).execute(exec).await?;
    Ok(())
}

/// Intents created before `before_ms`, oldest first, at most `limit`.
pub async fn older_than<'e>(
    exec: impl Executor<'e, Database = Any>,
    before_ms: i64,
    limit: i64,
) -> Result<Vec<IntentRow>> {
    Ok(sqlx::query_as::<_, IntentRow>(
        "SELECT id, mount_id, kind, data, created_at FROM wal_intents WHERE created_at < $1 \
         ORDER BY created_at LIMIT $2",
    )
    .bind(before_ms)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Whether an intent of `mount_id` names the IAM user `user_name` (its creation is under way or
/// awaiting the sweeper).
pub async fn exists_for_user<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    user_name: &str,
) -> Result<bool> {
    // The data is JSON written by the engine; `_` in a name only widens the match, which errs
    // on the side of keeping a user.
    let pattern = format!("%\"user_name\":\"{user_name}\"%");
    let n =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM wal_intents WHERE mount_id = $1 AND data LIKE $2")
            .bind(mount_id)
            .bind(pattern)
            .fetch_one(exec)
            .await?;
    Ok(n > 0)
}

/// Intents of a mount (a disabled mount's half-made users must still be torn down).
pub async fn count_for_mount<'e>(exec: impl Executor<'e, Database = Any>, mount_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM wal_intents WHERE mount_id = $1")
        .bind(mount_id)
        .fetch_one(exec)
        .await?)
}
