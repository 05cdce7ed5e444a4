//! keymint-auth: who is calling.
//!
//! Tokens are random strings handed to clients once; the store keeps only their keyed hash.
//! This crate turns a presented token into an [`Identity`] (policies, display name, accessor)
//! and mints new tokens. ACL policy evaluation will live here too: it is pure logic.

pub mod policy;

use keymint_store::tokens::{self, TokenRow};
use keymint_store::{Store, StoreError};
use rand::Rng;

/// The policy that allows everything.
pub const ROOT_POLICY: &str = "root";

/// What a valid token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub accessor: String,
    pub policies: Vec<String>,
    /// Vault's display name: `root` for root tokens; it feeds generated IAM user names.
    pub display_name: String,
    pub created_at_ms: i64,
    pub expire_at_ms: Option<i64>,
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| BASE62[rng.random_range(0..BASE62.len())] as char).collect()
}

/// A new service token in Vault's current format (`hvs.` and 24 base62 characters, ~143 bits).
pub fn generate_token() -> String {
    format!("hvs.{}", random(24))
}

/// Makes sure `token` is a root token in the store (idempotent: the dev root token given at
/// every start stays the same token).
pub async fn ensure_root_token(store: &Store, token: &str, now_ms: i64) -> Result<(), AuthError> {
    let row = TokenRow {
        hash: store.hasher().hash(token),
        accessor: random(24),
        policies: serde_json::to_string(&[ROOT_POLICY]).unwrap_or_else(|_| "[\"root\"]".into()),
        display_name: "root".into(),
        meta: "{}".into(),
        created_at: now_ms,
        expire_at: None,
    };
    tokens::insert_if_absent(store.pool(), &row).await?;
    Ok(())
}

/// Whether any token exists yet (a production server prints an initial root token otherwise).
pub async fn has_tokens(store: &Store) -> Result<bool, AuthError> {
    Ok(tokens::count(store.pool()).await? > 0)
}

/// Resolves a presented token; unknown or expired tokens are `PermissionDenied`, as Vault
/// answers 403 without saying which.
pub async fn authenticate(store: &Store, token: &str, now_ms: i64) -> Result<Identity, AuthError> {
    if token.is_empty() {
        return Err(AuthError::PermissionDenied);
    }
    let row = tokens::get_by_hash(store.pool(), &store.hasher().hash(token))
        .await?
        .ok_or(AuthError::PermissionDenied)?;
    if row.expire_at.is_some_and(|at| at <= now_ms) {
        return Err(AuthError::PermissionDenied);
    }
    let policies: Vec<String> = serde_json::from_str(&row.policies)
        .map_err(|e| StoreError::Corrupt(format!("token policies: {e}")))?;
    Ok(Identity {
        accessor: row.accessor,
        policies,
        display_name: row.display_name,
        created_at_ms: row.created_at,
        expire_at_ms: row.expire_at,
    })
}

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
        };
        assert!(id.is_root());
        assert!(!Identity { policies: vec!["default".into()], ..id }.is_root());
    }
}
