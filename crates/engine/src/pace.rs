//! AWS call pacing, per mount and API family (IAM writes, IAM reads, STS).
//!
//! Each family has a token bucket whose slots are handed out in arrival order, so a burst of
//! requests queues inside keymint at a rate AWS accepts instead of failing against AWS's own
//! throttling. A throttling answer halves the family's rate for a while (it creeps back to
//! the configured rate after calm seconds) and the call is repeated after a jittered,
//! exponentially growing pause, within a retry deadline. 5xx answers and broken connections
//! are repeated too, but only for calls that are safe to repeat: `CreateUser` and
//! `CreateAccessKey` come back to the caller, which reconciles (see `mint`).
//!
//! The SDK's own retries are off: they would repeat non-idempotent calls blindly.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use rand::Rng;
use tracing::debug;

use crate::aws_error::{AwsCallError, Retry, classify};
use crate::error::AwsFailure;

/// The rate-limited families AWS counts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    IamWrite,
    IamRead,
    Sts,
}

impl Family {
    /// The family of an IAM operation, by its name.
    pub fn of_iam(op: &str) -> Family {
        if op.starts_with("Get") || op.starts_with("List") { Family::IamRead } else { Family::IamWrite }
    }

    fn index(self) -> usize {
        match self {
            Family::IamWrite => 0,
            Family::IamRead => 1,
            Family::Sts => 2,
        }
    }

    /// The AWS service, as the `service` label of the call metrics.
    fn service(self) -> &'static str {
        match self {
            Family::IamWrite | Family::IamRead => "iam",
            Family::Sts => "sts",
        }
    }

    fn config_field(self) -> &'static str {
        match self {
            Family::IamWrite => "iam_write_rate",
            Family::IamRead => "iam_read_rate",
            Family::Sts => "sts_rate",
        }
    }
}

/// Calls that must not be repeated when their outcome is unknown.
const NOT_IDEMPOTENT: &[&str] = &["CreateUser", "CreateAccessKey"];
/// The STS calls that make a credential request. Only they (and an `iam_user` request's
/// admission, see [`Pacer::admit`]) are refused when the queue is longer than
/// `max_queue_wait`: once a request has made something in AWS, its later calls (and any
/// cleanup) wait as long as it takes, so nothing is left half-made.
const ADMISSION: &[&str] = &["AssumeRole", "GetFederationToken", "GetSessionToken"];
/// The longest any call waits for its slot.
const QUEUE_CEILING: Duration = Duration::from_secs(3600);

/// Pacing and retry settings of one mount (from `config/root`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Calls per second, by [`Family`] index.
    pub rates: [f64; 3],
    /// The longest a new credential request may wait for its first slot; a longer queue is
    /// refused at once.
    pub max_queue_wait: Duration,
    /// How long after a call's first failure it may still be retried.
    pub retry_deadline: Duration,
    /// At most this many retries of one call; `None`: as many as the deadline allows.
    pub max_retries: Option<u32>,
}

/// Default rates: well under what AWS grants an account, so several keymint mounts or other
/// tools sharing the account still fit.
pub const DEFAULT_IAM_WRITE_RATE: u64 = 10;
pub const DEFAULT_IAM_READ_RATE: u64 = 20;
pub const DEFAULT_STS_RATE: u64 = 50;
/// Well under the server's 150 s request timeout: an admitted request finishes in time.
pub const DEFAULT_MAX_QUEUE_WAIT: Duration = Duration::from_secs(60);
pub const DEFAULT_RETRY_DEADLINE: Duration = Duration::from_secs(30);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rates: [DEFAULT_IAM_WRITE_RATE as f64, DEFAULT_IAM_READ_RATE as f64, DEFAULT_STS_RATE as f64],
            max_queue_wait: DEFAULT_MAX_QUEUE_WAIT,
            retry_deadline: DEFAULT_RETRY_DEADLINE,
            max_retries: None,
        }
    }
}

/// After a throttle, the rate is not cut again for this long: concurrent calls throttled by the
/// same burst count as one signal.
const CUT_SPACING: Duration = Duration::from_secs(1);
/// Share of the configured rate regained per calm second after a cut.
const RECOVERY_PER_SEC: f64 = 0.1;
/// The lowest a rate is cut to, in calls per second.
const FLOOR_RATE: f64 = 0.5;
const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// Retries of a transient failure when `max_retries` is the SDK default (-1).
const DEFAULT_TRANSIENT_RETRIES: u32 = 4;

/// A token bucket that may run into debt: each caller takes a token at once and waits until the
/// debt it ran up is paid back, so slots go out in arrival order.
#[derive(Debug)]
struct Bucket {
    configured: f64,
    rate: f64,
    tokens: f64,
    refilled: Instant,
    last_cut: Option<Instant>,
    /// When the next call may be sent without exceeding the rate (the theoretical arrival
    /// time of a generic cell rate algorithm); one second's burst is tolerated ahead of it.
    next_send: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Bucket {
        Bucket { configured: rate, rate, tokens: burst(rate), refilled: now, last_cut: None, next_send: now }
    }

    /// Books a call sent now on a reserved slot. Reserved calls keep their own order and pace;
    /// booking them only makes the next unreserved call wait for a gap, never more than a
    /// second's worth, even when the rate was cut under reservations made before.
    fn book_send(&mut self, now: Instant) {
        self.refill(now);
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let tolerance = Duration::from_secs_f64((burst(self.rate) - 1.0) / self.rate);
        self.next_send = (self.next_send.max(now) + interval).min(now + tolerance + interval);
    }

    /// How long to wait before sending one call, which is then booked.
    fn send_wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        let interval = Duration::from_secs_f64(1.0 / self.rate);
        let tolerance = Duration::from_secs_f64((burst(self.rate) - 1.0) / self.rate);
        let due = self.next_send.max(now);
        let wait = due.checked_sub(tolerance).map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
        self.next_send = due + interval;
        wait
    }

    fn refill(&mut self, now: Instant) {
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
    fn reserve_n(&mut self, now: Instant, n: u32, max_wait: Duration) -> Result<Duration, Duration> {
        self.refill(now);
        let after = self.tokens - f64::from(n);
        let wait = if after >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-after / self.rate) };
        if wait > max_wait {
            return Err(wait);
        }
        self.tokens = after;
        Ok(wait)
    }

    fn throttled(&mut self, now: Instant) {
        self.refill(now);
        if self.last_cut.is_some_and(|c| now.saturating_duration_since(c) < CUT_SPACING) {
            return;
        }
        self.last_cut = Some(now);
        self.rate = (self.rate / 2.0).max(FLOOR_RATE.min(self.configured));
        // Whatever burst was saved up is what just ran into AWS's limit.
        self.tokens = self.tokens.min(0.0);
    }

    fn set_rate(&mut self, rate: f64, now: Instant) {
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

/// The pacing state of one mount, shared by every client version of it.
#[derive(Debug)]
pub struct Pacer {
    buckets: [Mutex<Bucket>; 3],
    limits: Mutex<Limits>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Slots paid for in advance: a credential request is admitted with all the writes it will
/// make, so once admitted it never queues again behind requests that came after it (and never
/// outlives its client's patience half-way through). Retries still queue.
#[derive(Debug)]
pub struct Prepaid {
    family: Family,
    left: std::sync::atomic::AtomicU32,
}

impl Prepaid {
    /// Uses one prepaid slot of `family`, if any is left.
    fn take(&self, family: Family) -> bool {
        use std::sync::atomic::Ordering;
        family == self.family
            && self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok()
    }
}

/// One AWS operation to run through the pacer.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub name: &'static str,
    pub family: Family,
    pub idempotent: bool,
    /// Refused when the queue is longer than `max_queue_wait`.
    pub admission: bool,
}

impl Op {
    pub fn iam(name: &'static str) -> Op {
        Op {
            name,
            family: Family::of_iam(name),
            idempotent: !NOT_IDEMPOTENT.contains(&name),
            admission: ADMISSION.contains(&name),
        }
    }

    /// STS calls leave nothing behind in AWS: repeating one at worst mints a second, unused,
    /// short-lived credential.
    pub fn sts(name: &'static str) -> Op {
        Op { name, family: Family::Sts, idempotent: true, admission: ADMISSION.contains(&name) }
    }
}

impl Pacer {
    pub fn new(limits: Limits) -> Pacer {
        let now = Instant::now();
        Pacer { buckets: limits.rates.map(|r| Mutex::new(Bucket::new(r, now))), limits: Mutex::new(limits) }
    }

    /// Applies changed settings (a `config/root` write) without losing the current debt.
    pub fn set_limits(&self, limits: Limits) {
        let now = Instant::now();
        for (bucket, rate) in self.buckets.iter().zip(limits.rates) {
            lock(bucket).set_rate(rate, now);
        }
        *lock(&self.limits) = limits;
    }

    pub fn limits(&self) -> Limits {
        *lock(&self.limits)
    }

    /// The current (possibly cut) rate of a family, in calls per second.
    pub fn current_rate(&self, family: Family) -> f64 {
        let mut b = lock(&self.buckets[family.index()]);
        b.refill(Instant::now());
        b.rate
    }

    /// Admits a request that will make `cost` calls of `op`'s family, `op` first: waits until
    /// all their slots are paid, or refuses at once if that is over `max_queue_wait`.
    pub async fn admit(&self, op: Op, cost: u32) -> Result<Prepaid, AwsCallError> {
        let cost = cost.max(1);
        self.wait_for(op, cost, self.limits().max_queue_wait).await?;
        Ok(Prepaid { family: op.family, left: std::sync::atomic::AtomicU32::new(cost) })
    }

    /// Notes a call sent on a reserved slot, so calls without one wait for a gap after it.
    fn book_send(&self, family: Family) {
        lock(&self.buckets[family.index()]).book_send(Instant::now());
    }

    /// Waits for the family's next sending turn at its current rate: how retries and calls
    /// outside admission (cleanup, reads) keep to the rate AWS has been accepting, between the
    /// calls sent on reserved slots.
    async fn send_turn(&self, family: Family) {
        let wait = lock(&self.buckets[family.index()]).send_wait(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a slot of `family` without waiting for it.
    fn charge(&self, family: Family) {
        let mut bucket = lock(&self.buckets[family.index()]);
        bucket.refill(Instant::now());
        bucket.tokens -= 1.0;
    }

    /// Waits for a slot of `op`'s family.
    async fn slot(&self, op: Op, max_wait: Duration) -> Result<(), AwsCallError> {
        self.wait_for(op, 1, max_wait).await
    }

    async fn wait_for(&self, op: Op, n: u32, max_wait: Duration) -> Result<(), AwsCallError> {
        let reserved = lock(&self.buckets[op.family.index()]).reserve_n(Instant::now(), n, max_wait);
        match reserved {
            Ok(wait) if wait.is_zero() => Ok(()),
            Ok(wait) => {
                metrics::histogram!("keymint_aws_queue_seconds", "family" => op.family.config_field())
                    .record(wait.as_secs_f64());
                tokio::time::sleep(wait).await;
                Ok(())
            }
            Err(wait) => Err(AwsCallError {
                op: op.name,
                code: None,
                text: format!(
                    "keymint's queue for this mount's AWS calls is {:.0}s long, over the {}s allowed \
                     (max_queue_wait); {} is {:.1} calls per second",
                    wait.as_secs_f64(),
                    max_wait.as_secs(),
                    op.family.config_field(),
                    self.current_rate(op.family),
                ),
                failure: AwsFailure::Unavailable,
                retry: Retry::Throttled,
                gave_up: None,
            }),
        }
    }

    /// Runs `call` (which sends one AWS request) under pacing, repeating it as `op` allows.
    pub async fn run<T, E, F, Fut>(&self, op: Op, call: F) -> Result<T, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.run_paid(op, None, call).await
    }

    /// [`Pacer::run`], the first attempt on a prepaid slot when one is left.
    pub async fn run_paid<T, E, F, Fut>(
        &self,
        op: Op,
        prepaid: Option<&Prepaid>,
        mut call: F,
    ) -> Result<T, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let limits = self.limits();
        let mut first_failure: Option<Instant> = None;
        let mut retries = 0u32;
        let max_wait = if op.admission { limits.max_queue_wait } else { QUEUE_CEILING };
        let mut paid = prepaid.is_some_and(|p| p.take(op.family));
        loop {
            if std::mem::take(&mut paid) {
                // Its turn was reserved at admission, in admission order.
                self.book_send(op.family);
            } else if op.admission && retries == 0 {
                self.slot(op, max_wait).await?;
                self.book_send(op.family);
            } else {
                // Counted against the reservations of requests still to be admitted, without
                // waiting behind them: a retry or a cleanup call is not sent to the back of the
                // queue, but it keeps to the rate AWS has been accepting.
                self.charge(op.family);
                self.send_turn(op.family).await;
            }
            // Boxed: SDK futures are large, and kept inline they would make every caller's
            // future (and the stack that polls it) larger still.
            let sent = Instant::now();
            let outcome = Box::pin(call()).await;
            let took = sent.elapsed().as_secs_f64();
            let mut err = match outcome {
                Ok(v) => {
                    record_call(op, "ok", took);
                    return Ok(v);
                }
                Err(e) => classify(op.name, &e),
            };
            record_call(
                op,
                match err.retry {
                    Retry::Throttled => "throttled",
                    Retry::Transient => "transient",
                    Retry::Never => "error",
                },
                took,
            );
            let since = *first_failure.get_or_insert_with(Instant::now);
            let repeatable = match err.retry {
                Retry::Never => false,
                Retry::Throttled => {
                    lock(&self.buckets[op.family.index()]).throttled(Instant::now());
                    metrics::counter!("keymint_aws_throttled_total", "family" => op.family.config_field())
                        .increment(1);
                    true
                }
                Retry::Transient => op.idempotent,
            };
            if !repeatable {
                return Err(err);
            }
            let cap = match (limits.max_retries, err.retry) {
                (Some(n), _) => n,
                (None, Retry::Transient) => DEFAULT_TRANSIENT_RETRIES,
                (None, _) => u32::MAX,
            };
            let pause = backoff(retries);
            let elapsed = since.elapsed();
            if retries >= cap || elapsed + pause > limits.retry_deadline {
                err.gave_up = Some(format!(
                    "gave up after {} attempts over {:.1}s",
                    retries + 1,
                    elapsed.as_secs_f64()
                ));
                return Err(err);
            }
            retries += 1;
            debug!(aws.op = op.name, attempt = retries, pause_ms = pause.as_millis() as u64, error = %err.text, "retrying AWS call");
            tokio::time::sleep(pause).await;
        }
    }
}

/// One AWS request sent: counted by service, operation and outcome (`ok`, `throttled`,
/// `transient` for 5xx and transport failures, `error` for the rest), and timed.
fn record_call(op: Op, outcome: &'static str, seconds: f64) {
    let service = op.family.service();
    metrics::counter!("keymint_aws_requests_total", "service" => service, "operation" => op.name, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("keymint_aws_request_duration_seconds", "service" => service, "operation" => op.name)
        .record(seconds);
}

/// Full jitter: a random pause up to an exponentially growing, capped bound.
fn backoff(retries: u32) -> Duration {
    let bound = BACKOFF_BASE.saturating_mul(1u32 << retries.min(10)).min(BACKOFF_CAP);
    let low = bound / 4;
    rand::rng().random_range(low..=bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_name() {
        assert_eq!(Family::of_iam("CreateUser"), Family::IamWrite);
        assert_eq!(Family::of_iam("ListAccessKeys"), Family::IamRead);
        assert_eq!(Family::of_iam("GetUser"), Family::IamRead);
        assert_eq!(Family::of_iam("DeleteUser"), Family::IamWrite);
        assert!(!Op::iam("CreateUser").idempotent);
        assert!(!Op::iam("CreateAccessKey").idempotent);
        assert!(Op::iam("DeleteAccessKey").idempotent);
        assert!(Op::sts("AssumeRole").idempotent);
        assert!(Op::sts("AssumeRole").admission && !Op::sts("GetCallerIdentity").admission);
        assert!(!Op::iam("CreateUser").admission && !Op::iam("CreateAccessKey").admission);
    }

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

    #[tokio::test(start_paused = true)]
    async fn an_admitted_request_does_not_queue_again() {
        let pacer = Pacer::new(Limits { rates: [2.0, 20.0, 50.0], ..Limits::default() });
        let ticket = pacer.admit(Op::iam("CreateUser"), 3).await.unwrap();
        // Requests admitted later queue behind the three paid slots...
        for _ in 0..3 {
            pacer.admit(Op::iam("CreateUser"), 3).await.unwrap();
        }
        // ...but the first request's own calls go at once, not behind them.
        let t0 = tokio::time::Instant::now();
        for op in ["CreateUser", "PutUserPolicy", "CreateAccessKey"] {
            pacer
                .run_paid(Op::iam(op), Some(&ticket), || async {
                    Ok::<_, SdkError<aws_sdk_iam::operation::get_user::GetUserError, HttpResponse>>(())
                })
                .await
                .unwrap();
        }
        assert_eq!(t0.elapsed(), Duration::ZERO);
        // Too long a queue is refused before anything is paid.
        let pacer = Pacer::new(Limits {
            rates: [1.0, 20.0, 50.0],
            max_queue_wait: Duration::from_secs(2),
            ..Limits::default()
        });
        assert!(
            pacer.admit(Op::iam("CreateUser"), 4).await.unwrap_err().to_string().contains("max_queue_wait")
        );
        pacer.admit(Op::iam("CreateUser"), 3).await.unwrap();
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

    #[test]
    fn backoff_grows_and_is_capped() {
        for r in 0..20 {
            let p = backoff(r);
            assert!(p <= BACKOFF_CAP);
            assert!(p >= (BACKOFF_BASE.saturating_mul(1 << r.min(10)).min(BACKOFF_CAP)) / 4);
        }
    }

    fn throttling() -> SdkError<aws_sdk_iam::operation::get_user::GetUserError, HttpResponse> {
        use aws_smithy_types::error::ErrorMetadata;
        let err = aws_sdk_iam::operation::get_user::GetUserError::generic(
            ErrorMetadata::builder().code("Throttling").message("Rate exceeded").build(),
        );
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(err, raw)
    }

    #[tokio::test(start_paused = true)]
    async fn throttled_calls_are_repeated_until_they_pass_or_the_deadline() {
        let pacer = Pacer::new(Limits { retry_deadline: Duration::from_secs(5), ..Limits::default() });
        let mut n = 0;
        let out = pacer
            .run(Op::iam("GetUser"), || {
                n += 1;
                let fail = n < 4;
                async move { if fail { Err(throttling()) } else { Ok(n) } }
            })
            .await
            .unwrap();
        assert_eq!(out, 4);
        assert!(pacer.current_rate(Family::IamRead) < DEFAULT_IAM_READ_RATE as f64);

        let err = pacer.run(Op::iam("GetUser"), || async { Err::<(), _>(throttling()) }).await.unwrap_err();
        assert_eq!(err.retry, Retry::Throttled);
        let text = err.to_string();
        assert!(text.contains("AWS operation GetUser; gave up after"), "{text}");
        assert!(text.contains("iam_read_rate"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn max_retries_caps_the_attempts() {
        let pacer = Pacer::new(Limits { max_retries: Some(0), ..Limits::default() });
        let mut n = 0;
        let _ = pacer
            .run(Op::iam("GetUser"), || {
                n += 1;
                async { Err::<(), _>(throttling()) }
            })
            .await;
        assert_eq!(n, 1);
    }
}
