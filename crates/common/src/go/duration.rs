//! Go and Vault duration handling: parsing TTL-like inputs the way Vault's
//! `parseutil.ParseDurationSecond` does (on top of Go's `time.ParseDuration`), and printing
//! seconds the way Go's `time.Duration.String()` does, so that requests and responses match
//! Vault byte for byte. Every duration keymint reads, from the API, the config file or the
//! command line, goes through [`parse_duration_secs`].
//!
//! Plain integers and day counts are read with Go's `strconv.ParseInt` ([`super::strconv`]),
//! whose error texts parseutil passes through.

use std::fmt::Write as _;

use crate::go::strconv::{GoIntError, parse_go_int};

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 24 * 60 * 60;
/// Go accumulates durations as unsigned magnitudes bounded by 2^63 (the magnitude of the
/// smallest `time.Duration`); a positive result must then also fit in `i64`.
const MAGNITUDE_LIMIT: u64 = 1 << 63;

/// Why a duration input was rejected. The Display text is the message Vault returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Go's `time.ParseDuration` syntax or overflow failure.
    #[error("time: invalid duration {}", time_quote(.0))]
    Invalid(String),
    /// A number without a unit inside a compound duration, e.g. `1h30`.
    #[error("time: missing unit in duration {}", time_quote(.0))]
    MissingUnit(String),
    /// A unit Go does not know, e.g. `10x`.
    #[error("time: unknown unit {} in duration {}", time_quote(.unit), time_quote(.input))]
    UnknownUnit { unit: String, input: String },
    /// parseutil parses `<n>d` with `strconv.ParseInt` and passes that error through unchanged.
    #[error("{0}")]
    Days(GoIntError),
    /// Vault's `TypeDurationSecond` refuses values below zero (after truncation to seconds).
    #[error("cannot provide negative value '{0}'")]
    Negative(i64),
}

/// Vault's `ParseDurationSecond` followed by the `TypeDurationSecond` sign check, in whole
/// seconds.
///
/// Order matters because it decides which error text a client sees: a plain integer is
/// seconds; otherwise a trailing `d` means the rest must be an integer count of days (parseutil
/// does not allow `d` inside compound durations); otherwise Go's `time.ParseDuration`.
/// Surrounding whitespace is trimmed first (a leniency over Vault, which would reject it).
pub fn parse_duration_secs(s: &str) -> Result<u64, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = parse_go_int(s, false) {
        return non_negative(secs);
    }
    if let Some(days) = s.strip_suffix('d') {
        let days = parse_go_int(days, false).map_err(DurationError::Days)?;
        // Go would silently wrap here; refusing is the only sane equivalent.
        let secs = days.checked_mul(SECS_PER_DAY).ok_or_else(|| DurationError::Invalid(s.to_string()))?;
        return non_negative(secs);
    }
    let (negative, nanos) = parse_go_duration(s)?;
    // Vault converts with int(dur.Seconds()), which truncates toward zero: "-0.5s" is 0, not -1.
    let secs = nanos / NANOS_PER_SEC;
    if negative && secs > 0 {
        // secs <= 2^63 / 1e9, so the conversion cannot fail.
        return Err(DurationError::Negative(0 - i64::try_from(secs).unwrap_or(i64::MAX)));
    }
    Ok(secs)
}

fn non_negative(secs: i64) -> Result<u64, DurationError> {
    u64::try_from(secs).map_err(|_| DurationError::Negative(secs))
}

/// Go's `time.Duration.String()` for whole seconds: `0s`, `45s`, `30m0s`, `12h0m0s`. Go never
/// rolls hours into days, so 32 days is `768h0m0s`. Vault prints TTLs this way.
pub fn format_go_duration(secs: u64) -> String {
    let (hours, minutes, seconds) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// Go's `time.ParseDuration`, returning (is negative, magnitude in nanoseconds).
///
/// Works on bytes: every boundary it cuts at is an ASCII digit or '.', so the `&str` slices
/// it takes always fall on character boundaries even when a unit is non-ASCII (`µs`).
fn parse_go_duration(orig: &str) -> Result<(bool, u64), DurationError> {
    let invalid = || DurationError::Invalid(orig.to_string());
    let mut s = orig;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix('-') {
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    // Go special-cases a bare zero, the only number allowed without a unit.
    if s == "0" {
        return Ok((false, 0));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if first != b'.' && !first.is_ascii_digit() {
            return Err(invalid());
        }
        let int_len = leading_digits(s);
        let mut value = parse_leading_int(&s[..int_len]).ok_or_else(invalid)?;
        s = &s[int_len..];

        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut has_fraction = false;
        if let Some(rest) = s.strip_prefix('.') {
            let frac_len = leading_digits(rest);
            (fraction, scale) = parse_leading_fraction(&rest[..frac_len]);
            has_fraction = frac_len > 0;
            s = &rest[frac_len..];
        }
        if int_len == 0 && !has_fraction {
            // A lone '.', as in ".s".
            return Err(invalid());
        }

        let unit_len = s.bytes().take_while(|c| *c != b'.' && !c.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(orig.to_string()));
        }
        let unit_name = &s[..unit_len];
        s = &s[unit_len..];
        let unit = unit_nanos(unit_name).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit_name.to_string(),
            input: orig.to_string(),
        })?;

        if value > MAGNITUDE_LIMIT / unit {
            return Err(invalid());
        }
        value *= unit;
        if fraction > 0 {
            // Go uses float64 here too; matching it keeps rounding of "1.1h"-style inputs equal.
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > MAGNITUDE_LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(value).filter(|t| *t <= MAGNITUDE_LIMIT).ok_or_else(invalid)?;
    }
    if !negative && total > MAGNITUDE_LIMIT - 1 {
        return Err(invalid());
    }
    Ok((negative, total))
}

fn leading_digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// Integer part of one duration component; `None` once it exceeds 2^63 (Go's overflow error).
fn parse_leading_int(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |acc, c| {
        let next = acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        (next <= MAGNITUDE_LIMIT).then_some(next)
    })
}

/// Fraction digits as (numerator, 10^digits). Go stops accumulating (but keeps consuming)
/// digits once more precision would overflow, so absurdly long fractions still parse.
fn parse_leading_fraction(digits: &str) -> (u64, f64) {
    let mut value: u64 = 0;
    let mut scale = 1.0;
    for c in digits.bytes() {
        let Some(next) = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .filter(|v| *v <= MAGNITUDE_LIMIT)
        else {
            break;
        };
        value = next;
        scale *= 10.0;
    }
    (value, scale)
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        // Go accepts the micro sign (U+00B5) and the Greek mu (U+03BC).
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// The `time` package's own quoting, which differs from `strconv.Quote`: every byte of a
/// non-ASCII or control character is printed as `\xNN`, so `"µs"` becomes `"\xc2\xb5s"`.
fn time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if !c.is_ascii() || u32::from(c) < 0x20 {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{b:02x}");
            }
        } else {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::go::text::go_quote;

    fn err_text(s: &str) -> String {
        parse_duration_secs(s).unwrap_err().to_string()
    }

    #[test]
    fn empty_and_blank_are_zero() {
        assert_eq!(parse_duration_secs("").unwrap(), 0);
        assert_eq!(parse_duration_secs("   ").unwrap(), 0);
    }

    #[test]
    fn plain_integers_are_seconds() {
        assert_eq!(parse_duration_secs("3600").unwrap(), 3600);
        assert_eq!(parse_duration_secs("+7").unwrap(), 7);
        assert_eq!(parse_duration_secs(" 90 ").unwrap(), 90);
        assert_eq!(parse_duration_secs("0").unwrap(), 0);
        assert_eq!(parse_duration_secs("-0").unwrap(), 0);
    }

    #[test]
    fn negative_values_are_refused_with_vault_text() {
        assert_eq!(err_text("-5"), "cannot provide negative value '-5'");
        assert_eq!(err_text("-1h"), "cannot provide negative value '-3600'");
        assert_eq!(err_text("-2d"), "cannot provide negative value '-172800'");
        assert_eq!(err_text("-1.5s"), "cannot provide negative value '-1'");
        // Truncation toward zero happens before the sign check, as in Vault.
        assert_eq!(parse_duration_secs("-0.5s").unwrap(), 0);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration_secs("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration_secs("90s").unwrap(), 90);
        assert_eq!(parse_duration_secs("1.5h").unwrap(), 5400);
        assert_eq!(parse_duration_secs("2h45m30s").unwrap(), 9930);
        assert_eq!(parse_duration_secs(".5m").unwrap(), 30);
        assert_eq!(parse_duration_secs("1500ms").unwrap(), 1);
        assert_eq!(parse_duration_secs("999ms").unwrap(), 0);
        assert_eq!(parse_duration_secs("2000000us").unwrap(), 2);
        assert_eq!(parse_duration_secs("3000000\u{b5}s").unwrap(), 3);
        assert_eq!(parse_duration_secs("4000000\u{3bc}s").unwrap(), 4);
        assert_eq!(parse_duration_secs("5000000000ns").unwrap(), 5);
        assert_eq!(parse_duration_secs("+1m").unwrap(), 60);
    }

    #[test]
    fn days_suffix() {
        assert_eq!(parse_duration_secs("2d").unwrap(), 172_800);
        assert_eq!(parse_duration_secs("0d").unwrap(), 0);
        // parseutil only accepts an integer count of days, not a compound duration.
        assert_eq!(err_text("1.5d"), "strconv.ParseInt: parsing \"1.5\": invalid syntax");
        assert_eq!(err_text("d"), "strconv.ParseInt: parsing \"\": invalid syntax");
        assert_eq!(err_text("1d12h"), "time: unknown unit \"d\" in duration \"1d12h\"");
        assert_eq!(
            err_text("99999999999999999999d"),
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(err_text("999999999999999d"), "time: invalid duration \"999999999999999d\"");
    }

    #[test]
    fn go_error_texts() {
        assert_eq!(err_text("abc"), "time: invalid duration \"abc\"");
        assert_eq!(err_text("10x"), "time: unknown unit \"x\" in duration \"10x\"");
        assert_eq!(err_text("1h30"), "time: missing unit in duration \"1h30\"");
        assert_eq!(err_text("1.5"), "time: missing unit in duration \"1.5\"");
        assert_eq!(err_text(".s"), "time: invalid duration \".s\"");
        assert_eq!(err_text("-"), "time: invalid duration \"-\"");
        assert_eq!(err_text("h"), "time: invalid duration \"h\"");
        assert_eq!(err_text("3000000000h"), "time: invalid duration \"3000000000h\"");
        assert_eq!(err_text("1\u{e9}"), "time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\"");
        assert_eq!(err_text("a\"b"), "time: invalid duration \"a\\\"b\"");
    }

    #[test]
    fn huge_integers_fall_through_to_go_parsing() {
        assert_eq!(err_text("99999999999999999999"), "time: invalid duration \"99999999999999999999\"");
        assert_eq!(parse_duration_secs("9223372036854775807").unwrap(), 9_223_372_036_854_775_807);
    }

    #[test]
    fn formats_like_go_duration_string() {
        assert_eq!(format_go_duration(0), "0s");
        assert_eq!(format_go_duration(45), "45s");
        assert_eq!(format_go_duration(1800), "30m0s");
        assert_eq!(format_go_duration(60), "1m0s");
        assert_eq!(format_go_duration(3600), "1h0m0s");
        assert_eq!(format_go_duration(5400), "1h30m0s");
        assert_eq!(format_go_duration(3661), "1h1m1s");
        assert_eq!(format_go_duration(2_764_800), "768h0m0s");
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b\\c\n\t\u{1}é"), "\"a\\\"b\\\\c\\n\\t\\x01é\"");
        assert_eq!(go_quote("\u{85}"), "\"\\u0085\"");
        assert_eq!(time_quote("µs"), "\"\\xc2\\xb5s\"");
    }
}
