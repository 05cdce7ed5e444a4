//! Rotating the root access key: create the new key, check AWS takes it, store it, delete the
//! old one. A failure at any step leaves config/root with a key that works, and any key left
//! over is listed as stale and deleted later.

use keymint_store::rotation as rows;
use secrecy::ExposeSecret;

use super::{Harness, ROOT_KEY, ROOT_USER};
use crate::fake_aws::Failure;
use crate::keys::{StaleKey, parse_stale};

/// config/root holds `key`, with the secret IAM knows for it, and the engine's clients sign
/// with it successfully.
async fn assert_root_works(h: &Harness, key: &str) {
    let (cfg, secrets, _) = h.engine.root_config(&h.mount).await.unwrap().unwrap();
    assert_eq!(cfg.access_key, key);
    let stored = secrets.secret_key.unwrap().expose_secret().to_string();
    assert_eq!(h.fake.secret_of(key), Some(stored), "the stored secret is the key's");
    let (clients, _) = h.engine.clients(&h.mount).await.unwrap();
    let who = clients.caller_identity().await.unwrap();
    assert!(who.arn.ends_with(&format!("user/{ROOT_USER}")), "{who:?}");
    assert_eq!(h.fake.calls_of("GetCallerIdentity").last().unwrap().key, key, "signed with {key}");
}

fn root_keys(h: &Harness) -> Vec<String> {
    h.fake.user(ROOT_USER).unwrap().keys
}

async fn stale(h: &Harness) -> Vec<StaleKey> {
    let row = rows::get(h.engine.store().pool(), &h.mount.id, rows::ROOT).await.unwrap().unwrap();
    parse_stale(&row.stale_keys)
}

/// Runs the background cleanup of stale keys, as the rotation task does between rotations.
async fn clean_up(h: &Harness) {
    let claim = h.engine.claim(&h.mount.id, rows::ROOT, false).await.unwrap().unwrap();
    h.engine.scheduled_root_rotation(&h.mount, &claim).await.unwrap();
    h.engine.release(&claim, rows::Release::default()).await;
}

#[tokio::test]
async fn a_rotation_stores_the_new_key_and_deletes_the_old() {
    let h = Harness::new().await;
    let rotated = h.engine.rotate_root(&h.mount).await.unwrap();
    assert!(rotated.warnings.is_empty(), "{:?}", rotated.warnings);
    assert_eq!(root_keys(&h), [rotated.access_key.as_str()]);
    // AWS was asked to take the new key before it was stored.
    let probe = h.fake.calls_of("GetCallerIdentity").pop().unwrap();
    assert_eq!(probe.key, rotated.access_key);
    assert!(stale(&h).await.is_empty());
    assert_root_works(&h, &rotated.access_key).await;
}

/// Refusals before or at CreateAccessKey: nothing is made, the old key stays in use.
#[tokio::test]
async fn a_failure_before_the_new_key_exists_keeps_the_old_one() {
    let h = Harness::new().await;
    for (op, wanted) in [
        ("GetUser", "error calling GetUser: AccessDenied"),
        ("ListAccessKeys", "error calling ListAccessKeys: AccessDenied"),
        ("CreateAccessKey", "error calling CreateAccessKey: AccessDenied"),
    ] {
        h.fake.fail_next(op, Failure::AccessDenied);
        let err = h.engine.rotate_root(&h.mount).await.unwrap_err().to_string();
        assert!(err.starts_with(wanted), "{op}: {err}");
        assert_eq!(root_keys(&h), [ROOT_KEY], "{op}");
        assert_root_works(&h, ROOT_KEY).await;
    }
    // A user already at IAM's two keys cannot get a third.
    h.fake.put_key(ROOT_USER, "AKIASECOND", "s");
    let err = h.engine.rotate_root(&h.mount).await.unwrap_err().to_string();
    assert!(err.contains("LimitExceeded") && err.contains("two access keys"), "{err}");
    assert_root_works(&h, ROOT_KEY).await;
}

/// A new key AWS does not take is deleted, and config/root keeps the old one.
#[tokio::test]
async fn a_new_key_aws_refuses_is_deleted() {
    let h = Harness::new().await;
    // The first GetCallerIdentity picks the STS endpoint; the second is the new key's probe.
    h.fake.fail_nth("GetCallerIdentity", 2, Failure::AccessDenied);
    let err = h.engine.rotate_root(&h.mount).await.unwrap_err().to_string();
    assert!(err.contains("the new key was deleted and config/root keeps the old one"), "{err}");
    assert_eq!(root_keys(&h), [ROOT_KEY]);
    assert!(stale(&h).await.is_empty());
    assert_root_works(&h, ROOT_KEY).await;
}

/// If even that deletion fails, the new key stays listed as stale, and the cleanup deletes it
/// (never the key config/root holds).
#[tokio::test]
async fn an_unused_key_that_cannot_be_deleted_is_deleted_later() {
    let h = Harness::new().await;
    h.fake.fail_nth("GetCallerIdentity", 2, Failure::AccessDenied);
    h.fake.fail_always("DeleteAccessKey", Failure::AccessDenied);
    h.engine.rotate_root(&h.mount).await.unwrap_err();
    let keys = root_keys(&h);
    assert_eq!(keys.len(), 2);
    let listed = stale(&h).await;
    assert_eq!(listed, [StaleKey::new(ROOT_USER, keys[1].clone())]);
    assert_root_works(&h, ROOT_KEY).await;

    h.fake.heal("DeleteAccessKey");
    clean_up(&h).await;
    assert_eq!(root_keys(&h), [ROOT_KEY]);
    assert!(stale(&h).await.is_empty());
}

/// STS takes a new key only after a few seconds: the probe waits for it.
#[tokio::test]
async fn a_new_key_is_stored_once_aws_takes_it() {
    let h = Harness::new().await;
    h.fake.fail_nth("GetCallerIdentity", 2, Failure::Refused(403, "InvalidClientTokenId"));
    let rotated = h.engine.rotate_root(&h.mount).await.unwrap();
    assert_eq!(h.fake.count("GetCallerIdentity"), 3);
    assert_root_works(&h, &rotated.access_key).await;
}

/// The old key's deletion failing is a warning: the new key is in use, and the old one is
/// listed as stale until the cleanup deletes it.
#[tokio::test]
async fn an_old_key_that_cannot_be_deleted_yet_is_deleted_later() {
    let h = Harness::new().await;
    h.fake.fail_always("DeleteAccessKey", Failure::ServerError);
    let rotated = h.engine.rotate_root(&h.mount).await.unwrap();
    assert_eq!(rotated.warnings.len(), 1, "{:?}", rotated.warnings);
    assert!(rotated.warnings[0].contains(&format!("the old access key {ROOT_KEY} could not be deleted yet")));
    assert_eq!(root_keys(&h), [ROOT_KEY, rotated.access_key.as_str()]);
    assert_eq!(stale(&h).await, [StaleKey::new(ROOT_USER, ROOT_KEY)]);
    assert_root_works(&h, &rotated.access_key).await;

    h.fake.heal("DeleteAccessKey");
    clean_up(&h).await;
    assert_eq!(root_keys(&h), [rotated.access_key.as_str()]);
    assert!(stale(&h).await.is_empty());
    assert_root_works(&h, &rotated.access_key).await;
}

/// A CreateAccessKey whose answer was lost made a key nobody has the secret of: it is found
/// and deleted before the key is made again.
#[tokio::test]
async fn a_lost_create_access_key_answer_leaves_no_orphan() {
    let h = Harness::new().await;
    h.fake.fail_next("CreateAccessKey", Failure::AnswerLost);
    let rotated = h.engine.rotate_root(&h.mount).await.unwrap();
    assert_eq!(h.fake.count("CreateAccessKey"), 2);
    // The orphan, then the old key.
    assert_eq!(h.fake.count("DeleteAccessKey"), 2);
    assert_eq!(root_keys(&h), [rotated.access_key.as_str()]);
    assert_root_works(&h, &rotated.access_key).await;
}

/// A replica that died between CreateAccessKey and recording the new key's id left only the
/// creation listed: the next holder deletes whatever key the user holds beyond those listed
/// with it (never the key config/root holds).
#[tokio::test]
async fn a_creation_whose_replica_died_is_undone_by_the_next_holder() {
    let h = Harness::new().await;
    let claim = h.engine.claim(&h.mount.id, rows::ROOT, false).await.unwrap().unwrap();
    let creating = vec![StaleKey::creating(ROOT_USER, &[ROOT_KEY.to_owned()])];
    assert!(h.engine.save_stale(&claim, &creating, true).await.unwrap());
    // The call went through; the replica died before it heard the answer.
    h.fake.put_key(ROOT_USER, "AKIAORPHANED", "s");
    let row = rows::get(h.engine.store().pool(), &h.mount.id, rows::ROOT).await.unwrap().unwrap();
    assert!(row.retry_at.is_some(), "the row is due for the next holder at once");
    // Its claim lapses (released here, to not wait for it).
    h.engine.release(&claim, rows::Release { retry_at: row.retry_at, ..rows::Release::default() }).await;
    clean_up(&h).await;
    assert_eq!(root_keys(&h), [ROOT_KEY]);
    assert!(stale(&h).await.is_empty());
    assert_root_works(&h, ROOT_KEY).await;

    // A rotation that finds the same leftover deletes it first (IAM allows two keys).
    let claim = h.engine.claim(&h.mount.id, rows::ROOT, false).await.unwrap().unwrap();
    assert!(h.engine.save_stale(&claim, &creating, true).await.unwrap());
    h.fake.put_key(ROOT_USER, "AKIAORPHANED2", "s");
    h.engine.release(&claim, rows::Release::default()).await;
    let rotated = h.engine.rotate_root(&h.mount).await.unwrap();
    assert_eq!(root_keys(&h), [rotated.access_key.as_str()]);
    assert!(stale(&h).await.is_empty());
    assert_root_works(&h, &rotated.access_key).await;
}
