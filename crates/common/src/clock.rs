//! "Now" as keymint reads it: one injectable clock behind lease and token expiry, rotation
//! schedules, claim deadlines and retry times.
//!
//! Every decision that compares a stored time with the present (is this lease due, has this
//! token expired, has this claim lapsed) asks a [`Clock`], never the system directly. A
//! server runs on [`Clock::system`]. Tests run on [`Clock::tokio`]: wall time that starts at a
//! fixed instant and then moves by the time tokio's clock has moved since. Under
//! `tokio::time::pause()` one `advance` therefore moves both what the background tasks sleep
//! on and the "now" they compare stored times with: a lease due in an hour is revoked after
//! `advance(1h)` with no real waiting, and provably not before.
//!
//! A clock is an enum of its two sources rather than a trait object: it is `Copy`, costs no
//! allocation or virtual call on a hot path (every credential request reads it), and the one
//! part that tests need to steer, tokio's time, is already steerable from outside.
//!
//! Durations (pacing, timeouts, retry deadlines) are measured with `tokio::time::Instant`,
//! which needs no clock: it is the monotonic clock in a server and follows `advance` in a test.
//!
//! With the `test-util` feature, [`ManualTime`] gives tests paused time that moves only when
//! they say so (see there for why plain `tokio::time::pause` is not enough with SQLite).

use chrono::{DateTime, TimeDelta, Utc};

/// Where "now" comes from; cheap to copy into every component that needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock(Source);

#[derive(Debug, Clone, Copy, Default)]
enum Source {
    #[default]
    System,
    /// `start` when tokio's clock read `at`, moving as tokio's clock moves.
    Tokio { start: DateTime<Utc>, at: tokio::time::Instant },
}

impl Clock {
    /// The system's wall clock: what a server runs on.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// Wall time following tokio's clock, starting at the current wall time.
    pub fn tokio() -> Clock {
        Clock::tokio_from(Utc::now())
    }

    /// Wall time following tokio's clock, starting at `start` (a test that wants a fixed date).
    pub fn tokio_from(start: DateTime<Utc>) -> Clock {
        Clock(Source::Tokio { start, at: tokio::time::Instant::now() })
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self.0 {
            Source::System => Utc::now(),
            Source::Tokio { start, at } => {
                let moved = TimeDelta::from_std(at.elapsed()).unwrap_or(TimeDelta::MAX);
                start.checked_add_signed(moved).unwrap_or(DateTime::<Utc>::MAX_UTC)
            }
        }
    }

    /// The current time in milliseconds since the Unix epoch, the unit of every stored time.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }
}

#[cfg(feature = "test-util")]
pub use manual::{ManualTime, real_sleep};

#[cfg(feature = "test-util")]
mod manual {
    use std::future::Future;
    use std::time::Duration;

    use super::Clock;

    /// Paused tokio time that moves only when the test advances it, and a [`Clock`] that
    /// follows it.
    ///
    /// `tokio::time::pause` alone lets time jump ahead whenever the runtime has nothing to
    /// do, and a runtime waiting for a query is idle: sqlx runs each SQLite connection on a
    /// thread of its own (and PostgreSQL answers over a socket). A worker's hour-long sleep,
    /// or sqlx's own pool timeout, would then pass during a query. tokio does not auto-advance
    /// while a blocking task runs, so one is held for as long as this value lives.
    ///
    /// Needs the current-thread runtime (`#[tokio::test]`'s default), as `pause` does.
    pub struct ManualTime {
        clock: Clock,
        /// Dropped with this value, which ends the held blocking task.
        _hold: std::sync::mpsc::Sender<()>,
    }

    impl ManualTime {
        /// Pauses time and holds it still.
        ///
        /// # Panics
        /// Outside a current-thread tokio runtime, or when time is paused already.
        pub fn start() -> ManualTime {
            tokio::time::pause();
            let (hold, held) = std::sync::mpsc::channel::<()>();
            // Detached: it ends when `hold` is dropped.
            drop(tokio::task::spawn_blocking(move || {
                let _ = held.recv();
            }));
            ManualTime { clock: Clock::tokio(), _hold: hold }
        }

        /// The clock that follows this time.
        pub fn clock(&self) -> Clock {
            self.clock
        }

        /// Moves time (timers and the clock) forward by `by`, firing the timers it passes. A
        /// timer fires on the first whole millisecond after its deadline: to be sure one due
        /// in `d` has fired, advance a millisecond more.
        pub async fn advance(&self, by: Duration) {
            tokio::time::advance(by).await;
        }

        /// Polls `check` until it holds, for at most `limit` of real time (what tasks woken by
        /// an advance need for their queries); panics naming `what` otherwise.
        pub async fn until<F, Fut>(&self, what: &str, limit: Duration, mut check: F)
        where
            F: FnMut() -> Fut,
            Fut: Future<Output = bool>,
        {
            let deadline = std::time::Instant::now() + limit;
            while !check().await {
                assert!(std::time::Instant::now() < deadline, "{what}: not within {limit:?}");
                real_sleep(Duration::from_millis(5)).await;
            }
        }
    }

    /// Sleeps in real time: tokio's timers do not fire while time is held.
    pub async fn real_sleep(d: Duration) {
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(d)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_with_paused_time_only() {
        let start = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let clock = Clock::tokio_from(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(clock.now_ms(), 1_700_000_000_000 + 3_600_000);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(clock.now_ms(), 1_700_000_000_000 + 3_600_250);
    }

    /// A wait on another thread (as on a SQLite connection) does not let held time jump to
    /// the next timer, as plain paused time would.
    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn manual_time_moves_only_when_advanced() {
        let time = ManualTime::start();
        let clock = time.clock();
        let before = clock.now_ms();
        let hour = tokio::spawn(tokio::time::sleep(Duration::from_secs(3600)));
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _ = tx.send(());
        });
        rx.await.unwrap();
        assert!(!hour.is_finished());
        assert_eq!(clock.now_ms(), before);
        // Timers fire on whole milliseconds after their deadline.
        time.advance(Duration::from_millis(3_600_001)).await;
        time.until("the hour's timer fired", Duration::from_secs(5), || async { hour.is_finished() }).await;
        assert_eq!(clock.now_ms(), before + 3_600_001);
    }

    #[test]
    fn the_system_clock_is_the_default_and_reads_wall_time() {
        let before = Utc::now().timestamp_millis();
        let read = Clock::default().now_ms();
        assert!(read >= before && read - before < 5_000, "{read} vs {before}");
    }
}
