//! The [`Pacer`]: one mount's buckets, the admission of credential requests, and the loop that
//! sends an AWS call on its slot and repeats it after throttling or a transient failure.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use rand::Rng;
use tokio::time::Instant;
use tracing::debug;

use super::bucket::{Bucket, Line};
use super::fleet::Fleet;
use super::{Family, Limits, Op, Paid, Prepaid, QUEUE_CEILING, lock};
use crate::aws_error::{AwsCallError, Retry, classify};
use crate::error::AwsFailure;

const BACKOFF_BASE: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// How often a queued request looks at the queue again, in case the rate changed.
const RECHECK: Duration = Duration::from_millis(250);
/// Retries of a transient failure when `max_retries` is the SDK default (-1).
const DEFAULT_TRANSIENT_RETRIES: u32 = 4;

/// The pacing state of one mount, shared by every client version of it.
#[derive(Debug)]
pub struct Pacer {
    buckets: [Mutex<Bucket>; 3],
    limits: Mutex<Limits>,
    /// The fleet this replica paces with; `None`: it paces alone.
    fleet: Option<Fleet>,
}

impl Pacer {
    /// A pacer of one process.
    pub fn new(limits: Limits) -> Pacer {
        let now = Instant::now();
        Pacer {
            buckets: limits.caps.map(|c| Mutex::new(Bucket::new(c, now))),
            limits: Mutex::new(limits),
            fleet: None,
        }
    }

    /// A pacer that keeps to its slice of `fleet`'s budget, with a task exchanging with the
    /// fleet while it makes calls, for as long as the pacer is in use.
    pub fn in_fleet(limits: Limits, fleet: Fleet) -> Arc<Pacer> {
        let pacer = Arc::new(Pacer { fleet: Some(fleet), ..Pacer::new(limits) });
        let weak = Arc::downgrade(&pacer);
        tokio::spawn(async move {
            while let Some(pacer) = weak.upgrade()
                && let Some(fleet) = pacer.fleet.as_ref()
            {
                fleet.tick(&pacer.buckets).await;
            }
        });
        pacer
    }

    /// [`Pacer::in_fleet`] without its exchange task: tests watch the kicks it would take.
    #[cfg(test)]
    pub(super) fn in_fleet_idle(limits: Limits, fleet: Fleet) -> Pacer {
        Pacer { fleet: Some(fleet), ..Pacer::new(limits) }
    }

    #[cfg(test)]
    pub(super) fn fleet(&self) -> Option<&Fleet> {
        self.fleet.as_ref()
    }

    /// Another replica cut the fleet's rate: adopt it now (a pacer in a fleet).
    pub fn fleet_cut(&self) {
        if let Some(fleet) = &self.fleet {
            fleet.exchange_soon();
        }
    }

    /// Before a call: a pacer in a fleet makes sure its slice is current.
    async fn join_fleet(&self) {
        if let Some(fleet) = &self.fleet {
            fleet.before_call(&self.buckets).await;
        }
    }

    /// Applies changed settings (a `config/root` write) without losing the current debt or
    /// what AWS's throttling taught.
    pub fn set_limits(&self, limits: Limits) {
        let now = Instant::now();
        for (bucket, cap) in self.buckets.iter().zip(limits.caps) {
            lock(bucket).set_cap(cap, now);
        }
        *lock(&self.limits) = limits;
    }

    pub fn limits(&self) -> Limits {
        *lock(&self.limits)
    }

    /// The rate a family keeps to now, in calls per second: its cap or what AWS's throttling
    /// taught, whichever is lower; `None` when nothing limits it.
    pub fn current_rate(&self, family: Family) -> Option<f64> {
        let mut b = lock(&self.buckets[family.index()]);
        b.refill(Instant::now());
        (!b.unlimited()).then_some(b.rate)
    }

    /// The rate the whole fleet keeps to (this replica's [`Pacer::current_rate`] alone).
    fn fleet_rate(&self, family: Family) -> Option<f64> {
        let share = lock(&self.buckets[family.index()]).share();
        self.current_rate(family).map(|r| r / share)
    }

    fn epoch(&self, family: Family) -> u64 {
        lock(&self.buckets[family.index()]).epoch
    }

    /// Admits a request that will make `cost` calls of `op`'s family, `op` first: waits until
    /// all their slots are paid, or refuses at once if that is over `max_queue_wait`.
    pub async fn admit(&self, op: Op, cost: u32) -> Result<Prepaid, AwsCallError> {
        let cost = cost.max(1);
        self.join_fleet().await;
        let epoch = self.epoch(op.family);
        self.wait_for(op, cost, admission_wait(&self.limits())).await?;
        Ok(Prepaid { family: op.family, epoch, left: std::sync::atomic::AtomicU32::new(cost) })
    }

    /// Notes a call sent on a reserved slot, so calls without one wait for a gap after it.
    fn book_send(&self, family: Family) {
        lock(&self.buckets[family.index()]).book_send(Instant::now());
    }

    /// Waits for the family's next sending turn at its current rate: how retries and calls
    /// outside admission (cleanup, reads) keep to the rate AWS has been accepting, between the
    /// calls sent on reserved slots. The wait follows the rate as it moves. Returns how long it
    /// waited.
    async fn send_turn(&self, family: Family) -> Duration {
        let started = Instant::now();
        let turn = lock(&self.buckets[family.index()]).send_turn(started);
        self.wait_in(family, Line::Send, turn).await;
        started.elapsed()
    }

    /// Waits until slot `slot` of `line` is released. The wait is estimated at today's rate; the
    /// rate may grow back (or be cut) meanwhile, so the queue is looked at again now and then.
    async fn wait_in(&self, family: Family, line: Line, slot: f64) {
        loop {
            let wait = lock(&self.buckets[family.index()]).wait_for(Instant::now(), line, slot);
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait.min(RECHECK)).await;
        }
    }

    /// Takes a slot of `family` without waiting for it.
    fn charge(&self, family: Family) {
        lock(&self.buckets[family.index()]).charge(Instant::now());
    }

    /// Waits for a slot of `op`'s family.
    async fn slot(&self, op: Op, max_wait: Duration) -> Result<(), AwsCallError> {
        self.wait_for(op, 1, max_wait).await
    }

    async fn wait_for(&self, op: Op, n: u32, max_wait: Duration) -> Result<(), AwsCallError> {
        let reserved = lock(&self.buckets[op.family.index()]).take_n(Instant::now(), n, max_wait);
        match reserved {
            Ok((wait, _)) if wait.is_zero() => Ok(()),
            Ok((wait, slot)) => {
                metrics::histogram!("keymint_aws_queue_seconds", "family" => op.family.config_field())
                    .record(wait.as_secs_f64());
                self.wait_in(op.family, Line::Admission, slot).await;
                Ok(())
            }
            Err(wait) => Err(AwsCallError {
                op: op.name,
                code: None,
                text: format!(
                    "keymint's queue for this mount's AWS calls is {:.0}s long, over the {}s allowed \
                     ({}); {} calls go at {:.1} per second{}",
                    wait.as_secs_f64(),
                    max_wait.as_secs(),
                    if max_wait < self.limits().max_queue_wait {
                        "what the server's request_timeout leaves after retry_deadline"
                    } else {
                        "max_queue_wait"
                    },
                    op.family.service_calls(),
                    self.fleet_rate(op.family).unwrap_or(f64::INFINITY),
                    self.rate_source(op.family),
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
        self.join_fleet().await;
        let limits = self.limits();
        let mut first_failure: Option<Instant> = None;
        // Time spent waiting for sending turns since the first failure: pacing, not failing,
        // so it does not count against the retry deadline.
        let mut queued = Duration::ZERO;
        let mut retries = 0u32;
        let max_wait = if op.admission { admission_wait(&limits) } else { QUEUE_CEILING };
        let mut paid = prepaid.map_or(Paid::Not, |p| p.take(op.family, self.epoch(op.family)));
        loop {
            let this = std::mem::replace(&mut paid, Paid::Not);
            if this == Paid::Current {
                // Its turn was reserved at admission, in admission order.
                self.book_send(op.family);
            } else if this == Paid::Stale {
                // Paid at a rate AWS has since refused: it waits for a turn at the new one.
                self.send_turn(op.family).await;
            } else if op.admission && retries == 0 {
                self.slot(op, max_wait).await?;
                self.book_send(op.family);
            } else {
                // Counted against the reservations of requests still to be admitted, without
                // waiting behind them: a retry or a cleanup call is not sent to the back of the
                // queue, but it keeps to the rate AWS has been accepting.
                self.charge(op.family);
                let waited = self.send_turn(op.family).await;
                if first_failure.is_some() {
                    queued += waited;
                }
            }
            // Boxed: SDK futures are large, and kept inline they would make every caller's
            // future (and the stack that polls it) larger still.
            let sent = Instant::now();
            let outcome = Box::pin(call()).await;
            let took = sent.elapsed().as_secs_f64();
            let mut err = match outcome {
                Ok(v) => {
                    record_call(op, "ok", took);
                    lock(&self.buckets[op.family.index()]).accepted(Instant::now());
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
                    if let Some(fleet) = &self.fleet {
                        fleet.exchange_soon();
                    }
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
            let elapsed = since.elapsed().saturating_sub(queued);
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

impl Pacer {
    /// Where a family's rate comes from, for error texts.
    fn rate_source(&self, family: Family) -> String {
        let b = lock(&self.buckets[family.index()]);
        let source = match (self.limits().caps[family.index()], b.learned_rate(Instant::now())) {
            (Some(cap), Some(learned)) if learned < cap => {
                format!(", learned from AWS's throttling (under the {} cap of {cap})", family.config_field())
            }
            (Some(cap), _) => format!(", the {} cap of {cap}", family.config_field()),
            (None, _) => format!(", learned from AWS's throttling ({} is not set)", family.config_field()),
        };
        match b.share() {
            share if share < 1.0 && !b.unlimited() => {
                format!("{source}, across the fleet; this replica's share is {:.0}% for now", share * 100.0)
            }
            _ => source,
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

/// The longest a new credential request may queue for its slots: `max_queue_wait`, and no
/// longer than leaves `retry_deadline` of its request's time limit for the calls it was
/// admitted for. Refused at once, it has made nothing; cut by the limit half-way, it would
/// leave its user to the intent sweeper.
fn admission_wait(limits: &Limits) -> Duration {
    keymint_common::deadline::cap(limits.max_queue_wait, limits.retry_deadline)
}

#[cfg(test)]
pub(in crate::pace) mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_admitted_request_does_not_queue_again() {
        let pacer = Pacer::new(Limits { caps: [Some(2.0), None, None], ..Limits::default() });
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
            caps: [Some(1.0), None, None],
            max_queue_wait: Duration::from_secs(2),
            ..Limits::default()
        });
        assert!(
            pacer.admit(Op::iam("CreateUser"), 4).await.unwrap_err().to_string().contains("max_queue_wait")
        );
        pacer.admit(Op::iam("CreateUser"), 3).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_is_admitted_only_with_time_left_for_its_calls() {
        let limits = Limits {
            caps: [Some(1.0), None, None],
            retry_deadline: Duration::from_secs(4),
            ..Limits::default()
        };
        // 6 s left of the request: it may queue 2 s, and a 4-call admission needs more.
        let limit = tokio::time::Instant::now() + Duration::from_secs(6);
        let refused =
            keymint_common::deadline::scope(limit, Pacer::new(limits).admit(Op::iam("CreateUser"), 4))
                .await
                .unwrap_err()
                .to_string();
        assert!(
            refused.contains("over the 2s allowed (what the server's request_timeout leaves"),
            "{refused}"
        );
        // Outside a request (or with time enough), max_queue_wait alone decides.
        Pacer::new(limits).admit(Op::iam("CreateUser"), 4).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_in_a_fleet_names_the_fleets_rate_and_the_share() {
        let pacer = Pacer::new(Limits {
            caps: [Some(20.0), None, None],
            max_queue_wait: Duration::from_secs(2),
            ..Limits::default()
        });
        {
            let mut b = lock(&pacer.buckets[Family::IamWrite.index()]);
            let now = Instant::now();
            let report = b.report(now, Duration::from_secs(1));
            let view = super::super::bucket::FleetView {
                learned: None,
                cut_elsewhere: false,
                share: 0.25,
                others_queued: 100.0,
            };
            b.adopt(now, &report, view);
        }
        // 100 calls queued elsewhere: 5 s at the fleet's 20 a second, over the 2 s allowed.
        let text = pacer.admit(Op::iam("CreateUser"), 3).await.unwrap_err().to_string();
        assert!(text.contains("is 5s long, over the 2s allowed"), "{text}");
        assert!(
            text.contains("go at 20.0 per second, the iam_write_rate cap of 20, across the fleet; this replica's share is 25% for now"),
            "{text}"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for r in 0..20 {
            let p = backoff(r);
            assert!(p <= BACKOFF_CAP);
            assert!(p >= (BACKOFF_BASE.saturating_mul(1 << r.min(10)).min(BACKOFF_CAP)) / 4);
        }
    }

    pub(in crate::pace) fn throttling()
    -> SdkError<aws_sdk_iam::operation::get_user::GetUserError, HttpResponse> {
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
        assert!(pacer.current_rate(Family::IamRead).is_some(), "a throttle taught a rate");

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

#[cfg(test)]
mod adaptive_tests;
