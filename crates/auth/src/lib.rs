//! keymint-auth: who is calling.
//!
//! Tokens are random strings handed to clients once; the store keeps only their keyed hash.
//! This crate turns a presented token into an [`Identity`] (policies, display name, accessor),
//! refusing it outside the CIDRs it is bound to, mints new tokens (also against token roles)
//! and evaluates ACL policies: pure logic, bar the store lookups.

pub mod cidr;
pub mod login;
pub mod policy;
pub mod token;
pub mod token_fields;
pub mod token_role;

use std::net::IpAddr;

use keymint_common::random::base62;
use keymint_store::tokens::{self, TokenRow};
use keymint_store::{Store, StoreError};

/// The policy that allows everything.
pub const ROOT_POLICY: &str = "root";

/// What a valid token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub accessor: String,
    pub policies: Vec<String>,
    /// Vault's display name: `root` for root tokens, `token-<name>` for created ones; it feeds
    /// generated IAM user names.
    pub display_name: String,
    pub created_at_ms: i64,
    pub expire_at_ms: Option<i64>,
    /// This request spent the token's last use: the token is revoked once it is answered.
    pub last_use: bool,
    /// The CIDRs the token may be used from (empty: anywhere); its children inherit them.
    pub bound_cidrs: Vec<String>,
    /// The token has a use limit: Vault lets such a token create no children.
    pub use_limited: bool,
    /// The configuration generation read with the token: the request's view of cached
    /// configuration (`keymint_store::cache`).
    pub config_generation: i64,
}

impl Identity {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == ROOT_POLICY)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("permission denied")]
    PermissionDenied,
    /// A token role write that breaks this rule, in Vault's words (a 400).
    #[error("{0}")]
    InvalidTokenRole(String),
    /// Token policies the parent or the role does not allow, in Vault's words (a 400).
    #[error("{0}")]
    PolicyNotAllowed(String),
    /// A token create or renew request refused for this reason, in Vault's words (a 400).
    #[error("{0}")]
    RequestRefused(String),
    /// A renewal of a token whose token role was deleted (Vault answers a 500).
    #[error("token role {0:?} of the token is gone")]
    TokenRoleGone(String),
    /// A renewal of a login's token whose auth role was deleted (Vault answers a 400).
    #[error("role {0:?} does not exist during renewal")]
    LoginRoleGone(String),
    /// A value of ours that does not serialize.
    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new service token in Vault's current format (`hvs.` and 24 base62 characters, ~143 bits).
pub fn generate_token() -> String {
    format!("hvs.{}", base62(24))
}

/// A new token accessor (24 base62 characters; it names a token without being one).
pub fn generate_accessor() -> String {
    base62(24)
}

/// Makes sure `token` is a root token in the store (idempotent: the dev root token given at
/// every start stays the same token).
pub async fn ensure_root_token(store: &Store, token: &str, now_ms: i64) -> Result<(), AuthError> {
    let row = TokenRow {
        hash: store.hasher().hash(token),
        accessor: generate_accessor(),
        policies: serde_json::to_string(&[ROOT_POLICY]).unwrap_or_else(|_| "[\"root\"]".into()),
        display_name: "root".into(),
        meta: "{}".into(),
        created_at: now_ms,
        path: "auth/token/root".into(),
        bound_cidrs: "[]".into(),
        ..TokenRow::default()
    };
    tokens::insert_if_absent(store.pool(), &row).await?;
    Ok(())
}

/// Whether any token exists yet (a production server prints an initial root token otherwise).
pub async fn has_tokens(store: &Store) -> Result<bool, AuthError> {
    Ok(tokens::count(store.pool()).await? > 0)
}

/// Resolves a token presented from `remote` (the caller's address, if known) and spends one
/// of its uses if it has a use limit. Unknown, expired and used-up tokens, and tokens bound to
/// CIDRs `remote` is not in, are `PermissionDenied`: Vault answers 403 without saying which.
pub async fn authenticate(
    store: &Store,
    token: &str,
    remote: Option<IpAddr>,
    now_ms: i64,
) -> Result<Identity, AuthError> {
    if token.is_empty() {
        return Err(AuthError::PermissionDenied);
    }
    let hash = store.hasher().hash(token);
    let tokens::TokenAtGeneration { row, generation } =
        tokens::get_with_generation(store.pool(), &hash).await?.ok_or(AuthError::PermissionDenied)?;
    if row.expire_at.is_some_and(|at| at <= now_ms) || row.num_uses < 0 {
        return Err(AuthError::PermissionDenied);
    }
    // Checked before a use is spent: a request from the wrong address costs the token nothing.
    let bound_cidrs = bound_cidrs_of(&row)?;
    if !cidr::allows(&bound_cidrs, remote) {
        tracing::info!(token.accessor = %row.accessor, remote = ?remote, "token used outside its bound CIDRs");
        return Err(AuthError::PermissionDenied);
    }
    let mut last_use = false;
    if row.num_uses > 0 {
        match tokens::spend_use(store.pool(), &hash).await? {
            Some(left) => last_use = left < 0,
            // Another request spent the last use meanwhile.
            None => return Err(AuthError::PermissionDenied),
        }
    }
    Ok(Identity {
        policies: policies_of(&row)?,
        accessor: row.accessor,
        display_name: row.display_name,
        created_at_ms: row.created_at,
        expire_at_ms: row.expire_at,
        last_use,
        bound_cidrs,
        use_limited: row.num_uses != 0,
        config_generation: generation,
    })
}

/// The CIDRs a token row is bound to (rows written before token roles hold none).
pub fn bound_cidrs_of(row: &TokenRow) -> Result<Vec<String>, AuthError> {
    if row.bound_cidrs.is_empty() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_str(&row.bound_cidrs)
        .map_err(|e| StoreError::Corrupt(format!("token bound_cidrs: {e}")))?)
}

/// The policy names a token row holds.
pub fn policies_of(row: &TokenRow) -> Result<Vec<String>, AuthError> {
    Ok(serde_json::from_str(&row.policies)
        .map_err(|e| StoreError::Corrupt(format!("token policies: {e}")))?)
}

/// The ACL of a set of policy names: stored policies by name, the built-in `default` unless
/// one was written, and `root` for everything. Names with no policy grant nothing, as in
/// Vault.
pub async fn acl_for(store: &Store, names: &[String]) -> Result<policy::Acl, AuthError> {
    if names.iter().any(|n| n == ROOT_POLICY) {
        return Ok(policy::Acl::new(&[], true));
    }
    let mut policies = Vec::with_capacity(names.len());
    for name in names {
        // The response-wrapping policy is built in and cannot be written over, as in Vault.
        let stored = match name.as_str() {
            RESPONSE_WRAPPING_POLICY_NAME => None,
            _ => tokens::get_policy(store.pool(), name).await?,
        };
        let text = match stored {
            Some(row) => row.body,
            None if name == RESPONSE_WRAPPING_POLICY_NAME => policy::RESPONSE_WRAPPING_POLICY.to_string(),
            None if name == DEFAULT_POLICY_NAME => policy::DEFAULT_POLICY.to_string(),
            None => continue,
        };
        match policy::parse(name, &text) {
            Ok(p) => policies.push(p),
            // Written policies were checked when written; a bad one grants nothing.
            Err(e) => tracing::warn!(policy = %name, error = %e, "stored policy does not parse; ignored"),
        }
    }
    Ok(policy::Acl::new(&policies, false))
}

/// The policy every token gets unless created with `no_default_policy`.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// The one policy of response-wrapping tokens (built in: see [`policy::RESPONSE_WRAPPING_POLICY`]).
pub const RESPONSE_WRAPPING_POLICY_NAME: &str = "response-wrapping";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_look_like_vaults() {
        let t = generate_token();
        assert!(t.starts_with("hvs."));
        assert_eq!(t.len(), 28);
        assert_ne!(t, generate_token());
    }

    #[test]
    fn root_is_recognised_by_policy() {
        let id = Identity {
            accessor: "a".into(),
            policies: vec!["root".into()],
            display_name: "root".into(),
            created_at_ms: 0,
            expire_at_ms: None,
            last_use: false,
            bound_cidrs: Vec::new(),
            use_limited: false,
            config_generation: 0,
        };
        assert!(id.is_root());
        assert!(!Identity { policies: vec!["default".into()], ..id }.is_root());
    }
}
