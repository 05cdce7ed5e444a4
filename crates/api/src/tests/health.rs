//! Liveness and readiness when the database is gone, and the request time limit.

use std::time::Duration;

use axum::http::StatusCode;
use keymint_store::revocation::{Pause, pause};
use serde_json::json;

use crate::testing::TestApp;

fn request_id(body: &serde_json::Value) -> String {
    let id = body["request_id"].as_str().unwrap_or_else(|| panic!("no request_id in {body}"));
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    id.to_string()
}

#[tokio::test]
async fn liveness_does_not_ask_the_database_and_readiness_does() {
    let app = TestApp::new().await;
    let live = app.call("GET", "sys/live", None, None).await;
    assert_eq!((live.status, live.body), (StatusCode::OK, json!({"alive": true})));
    let ready = app.call("GET", "sys/ready", None, None).await;
    assert_eq!((ready.status, ready.body), (StatusCode::OK, json!({"ready": true})));

    // No database at all from here on.
    app.state.store().close().await;
    for method in ["GET", "HEAD"] {
        assert_eq!(app.call(method, "sys/live", None, None).await.status, StatusCode::OK, "{method}");
        assert_eq!(app.call(method, "sys/ready", None, None).await.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    let ready = app.call("GET", "sys/ready", None, None).await;
    assert_eq!(ready.body["errors"], json!(["not ready: the database does not answer"]));
    request_id(&ready.body);
    // Vault's sys/health keeps its meaning: 503 when the server cannot serve.
    assert_eq!(app.call("GET", "sys/health", None, None).await.status, StatusCode::SERVICE_UNAVAILABLE);
}

/// A request that needs the database while it is gone is told so with a 503 (Vault's error
/// shape, with its request id), never a 500: a client or balancer may send it again.
#[tokio::test]
async fn requests_get_a_503_while_the_database_is_gone() {
    let app = TestApp::new().await;
    let role = json!({"credential_type": "iam_user"});
    assert_eq!(app.root("POST", "aws/roles/gone", Some(role)).await.status, StatusCode::NO_CONTENT);

    app.state.store().close().await;
    let revoke = json!({"lease_id": "aws/creds/gone/abc"});
    for (method, path, body) in [
        ("GET", "aws/creds/gone", None),
        ("PUT", "sys/leases/revoke", Some(revoke)),
        ("GET", "auth/token/lookup-self", None),
    ] {
        let answer = app.root(method, path, body).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}: {:?}", answer.body);
        assert_eq!(answer.body["errors"], json!(["storage is unavailable: the database does not answer"]));
        request_id(&answer.body);
    }
}

#[tokio::test]
async fn a_request_over_its_time_limit_is_cut_in_vaults_error_shape() {
    let mut app = TestApp::new().await;
    app.state = app.state.with_request_timeout(Duration::from_millis(300));
    // Another writer holds SQLite's write lock: a token creation waits for it (busy_timeout is
    // 10 s), far past the request's limit.
    let mut holder = app.state.store().begin().await.unwrap();
    pause(&mut *holder, &Pause { since: 0, reason: "holding the write lock".into() }).await.unwrap();

    let started = std::time::Instant::now();
    let cut = app.root("POST", "auth/token/create", Some(json!({"policies": ["default"]}))).await;
    assert!(started.elapsed() < Duration::from_secs(5), "cut after {:?}", started.elapsed());
    assert_eq!(cut.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", cut.body);
    assert_eq!(cut.body["errors"], json!(["1 error occurred:\n\t* context deadline exceeded\n\n"]));
    request_id(&cut.body);

    drop(holder);
    let made = app.root("POST", "auth/token/create", Some(json!({"policies": ["default"]}))).await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
}

#[tokio::test]
async fn a_wait_for_a_usable_key_ends_within_the_request_limit() {
    let mut app = TestApp::new().await;
    app.state = app.state.with_request_timeout(Duration::from_secs(4));
    let role = json!({"credential_type": "iam_user", "wait_until_usable": true, "usable_timeout": 60});
    assert_eq!(app.root("POST", "aws/roles/slow-key", Some(role)).await.status, StatusCode::NO_CONTENT);
    // STS never takes the new key: the wait would last the role's full minute. (The first
    // call is keymint choosing its STS endpoint with the root keys; every later one probes.)
    for nth in 2..=40 {
        let never = keymint_engine::fake_aws::Failure::Refused(403, "InvalidClientTokenId");
        app.fake.fail_nth("GetCallerIdentity", nth, never);
    }

    let started = std::time::Instant::now();
    let minted = app.root("GET", "aws/creds/slow-key", None).await;
    assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}", started.elapsed());
    // The keys are answered, with a warning, not lost to a 504.
    assert_eq!(minted.status, StatusCode::OK, "{:?}", minted.body);
    assert!(minted.body["data"]["access_key"].is_string());
    let warnings = minted.body["warnings"].to_string();
    assert!(warnings.contains("did not accept the new access key"), "{warnings}");
}
