//! Revoking leases: the user and all it holds are torn down; a user IAM does not show may be
//! its eventual consistency while the lease is young.

use std::time::Duration;

use keymint_lease::Revoker;
use keymint_store::leases::{self, LeaseRow};

use super::Harness;
use crate::fake_aws::{Failure, User};

fn lease(h: &Harness, user: &str, age: Duration) -> keymint_lease::Lease {
    let issued = chrono::Utc::now().timestamp_millis() - i64::try_from(age.as_millis()).unwrap();
    LeaseRow {
        id: "aws/creds/full/abc".into(),
        mount_id: h.mount.id.clone(),
        role_name: "full".into(),
        credential_type: "iam_user".into(),
        issue_time: issued,
        expire_time: issued + 3_600_000,
        renewable: 1,
        internal: serde_json::json!({"username": user, "access_key_id": "AKIA", "is_sts": false}).to_string(),
        state: leases::STATE_ACTIVE.into(),
        ..Default::default()
    }
    .try_into()
    .unwrap()
}

/// A minted user is torn down by revoking its lease, policies, groups and key included.
#[tokio::test]
async fn revoking_a_minted_lease_removes_its_user() {
    let h = Harness::new().await;
    h.full_role("full").await;
    let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();
    let row: keymint_lease::Lease =
        leases::get(h.engine.store().pool(), &minted.lease_id).await.unwrap().unwrap().try_into().unwrap();
    h.engine.revoke(&row).await.unwrap();
    assert!(h.minted_users().is_empty());
    assert_eq!(h.fake.count("DeleteUser"), 1);
    assert_eq!(h.fake.count("DeleteAccessKey"), 1);
}

/// A missing user is IAM's eventual consistency while the lease is younger than the window:
/// the revocation fails (and is retried later); past it, the user is gone for good.
#[tokio::test]
async fn a_missing_user_is_only_gone_after_the_consistency_window() {
    let h = Harness::new().await;
    let engine = h.engine.clone().with_consistency_window(Duration::from_secs(300));
    let young = lease(&h, "not-yet-visible", Duration::from_secs(10));
    let err = engine.revoke(&young).await.unwrap_err().to_string();
    assert!(err.contains("not visible yet"), "{err}");

    let old = lease(&h, "not-yet-visible", Duration::from_secs(301));
    engine.revoke(&old).await.unwrap();
}

/// A failure midway fails the revocation, the user stays for the retry, which removes it.
#[tokio::test]
async fn a_failed_revocation_keeps_the_user_for_the_retry() {
    let h = Harness::new().await;
    h.full_role("full").await;
    let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();
    let row: keymint_lease::Lease =
        leases::get(h.engine.store().pool(), &minted.lease_id).await.unwrap().unwrap().try_into().unwrap();
    for (op, failure) in [
        ("RemoveUserFromGroup", Failure::AccessDenied),
        ("DeleteUser", Failure::AccessDenied),
        ("ListAccessKeys", Failure::Refused(400, "ValidationError")),
    ] {
        h.fake.fail_next(op, failure);
        let err = h.engine.revoke(&row).await.unwrap_err().to_string();
        assert!(err.contains(&format!("AWS operation {op}")), "{op}: {err}");
        assert_eq!(h.minted_users().len(), 1, "{op}");
    }
    h.engine.revoke(&row).await.unwrap();
    assert!(h.minted_users().is_empty());
}

/// STS credentials end at their expiry: revoking them calls nothing.
#[tokio::test]
async fn sts_leases_revoke_without_calls() {
    let h = Harness::new().await;
    let mut row = lease(&h, "", Duration::ZERO);
    row.record = keymint_lease::LeaseRecord { is_sts: true, ..Default::default() };
    h.engine.revoke(&row).await.unwrap();
    assert!(h.fake.calls().is_empty());
}

#[tokio::test]
async fn leases_that_cannot_be_revoked_say_why() {
    let h = Harness::new().await;
    let mut row = lease(&h, "", Duration::ZERO);
    assert!(h.engine.revoke(&row).await.unwrap_err().to_string().contains("missing username"));
    row = lease(&h, "someone", Duration::ZERO);
    row.mount_id = "gone".into();
    assert!(h.engine.revoke(&row).await.unwrap_err().to_string().contains("no longer exists"));
    assert!(h.fake.calls().is_empty());
}

/// A store that cannot be read is told as the store error it is, so a request revoking the
/// lease can say the database did not answer; the lease records only "internal error".
#[tokio::test]
async fn a_revocation_without_its_database_says_so() {
    let h = Harness::new().await;
    let row = lease(&h, "someone", Duration::ZERO);
    h.engine.store().close().await;
    let err = h.engine.revoke(&row).await.unwrap_err();
    assert_eq!(err.to_string(), "internal error");
    assert!(matches!(&err, keymint_lease::RevokeError::Store(e) if e.is_unavailable()), "{err:?}");
    assert!(h.fake.calls().is_empty());
}

/// A user someone gave a console password and an MFA device is still removed whole.
#[tokio::test]
async fn revocation_removes_what_others_attached_to_the_user() {
    let h = Harness::new().await;
    let user = User {
        path: "/".into(),
        keys: vec!["AKIAOTHER".into()],
        login_profile: true,
        mfa: vec!["arn:aws:iam::123456789012:mfa/phone".into()],
        ..User::default()
    };
    h.fake.put_user("handed-out", user, chrono::Utc::now());
    h.engine.revoke(&lease(&h, "handed-out", Duration::from_secs(1))).await.unwrap();
    assert!(h.fake.user("handed-out").is_none());
}
