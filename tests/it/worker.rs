//! The expiry worker and the intent sweeper against real databases (SQLite and PostgreSQL),
//! with a revoker that records what it is asked to undo. Tests that show something does not
//! happen run on held tokio time (`ManualTime`): they move time past every point where it
//! could have happened instead of sleeping through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keymint_common::clock::ManualTime;
use keymint_lease::{LeaseManager, RetryPolicy, Revoker};
use keymint_store::leases::{self, LeaseRow};
use keymint_store::revocation;
use keymint_store::testing::TestDb;
use keymint_store::wal::{self, IntentRow};
use keymint_store::{KeySource, Store};
use tokio_util::sync::CancellationToken;

/// Counts revocations per lease as they start (so a second one is counted even while it is
/// still running); fails those whose id contains "stuck".
#[derive(Default)]
struct Recorder {
    revoked: Mutex<HashMap<String, usize>>,
    undone: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Revoker for Recorder {
    async fn revoke(&self, lease: &keymint_lease::Lease) -> Result<(), keymint_lease::RevokeError> {
        if lease.id.contains("stuck") {
            return Err("AccessDenied: not allowed".into());
        }
        if lease.id.contains("unreadable-mount") {
            return Err(keymint_lease::RevokeError::Store(keymint_store::StoreError::Corrupt(
                "mount".into(),
            )));
        }
        *self.revoked.lock().unwrap().entry(lease.id.clone()).or_default() += 1;
        // Long enough for other workers to try to grab the same lease meanwhile; a "slow" one
        // outlasts several claim periods of `short_claims`.
        let pause = if lease.id.contains("hung") {
            3_600_000
        } else if lease.id.contains("slow") {
            1200
        } else {
            5
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        Ok(())
    }

    async fn undo_intent(&self, intent: &IntentRow) -> Result<(), String> {
        if intent.id.contains("stuck") {
            return Err("Throttling".into());
        }
        self.undone.lock().unwrap().push(intent.id.clone());
        Ok(())
    }
}

/// Now, for the tests on real time (their stores keep the system clock).
fn now_ms() -> i64 {
    keymint_common::clock::Clock::system().now_ms()
}

fn lease(id: &str, expire_time: i64) -> LeaseRow {
    LeaseRow {
        id: id.into(),
        mount_id: "m".into(),
        role_name: "r".into(),
        credential_type: "iam_user".into(),
        issue_time: expire_time - 1000,
        expire_time,
        renewable: 1,
        internal: "{}".into(),
        state: leases::STATE_ACTIVE.into(),
        ..Default::default()
    }
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(40),
        irrevocable_after: 3,
        irrevocable_interval: Duration::from_millis(50),
        idle_poll: Duration::from_millis(100),
        intent_grace: Duration::from_secs(60),
        ..RetryPolicy::default()
    }
}

async fn count(store: &Store) -> usize {
    leases::ids_with_prefix(store.pool(), "", "", 100_000).await.unwrap().len()
}

/// Waits (a bounded real time) until no query is in flight on `store` and the tasks woken by an
/// advance of held time have had their turn: the workers have acted on the time they woke to.
async fn settle(store: &Store) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut quiet = 0;
    while quiet < 3 {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        if store.pool().num_idle() == store.pool().size() as usize {
            quiet += 1;
        } else {
            quiet = 0;
            assert!(std::time::Instant::now() < deadline, "the workers never settled");
            keymint_common::clock::real_sleep(Duration::from_millis(2)).await;
        }
    }
}

macro_rules! both {
    ($($name:ident),+) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(super::TestDb::new(false).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(super::TestDb::new(true).await).await
            }
        }
    )+};
}

/// As `both!`, on the current-thread runtime that held time needs.
macro_rules! both_on_held_time {
    ($($name:ident),+) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::TestDb::new(false).await).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name(super::TestDb::new(true).await).await
            }
        }
    )+};
}

both!(
    three_workers_revoke_each_lease_exactly_once,
    a_slow_revocation_keeps_its_claim,
    revoking_a_token_revokes_its_leases_but_not_orphans,
    failures_back_off_and_become_irrevocable,
    a_store_failure_during_a_revocation_is_told_as_one,
    sweeper_undoes_only_old_intents,
    shutdown_releases_the_claims_of_revocations_still_running
);

both_on_held_time!(
    a_new_lease_due_before_the_planned_wake_up_wakes_the_worker,
    a_pause_keeps_due_leases_and_old_intents_until_resumed
);

/// A revocation that hangs past the shutdown grace is dropped and its claim released: the
/// lease is due again at once, not after the claim timeout.
async fn shutdown_releases_the_claims_of_revocations_still_running(db: TestDb) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    leases::insert(store.pool(), &lease("aws/creds/r/hung", now_ms() - 1000)).await.unwrap();
    let policy = RetryPolicy {
        claim_for: Duration::from_secs(600),
        shutdown_grace: Duration::from_millis(200),
        ..fast_policy()
    };
    let manager = LeaseManager::new(store.clone(), Arc::new(Recorder::default()), policy);
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(manager.run_expiry(cancel.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while leases::get(store.pool(), "aws/creds/r/hung").await.unwrap().unwrap().state != "revoking" {
        assert!(std::time::Instant::now() < deadline, "the worker never claimed the due lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("shutdown waited for the hung revocation")
        .unwrap();
    let row = leases::get(store.pool(), "aws/creds/r/hung").await.unwrap().unwrap();
    assert_eq!(row.state, "active", "{row:?}");
    // Another replica can claim it now, 10 minutes before the old claim would have lapsed.
    let postgres = store.backend() == keymint_store::Backend::Postgres;
    let claimed = leases::claim_due(store.pool(), postgres, now_ms(), now_ms() + 60_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["aws/creds/r/hung"]);
}

/// While revocation is paused store-wide, due leases stay and old intents are not undone;
/// resumed, both go.
async fn a_pause_keeps_due_leases_and_old_intents_until_resumed(db: TestDb) {
    let time = ManualTime::start();
    let store = db.open(KeySource::DevStored).await.unwrap().with_clock(time.clock());
    let now_ms = || store.clock().now_ms();
    let pause = revocation::Pause { since: now_ms(), reason: "test".into() };
    revocation::pause(store.pool(), &pause).await.unwrap();
    leases::insert(store.pool(), &lease("aws/creds/r/due", now_ms() - 1000)).await.unwrap();
    let old = IntentRow {
        id: "old".into(),
        mount_id: "m".into(),
        kind: "iam_user".into(),
        data: r#"{"user_name":"u"}"#.into(),
        created_at: now_ms() - 120_000,
    };
    wal::insert(store.pool(), &old).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let policy = RetryPolicy { sweep_interval: Duration::from_millis(100), ..fast_policy() };
    let manager = LeaseManager::new(store.clone(), recorder.clone(), policy);
    let cancel = CancellationToken::new();
    let workers = [
        tokio::spawn(manager.clone().run_expiry(cancel.clone())),
        tokio::spawn(manager.clone().run_sweeper(cancel.clone())),
    ];
    // Five minutes of polls and sweeps, each one acted on.
    settle(&store).await;
    for _ in 0..60 {
        time.advance(Duration::from_secs(5)).await;
        settle(&store).await;
    }
    assert!(manager.revocation_paused().await);
    assert!(recorder.revoked.lock().unwrap().is_empty());
    assert!(recorder.undone.lock().unwrap().is_empty());
    assert_eq!(count(&store).await, 1);

    assert!(revocation::resume(store.pool()).await.unwrap());
    // The next polls (5 s apart while paused) see the resume; the revocation takes 5 ms.
    for _ in 0..3 {
        time.advance(Duration::from_secs(5)).await;
        settle(&store).await;
    }
    time.until("due leases and old intents went after the resume", Duration::from_secs(30), || async {
        time.advance(Duration::from_millis(10)).await;
        count(&store).await == 0 && !recorder.undone.lock().unwrap().is_empty()
    })
    .await;
    cancel.cancel();
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(*recorder.undone.lock().unwrap(), ["old".to_string()]);
}

async fn three_workers_revoke_each_lease_exactly_once(db: TestDb) {
    let setup = db.open(KeySource::DevStored).await.unwrap();
    let due = now_ms() - 1000;
    for i in 0..150 {
        leases::insert(setup.pool(), &lease(&format!("aws/creds/r/{i:04}"), due)).await.unwrap();
    }
    leases::insert(setup.pool(), &lease("aws/creds/r/later", now_ms() + 3_600_000)).await.unwrap();

    // Three "replicas": separate pools on one database, one recorder to count the calls.
    let recorder = Arc::new(Recorder::default());
    let cancel = CancellationToken::new();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let store = db.open(KeySource::DevStored).await.unwrap();
        let manager = LeaseManager::new(store, recorder.clone(), fast_policy());
        workers.push(tokio::spawn(manager.run_expiry(cancel.clone())));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count(&setup).await > 1 {
        assert!(std::time::Instant::now() < deadline, "due leases were not all revoked in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let revoked = recorder.revoked.lock().unwrap().clone();
    assert_eq!(revoked.len(), 150);
    assert!(revoked.values().all(|&n| n == 1), "some lease was revoked twice: {revoked:?}");
    assert!(!revoked.contains_key("aws/creds/r/later"));
    assert!(leases::get(setup.pool(), "aws/creds/r/later").await.unwrap().is_some());
}

/// The worker sleeps until the next lease is due (here: far off, and the idle poll longer
/// still). A lease created meanwhile that falls due sooner is revoked on time, because
/// `lease_created` wakes the worker for it; one that falls due later does not disturb it.
async fn a_new_lease_due_before_the_planned_wake_up_wakes_the_worker(db: TestDb) {
    let time = ManualTime::start();
    let store = db.open(KeySource::DevStored).await.unwrap().with_clock(time.clock());
    let now_ms = || store.clock().now_ms();
    leases::insert(store.pool(), &lease("aws/creds/r/far", now_ms() + 3_600_000)).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let policy = RetryPolicy { idle_poll: Duration::from_secs(600), ..fast_policy() };
    let manager = LeaseManager::new(store.clone(), recorder.clone(), policy);
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(manager.clone().run_expiry(cancel.clone()));
    // Let it find nothing due and go to sleep until "far" (or the idle poll, ten minutes).
    settle(&store).await;

    let later = lease("aws/creds/r/later", now_ms() + 7_200_000);
    leases::insert(store.pool(), &later).await.unwrap();
    manager.lease_created(later.expire_time);
    let soon = lease("aws/creds/r/soon", now_ms() + 200);
    leases::insert(store.pool(), &soon).await.unwrap();
    manager.lease_created(soon.expire_time);

    // A second later, not the ten minutes of its planned sleep, "soon" is gone.
    settle(&store).await;
    time.advance(Duration::from_secs(1)).await;
    time.until("the worker revoked the lease due sooner", Duration::from_secs(30), || async {
        // The recorder's revocation takes 5 ms.
        time.advance(Duration::from_millis(1)).await;
        leases::get(store.pool(), "aws/creds/r/soon").await.unwrap().is_none()
    })
    .await;
    assert!(now_ms() < soon.expire_time + 2_000);
    cancel.cancel();
    worker.await.unwrap();
    let revoked = recorder.revoked.lock().unwrap().clone();
    assert_eq!(revoked.keys().collect::<Vec<_>>(), ["aws/creds/r/soon"]);
}

async fn failures_back_off_and_become_irrevocable(db: TestDb) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    leases::insert(store.pool(), &lease("aws/creds/r/stuck", now_ms() - 1000)).await.unwrap();
    let manager = LeaseManager::new(store.clone(), Arc::new(Recorder::default()), fast_policy());

    // A synchronous revocation reports the failure and schedules a retry.
    let err = manager.revoke_now("aws/creds/r/stuck").await.unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    let row = leases::get(store.pool(), "aws/creds/r/stuck").await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.attempts, row.irrevocable), ("active", 1, 0));
    assert!(row.next_attempt_at.unwrap() > now_ms() - 1000);
    assert_eq!(row.last_error.as_deref(), Some("AccessDenied: not allowed"));

    // The worker keeps trying; past the limit the lease is flagged, and still kept.
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(manager.clone().run_expiry(cancel.clone()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = leases::get(store.pool(), "aws/creds/r/stuck").await.unwrap().expect("never dropped");
        if row.irrevocable == 1 && row.attempts >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not flagged irrevocable: {row:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    worker.await.unwrap();
    let flagged = leases::irrevocable(store.pool(), 10).await.unwrap();
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].last_error.as_deref(), Some("AccessDenied: not allowed"));
    assert_eq!(leases::count(store.pool(), true).await.unwrap(), 1);

    // Forced prefix revocation drops the record and reports the failure.
    let failures = manager.revoke_prefix("aws/creds/r/", true).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert!(leases::get(store.pool(), "aws/creds/r/stuck").await.unwrap().is_none());
}

/// The revoker could not read what it needs from the store: the request is told the store
/// error (a 503 when the database does not answer), not a refused revocation (a 400); the
/// lease records keymint's own failure and is retried like any other.
async fn a_store_failure_during_a_revocation_is_told_as_one(db: TestDb) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let id = "aws/creds/r/unreadable-mount";
    leases::insert(store.pool(), &lease(id, now_ms() + 60_000)).await.unwrap();
    let manager = LeaseManager::new(store.clone(), Arc::new(Recorder::default()), fast_policy());

    let err = manager.revoke_now(id).await.unwrap_err();
    assert!(matches!(err, keymint_lease::LeaseError::Store(_)), "{err:?}");
    let row = leases::get(store.pool(), id).await.unwrap().unwrap();
    assert_eq!((row.state.as_str(), row.attempts), ("active", 1));
    assert_eq!(row.last_error.as_deref(), Some("internal error"));
}

async fn sweeper_undoes_only_old_intents(db: TestDb) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let intent = |id: &str, age_ms: i64| IntentRow {
        id: id.into(),
        mount_id: "m".into(),
        kind: "iam_user".into(),
        data: r#"{"user_name":"u"}"#.into(),
        created_at: now_ms() - age_ms,
    };
    wal::insert(store.pool(), &intent("old", 120_000)).await.unwrap();
    wal::insert(store.pool(), &intent("old-stuck", 120_000)).await.unwrap();
    wal::insert(store.pool(), &intent("fresh", 1_000)).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let manager = LeaseManager::new(store.clone(), recorder.clone(), fast_policy());

    assert_eq!(manager.sweep_intents().await.unwrap(), 1);
    assert_eq!(*recorder.undone.lock().unwrap(), vec!["old".to_string()]);
    let left: Vec<String> =
        wal::older_than(store.pool(), now_ms() + 1, 10).await.unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(left, vec!["old-stuck".to_string(), "fresh".to_string()]);
}

async fn a_slow_revocation_keeps_its_claim(db: TestDb) {
    let setup = db.open(KeySource::DevStored).await.unwrap();
    let due = now_ms() - 1000;
    for i in 0..4 {
        leases::insert(setup.pool(), &lease(&format!("aws/creds/r/slow{i}"), due)).await.unwrap();
    }
    // Claims of 300 ms and revocations of 1.2 s: without the holder renewing its claims, the
    // second worker would take each lease over and revoke it again.
    let policy = RetryPolicy { claim_for: Duration::from_millis(300), ..fast_policy() };
    let recorder = Arc::new(Recorder::default());
    let cancel = CancellationToken::new();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let store = db.open(KeySource::DevStored).await.unwrap();
        let manager = LeaseManager::new(store, recorder.clone(), policy.clone());
        workers.push(tokio::spawn(manager.run_expiry(cancel.clone())));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(&setup).await > 0 {
        assert!(std::time::Instant::now() < deadline, "slow leases were not revoked in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A worker that wrongly took a lease over had started revoking it again before the row
    // was deleted (revocations are counted as they start), and shutdown waits for it.
    cancel.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let revoked = recorder.revoked.lock().unwrap().clone();
    assert_eq!(revoked.len(), 4, "{revoked:?}");
    assert!(revoked.values().all(|&n| n == 1), "a slow lease was revoked twice: {revoked:?}");
}

async fn revoking_a_token_revokes_its_leases_but_not_orphans(db: TestDb) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let later = now_ms() + 3_600_000;
    let owned = |id: &str, accessor: &str, orphan: i64| LeaseRow {
        token_accessor: Some(accessor.into()),
        orphan,
        ..lease(id, later)
    };
    leases::insert(store.pool(), &owned("aws/creds/r/a1", "acc-a", 0)).await.unwrap();
    leases::insert(store.pool(), &owned("aws/creds/r/a2", "acc-a", 0)).await.unwrap();
    leases::insert(store.pool(), &owned("aws/creds/r/a-orphan", "acc-a", 1)).await.unwrap();
    leases::insert(store.pool(), &owned("aws/creds/r/b1", "acc-b", 0)).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let manager = LeaseManager::new(store.clone(), recorder.clone(), fast_policy());
    let cancel = CancellationToken::new();
    let worker = tokio::spawn(manager.clone().run_expiry(cancel.clone()));

    assert_eq!(manager.revoke_for_token("acc-a").await.unwrap(), 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while count(&store).await > 2 {
        assert!(std::time::Instant::now() < deadline, "the token's leases were not revoked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(manager.revoke_for_token("acc-a").await.unwrap(), 0, "nothing left to revoke");
    cancel.cancel();
    worker.await.unwrap();
    let mut revoked: Vec<String> = recorder.revoked.lock().unwrap().keys().cloned().collect();
    revoked.sort();
    assert_eq!(revoked, ["aws/creds/r/a1", "aws/creds/r/a2"]);
    for kept in ["aws/creds/r/a-orphan", "aws/creds/r/b1"] {
        let row = leases::get(store.pool(), kept).await.unwrap().expect("kept");
        assert_eq!(row.expire_time, later, "{kept} must keep its expiry");
    }
}
