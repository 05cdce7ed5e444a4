//! AWS call pacing, per mount and API family (IAM writes, IAM reads, STS).
//!
//! Pacing costs nothing until AWS pushes back: by default a family has no rate at all, and
//! calls go as fast as callers make them. A throttling answer teaches the family the rate AWS
//! accepts (cut a little below it) and from then on its token bucket hands out slots in arrival
//! order at that rate, which grows back along a CUBIC curve to probe for more, and is forgotten
//! after long calm. An operator may also cap a family's rate (`iam_write_rate`,
//! `iam_read_rate`, `sts_rate`); the learned rate then stays under the cap. The throttled call
//! is repeated after a jittered, exponentially growing pause, within a retry deadline that
//! counts time spent failing, not time spent in the queue. 5xx answers and broken connections
//! are repeated too, but only for calls that are safe to repeat: `CreateUser` and
//! `CreateAccessKey` come back to the caller, which reconciles (see `mint`).
//!
//! The SDK's own retries are off: they would repeat non-idempotent calls blindly.
//!
//! The buckets (`bucket`) are pure functions of the instant they are given; the [`Pacer`]
//! (`pacer`) reads tokio's clock for them, so paused time in tests drives the pacing too.
//!
//! On PostgreSQL the replicas of an installation pace as one: the caps and what throttling
//! taught are the fleet's, each replica keeping to a slice of them sized by its demand
//! (`fleet`, [`Fleet`]). On SQLite a process paces alone.

mod bucket;
mod fleet;
mod pacer;

use std::sync::Mutex;
use std::time::Duration;

pub use fleet::{Fleet, Pacers, listen_for_cuts};
pub use pacer::Pacer;

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

    /// The family's calls, in words.
    fn service_calls(self) -> &'static str {
        match self {
            Family::IamWrite => "IAM write",
            Family::IamRead => "IAM read",
            Family::Sts => "STS",
        }
    }

    /// The family's name in the fleet's pacing tables.
    fn key(self) -> &'static str {
        match self {
            Family::IamWrite => "iam_write",
            Family::IamRead => "iam_read",
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
    /// The most calls per second, by [`Family`] index; `None`: no cap, the rate is learned
    /// from AWS's throttling answers alone.
    pub caps: [Option<f64>; 3],
    /// The longest a new credential request may wait for its first slot; a longer queue is
    /// refused at once.
    pub max_queue_wait: Duration,
    /// How long after a call's first failure it may still be retried.
    pub retry_deadline: Duration,
    /// At most this many retries of one call; `None`: as many as the deadline allows.
    pub max_retries: Option<u32>,
}

/// With `retry_deadline`, within the server's default request limit (150 s): an admitted
/// request finishes in time. A shorter limit shortens the queue too (`admission_wait`).
pub const DEFAULT_MAX_QUEUE_WAIT: Duration = Duration::from_secs(120);
pub const DEFAULT_RETRY_DEADLINE: Duration = Duration::from_secs(30);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            caps: [None; 3],
            max_queue_wait: DEFAULT_MAX_QUEUE_WAIT,
            retry_deadline: DEFAULT_RETRY_DEADLINE,
            max_retries: None,
        }
    }
}

/// Slots paid for in advance: a credential request is admitted with all the writes it will
/// make, so once admitted it never queues again behind requests that came after it (and never
/// outlives its client's patience half-way through). Retries still queue. Slots paid before
/// AWS last throttled the family (a different `epoch`) were paid at a rate AWS refused: they
/// no longer count, and those calls keep to the new rate like any other.
#[derive(Debug)]
pub struct Prepaid {
    family: Family,
    epoch: u64,
    left: std::sync::atomic::AtomicU32,
}

/// What a prepaid ticket holds for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paid {
    /// A slot paid in the current epoch: the call goes at once.
    Current,
    /// A slot paid before AWS last throttled: not paid again, but the call waits for a sending
    /// turn at the new rate.
    Stale,
    Not,
}

impl Prepaid {
    /// Uses one prepaid slot of `family`, if any is left; `epoch` is the family's now.
    fn take(&self, family: Family, epoch: u64) -> Paid {
        use std::sync::atomic::Ordering;
        let taken = family == self.family
            && self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok();
        match (taken, epoch == self.epoch) {
            (false, _) => Paid::Not,
            (true, true) => Paid::Current,
            (true, false) => Paid::Stale,
        }
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

/// A poisoned bucket is still a usable bucket.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
}
