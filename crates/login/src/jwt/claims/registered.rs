//! The registered claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`) against a role: the checks
//! hashicorp/cap's `jwt.Validate` makes after the signature, then Vault's "audience present but
//! none bound" rule.

use serde_json::{Map, Value};

use super::super::JwtError;

/// Leeway defaults of table 3.6, used when a role stores 0.
const DEFAULT_CLOCK_SKEW_SECS: i64 = 60;
const DEFAULT_EXPIRATION_SECS: i64 = 150;
const DEFAULT_NOT_BEFORE_SECS: i64 = 150;

/// What a role expects of a token's registered claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `bound_issuer`: `iss` must equal it. `None` or empty: not checked.
    pub issuer: Option<String>,
    /// `bound_subject`: `sub` must equal it. `None` or empty: not checked.
    pub subject: Option<String>,
    /// `bound_audiences`: `aud` must contain one of them. Empty: not checked (but see
    /// `reject_unbound_audience`).
    pub audiences: Vec<String>,
    /// Seconds, as stored on a role: 0 ⇒ 60 s, negative ⇒ none. Widens all three time checks.
    pub clock_skew_leeway: i64,
    /// Seconds: 0 ⇒ 150 s, negative ⇒ none. Only used to synthesize a missing `exp`.
    pub expiration_leeway: i64,
    /// Seconds: 0 ⇒ 150 s, negative ⇒ none. Only used to synthesize a missing `nbf`.
    pub not_before_leeway: i64,
    /// At least one of `iat`/`nbf`/`exp` is required (JWT method). The Kubernetes method sets
    /// false: legacy service-account tokens carry no time claim, and the window is then skipped.
    pub require_time_claim: bool,
    /// Row 16: with no `audiences`, a token carrying an `aud` is refused (JWT method since
    /// Vault 1.16.3). The Kubernetes method sets false.
    pub reject_unbound_audience: bool,
}

impl Default for Expected {
    /// The JWT method's rules with nothing bound.
    fn default() -> Self {
        Expected {
            issuer: None,
            subject: None,
            audiences: Vec::new(),
            clock_skew_leeway: 0,
            expiration_leeway: 0,
            not_before_leeway: 0,
            require_time_claim: true,
            reject_unbound_audience: true,
        }
    }
}

impl Expected {
    /// The Kubernetes method's rules (4.4 step 6): the role's `audience` and the config's
    /// `issuer` if set, default leeways, time claims checked only when present.
    pub fn kubernetes(audience: Option<String>, issuer: Option<String>) -> Expected {
        Expected {
            issuer,
            audiences: audience.into_iter().collect(),
            require_time_claim: false,
            reject_unbound_audience: false,
            ..Expected::default()
        }
    }
}

/// A role's leeway as applied: 0 ⇒ the default, negative ⇒ none.
fn effective(leeway: i64, default: i64) -> i64 {
    match leeway {
        0 => default,
        l if l < 0 => 0,
        l => l,
    }
}

/// Checks the registered claims in Vault's order: iss, sub, aud, presence of a time claim, the
/// time window (nbf, exp, iat), then row 16. `now_secs` is the current Unix time.
///
/// A registered claim of the wrong JSON type (a numeric `iss`, a string `exp`, an `aud` list
/// holding a number) is refused before any comparison, as Go's typed decoding does.
pub fn validate_claims(
    claims: &Map<String, Value>,
    expected: &Expected,
    now_secs: i64,
) -> Result<(), JwtError> {
    let iss = string_claim(claims, "iss")?;
    let sub = string_claim(claims, "sub")?;
    let aud = audience_claim(claims)?;
    let iat = time_claim(claims, "iat")?;
    let nbf = time_claim(claims, "nbf")?;
    let exp = time_claim(claims, "exp")?;

    if let Some(issuer) = expected.issuer.as_deref().filter(|i| !i.is_empty())
        && iss != Some(issuer)
    {
        return Err(JwtError::InvalidIssuer);
    }
    if let Some(subject) = expected.subject.as_deref().filter(|s| !s.is_empty())
        && sub != Some(subject)
    {
        return Err(JwtError::InvalidSubject);
    }
    if !expected.audiences.is_empty() && !expected.audiences.iter().any(|want| aud.contains(&want.as_str())) {
        return Err(JwtError::InvalidAudience);
    }

    // Go decodes an absent time claim as 0, so a claim of 0 also counts as absent.
    if iat == 0 && nbf == 0 && exp == 0 {
        if expected.require_time_claim {
            return Err(JwtError::NoTimeClaims);
        }
    } else {
        check_time_window(iat, nbf, exp, expected, now_secs)?;
    }

    if expected.reject_unbound_audience && expected.audiences.is_empty() && !aud.is_empty() {
        return Err(JwtError::UnboundAudience);
    }
    Ok(())
}

/// Table 3.6: synthesize a missing `exp`/`nbf`, then compare with the clock-skew leeway.
fn check_time_window(iat: i64, nbf: i64, exp: i64, expected: &Expected, now: i64) -> Result<(), JwtError> {
    let exp = if exp == 0 {
        iat.max(nbf).saturating_add(effective(expected.expiration_leeway, DEFAULT_EXPIRATION_SECS))
    } else {
        exp
    };
    let nbf = match (nbf, iat) {
        (0, 0) => exp.saturating_sub(effective(expected.not_before_leeway, DEFAULT_NOT_BEFORE_SECS)),
        (0, iat) => iat,
        (nbf, _) => nbf,
    };
    let skew = effective(expected.clock_skew_leeway, DEFAULT_CLOCK_SKEW_SECS);
    if now.saturating_add(skew) < nbf {
        return Err(JwtError::NotYetValid);
    }
    if now.saturating_sub(skew) > exp {
        return Err(JwtError::Expired);
    }
    if now.saturating_add(skew) < iat {
        return Err(JwtError::IssuedInFuture);
    }
    Ok(())
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>, JwtError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtError::MalformedClaim { claim: name, reason: "not a string" }),
    }
}

/// `aud` as a list: a string is a one-element list.
fn audience_claim(claims: &Map<String, Value>) -> Result<Vec<&str>, JwtError> {
    let malformed = JwtError::MalformedClaim { claim: "aud", reason: "not a string or a list of strings" };
    match claims.get("aud") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().ok_or(malformed.clone())).collect(),
        Some(_) => Err(malformed),
    }
}

/// A NumericDate as whole seconds (fractions truncated, as Go does); 0 when absent.
fn time_claim(claims: &Map<String, Value>, name: &'static str) -> Result<i64, JwtError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i,
            (None, Some(_)) => i64::MAX,
            // Saturating float-to-int conversion, truncating toward zero.
            (None, None) => n.as_f64().map_or(0, |f| f as i64),
        }),
        Some(_) => Err(JwtError::MalformedClaim { claim: name, reason: "not a number" }),
    }
}

#[cfg(test)]
mod tests;
