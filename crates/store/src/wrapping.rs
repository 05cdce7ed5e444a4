//! Wrapped responses (Vault's response wrapping): one row per wrapping token, keyed by the
//! token's accessor, holding the sealed response. A row is handed out at most once: [`take`]
//! deletes it in the statement that reads it, so of two replicas unwrapping the same token
//! only one gets it. Revoking the token deletes its row (a foreign key with `ON DELETE
//! CASCADE`), so expired wrapping tokens leave nothing behind once the token sweeper runs.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

/// The identity a wrapped response is sealed with: the accessor of its wrapping token.
pub fn identity(accessor: &str) -> String {
    format!("wrapped_responses/{accessor}")
}

#[derive(Debug, Clone, FromRow)]
pub struct WrappedRow {
    /// Accessor of the wrapping token.
    pub accessor: String,
    /// The response's JSON, sealed under [`identity`].
    pub response: Vec<u8>,
    /// The request path whose response this is (`creation_path`).
    pub creation_path: String,
    pub created_at: i64,
    /// The wrap TTL, seconds.
    pub ttl: i64,
    pub expire_at: i64,
}

const COLUMNS: &str = "accessor, response, creation_path, created_at, ttl, expire_at";

/// Stores a wrapped response; its token must exist already (same transaction is fine).
pub async fn insert<'e>(exec: impl Executor<'e, Database = Any>, row: &WrappedRow) -> Result<()> {
    sqlx::query(&format!("INSERT INTO wrapped_responses ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
        .bind(&row.accessor)
        .bind(&row.response)
        .bind(&row.creation_path)
        .bind(row.created_at)
        .bind(row.ttl)
        .bind(row.expire_at)
        .execute(exec)
        .await?;
    Ok(())
}

/// The wrapped response of `accessor`, unexpired by `now_ms`, left in place (a lookup).
pub async fn get<'e>(
    exec: impl Executor<'e, Database = Any>,
    accessor: &str,
    now_ms: i64,
) -> Result<Option<WrappedRow>> {
    Ok(sqlx::query_as::<_, WrappedRow>(&format!(
        "SELECT {COLUMNS} FROM wrapped_responses WHERE accessor = $1 AND expire_at > $2"
    ))
    .bind(accessor)
    .bind(now_ms)
    .fetch_optional(exec)
    .await?)
}

/// Removes and returns the wrapped response of `accessor` if it is unexpired by `now_ms`: one
/// statement, so only one caller ever gets a given response.
pub async fn take<'e>(
    exec: impl Executor<'e, Database = Any>,
    accessor: &str,
    now_ms: i64,
) -> Result<Option<WrappedRow>> {
    Ok(sqlx::query_as::<_, WrappedRow>(&format!(
        "DELETE FROM wrapped_responses WHERE accessor = $1 AND expire_at > $2 RETURNING {COLUMNS}"
    ))
    .bind(accessor)
    .bind(now_ms)
    .fetch_optional(exec)
    .await?)
}

pub async fn count<'e>(exec: impl Executor<'e, Database = Any>) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM wrapped_responses").fetch_one(exec).await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::KeySource;
    use crate::testing::TestDb;
    use crate::tokens::{self, TokenRow};

    fn token(accessor: &str) -> TokenRow {
        TokenRow {
            hash: format!("hash-{accessor}"),
            accessor: accessor.into(),
            policies: "[\"response-wrapping\"]".into(),
            meta: "{}".into(),
            bound_cidrs: "[]".into(),
            num_uses: 1,
            ..TokenRow::default()
        }
    }

    fn row(accessor: &str, expire_at: i64) -> WrappedRow {
        WrappedRow {
            accessor: accessor.into(),
            response: b"sealed".to_vec(),
            creation_path: "sys/wrapping/wrap".into(),
            created_at: 0,
            ttl: 60,
            expire_at,
        }
    }

    #[tokio::test]
    async fn a_response_is_taken_once_and_goes_with_its_token() {
        let db = TestDb::new(false).await;
        let store = db.open(KeySource::DevStored).await.unwrap();
        let pool = store.pool();
        for acc in ["a", "b", "c"] {
            tokens::insert(pool, &token(acc), false).await.unwrap();
            insert(pool, &row(acc, 1_000)).await.unwrap();
        }
        // A lookup leaves it; expiry hides it.
        assert!(get(pool, "a", 999).await.unwrap().is_some());
        assert!(get(pool, "a", 1_000).await.unwrap().is_none());
        // Taken once, then gone.
        assert_eq!(take(pool, "a", 10).await.unwrap().unwrap().response, b"sealed");
        assert!(take(pool, "a", 10).await.unwrap().is_none());
        // An expired one is not handed out.
        assert!(take(pool, "b", 1_000).await.unwrap().is_none());
        // Revoking a token deletes its response.
        assert!(tokens::delete_by_accessor(pool, "c").await.unwrap());
        assert!(get(pool, "c", 0).await.unwrap().is_none());
        assert_eq!(count(pool).await.unwrap(), 1, "only b's row is left");
        // A response for a token that does not exist is refused.
        assert!(insert(pool, &row("nobody", 1_000)).await.is_err());
    }
}
