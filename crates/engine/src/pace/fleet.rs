//! Pacing shared by the replicas of one installation (PostgreSQL): a mount's caps and the rate
//! AWS's throttling taught are one budget for the whole fleet, not one per process.
//!
//! Each replica holds a slice of each family's rate, sized by demand: its share is
//! `(its demand + 1) / (the fleet's demand + one per replica)`, where a replica's demand is the
//! calls it was asked for per second plus the calls in its queues. The shares of the live
//! replicas add up to the whole rate, so the fleet as a whole keeps to a cap, or to what AWS
//! accepts; the `+ 1` keeps an idle replica's slice small but never empty. A replica's slice
//! lapses when it stops reporting ([`SLICE_TTL_MS`]), and the others take it over, all but
//! that sliver, which a lapsed replica keeps for a minute: a burst after a pause then finds
//! every replica counting the others from its first exchange.
//!
//! A replica exchanges with the database every [`EXCHANGE_EVERY`] while it makes calls (and
//! at once after a throttle): one short transaction that reports its demand, what AWS accepted
//! from it in the last second and any cut it made, and reads back the fleet's state and the
//! others' slices. Between exchanges the replica paces from memory, so no AWS call waits for a
//! database round trip; only the first call after a pause of more than the slice lifetime
//! exchanges before it goes, so it does not use a slice the fleet has forgotten.
//!
//! A throttle seen by any replica cuts the fleet's rate: the first report of it is a new cut,
//! measured from what the whole fleet had AWS accept in the last second, and the others' later
//! reports within the cut's spacing raise that measure as their late successes come back, as
//! one process's own do. The exchange that makes a cut also notifies the other replicas
//! (PostgreSQL's `NOTIFY`, on [`pacing::CUT_CHANNEL`]), which exchange at once and adopt it:
//! their paid slots turn stale and their queues keep to the new rate. A notification missed
//! (a replica reconnecting) costs only the wait for the next regular exchange. Every replica
//! computes the same CUBIC regrowth from the same stored cut.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use keymint_store::Store;
use keymint_store::pacing::{self, Exchanged, FleetRate, Others, SLICE_TTL_MS, Slice, Upkeep};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::bucket::{Bucket, CUT_SPACING, FLOOR_RATE, FORGET_AFTER, FleetView, Learned, Report};
use super::{Family, lock};

/// How often a replica that makes calls exchanges with the fleet.
pub const EXCHANGE_EVERY: Duration = Duration::from_millis(250);
/// The longest a call waits for the exchange before it (after a pause), when the database is
/// slow or down: it then goes on the shares known.
const EXCHANGE_WAIT: Duration = Duration::from_secs(1);
/// Failed exchanges are logged as warnings at most this often.
const WARN_EVERY_MS: i64 = 60_000;

const FAMILIES: [Family; 3] = [Family::IamWrite, Family::IamRead, Family::Sts];

/// This replica's link to the fleet's pacing state of one mount.
#[derive(Debug)]
pub struct Fleet {
    store: Store,
    mount_id: String,
    /// Who this replica is in `aws_pace_slices`: random per process.
    replica: String,
    /// When this replica last exchanged, and last made a call (unix milliseconds; 0: never).
    exchanged_ms: AtomicI64,
    touched_ms: AtomicI64,
    warned_ms: AtomicI64,
    /// One exchange at a time, and what the last one saw.
    seen: tokio::sync::Mutex<Seen>,
    /// Asks for an exchange now (after a throttle).
    kick: Notify,
}

#[derive(Debug, Default)]
struct Seen {
    /// Each family's fleet epoch at the last exchange.
    epochs: [Option<i64>; 3],
    at: Option<Instant>,
    /// When this replica last made sure of the mount's rows and deleted gone replicas' slices
    /// (unix milliseconds; 0: never).
    upkept_ms: i64,
}

/// How often an exchange also does the upkeep of the pacing tables.
const UPKEEP_EVERY_MS: i64 = 60_000;

impl Fleet {
    pub fn new(store: Store, mount_id: &str, replica: &str) -> Fleet {
        Fleet {
            store,
            mount_id: mount_id.to_owned(),
            replica: replica.to_owned(),
            exchanged_ms: AtomicI64::new(0),
            touched_ms: AtomicI64::new(0),
            warned_ms: AtomicI64::new(0),
            seen: tokio::sync::Mutex::default(),
            kick: Notify::new(),
        }
    }

    /// Before a call: notes that the replica is making calls, and exchanges first if its slice
    /// has lapsed (or it never had one).
    pub(super) async fn before_call(&self, buckets: &[Mutex<Bucket>; 3]) {
        let now_ms = self.store.clock().now_ms();
        self.touched_ms.store(now_ms, Ordering::Relaxed);
        if now_ms - self.exchanged_ms.load(Ordering::Relaxed) < SLICE_TTL_MS {
            return;
        }
        if tokio::time::timeout(EXCHANGE_WAIT, self.exchange_logged(buckets, true)).await.is_err() {
            debug!(mount = %self.mount_id, "the fleet's pacing state did not answer in time; pacing on the shares known");
        }
    }

    /// Exchanges now rather than at the next turn: after a throttle here (the fleet hears of
    /// the cut at once), or a cut made by another replica (this one adopts it at once).
    pub(super) fn exchange_soon(&self) {
        self.kick.notify_one();
    }

    /// Waits for the next exchange's turn (or a throttle), then exchanges if the replica made
    /// calls within the slice lifetime. The pacer's background task calls it in a loop.
    pub(super) async fn tick(&self, buckets: &[Mutex<Bucket>; 3]) {
        tokio::select! {
            _ = tokio::time::sleep(EXCHANGE_EVERY) => {}
            _ = self.kick.notified() => {}
        }
        let now_ms = self.store.clock().now_ms();
        if now_ms - self.touched_ms.load(Ordering::Relaxed) < SLICE_TTL_MS {
            self.exchange_logged(buckets, false).await;
        }
    }

    async fn exchange_logged(&self, buckets: &[Mutex<Bucket>; 3], only_if_stale: bool) {
        let mut seen = self.seen.lock().await;
        if only_if_stale
            && self.store.clock().now_ms() - self.exchanged_ms.load(Ordering::Relaxed) < SLICE_TTL_MS
        {
            // Another caller exchanged while this one waited its turn.
            return;
        }
        let started = std::time::Instant::now();
        let outcome = match self.exchange(buckets, &mut seen).await {
            Ok(()) => "ok",
            Err(e) => {
                let now_ms = self.store.clock().now_ms();
                let last = self.warned_ms.load(Ordering::Relaxed);
                if now_ms - last >= WARN_EVERY_MS
                    && self
                        .warned_ms
                        .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    warn!(mount = %self.mount_id, error = %e, "could not exchange AWS pacing state with the fleet; pacing on the shares known");
                } else {
                    debug!(mount = %self.mount_id, error = %e, "could not exchange AWS pacing state with the fleet");
                }
                "error"
            }
        };
        metrics::counter!("keymint_aws_pace_exchanges_total", "outcome" => outcome).increment(1);
        metrics::histogram!("keymint_aws_pace_exchange_seconds").record(started.elapsed().as_secs_f64());
    }

    /// One exchange (see the module's text), with what the last one `seen`.
    async fn exchange(&self, buckets: &[Mutex<Bucket>; 3], seen: &mut Seen) -> keymint_store::Result<()> {
        let now_ms = self.store.clock().now_ms();
        let now = Instant::now();
        let since = seen.at.map_or(EXCHANGE_EVERY, |at| now.saturating_duration_since(at));
        let reports: Vec<Report> = buckets.iter().map(|b| lock(b).report(now, since)).collect();
        let slices: Vec<(&str, Slice)> = FAMILIES
            .iter()
            .zip(&reports)
            .map(|(f, r)| (f.key(), Slice { demand: r.demand, queued: r.queued, accepted: r.accepted }))
            .collect();
        let mut pushed = [false; 3];
        let upkeep = if now_ms - seen.upkept_ms >= UPKEEP_EVERY_MS { Upkeep::Rows } else { Upkeep::None };
        let exchanged = pacing::exchange(
            &self.store,
            &self.mount_id,
            &self.replica,
            now_ms,
            &slices,
            upkeep,
            |family, stored, others| {
                let i = FAMILIES.iter().position(|f| f.key() == family).unwrap_or(0);
                let cut = reports[i].cut.map(|l| to_stored(l, now, now_ms));
                let (merged, new) = merge(stored, cut, reports[i].accepted + others.accepted, now_ms);
                pushed[i] = new;
                merged
            },
        )
        .await?;
        for (i, (bucket, Exchanged { rate, others })) in buckets.iter().zip(exchanged).enumerate() {
            let report = &reports[i];
            // Placed by the instants the exchange began at, `now` and `now_ms`.
            let learned = rate.learned.and_then(|l| from_stored(l, now, now_ms));
            // A cut this replica did not make (nor one of the same burst it made itself).
            let cut_elsewhere =
                !pushed[i] && report.cut.is_none() && seen.epochs[i].is_some_and(|e| rate.epoch > e);
            let view = FleetView {
                learned,
                cut_elsewhere,
                share: share(report, &others),
                others_queued: others.queued,
            };
            lock(bucket).adopt(Instant::now(), report, view);
            seen.epochs[i] = Some(rate.epoch);
        }
        seen.at = Some(now);
        if upkeep == Upkeep::Rows {
            seen.upkept_ms = now_ms;
        }
        self.exchanged_ms.store(now_ms, Ordering::Relaxed);
        Ok(())
    }
}

/// How long the cut listener waits before connecting again, and at most between looks at
/// whether its engine is still there.
const LISTEN_RETRY: Duration = Duration::from_secs(1);
const LISTEN_LOOK: Duration = Duration::from_secs(5);

/// The pacers of an engine, by mount id.
pub type Pacers = std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<super::Pacer>>>;

/// Hears the cuts other replicas make ([`pacing::CutListener`]) and has the mount's pacer
/// exchange at once, until `pacers` (the engine's) is gone. Nothing to do on SQLite.
pub async fn listen_for_cuts(store: Store, pacers: std::sync::Weak<Pacers>) {
    let mut listener = None;
    while pacers.strong_count() > 0 {
        let heard = match &mut listener {
            Some(l) => tokio::time::timeout(LISTEN_LOOK, pacing::CutListener::next(l)).await,
            None => match pacing::CutListener::connect(&store).await {
                Ok(Some(l)) => {
                    listener = Some(l);
                    continue;
                }
                Ok(None) => return,
                Err(e) => Ok(Err(e)),
            },
        };
        match heard {
            Err(_) => {} // nothing for a while
            Ok(Ok(mount)) => {
                let Some(pacers) = pacers.upgrade() else { return };
                let pacer = lock(&pacers).get(&mount).cloned();
                if let Some(pacer) = pacer {
                    pacer.fleet_cut();
                }
            }
            Ok(Err(e)) => {
                debug!(error = %e, "not hearing the fleet's AWS pacing cuts for now; the regular exchanges carry them");
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        }
    }
}

/// A replica's part of the fleet's rate: by demand, with one call a second added to each
/// replica's, so an idle replica keeps a small slice and an idle fleet shares evenly. Replicas
/// idle for less than a minute keep that sliver too: when a burst comes after a pause, each
/// replica's first exchange already counts the others, instead of taking the whole rate
/// until their slices come back.
fn share(mine: &Report, others: &Others) -> f64 {
    let mine = mine.demand + 1.0;
    mine / (mine + others.demand + (others.replicas + others.lapsed) as f64)
}

/// Merges what the fleet stored for a family with this replica's report: `cut`, a cut this
/// replica made that the fleet has not heard of; `accepting`, what the fleet had AWS accept in
/// the last second (this replica's count, and the others' as last reported). Returns the
/// state to store, and whether `cut` was taken as a new cut.
///
/// A cut more than [`CUT_SPACING`] after the stored one (or with none stored) is a new cut: the
/// epoch moves on. One within the spacing is the same burst's signal, as are reports without a
/// cut during it: they only raise the measure of what AWS was accepting, up to the ceiling. A
/// cut older than [`FORGET_AFTER`] is forgotten.
fn merge(stored: FleetRate, cut: Option<pacing::Learned>, accepting: f64, now_ms: i64) -> (FleetRate, bool) {
    let spacing = millis(CUT_SPACING);
    let live = stored.learned.filter(|l| now_ms - l.at_ms <= millis(FORGET_AFTER));
    let ceiling = |l: &pacing::Learned| l.ceiling.unwrap_or(f64::INFINITY);
    if let Some(cut) = cut
        && live.is_none_or(|l| cut.at_ms >= l.at_ms + spacing)
    {
        let measured = if accepting > 0.0 { accepting } else { cut.max };
        let max = measured.min(ceiling(&cut)).max(FLOOR_RATE);
        return (FleetRate { learned: Some(pacing::Learned { max, ..cut }), epoch: stored.epoch + 1 }, true);
    }
    let learned = live.map(|mut l| {
        if now_ms - l.at_ms < spacing {
            l.max = l.max.max(accepting.min(ceiling(&l)));
        }
        l
    });
    (FleetRate { learned, epoch: stored.epoch }, false)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A bucket's cut as the fleet stores it: its instant as unix milliseconds.
fn to_stored(l: Learned, now: Instant, now_ms: i64) -> pacing::Learned {
    let age = millis(now.saturating_duration_since(l.at));
    pacing::Learned { max: l.max, at_ms: now_ms - age, ceiling: l.ceiling.is_finite().then_some(l.ceiling) }
}

/// A stored cut as a bucket keeps it; `None` when it is too old to place (forgotten anyway).
fn from_stored(l: pacing::Learned, now: Instant, now_ms: i64) -> Option<Learned> {
    let age = Duration::from_millis(u64::try_from(now_ms - l.at_ms).unwrap_or(0));
    Some(Learned { max: l.max, at: now.checked_sub(age)?, ceiling: l.ceiling.unwrap_or(f64::INFINITY) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(max: f64, at_ms: i64) -> pacing::Learned {
        pacing::Learned { max, at_ms, ceiling: None }
    }

    #[test]
    fn the_first_report_of_a_throttle_is_a_cut_measured_across_the_fleet() {
        let (merged, new) = merge(FleetRate::default(), Some(cut(7.0, 1_000)), 21.0, 1_100);
        assert!(new);
        assert_eq!(merged.epoch, 1);
        assert_eq!(merged.learned.unwrap().max, 21.0, "what the fleet had accepted, not one replica");
        // Nothing accepted yet (AWS answers throttles at once): the replica's own measure.
        let (merged, _) = merge(FleetRate::default(), Some(cut(7.0, 1_000)), 0.0, 1_000);
        assert_eq!(merged.learned.unwrap().max, 7.0);
    }

    #[test]
    fn throttles_of_the_same_burst_are_one_cut_and_late_successes_raise_its_measure() {
        let stored = FleetRate { learned: Some(cut(14.0, 1_000)), epoch: 3 };
        // Another replica's cut 400 ms later: the same burst.
        let (merged, new) = merge(stored, Some(cut(5.0, 1_400)), 20.0, 1_450);
        assert!(!new);
        assert_eq!(merged.epoch, 3);
        assert_eq!(merged.learned.unwrap().max, 20.0);
        assert_eq!(merged.learned.unwrap().at_ms, 1_000);
        // Never lowered, and never raised above the rate in force when AWS throttled.
        let capped = FleetRate {
            learned: Some(pacing::Learned { ceiling: Some(18.0), ..cut(14.0, 1_000) }),
            epoch: 3,
        };
        let (merged, _) = merge(capped, None, 30.0, 1_500);
        assert_eq!(merged.learned.unwrap().max, 18.0);
        let (merged, _) = merge(capped, None, 3.0, 1_500);
        assert_eq!(merged.learned.unwrap().max, 14.0);
        // After the spacing, reports no longer move it; a new throttle is a new cut.
        let (merged, _) = merge(stored, None, 40.0, 2_500);
        assert_eq!(merged, stored);
        let (merged, new) = merge(stored, Some(cut(9.0, 2_500)), 12.0, 2_600);
        assert!(new);
        assert_eq!((merged.epoch, merged.learned.unwrap().max), (4, 12.0));
    }

    #[test]
    fn a_cut_is_forgotten_after_long_calm() {
        let stored = FleetRate { learned: Some(cut(14.0, 0)), epoch: 1 };
        let (merged, _) = merge(stored, None, 0.0, millis(FORGET_AFTER) + 1);
        assert_eq!(merged, FleetRate { learned: None, epoch: 1 });
    }

    #[test]
    fn shares_follow_demand_and_an_idle_fleet_shares_evenly() {
        let report = |demand| Report { demand, queued: 0.0, accepted: 0.0, cut: None, cuts: 0 };
        let idle = Others { replicas: 2, ..Others::default() };
        assert!((share(&report(0.0), &idle) - 1.0 / 3.0).abs() < 1e-9);
        // After a pause, the others' slices have lapsed, but they still count.
        let paused = Others { lapsed: 2, ..Others::default() };
        assert!((share(&report(0.0), &paused) - 1.0 / 3.0).abs() < 1e-9);
        let busy = Others { replicas: 2, demand: 198.0, ..Others::default() };
        assert!((share(&report(99.0), &busy) - 1.0 / 3.0).abs() < 1e-9);
        // A replica with no calls keeps a sliver: its first call is not stuck until the next
        // exchange.
        let s = share(&report(0.0), &busy);
        assert!(s > 0.0 && s < 0.01, "{s}");
        assert_eq!(share(&report(5.0), &Others::default()), 1.0, "alone: the whole rate");
    }

    #[test]
    fn instants_and_stored_milliseconds_round_trip() {
        let now = Instant::now() + Duration::from_secs(10);
        let l = Learned { max: 12.0, at: now - Duration::from_millis(1_500), ceiling: f64::INFINITY };
        let stored = to_stored(l, now, 1_000_000);
        assert_eq!(stored.at_ms, 998_500);
        assert_eq!(stored.ceiling, None);
        assert_eq!(from_stored(stored, now, 1_000_000), Some(l));
    }

    /// Replicas on one PostgreSQL database (`KEYMINT_TEST_POSTGRES_URL`), in real time.
    mod on_postgres {
        use std::sync::Arc;

        use aws_sdk_iam::error::SdkError;
        use aws_sdk_iam::operation::get_user::GetUserError;
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use keymint_store::KeySource;
        use keymint_store::mounts::{self, MountRow};
        use keymint_store::testing::TestDb;

        use super::super::super::{Limits, Op, Pacer};
        use super::*;

        type Answer = Result<(), SdkError<GetUserError, HttpResponse>>;

        async fn mount(db: &TestDb) -> (Store, String) {
            let store = db.open(KeySource::DevStored).await.unwrap();
            let id = another_mount(&store, "aws/").await;
            (store, id)
        }

        async fn another_mount(store: &Store, path: &str) -> String {
            let id = uuid::Uuid::new_v4().to_string();
            let row = MountRow {
                id: id.clone(),
                path: path.into(),
                mount_type: "aws".into(),
                description: String::new(),
                accessor: format!("aws_{path}"),
                default_lease_ttl: 0,
                max_lease_ttl: 0,
                options: "{}".into(),
                created_at: 0,
            };
            assert!(mounts::insert(store.pool(), &row).await.unwrap());
            id
        }

        fn replicas(store: &Store, mount: &str, limits: Limits, n: usize) -> Vec<Arc<Pacer>> {
            (0..n)
                .map(|i| Pacer::in_fleet(limits, Fleet::new(store.clone(), mount, &format!("r{i}"))))
                .collect()
        }

        async fn ok(pacer: &Pacer) {
            pacer.run(Op::iam("DeleteUser"), || std::future::ready(Answer::Ok(()))).await.unwrap();
        }

        /// Polls `check` every 50 ms for up to 10 s.
        async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
            for _ in 0..200 {
                if check() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("not within 10 s: {what}");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_throttle_seen_by_one_replica_slows_the_others() {
            let db = TestDb::new(true).await;
            let (store, mount) = mount(&db).await;
            let fleet = replicas(&store, &mount, Limits::default(), 2);
            for p in &fleet {
                ok(p).await;
            }
            for _ in 0..10 {
                ok(&fleet[0]).await;
            }
            // The first replica's call is throttled once, then goes through.
            let mut first = true;
            fleet[0]
                .run(Op::iam("DeleteUser"), || {
                    let throttle = std::mem::replace(&mut first, false);
                    std::future::ready(if throttle {
                        Err(crate::pace::pacer::tests::throttling())
                    } else {
                        Ok(())
                    })
                })
                .await
                .unwrap();
            assert!(fleet[0].current_rate(Family::IamWrite).is_some());
            // The other never saw a throttle, and keeps to the fleet's rate all the same.
            eventually("the second replica keeps to the learned rate", || {
                fleet[1].current_rate(Family::IamWrite).is_some()
            })
            .await;
            let stored = sqlx::query_as::<_, (f64, i64)>(
                "SELECT learned_max, epoch FROM aws_pace_fleet WHERE mount_id = $1 AND family = 'iam_write'",
            )
            .bind(&mount)
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(stored.1, 1, "one cut");
            assert!(stored.0 >= 11.0, "measured from what the fleet had accepted: {}", stored.0);
            // Together they keep under what was throttled.
            eventually("both replicas' rates add up to the fleet's", || {
                let sum: f64 = fleet.iter().filter_map(|p| p.current_rate(Family::IamWrite)).sum();
                sum > 0.0 && sum <= stored.0 * 1.05
            })
            .await;
            assert_eq!(fleet[0].current_rate(Family::Sts), None, "other families are not touched");
        }

        #[tokio::test]
        async fn an_exchange_sees_live_and_lapsed_slices_and_stores_the_merge() {
            let db = TestDb::new(true).await;
            let (store, mount) = mount(&db).await;
            let slice = |demand| [("iam_write", Slice { demand, queued: 3.0, accepted: 2.0 })];
            let keep = |_: &str, stored: FleetRate, _: Others| stored;
            let mine = slice(1.0);
            let at = |ms| pacing::exchange(&store, &mount, "me", ms, &mine, Upkeep::Rows, keep);
            // Three others: one reported now, one 10 s ago (lapsed), one two minutes ago (gone).
            for (replica, ms) in [("now", 200_000), ("idle", 190_000), ("gone", 80_000)] {
                pacing::exchange(&store, &mount, replica, ms, &slice(5.0), Upkeep::Rows, keep).await.unwrap();
            }
            let seen = at(200_500).await.unwrap()[0];
            assert_eq!(
                seen.others,
                Others { replicas: 1, demand: 5.0, queued: 3.0, accepted: 2.0, lapsed: 1 }
            );
            // A merge that differs is stored, and the next exchange reads it back.
            let cut = FleetRate {
                learned: Some(pacing::Learned { max: 12.0, at_ms: 200_600, ceiling: None }),
                epoch: 1,
            };
            pacing::exchange(&store, &mount, "me", 200_600, &mine, Upkeep::None, |_, _, _| cut)
                .await
                .unwrap();
            assert_eq!(at(200_700).await.unwrap()[0].rate, cut);
        }

        #[tokio::test]
        async fn a_new_cut_is_told_to_the_replicas_listening() {
            let db = TestDb::new(true).await;
            let (store, mount) = mount(&db).await;
            let mut listener = pacing::CutListener::connect(&store).await.unwrap().expect("PostgreSQL");
            let slices = [("iam_write", Slice { demand: 1.0, queued: 0.0, accepted: 0.0 })];
            let exchange = |ms, epoch| {
                pacing::exchange(
                    &store,
                    &mount,
                    "r",
                    ms,
                    &slices,
                    Upkeep::Rows,
                    move |_, stored: FleetRate, _| FleetRate { epoch, ..stored },
                )
            };
            // An exchange that changes nothing is not told; one that makes a cut is.
            exchange(1_000, 0).await.unwrap();
            exchange(2_000, 1).await.unwrap();
            let heard = tokio::time::timeout(Duration::from_secs(10), listener.next()).await;
            assert_eq!(heard.expect("told within 10 s").unwrap(), mount);
            exchange(3_000, 1).await.unwrap();
            let quiet = tokio::time::timeout(Duration::from_millis(500), listener.next()).await;
            assert!(quiet.is_err(), "an exchange without a new cut told: {quiet:?}");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_cut_heard_from_the_fleet_wakes_that_mounts_pacer() {
            let db = TestDb::new(true).await;
            let (store, mount) = mount(&db).await;
            let other = another_mount(&store, "aws2/").await;
            // Pacers without their exchange task, so nothing but the listener takes their kicks.
            let paced = |id: &str| {
                Arc::new(Pacer::in_fleet_idle(Limits::default(), Fleet::new(store.clone(), id, "me")))
            };
            let (cut, quiet) = (paced(&mount), paced(&other));
            let pacers: Arc<Pacers> = Arc::default();
            lock(&pacers).extend([(mount.clone(), cut.clone()), (other.clone(), quiet.clone())]);
            tokio::spawn(listen_for_cuts(store.clone(), Arc::downgrade(&pacers)));
            let kicked = |p: &Arc<Pacer>| {
                let p = p.clone();
                async move {
                    let fleet = p.fleet().unwrap();
                    tokio::time::timeout(Duration::from_millis(200), fleet.kick.notified()).await.is_ok()
                }
            };
            // Another replica's cuts of the first mount, until the listener (connecting
            // meanwhile) hears one.
            let slices = [("iam_write", Slice { demand: 1.0, queued: 0.0, accepted: 0.0 })];
            let mut heard = false;
            for epoch in 1..50 {
                pacing::exchange(&store, &mount, "other", epoch * 1_000, &slices, Upkeep::Rows, |_, s, _| {
                    FleetRate { epoch, ..s }
                })
                .await
                .unwrap();
                if kicked(&cut).await {
                    heard = true;
                    break;
                }
            }
            assert!(heard, "the cut's mount's pacer was not woken within 10 s");
            assert!(!kicked(&quiet).await, "another mount's pacer was woken too");
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_cap_holds_for_the_fleet_not_for_each_replica() {
            let db = TestDb::new(true).await;
            let (store, mount) = mount(&db).await;
            let limits = Limits { caps: [Some(30.0), None, None], ..Limits::default() };
            let fleet = replicas(&store, &mount, limits, 3);
            for p in &fleet {
                ok(p).await;
            }
            eventually("three slices of 30 calls a second", || {
                let rates: Vec<f64> = fleet.iter().filter_map(|p| p.current_rate(Family::IamWrite)).collect();
                let sum: f64 = rates.iter().sum();
                rates.len() == 3 && rates.iter().all(|r| *r < 20.0) && (27.0..=33.0).contains(&sum)
            })
            .await;
            // A replica that stops making calls gives its slice back once it lapses.
            eventually("the two busy replicas share the whole cap", || {
                for p in &fleet[..2] {
                    let p = p.clone();
                    tokio::spawn(async move { ok(&p).await });
                }
                let sum: f64 = fleet[..2].iter().filter_map(|p| p.current_rate(Family::IamWrite)).sum();
                sum > 27.0 && sum <= 30.5
            })
            .await;
        }
    }
}
