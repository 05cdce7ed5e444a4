//! Scheduled access key rotation: claims on rotation targets (a mount's root key, its static
//! roles) and the background task that rotates whatever is due.
//!
//! Every replica runs the task. A target is worked on only under its claim (see
//! `keymint_store::rotation`), renewed while the work lasts, so a due rotation happens once
//! however many replicas share the database, and a replica that dies mid-rotation leaves a
//! claim that lapses. Whatever it had made is listed as stale in the row before anything else
//! happens, and deleted by the next replica to pick the row up.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use keymint_lease::MountTtls;
use keymint_store::rotation::{self as rows, DueTarget, Failure, Release};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::clients::AwsClients;
use crate::error::{EngineError, Result};
use crate::keys::{StaleKey, delete_key, delete_unknown, stale_json};
use crate::{Engine, MountCtx};

/// How long a claim lasts unless renewed, by default; it is renewed every third of that.
pub(crate) const CLAIM_FOR: Duration = Duration::from_secs(60);
/// How often each replica looks for due rotations.
const TICK: Duration = Duration::from_secs(5);
/// Due targets handled at once by one replica.
const CONCURRENCY: usize = 4;
/// Due targets picked up per look.
const BATCH: i64 = 32;
/// When old keys are left to delete, the row is looked at again this soon.
pub(crate) const CLEANUP_RETRY: Duration = Duration::from_secs(10);

/// A held claim on one rotation target.
#[derive(Debug)]
pub(crate) struct Claim {
    pub mount_id: String,
    pub target: String,
    pub id: String,
}

pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    /// Now, by the store's clock: every rotation time is compared with it.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.store.clock().now()
    }

    /// [`Engine::now`] in milliseconds since the epoch, the unit of stored times.
    pub(crate) fn now_ms(&self) -> i64 {
        self.store.clock().now_ms()
    }

    /// Claims `target` of a mount: a new row is created claimed; an existing one is taken
    /// if nobody holds it (and, with `due_only`, if it is due). `None`: someone else has it.
    pub(crate) async fn claim(&self, mount_id: &str, target: &str, due_only: bool) -> Result<Option<Claim>> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.now_ms();
        let until = now + ms(self.claim_for);
        let pool = self.store.pool();
        let taken = if due_only {
            rows::claim(pool, mount_id, target, &id, now, until, true).await?
        } else {
            rows::insert_claimed(pool, mount_id, target, &id, until).await?
                || rows::claim(pool, mount_id, target, &id, now, until, false).await?
        };
        Ok(taken.then(|| Claim { mount_id: mount_id.into(), target: target.into(), id }))
    }

    /// Runs `work` while renewing `claim`.
    pub(crate) async fn holding<F: Future>(&self, claim: &Claim, work: F) -> F::Output {
        keymint_lease::while_renewing(self.claim_for / 3, work, || async {
            let until = self.now_ms() + ms(self.claim_for);
            match rows::extend(self.store.pool(), &claim.mount_id, &claim.target, &claim.id, until).await {
                Ok(true) => {}
                Ok(false) => warn!(mount.id = %claim.mount_id, target = %claim.target,
                    "rotation claim lost; this replica will store nothing"),
                Err(e) => warn!(mount.id = %claim.mount_id, target = %claim.target, error = %e,
                    "could not renew a rotation claim"),
            }
        })
        .await
    }

    /// Lets go of a claim; a failure to write it is logged (the claim lapses by itself).
    pub(crate) async fn release(&self, claim: &Claim, outcome: Release) {
        if let Err(e) =
            rows::release(self.store.pool(), &claim.mount_id, &claim.target, &claim.id, &outcome).await
        {
            warn!(mount.id = %claim.mount_id, target = %claim.target, error = %e,
                "could not release a rotation claim; it lapses by itself");
        }
    }

    /// Records the stale keys under `claim`; false (or an error) when the claim was lost.
    pub(crate) async fn save_stale(&self, claim: &Claim, stale: &[StaleKey], due_now: bool) -> Result<bool> {
        let retry_at = due_now.then(|| self.now_ms());
        Ok(rows::set_stale(
            self.store.pool(),
            &claim.mount_id,
            &claim.target,
            &claim.id,
            &stale_json(stale),
            retry_at,
        )
        .await?)
    }

    /// Deletes the stale keys (never `current`), and for a creation that never recorded its key,
    /// the user's keys made since; what could not be deleted stays listed.
    /// Returns the failures.
    pub(crate) async fn delete_stale(
        &self,
        clients: &AwsClients,
        claim: &Claim,
        stale: &mut Vec<StaleKey>,
        current: Option<&str>,
    ) -> Vec<String> {
        if stale.is_empty() {
            return Vec::new();
        }
        let mut failures = Vec::new();
        let mut kept = Vec::new();
        for k in stale.drain(..) {
            if let Some(known) = &k.known {
                // A creation that never recorded its key: whatever key it made goes.
                let mut keep = known.clone();
                keep.extend(current.map(str::to_owned));
                match delete_unknown(clients, &k.user, &keep, None).await {
                    Ok(()) => {}
                    Err(e) => {
                        failures
                            .push(format!("access keys of {} made by an unfinished rotation: {e}", k.user));
                        kept.push(k);
                    }
                }
                continue;
            }
            if current == Some(k.key.as_str()) {
                continue;
            }
            match delete_key(clients, &k.user, &k.key).await {
                Ok(_) => info!(user.name = %k.user, access_key = %k.key, "deleted a superseded access key"),
                Err(e) => {
                    failures.push(format!("access key {} of {}: {e}", k.key, k.user));
                    kept.push(k);
                }
            }
        }
        *stale = kept;
        if let Err(e) = self.save_stale(claim, stale, false).await {
            warn!(error = %e, "could not record the deleted access keys; they will be looked up again");
        }
        failures
    }

    /// Deletes a new key that will not be used; if that fails it stays listed as stale.
    pub(crate) async fn discard_new_key(
        &self,
        clients: &AwsClients,
        claim: &Claim,
        stale: &mut Vec<StaleKey>,
        user: &str,
        key: &str,
    ) {
        match delete_key(clients, user, key).await {
            Ok(_) => {
                stale.retain(|k| k.key != key);
                if let Err(e) = self.save_stale(claim, stale, false).await {
                    warn!(error = %e, "could not record the deletion of an unused access key");
                }
            }
            Err(e) => warn!(user.name = user, access_key = key, error = %e,
                "could not delete an unused new access key; the background task will"),
        }
    }

    /// The background task: every few seconds, claims due rotation targets of every mount and
    /// works on them, until `cancel` fires. Work in progress is finished first.
    pub async fn run_rotations(self, cancel: CancellationToken) {
        let me = &self;
        while !cancel.is_cancelled() {
            let full = match rows::due(self.store.pool(), self.now_ms(), BATCH).await {
                Ok(due) => {
                    let full = due.len() as i64 == BATCH;
                    futures_util::stream::iter(due).for_each_concurrent(CONCURRENCY, |t| me.work_on(t)).await;
                    full
                }
                Err(e) => {
                    warn!(error = %e, "could not look for due key rotations");
                    false
                }
            };
            if !full {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }
    }

    async fn work_on(&self, due: DueTarget) {
        let claim = match self.claim(&due.mount_id, &due.target, true).await {
            Ok(Some(c)) => c,
            // Another replica took it first.
            Ok(None) => return,
            Err(e) => {
                warn!(mount.id = %due.mount_id, target = %due.target, error = %e, "could not claim a due rotation");
                return;
            }
        };
        let mount =
            MountCtx { id: due.mount_id.clone(), path: due.mount_path.clone(), ttls: MountTtls::default() };
        info!(mount.path = %mount.path, target = %due.target, "claimed a due key rotation");
        let outcome = if due.target == rows::ROOT {
            self.holding(&claim, self.scheduled_root_rotation(&mount, &claim)).await
        } else if let Some(name) = due.target.strip_prefix("static-roles/") {
            self.holding(&claim, self.scheduled_static_rotation(&mount, name, &claim)).await
        } else {
            Err(EngineError::Unexpected(format!("unknown rotation target {:?}", due.target)))
        };
        let outcome = outcome.unwrap_or_else(|e| {
            warn!(mount.path = %mount.path, target = %due.target, error = %e, "rotation failed; will retry");
            Release {
                retry_at: Some(self.now_ms() + ms(crate::schedule::retry_backoff(1))),
                failure: Failure::Failed(e.to_string()),
                ..Release::default()
            }
        });
        self.release(&claim, outcome).await;
    }
}

impl Engine {
    /// The release after a scheduled rotation attempt: cleared on success (due again soon if
    /// old keys are left), backed off on failure.
    pub(crate) fn after_attempt(&self, result: &Result<()>, attempts: i64, stale_left: bool) -> Release {
        let cleanup = stale_left.then(|| self.now_ms() + ms(CLEANUP_RETRY));
        match result {
            Ok(()) => Release { retry_at: cleanup, failure: Failure::Clear, ..Release::default() },
            Err(e) => Release {
                retry_at: Some(self.now_ms() + ms(crate::schedule::retry_backoff(attempts + 1))),
                failure: Failure::Failed(e.to_string()),
                ..Release::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    //! Rotation claims and retry times on held tokio time: a claim lapses when the store's
    //! clock passes it, not when the wall clock does.

    use keymint_common::clock::ManualTime;
    use keymint_store::KeySource;
    use keymint_store::mounts::{self, MountRow};
    use keymint_store::testing::TestDb;

    use super::*;

    #[tokio::test]
    async fn a_claim_lapses_by_the_clock_and_a_failure_retries_after_its_backoff() {
        let time = ManualTime::start();
        let db = TestDb::new(false).await;
        let store = db.open(KeySource::DevStored).await.unwrap().with_clock(time.clock());
        let mount = MountRow {
            id: "m".into(),
            path: "aws/".into(),
            mount_type: "aws".into(),
            description: String::new(),
            accessor: "aws_m".into(),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            options: "{}".into(),
            created_at: store.clock().now_ms(),
        };
        assert!(mounts::insert(store.pool(), &mount).await.unwrap());
        let engine = Engine::new(store.clone());

        let held = engine.claim("m", rows::ROOT, false).await.unwrap().expect("a new row is claimed");
        assert!(engine.claim("m", rows::ROOT, false).await.unwrap().is_none());
        time.advance(CLAIM_FOR - Duration::from_secs(1)).await;
        assert!(engine.claim("m", rows::ROOT, false).await.unwrap().is_none(), "taken before it lapsed");
        time.advance(Duration::from_secs(2)).await;
        let taken = engine.claim("m", rows::ROOT, false).await.unwrap().expect("lapsed, so free");
        assert_ne!(taken.id, held.id);

        let failed = engine.after_attempt(&Err(EngineError::RotationFailed("AWS said no".into())), 0, false);
        assert_eq!(failed.retry_at, Some(engine.now_ms() + ms(crate::schedule::retry_backoff(1))));
        let cleanup = engine.after_attempt(&Ok(()), 3, true);
        assert_eq!(cleanup.retry_at, Some(engine.now_ms() + ms(CLEANUP_RETRY)));
    }
}
