//! Rotation state of access keys: a mount's root key and its static roles, one row per target.
//!
//! A replica works on a target only while it holds the row's claim, taken with a conditional
//! UPDATE (the row is free or its claim lapsed), so several replicas on one database rotate
//! each due key exactly once. Every write made under a claim names the claim and reports
//! whether it still held: a replica that lost its claim (it stalled past `claimed_until`)
//! learns it before it stores anything.

use sqlx::{Any, Executor, FromRow};

use crate::Result;

/// The target of a mount's root key.
pub const ROOT: &str = "root";

/// The target of a static role.
pub fn static_role_target(name: &str) -> String {
    format!("static-roles/{name}")
}

#[derive(Debug, Clone, FromRow)]
pub struct RotationRow {
    pub mount_id: String,
    pub target: String,
    pub next_due: Option<i64>,
    pub retry_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub last_rotated: Option<i64>,
    /// JSON list of `{"user", "key"}`.
    pub stale_keys: String,
}

const COLUMNS: &str = "mount_id, target, next_due, retry_at, attempts, last_error, last_rotated, stale_keys";

/// A target that is due, with the path of its mount.
#[derive(Debug, Clone, FromRow)]
pub struct DueTarget {
    pub mount_id: String,
    pub mount_path: String,
    pub target: String,
}

pub async fn get<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
) -> Result<Option<RotationRow>> {
    Ok(sqlx::query_as::<_, RotationRow>(&format!(
        "SELECT {COLUMNS} FROM aws_key_rotations WHERE mount_id = $1 AND target = $2"
    ))
    .bind(mount_id)
    .bind(target)
    .fetch_optional(exec)
    .await?)
}

/// Sets the schedule of a target, creating its row if needed; a new schedule forgets the
/// failures of the old one. Stale keys and a claim in progress are kept.
pub async fn set_schedule<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
    next_due: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO aws_key_rotations (mount_id, target, next_due) VALUES ($1, $2, $3) \
         ON CONFLICT (mount_id, target) DO UPDATE SET next_due = excluded.next_due, \
         retry_at = CASE WHEN aws_key_rotations.stale_keys = '[]' THEN NULL \
                         ELSE aws_key_rotations.retry_at END, \
         attempts = 0, last_error = NULL",
    )
    .bind(mount_id)
    .bind(target)
    .bind(next_due)
    .execute(exec)
    .await?;
    Ok(())
}

/// Creates the row of a new target already claimed by `claim`; false if the row exists.
pub async fn insert_claimed<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
    claim: &str,
    claimed_until: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO aws_key_rotations (mount_id, target, claimed_by, claimed_until) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (mount_id, target) DO NOTHING",
    )
    .bind(mount_id)
    .bind(target)
    .bind(claim)
    .bind(claimed_until)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Claims a target for `claim` until `claimed_until`, if nobody holds it (or their claim
/// lapsed) and, with `due_only`, if it is due at `now`. True when the claim was taken.
pub async fn claim<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
    claim: &str,
    now: i64,
    claimed_until: i64,
    due_only: bool,
) -> Result<bool> {
    let due = if due_only { "AND COALESCE(retry_at, next_due) <= $3" } else { "" };
    let done = sqlx::query(&format!(
        "UPDATE aws_key_rotations SET claimed_by = $1, claimed_until = $2 \
         WHERE mount_id = $4 AND target = $5 AND (claimed_until IS NULL OR claimed_until < $3) {due}"
    ))
    .bind(claim)
    .bind(claimed_until)
    .bind(now)
    .bind(mount_id)
    .bind(target)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends a claim still held; false when it was lost.
pub async fn extend<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
    claim: &str,
    claimed_until: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE aws_key_rotations SET claimed_until = $1 WHERE mount_id = $2 AND target = $3 AND claimed_by = $4",
    )
    .bind(claimed_until)
    .bind(mount_id)
    .bind(target)
    .bind(claim)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records the stale keys under a claim still held. `retry_at`, when given, makes the row due
/// then, so a replica that dies before it cleans up leaves the cleanup to another.
pub async fn set_stale<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
    claim: &str,
    stale_keys: &str,
    retry_at: Option<i64>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE aws_key_rotations SET stale_keys = $1, retry_at = COALESCE($2, retry_at) \
         WHERE mount_id = $3 AND target = $4 AND claimed_by = $5",
    )
    .bind(stale_keys)
    .bind(retry_at)
    .bind(mount_id)
    .bind(target)
    .bind(claim)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A successful rotation, under a claim still held: the new schedule, the keys left to
/// delete, and the time of the rotation. With keys left, the row is due at once: the holder
/// deletes them and then releases it, and if the holder dies first, the replica that takes the
/// lapsed claim over deletes them instead of waiting for the next rotation.
pub async fn record_rotation<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
    claim: &str,
    next_due: Option<i64>,
    stale_keys: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE aws_key_rotations SET next_due = $1, stale_keys = $2, last_rotated = $3, \
         attempts = 0, last_error = NULL, retry_at = CASE WHEN $2 = '[]' THEN NULL ELSE $3 END \
         WHERE mount_id = $4 AND target = $5 AND claimed_by = $6",
    )
    .bind(next_due)
    .bind(stale_keys)
    .bind(now)
    .bind(mount_id)
    .bind(target)
    .bind(claim)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a release does to the failure count and message.
#[derive(Debug, Clone, Default)]
pub enum Failure {
    /// The work succeeded: count and message cleared.
    Clear,
    /// The work failed: counted, with its message.
    Failed(String),
    /// Left as they were (work that was not the scheduled rotation).
    #[default]
    Keep,
}

/// How a claimed piece of work ended, written when the claim is let go.
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// `Some(v)`: set `next_due` to `v` (a missed schedule window moves on); `None`: keep it.
    pub next_due: Option<Option<i64>>,
    /// When the row is due again regardless of `next_due` (a retry, a cleanup); `None`: not.
    pub retry_at: Option<i64>,
    pub failure: Failure,
}

/// Lets go of a claim, writing how the work ended.
pub async fn release<'e>(
    exec: impl Executor<'e, Database = Any>,
    mount_id: &str,
    target: &str,
    claim: &str,
    outcome: &Release,
) -> Result<()> {
    let (set_due, due) = match outcome.next_due {
        Some(v) => (1_i64, v),
        None => (0, None),
    };
    let (failure, message) = match &outcome.failure {
        Failure::Clear => (0_i64, None),
        Failure::Failed(m) => (1, Some(m.as_str())),
        Failure::Keep => (2, None),
    };
    sqlx::query(
        "UPDATE aws_key_rotations SET claimed_by = NULL, claimed_until = NULL, retry_at = $1, \
         next_due = CASE WHEN $2 = 1 THEN $3 ELSE next_due END, \
         attempts = CASE WHEN $4 = 0 THEN 0 WHEN $4 = 1 THEN attempts + 1 ELSE attempts END, \
         last_error = CASE WHEN $4 = 0 THEN NULL WHEN $4 = 1 THEN $5 ELSE last_error END \
         WHERE mount_id = $6 AND target = $7 AND claimed_by = $8",
    )
    .bind(outcome.retry_at)
    .bind(set_due)
    .bind(due)
    .bind(failure)
    .bind(message)
    .bind(mount_id)
    .bind(target)
    .bind(claim)
    .execute(exec)
    .await?;
    Ok(())
}

/// Up to `limit` targets due at `now` that nobody holds, soonest first.
pub async fn due<'e>(
    exec: impl Executor<'e, Database = Any>,
    now: i64,
    limit: i64,
) -> Result<Vec<DueTarget>> {
    Ok(sqlx::query_as::<_, DueTarget>(
        "SELECT r.mount_id, m.path AS mount_path, r.target FROM aws_key_rotations r \
         JOIN mounts m ON m.id = r.mount_id \
         WHERE COALESCE(r.retry_at, r.next_due) <= $1 AND (r.claimed_until IS NULL OR r.claimed_until < $1) \
         ORDER BY COALESCE(r.retry_at, r.next_due) LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

pub async fn delete<'e>(exec: impl Executor<'e, Database = Any>, mount_id: &str, target: &str) -> Result<()> {
    sqlx::query("DELETE FROM aws_key_rotations WHERE mount_id = $1 AND target = $2")
        .bind(mount_id)
        .bind(target)
        .execute(exec)
        .await?;
    Ok(())
}
