//! The lease as keymint works with it. The store keeps a lease as a row of SQL-portable
//! columns (`0`/`1` integers, state and credential type as text, revocation data as JSON);
//! everything above the store reads a [`Lease`], converted once with `TryFrom<LeaseRow>`, so
//! a misspelt state or an unreadable record is an error where the row is read, not a silent
//! `false` somewhere later.

use keymint_store::leases::{LeaseRow, STATE_ACTIVE, STATE_REVOKING};
use serde::{Deserialize, Serialize};

use crate::CredentialKind;

/// Where a lease is in its life; a revoked lease's row is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Active,
    /// A worker holds its claim and is revoking it.
    Revoking,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Active => STATE_ACTIVE,
            LeaseState::Revoking => STATE_REVOKING,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            STATE_ACTIVE => Some(LeaseState::Active),
            STATE_REVOKING => Some(LeaseState::Revoking),
            _ => None,
        }
    }
}

/// What revocation and renewal need to know about what a lease made, kept with the lease
/// (not secret: no key material).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The IAM user (`iam_user`), or the name the STS credential was issued under.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub access_key_id: String,
    /// STS credentials cannot be revoked; they end at their expiry.
    #[serde(default)]
    pub is_sts: bool,
    /// The role's TTL and max TTL when the lease was issued (`iam_user`): renewal honours them
    /// even if the role changes or is deleted meanwhile. 0 or absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_max_ttl: Option<u64>,
}

impl LeaseRecord {
    /// The JSON the row keeps.
    pub fn to_json(&self) -> String {
        // Invariant: a struct of strings, numbers and booleans always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One credential keymint issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Vault-style id, e.g. `aws/creds/deploy/<24 base62>`.
    pub id: String,
    pub mount_id: String,
    pub role_name: String,
    pub kind: CredentialKind,
    /// Unix milliseconds.
    pub issue_time: i64,
    pub expire_time: i64,
    pub last_renewal: Option<i64>,
    pub renewable: bool,
    pub record: LeaseRecord,
    /// Sealed secret revocation data, if any.
    pub secret: Option<Vec<u8>>,
    /// The token that asked for the lease, unless it was issued as an orphan.
    pub token_accessor: Option<String>,
    pub orphan: bool,
    pub state: LeaseState,
    /// Failed revocation attempts so far.
    pub attempts: i64,
    /// When a failed revocation may be tried again (unix ms).
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    /// Flagged after repeated failures; still retried, more slowly.
    pub irrevocable: bool,
}

/// A stored lease that cannot be read as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("lease {id} is unreadable: {reason}")]
pub struct UnreadableLease {
    pub id: String,
    pub reason: String,
}

fn flag(id: &str, column: &str, value: i64) -> Result<bool, UnreadableLease> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => {
            Err(UnreadableLease { id: id.to_string(), reason: format!("{column} is {other}, not 0 or 1") })
        }
    }
}

impl TryFrom<LeaseRow> for Lease {
    type Error = UnreadableLease;

    fn try_from(row: LeaseRow) -> Result<Lease, UnreadableLease> {
        let bad = |reason: String| UnreadableLease { id: row.id.clone(), reason };
        let kind = CredentialKind::parse(&row.credential_type)
            .ok_or_else(|| bad(format!("unknown credential type {:?}", row.credential_type)))?;
        let state =
            LeaseState::parse(&row.state).ok_or_else(|| bad(format!("unknown state {:?}", row.state)))?;
        let record: LeaseRecord =
            serde_json::from_str(&row.internal).map_err(|e| bad(format!("lease data is unreadable: {e}")))?;
        Ok(Lease {
            renewable: flag(&row.id, "renewable", row.renewable)?,
            orphan: flag(&row.id, "orphan", row.orphan)?,
            irrevocable: flag(&row.id, "irrevocable", row.irrevocable)?,
            kind,
            state,
            record,
            id: row.id,
            mount_id: row.mount_id,
            role_name: row.role_name,
            issue_time: row.issue_time,
            expire_time: row.expire_time,
            last_renewal: row.last_renewal,
            secret: row.secret,
            token_accessor: row.token_accessor,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
        })
    }
}

impl From<&Lease> for LeaseRow {
    fn from(lease: &Lease) -> LeaseRow {
        LeaseRow {
            id: lease.id.clone(),
            mount_id: lease.mount_id.clone(),
            role_name: lease.role_name.clone(),
            credential_type: lease.kind.as_str().into(),
            issue_time: lease.issue_time,
            expire_time: lease.expire_time,
            last_renewal: lease.last_renewal,
            renewable: i64::from(lease.renewable),
            internal: lease.record.to_json(),
            secret: lease.secret.clone(),
            token_accessor: lease.token_accessor.clone(),
            orphan: i64::from(lease.orphan),
            state: lease.state.as_str().into(),
            attempts: lease.attempts,
            next_attempt_at: lease.next_attempt_at,
            last_error: lease.last_error.clone(),
            irrevocable: i64::from(lease.irrevocable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> LeaseRow {
        LeaseRow {
            id: "aws/creds/deploy/abc".into(),
            mount_id: "m".into(),
            role_name: "deploy".into(),
            credential_type: "iam_user".into(),
            issue_time: 1,
            expire_time: 2,
            renewable: 1,
            internal: r#"{"username":"u","access_key_id":"k","is_sts":false,"role_ttl":60,"role_max_ttl":0}"#
                .into(),
            orphan: 0,
            state: "active".into(),
            ..LeaseRow::default()
        }
    }

    #[test]
    fn a_row_reads_as_a_typed_lease_and_back() {
        let lease = Lease::try_from(row()).unwrap();
        assert_eq!((lease.kind, lease.state), (CredentialKind::IamUser, LeaseState::Active));
        assert!(lease.renewable && !lease.orphan && !lease.irrevocable);
        assert_eq!(lease.record.username, "u");
        assert_eq!((lease.record.role_ttl, lease.record.role_max_ttl), (Some(60), Some(0)));
        let back = LeaseRow::from(&lease);
        assert_eq!(Lease::try_from(back).unwrap(), lease);
        // Records written before this type (STS leases without role TTLs) still read.
        let sts = LeaseRow { internal: r#"{"username":"u","is_sts":true}"#.into(), ..row() };
        assert_eq!(Lease::try_from(sts).unwrap().record.role_ttl, None);
    }

    #[test]
    fn a_row_that_is_not_a_lease_is_an_error_not_a_default() {
        for broken in [
            LeaseRow { credential_type: "nope".into(), ..row() },
            LeaseRow { state: "revoked".into(), ..row() },
            LeaseRow { renewable: 2, ..row() },
            LeaseRow { internal: "{".into(), ..row() },
        ] {
            let err = Lease::try_from(broken).unwrap_err();
            assert_eq!(err.id, "aws/creds/deploy/abc");
        }
    }
}
