//! The expiry worker on held tokio time (`ManualTime`): a lease is revoked once time passes
//! its expiry, and not a step before, with no real waiting for its TTL.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keymint_common::clock::ManualTime;
use keymint_store::leases::{self, LeaseRow};
use keymint_store::testing::TestDb;
use keymint_store::wal::IntentRow;
use keymint_store::{KeySource, Store};
use tokio_util::sync::CancellationToken;

use crate::manager::AWAKE;
use crate::{LeaseManager, MountTtls, RetryPolicy, Revoker, calculate_ttl};

/// Records the leases it revokes.
#[derive(Default)]
struct Recorder {
    revoked: Mutex<Vec<String>>,
}

impl Recorder {
    fn revoked(&self) -> Vec<String> {
        self.revoked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Revoker for Recorder {
    async fn revoke(&self, lease: &crate::Lease) -> Result<(), crate::RevokeError> {
        self.revoked.lock().unwrap().push(lease.id.clone());
        Ok(())
    }

    async fn undo_intent(&self, _intent: &IntentRow) -> Result<(), String> {
        Ok(())
    }
}

/// A lease issued now by the store's clock, for `ttl` as the TTL rules grant it.
fn issue(store: &Store, id: &str, ttl: Duration) -> LeaseRow {
    let decision = calculate_ttl(ttl.as_secs(), 0, MountTtls::default());
    let now = store.clock().now_ms();
    LeaseRow {
        id: id.into(),
        mount_id: "m".into(),
        role_name: "r".into(),
        credential_type: "iam_user".into(),
        issue_time: now,
        expire_time: now + i64::try_from(decision.ttl).unwrap() * 1000,
        renewable: 1,
        internal: "{}".into(),
        state: leases::STATE_ACTIVE.into(),
        ..Default::default()
    }
}

/// The worker's planned wake-up (ms since the epoch), once it is asleep with one later than
/// `after`.
async fn asleep(time: &ManualTime, manager: &LeaseManager, after: i64) -> i64 {
    asleep_until(time, manager, |planned| planned > after).await
}

/// The worker's planned wake-up, once it is asleep with one that satisfies `wanted`.
async fn asleep_until(time: &ManualTime, manager: &LeaseManager, wanted: impl Fn(i64) -> bool) -> i64 {
    let planned = || manager.planned_wake.load(Ordering::Acquire);
    time.until("the worker went to sleep", Duration::from_secs(10), || async {
        planned() != AWAKE && wanted(planned())
    })
    .await;
    planned()
}

async fn started(time: &ManualTime) -> (TestDb, Store, Arc<Recorder>, Arc<LeaseManager>) {
    let db = TestDb::new(false).await;
    let store = db.open(KeySource::DevStored).await.unwrap().with_clock(time.clock());
    let recorder = Arc::new(Recorder::default());
    let manager = LeaseManager::new(store.clone(), recorder.clone(), RetryPolicy::default());
    (db, store, recorder, manager)
}

#[tokio::test]
async fn a_lease_is_revoked_once_its_ttl_has_passed_and_not_before() {
    let time = ManualTime::start();
    let (_db, store, recorder, manager) = started(&time).await;
    let lease = issue(&store, "aws/creds/r/ten-minutes", Duration::from_secs(600));
    leases::insert(store.pool(), &lease).await.unwrap();
    manager.lease_created(lease.expire_time);
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(manager.clone().run_expiry(cancel.clone()));

    // The worker wakes every idle poll (30 s) and finds nothing due, up to the expiry itself.
    let mut planned = asleep(&time, &manager, i64::MIN).await;
    let mut wake_ups = 0;
    while planned < lease.expire_time {
        assert!(recorder.revoked().is_empty(), "revoked at {} before its expiry", store.clock().now_ms());
        assert!(leases::get(store.pool(), &lease.id).await.unwrap().is_some());
        let to = u64::try_from(planned - store.clock().now_ms()).unwrap_or(0) + 1;
        time.advance(Duration::from_millis(to)).await;
        planned = asleep(&time, &manager, planned).await;
        wake_ups += 1;
    }
    assert!(wake_ups >= 19, "the worker looked {wake_ups} times in ten minutes");
    assert!(recorder.revoked().is_empty(), "revoked before its expiry");

    time.advance(Duration::from_millis(
        u64::try_from(lease.expire_time - store.clock().now_ms()).unwrap() + 1,
    ))
    .await;
    time.until("the expired lease was revoked", Duration::from_secs(10), || async {
        leases::get(store.pool(), &lease.id).await.unwrap().is_none()
    })
    .await;
    assert_eq!(recorder.revoked(), [lease.id.as_str()]);
    assert!(store.clock().now_ms() > lease.expire_time);
    cancel.cancel();
    worker.await.unwrap();
}

/// A lease created while the worker sleeps until a later one wakes it; one due later still
/// does not, and both are revoked at their own expiry.
#[tokio::test]
async fn leases_are_revoked_in_expiry_order_at_their_expiry() {
    let time = ManualTime::start();
    let (_db, store, recorder, manager) = started(&time).await;
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(manager.clone().run_expiry(cancel.clone()));
    let idle = asleep(&time, &manager, i64::MIN).await;

    let long = issue(&store, "aws/creds/r/long", Duration::from_secs(20));
    let short = issue(&store, "aws/creds/r/short", Duration::from_secs(5));
    for lease in [&long, &short] {
        leases::insert(store.pool(), lease).await.unwrap();
        manager.lease_created(lease.expire_time);
    }
    // Woken (both fall due before its idle poll), it now sleeps until the short one.
    assert!(short.expire_time < idle);
    asleep_until(&time, &manager, |planned| planned == short.expire_time).await;

    time.advance(Duration::from_secs(6)).await;
    time.until("the short lease was revoked", Duration::from_secs(10), || async {
        recorder.revoked().len() == 1
    })
    .await;
    assert_eq!(recorder.revoked(), [short.id.as_str()]);
    assert!(leases::get(store.pool(), &long.id).await.unwrap().is_some());

    time.advance(Duration::from_secs(15)).await;
    time.until("the long lease was revoked", Duration::from_secs(10), || async {
        recorder.revoked().len() == 2
    })
    .await;
    assert_eq!(recorder.revoked(), [short.id.as_str(), long.id.as_str()]);
    cancel.cancel();
    worker.await.unwrap();
}

/// A stored row that does not read as a lease is a failed revocation: kept, counted and
/// retried later, never dropped and never handed to the revoker half-read.
#[tokio::test]
async fn an_unreadable_lease_is_kept_as_a_failed_revocation() {
    let time = ManualTime::start();
    let (_db, store, recorder, manager) = started(&time).await;
    let broken = LeaseRow {
        credential_type: "no-such-type".into(),
        ..issue(&store, "aws/creds/r/broken", Duration::from_secs(60))
    };
    leases::insert(store.pool(), &broken).await.unwrap();
    let err = manager.revoke_now(&broken.id).await.unwrap_err();
    assert!(err.to_string().contains("unreadable"), "{err}");
    assert!(recorder.revoked().is_empty());
    let kept = leases::get(store.pool(), &broken.id).await.unwrap().expect("the row is kept");
    assert_eq!(kept.attempts, 1);
    assert!(kept.last_error.unwrap_or_default().contains("unknown credential type"));
}
