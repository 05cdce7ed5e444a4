//! The HTTP API in process ([`crate::testing::TestApp`]): what the route table decides (routing,
//! sudo, create versus update, warnings, unauthenticated paths) and a credential's whole life,
//! against the fake IAM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use serde_json::json;

use crate::testing::{ROOT_USER, TestApp};

const POLICY_DOC: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

async fn with_policy(app: &TestApp, name: &str, hcl: &str) -> String {
    let written = app.root("PUT", &format!("sys/policies/acl/{name}"), Some(json!({"policy": hcl}))).await;
    assert_eq!(written.status, StatusCode::NO_CONTENT, "{:?}", written.body);
    app.token(&[name]).await
}

#[tokio::test]
async fn an_iam_user_lease_is_minted_and_revoked_through_the_api() {
    let app = TestApp::new().await;
    let role = json!({"credential_type": "iam_user", "policy_document": POLICY_DOC});
    assert_eq!(app.root("POST", "aws/roles/deploy", Some(role)).await.status, StatusCode::NO_CONTENT);
    let minted = app.root("GET", "aws/creds/deploy", None).await;
    assert_eq!(minted.status, StatusCode::OK, "{:?}", minted.body);
    let lease_id = minted.body["lease_id"].as_str().unwrap().to_string();
    assert!(lease_id.starts_with("aws/creds/deploy/"), "{lease_id}");
    let users: Vec<String> = app.fake.user_names().into_iter().filter(|u| u != ROOT_USER).collect();
    assert_eq!(users.len(), 1, "{users:?}");
    let key = minted.body["data"]["access_key"].as_str().unwrap();
    assert_eq!(app.fake.secret_of(key).as_deref(), minted.body["data"]["secret_key"].as_str());

    let revoked = app.root("PUT", "sys/leases/revoke", Some(json!({"lease_id": lease_id}))).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    assert_eq!(app.fake.user_names(), [ROOT_USER]);
}

#[tokio::test]
async fn sudo_comes_from_the_route_table() {
    let app = TestApp::new().await;
    let plain =
        with_policy(&app, "plain", r#"path "sys/leases/*" { capabilities = ["update", "list"] }"#).await;
    let sudo =
        with_policy(&app, "sudo", r#"path "sys/leases/*" { capabilities = ["update", "list", "sudo"] }"#)
            .await;
    for (token, want) in [(&plain, StatusCode::FORBIDDEN), (&sudo, StatusCode::NO_CONTENT)] {
        let answer = app.call("PUT", "sys/leases/revoke-prefix/aws/creds", Some(token), None).await;
        assert_eq!(answer.status, want, "{:?}", answer.body);
    }
    // A lease lookup needs no sudo, a listing of lease ids does.
    let lookup =
        app.call("PUT", "sys/leases/lookup", Some(&plain), Some(json!({"lease_id": "aws/creds/x/y"}))).await;
    assert_eq!(lookup.status, StatusCode::BAD_REQUEST, "{:?}", lookup.body);
    let listing = app.call("LIST", "sys/leases/lookup/aws/creds/", Some(&plain), None).await;
    assert_eq!(listing.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_existence_check_tells_create_from_update() {
    let app = TestApp::new().await;
    let create_only = with_policy(
        &app,
        "creator",
        r#"path "auth/token/roles/*" { capabilities = ["create"] }
path "aws/config/root" { capabilities = ["create"] }"#,
    )
    .await;
    let role = json!({"allowed_policies": "default"});
    let first = app.call("POST", "auth/token/roles/ci", Some(&create_only), Some(role.clone())).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{:?}", first.body);
    let second = app.call("POST", "auth/token/roles/ci", Some(&create_only), Some(role)).await;
    assert_eq!(second.status, StatusCode::FORBIDDEN, "a second write is an update");
    // config/root exists already (TestApp wrote it): a write is an update.
    let root =
        app.call("POST", "aws/config/root", Some(&create_only), Some(json!({"region": "eu-west-1"}))).await;
    assert_eq!(root.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn mount_paths_warn_of_fields_their_route_does_not_declare() {
    let app = TestApp::new().await;
    let role = json!({"credential_type": "iam_user", "policy_document": POLICY_DOC, "polcy_arns": "x"});
    let written = app.root("POST", "aws/roles/deploy", Some(role)).await;
    assert_eq!(written.status, StatusCode::OK);
    assert_eq!(
        written.body["warnings"],
        json!(["Endpoint ignored these unrecognized parameters: [polcy_arns]"])
    );
    let read = app.root("GET", "aws/roles/deploy", None).await;
    assert_eq!(read.body["data"]["credential_type"], "iam_user");
    assert!(read.body["data"]["policy_arns"].is_null(), "{:?}", read.body);
    assert_eq!(read.body["data"]["policy_document"], POLICY_DOC);
}

#[tokio::test]
async fn unrouted_paths_and_operations_answer_as_vault_does() {
    let app = TestApp::new().await;
    let health = app.call("GET", "sys/health", None, None).await;
    assert_eq!((health.status, health.body["initialized"].as_bool()), (StatusCode::OK, Some(true)));
    assert_eq!(app.call("HEAD", "sys/health", None, None).await.status, StatusCode::OK);
    assert_eq!(app.call("GET", "sys/mounts", None, None).await.status, StatusCode::FORBIDDEN);

    let no_mount = app.root("GET", "nothing/here", None).await;
    assert_eq!(no_mount.status, StatusCode::NOT_FOUND);
    assert_eq!(
        no_mount.body["errors"][0],
        "1 error occurred:\n\t* no handler for route \"nothing/here\". route entry not found.\n\n"
    );
    let no_route = app.root("GET", "aws/nothing", None).await;
    assert_eq!(no_route.body, json!({"errors": ["1 error occurred:\n\t* unsupported path\n\n"]}));
    let wrong_op = app.root("DELETE", "aws/creds/deploy", None).await;
    assert_eq!(wrong_op.status, StatusCode::METHOD_NOT_ALLOWED);
}

mod config_verify;
mod health;
mod wrapping;
