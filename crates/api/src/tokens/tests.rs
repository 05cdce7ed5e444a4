//! Token expiry in process, on held tokio time: a token past its TTL is refused at once and
//! then revoked, with its leases made due, by `run_token_expiry`; no real waiting for the TTL.

use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use keymint_common::clock::ManualTime;
use keymint_store::testing::TestDb;
use keymint_store::{KeySource, leases, tokens};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::AppState;

async fn call(state: &AppState, method: &str, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("x-vault-token", token)
        .header("content-type", "application/json")
        .body(if body.is_null() { Body::empty() } else { Body::from(body.to_string()) })
        .unwrap();
    let response = crate::router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_expired_token_is_refused_then_revoked_with_its_leases() {
    let time = ManualTime::start();
    let db = TestDb::new(false).await;
    let store = db.open(KeySource::DevStored).await.unwrap().with_clock(time.clock());
    let state = AppState::new(store.clone());
    keymint_auth::ensure_root_token(&store, "root", state.now_ms()).await.unwrap();

    let (status, created) =
        call(&state, "POST", "/v1/auth/token/create", "root", json!({"ttl": "60s"})).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    let accessor = created["auth"]["accessor"].as_str().unwrap().to_string();
    assert_eq!(created["auth"]["lease_duration"], 60);
    let lease = leases::LeaseRow {
        id: "aws/creds/r/of-the-token".into(),
        mount_id: "m".into(),
        credential_type: "iam_user".into(),
        issue_time: state.now_ms(),
        expire_time: state.now_ms() + 3_600_000,
        internal: "{}".into(),
        state: leases::STATE_ACTIVE.into(),
        token_accessor: Some(accessor.clone()),
        ..Default::default()
    };
    leases::insert(store.pool(), &lease).await.unwrap();

    // A second before its expiry the token still works, with a second left.
    time.advance(Duration::from_secs(59)).await;
    let (status, looked) = call(&state, "GET", "/v1/auth/token/lookup-self", &token, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{looked}");
    assert_eq!(looked["data"]["ttl"], 1);

    // Past it, the token is refused before the expiry task has even looked.
    time.advance(Duration::from_secs(2)).await;
    let (status, refused) = call(&state, "GET", "/v1/auth/token/lookup-self", &token, Value::Null).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(tokens::get_by_accessor(store.pool(), &accessor).await.unwrap().is_some());

    let cancel = CancellationToken::new();
    let task = tokio::spawn(super::run_token_expiry(state.clone(), cancel.clone()));
    time.until("the expired token was revoked", Duration::from_secs(10), || async {
        tokens::get_by_accessor(store.pool(), &accessor).await.unwrap().is_none()
    })
    .await;
    let lease = leases::get(store.pool(), &lease.id).await.unwrap().unwrap();
    assert!(lease.expire_time <= state.now_ms(), "the token's lease was not made due: {lease:?}");
    // The root token, which never expires, is untouched.
    let (status, _) = call(&state, "GET", "/v1/auth/token/lookup-self", "root", Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    cancel.cancel();
    task.await.unwrap();
}
