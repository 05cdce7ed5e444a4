//! The token bucket of one API family. Its rate is the lower of two: the cap an operator
//! configured (none by default), and the rate learned from AWS's throttling answers (none until
//! the first one). With neither, calls go as fast as callers make them. A throttling answer
//! sets the learned rate to what AWS was accepting, cut by [`BETA`]; from there it grows back
//! along a CUBIC curve (slowly near the rate that was throttled, faster beyond it), so the
//! bucket probes for more and finds the limit again, as TCP and the AWS SDKs' adaptive retry
//! mode do. After [`FORGET_AFTER`] without a throttling answer the learned rate is forgotten.
//! Slots are handed out in arrival order. Pure functions of the instant they are given.
//!
//! In a fleet (several replicas on one PostgreSQL), the cap and the learned rate are the
//! fleet's, and this bucket keeps to its replica's `share` of them (see `fleet`): its rate is
//! the fleet's rate times the share, and what AWS accepted is scaled back up by the share
//! when a throttle is measured. Alone, the share is 1.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// After a throttle, the rate is not cut again for this long: concurrent calls throttled by the
/// same burst count as one signal.
pub(super) const CUT_SPACING: Duration = Duration::from_secs(1);
/// The share of the rate AWS was accepting that a throttling answer leaves (CUBIC's beta).
pub(super) const BETA: f64 = 0.7;
/// CUBIC's scale: how fast the rate grows back, in calls per second per second cubed.
const CUBIC_C: f64 = 0.4;
/// The lowest a rate is cut to, in calls per second.
pub(super) const FLOOR_RATE: f64 = 0.5;
/// A learned rate is forgotten after this long without a throttling answer.
pub(super) const FORGET_AFTER: Duration = Duration::from_secs(300);
/// The window over which the rate AWS accepts is measured.
const WINDOW: Duration = Duration::from_secs(1);

/// What AWS's throttling taught: the rate it was accepting when it pushed back, and when.
/// Rates are the whole fleet's (this process's alone when it has no fleet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Learned {
    /// The rate that was throttled (CUBIC's W_max).
    pub(super) max: f64,
    pub(super) at: Instant,
    /// The rate in force when AWS throttled: `max` is never raised above it.
    pub(super) ceiling: f64,
}

impl Learned {
    /// The rate allowed `now`: `max * BETA` right after the cut, `max` again after K seconds,
    /// then growing faster the longer AWS stays calm.
    fn rate(&self, now: Instant) -> f64 {
        let k = (self.max * (1.0 - BETA) / CUBIC_C).cbrt();
        let t = now.saturating_duration_since(self.at).as_secs_f64();
        (CUBIC_C * (t - k).powi(3) + self.max).max(FLOOR_RATE)
    }
}

/// One queue of numbered slots at the bucket's rate: a token bucket that may run into debt.
/// Each caller takes its slots at once; the slots released so far are `issued + tokens`, and
/// the holder of slot number `p` waits until that reaches `p`, at whatever the rate is
/// meanwhile, so slots go out in arrival order and waits follow the rate as it moves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Queue {
    pub(super) tokens: f64,
    issued: f64,
}

impl Queue {
    fn new(rate: f64) -> Queue {
        Queue { tokens: burst(rate), issued: 0.0 }
    }

    /// Takes `n` slots: the number of the last.
    fn take(&mut self, n: f64) -> f64 {
        self.tokens -= n;
        self.issued += n;
        self.issued
    }

    /// How long the holder of slot `slot` still waits at `rate`.
    fn wait_for(&self, slot: f64, rate: f64) -> Duration {
        let released = self.issued + self.tokens;
        if rate.is_infinite() || released >= slot {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((slot - released) / rate)
        }
    }

    /// `elapsed` seconds at `rate`; `limited_again`: the rate was unlimited until now.
    fn refill(&mut self, elapsed: f64, rate: f64, limited_again: bool) {
        self.tokens = if rate.is_infinite() {
            f64::INFINITY
        } else if limited_again {
            burst(rate)
        } else {
            (self.tokens + elapsed * rate).min(burst(rate))
        };
    }
}

/// Which of a bucket's two queues.
#[derive(Debug, Clone, Copy)]
pub(super) enum Line {
    /// Credential requests being admitted, with all their slots.
    Admission,
    /// Calls without a reserved slot (retries, cleanup, reads): kept apart from admission so
    /// they never wait behind requests still to be admitted.
    Send,
}

/// The pacing of one API family: its rate, and two queues at that rate.
#[derive(Debug)]
pub(super) struct Bucket {
    /// The configured cap; `None`: no cap (adaptive only).
    cap: Option<f64>,
    learned: Option<Learned>,
    /// The rate in force since the last refill; infinite when nothing limits it.
    pub(super) rate: f64,
    pub(super) admission: Queue,
    sends: Queue,
    refilled: Instant,
    /// Calls AWS accepted within the last [`WINDOW`].
    accepted: VecDeque<Instant>,
    /// Bumped at every cut: slots paid for before it were paid at a rate AWS refused.
    pub(super) epoch: u64,
    /// This replica's part of the fleet's rate, in (0, 1]; 1 without a fleet.
    share: f64,
    /// Cuts made here, and how many of them the fleet has heard of.
    cuts: u64,
    cuts_shared: u64,
    /// Slots asked for since the last [`Bucket::report`].
    asked: f64,
    /// The calls queued on the other replicas at the last exchange.
    others_queued: f64,
}

/// What an exchange with the fleet tells a bucket (see [`Bucket::adopt`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct FleetView {
    /// What the fleet learned from AWS's throttling.
    pub(super) learned: Option<Learned>,
    /// Another replica made a cut this bucket did not make itself.
    pub(super) cut_elsewhere: bool,
    /// This replica's part of the fleet's rate.
    pub(super) share: f64,
    /// The calls queued on the other replicas.
    pub(super) others_queued: f64,
}

/// What a bucket tells the fleet (see [`Bucket::report`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Report {
    /// Slots asked for per second since the last report, plus slots still queued.
    pub(super) demand: f64,
    /// Slots still queued.
    pub(super) queued: f64,
    /// Calls AWS accepted in the last [`WINDOW`], per second.
    pub(super) accepted: f64,
    /// A cut made here that the fleet has not heard of: what was learned.
    pub(super) cut: Option<Learned>,
    /// The number of cuts made here so far (handed back to [`Bucket::adopt`]).
    pub(super) cuts: u64,
}

impl Bucket {
    pub(super) fn new(cap: Option<f64>, now: Instant) -> Bucket {
        let rate = cap.unwrap_or(f64::INFINITY);
        Bucket {
            cap,
            learned: None,
            rate,
            admission: Queue::new(rate),
            sends: Queue::new(rate),
            refilled: now,
            accepted: VecDeque::new(),
            epoch: 0,
            share: 1.0,
            cuts: 0,
            cuts_shared: 0,
            asked: 0.0,
            others_queued: 0.0,
        }
    }

    /// Whether nothing limits the rate: no cap, and no throttling answer remembered.
    pub(super) fn unlimited(&self) -> bool {
        self.rate.is_infinite()
    }

    fn rate_at(&self, now: Instant) -> f64 {
        let learned = self.learned.map_or(f64::INFINITY, |l| l.rate(now));
        learned.min(self.cap.unwrap_or(f64::INFINITY)) * self.share
    }

    /// This replica's part of the fleet's rate.
    pub(super) fn share(&self) -> f64 {
        self.share
    }

    /// What AWS accepted in the last [`WINDOW`], per second, scaled up to the fleet.
    fn accepting(&mut self, now: Instant) -> f64 {
        self.forget_before(now);
        self.accepted.len() as f64 / WINDOW.as_secs_f64() / self.share
    }

    /// Books a call sent now on a reserved slot. Reserved calls keep their own order and pace;
    /// booking them only makes the next unreserved call wait for a gap, never more than a
    /// second's worth, even when the rate was cut under reservations made before.
    pub(super) fn book_send(&mut self, now: Instant) {
        self.refill(now);
        if !self.unlimited() {
            // It uses up the saved burst, but never adds to a queue of turns already waiting.
            let tokens = self.sends.tokens;
            self.sends.tokens = (tokens - 1.0).max(tokens.min(0.0));
        }
    }

    /// Takes the next sending turn of a call without a reserved slot: its number, to wait for
    /// with [`Bucket::wait_for`].
    pub(super) fn send_turn(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.asked += 1.0;
        if self.unlimited() { self.sends.issued } else { self.sends.take(1.0) }
    }

    /// How much longer the holder of slot `slot` of `line` waits, at the rate in force now: the
    /// wait shrinks as the rate grows back, and grows if AWS throttles again.
    pub(super) fn wait_for(&mut self, now: Instant, line: Line, slot: f64) -> Duration {
        self.refill(now);
        match line {
            Line::Admission => self.admission.wait_for(slot, self.rate),
            Line::Send => self.sends.wait_for(slot, self.rate),
        }
    }

    /// How long to wait before sending one call without a reserved slot, at today's rate.
    #[cfg(test)]
    pub(super) fn send_wait(&mut self, now: Instant) -> Duration {
        let turn = self.send_turn(now);
        self.wait_for(now, Line::Send, turn)
    }

    pub(super) fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        if self.learned.is_some_and(|l| now.saturating_duration_since(l.at) > FORGET_AFTER) {
            self.learned = None;
        }
        // Limited again (a throttle, or a cap set): the queues start from a second's burst.
        let limited_again = self.unlimited();
        self.rate = self.rate_at(now);
        let limited_again = limited_again && !self.unlimited();
        self.admission.refill(elapsed, self.rate, limited_again);
        self.sends.refill(elapsed, self.rate, limited_again);
    }

    /// Takes a slot: how long to wait for it, or `Err(wait)` when that is over `max_wait` (and
    /// nothing is taken).
    #[cfg(test)]
    fn reserve(&mut self, now: Instant, max_wait: Duration) -> Result<Duration, Duration> {
        self.reserve_n(now, 1, max_wait)
    }

    /// Takes `n` slots at once: how long to wait for the last of them at today's rate.
    #[cfg(test)]
    fn reserve_n(&mut self, now: Instant, n: u32, max_wait: Duration) -> Result<Duration, Duration> {
        self.take_n(now, n, max_wait).map(|(wait, _)| wait)
    }

    /// [`Bucket::reserve_n`], with the number of the last slot taken (see [`Bucket::wait_for`]).
    pub(super) fn take_n(
        &mut self,
        now: Instant,
        n: u32,
        max_wait: Duration,
    ) -> Result<(Duration, f64), Duration> {
        self.refill(now);
        self.asked += f64::from(n);
        if self.unlimited() {
            return Ok((Duration::ZERO, self.admission.issued));
        }
        let after = self.admission.tokens - f64::from(n);
        let wait = if after >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-after / self.rate) };
        // In a fleet the queue is judged as the fleet's: this replica's slice moves with its
        // queue (a replica with a long queue gets a larger slice at the next exchange), so
        // what the request really waits for is every replica's queue at the fleet's rate, not
        // this queue at this moment's slice.
        let judged = if self.share < 1.0 {
            let queued = (-after).max(0.0) + self.others_queued;
            Duration::from_secs_f64(queued / (self.rate / self.share))
        } else {
            wait
        };
        // Right after a cut the rate is still being measured (see `accepted`): a queue judged
        // by it would refuse requests for good on a figure about to be revised.
        let settling = self.learned.is_some_and(|l| now.saturating_duration_since(l.at) < CUT_SPACING);
        if judged > max_wait && !settling {
            return Err(judged);
        }
        Ok((wait, self.admission.take(f64::from(n))))
    }

    /// Takes an admission slot without waiting for it (a retry or cleanup call, which waits for
    /// a sending turn instead).
    pub(super) fn charge(&mut self, now: Instant) {
        self.refill(now);
        if !self.unlimited() {
            self.admission.take(1.0);
        }
    }

    /// Notes a call AWS accepted: the measure a throttling answer is cut from. Right after a
    /// cut, the calls AWS accepted in the same burst are still coming back (a throttling answer
    /// is quick, an accepted call takes AWS's time): until the cut's spacing is over, each one
    /// raises what the cut was measured from.
    pub(super) fn accepted(&mut self, now: Instant) {
        self.forget_before(now);
        self.accepted.push_back(now);
        let accepting = self.accepting(now);
        if let Some(learned) = self.learned.as_mut()
            && now.saturating_duration_since(learned.at) < CUT_SPACING
        {
            let accepting = accepting.min(learned.ceiling);
            if accepting > learned.max {
                learned.max = accepting;
            }
        }
    }

    fn forget_before(&mut self, now: Instant) {
        while self.accepted.front().is_some_and(|t| now.saturating_duration_since(*t) > WINDOW) {
            self.accepted.pop_front();
        }
    }

    /// AWS throttled a call: the rate drops to [`BETA`] of what AWS was accepting (the calls it
    /// accepted in the last second, or the rate in force if that was lower), and grows back
    /// from there.
    pub(super) fn throttled(&mut self, now: Instant) {
        self.refill(now);
        if self.learned.is_some_and(|l| now.saturating_duration_since(l.at) < CUT_SPACING) {
            return;
        }
        let ceiling = self.rate / self.share;
        let max = self.accepting(now).min(ceiling).max(FLOOR_RATE);
        self.learned = Some(Learned { max, at: now, ceiling });
        self.cuts += 1;
        self.new_epoch();
        self.rate = self.rate_at(now);
    }

    /// A cut: slots paid before it no longer count, and whatever burst was saved up is what
    /// just ran into AWS's limit.
    fn new_epoch(&mut self) {
        self.epoch += 1;
        for queue in [&mut self.admission, &mut self.sends] {
            queue.tokens = queue.tokens.min(0.0);
        }
    }

    /// What to tell the fleet now; `since`: how long since the last report.
    pub(super) fn report(&mut self, now: Instant, since: Duration) -> Report {
        self.refill(now);
        let asked = std::mem::take(&mut self.asked) / since.as_secs_f64().max(0.1);
        let waiting = |q: &Queue| if q.tokens < 0.0 { -q.tokens } else { 0.0 };
        let queued = waiting(&self.admission) + waiting(&self.sends);
        let accepted = self.accepting(now) * self.share;
        Report {
            demand: asked + queued,
            queued,
            accepted,
            cut: (self.cuts > self.cuts_shared).then_some(self.learned).flatten(),
            cuts: self.cuts,
        }
    }

    /// Takes the fleet's view after an exchange: what the fleet learned (unless a cut was made
    /// here after `report`, which the next exchange shares), whether another replica made a
    /// cut this bucket has not made itself, this replica's share of the rate, and the other
    /// replicas' queues.
    pub(super) fn adopt(&mut self, now: Instant, report: &Report, view: FleetView) {
        self.refill(now);
        self.cuts_shared = self.cuts_shared.max(report.cuts);
        if self.cuts == report.cuts {
            self.learned = view.learned;
        }
        self.share = view.share.clamp(f64::MIN_POSITIVE, 1.0);
        self.others_queued = view.others_queued;
        if view.cut_elsewhere {
            self.new_epoch();
        }
        self.refill(now);
    }

    /// Applies a changed cap (`None`: none).
    pub(super) fn set_cap(&mut self, cap: Option<f64>, now: Instant) {
        if cap != self.cap {
            self.refill(now);
            self.cap = cap;
            self.refill(now);
        }
    }

    /// The rate AWS's throttling taught, if one is remembered.
    pub(super) fn learned_rate(&self, now: Instant) -> Option<f64> {
        self.learned.map(|l| l.rate(now))
    }
}

/// One second's worth of calls may go at once.
fn burst(rate: f64) -> f64 {
    rate.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn slots_go_out_in_order_at_a_capped_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Some(10.0), t0);
        // A second's burst goes at once, then one slot every 100 ms.
        for _ in 0..10 {
            assert_eq!(b.reserve(t0, MINUTE), Ok(Duration::ZERO));
        }
        let waits: Vec<_> = (0..3).map(|_| b.reserve(t0, MINUTE).unwrap()).collect();
        assert_eq!(waits, [100, 200, 300].map(Duration::from_millis));
        // Later, the debt is paid back.
        assert_eq!(b.reserve(t0 + Duration::from_millis(400), MINUTE), Ok(Duration::ZERO));
    }

    #[test]
    fn without_a_cap_nothing_waits_until_aws_throttles() {
        let t0 = Instant::now();
        let mut b = Bucket::new(None, t0);
        for _ in 0..10_000 {
            assert_eq!(b.reserve(t0, Duration::ZERO), Ok(Duration::ZERO));
            assert_eq!(b.send_wait(t0), Duration::ZERO);
            b.book_send(t0);
        }
        assert!(b.unlimited());
        assert_eq!(b.learned_rate(t0), None);
    }

    #[test]
    fn a_throttle_cuts_to_what_aws_was_accepting_and_the_rate_grows_back_along_a_cubic() {
        let t0 = Instant::now();
        let mut b = Bucket::new(None, t0);
        // AWS accepted 20 calls in the last second, then throttled.
        for i in 0..20 {
            b.accepted(t0 + Duration::from_millis(i * 50));
        }
        let cut = t0 + Duration::from_secs(1);
        b.throttled(cut);
        assert_eq!(b.epoch, 1);
        assert!((b.rate - 14.0).abs() < 1e-9, "cut to 0.7 of 20: {}", b.rate);
        // Concurrent throttles of the same burst are one signal.
        b.throttled(cut + Duration::from_millis(500));
        assert_eq!(b.epoch, 1);
        // Back at 20 after K = cbrt(20 * 0.3 / 0.4) seconds, flat around it, then faster.
        let k = (20.0_f64 * 0.3 / 0.4).cbrt();
        let at = |s: f64| b.learned_rate(cut + Duration::from_secs_f64(s)).unwrap();
        assert!((at(k) - 20.0).abs() < 1e-6);
        assert!(at(k - 0.5) > 19.9 && at(k + 0.5) < 20.1, "slow near the rate that was throttled");
        assert!(at(10.0) > 60.0, "then it probes for more: {}", at(10.0));
        // Now the bucket paces: slots are spaced at the learned rate.
        let mut later = b;
        let now = cut + Duration::from_millis(10);
        later.admission.tokens = 0.0;
        let w = later.reserve(now, MINUTE).unwrap();
        assert!(w > Duration::from_millis(60) && w < Duration::from_millis(80), "{w:?}");
    }

    #[test]
    fn a_learned_rate_is_forgotten_after_long_calm() {
        let t0 = Instant::now();
        let mut b = Bucket::new(None, t0);
        b.accepted(t0);
        b.throttled(t0);
        assert!(!b.unlimited());
        b.refill(t0 + FORGET_AFTER + Duration::from_secs(1));
        assert!(b.unlimited());
        assert_eq!(b.learned_rate(t0 + FORGET_AFTER + Duration::from_secs(1)), None);
    }

    #[test]
    fn a_cap_bounds_the_learned_rate_and_a_throttle_cuts_below_it() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Some(20.0), t0);
        for i in 0..40 {
            b.accepted(t0 + Duration::from_millis(i * 20));
        }
        // AWS accepted 40 in the last second, but the cap was 20: the cut is from 20.
        let cut = t0 + Duration::from_millis(900);
        b.throttled(cut);
        assert!((b.rate - 14.0).abs() < 1e-9, "{}", b.rate);
        b.refill(cut + Duration::from_secs(60));
        assert_eq!(b.rate, 20.0, "never above the cap");
        // A cap removed: the learned rate alone bounds it.
        b.set_cap(None, cut + Duration::from_secs(61));
        assert!(b.rate > 20.0 && b.rate.is_finite());
    }

    #[test]
    fn reserved_sends_never_push_the_others_far_back() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Some(10.0), t0);
        for _ in 0..100 {
            b.book_send(t0);
        }
        // At most a second's burst plus one interval ahead.
        assert_eq!(b.send_wait(t0), Duration::from_millis(100));
    }

    #[test]
    fn a_queue_too_long_is_refused_without_taking_a_slot() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Some(1.0), t0);
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Ok(Duration::ZERO));
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Ok(Duration::from_secs(1)));
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Ok(Duration::from_secs(2)));
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Err(Duration::from_secs(3)));
        assert_eq!(b.reserve(t0, Duration::from_secs(3)), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn a_throttle_with_nothing_accepted_still_leaves_a_floor() {
        let t0 = Instant::now();
        let mut b = Bucket::new(None, t0);
        b.throttled(t0);
        assert_eq!(b.rate, FLOOR_RATE);
    }

    #[test]
    fn in_a_fleet_a_queue_is_judged_at_the_fleets_rate() {
        let t0 = Instant::now();
        let slice = |others_queued| {
            let mut b = Bucket::new(Some(20.0), t0);
            let report = b.report(t0, Duration::from_secs(1));
            let view = FleetView { learned: None, cut_elsewhere: false, share: 0.03, others_queued };
            b.adopt(t0, &report, view);
            b
        };
        // A 3% slice of 20 a second: 30 slots would take this queue alone 48 s, but the slice
        // grows with the queue; behind the others' 300 the fleet serves them in 16.5 s.
        let mut b = slice(300.0);
        assert!((b.rate - 0.6).abs() < 1e-9);
        let max_wait = Duration::from_secs(20);
        let (wait, _) = b.take_n(t0, 30, max_wait).expect("admitted");
        assert!(wait > max_wait, "{wait:?}: this queue at this slice");
        // Behind 1000 slots elsewhere, the fleet's queue is too long: refused.
        let refused = slice(1000.0).take_n(t0, 30, max_wait).unwrap_err();
        assert!((refused.as_secs_f64() - 1029.0 / 20.0).abs() < 1e-6, "{refused:?}");
    }
}
