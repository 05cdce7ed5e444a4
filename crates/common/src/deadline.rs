//! The time limit of the request a task is serving, for code far below the API that waits on
//! purpose (until a new IAM key works): such a wait ends early and answers for itself, rather
//! than being cut with the request and losing what it was about to hand back.
//!
//! The API sets it around each request ([`scope`]); a background task has none, and
//! [`remaining`] is `None` there. A task spawned from a request does not inherit it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as its request's time limit.
pub async fn scope<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The time left before the current request's limit, if the caller serves a request.
pub fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|deadline| deadline.saturating_duration_since(Instant::now())).ok()
}

/// `wanted`, shortened so it ends `margin` before the current request's limit (unchanged
/// outside a request). The margin leaves time to answer with what the wait found.
pub fn cap(wanted: Duration, margin: Duration) -> Duration {
    match remaining() {
        Some(left) => wanted.min(left.saturating_sub(margin)),
        None => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wait_is_capped_only_inside_a_request() {
        let wanted = Duration::from_secs(300);
        assert_eq!(remaining(), None);
        assert_eq!(cap(wanted, Duration::from_secs(2)), wanted);
        let limit = Instant::now() + Duration::from_secs(90);
        scope(limit, async {
            assert_eq!(cap(wanted, Duration::from_secs(2)), Duration::from_secs(88));
            assert_eq!(cap(Duration::from_secs(5), Duration::from_secs(2)), Duration::from_secs(5));
            tokio::time::advance(Duration::from_secs(89)).await;
            assert_eq!(remaining(), Some(Duration::from_secs(1)));
            assert_eq!(cap(wanted, Duration::from_secs(2)), Duration::ZERO);
            // Spawned work is not the request's.
            assert_eq!(tokio::spawn(async { remaining() }).await.unwrap(), None);
        })
        .await;
    }
}
