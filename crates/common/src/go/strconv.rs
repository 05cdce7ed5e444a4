//! Go's `strconv.ParseInt`, with Go's error texts: parseutil's day counts and mapstructure's
//! weak decoding of strings into ints (Vault's field coercion) both surface them to clients.

use crate::go::text::go_quote;

/// 2^63, the magnitude of `i64::MIN`: the largest a negative result may reach.
const MAGNITUDE_LIMIT: u64 = 1 << 63;

/// Go's `strconv.ParseInt` failure, with Go's message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoIntError {
    #[error("strconv.ParseInt: parsing {}: invalid syntax", go_quote(.0))]
    Syntax(String),
    #[error("strconv.ParseInt: parsing {}: value out of range", go_quote(.0))]
    Range(String),
}

/// Go's `strconv.ParseInt(s, base, 64)` with base 10 or, when `base_prefix` is set, base 0
/// (`0x`/`0o`/`0b`/leading-`0` octal prefixes and `_` digit separators), which is what
/// mapstructure's weak decoding of strings into ints uses.
pub fn parse_go_int(s: &str, base_prefix: bool) -> Result<i64, GoIntError> {
    let syntax = || GoIntError::Syntax(s.to_string());
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if base_prefix { split_radix_prefix(body) } else { (10, body) };
    if digits.is_empty() && !(base_prefix && body == "0") {
        return Err(syntax());
    }
    let mut magnitude: u64 = 0;
    let mut saw_underscore = false;
    for c in digits.chars() {
        if c == '_' && base_prefix {
            saw_underscore = true;
            continue;
        }
        let digit = c.to_digit(radix).ok_or_else(syntax)?;
        // Go reports overflow at the first digit that causes it, so a bad character further
        // on still yields the range error, not a syntax error.
        magnitude = magnitude
            .checked_mul(u64::from(radix))
            .and_then(|m| m.checked_add(u64::from(digit)))
            .ok_or_else(|| GoIntError::Range(s.to_string()))?;
    }
    if saw_underscore && !underscores_ok(body) {
        return Err(syntax());
    }
    if negative {
        if magnitude > MAGNITUDE_LIMIT {
            return Err(GoIntError::Range(s.to_string()));
        }
        // magnitude <= 2^63 here, so the wrapping negation yields exactly -magnitude.
        Ok(0i64.wrapping_sub_unsigned(magnitude))
    } else {
        i64::try_from(magnitude).map_err(|_| GoIntError::Range(s.to_string()))
    }
}

/// Base-0 prefix handling: Go only treats `0b`/`0o`/`0x` as prefixes when at least one more
/// character follows; any other leading `0` means octal.
fn split_radix_prefix(body: &str) -> (u32, &str) {
    let bytes = body.as_bytes();
    if bytes.first() != Some(&b'0') {
        return (10, body);
    }
    if bytes.len() >= 3 {
        match bytes[1].to_ascii_lowercase() {
            b'b' => return (2, &body[2..]),
            b'o' => return (8, &body[2..]),
            b'x' => return (16, &body[2..]),
            _ => {}
        }
    }
    (8, &body[1..])
}

/// Go's rule for `_` in base-0 literals: each underscore must sit between digits (a base
/// prefix counts as a digit), never at the start or the end.
fn underscores_ok(body: &str) -> bool {
    let bytes = body.as_bytes();
    let mut start = 0;
    // 'd' = last was a digit or prefix, '_' = underscore, '^' = start, '!' = anything else.
    let mut last = b'^';
    let mut hex = false;
    if bytes.len() >= 2 && bytes[0] == b'0' && matches!(bytes[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        start = 2;
        last = b'd';
        hex = bytes[1].eq_ignore_ascii_case(&b'x');
    }
    for &c in &bytes[start..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            last = b'd';
        } else if c == b'_' {
            if last != b'd' {
                return false;
            }
            last = b'_';
        } else {
            if last == b'_' {
                return false;
            }
            last = b'!';
        }
    }
    last != b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_parsing() {
        assert_eq!(parse_go_int("42", false).unwrap(), 42);
        assert_eq!(parse_go_int("-42", false).unwrap(), -42);
        assert_eq!(parse_go_int("0x1f", true).unwrap(), 31);
        assert_eq!(parse_go_int("0X1F", true).unwrap(), 31);
        assert_eq!(parse_go_int("010", true).unwrap(), 8);
        assert_eq!(parse_go_int("0o17", true).unwrap(), 15);
        assert_eq!(parse_go_int("0b101", true).unwrap(), 5);
        assert_eq!(parse_go_int("1_000", true).unwrap(), 1000);
        assert_eq!(parse_go_int("0", true).unwrap(), 0);
        assert_eq!(parse_go_int("-9223372036854775808", false).unwrap(), i64::MIN);
        assert_eq!(
            parse_go_int("9223372036854775808", false).unwrap_err(),
            GoIntError::Range("9223372036854775808".into())
        );
        for bad in ["", "+", "0x", "1_000", "abc", "1.5", " 1"] {
            assert_eq!(parse_go_int(bad, false).unwrap_err(), GoIntError::Syntax(bad.into()), "{bad:?}");
        }
        for bad in ["_1", "1_", "1__0", "0x_", "08", "0b2"] {
            assert!(parse_go_int(bad, true).is_err(), "{bad:?}");
        }
        assert_eq!(parse_go_int("0x_1f", true).unwrap(), 31);
        assert_eq!(
            GoIntError::Syntax("abc".into()).to_string(),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
    }
}
