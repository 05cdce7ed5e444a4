//! JWT validation for the JWT/OIDC and Kubernetes auth methods.
//!
//! A login goes through these steps, each failing closed with Vault's words:
//! 1. [`Jws::parse`]: compact JWS only.
//! 2. Signature: [`verify_signature`] against static keys ([`PublicKey::from_pem`],
//!    [`parse_jwks`]) or [`RemoteKeySet::verify`] for a JWKS URL (found by [`discover`] for an
//!    OIDC issuer). The `alg` header is checked first: `none` and HMAC are not even
//!    representable as an [`Algorithm`].
//! 3. [`validate_claims`]: issuer, subject, audience, time window, against an [`Expected`].
//! 4. Identity: [`user_claim`], [`claim_mappings`], [`groups`].
//! 5. [`validate_bound_claims`].
//!
//! Nothing here reads the clock: "now" is passed in (Unix seconds for claims, a tokio
//! `Instant` for the refetch rate limit), so tests move time instead of sleeping.

mod alg;
pub mod claims;
mod error;
mod jwks;
pub mod keys;
pub mod keyset;
pub mod verify;

#[cfg(test)]
pub(crate) mod test_support;

pub use self::alg::{
    Algorithm, DEFAULT_ALGS, KUBERNETES_ALGS, UnknownAlgorithm, allowed_or_default, parse_supported_algs,
};
pub use self::claims::{
    BoundClaimsType, Expected, check_bound_claims_config, claim_mappings, get_claim, groups, user_claim,
    validate_bound_claims, validate_claims,
};
pub use self::error::{JwtError, KeyError};
pub use self::keys::{KeyFamily, PublicKey, parse_jwks};
pub use self::keyset::{DEFAULT_REFETCH_INTERVAL, KeySet, RemoteKeySet, discover, fetch_jwks, http_client};
pub use self::verify::{Jws, check_algorithm, verify_signature};
