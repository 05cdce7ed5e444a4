//! Tearing down an IAM user: every kind of thing that holds it, items already gone, and
//! failures midway.

use std::collections::{BTreeMap, BTreeSet};

use super::Harness;
use crate::fake_aws::{Failure, User};
use crate::teardown::{Teardown, delete_user};

const USER: &str = "vault-token-full-1700000000-abcdef";

/// A user holding two of everything a teardown removes (no service-specific credentials).
fn loaded() -> User {
    let two = |prefix: &str| vec![format!("{prefix}-1"), format!("{prefix}-2")];
    User {
        path: "/".into(),
        inline: BTreeMap::from([("one".into(), "{}".into()), ("two".into(), "{}".into())]),
        attached: BTreeSet::from(["arn:aws:iam::aws:policy/A".into(), "arn:aws:iam::aws:policy/B".into()]),
        groups: BTreeSet::from(["g1".into(), "g2".into()]),
        keys: two("AKIAUSERKEY"),
        login_profile: true,
        mfa: two("arn:aws:iam::123456789012:mfa/dev"),
        ssh: two("APKASSH"),
        certs: two("CERT"),
        ..User::default()
    }
}

/// The removal calls of a teardown and how many of each `loaded()` needs.
const REMOVALS: &[(&str, usize)] = &[
    ("DeleteAccessKey", 2),
    ("DetachUserPolicy", 2),
    ("DeleteUserPolicy", 2),
    ("RemoveUserFromGroup", 2),
    ("DeleteLoginProfile", 1),
    ("DeactivateMFADevice", 2),
    ("DeleteSSHPublicKey", 2),
    ("DeleteSigningCertificate", 2),
];

/// Every list is read across pages, everything is removed, then the user.
#[tokio::test]
async fn a_teardown_removes_everything_the_user_holds() {
    let h = Harness::new().await;
    h.fake.set_page_size(1);
    h.fake.put_user(USER, loaded(), chrono::Utc::now());
    let (aws, _) = h.engine.clients(&h.mount).await.unwrap();
    assert_eq!(delete_user(&aws, USER).await.unwrap(), Teardown::Deleted);
    assert!(h.fake.user(USER).is_none());
    for (op, n) in REMOVALS {
        assert_eq!(h.fake.count(op), *n, "{op}");
    }
    // Two items a page: each list was read in two pages.
    assert_eq!(h.fake.count("ListAccessKeys"), 2);
    assert_eq!(h.fake.count("DeleteUser"), 1);
    assert_eq!(h.fake.count("ListServiceSpecificCredentials"), 0, "looked for only on DeleteConflict");
}

/// Service-specific credentials are rare: they are looked for when DeleteUser says something
/// still holds the user, removed, and DeleteUser is sent again.
#[tokio::test]
async fn service_specific_credentials_are_removed_when_delete_user_conflicts() {
    let h = Harness::new().await;
    let user = User { path: "/".into(), service_creds: vec!["ACCA1".into()], ..User::default() };
    h.fake.put_user(USER, user, chrono::Utc::now());
    let (aws, _) = h.engine.clients(&h.mount).await.unwrap();
    assert_eq!(delete_user(&aws, USER).await.unwrap(), Teardown::Deleted);
    assert!(h.fake.user(USER).is_none());
    assert_eq!(h.fake.count("DeleteServiceSpecificCredential"), 1);
    assert_eq!(h.fake.count("DeleteUser"), 2);
}

#[tokio::test]
async fn a_user_that_does_not_exist_is_already_gone() {
    let h = Harness::new().await;
    let (aws, _) = h.engine.clients(&h.mount).await.unwrap();
    assert_eq!(delete_user(&aws, "nobody").await.unwrap(), Teardown::AlreadyGone);
    assert_eq!(h.fake.count("DeleteUser"), 0);
}

/// Removals whose answer was lost are repeated, and the repeat's NoSuchEntity means the goal
/// was reached; so does a DeleteUser answered NoSuchEntity (someone else deleted the user).
#[tokio::test]
async fn items_already_gone_count_as_removed() {
    let h = Harness::new().await;
    h.fake.put_user(USER, loaded(), chrono::Utc::now());
    for (op, _) in REMOVALS {
        h.fake.fail_next(op, Failure::AnswerLost);
    }
    let (aws, _) = h.engine.clients(&h.mount).await.unwrap();
    assert_eq!(delete_user(&aws, USER).await.unwrap(), Teardown::Deleted);
    assert!(h.fake.user(USER).is_none());
    for (op, n) in REMOVALS {
        assert_eq!(h.fake.count(op), n + 1, "{op}: the lost call was repeated once");
    }

    let user = User { path: "/".into(), ..User::default() };
    h.fake.put_user("other", user, chrono::Utc::now());
    h.fake.fail_next("DeleteUser", Failure::NoSuchEntity);
    assert_eq!(delete_user(&aws, "other").await.unwrap(), Teardown::Deleted);
}

/// A refusal of any removal fails the teardown without deleting the user (the other removals
/// still run), and a second teardown finishes the job.
#[tokio::test]
async fn a_failure_midway_is_returned_and_a_retry_finishes() {
    let h = Harness::new().await;
    let (aws, _) = h.engine.clients(&h.mount).await.unwrap();
    for (op, _) in REMOVALS {
        h.fake.put_user(USER, loaded(), chrono::Utc::now());
        h.fake.clear_calls();
        h.fake.fail_next(op, Failure::AccessDenied);
        let err = delete_user(&aws, USER).await.unwrap_err();
        assert!(err.is_code("AccessDenied") && err.op == *op, "{op}: {err}");
        assert_eq!(h.fake.count("DeleteUser"), 0, "{op}");
        let left = h.fake.user(USER).expect("the user stays");
        // The other removals ran to the end: one item of `op`'s kind is left, and nothing else.
        let held = left.keys.len()
            + left.attached.len()
            + left.inline.len()
            + left.groups.len()
            + usize::from(left.login_profile)
            + left.mfa.len()
            + left.ssh.len()
            + left.certs.len();
        assert_eq!(held, 1, "{op}: {left:?}");

        assert_eq!(delete_user(&aws, USER).await.unwrap(), Teardown::Deleted, "{op}");
        assert!(h.fake.user(USER).is_none(), "{op}");
    }
}

/// A list call that fails stops the teardown before anything is removed.
#[tokio::test]
async fn a_failing_list_removes_nothing() {
    let h = Harness::new().await;
    let (aws, _) = h.engine.clients(&h.mount).await.unwrap();
    h.fake.put_user(USER, loaded(), chrono::Utc::now());
    for op in ["ListGroupsForUser", "ListAttachedUserPolicies", "ListAccessKeys", "ListSigningCertificates"] {
        h.fake.clear_calls();
        h.fake.fail_next(op, Failure::AccessDenied);
        let err = delete_user(&aws, USER).await.unwrap_err();
        assert!(err.is_code("AccessDenied"), "{op}: {err}");
        for (removal, _) in REMOVALS {
            assert_eq!(h.fake.count(removal), 0, "{op}: {removal}");
        }
        let untouched = h.fake.user(USER).unwrap();
        assert_eq!(untouched, User { created: untouched.created, ..loaded() }, "{op}");
    }
}

/// Throttling and 5xx on any call are retried within the mount's limits.
#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let h = Harness::new().await;
    h.fake.put_user(USER, loaded(), chrono::Utc::now());
    h.fake.fail_next("ListGroupsForUser", Failure::Throttle);
    h.fake.fail_next("DetachUserPolicy", Failure::ServerError);
    h.fake.fail_times("DeleteUser", 2, Failure::Throttle);
    let (aws, _) = h.engine.clients(&h.mount).await.unwrap();
    assert_eq!(delete_user(&aws, USER).await.unwrap(), Teardown::Deleted);
    assert!(h.fake.user(USER).is_none());
    assert_eq!(h.fake.count("DeleteUser"), 3);
}
