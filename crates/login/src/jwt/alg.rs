//! JWS signature algorithms keymint verifies: asymmetric ones only.
//!
//! `none` and the HMAC family (`HS256`/`HS384`/`HS512`) have no [`Algorithm`] value at all, so
//! no configuration can allow them: a verifier holding only public keys must never accept a
//! token "signed" with nothing, or with an HMAC keyed by the public key's own bytes.

use std::fmt;
use std::str::FromStr;

/// A JWS `alg` value keymint can verify, named as in RFC 7518 (and Vault's `jwt_supported_algs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    /// Accepted in configuration like Vault does, but ring cannot verify P-521: no P-521 key
    /// loads, so an ES512 token never verifies.
    ES512,
    EdDSA,
}

/// Every algorithm: what a login accepts when `jwt_supported_algs` is empty (table 3.2).
pub const DEFAULT_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::EdDSA,
];

/// What the Kubernetes method accepts (4.4 step 5): RSA and ECDSA, no EdDSA.
pub const KUBERNETES_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unknown name, as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported signing algorithm {0:?}")]
pub struct UnknownAlgorithm(pub String);

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Exact, case-sensitive names, as Vault compares them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DEFAULT_ALGS.iter().copied().find(|a| a.as_str() == s).ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}

/// Parses a configured `jwt_supported_algs` list, in its order. An empty list stays empty (the
/// config reads back as written); a login then uses [`allowed_or_default`].
pub fn parse_supported_algs(list: &[String]) -> Result<Vec<Algorithm>, String> {
    list.iter()
        .map(|name| name.parse::<Algorithm>().map_err(|_| format!("invalid jwt_supported_algs: {name}")))
        .collect()
}

/// The algorithms a login accepts for a configured list: the list, or [`DEFAULT_ALGS`] if empty.
pub fn allowed_or_default(configured: &[Algorithm]) -> &[Algorithm] {
    if configured.is_empty() { DEFAULT_ALGS } else { configured }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hmac_or_none_do_not_exist() {
        for alg in DEFAULT_ALGS {
            assert_eq!(alg.to_string().parse::<Algorithm>(), Ok(*alg));
        }
        for refused in ["none", "HS256", "HS384", "HS512", "rs256", "", "RS256 "] {
            assert!(refused.parse::<Algorithm>().is_err(), "{refused} must not parse");
        }
    }

    #[test]
    fn supported_algs_list_is_checked_and_kept_in_order() {
        let list = vec!["ES256".to_string(), "RS256".to_string()];
        assert_eq!(parse_supported_algs(&list), Ok(vec![Algorithm::ES256, Algorithm::RS256]));
        let bad = vec!["RS256".to_string(), "HS256".to_string()];
        assert_eq!(parse_supported_algs(&bad), Err("invalid jwt_supported_algs: HS256".to_string()));
        assert_eq!(parse_supported_algs(&[]), Ok(vec![]));
        assert_eq!(allowed_or_default(&[]), DEFAULT_ALGS);
        assert_eq!(allowed_or_default(&[Algorithm::EdDSA]), &[Algorithm::EdDSA]);
        assert!(!KUBERNETES_ALGS.contains(&Algorithm::EdDSA));
    }
}
