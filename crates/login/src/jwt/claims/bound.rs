//! A role's `bound_claims` (3.5): every key must match (AND); within a key, any expected value
//! matching any actual value is enough (OR across lists, no AND: vault-plugin-auth-jwt#316).
//!
//! `string` mode is typed equality: `"true"` is not `true`, and a number claim is compared as
//! its JSON-number text (an integral value without a fraction: `12.0` reads `12`), so a role
//! binding GitLab's `runner_id` must carry the number `12`, not `"12"`. `glob` mode compares
//! strings only, with `*` (any run of characters, `/` and `:` included) as the only wildcard.

use serde_json::{Map, Value};

use super::super::JwtError;
use super::get_claim;

/// How bound values are compared: `bound_claims_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoundClaimsType {
    #[default]
    String,
    Glob,
}

/// One comparable value: what both sides are normalized to.
#[derive(Debug, PartialEq)]
enum Item<'a> {
    Str(&'a str),
    Bool(bool),
    /// A JSON number as text.
    Num(String),
    /// An object, array or null inside a list: never equal to anything.
    Other,
}

/// Checks the token's claims against `bound` (claim name or JSON pointer → value or list).
pub fn validate_bound_claims(
    claims: &Map<String, Value>,
    bound: &Map<String, Value>,
    kind: BoundClaimsType,
) -> Result<(), JwtError> {
    for (claim, expected) in bound {
        let actual = get_claim(claims, claim).ok_or_else(|| JwtError::BoundClaimMissing(claim.clone()))?;
        let actual = normalize(actual, claim_number_text)
            .ok_or_else(|| JwtError::BoundClaimBadValue(actual.to_string()))?;
        let expected = normalize(expected, bound_number_text)
            .ok_or_else(|| JwtError::BoundClaimBadConfig(expected.to_string()))?;
        let found = match kind {
            BoundClaimsType::String => expected.iter().any(|e| *e != Item::Other && actual.contains(e)),
            BoundClaimsType::Glob => {
                let mut found = false;
                for pattern in &expected {
                    let Item::Str(pattern) = pattern else {
                        return Err(JwtError::BoundClaimBadConfig(format!(
                            "{pattern:?} is not a glob string"
                        )));
                    };
                    // Non-string actual values are skipped, not errors.
                    if actual.iter().any(|a| matches!(a, Item::Str(s) if glob_match(pattern, s))) {
                        found = true;
                        break;
                    }
                }
                found
            }
        };
        if !found {
            return Err(JwtError::BoundClaimMismatch(claim.clone()));
        }
    }
    Ok(())
}

/// Role-write check of `bound_claims` for `kind`. Glob mode takes strings or lists of strings
/// only (Vault's texts); string mode takes strings, booleans, numbers or lists of them.
pub fn check_bound_claims_config(bound: &Map<String, Value>, kind: BoundClaimsType) -> Result<(), String> {
    for value in bound.values() {
        let items = match value {
            Value::Array(items) => items.as_slice(),
            Value::String(_) | Value::Bool(_) | Value::Number(_) => std::slice::from_ref(value),
            Value::Object(_) | Value::Null => {
                return Err(match kind {
                    BoundClaimsType::Glob => format!("claim is not a string or list: {}", go_value(value)),
                    BoundClaimsType::String => {
                        format!("bound claim is not a string, bool, int or list: {}", go_value(value))
                    }
                });
            }
        };
        for item in items {
            match (kind, item) {
                (BoundClaimsType::Glob, Value::String(_)) => {}
                (BoundClaimsType::Glob, other) => {
                    return Err(format!("claim is not a string: {}", go_value(other)));
                }
                (BoundClaimsType::String, Value::String(_) | Value::Bool(_) | Value::Number(_)) => {}
                (BoundClaimsType::String, other) => {
                    return Err(format!(
                        "bound claim is not a string, bool, int or list: {}",
                        go_value(other)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A value as Go's `%v` prints the simple cases: strings bare, everything else as JSON.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A string, bool or number becomes a one-element list, a list stays one; objects are refused.
fn normalize(value: &Value, number_text: fn(&serde_json::Number) -> String) -> Option<Vec<Item<'_>>> {
    match value {
        Value::Array(items) => {
            Some(items.iter().map(|v| item(v, number_text).unwrap_or(Item::Other)).collect())
        }
        other => item(other, number_text).map(|i| vec![i]),
    }
}

fn item(value: &Value, number_text: fn(&serde_json::Number) -> String) -> Option<Item<'_>> {
    Some(match value {
        Value::String(s) => Item::Str(s),
        Value::Bool(b) => Item::Bool(*b),
        Value::Number(n) => Item::Num(number_text(n)),
        Value::Array(_) | Value::Object(_) | Value::Null => return None,
    })
}

/// A token's number as Vault reads it (JSON numbers decode as float64): integral values print
/// as integers, others in shortest decimal form without an exponent.
fn claim_number_text(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => format!("{}", f as i64),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

/// A role's number as stored: its JSON text.
fn bound_number_text(n: &serde_json::Number) -> String {
    n.to_string()
}

/// `*` matches any run of characters (including none, `/` and `:`); everything else is literal.
fn glob_match(pattern: &str, subject: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == subject;
    };
    let Some(mut rest) = subject.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests;
