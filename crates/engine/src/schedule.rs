//! When an access key is due for rotation: the root key's `rotation_period` or
//! `rotation_schedule` (with its `rotation_window`), a static role's `rotation_period`, and the
//! pause before a failed rotation is tried again. Pure functions of "now", so they are tested
//! without waiting.

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::config::{RootConfig, RootSecrets};
use crate::error::{EngineError, Result};

/// The shortest `rotation_period` (root key and static roles), in seconds: AWS needs seconds to
/// accept a new key, and the background task looks for due rotations every few seconds.
pub const MIN_ROTATION_PERIOD: u64 = 60;

/// The shortest non-zero `rotation_window`, in seconds.
pub const MIN_ROTATION_WINDOW: u64 = 60;

/// The first retry of a failed rotation comes after this long (Vault waits 10 s too)...
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// ...and the pause doubles up to this.
const MAX_RETRY: Duration = Duration::from_secs(600);

/// A key's rotation schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so many seconds after the last rotation.
    Period(u64),
    /// At each occurrence of a 5-field cron expression (UTC). With a non-zero `window`, a
    /// rotation not started within `window` seconds of its occurrence waits for the next one.
    Cron { cron: Box<Cron>, window: u64 },
}

/// Parses a 5-field cron expression (minute, hour, day of month, month, day of week).
pub fn parse_cron(expr: &str) -> std::result::Result<Cron, String> {
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    let cron = parser.parse(expr).map_err(|e| e.to_string())?;
    // A pattern that never matches (the 30th of February) would park the rotation forever.
    cron.find_next_occurrence(&Utc::now(), false)
        .map_err(|e| format!("the schedule has no upcoming occurrence ({e})"))?;
    Ok(cron)
}

impl Schedule {
    /// The root config's schedule, `None` when automated rotation is off. The config has been
    /// validated, so the cron expression parses.
    pub fn of_root(cfg: &RootConfig) -> Option<Schedule> {
        if cfg.disable_automated_rotation {
            return None;
        }
        if cfg.rotation_period > 0 {
            return Some(Schedule::Period(cfg.rotation_period));
        }
        if cfg.rotation_schedule.is_empty() {
            return None;
        }
        let cron = parse_cron(&cfg.rotation_schedule).ok()?;
        Some(Schedule::Cron { cron: Box::new(cron), window: cfg.rotation_window })
    }

    /// When the next rotation is due, counting from `now` (a rotation that just happened, or a
    /// schedule just set).
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Period(secs) => Some(now + secs_delta(*secs)),
            Schedule::Cron { cron, .. } => cron.find_next_occurrence(&now, false).ok(),
        }
    }

    /// Whether a rotation due at `due` may still start at `now`; if not, when the next one is.
    pub fn missed(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> Option<Option<DateTime<Utc>>> {
        match self {
            Schedule::Cron { window, .. } if *window > 0 && now > due + secs_delta(*window) => {
                Some(self.next_after(now))
            }
            _ => None,
        }
    }
}

/// Checks the rotation fields of `config/root`, with Vault's texts where Vault has them.
pub fn validate_root_rotation(cfg: &RootConfig, secrets: &RootSecrets) -> Result<()> {
    let bad = |m: String| Err(EngineError::InvalidRootConfig(m));
    if !cfg.rotation_schedule.is_empty() && cfg.rotation_period > 0 {
        return bad("mutually exclusive fields rotation_schedule and rotation_period were both specified; only one of them can be provided".into());
    }
    if !cfg.rotation_schedule.is_empty()
        && let Err(e) = parse_cron(&cfg.rotation_schedule)
    {
        return bad(format!("failed to parse provided rotation_schedule: {e}"));
    }
    if cfg.rotation_window > 0 && cfg.rotation_schedule.is_empty() {
        return bad("cannot use rotation_window without rotation_schedule".into());
    }
    if cfg.rotation_window > 0 && cfg.rotation_period > 0 {
        return bad("rotation_window does not apply to period".into());
    }
    if cfg.rotation_period > 0 && cfg.rotation_period < MIN_ROTATION_PERIOD {
        return bad(format!("rotation_period must be at least {MIN_ROTATION_PERIOD} seconds"));
    }
    if cfg.rotation_window > 0 && cfg.rotation_window < MIN_ROTATION_WINDOW {
        return bad(format!("rotation_window must be at least {MIN_ROTATION_WINDOW} seconds"));
    }
    let scheduled =
        !cfg.disable_automated_rotation && (cfg.rotation_period > 0 || !cfg.rotation_schedule.is_empty());
    if scheduled && (cfg.access_key.is_empty() || secrets.session_token.is_some()) {
        return bad(
            "scheduled rotation (rotation_period or rotation_schedule) rotates the IAM user access key \
             in config/root: set access_key and secret_key of an IAM user (no session_token), or set \
             disable_automated_rotation"
                .into(),
        );
    }
    Ok(())
}

/// The pause before retry number `attempts` (1 for the first retry) of a failed rotation.
pub fn retry_backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

fn secs_delta(secs: u64) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use secrecy::SecretString;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn cron(expr: &str, window: u64) -> Schedule {
        Schedule::Cron { cron: Box::new(parse_cron(expr).unwrap()), window }
    }

    #[test]
    fn periods_count_from_the_last_rotation() {
        let now = at(2026, 3, 1, 12, 0, 0);
        assert_eq!(Schedule::Period(3600).next_after(now), Some(at(2026, 3, 1, 13, 0, 0)));
        assert_eq!(Schedule::Period(3600).missed(now, now + chrono::TimeDelta::days(3)), None);
    }

    #[test]
    fn cron_occurrences_are_in_utc_and_strictly_after_now() {
        // Every Saturday at midnight (Vault's docs example).
        let weekly = cron("0 0 * * SAT", 0);
        // 2026-03-04 is a Wednesday.
        assert_eq!(weekly.next_after(at(2026, 3, 4, 9, 30, 0)), Some(at(2026, 3, 7, 0, 0, 0)));
        assert_eq!(weekly.next_after(at(2026, 3, 7, 0, 0, 0)), Some(at(2026, 3, 14, 0, 0, 0)));
        let hourly = cron("15 * * * *", 0);
        assert_eq!(hourly.next_after(at(2026, 3, 4, 9, 15, 0)), Some(at(2026, 3, 4, 10, 15, 0)));
        assert_eq!(hourly.next_after(at(2026, 3, 4, 9, 14, 59)), Some(at(2026, 3, 4, 9, 15, 0)));
    }

    #[test]
    fn a_window_skips_to_the_next_occurrence_once_it_has_passed() {
        let due = at(2026, 3, 7, 0, 0, 0);
        let windowed = cron("0 0 * * SAT", 3600);
        assert_eq!(windowed.missed(due, due), None);
        assert_eq!(windowed.missed(due, at(2026, 3, 7, 1, 0, 0)), None, "the window's last second");
        assert_eq!(windowed.missed(due, at(2026, 3, 7, 1, 0, 1)), Some(Some(at(2026, 3, 14, 0, 0, 0))));
        // No window: late is better than never.
        assert_eq!(cron("0 0 * * SAT", 0).missed(due, at(2026, 3, 9, 0, 0, 0)), None);
    }

    #[test]
    fn cron_expressions_are_five_fields_that_occur() {
        for good in ["* * * * *", "0 0 * * SAT", "*/15 9-17 * * MON-FRI", "0 3 1 JAN,JUL *"] {
            assert!(parse_cron(good).is_ok(), "{good}");
        }
        for bad in ["", "* * * *", "0 * * * * *", "61 * * * *", "not a cron", "0 0 30 2 *"] {
            assert!(parse_cron(bad).is_err(), "{bad}");
        }
    }

    fn keys() -> (RootConfig, RootSecrets) {
        let cfg = RootConfig { access_key: "AKIAEXAMPLE".into(), ..RootConfig::default() };
        let secrets = RootSecrets { secret_key: Some(SecretString::from("s")), session_token: None };
        (cfg, secrets)
    }

    fn check(edit: impl FnOnce(&mut RootConfig, &mut RootSecrets)) -> std::result::Result<(), String> {
        let (mut cfg, mut secrets) = keys();
        edit(&mut cfg, &mut secrets);
        validate_root_rotation(&cfg, &secrets).map_err(|e| e.to_string())
    }

    #[test]
    fn validation_keeps_vaults_texts() {
        assert!(check(|c, _| c.rotation_period = 3600).is_ok());
        assert!(
            check(|c, _| {
                c.rotation_schedule = "0 * * * SAT".into();
                c.rotation_window = 3600;
            })
            .is_ok()
        );
        assert_eq!(
            check(|c, _| {
                c.rotation_schedule = "0 * * * *".into();
                c.rotation_period = 3600;
            })
            .unwrap_err(),
            "mutually exclusive fields rotation_schedule and rotation_period were both specified; only one of them can be provided"
        );
        assert!(
            check(|c, _| c.rotation_schedule = "every day".into())
                .unwrap_err()
                .starts_with("failed to parse provided rotation_schedule: ")
        );
        assert_eq!(
            check(|c, _| c.rotation_window = 3600).unwrap_err(),
            "cannot use rotation_window without rotation_schedule"
        );
        assert!(check(|c, _| c.rotation_period = 59).unwrap_err().contains("at least 60 seconds"));
        let no_keys = check(|c, s| {
            c.rotation_period = 3600;
            c.access_key.clear();
            s.secret_key = None;
        });
        assert!(no_keys.unwrap_err().contains("access_key and secret_key"));
        let temporary = check(|c, s| {
            c.rotation_period = 3600;
            s.session_token = Some(SecretString::from("t"));
        });
        assert!(temporary.unwrap_err().contains("no session_token"));
        // Switched off, a schedule needs no keys.
        assert!(
            check(|c, s| {
                c.rotation_period = 3600;
                c.disable_automated_rotation = true;
                c.access_key.clear();
                s.secret_key = None;
            })
            .is_ok()
        );
    }

    #[test]
    fn retries_back_off_up_to_ten_minutes() {
        assert_eq!(retry_backoff(1), Duration::from_secs(10));
        assert_eq!(retry_backoff(2), Duration::from_secs(20));
        assert_eq!(retry_backoff(4), Duration::from_secs(80));
        assert_eq!(retry_backoff(7), Duration::from_secs(600));
        assert_eq!(retry_backoff(1000), Duration::from_secs(600));
        assert_eq!(retry_backoff(0), Duration::from_secs(10));
    }
}
