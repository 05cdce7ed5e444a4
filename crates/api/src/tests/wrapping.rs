//! Response wrapping through the HTTP API: `X-Vault-Wrap-TTL` on any reply with a body, and
//! `sys/wrapping/{unwrap,lookup,rewrap,wrap}` as `vault unwrap` and hvac call them.

use std::time::Duration;

use axum::http::StatusCode;
use keymint_common::clock::ManualTime;
use serde_json::{Value, json};

use crate::testing::{Answer, ROOT_TOKEN, TestApp};

const INVALID: &str = "wrapping token is not valid or does not exist";
const POLICY_DOC: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

async fn wrapped(app: &TestApp, method: &str, path: &str, body: Option<Value>, ttl: &str) -> Value {
    let answer = app.call_with(method, path, Some(ROOT_TOKEN), body, &[("X-Vault-Wrap-TTL", ttl)]).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["wrap_info"].clone()
}

fn token_of(wrap_info: &Value) -> String {
    wrap_info["token"].as_str().unwrap().to_string()
}

fn assert_invalid(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
    assert_eq!(answer.body, json!({"errors": [INVALID]}));
}

#[tokio::test]
async fn a_wrapped_token_is_unwrapped_once_by_its_wrapping_token() {
    let app = TestApp::new().await;
    let answer = app
        .call_with(
            "POST",
            "auth/token/create",
            Some(ROOT_TOKEN),
            Some(json!({"policies": ["default"]})),
            &[("X-Vault-Wrap-TTL", "5m")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let body = &answer.body;
    assert_eq!((&body["data"], &body["auth"], &body["lease_id"]), (&Value::Null, &Value::Null, &json!("")));
    let info = &body["wrap_info"];
    let token = token_of(info);
    assert!(token.starts_with("hvs."), "{info}");
    assert_eq!(info["ttl"], 300);
    assert_eq!(info["creation_path"], "auth/token/create");
    let wrapped_accessor = info["wrapped_accessor"].as_str().unwrap();
    assert!(!wrapped_accessor.is_empty() && info["accessor"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(chrono::DateTime::parse_from_rfc3339(info["creation_time"].as_str().unwrap()).is_ok());

    // A lookup, with the wrapping token as the client token or in the body, spends nothing.
    for _ in 0..2 {
        let lookup = app.call("POST", "sys/wrapping/lookup", Some(&token), None).await;
        assert_eq!(lookup.status, StatusCode::OK, "{:?}", lookup.body);
        assert_eq!(lookup.body["data"]["creation_path"], "auth/token/create");
        assert_eq!(lookup.body["data"]["creation_ttl"], 300);
        assert_eq!(lookup.body["data"]["creation_time"], info["creation_time"]);
    }
    let by_body = app.call("POST", "sys/wrapping/lookup", None, Some(json!({"token": token}))).await;
    assert_eq!(by_body.status, StatusCode::OK, "{:?}", by_body.body);

    // `vault unwrap` with no argument: the wrapping token is the client token, no body.
    let unwrapped = app.call("PUT", "sys/wrapping/unwrap", Some(&token), None).await;
    assert_eq!(unwrapped.status, StatusCode::OK, "{:?}", unwrapped.body);
    let auth = &unwrapped.body["auth"];
    assert_eq!(auth["accessor"], wrapped_accessor);
    assert_eq!(auth["policies"], json!(["default"]));
    assert_eq!(unwrapped.body["wrap_info"], Value::Null);
    let client_token = auth["client_token"].as_str().unwrap();
    let itself = app.call("GET", "auth/token/lookup-self", Some(client_token), None).await;
    assert_eq!(itself.status, StatusCode::OK, "the unwrapped token works: {:?}", itself.body);

    assert_invalid(&app.call("PUT", "sys/wrapping/unwrap", Some(&token), None).await);
    assert_invalid(&app.root("PUT", "sys/wrapping/unwrap", Some(json!({"token": token}))).await);
    assert_invalid(&app.call("POST", "sys/wrapping/lookup", None, Some(json!({"token": token}))).await);
    assert_eq!(keymint_store::wrapping::count(app.state.store().pool()).await.unwrap(), 0);
}

#[tokio::test]
async fn wrapped_data_is_unwrapped_once_by_a_third_party() {
    let app = TestApp::new().await;
    let data = json!({"foo": "bar", "three": 2, "nested": {"a": [1, "b"]}});
    let info = wrapped(&app, "POST", "sys/wrapping/wrap", Some(data.clone()), "60").await;
    assert_eq!(info["creation_path"], "sys/wrapping/wrap");
    assert_eq!(info["wrapped_accessor"], "");
    let token = token_of(&info);

    // hvac's `sys.unwrap(token)`: the caller's own token, the wrapping token in the body. A
    // token with only the default policy may unwrap, as in Vault.
    let plain = app.token(&["default"]).await;
    let unwrapped =
        app.call("POST", "sys/wrapping/unwrap", Some(&plain), Some(json!({"token": token}))).await;
    assert_eq!(unwrapped.status, StatusCode::OK, "{:?}", unwrapped.body);
    assert_eq!(unwrapped.body["data"], data);
    assert_invalid(
        &app.call("POST", "sys/wrapping/unwrap", Some(&plain), Some(json!({"token": token}))).await,
    );
    // The wrapping token itself is gone too.
    assert_invalid(&app.call("POST", "sys/wrapping/unwrap", Some(&token), None).await);
}

#[tokio::test]
async fn wrap_needs_a_wrap_ttl_and_bad_ones_are_refused() {
    let app = TestApp::new().await;
    let unwrapped = app.root("POST", "sys/wrapping/wrap", Some(json!({"a": "b"}))).await;
    assert_eq!(unwrapped.status, StatusCode::BAD_REQUEST);
    assert_eq!(unwrapped.body, json!({"errors": ["endpoint requires response wrapping to be used"]}));
    let headers = [("X-Vault-Wrap-TTL", "-5")];
    let negative = app.call_with("POST", "sys/wrapping/wrap", Some(ROOT_TOKEN), None, &headers).await;
    assert_eq!(negative.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        negative.body,
        json!({"errors": ["error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"]})
    );
    // A token that is not a wrapping token has nothing to unwrap.
    assert_invalid(&app.root("POST", "sys/wrapping/unwrap", None).await);
    assert_invalid(&app.root("POST", "sys/wrapping/unwrap", Some(json!({"token": ROOT_TOKEN}))).await);
    assert_invalid(&app.call("POST", "sys/wrapping/unwrap", Some("hvs.nothing"), None).await);
    // A reply with no body is not wrapped.
    let headers = [("X-Vault-Wrap-TTL", "60")];
    let policy = json!({"policy": "path \"x\" { capabilities = [\"read\"] }"});
    let written =
        app.call_with("PUT", "sys/policies/acl/x", Some(ROOT_TOKEN), Some(policy.clone()), &headers).await;
    assert_eq!(written.status, StatusCode::NO_CONTENT);
    assert_eq!(keymint_store::wrapping::count(app.state.store().pool()).await.unwrap(), 0);
    // Nor can the wrapping tokens' policy be written over.
    let over = app.root("PUT", "sys/policies/acl/response-wrapping", Some(policy)).await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST, "{:?}", over.body);
}

#[tokio::test]
async fn a_rewrap_moves_the_response_to_a_new_token() {
    let app = TestApp::new().await;
    let info = wrapped(&app, "POST", "sys/wrapping/wrap", Some(json!({"k": "v"})), "2m").await;
    let old = token_of(&info);
    let rewrapped = app.root("POST", "sys/wrapping/rewrap", Some(json!({"token": old}))).await;
    assert_eq!(rewrapped.status, StatusCode::OK, "{:?}", rewrapped.body);
    let new_info = &rewrapped.body["wrap_info"];
    let new = token_of(new_info);
    assert_ne!(new, old);
    assert_eq!((&new_info["ttl"], &new_info["creation_path"]), (&json!(120), &json!("sys/wrapping/wrap")));
    assert_invalid(&app.root("POST", "sys/wrapping/unwrap", Some(json!({"token": old}))).await);
    let unwrapped = app.root("POST", "sys/wrapping/unwrap", Some(json!({"token": new}))).await;
    assert_eq!(unwrapped.body["data"], json!({"k": "v"}), "{:?}", unwrapped.body);
}

#[tokio::test]
async fn a_wrapping_token_can_do_nothing_else() {
    let app = TestApp::new().await;
    let token = token_of(&wrapped(&app, "POST", "sys/wrapping/wrap", Some(json!({"k": "v"})), "60").await);
    let read = app.call("GET", "auth/token/lookup-self", Some(&token), None).await;
    assert_eq!(read.status, StatusCode::FORBIDDEN, "{:?}", read.body);
    let token = token_of(&wrapped(&app, "POST", "sys/wrapping/wrap", Some(json!({"k": "v"})), "60").await);
    let rewrap = app.call("POST", "sys/wrapping/rewrap", Some(&token), None).await;
    assert_eq!(rewrap.status, StatusCode::FORBIDDEN, "{:?}", rewrap.body);
    let token = token_of(&wrapped(&app, "POST", "sys/wrapping/wrap", Some(json!({"k": "v"})), "60").await);
    let renew = app.call("PUT", "auth/token/renew-self", Some(&token), None).await;
    assert_eq!(renew.status, StatusCode::FORBIDDEN, "{:?}", renew.body);
}

#[tokio::test]
async fn an_expired_wrapping_token_is_refused_and_its_response_swept() {
    let time = ManualTime::start();
    let app = TestApp::with_clock(time.clock()).await;
    let token = token_of(&wrapped(&app, "POST", "sys/wrapping/wrap", Some(json!({"k": "v"})), "60").await);
    time.advance(Duration::from_secs(61)).await;
    assert_invalid(&app.root("POST", "sys/wrapping/unwrap", Some(json!({"token": token}))).await);
    assert_invalid(&app.call("POST", "sys/wrapping/unwrap", Some(&token), None).await);
    assert_invalid(&app.call("POST", "sys/wrapping/lookup", Some(&token), None).await);
    // The token sweeper revokes the expired token, and its response goes with it.
    let pool = app.state.store().pool();
    assert_eq!(keymint_store::wrapping::count(pool).await.unwrap(), 1);
    for accessor in keymint_store::tokens::expired(pool, app.state.now_ms(), 100).await.unwrap() {
        crate::tokens::revoke_token(&app.state, &accessor, false).await.unwrap();
    }
    assert_eq!(keymint_store::wrapping::count(pool).await.unwrap(), 0);
}

#[tokio::test]
async fn aws_credentials_are_wrapped_and_never_stored_in_clear() {
    let app = TestApp::new().await;
    let role = json!({"credential_type": "iam_user", "policy_document": POLICY_DOC});
    assert_eq!(app.root("POST", "aws/roles/deploy", Some(role)).await.status, StatusCode::NO_CONTENT);
    let info = wrapped(&app, "GET", "aws/creds/deploy", None, "1m").await;
    assert_eq!(info["creation_path"], "aws/creds/deploy");

    let row = keymint_store::wrapping::get(app.state.store().pool(), info["accessor"].as_str().unwrap(), 0)
        .await
        .unwrap()
        .unwrap();
    let unwrapped = app.call("POST", "sys/wrapping/unwrap", Some(&token_of(&info)), None).await;
    assert_eq!(unwrapped.status, StatusCode::OK, "{:?}", unwrapped.body);
    let body = &unwrapped.body;
    assert!(body["lease_id"].as_str().unwrap().starts_with("aws/creds/deploy/"), "{body}");
    assert_eq!(body["mount_type"], "aws");
    let (key, secret) =
        (body["data"]["access_key"].as_str().unwrap(), body["data"]["secret_key"].as_str().unwrap());
    assert_eq!(app.fake.secret_of(key).as_deref(), Some(secret));
    // What the database held was sealed: neither the key id nor the secret is in it.
    let stored = String::from_utf8_lossy(&row.response);
    assert!(!stored.contains(key) && !stored.contains(secret), "{stored}");
}
