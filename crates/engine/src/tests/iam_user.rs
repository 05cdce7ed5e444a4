//! Minting `iam_user` credentials, with a failure at each step: a user is either fully made
//! and leased, or gone, or still named by the write-ahead intent the sweeper undoes.

use keymint_lease::Revoker;
use keymint_store::leases;

use super::Harness;
use crate::error::{AwsFailure, EngineError};
use crate::fake_aws::Failure;
use crate::mint::{INSTALLATION_TAG, LEASE_TAG, OWNER_TAG};

/// The steps of a mint after CreateUser, with the prefix Vault puts on their errors.
const STEPS: &[(&str, &str)] = &[
    ("CreateUser", "Error creating IAM user"),
    ("AttachUserPolicy", "Error attaching user policy"),
    ("PutUserPolicy", "Error putting user policy"),
    ("AddUserToGroup", "Error adding user to group"),
    ("TagUser", "Error adding tags to user"),
    ("CreateAccessKey", "Error creating access keys"),
];

fn aws_message(e: EngineError) -> (String, AwsFailure) {
    match e {
        EngineError::Aws { message, kind } => (message, kind),
        other => panic!("expected an AWS error, got {other:?}"),
    }
}

/// Asserts the single minted user holds everything `full_role` asks for, under `lease_id`.
fn assert_fully_made(h: &Harness, lease_id: &str, access_key: &str) {
    let users = h.minted_users();
    assert_eq!(users.len(), 1, "{users:?}");
    let user = h.fake.user(&users[0]).unwrap();
    assert_eq!(user.attached.len(), 2, "{user:?}");
    assert_eq!(user.inline.keys().collect::<Vec<_>>(), ["full"]);
    assert_eq!(user.groups.iter().collect::<Vec<_>>(), ["auditors", "developers"]);
    assert_eq!(user.tag("team"), Some("payments"));
    assert_eq!(user.tag(OWNER_TAG), Some("keymint"));
    assert_eq!(user.tag(LEASE_TAG), Some(lease_id));
    assert_eq!(user.tag(INSTALLATION_TAG), Some(h.engine.store().installation_id()));
    assert_eq!(user.keys, [access_key], "the user holds exactly the key handed out");
}

#[tokio::test]
async fn a_mint_makes_every_part_and_leases_the_user() {
    let h = Harness::new().await;
    h.full_role("full").await;
    let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();
    let key = minted.data["access_key"].as_str().unwrap();
    assert_fully_made(&h, &minted.lease_id, key);
    assert_eq!(h.fake.secret_of(key).as_deref(), minted.data["secret_key"].as_str());
    let lease = leases::get(h.engine.store().pool(), &minted.lease_id).await.unwrap().unwrap();
    assert!(lease.internal.contains(&h.minted_users()[0]), "{}", lease.internal);
    assert!(h.intents().await.is_empty(), "the lease replaced the intent");
}

/// A refusal at any step: the mint fails with that step's error, and neither a user nor an
/// intent nor a lease is left.
#[tokio::test]
async fn a_refusal_at_any_step_leaves_nothing_behind() {
    let h = Harness::new().await;
    h.full_role("full").await;
    for (op, prefix) in STEPS {
        h.fake.clear_calls();
        h.fake.fail_next(op, Failure::AccessDenied);
        let err = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap_err();
        let (message, kind) = aws_message(err);
        assert!(message.starts_with(&format!("{prefix}: AccessDenied")), "{op}: {message}");
        assert_eq!(kind, AwsFailure::Rejected, "{op}");
        let calls = if matches!(*op, "AttachUserPolicy" | "AddUserToGroup") { 2 } else { 1 };
        assert_eq!(h.fake.count(op), calls, "{op}: a refusal is not repeated");
        assert!(h.minted_users().is_empty(), "{op}: {:?}", h.minted_users());
        assert!(h.intents().await.is_empty(), "{op}");
        assert!(h.lease_ids().await.is_empty(), "{op}");
        // Past CreateUser, the half-made user was torn down then and there.
        assert_eq!(h.fake.count("DeleteUser"), usize::from(*op != "CreateUser"), "{op}");
    }
}

/// Throttling and 5xx that last beyond the retries fail the mint the same way, as AWS trouble.
#[tokio::test]
async fn a_step_that_keeps_failing_is_retried_then_undone() {
    let h = Harness::new().await;
    h.full_role("full").await;
    for failure in [Failure::Throttle, Failure::ServerError] {
        for op in ["AttachUserPolicy", "AddUserToGroup", "TagUser"] {
            h.fake.clear_calls();
            h.fake.fail_always(op, failure);
            let (message, kind) =
                aws_message(h.engine.mint(&h.mount, Harness::request("full")).await.unwrap_err());
            h.fake.heal(op);
            assert_eq!(kind, AwsFailure::Unavailable, "{op} {failure:?}");
            assert!(message.contains("gave up after 3 attempts"), "{op} {failure:?}: {message}");
            // Each call of the step (two for AttachUserPolicy and AddUserToGroup) tried thrice.
            let per_call = if op == "TagUser" { 3 } else { 6 };
            assert_eq!(h.fake.count(op), per_call, "{op} {failure:?}");
            assert!(h.minted_users().is_empty(), "{op} {failure:?}");
            assert!(h.intents().await.is_empty(), "{op} {failure:?}");
        }
    }
}

/// One throttling answer at any step is absorbed by the retry: the mint succeeds, whole.
#[tokio::test]
async fn a_throttled_step_is_repeated_and_the_mint_succeeds() {
    for (op, _) in STEPS {
        let h = Harness::new().await;
        h.full_role("full").await;
        h.fake.fail_next(op, Failure::Throttle);
        let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();
        assert_fully_made(&h, &minted.lease_id, minted.data["access_key"].as_str().unwrap());
        let expected = if matches!(*op, "AttachUserPolicy" | "AddUserToGroup") { 3 } else { 2 };
        assert_eq!(h.fake.count(op), expected, "{op}");
        assert!(h.intents().await.is_empty(), "{op}");
    }
}

/// A CreateUser that went through but whose answer was lost: the lease tag shows the user is
/// this request's, and the mint carries on with it rather than making a second one.
#[tokio::test]
async fn a_lost_create_user_answer_is_reconciled() {
    let h = Harness::new().await;
    h.full_role("full").await;
    h.fake.fail_next("CreateUser", Failure::AnswerLost);
    let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();
    assert_eq!(h.fake.count("CreateUser"), 1, "the lost CreateUser is not sent again");
    assert_eq!(h.fake.count("ListUserTags"), 1);
    assert_fully_made(&h, &minted.lease_id, minted.data["access_key"].as_str().unwrap());
}

/// A 5xx CreateUser that did not happen: the user is not there, so CreateUser is sent again.
#[tokio::test]
async fn a_create_user_that_failed_with_a_5xx_is_sent_again() {
    let h = Harness::new().await;
    h.full_role("full").await;
    h.fake.fail_next("CreateUser", Failure::ServerError);
    let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();
    assert_eq!(h.fake.count("CreateUser"), 2);
    assert_fully_made(&h, &minted.lease_id, minted.data["access_key"].as_str().unwrap());
}

/// When the outcome of CreateUser stays unknown, the intent stays: the sweeper's undo then
/// removes the user the lost call made.
#[tokio::test]
async fn an_unknown_create_user_outcome_keeps_the_intent_for_the_sweeper() {
    let h = Harness::new().await;
    h.full_role("full").await;
    h.fake.fail_next("CreateUser", Failure::AnswerLost);
    h.fake.fail_always("ListUserTags", Failure::ServerError);
    let (message, kind) = aws_message(h.engine.mint(&h.mount, Harness::request("full")).await.unwrap_err());
    assert!(message.starts_with("Error creating IAM user"), "{message}");
    assert_eq!(kind, AwsFailure::Unavailable);
    let users = h.minted_users();
    assert_eq!(users.len(), 1, "the lost call made the user");
    let intents = h.intents().await;
    assert_eq!(intents.len(), 1);
    assert!(intents[0].data.contains(&users[0]), "the intent names the user: {}", intents[0].data);
    assert!(h.lease_ids().await.is_empty());

    h.engine.undo_intent(&intents[0]).await.unwrap();
    assert!(h.minted_users().is_empty());
}

/// A CreateAccessKey whose answer was lost made a key nobody has the secret of: it is deleted
/// before the key is made again, so the user holds only the key handed out.
#[tokio::test]
async fn a_lost_create_access_key_answer_leaves_no_orphan_key() {
    let h = Harness::new().await;
    h.full_role("full").await;
    h.fake.fail_next("CreateAccessKey", Failure::AnswerLost);
    let minted = h.engine.mint(&h.mount, Harness::request("full")).await.unwrap();
    let key = minted.data["access_key"].as_str().unwrap();
    assert_eq!(h.fake.count("CreateAccessKey"), 2);
    let deleted = h.fake.calls_of("DeleteAccessKey");
    assert_eq!(deleted.len(), 1);
    assert_ne!(deleted[0].param("AccessKeyId"), Some(key));
    assert_fully_made(&h, &minted.lease_id, key);
}

/// A half-made user that cannot be torn down at once stays under its intent, and the
/// sweeper's undo removes it later, with everything it holds.
#[tokio::test]
async fn a_failed_undo_leaves_the_intent_and_the_sweeper_finishes() {
    let h = Harness::new().await;
    h.full_role("full").await;
    h.fake.fail_next("CreateAccessKey", Failure::AccessDenied);
    h.fake.fail_always("DeleteUser", Failure::AccessDenied);
    let (message, _) = aws_message(h.engine.mint(&h.mount, Harness::request("full")).await.unwrap_err());
    assert!(message.starts_with("Error creating access keys: AccessDenied"), "{message}");
    let users = h.minted_users();
    assert_eq!(users.len(), 1);
    let intents = h.intents().await;
    assert_eq!(intents.len(), 1, "the user is still accounted for");
    assert!(h.lease_ids().await.is_empty());

    // The sweeper fails while IAM still refuses, and succeeds once it does not.
    assert!(h.engine.undo_intent(&intents[0]).await.unwrap_err().contains("AccessDenied"));
    h.fake.heal("DeleteUser");
    h.engine.undo_intent(&intents[0]).await.unwrap();
    assert!(h.minted_users().is_empty());
}

/// Right after CreateUser, "no such user" during the undo may be IAM's eventual consistency:
/// the intent stays, and the sweeper removes the user once IAM shows it.
#[tokio::test]
async fn a_user_not_visible_during_the_undo_stays_under_its_intent() {
    let h = Harness::new().await;
    h.full_role("full").await;
    h.fake.fail_next("TagUser", Failure::AccessDenied);
    h.fake.fail_next("ListGroupsForUser", Failure::NoSuchEntity);
    h.engine.mint(&h.mount, Harness::request("full")).await.unwrap_err();
    assert_eq!(h.minted_users().len(), 1);
    let intents = h.intents().await;
    assert_eq!(intents.len(), 1);
    h.engine.undo_intent(&intents[0]).await.unwrap();
    assert!(h.minted_users().is_empty());
}
