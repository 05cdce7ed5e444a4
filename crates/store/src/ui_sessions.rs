//! Web UI sessions: a session id's keyed hash, the signed-in token sealed, and when it ends.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

/// The identity a session's token is sealed with.
pub fn identity(id_hash: &str) -> String {
    format!("ui_sessions/{id_hash}")
}

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub token: Vec<u8>,
    pub created_at: i64,
    pub expire_at: i64,
}

pub async fn insert<'e>(exec: impl Executor<'e, Database = Any>, row: &SessionRow) -> Result<()> {
    sqlx::query("INSERT INTO ui_sessions (id_hash, token, created_at, expire_at) VALUES ($1, $2, $3, $4)")
        .bind(&row.id_hash)
        .bind(&row.token)
        .bind(row.created_at)
        .bind(row.expire_at)
        .execute(exec)
        .await?;
    Ok(())
}

/// The session, unless it has ended by `now_ms`.
pub async fn get<'e>(
    exec: impl Executor<'e, Database = Any>,
    id_hash: &str,
    now_ms: i64,
) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as::<_, SessionRow>(
        "SELECT id_hash, token, created_at, expire_at FROM ui_sessions WHERE id_hash = $1 AND expire_at > $2",
    )
    .bind(id_hash)
    .bind(now_ms)
    .fetch_optional(exec)
    .await?)
}

pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1").bind(id_hash).execute(exec).await?;
    Ok(())
}

/// Removes sessions that ended by `now_ms`.
pub async fn delete_ended<'e>(exec: impl Executor<'e, Database = Any>, now_ms: i64) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM ui_sessions WHERE expire_at <= $1").bind(now_ms).execute(exec).await?;
    Ok(done.rows_affected())
}
