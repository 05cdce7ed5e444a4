//! Periodic jobs that run on one replica at a time: the intent sweep, token expiry, tidies.
//!
//! Every replica runs the loop of each job; each run first claims the job's row in
//! `job_claims` (see `keymint_store::jobs`) and is skipped when another replica holds it. The
//! holder renews the claim every third of its length while it works and releases it when done,
//! so a replica that dies mid-run delays the job by at most the claim's length: then another
//! replica's next look takes it over.
//!
//! A scheduled run ([`Jobs::periodic`]) also leaves the time of the job's next run in its row:
//! the other replicas' loops skip the job until then, so it runs once per interval across the
//! fleet, not once per replica. A run asked for on demand ([`Jobs::exclusive`]) ignores it.

use std::future::Future;
use std::time::Duration;

use keymint_store::{Store, jobs};
use tracing::{debug, warn};

use crate::worker::while_renewing;

/// The job of undoing abandoned creations (the intent sweeper and `sys/leases/tidy`).
pub const INTENT_SWEEP: &str = "intent-sweep";
/// The job of revoking expired tokens.
pub const TOKEN_EXPIRY: &str = "token-expiry";
/// The job of removing expired AppRole secret ids.
pub const SECRET_ID_TIDY: &str = "approle-secret-id-tidy";

/// This replica's side of the job claims.
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    /// Who this replica is in `job_claims.holder`: random per process, so a restarted replica
    /// does not inherit the claims of its previous life.
    holder: String,
    claim_for: Duration,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Jobs {
    /// Claims that last `claim_for` unless renewed.
    pub fn new(store: Store, claim_for: Duration) -> Jobs {
        Jobs { store, holder: keymint_common::random::base62(16), claim_for }
    }

    /// This replica's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs `work` if this replica can claim `job`, renewing the claim meanwhile and releasing
    /// it after. `None` when another replica holds the job (or the claim could not be
    /// written): the run is skipped, the next look tries again.
    pub async fn exclusive<F: Future>(&self, job: &str, work: F) -> Option<F::Output> {
        self.run(job, None, work).await
    }

    /// [`Jobs::exclusive`] for a job that runs every `every` on each replica: skipped until
    /// `every` (less a tenth, for the replicas' loops drifting) after the fleet's last run, by
    /// whichever replica.
    pub async fn periodic<F: Future>(&self, job: &str, every: Duration, work: F) -> Option<F::Output> {
        self.run(job, Some(every), work).await
    }

    async fn run<F: Future>(&self, job: &str, every: Option<Duration>, work: F) -> Option<F::Output> {
        let now = self.store.clock().now_ms();
        let until = now + millis(self.claim_for);
        let claimed = match every {
            None => jobs::claim(self.store.pool(), job, &self.holder, now, until).await,
            Some(_) => jobs::claim_due(self.store.pool(), job, &self.holder, now, until).await,
        };
        match claimed {
            Ok(true) => {}
            Ok(false) => {
                debug!(job, "held by another replica; skipped");
                return None;
            }
            Err(e) => {
                warn!(job, error = %e, "could not claim a background job; skipped");
                return None;
            }
        }
        let renew_every = (self.claim_for / 3).max(Duration::from_millis(10));
        let out = while_renewing(renew_every, work, || async {
            let until = self.store.clock().now_ms() + millis(self.claim_for);
            match jobs::renew(self.store.pool(), job, &self.holder, until).await {
                Ok(true) => {}
                Ok(false) => warn!(job, "lost the claim on a background job; another replica may run it too"),
                Err(e) => warn!(job, error = %e, "could not renew the claim on a background job"),
            }
        })
        .await;
        let released = match every {
            None => jobs::release(self.store.pool(), job, &self.holder).await,
            Some(every) => {
                let next = now + millis(every - every / 10);
                jobs::release_until(self.store.pool(), job, &self.holder, next).await
            }
        };
        if let Err(e) = released {
            warn!(job, error = %e, "could not release a background job; its claim lapses by itself");
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    //! Two replicas' `Jobs` on one store, on held tokio time: a job runs on one at a time, and
    //! a holder that dies mid-run is taken over once its claim lapses by the store's clock.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use keymint_common::clock::ManualTime;
    use keymint_store::KeySource;
    use keymint_store::testing::TestDb;

    use super::*;

    const CLAIM: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn a_job_runs_on_one_replica_and_a_dead_holder_is_taken_over() {
        let time = ManualTime::start();
        let db = TestDb::new(false).await;
        let store = db.open(KeySource::DevStored).await.unwrap().with_clock(time.clock());
        let (a, b) = (Jobs::new(store.clone(), CLAIM), Jobs::new(store.clone(), CLAIM));
        assert_ne!(a.holder(), b.holder());

        // While `a` works (longer than its claim: it renews), `b` is turned away.
        let (started, finish) = (Arc::new(AtomicBool::new(false)), Arc::new(tokio::sync::Notify::new()));
        let running = tokio::spawn({
            let (a, started, finish) = (a.clone(), started.clone(), finish.clone());
            async move {
                a.exclusive("j", async {
                    started.store(true, Ordering::SeqCst);
                    finish.notified().await;
                })
                .await
            }
        });
        while !started.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        assert_eq!(b.exclusive("j", async { 1 }).await, None);
        for _ in 0..6 {
            time.advance(CLAIM / 3 + Duration::from_millis(1)).await;
            time.until("the claim to be renewed", Duration::from_secs(5), || async {
                let (_, until) = jobs::holder(store.pool(), "j").await.unwrap().unwrap();
                until > store.clock().now_ms() + millis(CLAIM / 2)
            })
            .await;
        }
        assert_eq!(b.exclusive("j", async { 1 }).await, None, "renewed while it works");
        finish.notify_one();
        assert_eq!(running.await.unwrap(), Some(()));
        // Released when done: free at once.
        assert_eq!(b.exclusive("j", async { 2 }).await, Some(2));

        // A holder that dies mid-run (its run dropped: no renewal, no release)...
        let dead = Jobs::new(store.clone(), CLAIM);
        let dead_holder = dead.holder().to_owned();
        let run = tokio::spawn(async move { dead.exclusive("j", std::future::pending::<()>()).await });
        time.until("the doomed replica to claim the job", Duration::from_secs(5), || async {
            jobs::holder(store.pool(), "j")
                .await
                .unwrap()
                .is_some_and(|(h, until)| h == dead_holder && until > 0)
        })
        .await;
        run.abort();
        assert_eq!(a.exclusive("j", async { 3 }).await, None);
        time.advance(CLAIM - Duration::from_secs(1)).await;
        assert_eq!(a.exclusive("j", async { 3 }).await, None, "not before its claim lapses");
        // ...is taken over once it lapses.
        time.advance(Duration::from_secs(1)).await;
        assert_eq!(a.exclusive("j", async { 3 }).await, Some(3));
    }

    #[tokio::test]
    async fn a_periodic_job_runs_once_per_interval_across_replicas() {
        const EVERY: Duration = Duration::from_secs(60);
        let time = ManualTime::start();
        let db = TestDb::new(false).await;
        let store = db.open(KeySource::DevStored).await.unwrap().with_clock(time.clock());
        let (a, b) = (Jobs::new(store.clone(), CLAIM), Jobs::new(store.clone(), CLAIM));
        assert_eq!(a.periodic("j", EVERY, async { 1 }).await, Some(1));
        // The other replica's loop comes round half an interval later: not due yet.
        time.advance(EVERY / 2).await;
        assert_eq!(b.periodic("j", EVERY, async { 2 }).await, None);
        // A run on demand is not held back by the schedule.
        assert_eq!(b.exclusive("j", async { 3 }).await, Some(3));
        // An interval after the last scheduled run, whichever replica looks first runs it.
        time.advance(EVERY / 2).await;
        assert_eq!(b.periodic("j", EVERY, async { 4 }).await, Some(4));
        assert_eq!(a.periodic("j", EVERY, async { 5 }).await, None);
    }
}
