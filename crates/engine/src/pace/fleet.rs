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
mod tests;
