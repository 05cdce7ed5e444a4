//! The background work of the lease manager: the expiry worker that revokes leases as they
//! fall due, and the sweeper that undoes creations abandoned under a write-ahead intent.
//!
//! Both read "now" from the store's clock and sleep on tokio's timers, so a test that pauses
//! tokio's time and moves it drives them without waiting (see `keymint_common::clock`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keymint_store::Backend;
use keymint_store::leases::{self, LeaseRow};
use keymint_store::wal;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::manager::{AWAKE, LeaseError, LeaseManager, PAUSED_POLL, lock, millis};

impl LeaseManager {
    /// The expiry worker: claims due leases as revocation slots free up (never more than it
    /// can work on at once, so nothing sits claimed while waiting) and revokes them with
    /// bounded concurrency; one slow or hung AWS call holds one slot, not the whole worker.
    /// When nothing is due it sleeps until the next lease falls due, a new lease is created,
    /// or `idle_poll` passes. A heartbeat renews the claims of the revocations under way.
    pub async fn run_expiry(self: Arc<Self>, cancel: CancellationToken) {
        let postgres = self.store.backend() == Backend::Postgres;
        let slots = self.policy.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(slots));
        let held: Arc<Mutex<HashSet<String>>> = Arc::default();
        let tasks = TaskTracker::new();
        let abandon = CancellationToken::new();
        let heartbeat = tokio::spawn({
            let me = self.clone();
            let held = held.clone();
            async move { me.holding(&held, std::future::pending::<()>()).await }
        });
        while !cancel.is_cancelled() {
            if self.revocation_paused().await {
                self.sleep(&cancel, PAUSED_POLL.min(self.policy.idle_poll)).await;
                continue;
            }
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => permit,
                _ = cancel.cancelled() => break,
            };
            let Ok(first) = first else { break };
            let free = permits.available_permits() + 1;
            let now = self.now_ms();
            let claimed = leases::claim_due(
                self.store.pool(),
                postgres,
                now,
                now + millis(self.policy.claim_for),
                i64::try_from(free).unwrap_or(1),
            )
            .await;
            let batch = match claimed {
                Ok(batch) => batch,
                Err(e) => {
                    drop(first);
                    warn!(error = %e, "could not claim due leases");
                    self.sleep(&cancel, Duration::from_secs(5)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                drop(first);
                let wait = match leases::next_due(self.store.pool()).await {
                    Ok(Some(at)) => Duration::from_millis(u64::try_from(at - now).unwrap_or(0)),
                    _ => self.policy.idle_poll,
                };
                let wait = wait.min(self.policy.idle_poll);
                // Published after the look-up: a lease committed since then either saw `AWAKE`
                // and left a wake-up for the sleep below, or sees this time and compares.
                self.planned_wake.store(now.saturating_add(millis(wait)), Ordering::Release);
                self.sleep(&cancel, wait).await;
                self.planned_wake.store(AWAKE, Ordering::Release);
                continue;
            }
            let mut first = Some(first);
            for lease in batch {
                // This loop is the only taker of permits, and `free` were free: no wait here.
                let permit = match first.take() {
                    Some(p) => p,
                    None => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                lock(&held).insert(lease.id.clone());
                let me = self.clone();
                let held = held.clone();
                let abandon = abandon.clone();
                tasks.spawn(async move {
                    let id = lease.id.clone();
                    tokio::select! {
                        // Finished: done with its claim either way.
                        _ = me.expire(lease) => { lock(&held).remove(&id); }
                        // Abandoned at shutdown: the claim stays in `held`, to be released.
                        _ = abandon.cancelled() => {}
                    }
                    drop(permit);
                });
            }
        }
        // Revocations under way get the grace period to finish, their claims renewed; those
        // still running are then dropped mid-way (a revocation is safe to repeat) and their
        // claims released, so nothing waits out a claim timeout for a replica that is gone.
        tasks.close();
        if tokio::time::timeout(self.policy.shutdown_grace, tasks.wait()).await.is_err() {
            abandon.cancel();
            tasks.wait().await;
        }
        heartbeat.abort();
        let left: Vec<String> = lock(&held).drain().collect();
        if !left.is_empty() {
            match leases::release_claims(self.store.pool(), &left).await {
                Ok(n) => info!(released = n, "shutdown: released the claims on revocations still under way"),
                Err(e) => {
                    warn!(error = %e, "shutdown: could not release lease claims; they lapse after the claim timeout")
                }
            }
        }
    }

    async fn expire(&self, lease: LeaseRow) {
        match self.revoke_row(lease.clone()).await {
            Ok(()) => match leases::delete(self.store.pool(), &lease.id).await {
                Ok(()) => {
                    metrics::counter!("keymint_leases_expired_revoked_total").increment(1);
                    // How long after its expiry the lease was gone: pacing, retries and how
                    // busy the worker was, all in one figure.
                    let late_ms = (self.now_ms() - lease.expire_time).max(0);
                    metrics::histogram!("keymint_lease_expiry_lateness_seconds")
                        .record(late_ms as f64 / 1000.0);
                    info!(lease.id = %lease.id, "expired lease revoked")
                }
                Err(e) => {
                    warn!(lease.id = %lease.id, error = %e, "revoked, but the record remains; it will be revoked again")
                }
            },
            Err(e) => {
                if let Err(se) = self.record_failure(&lease.id, lease.attempts, &e.to_string()).await {
                    warn!(lease.id = %lease.id, error = %se, "could not record a failed revocation; the claim will lapse and it is retried");
                }
                // Its retry may fall due before the worker's planned wake-up.
                self.wake.notify_one();
            }
        }
    }

    /// Undoes the creations of every intent older than the grace period; returns how many were
    /// cleared. An intent whose undo fails stays for the next sweep.
    pub async fn sweep_intents(&self) -> Result<usize, LeaseError> {
        let cutoff = self.now_ms() - millis(self.policy.intent_grace);
        let mut cleared = 0;
        loop {
            let batch = wal::older_than(self.store.pool(), cutoff, 50).await?;
            if batch.is_empty() {
                return Ok(cleared);
            }
            let mut progressed = false;
            for intent in &batch {
                match self.revoker.undo_intent(intent).await {
                    Ok(()) => {
                        wal::delete(self.store.pool(), &intent.id).await?;
                        info!(intent.id = %intent.id, intent.kind = %intent.kind, "abandoned creation undone");
                        cleared += 1;
                        progressed = true;
                    }
                    Err(e) => {
                        warn!(intent.id = %intent.id, error = %e, "could not undo an abandoned creation; will retry")
                    }
                }
            }
            if !progressed {
                return Ok(cleared);
            }
        }
    }

    /// [`LeaseManager::sweep_intents`] under the intent-sweep job claim: `None` when another
    /// replica is sweeping (two sweeps would tear the same users down twice).
    pub async fn sweep_intents_exclusive(&self) -> Option<Result<usize, LeaseError>> {
        self.jobs().exclusive(crate::jobs::INTENT_SWEEP, self.sweep_intents()).await
    }

    /// How often the intent sweeper looks: `sweep_interval`, and at least as often as an
    /// intent's grace.
    fn sweep_every(&self) -> Duration {
        self.policy.sweep_interval.min(self.policy.intent_grace.max(Duration::from_secs(1)))
    }

    /// The intent sweeper: sweeps every `sweep_interval` (see `sweep_every`), once across the
    /// fleet (a periodic job claim).
    pub async fn run_sweeper(self: Arc<Self>, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            if self.revocation_paused().await {
                self.sleep(&cancel, PAUSED_POLL).await;
                continue;
            }
            let every = self.sweep_every();
            if let Some(Err(e)) =
                self.jobs().periodic(crate::jobs::INTENT_SWEEP, every, self.sweep_intents()).await
            {
                warn!(error = %e, "intent sweep failed");
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                // A short grace (tests, impatient operators) is honoured by sweeping as often.
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Runs `work` while renewing the claims on the leases in `held` (the work removes each
    /// lease as it finishes with it) every third of the claim time.
    pub(crate) async fn holding<F: Future>(&self, held: &Mutex<HashSet<String>>, work: F) -> F::Output {
        let every = (self.policy.claim_for / 3).max(Duration::from_millis(10));
        while_renewing(every, work, || async {
            let ids: Vec<String> = lock(held).iter().cloned().collect();
            let until = self.now_ms() + millis(self.policy.claim_for);
            for chunk in ids.chunks(500) {
                if let Err(e) = leases::extend_claims(self.store.pool(), chunk, until).await {
                    warn!(error = %e, "could not renew lease claims; another replica may take them over");
                }
            }
        })
        .await
    }

    pub(crate) async fn sleep(&self, cancel: &CancellationToken, d: Duration) {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = self.wake.notified() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }
}

/// Runs `work` to its end, calling `renew` every `every` meanwhile: how a replica keeps a claim
/// in the database alive while it works on what it claimed.
pub async fn while_renewing<F, R, RF>(every: Duration, work: F, mut renew: R) -> F::Output
where
    F: Future,
    R: FnMut() -> RF,
    RF: Future<Output = ()>,
{
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => renew().await,
        }
    }
}

#[cfg(test)]
mod tests;
