//! Token roles (`auth/token/roles/<name>`): each role is a JSON body written by keymint-auth,
//! which owns its shape; this module only keeps it by name.

use sqlx::{Any, Executor};

use crate::Result;

/// The role's JSON body, if there is a role of that name.
pub async fn get<'e>(exec: impl Executor<'e, Database = Any>, name: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT body FROM token_roles WHERE name = $1")
        .bind(name)
        .fetch_optional(exec)
        .await?)
}

/// Creates or replaces a role.
pub async fn put<'e>(
    exec: impl Executor<'e, Database = Any>,
    name: &str,
    body: &str,
    now_ms: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO token_roles (name, body, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(body)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Deletes a role; false when there was none.
pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, name: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM token_roles WHERE name = $1").bind(name).execute(exec).await?;
    Ok(done.rows_affected() == 1)
}

/// Every role name, sorted.
pub async fn names<'e>(exec: impl Executor<'e, Database = Any>) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>("SELECT name FROM token_roles ORDER BY name").fetch_all(exec).await?)
}
