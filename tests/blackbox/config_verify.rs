//! `aws/config/root/verify` against moto with signature and policy checks on
//! (`INITIAL_NO_AUTH_ACTION_COUNT`): good keys answer with their identity, a wrong secret with
//! AWS's refusal and keymint's hint, and nothing is ever stored.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

/// Within moto's first six unauthenticated calls: an administrator (three calls), a user
/// allowed nothing (two), both with keys, and a role anyone may assume (one).
async fn bootstrap(moto: &Moto) -> ((String, String), (String, String), String) {
    let admin = moto.bootstrap_admin("keymint-admin").await;
    let iam = moto.iam();
    iam.create_user().user_name("keymint-nothing").send().await.unwrap();
    let key = iam.create_access_key().user_name("keymint-nothing").send().await.unwrap().access_key.unwrap();
    let role_arn = moto.create_role("keymint-verified").await;
    (admin, (key.access_key_id, key.secret_access_key), role_arn)
}

#[tokio::test]
async fn config_root_verify_tests_keys_without_storing_them() {
    let storage = Storage::new(Backend::Sqlite);
    let (moto, km) = tokio::join!(
        Moto::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", "6")]),
        Keymint::start(storage.url())
    );
    let ((admin_key, admin_secret), (nothing_key, nothing_secret), role_arn) = bootstrap(&moto).await;
    let form = |key: &str, secret: &str| {
        let mut body = root_config(&moto);
        body["access_key"] = json!(key);
        body["secret_key"] = json!(secret);
        body
    };

    let good = km.post("aws/config/root/verify", form(&admin_key, &admin_secret)).await.expect(200);
    assert_eq!(good.data()["account_id"], MOTO_ACCOUNT_ID, "{good}");
    assert_eq!(good.data()["arn"], format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:user/keymint-admin"), "{good}");
    km.get("aws/config/root").await.expect(404);

    // moto sends its refusal (SignatureDoesNotMatch) in a shape the SDK does not read the code
    // from, so only the status shows; AWS's own shape, with the code and keymint's hint, is
    // tested in process against the fake AWS (keymint-api's tests).
    let wrong = km.post("aws/config/root/verify", form(&admin_key, "not-the-secret")).await.expect(400);
    let text = wrong.errors().join("\n");
    assert!(text.starts_with("error verifying the root credentials with GetCallerIdentity: "), "{wrong}");
    assert!(text.contains("403") && text.contains("AWS operation GetCallerIdentity"), "{wrong}");

    // Through a role: the assumed identity, or AssumeRole's refusal with its hint.
    let mut via_role = form(&admin_key, &admin_secret);
    via_role["role_arn"] = json!(role_arn);
    let assumed = km.post("aws/config/root/verify", via_role).await.expect(200);
    let arn = assumed.data()["arn"].as_str().unwrap_or_default();
    assert!(
        arn.starts_with(&format!("arn:aws:sts::{MOTO_ACCOUNT_ID}:assumed-role/keymint-verified/")),
        "{assumed}"
    );
    let mut not_allowed = form(&nothing_key, &nothing_secret);
    not_allowed["role_arn"] = json!(role_arn);
    let refused = km.post("aws/config/root/verify", not_allowed).await.expect(400);
    let text = refused.errors().join("\n");
    // Named as the AssumeRole refusal it is, not as AWS being out of reach.
    assert!(text.contains("AWS operation AssumeRole"), "{refused}");
    assert!(!text.contains("could not reach AWS"), "{refused}");
    km.get("aws/config/root").await.expect(404);

    // With a config stored, a failed test of other keys leaves it as it was.
    km.post("aws/config/root", form(&admin_key, &admin_secret)).await.expect(200);
    km.post("aws/config/root/verify", form(&nothing_key, "not-the-secret")).await.expect(400);
    let read = km.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["access_key"], admin_key.as_str(), "{read}");
    km.post("aws/config/root/verify", json!({})).await.expect(200);
}
