//! Claims on periodic background jobs, one row per job: which replica may run it now, and
//! until when.
//!
//! A claim is taken with one conditional upsert that succeeds only when the job is free, its
//! claim lapsed, or the caller already holds it, so of any number of replicas racing for a job
//! exactly one wins. Renewal and release name the holder and report whether it still held.

use sqlx::{Any, Executor};

use crate::Result;

/// Claims `job` for `holder` until `claimed_until`, if nobody else holds it at `now`. True when
/// the claim was taken (or renewed, when `holder` had it already).
pub async fn claim<'e>(
    exec: impl Executor<'e, Database = Any>,
    job: &str,
    holder: &str,
    now: i64,
    claimed_until: i64,
) -> Result<bool> {
    claim_where(exec, job, holder, now, claimed_until, "").await
}

/// [`claim`] for a scheduled run: also refused before the job's next run is due (see
/// [`release_until`]), so a periodic job runs once per interval across the replicas.
pub async fn claim_due<'e>(
    exec: impl Executor<'e, Database = Any>,
    job: &str,
    holder: &str,
    now: i64,
    claimed_until: i64,
) -> Result<bool> {
    claim_where(exec, job, holder, now, claimed_until, " AND job_claims.next_run_at <= $4").await
}

async fn claim_where<'e>(
    exec: impl Executor<'e, Database = Any>,
    job: &str,
    holder: &str,
    now: i64,
    claimed_until: i64,
    and: &str,
) -> Result<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO job_claims (job, holder, claimed_until) VALUES ($1, $2, $3) \
         ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, claimed_until = excluded.claimed_until \
         WHERE (job_claims.claimed_until <= $4 OR job_claims.holder = excluded.holder){and}"
    ))
    .bind(job)
    .bind(holder)
    .bind(claimed_until)
    .bind(now)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves the deadline of `holder`'s claim on `job` to `claimed_until`; false when the claim
/// was lost (it lapsed and another replica took it).
pub async fn renew<'e>(
    exec: impl Executor<'e, Database = Any>,
    job: &str,
    holder: &str,
    claimed_until: i64,
) -> Result<bool> {
    let done = sqlx::query("UPDATE job_claims SET claimed_until = $1 WHERE job = $2 AND holder = $3")
        .bind(claimed_until)
        .bind(job)
        .bind(holder)
        .execute(exec)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Lets go of `holder`'s claim on `job`, so any replica may take it at once; false when it was
/// not held by `holder` any more.
pub async fn release<'e>(exec: impl Executor<'e, Database = Any>, job: &str, holder: &str) -> Result<bool> {
    let done = sqlx::query("UPDATE job_claims SET claimed_until = 0 WHERE job = $1 AND holder = $2")
        .bind(job)
        .bind(holder)
        .execute(exec)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The holder of `job` and its deadline, if the job was ever claimed.
pub async fn holder<'e>(exec: impl Executor<'e, Database = Any>, job: &str) -> Result<Option<(String, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64)>("SELECT holder, claimed_until FROM job_claims WHERE job = $1")
        .bind(job)
        .fetch_optional(exec)
        .await?)
}

/// [`release`], and no scheduled run of `job` (see [`claim_due`]) before `next_run_at`: a
/// later time already set stays.
pub async fn release_until<'e>(
    exec: impl Executor<'e, Database = Any>,
    job: &str,
    holder: &str,
    next_run_at: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE job_claims SET claimed_until = 0, \
         next_run_at = CASE WHEN next_run_at < $1 THEN $1 ELSE next_run_at END \
         WHERE job = $2 AND holder = $3",
    )
    .bind(next_run_at)
    .bind(job)
    .bind(holder)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}
