//! The token bucket of one API family: slots handed out in arrival order at a rate that is
//! cut when AWS throttles and creeps back after calm seconds. Pure functions of the instant
//! they are given.

use std::time::Duration;

use tokio::time::Instant;

/// After a throttle, the rate is not cut again for this long: concurrent calls throttled by the
/// same burst count as one signal.
const CUT_SPACING: Duration = Duration::from_secs(1);
/// Share of the configured rate regained per calm second after a cut.
const RECOVERY_PER_SEC: f64 = 0.1;
/// The lowest a rate is cut to, in calls per second.
const FLOOR_RATE: f64 = 0.5;
/// A token bucket that may run into debt: each caller takes a token at once and waits until the
/// debt it ran up is paid back, so slots go out in arrival order.
#[derive(Debug)]
pub(super) struct Bucket {
    configured: f64,
    pub(super) rate: f64,
    pub(super) tokens: f64,
    refilled: Instant,
    last_cut: Option<Instant>,
    /// When the next call may be sent without exceeding the rate (the theoretical arrival
    /// time of a generic cell rate algorithm); one second's burst is tolerated ahead of it.
    next_send: Instant,
}

impl Bucket {
    pub(super) fn new(rate: f64, now: Instant) -> Bucket {
        Bucket { configured: rate, rate, tokens: burst(rate), refilled: now, last_cut: None, next_send: now }
    }

    /// Books a call sent now on a reserved slot. Reserved calls keep their own order and pace;
    /// booking them only makes the next unreserved call wait for a gap, never more than a
    /// second's worth, even when the rate was cut under reservations made before.
    pub(super) fn book_send(&mut self, now: Instant) {
        self.refill(now);
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let tolerance = Duration::from_secs_f64((burst(self.rate) - 1.0) / self.rate);
        self.next_send = (self.next_send.max(now) + interval).min(now + tolerance + interval);
    }

    /// How long to wait before sending one call, which is then booked.
    pub(super) fn send_wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let tolerance = Duration::from_secs_f64((burst(self.rate) - 1.0) / self.rate);
        let due = self.next_send.max(now);
        let wait = due.checked_sub(tolerance).map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
        self.next_send = due + interval;
        wait
    }

    pub(super) fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        if self.rate < self.configured
            && self.last_cut.is_none_or(|c| now.saturating_duration_since(c) > CUT_SPACING)
        {
            self.rate = (self.rate + self.configured * RECOVERY_PER_SEC * elapsed).min(self.configured);
        }
        self.tokens = (self.tokens + elapsed * self.rate).min(burst(self.rate));
    }

    /// Takes a slot: how long to wait for it, or `Err(wait)` when that is over `max_wait` (and
    /// nothing is taken).
    #[cfg(test)]
    fn reserve(&mut self, now: Instant, max_wait: Duration) -> Result<Duration, Duration> {
        self.reserve_n(now, 1, max_wait)
    }

    /// Takes `n` slots at once: how long to wait for the last of them.
    pub(super) fn reserve_n(
        &mut self,
        now: Instant,
        n: u32,
        max_wait: Duration,
    ) -> Result<Duration, Duration> {
        self.refill(now);
        let after = self.tokens - f64::from(n);
        let wait = if after >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-after / self.rate) };
        if wait > max_wait {
            return Err(wait);
        }
        self.tokens = after;
        Ok(wait)
    }

    pub(super) fn throttled(&mut self, now: Instant) {
        self.refill(now);
        if self.last_cut.is_some_and(|c| now.saturating_duration_since(c) < CUT_SPACING) {
            return;
        }
        self.last_cut = Some(now);
        self.rate = (self.rate / 2.0).max(FLOOR_RATE.min(self.configured));
        // Whatever burst was saved up is what just ran into AWS's limit.
        self.tokens = self.tokens.min(0.0);
    }

    pub(super) fn set_rate(&mut self, rate: f64, now: Instant) {
        if (rate - self.configured).abs() > f64::EPSILON {
            self.refill(now);
            self.configured = rate;
            self.rate = rate;
            self.tokens = self.tokens.min(burst(rate));
        }
    }
}

/// One second's worth of calls may go at once.
fn burst(rate: f64) -> f64 {
    rate.max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_go_out_in_order_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, t0);
        // A second's burst goes at once, then one slot every 100 ms.
        for _ in 0..10 {
            assert_eq!(b.reserve(t0, Duration::from_secs(60)), Ok(Duration::ZERO));
        }
        let waits: Vec<_> = (0..3).map(|_| b.reserve(t0, Duration::from_secs(60)).unwrap()).collect();
        assert_eq!(waits, [100, 200, 300].map(Duration::from_millis));
        // Later, the debt is paid back.
        assert_eq!(b.reserve(t0 + Duration::from_millis(400), Duration::from_secs(60)), Ok(Duration::ZERO));
    }

    #[test]
    fn reserved_sends_never_push_the_others_far_back() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, t0);
        for _ in 0..100 {
            b.book_send(t0);
        }
        // At most a second's burst plus one interval ahead.
        assert_eq!(b.send_wait(t0), Duration::from_millis(100));
    }

    #[test]
    fn sends_keep_to_the_current_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, t0);
        let waits: Vec<_> = (0..12).map(|_| b.send_wait(t0)).collect();
        assert!(waits[..10].iter().all(|w| w.is_zero()), "{waits:?}");
        assert_eq!(waits[10..], [Duration::from_millis(100), Duration::from_millis(200)]);
        // Throttled: the rate halves, and the spacing doubles.
        let later = t0 + Duration::from_secs(10);
        b.throttled(later);
        let waits: Vec<_> = (0..7).map(|_| b.send_wait(later)).collect();
        assert_eq!(waits[5..], [Duration::from_millis(200), Duration::from_millis(400)], "{waits:?}");
    }

    #[test]
    fn a_queue_too_long_is_refused_without_taking_a_slot() {
        let t0 = Instant::now();
        let mut b = Bucket::new(1.0, t0);
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Ok(Duration::ZERO));
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Ok(Duration::from_secs(1)));
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Ok(Duration::from_secs(2)));
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Err(Duration::from_secs(3)));
        assert_eq!(b.reserve(t0, Duration::from_secs(3)), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn throttling_halves_the_rate_once_per_burst_then_it_recovers() {
        let t0 = Instant::now();
        let mut b = Bucket::new(20.0, t0);
        b.throttled(t0);
        b.throttled(t0 + Duration::from_millis(10));
        assert_eq!(b.rate, 10.0);
        // A second later: 1.49 s of recovery at 10% of 20/s each (10 -> 12.98), then halved.
        b.throttled(t0 + Duration::from_millis(1500));
        assert!((b.rate - 6.49).abs() < 0.01, "{}", b.rate);
        b.refill(t0 + Duration::from_millis(3500));
        assert!((b.rate - 10.49).abs() < 0.01, "{}", b.rate);
        b.refill(t0 + Duration::from_secs(60));
        assert_eq!(b.rate, 20.0);
        let mut slow = Bucket::new(0.5, t0);
        slow.throttled(t0);
        assert_eq!(slow.rate, 0.5);
    }
}
