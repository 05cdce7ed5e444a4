//! keymint-lease: the lease model and its time maths.
//!
//! Every credential keymint issues is a lease: an id in Vault's format, an issue time, an
//! expiry, a renewable flag and what revocation needs. The TTL rules here are pure functions of
//! their inputs (Vault's `CalculateTTL`), so they are tested without a clock.

pub mod jobs;
pub mod manager;
mod model;
pub mod ttl;
mod worker;

pub use jobs::Jobs;
pub use manager::{Failure, LeaseError, LeaseManager, RetryPolicy, RevokeError, Revoker};
pub use model::{Lease, LeaseRecord, LeaseState, UnreadableLease};
pub use ttl::{MountTtls, TtlDecision, calculate_ttl};
pub use worker::while_renewing;

/// Vault's system-wide default and maximum lease TTL: 768 hours.
pub const SYSTEM_DEFAULT_TTL_SECS: u64 = 2_764_800;

/// A lease id as Vault makes it: the mount path (with its slash), the request path, and 24
/// random base62 characters, e.g. `aws/creds/deploy/KlhYq6GZcCUZy7n5T5ieLSl2`.
pub fn new_lease_id(mount_path: &str, request_path: &str) -> String {
    format!("{mount_path}{request_path}/{}", keymint_common::random::base62(24))
}

/// Credential types, as stored on a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    IamUser,
    AssumedRole,
    FederationToken,
    SessionToken,
}

impl CredentialKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            CredentialKind::IamUser => "iam_user",
            CredentialKind::AssumedRole => "assumed_role",
            CredentialKind::FederationToken => "federation_token",
            CredentialKind::SessionToken => "session_token",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "iam_user" => Some(CredentialKind::IamUser),
            "assumed_role" => Some(CredentialKind::AssumedRole),
            "federation_token" => Some(CredentialKind::FederationToken),
            "session_token" => Some(CredentialKind::SessionToken),
            _ => None,
        }
    }

    /// STS credentials cannot be revoked or renewed; they simply expire.
    pub fn is_sts(self) -> bool {
        self != CredentialKind::IamUser
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_follow_vaults_format() {
        let id = new_lease_id("aws/", "creds/deploy");
        let suffix = id.strip_prefix("aws/creds/deploy/").unwrap();
        assert_eq!(suffix.len(), 24);
        assert!(suffix.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(new_lease_id("aws/", "creds/deploy"), id);
    }

    #[test]
    fn credential_kinds_round_trip() {
        for kind in [
            CredentialKind::IamUser,
            CredentialKind::AssumedRole,
            CredentialKind::FederationToken,
            CredentialKind::SessionToken,
        ] {
            assert_eq!(CredentialKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(CredentialKind::parse("root"), None);
        assert!(!CredentialKind::IamUser.is_sts());
        assert!(CredentialKind::SessionToken.is_sts());
    }
}
