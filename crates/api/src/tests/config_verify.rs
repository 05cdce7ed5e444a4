//! `config/root/verify`: a `config/root` write's checks, answered as that write would be, with
//! nothing stored.

use axum::http::StatusCode;
use keymint_engine::fake_aws::{ACCOUNT, User};
use serde_json::{Value, json};

use crate::testing::{ROOT_KEY, ROOT_USER, TestApp};

const VERIFY: &str = "aws/config/root/verify";
/// A second principal the fake AWS knows, with keys other than the stored ones.
const OTHER_USER: &str = "keymint-other";
const OTHER_KEY: &str = "TESTOTHERKEY002";
const OTHER_SECRET: &str = "test-other-secret";

async fn stored_root(app: &TestApp) -> Value {
    let read = app.root("GET", "aws/config/root", None).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    read.body["data"].clone()
}

async fn refused(app: &TestApp, body: Value) -> String {
    let answer = app.root("POST", VERIFY, Some(body)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
    answer.body["errors"][0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn good_keys_answer_with_their_identity_and_nothing_is_stored() {
    let app = TestApp::new().await;
    app.fake.put_user(OTHER_USER, User { path: "/".into(), ..User::default() }, chrono::Utc::now());
    app.fake.put_key(OTHER_USER, OTHER_KEY, OTHER_SECRET);
    let before = stored_root(&app).await;

    // An empty form checks the stored credentials as they are.
    let stored = app.root("POST", VERIFY, Some(json!({}))).await;
    assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
    assert_eq!(stored.body["data"]["account_id"], ACCOUNT);
    assert_eq!(stored.body["data"]["arn"], format!("arn:aws:iam::{ACCOUNT}:user/{ROOT_USER}"));

    // Other good keys, with other settings: their identity, and the stored config untouched.
    let other = json!({"access_key": OTHER_KEY, "secret_key": OTHER_SECRET, "region": "eu-west-1",
                       "expected_account_id": ACCOUNT, "rotation_period": "24h"});
    let answer = app.root("POST", VERIFY, Some(other)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let data = &answer.body["data"];
    assert_eq!(data["account_id"], ACCOUNT);
    assert_eq!(data["arn"], format!("arn:aws:iam::{ACCOUNT}:user/{OTHER_USER}"));
    assert!(data["user_id"].as_str().is_some_and(|u| !u.is_empty()), "{data}");
    let after = stored_root(&app).await;
    assert_eq!(after, before);
    assert_eq!(after["access_key"], ROOT_KEY);
    assert!(after["next_rotation"].is_null(), "no rotation scheduled: {after}");

    // The mount's clients still sign with the stored key.
    app.fake.clear_calls();
    assert_eq!(app.root("GET", "aws/reconcile", None).await.status, StatusCode::OK);
    let calls = app.fake.calls();
    assert!(!calls.is_empty() && calls.iter().all(|c| c.key == ROOT_KEY), "{calls:?}");
}

#[tokio::test]
async fn refusals_are_the_texts_a_config_root_write_gives() {
    let app = TestApp::new().await;
    let before = stored_root(&app).await;

    let wrong_secret = json!({"access_key": ROOT_KEY, "secret_key": "not-the-secret"});
    let text = refused(&app, wrong_secret.clone()).await;
    assert!(
        text.starts_with(
            "error verifying the root credentials with GetCallerIdentity: SignatureDoesNotMatch:"
        ),
        "{text}"
    );
    assert!(text.contains("hint: AWS does not accept the credentials in config/root"), "{text}");
    // Word for word what the write itself answers (which stores nothing either).
    let write = app.root("POST", "aws/config/root", Some(wrong_secret)).await;
    assert_eq!(
        (write.status, write.body["errors"][0].as_str()),
        (StatusCode::BAD_REQUEST, Some(text.as_str()))
    );

    let unknown_key = refused(&app, json!({"access_key": "TESTNOBODY00001", "secret_key": "x"})).await;
    assert!(unknown_key.contains("InvalidClientTokenId"), "{unknown_key}");

    let mismatch = refused(&app, json!({"expected_account_id": "999999999999"})).await;
    assert_eq!(
        mismatch,
        format!(
            "the root credentials belong to account {ACCOUNT} (arn:aws:iam::{ACCOUNT}:user/{ROOT_USER}), \
             not to the expected account 999999999999"
        )
    );
    assert_eq!(stored_root(&app).await, before);
}

#[tokio::test]
async fn the_body_is_merged_and_validated_as_a_write_would_be() {
    let app = TestApp::new().await;
    // A secret left out keeps the stored one; given empty, it is cleared, as config/root does.
    let kept = app.root("POST", VERIFY, Some(json!({"access_key": ROOT_KEY}))).await;
    assert_eq!(kept.status, StatusCode::OK, "{:?}", kept.body);
    let cleared = refused(&app, json!({"access_key": ROOT_KEY, "secret_key": ""})).await;
    assert!(cleared.starts_with("access_key and secret_key must be given together"), "{cleared}");

    // On a mount with no config/root, an access key alone is refused before AWS is asked.
    let enabled = app.root("POST", "sys/mounts/fresh", Some(json!({"type": "aws"}))).await;
    assert_eq!(enabled.status, StatusCode::NO_CONTENT, "{:?}", enabled.body);
    app.fake.clear_calls();
    let answer = app.root("POST", "fresh/config/root/verify", Some(json!({"access_key": ROOT_KEY}))).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
    assert_eq!(
        answer.body["errors"][0],
        "access_key and secret_key must be given together (or neither, for the default credential chain)"
    );
    assert!(app.fake.calls().is_empty());
    assert_eq!(app.root("GET", "fresh/config/root", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn testing_is_granted_apart_from_writing() {
    let app = TestApp::new().await;
    let policy = |name: &str, path: &str| {
        let hcl = format!(r#"path "{path}" {{ capabilities = ["update"] }}"#);
        (name.to_string(), json!({"policy": hcl}))
    };
    for (name, body) in [policy("tester", VERIFY), policy("writer", "aws/config/root")] {
        let written = app.root("PUT", &format!("sys/policies/acl/{name}"), Some(body)).await;
        assert_eq!(written.status, StatusCode::NO_CONTENT, "{:?}", written.body);
    }
    let (tester, writer) = (app.token(&["tester"]).await, app.token(&["writer"]).await);
    let body = Some(json!({"region": "us-east-1"}));
    assert_eq!(app.call("POST", VERIFY, Some(&tester), body.clone()).await.status, StatusCode::OK);
    assert_eq!(
        app.call("POST", "aws/config/root", Some(&tester), body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.call("POST", VERIFY, Some(&writer), body.clone()).await.status, StatusCode::FORBIDDEN);
    // Only a write: a read of the path is not served.
    let read = app.root("GET", VERIFY, None).await;
    assert_eq!(read.status, StatusCode::METHOD_NOT_ALLOWED, "{:?}", read.body);
}
