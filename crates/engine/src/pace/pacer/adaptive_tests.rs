//! The burst benchmark's scenario replayed in tokio's paused time: iam_user requests against a
//! simulated account that throttles writes above a rate, through one [`Pacer`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use aws_sdk_iam::operation::get_user::GetUserError;

type Answer = Result<(), SdkError<GetUserError, HttpResponse>>;

/// An account that accepts `rate` writes a second (a token bucket with a second's burst)
/// and throttles the rest, in tokio's (paused) time.
struct Account {
    rate: f64,
    state: Mutex<(f64, Instant)>,
    throttled: AtomicU32,
    accepted: AtomicU32,
}

impl Account {
    fn new(rate: f64) -> Arc<Account> {
        Arc::new(Account {
            rate,
            state: Mutex::new((rate, Instant::now())),
            throttled: AtomicU32::new(0),
            accepted: AtomicU32::new(0),
        })
    }

    /// A throttling answer comes at once; an accepted call takes `LATENCY`, as moto's or
    /// AWS's work does, so when the first throttle arrives few successes have come back.
    async fn call(&self) -> Answer {
        let accepted = {
            let mut state = lock(&self.state);
            let now = Instant::now();
            let (tokens, at) = *state;
            let tokens =
                (tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate).min(self.rate);
            let accepted = tokens >= 1.0;
            *state = (if accepted { tokens - 1.0 } else { tokens }, now);
            accepted
        };
        if accepted {
            tokio::time::sleep(LATENCY).await;
            self.accepted.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            Err(super::tests::throttling())
        }
    }
}

const LATENCY: Duration = Duration::from_millis(30);

/// One iam_user request's writes: admitted as a unit, then sent one after the other.
async fn request(pacer: Arc<Pacer>, account: Arc<Account>) -> Result<(), AwsCallError> {
    let ticket = pacer.admit(Op::iam("CreateUser"), 3).await?;
    for op in ["CreateUser", "PutUserPolicy", "CreateAccessKey"] {
        let account = account.clone();
        pacer
            .run_paid(Op::iam(op), Some(&ticket), move || {
                let account = account.clone();
                async move { account.call().await }
            })
            .await?;
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn until_aws_pushes_back_nothing_waits() {
    let pacer = Arc::new(Pacer::new(Limits::default()));
    let t0 = Instant::now();
    let account = Account::new(1e9);
    let all: Vec<_> = (0..200).map(|_| tokio::spawn(request(pacer.clone(), account.clone()))).collect();
    for r in all {
        r.await.unwrap().unwrap();
    }
    assert_eq!(t0.elapsed(), LATENCY * 3, "three calls one after the other, nothing else");
    assert_eq!(pacer.current_rate(Family::IamWrite), None);
}

/// The burst benchmark's scenario in tokio's time: 500 iam_user requests at once against an
/// account that throttles writes above 20 per second. The ideal is 500 x 3 / 20 = 75 s.
async fn burst(caps: [Option<f64>; 3]) -> (f64, u32) {
    let pacer = Arc::new(Pacer::new(Limits { caps, ..Limits::default() }));
    let account = Account::new(20.0);
    let t0 = Instant::now();
    let all: Vec<_> = (0..500).map(|_| tokio::spawn(request(pacer.clone(), account.clone()))).collect();
    let mut failed = Vec::new();
    for r in all {
        if let Err(e) = r.await.unwrap() {
            failed.push(e.to_string());
        }
    }
    assert!(failed.is_empty(), "{caps:?}: {} failed, first: {:?}", failed.len(), failed.first());
    assert_eq!(account.accepted.load(Ordering::Relaxed), 1500);
    assert!(pacer.current_rate(Family::IamWrite).is_some_and(|r| r > 5.0));
    (t0.elapsed().as_secs_f64(), account.throttled.load(Ordering::Relaxed))
}

#[tokio::test(start_paused = true)]
async fn a_burst_against_a_throttling_account_is_served_near_the_ideal_time() {
    let (took, throttled) = burst(Limits::default().caps).await;
    eprintln!("adaptive: {took:.1}s, {throttled} throttled");
    assert!(took <= 75.0 * 1.25, "took {took:.1}s, over 1.25x the ideal 75 s");
}

#[tokio::test(start_paused = true)]
async fn a_cap_above_what_aws_allows_no_longer_fails_requests() {
    // Before pacing learned and queued requests moved with it, a cap of twice AWS's rate
    // failed 78 of these 500 requests on their retry deadline.
    let (took, _) = burst([Some(40.0), None, None]).await;
    assert!(took <= 75.0 * 1.25, "took {took:.1}s");
    let (took, throttled) = burst([Some(20.0), None, None]).await;
    assert!(took <= 75.0 * 1.1 && throttled < 100, "took {took:.1}s, {throttled} throttled");
}

#[tokio::test(start_paused = true)]
async fn slots_paid_before_a_throttle_keep_to_the_new_rate() {
    let pacer = Pacer::new(Limits::default());
    let ticket = pacer.admit(Op::iam("CreateUser"), 3).await.unwrap();
    // AWS throttles some other call of the family: the rate is learned, the epoch moves on.
    let _ = pacer
        .run(Op::iam("DeleteUser"), {
            let mut n = 0;
            move || {
                n += 1;
                std::future::ready(if n == 1 { Err(super::tests::throttling()) } else { Ok(()) })
            }
        })
        .await;
    assert!(pacer.current_rate(Family::IamWrite).is_some());
    // The ticket's slots no longer jump the queue: the call waits for a turn at the new
    // rate, and is not paid for twice.
    let before = lock(&pacer.buckets[Family::IamWrite.index()]).admission.tokens;
    pacer
        .run_paid(Op::iam("PutUserPolicy"), Some(&ticket), || {
            std::future::ready(Ok::<(), SdkError<GetUserError, HttpResponse>>(()))
        })
        .await
        .unwrap();
    let after = lock(&pacer.buckets[Family::IamWrite.index()]).admission.tokens;
    assert!(after >= before, "not charged again: {before} -> {after}");
    let turn = lock(&pacer.buckets[Family::IamWrite.index()]).send_wait(Instant::now());
    assert!(!turn.is_zero(), "it took the next sending turn");
}
