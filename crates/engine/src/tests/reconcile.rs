//! The reconciler: users keymint made that no lease or intent accounts for are found and
//! removed; everything else is left alone; a failing removal is reported, not fatal.

use std::time::Duration;

use chrono::Utc;
use keymint_store::wal;

use super::Harness;
use crate::fake_aws::{Failure, User};
use crate::mint::{INSTALLATION_TAG, LEASE_TAG, OWNER_TAG, OWNER_TAG_VALUE};

/// A user carrying keymint's tags for `lease_id` and `installation`, made an hour ago.
fn tagged(h: &Harness, lease_id: &str, installation: Option<&str>) -> User {
    let installation = installation.unwrap_or(h.engine.store().installation_id());
    User {
        path: "/".into(),
        tags: vec![
            (OWNER_TAG.into(), OWNER_TAG_VALUE.into()),
            (LEASE_TAG.into(), lease_id.into()),
            (INSTALLATION_TAG.into(), installation.into()),
        ],
        keys: vec![format!("AKIA{}", lease_id.len())],
        attached: ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()].into(),
        ..User::default()
    }
}

fn hour_ago() -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::hours(1)
}

/// Only users with this installation's tags for this mount, and neither a lease nor an
/// intent, are strays; pages of ListUsers are all read.
#[tokio::test]
async fn strays_are_ours_and_unaccounted_for() {
    let h = Harness::new().await;
    h.fake.set_page_size(2);
    h.fake.put_user("stray", tagged(&h, "aws/creds/full/stray", None), hour_ago());
    h.fake.put_user("other-install", tagged(&h, "aws/creds/full/x", Some("elsewhere")), hour_ago());
    h.fake.put_user("other-mount", tagged(&h, "other/creds/full/x", None), hour_ago());
    h.fake.put_user("untagged", User { path: "/".into(), ..User::default() }, hour_ago());
    h.fake.put_user("under-intent", tagged(&h, "aws/creds/full/intent", None), hour_ago());
    let intent = wal::IntentRow {
        id: "intent-1".into(),
        mount_id: h.mount.id.clone(),
        kind: "iam_user".into(),
        data: serde_json::json!({"user_name": "under-intent", "lease_id": "aws/creds/full/intent"})
            .to_string(),
        created_at: 0,
    };
    wal::insert(h.engine.store().pool(), &intent).await.unwrap();
    h.full_role("full").await;
    let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();

    let scan = h.engine.find_strays(&h.mount).await.unwrap();
    assert_eq!(scan.skipped_unreadable, 0);
    let strays = scan.strays;
    let names: Vec<_> = strays.iter().map(|s| s.user_name.as_str()).collect();
    assert_eq!(names, ["stray"], "the leased user {} is no stray", minted.lease_id);
    assert_eq!(strays[0].lease_id, "aws/creds/full/stray");
    assert!(h.fake.count("ListUsers") >= 4, "every page was read");
    assert_eq!(h.fake.count("DeleteUser"), 0, "finding is a dry run");
}

/// A user younger than the consistency window may be a lease committing right now.
#[tokio::test]
async fn young_users_are_not_strays() {
    let h = Harness::new().await;
    let engine = h.engine.clone().with_consistency_window(Duration::from_secs(600));
    h.fake.put_user(
        "young",
        tagged(&h, "aws/creds/full/young", None),
        Utc::now() - chrono::Duration::minutes(5),
    );
    h.fake.put_user("old", tagged(&h, "aws/creds/full/old", None), hour_ago());
    let strays = engine.find_strays(&h.mount).await.unwrap().strays;
    assert_eq!(strays.iter().map(|s| s.user_name.as_str()).collect::<Vec<_>>(), ["old"]);
}

/// A removal that fails is reported with its reason; the others go ahead.
#[tokio::test]
async fn a_failing_removal_is_reported_and_the_rest_removed() {
    let h = Harness::new().await;
    for name in ["stray-a", "stray-b", "stray-c"] {
        h.fake.put_user(name, tagged(&h, &format!("aws/creds/full/{name}"), None), hour_ago());
    }
    // ListUsers answers in name order: the second teardown's DeleteUser is refused.
    h.fake.fail_nth("DeleteUser", 2, Failure::AccessDenied);
    let removal = h.engine.remove_strays(&h.mount).await.unwrap();
    let removed: Vec<_> = removal.removed.iter().map(|s| s.user_name.as_str()).collect();
    assert_eq!(removed, ["stray-a", "stray-c"]);
    assert_eq!(removal.failed.len(), 1);
    assert_eq!(removal.failed[0].0.user_name, "stray-b");
    assert!(removal.failed[0].1.contains("AccessDenied"), "{}", removal.failed[0].1);
    assert!(h.minted_users() == ["stray-b"], "{:?}", h.minted_users());
}

/// Users whose tags keymint may not read (a policy granting ListUserTags only under keymint's
/// path) are skipped and counted; the others are still reconciled, by listing and by removal.
#[tokio::test]
async fn users_with_unreadable_tags_are_skipped_and_counted() {
    let h = Harness::new().await;
    for name in ["a-denied", "b-stray", "c-denied", "d-stray"] {
        h.fake.put_user(name, tagged(&h, &format!("aws/creds/full/{name}"), None), hour_ago());
    }
    // Users are listed in name order, the root user ("keymint-root") last: calls 1 and 3
    // ask about the "-denied" users.
    let deny = |h: &Harness| {
        h.fake.fail_nth("ListUserTags", 1, Failure::AccessDenied);
        h.fake.fail_nth("ListUserTags", 3, Failure::AccessDenied);
    };
    deny(&h);
    let scan = h.engine.find_strays(&h.mount).await.unwrap();
    let asked: Vec<_> = h
        .fake
        .calls_of("ListUserTags")
        .iter()
        .map(|c| c.param("UserName").unwrap_or("").to_string())
        .collect();
    assert_eq!(asked[0], "a-denied");
    assert_eq!(asked[2], "c-denied");
    assert_eq!(scan.skipped_unreadable, 2);
    assert_eq!(scan.strays.iter().map(|s| s.user_name.as_str()).collect::<Vec<_>>(), ["b-stray", "d-stray"]);

    deny(&h);
    let removal = h.engine.remove_strays(&h.mount).await.unwrap();
    assert_eq!(removal.skipped_unreadable, 2);
    assert_eq!(
        removal.removed.iter().map(|s| s.user_name.as_str()).collect::<Vec<_>>(),
        ["b-stray", "d-stray"]
    );
    assert!(removal.failed.is_empty());
    assert_eq!(h.minted_users(), ["a-denied", "c-denied"], "unreadable users are left alone");

    // Any other refusal still fails the whole search.
    h.fake.fail_next("ListUserTags", Failure::Refused(400, "InvalidInput"));
    let err = h.engine.find_strays(&h.mount).await.unwrap_err().to_string();
    assert!(err.starts_with("Error listing user tags: InvalidInput"), "{err}");
}

/// A user deleted between ListUsers and ListUserTags is skipped; a failing ListUsers fails.
#[tokio::test]
async fn listing_failures() {
    let h = Harness::new().await;
    h.fake.put_user("vanishing", tagged(&h, "aws/creds/full/v", None), hour_ago());
    h.fake.put_user("stray", tagged(&h, "aws/creds/full/s", None), hour_ago());
    // Users are listed in name order, the root user first: the third ListUserTags asks
    // about "vanishing".
    h.fake.fail_nth("ListUserTags", 3, Failure::NoSuchEntity);
    let strays = h.engine.find_strays(&h.mount).await.unwrap().strays;
    assert_eq!(h.fake.calls_of("ListUserTags")[2].param("UserName"), Some("vanishing"));
    assert_eq!(strays.iter().map(|s| s.user_name.as_str()).collect::<Vec<_>>(), ["stray"]);

    h.fake.fail_next("ListUsers", Failure::AccessDenied);
    let err = h.engine.find_strays(&h.mount).await.unwrap_err().to_string();
    assert!(err.starts_with("Error listing IAM users: AccessDenied"), "{err}");
}
