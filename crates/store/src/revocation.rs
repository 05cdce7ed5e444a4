//! The store-wide switch that pauses automatic revocation: lease expiry, the intent sweeper and
//! the expiry of tokens (which revokes their leases). A restored store starts paused: its leases
//! carry the expiry times of the moment the backup was taken, and leases renewed since would
//! otherwise be revoked while still in use. An operator resumes once the leases look right.
//!
//! The switch is one row of `meta`, so every replica on the database sees it.

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyPool, Executor};

use crate::Result;

const KEY: &str = "revocation_paused";

/// Why and since when automatic revocation is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Milliseconds since the epoch.
    pub since: i64,
    pub reason: String,
}

/// The pause in force, if any.
pub async fn paused(pool: &AnyPool) -> Result<Option<Pause>> {
    let value = sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = $1")
        .bind(KEY)
        .fetch_optional(pool)
        .await?;
    // A row that does not parse still pauses: it was written to stop revocation.
    Ok(value.map(|v| {
        serde_json::from_str(&v)
            .unwrap_or(Pause { since: 0, reason: format!("unreadable pause record: {v}") })
    }))
}

/// Pauses automatic revocation (keeps the first pause's time and reason if one is in force).
pub async fn pause<'e>(exec: impl Executor<'e, Database = Any>, pause: &Pause) -> Result<()> {
    let value = serde_json::to_string(pause).map_err(|e| crate::StoreError::Corrupt(e.to_string()))?;
    sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(KEY)
        .bind(value)
        .execute(exec)
        .await?;
    Ok(())
}

/// Resumes automatic revocation; returns whether it was paused.
pub async fn resume(pool: &AnyPool) -> Result<bool> {
    let gone = sqlx::query("DELETE FROM meta WHERE key = $1").bind(KEY).execute(pool).await?.rows_affected();
    Ok(gone > 0)
}
