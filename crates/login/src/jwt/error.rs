//! The two ways a JWT check fails: the token is refused ([`JwtError`]), or a key given to us
//! (configuration, a JWKS document, a CA bundle) cannot be used ([`KeyError`]).
//!
//! Display texts are Vault's words without the `error validating token: ` (or other) prefix a
//! login answer puts in front of some of them; [`JwtError::vault_text`] gives the full text a
//! login answers with, per table 3.4 of the wire contract.

use keymint_common::go::text::go_quote;

/// Why a token is refused. Every variant is a refusal: there is no "soft" failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a compact JWS with a JSON header and a JSON claims object (or a header we refuse,
    /// such as `crit`).
    #[error("error verifying token signature: {0}")]
    Malformed(String),
    /// `alg` is not one of the configured algorithms; `none` and HMAC are never accepted.
    #[error("invalid algorithm (alg) header parameter: token signed with unexpected algorithm")]
    UnexpectedAlgorithm,
    /// No static key verified the signature.
    #[error("error verifying token signature: no known key successfully validated the token signature")]
    NoKeyVerified,
    /// No key of a fetched JWKS verified the signature (also after the allowed refetch).
    #[error("error verifying token signature: failed to verify id token signature")]
    RemoteNoKeyVerified,
    /// The JWKS could never be fetched, so there is no key to try.
    #[error("error verifying token signature: fetching keys {0}")]
    KeysUnavailable(String),
    /// With `jwks_pairs` the `kid` header routes to a key set, so it is required.
    #[error("token missing kid header parameter")]
    MissingKid,
    /// A registered claim (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`) has the wrong JSON type.
    #[error("malformed {claim} claim: {reason}")]
    MalformedClaim { claim: &'static str, reason: &'static str },
    #[error("invalid issuer (iss) claim")]
    InvalidIssuer,
    #[error("invalid subject (sub) claim")]
    InvalidSubject,
    #[error("invalid audience (aud) claim: audience claim does not match any expected audience")]
    InvalidAudience,
    #[error("no issued at (iat), not before (nbf), or expiration time (exp) claims in token")]
    NoTimeClaims,
    #[error("invalid not before (nbf) claim: token not yet valid")]
    NotYetValid,
    #[error("invalid expiration time (exp) claim: token is expired")]
    Expired,
    #[error("invalid issued at (iat) claim: token issued in the future")]
    IssuedInFuture,
    /// Row 16: the token names an audience but the role binds none.
    #[error("audience claim found in JWT but no audiences bound to the role")]
    UnboundAudience,
    /// Row 17: the role's `user_claim` is absent.
    #[error("claim {} not found in token", go_quote(.0))]
    UserClaimMissing(String),
    #[error("claim {} could not be converted to string", go_quote(.0))]
    UserClaimNotString(String),
    /// Row 18: a `claim_mappings` source is present but not a string.
    #[error("error converting claim '{0}' to string")]
    ClaimNotString(String),
    /// Row 19 (login text prefixed `failed to fetch groups: `).
    #[error("{} claim not found in token", go_quote(.0))]
    GroupsClaimMissing(String),
    #[error("{} claim could not be converted to string list", go_quote(.0))]
    GroupsClaimNotList(String),
    /// A group list element that is not a string, shown as JSON.
    #[error("value {0} in groups claim could not be parsed as string")]
    GroupNotString(String),
    /// Row 20 (login text prefixed `error validating claims: `).
    #[error("claim {} is missing", go_quote(.0))]
    BoundClaimMissing(String),
    #[error("claim {} does not match any associated bound claim values", go_quote(.0))]
    BoundClaimMismatch(String),
    /// The token's value for a bound claim is an object; shown as JSON.
    #[error("received claim is not a string, bool, int or list: {0}")]
    BoundClaimBadValue(String),
    /// The role's bound value cannot be compared (rejected at role write, kept for stored data).
    #[error("bound claim is not a string, bool, int or list: {0}")]
    BoundClaimBadConfig(String),
    /// Fetching or checking an OIDC discovery document (config write).
    #[error("error checking oidc discovery URL: {0}")]
    Discovery(String),
}

impl JwtError {
    /// The full text a login answers with: Display plus the prefix Vault puts in front of it.
    pub fn vault_text(&self) -> String {
        use JwtError::*;
        let prefix = match self {
            Malformed(_)
            | UnexpectedAlgorithm
            | NoKeyVerified
            | RemoteNoKeyVerified
            | KeysUnavailable(_)
            | MissingKid
            | MalformedClaim { .. }
            | InvalidIssuer
            | InvalidSubject
            | InvalidAudience
            | NoTimeClaims
            | NotYetValid
            | Expired
            | IssuedInFuture => "error validating token: ",
            GroupsClaimMissing(_) => "failed to fetch groups: ",
            BoundClaimMissing(_) | BoundClaimMismatch(_) | BoundClaimBadValue(_) | BoundClaimBadConfig(_) => {
                "error validating claims: "
            }
            UnboundAudience
            | UserClaimMissing(_)
            | UserClaimNotString(_)
            | ClaimNotString(_)
            | GroupsClaimNotList(_)
            | GroupNotString(_)
            | Discovery(_) => "",
        };
        format!("{prefix}{self}")
    }
}

/// Why a key, key document or CA bundle cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A PEM key or certificate that does not parse or holds an unsupported key.
    #[error("error parsing public key: {0}")]
    InvalidKey(String),
    /// A JWKS document that is not JSON of the form `{"keys":[...]}`.
    #[error("invalid JWKS document: {0}")]
    InvalidJwks(String),
    /// A JWKS document in which no key can verify signatures.
    #[error("JWKS document has no usable signing key")]
    NoUsableKey,
    /// A CA bundle with no certificate or a certificate rustls refuses (callers word it as
    /// `error checking jwks_ca_pem` or `error checking oidc discovery URL`).
    #[error("could not parse CA PEM value successfully: {0}")]
    InvalidCaPem(String),
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_texts_carry_the_login_prefix_where_vault_has_one() {
        assert_eq!(
            JwtError::NoKeyVerified.vault_text(),
            "error validating token: error verifying token signature: no known key successfully \
             validated the token signature"
        );
        assert_eq!(
            JwtError::UnexpectedAlgorithm.vault_text(),
            "error validating token: invalid algorithm (alg) header parameter: token signed with \
             unexpected algorithm"
        );
        assert_eq!(
            JwtError::UnboundAudience.vault_text(),
            "audience claim found in JWT but no audiences bound to the role"
        );
        assert_eq!(
            JwtError::GroupsClaimMissing("groups".into()).vault_text(),
            r#"failed to fetch groups: "groups" claim not found in token"#
        );
        assert_eq!(
            JwtError::BoundClaimMissing("project_id".into()).vault_text(),
            r#"error validating claims: claim "project_id" is missing"#
        );
        assert_eq!(JwtError::UserClaimMissing("sub".into()).to_string(), r#"claim "sub" not found in token"#);
        assert_eq!(
            JwtError::ClaimNotString("runner_id".into()).vault_text(),
            "error converting claim 'runner_id' to string"
        );
    }
}
