//! The lease lifecycle on top of the store: lookup, listing, revocation now or later, by
//! prefix or forced.
//!
//! A lease is claimed before it is revoked (state `revoking` with a deadline), so a lease is
//! revoked by one request or one replica at a time, and a replica that dies holding a claim
//! only delays the lease until the deadline passes. A revoked lease's row is deleted; a failed
//! revocation goes back to `active` with a retry time, and after repeated failures the lease
//! is flagged irrevocable and retried more slowly, never dropped. The background tasks that
//! revoke what falls due live in `worker`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keymint_store::leases;

use crate::jobs::Jobs;
use crate::model::{Lease, UnreadableLease};
use keymint_store::revocation;
use keymint_store::wal::IntentRow;
use keymint_store::{Store, StoreError};
use rand::Rng;
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

/// Undoes in AWS what a lease, or an interrupted creation, holds. Implemented by the engine.
#[async_trait::async_trait]
pub trait Revoker: Send + Sync + 'static {
    /// Ok once nothing of the lease is left; an error is retried later.
    async fn revoke(&self, lease: &Lease) -> Result<(), RevokeError>;

    /// Ok once whatever a write-ahead intent names (a user whose creation was interrupted)
    /// is gone; an error is retried at the next sweep.
    async fn undo_intent(&self, intent: &IntentRow) -> Result<(), String>;
}

/// Why a revocation did not finish. Either way the lease stays, and is retried later.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// AWS refused or failed, or the lease does not allow it: what the lease records and a
    /// caller is shown.
    #[error("{0}")]
    Failed(String),
    /// The store could not be read for what the revocation needs (the lease's mount, its root
    /// config). Recorded on the lease as keymint's own failure; a request is told by the
    /// store error itself, a 503 when the database does not answer.
    #[error("internal error")]
    Store(#[source] StoreError),
}

impl From<String> for RevokeError {
    fn from(reason: String) -> Self {
        RevokeError::Failed(reason)
    }
}

impl From<&str> for RevokeError {
    fn from(reason: &str) -> Self {
        RevokeError::Failed(reason.to_owned())
    }
}

/// Retry and batching settings of the expiry worker.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// First retry delay; doubled per failure.
    pub base: Duration,
    /// Longest delay between retries of a lease not yet flagged irrevocable.
    pub cap: Duration,
    /// Failures after which a lease is flagged irrevocable.
    pub irrevocable_after: i64,
    /// Delay between retries of an irrevocable lease.
    pub irrevocable_interval: Duration,
    /// How long a claim holds before another replica may take the lease over. The holder
    /// renews it every third of this while it works, so it bounds how long a dead replica's
    /// leases wait, not how long a revocation may take.
    pub claim_for: Duration,
    /// Revocations run at once by one replica.
    pub concurrency: usize,
    /// Longest sleep when nothing is due (leases created through other replicas).
    pub idle_poll: Duration,
    /// Age after which a write-ahead intent names an abandoned creation. It must exceed the
    /// longest creation (AWS calls with retries) and IAM's consistency window.
    pub intent_grace: Duration,
    /// How often the intent sweeper looks.
    pub sweep_interval: Duration,
    /// At shutdown, how long revocations under way may take to finish; the claims of those
    /// still running then are released, so another replica (or the next start) takes them at
    /// once instead of after `claim_for`.
    pub shutdown_grace: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(10),
            cap: Duration::from_secs(15 * 60),
            irrevocable_after: 6,
            irrevocable_interval: Duration::from_secs(60 * 60),
            claim_for: Duration::from_secs(60),
            concurrency: 8,
            idle_poll: Duration::from_secs(30),
            intent_grace: Duration::from_secs(5 * 60),
            sweep_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The delay before retry number `attempts` (1 for the first retry), with jitter so leases
/// that failed together do not retry together.
pub fn backoff(policy: &RetryPolicy, attempts: i64, jitter: f64) -> Duration {
    let base = if attempts >= policy.irrevocable_after {
        policy.irrevocable_interval
    } else {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        policy.base.saturating_mul(2u32.saturating_pow(exp)).min(policy.cap)
    };
    base.mul_f64(jitter.clamp(0.5, 1.0))
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease is being revoked by another request")]
    Busy,
    #[error("{0}")]
    Revoke(String),
    #[error(transparent)]
    Unreadable(#[from] UnreadableLease),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a prefix revocation could not revoke.
#[derive(Debug, Clone)]
pub struct Failure {
    pub lease_id: String,
    pub error: String,
}

/// What a revocation prefix names, as Vault reads it: a whole lease id names that lease alone;
/// anything else is a folder, so `aws/creds/r` means `aws/creds/r/…`, never `aws/creds/r2/…`.
/// Read a page at a time with [`PrefixScope::next`].
enum PrefixScope {
    One(Option<String>),
    Folder { folder: String, after: String },
}

impl PrefixScope {
    /// The next ids; `None` when done.
    async fn next(&mut self, manager: &LeaseManager) -> Result<Option<Vec<String>>, LeaseError> {
        match self {
            PrefixScope::One(id) => Ok(id.take().map(|id| vec![id])),
            PrefixScope::Folder { folder, after } => {
                let page = leases::ids_with_prefix(manager.store.pool(), folder, after, 100).await?;
                match page.last() {
                    Some(last) => {
                        *after = last.clone();
                        Ok(Some(page))
                    }
                    None => Ok(None),
                }
            }
        }
    }
}

pub struct LeaseManager {
    pub(crate) store: Store,
    pub(crate) revoker: Arc<dyn Revoker>,
    pub(crate) policy: RetryPolicy,
    pub(crate) wake: Notify,
    /// When the expiry worker, asleep, next looks for due leases by itself (ms since the
    /// epoch); [`AWAKE`] while it works. A new lease due later needs no wake-up.
    pub(crate) planned_wake: AtomicI64,
    /// Whether the last look found automatic revocation paused (to log changes once).
    paused_seen: AtomicBool,
    /// Claims on the periodic jobs (intent sweep, and those of other crates), as long as
    /// lease claims.
    jobs: Jobs,
}

/// How often paused background work looks whether revocation was resumed.
pub(crate) const PAUSED_POLL: Duration = Duration::from_secs(5);

/// [`LeaseManager::planned_wake`] while the worker is awake: every new lease wakes it again,
/// since it may have looked for the next due lease before that lease was committed.
pub(crate) const AWAKE: i64 = i64::MIN;

impl LeaseManager {
    pub fn new(store: Store, revoker: Arc<dyn Revoker>, policy: RetryPolicy) -> Arc<Self> {
        let jobs = Jobs::new(store.clone(), policy.claim_for);
        Arc::new(LeaseManager {
            jobs,
            store,
            revoker,
            policy,
            wake: Notify::new(),
            planned_wake: AtomicI64::new(AWAKE),
            paused_seen: AtomicBool::new(false),
        })
    }

    /// This replica's claims on periodic jobs.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Tells the worker a lease was created (call it once the lease is committed), falling due
    /// at `expire_time_ms`. The worker is woken only if the lease falls due before its planned
    /// wake-up, or if it is awake (its next sleep is then cut short to look again): issuing a
    /// credential costs the worker no database round trip of its own.
    pub fn lease_created(&self, expire_time_ms: i64) {
        let planned = self.planned_wake.load(Ordering::Acquire);
        if planned == AWAKE || expire_time_ms < planned {
            self.wake.notify_one();
        }
    }

    pub async fn lookup(&self, id: &str) -> Result<Option<Lease>, LeaseError> {
        Ok(leases::get(self.store.pool(), id).await?.map(Lease::try_from).transpose()?)
    }

    /// Vault's `sys/leases/lookup/<prefix>` listing: the next path segment of every lease under
    /// `prefix` (which ends with `/`), sub-folders with their trailing slash.
    pub async fn list_children(&self, prefix: &str) -> Result<Vec<String>, LeaseError> {
        let mut keys: Vec<String> = Vec::new();
        let mut after = String::new();
        loop {
            let page = leases::ids_with_prefix(self.store.pool(), prefix, &after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            for id in &page {
                let rest = &id[prefix.len()..];
                let key = match rest.find('/') {
                    Some(i) => &rest[..=i],
                    None => rest,
                };
                if keys.last().map(String::as_str) != Some(key) {
                    keys.push(key.to_string());
                }
            }
        }
        keys.dedup();
        Ok(keys)
    }

    /// Revokes one lease now. `Ok(false)` when there is no such lease (Vault answers 204).
    pub async fn revoke_now(&self, id: &str) -> Result<bool, LeaseError> {
        let now = self.now_ms();
        let claimed =
            leases::claim_one(self.store.pool(), id, now, now + millis(self.policy.claim_for)).await?;
        let Some(lease) = claimed else {
            return match leases::get(self.store.pool(), id).await? {
                None => Ok(false),
                Some(_) => Err(LeaseError::Busy),
            };
        };
        let held = Arc::new(Mutex::new(HashSet::from([lease.id.clone()])));
        let attempts = lease.attempts;
        match self.holding(&held, self.revoke_row(lease)).await {
            Ok(()) => {
                leases::delete(self.store.pool(), id).await?;
                info!(lease.id = id, "lease revoked");
                Ok(true)
            }
            Err(e) => {
                self.record_failure(id, attempts, &e.to_string()).await?;
                Err(match e {
                    RevokeError::Failed(reason) => LeaseError::Revoke(reason),
                    RevokeError::Store(e) => LeaseError::Store(e),
                })
            }
        }
    }

    /// Makes a lease due now; the expiry worker revokes it shortly.
    pub async fn revoke_later(&self, id: &str) -> Result<(), LeaseError> {
        leases::make_due(self.store.pool(), id, self.now_ms()).await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Revoking a token revokes the leases it created, except those issued as orphans: they
    /// are made due now and the expiry worker revokes them (with its retries) shortly, as
    /// Vault's token revocation hands leases to its expiration manager. Returns how many.
    pub async fn revoke_for_token(&self, token_accessor: &str) -> Result<u64, LeaseError> {
        let n = leases::make_due_for_token(self.store.pool(), token_accessor, self.now_ms()).await?;
        if n > 0 {
            info!(leases = n, "token revoked; its leases are being revoked");
            self.wake.notify_one();
        }
        Ok(n)
    }

    /// Revokes every lease `prefix` names ([`PrefixScope`]), going on past failures. With
    /// `force`, a lease whose revocation failed is deleted all the same (the operator takes over
    /// the cleanup); its failure is still reported. Returns what could not be revoked.
    pub async fn revoke_prefix(&self, prefix: &str, force: bool) -> Result<Vec<Failure>, LeaseError> {
        let mut pages = self.scope(prefix).await?;
        let mut failures = Vec::new();
        while let Some(page) = pages.next(self).await? {
            for id in page {
                if let Err(e) = self.revoke_now(&id).await {
                    if force {
                        warn!(lease.id = %id, error = %e, "revocation failed; lease record dropped by force");
                        leases::delete(self.store.pool(), &id).await?;
                    }
                    failures.push(Failure { lease_id: id, error: e.to_string() });
                }
            }
        }
        Ok(failures)
    }

    /// [`LeaseManager::revoke_prefix`] without waiting (Vault's `sync=false`): the leases are
    /// made due, and the expiry loop revokes them. Returns how many.
    pub async fn revoke_prefix_later(&self, prefix: &str) -> Result<u64, LeaseError> {
        let mut pages = self.scope(prefix).await?;
        let mut count = 0;
        while let Some(page) = pages.next(self).await? {
            for id in page {
                self.revoke_later(&id).await?;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn scope(&self, prefix: &str) -> Result<PrefixScope, LeaseError> {
        if !prefix.ends_with('/') && leases::get(self.store.pool(), prefix).await?.is_some() {
            return Ok(PrefixScope::One(Some(prefix.to_string())));
        }
        let folder = if prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        Ok(PrefixScope::Folder { folder, after: String::new() })
    }

    /// Revokes what a claimed row's lease made. A row that does not read as a lease fails
    /// like a revocation AWS refused: it is retried and, if it never reads, flagged
    /// irrevocable, never dropped.
    pub(crate) async fn revoke_row(&self, row: leases::LeaseRow) -> Result<(), RevokeError> {
        let lease = Lease::try_from(row).map_err(|e| e.to_string())?;
        self.revoker.revoke(&lease).await
    }

    /// Records a failed revocation of lease `id`, which had failed `attempts` times before.
    pub(crate) async fn record_failure(
        &self,
        id: &str,
        attempts: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let attempts = attempts + 1;
        let delay = backoff(&self.policy, attempts, rand::rng().random_range(0.5..=1.0));
        leases::record_failure(
            self.store.pool(),
            id,
            error,
            self.now_ms() + millis(delay),
            self.policy.irrevocable_after,
        )
        .await?;
        metrics::counter!("keymint_lease_revocation_failures_total").increment(1);
        if attempts == self.policy.irrevocable_after {
            metrics::counter!("keymint_leases_flagged_irrevocable_total").increment(1);
            error!(lease.id = %id, attempts, error, "lease is irrevocable: keymint keeps retrying, but a person should look");
        } else {
            warn!(lease.id = %id, attempts, error, retry_in_secs = delay.as_secs(), "revocation failed; will retry");
        }
        Ok(())
    }

    /// Whether automatic revocation is paused store-wide (a restored store starts so); logged
    /// when it changes. A store that cannot be read counts as not paused: claiming would fail
    /// there too.
    pub async fn revocation_paused(&self) -> bool {
        let paused = match revocation::paused(self.store.pool()).await {
            Ok(p) => p,
            Err(e) => {
                debug!(error = %e, "could not read the revocation pause");
                None
            }
        };
        let now = paused.is_some();
        if self.paused_seen.swap(now, Ordering::AcqRel) != now {
            match &paused {
                Some(p) => {
                    warn!(reason = %p.reason, "automatic revocation is paused: expired leases are kept until an operator resumes it (keymint operator resume-revocation)")
                }
                None => info!("automatic revocation resumed"),
            }
        }
        now
    }

    /// Now, by the store's clock, in milliseconds since the epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        self.store.clock().now_ms()
    }
}

/// A poisoned set of ids is still a usable set of ids.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_then_slows_down() {
        let p = RetryPolicy::default();
        assert_eq!(backoff(&p, 1, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(&p, 2, 1.0), Duration::from_secs(20));
        assert_eq!(backoff(&p, 5, 1.0), Duration::from_secs(160));
        assert_eq!(backoff(&p, 6, 1.0), Duration::from_secs(3600));
        assert_eq!(backoff(&p, 60, 1.0), Duration::from_secs(3600));
        let capped = RetryPolicy { irrevocable_after: 100, ..RetryPolicy::default() };
        assert_eq!(backoff(&capped, 40, 1.0), Duration::from_secs(900));
        assert_eq!(backoff(&p, 1, 0.5), Duration::from_secs(5));
        // Jitter never goes below half or above the full delay.
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(&p, 1, 3.0), Duration::from_secs(10));
    }
}
