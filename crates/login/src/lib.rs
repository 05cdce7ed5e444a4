//! keymint-login: how machines prove who they are without a stored keymint token.
//!
//! The checks behind Vault's auth methods, with no HTTP routing and no storage of their own:
//! - [`jwt`]: JSON Web Tokens, verified against static public keys, a JWKS URL or an OIDC
//!   discovery document (keys fetched once, cached, refetched on rotation), then checked
//!   against a role's bound issuer, audiences, subject and claims.
//! - [`kubernetes`]: which service account a token names, and the API server's TokenReview.
//!
//! Every check fails closed: anything that is not a clear success is a refusal, with the
//! reason in Vault's words.

pub mod jwt;
pub mod kubernetes;
