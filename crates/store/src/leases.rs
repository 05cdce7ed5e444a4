//! Lease rows: one per credential keymint issued, with what its revocation needs.

use sqlx::{Any, Executor, FromRow};

use crate::{Backend, Result};

/// Lifecycle states; a lease is `revoking` while a worker holds its claim. A revoked lease's
/// row is deleted.
pub const STATE_ACTIVE: &str = "active";
pub const STATE_REVOKING: &str = "revoking";

const COLUMNS: &str = "id, mount_id, role_name, credential_type, issue_time, expire_time, last_renewal, \
     renewable, internal, secret, token_accessor, orphan, state, attempts, next_attempt_at, last_error, irrevocable";

#[derive(Debug, Clone, Default, FromRow)]
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
    /// Failed revocation attempts so far.
    #[sqlx(default)]
    pub attempts: i64,
    /// When a failed revocation may be tried again (unix ms).
    #[sqlx(default)]
    pub next_attempt_at: Option<i64>,
    #[sqlx(default)]
    pub last_error: Option<String>,
    /// 0 or 1: flagged after repeated failures; still retried, more slowly.
    #[sqlx(default)]
    pub irrevocable: i64,
}

pub async fn insert<'e>(exec: impl Executor<'e, Database = Any>, row: &LeaseRow) -> Result<()> {
    insert_with(exec, INSERT, row).await
}

const INSERT_COLUMNS: &str = "id, mount_id, role_name, credential_type, issue_time, expire_time, \
     last_renewal, renewable, internal, secret, token_accessor, orphan, state";
const INSERT: &str = "INSERT INTO leases (id, mount_id, role_name, credential_type, issue_time, expire_time, \
     last_renewal, renewable, internal, secret, token_accessor, orphan, state) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// [`insert`], on its own, for a lease whose record is all there is to lose: one that leaves
/// nothing to clean up in AWS (STS credentials expire by themselves, and revoking them does
/// nothing). On PostgreSQL its commit does not wait for the WAL to reach the disk
/// (`synchronous_commit = off` for this statement's transaction only): a crash of the database
/// server may lose the last such records, and nothing else. Everything that has something to
/// clean up (intents, `iam_user` leases) keeps waiting for the flush. On SQLite (WAL,
/// `synchronous = NORMAL`) commits never wait for the disk: the same as [`insert`].
pub async fn insert_unflushed<'e>(
    exec: impl Executor<'e, Database = Any>,
    backend: Backend,
    row: &LeaseRow,
) -> Result<()> {
    match backend {
        Backend::Sqlite => insert(exec, row).await,
        Backend::Postgres => {
            // `set_config(.., true)` holds for the statement's own (implicit) transaction, and
            // synchronous_commit is read when that transaction commits.
            let sql = format!(
                "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true)) \
                 INSERT INTO leases ({INSERT_COLUMNS}) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM unflushed"
            );
            insert_with(exec, &sql, row).await
        }
    }
}

async fn insert_with<'e>(exec: impl Executor<'e, Database = Any>, sql: &str, row: &LeaseRow) -> Result<()> {
    sqlx::query(sql)
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
    Ok(sqlx::query_as::<_, LeaseRow>(&format!("SELECT {COLUMNS} FROM leases WHERE id = $1"))
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
    Ok(sqlx::query_as::<_, LeaseRow>(&format!(
        "SELECT {COLUMNS} FROM leases WHERE mount_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    ))
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

/// A page of lease ids starting with `prefix`, after `after`, in id order.
pub async fn ids_with_prefix<'e>(
    exec: impl Executor<'e, Database = Any>,
    prefix: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<String>> {
    // Range scan instead of LIKE: no escaping of `%`/`_` in ids, and the primary key index
    // serves it on both backends. U+10FFFF sorts after every character an id can hold.
    let upper = format!("{prefix}\u{10FFFF}");
    let start = if after.is_empty() { prefix } else { after };
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT id FROM leases WHERE id > $1 AND id >= $2 AND id < $3 ORDER BY id LIMIT $4",
    )
    .bind(start)
    .bind(prefix)
    .bind(upper)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Sets a lease's expiry (renewal).
pub async fn set_expiry<'e>(
    exec: impl Executor<'e, Database = Any>,
    id: &str,
    expire_time: i64,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE leases SET expire_time = $1, last_renewal = $2 WHERE id = $3 AND state = 'active'",
    )
    .bind(expire_time)
    .bind(now_ms)
    .bind(id)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes a lease due now, so the expiry worker revokes it (asynchronous revocation).
pub async fn make_due<'e>(exec: impl Executor<'e, Database = Any>, id: &str, now_ms: i64) -> Result<()> {
    sqlx::query(
        "UPDATE leases SET expire_time = $1, next_attempt_at = NULL WHERE id = $2 AND expire_time > $1",
    )
    .bind(now_ms)
    .bind(id)
    .execute(exec)
    .await?;
    Ok(())
}

/// Claims up to `limit` due leases for `claim_until` (unix ms): active leases past their expiry
/// and retry time, and leases whose previous claim lapsed (a replica died holding them). On
/// PostgreSQL rows locked by another replica's claim are skipped, so each lease goes to one
/// replica; SQLite has a single writer, so the UPDATE itself is the lock.
pub async fn claim_due<'e>(
    exec: impl Executor<'e, Database = Any>,
    postgres: bool,
    now_ms: i64,
    claim_until: i64,
    limit: i64,
) -> Result<Vec<LeaseRow>> {
    let lock = if postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE leases SET state = 'revoking', claimed_until = $1 WHERE id IN ( \
           SELECT id FROM leases WHERE \
             (state = 'active' AND expire_time <= $2 AND (next_attempt_at IS NULL OR next_attempt_at <= $2)) \
             OR (state = 'revoking' AND claimed_until < $2) \
           ORDER BY expire_time LIMIT $3 {lock}) \
         RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as::<_, LeaseRow>(&sql).bind(claim_until).bind(now_ms).bind(limit).fetch_all(exec).await?)
}

/// Records a failed revocation: the lease goes back to active with a retry time.
pub async fn record_failure<'e>(
    exec: impl Executor<'e, Database = Any>,
    id: &str,
    error: &str,
    next_attempt_at: i64,
    irrevocable_after: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE leases SET state = 'active', claimed_until = NULL, attempts = attempts + 1, \
         next_attempt_at = $1, last_error = $2, \
         irrevocable = CASE WHEN attempts + 1 >= $3 THEN 1 ELSE irrevocable END WHERE id = $4",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(irrevocable_after)
    .bind(id)
    .execute(exec)
    .await?;
    Ok(())
}

/// When the next lease falls due (unix ms), if any: the expiry worker sleeps until then. Two
/// index look-ups, never a scan: the earliest lease not waiting for a retry (first row of the
/// `(state, expire_time)` index that passes the filter), and among the few leases that wait
/// for a retry (the partial `leases_retry` index), the earliest retry or expiry, whichever is
/// later for each.
pub async fn next_due(exec: &sqlx::Pool<Any>) -> Result<Option<i64>> {
    let fresh = sqlx::query_scalar::<_, i64>(
        "SELECT expire_time FROM leases WHERE state = 'active' AND next_attempt_at IS NULL \
         ORDER BY expire_time LIMIT 1",
    )
    .fetch_optional(exec)
    .await?;
    let retrying = sqlx::query_scalar::<_, Option<i64>>(
        // The state test sits in the CASE, not the WHERE: given `state = ?`, SQLite would walk
        // the `(state, expire_time)` index over every active lease instead of `leases_retry`.
        "SELECT MIN(CASE WHEN state <> 'active' THEN NULL \
                         WHEN next_attempt_at > expire_time THEN next_attempt_at ELSE expire_time END) \
         FROM leases WHERE next_attempt_at IS NOT NULL",
    )
    .fetch_one(exec)
    .await?;
    Ok(match (fresh, retrying) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Claims one lease for immediate revocation, unless another request or replica holds it.
pub async fn claim_one<'e>(
    exec: impl Executor<'e, Database = Any>,
    id: &str,
    now_ms: i64,
    claim_until: i64,
) -> Result<Option<LeaseRow>> {
    Ok(sqlx::query_as::<_, LeaseRow>(&format!(
        "UPDATE leases SET state = 'revoking', claimed_until = $1 \
         WHERE id = $2 AND (state = 'active' OR claimed_until < $3) RETURNING {COLUMNS}"
    ))
    .bind(claim_until)
    .bind(id)
    .bind(now_ms)
    .fetch_optional(exec)
    .await?)
}

/// Leases flagged irrevocable, oldest expiry first, at most `limit`.
pub async fn irrevocable<'e>(exec: impl Executor<'e, Database = Any>, limit: i64) -> Result<Vec<LeaseRow>> {
    Ok(sqlx::query_as::<_, LeaseRow>(&format!(
        "SELECT {COLUMNS} FROM leases WHERE irrevocable = 1 ORDER BY expire_time LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// How many leases there are, all or only the irrevocable ones.
pub async fn count<'e>(exec: impl Executor<'e, Database = Any>, only_irrevocable: bool) -> Result<i64> {
    let sql = if only_irrevocable {
        "SELECT COUNT(*) FROM leases WHERE irrevocable = 1"
    } else {
        "SELECT COUNT(*) FROM leases"
    };
    Ok(sqlx::query_scalar::<_, i64>(sql).fetch_one(exec).await?)
}

/// One group of the lease census: leases of a mount and role, of one credential type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseCount {
    pub mount_id: String,
    pub role_name: String,
    pub credential_type: String,
    /// All leases of the group not yet revoked (active, or being revoked).
    pub leases: i64,
    /// Of those, the ones flagged irrevocable.
    pub irrevocable: i64,
}

/// Every lease counted by mount, role and credential type (for the metrics gauges): one
/// aggregate scan of the table.
pub async fn census<'e>(exec: impl Executor<'e, Database = Any>) -> Result<Vec<LeaseCount>> {
    let rows = sqlx::query_as::<_, (String, String, String, i64, i64)>(
        "SELECT mount_id, role_name, credential_type, COUNT(*), \
         COALESCE(SUM(CASE WHEN irrevocable = 1 THEN 1 ELSE 0 END), 0) \
         FROM leases GROUP BY mount_id, role_name, credential_type \
         ORDER BY mount_id, role_name, credential_type",
    )
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(mount_id, role_name, credential_type, leases, irrevocable)| LeaseCount {
            mount_id,
            role_name,
            credential_type,
            leases,
            irrevocable,
        })
        .collect())
}

/// Pushes the claim deadline of leases this replica is still revoking to `claim_until`: the
/// claim holder's heartbeat, so a claim can be short (a dead replica's leases are soon taken
/// over) without a slow revocation losing its claim to another replica.
pub async fn extend_claims<'e>(
    exec: impl Executor<'e, Database = Any>,
    ids: &[String],
    claim_until: i64,
) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let placeholders: Vec<String> = (2..ids.len() + 2).map(|n| format!("${n}")).collect();
    let sql = format!(
        "UPDATE leases SET claimed_until = $1 WHERE state = 'revoking' AND id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(claim_until);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.execute(exec).await?.rows_affected())
}

/// Gives back claims on leases this replica was revoking (at shutdown): they are due again at
/// once for any replica. Returns how many were released.
pub async fn release_claims<'e>(exec: impl Executor<'e, Database = Any>, ids: &[String]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "UPDATE leases SET state = 'active', claimed_until = NULL WHERE state = 'revoking' AND id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.execute(exec).await?.rows_affected())
}

/// Makes every lease a token created (and did not ask to orphan) due now, so the expiry worker
/// revokes them: what revoking a token does to its leases. Returns how many were due-dated.
pub async fn make_due_for_token<'e>(
    exec: impl Executor<'e, Database = Any>,
    token_accessor: &str,
    now_ms: i64,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE leases SET expire_time = $1, next_attempt_at = NULL \
         WHERE token_accessor = $2 AND orphan = 0 AND expire_time > $1",
    )
    .bind(now_ms)
    .bind(token_accessor)
    .execute(exec)
    .await?;
    Ok(done.rows_affected())
}
