//! Auth mounts and AppRole through the HTTP API, in process ([`crate::testing::TestApp`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use axum::http::StatusCode;
use keymint_common::clock::ManualTime;
use serde_json::{Value, json};

use crate::testing::{ROOT_TOKEN, TestApp};

async fn enabled(app: &TestApp, path: &str, kind: &str) {
    let on = app.root("POST", &format!("sys/auth/{path}"), Some(json!({"type": kind}))).await;
    assert_eq!(on.status, StatusCode::NO_CONTENT, "{:?}", on.body);
}

/// hvac's `create_or_update_approle`: lists comma-joined, and a field Vault does not know.
async fn approle_role(app: &TestApp, name: &str, extra: Value) {
    let mut body = json!({
        "token_policies": "ci,deploy", "token_ttl": "10m", "token_max_ttl": "1h",
        "bind_secret_id": true, "secret_id_num_uses": 0, "secret_id_ttl": 0,
        "enable_local_secret_ids": false,
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let written = app.root("POST", &format!("auth/approle/role/{name}"), Some(body)).await;
    assert!(written.status.is_success(), "{:?}", written.body);
}

async fn role_id(app: &TestApp, name: &str) -> String {
    let read = app.root("GET", &format!("auth/approle/role/{name}/role-id"), None).await;
    read.body["data"]["role_id"].as_str().unwrap().to_string()
}

async fn secret_id(app: &TestApp, name: &str, body: Value) -> Value {
    let made = app.root("POST", &format!("auth/approle/role/{name}/secret-id"), Some(body)).await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    made.body["data"].clone()
}

async fn login(app: &TestApp, role_id: &str, secret_id: &str) -> crate::testing::Answer {
    let body = json!({"role_id": role_id, "secret_id": secret_id});
    app.call("POST", "auth/approle/login", None, Some(body)).await
}

fn errors(answer: &crate::testing::Answer) -> Vec<String> {
    serde_json::from_value(answer.body["errors"].clone()).unwrap_or_default()
}

#[tokio::test]
async fn auth_methods_are_mounted_listed_and_tuned_like_vaults() {
    let app = TestApp::new().await;
    // `vault auth enable approle`'s whole body.
    let body = json!({"type": "approle", "description": "", "config": {"options": null,
        "default_lease_ttl": "0s", "max_lease_ttl": "0s", "force_no_cache": false},
        "local": false, "seal_wrap": false, "external_entropy_access": false, "options": null});
    assert_eq!(app.root("POST", "sys/auth/approle", Some(body)).await.status, StatusCode::NO_CONTENT);
    enabled(&app, "gitlab", "jwt").await;
    enabled(&app, "jwt", "jwt").await;

    let listed = app.root("GET", "sys/auth", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    for key in ["approle/", "gitlab/", "jwt/", "token/"] {
        assert!(listed.body["data"].get(key).is_some(), "{key} under data: {:?}", listed.body);
        assert!(listed.body.get(key).is_some(), "{key} at the top level (hvac reads it there)");
    }
    assert_eq!(listed.body["data"]["gitlab/"]["type"], "jwt");
    assert!(listed.body["data"]["approle/"]["accessor"].as_str().unwrap().starts_with("auth_approle_"));
    // Auth methods are no secrets engines.
    let mounts = app.root("GET", "sys/mounts", None).await;
    assert!(mounts.body["data"].get("auth/approle/").is_none(), "{:?}", mounts.body);

    let again = app.root("POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await;
    assert_eq!(
        (again.status, errors(&again)),
        (StatusCode::BAD_REQUEST, vec!["path is already in use at approle/".to_string()])
    );
    let token = app.root("POST", "sys/auth/tok", Some(json!({"type": "token"}))).await;
    assert_eq!(token.status, StatusCode::BAD_REQUEST);
    let unknown = app.root("POST", "sys/auth/x", Some(json!({"type": "ldap"}))).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // `vault auth tune` goes through sys/mounts; hvac through sys/auth.
    let tuned = app
        .root(
            "POST",
            "sys/mounts/auth/approle/tune",
            Some(json!({"default_lease_ttl": "72h0m0s", "max_lease_ttl": ""})),
        )
        .await;
    assert_eq!(tuned.status, StatusCode::NO_CONTENT, "{:?}", tuned.body);
    let read = app.root("GET", "sys/auth/approle/tune", None).await;
    assert_eq!(read.body["data"]["default_lease_ttl"], 259_200);
    assert_eq!(read.body["data"]["token_type"], "default-service");
    let one = app.root("GET", "sys/auth/approle", None).await;
    assert_eq!(one.body["data"]["config"]["default_lease_ttl"], 259_200);

    assert_eq!(app.root("DELETE", "sys/auth/gitlab", None).await.status, StatusCode::NO_CONTENT);
    assert!(app.root("GET", "sys/auth", None).await.body["data"].get("gitlab/").is_none());
}

#[tokio::test]
async fn an_approle_login_issues_a_token_of_the_role() {
    let app = TestApp::new().await;
    enabled(&app, "approle", "approle").await;
    approle_role(&app, "ci", json!({})).await;
    let read = app.root("GET", "auth/approle/role/ci", None).await;
    assert_eq!(read.body["data"]["token_policies"], json!(["ci", "deploy"]));
    assert_eq!(read.body["data"]["token_ttl"], 600);
    assert_eq!(read.body["data"]["bind_secret_id"], true);
    assert_eq!(read.body["data"]["token_type"], "default");
    let rid = role_id(&app, "ci").await;
    let sid = secret_id(&app, "ci", json!({"metadata": "{\"env\": \"prod\"}"})).await;
    assert_eq!(sid["secret_id_num_uses"], 0);

    let logged = login(&app, &rid, sid["secret_id"].as_str().unwrap()).await;
    assert_eq!(logged.status, StatusCode::OK, "{:?}", logged.body);
    let auth = &logged.body["auth"];
    assert_eq!(auth["policies"], json!(["ci", "default", "deploy"]));
    assert_eq!(auth["metadata"], json!({"env": "prod", "role_name": "ci"}));
    assert_eq!(auth["lease_duration"], 600);
    assert_eq!((auth["renewable"].clone(), auth["orphan"].clone()), (json!(true), json!(true)));
    assert_eq!(logged.body["mount_type"], "approle");

    let token = auth["client_token"].as_str().unwrap();
    let me = app.call("GET", "auth/token/lookup-self", Some(token), None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["data"]["display_name"], "approle");
    assert_eq!(me.body["data"]["path"], "auth/approle/login");
    // Renewal stays within the role's max TTL.
    let renewed =
        app.call("POST", "auth/token/renew-self", Some(token), Some(json!({"increment": "2h"}))).await;
    assert_eq!(renewed.status, StatusCode::OK, "{:?}", renewed.body);
    assert!(renewed.body["auth"]["lease_duration"].as_i64().unwrap() <= 3600);

    // The secret id itself is nowhere in the database: only its keyed hash.
    let mount =
        keymint_store::mounts::get_by_path(app.state.store().pool(), "auth/approle/").await.unwrap().unwrap();
    let accessor = sid["secret_id_accessor"].as_str().unwrap();
    let row =
        keymint_store::auth_methods::secret_id_by_accessor(app.state.store().pool(), &mount.id, accessor)
            .await
            .unwrap()
            .unwrap();
    let secret = sid["secret_id"].as_str().unwrap();
    assert!(!row.hash.contains(secret) && !row.body.contains(secret), "{row:?}");
}

#[tokio::test]
async fn refused_logins_say_why_and_make_no_token() {
    let app = TestApp::new().await;
    enabled(&app, "approle", "approle").await;
    approle_role(&app, "ci", json!({"secret_id_bound_cidrs": "10.0.0.0/8"})).await;
    let rid = role_id(&app, "ci").await;
    let tokens_before = keymint_store::tokens::count(app.state.store().pool()).await.unwrap();
    let refused = |answer: crate::testing::Answer, text: &str| {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
        assert!(errors(&answer)[0].contains(text), "{:?} lacks {text:?}", answer.body);
    };

    refused(
        app.call("POST", "auth/approle/login", None, Some(json!({"secret_id": "x"}))).await,
        "missing role_id",
    );
    refused(login(&app, "no-such-role-id", "x").await, "invalid role or secret ID");
    refused(
        app.call("POST", "auth/approle/login", None, Some(json!({"role_id": rid, "secret_id": null}))).await,
        "missing secret_id",
    );
    refused(login(&app, &rid, "not-a-secret-id").await, "invalid role or secret ID");

    // A single-use secret id: spent by the first login, from an address inside the role's CIDRs.
    let once = secret_id(&app, "ci", json!({"num_uses": 1})).await;
    let once = once["secret_id"].as_str().unwrap();
    let outside: IpAddr = "192.0.2.7".parse().unwrap();
    let inside: IpAddr = "10.1.2.3".parse().unwrap();
    let body = json!({"role_id": rid, "secret_id": once});
    refused(
        app.call_from(Some(outside), "POST", "auth/approle/login", None, Some(body.clone())).await,
        "source address \"192.0.2.7\" unauthorized by CIDR restrictions on the role",
    );
    let first = app.call_from(Some(inside), "POST", "auth/approle/login", None, Some(body.clone())).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    refused(
        app.call_from(Some(inside), "POST", "auth/approle/login", None, Some(body)).await,
        "invalid role or secret ID",
    );

    // A secret id bound to its own CIDRs, and a destroyed one.
    let bound = secret_id(&app, "ci", json!({"cidr_list": "10.9.0.0/16"})).await;
    let body = json!({"role_id": rid, "secret_id": bound["secret_id"]});
    refused(
        app.call_from(Some(inside), "POST", "auth/approle/login", None, Some(body)).await,
        "unauthorized through CIDR restrictions on the secret ID",
    );
    let doomed = secret_id(&app, "ci", json!({})).await;
    let destroyed = app
        .root(
            "POST",
            "auth/approle/role/ci/secret-id/destroy",
            Some(json!({"secret_id": doomed["secret_id"]})),
        )
        .await;
    assert_eq!(destroyed.status, StatusCode::NO_CONTENT);
    let body = json!({"role_id": rid, "secret_id": doomed["secret_id"]});
    refused(
        app.call_from(Some(inside), "POST", "auth/approle/login", None, Some(body)).await,
        "invalid role or secret ID",
    );

    let after = keymint_store::tokens::count(app.state.store().pool()).await.unwrap();
    assert_eq!(after, tokens_before + 1, "only the one accepted login made a token");
}

#[tokio::test]
async fn a_secret_id_past_its_ttl_is_refused_before_any_tidy() {
    let time = ManualTime::start();
    let app = TestApp::with_clock(time.clock()).await;
    enabled(&app, "approle", "approle").await;
    approle_role(&app, "ci", json!({"secret_id_ttl": "10m"})).await;
    let rid = role_id(&app, "ci").await;
    let longer = app.root("POST", "auth/approle/role/ci/secret-id", Some(json!({"ttl": "1h"}))).await;
    assert_eq!(errors(&longer), ["ttl cannot be longer than the role's secret_id_ttl"]);
    let sid = secret_id(&app, "ci", json!({"ttl": "5m"})).await;
    assert_eq!(sid["secret_id_ttl"], 300);
    let sid = sid["secret_id"].as_str().unwrap().to_string();
    assert_eq!(login(&app, &rid, &sid).await.status, StatusCode::OK);
    time.advance(Duration::from_secs(301)).await;
    let late = login(&app, &rid, &sid).await;
    assert_eq!(
        (late.status, errors(&late)),
        (StatusCode::BAD_REQUEST, vec!["invalid role or secret ID".to_string()])
    );
}

#[tokio::test]
async fn secret_ids_are_looked_up_listed_and_destroyed_by_accessor() {
    let app = TestApp::new().await;
    enabled(&app, "approle", "approle").await;
    approle_role(&app, "ci", json!({})).await;
    approle_role(&app, "other", json!({})).await;
    let sid = secret_id(&app, "ci", json!({"metadata": "{\"team\": \"a\"}", "num_uses": 3})).await;
    let accessor = sid["secret_id_accessor"].as_str().unwrap();

    let listed = app.root("LIST", "auth/approle/role/ci/secret-id", None).await;
    assert_eq!(listed.body["data"]["keys"], json!([accessor]));
    let found = app
        .root("POST", "auth/approle/role/ci/secret-id/lookup", Some(json!({"secret_id": sid["secret_id"]})))
        .await;
    assert_eq!(found.body["data"]["secret_id_accessor"], accessor);
    assert_eq!(found.body["data"]["secret_id_num_uses"], 3);
    assert_eq!(found.body["data"]["metadata"], json!({"team": "a"}));
    assert_eq!(found.body["data"]["expiration_time"], "0001-01-01T00:00:00Z");
    let missing =
        app.root("POST", "auth/approle/role/ci/secret-id/lookup", Some(json!({"secret_id": "nope"}))).await;
    assert_eq!(missing.status, StatusCode::NO_CONTENT);
    let by_accessor = app
        .root(
            "POST",
            "auth/approle/role/ci/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(by_accessor.body["data"]["secret_id_num_uses"], 3);
    let unknown = app
        .root(
            "POST",
            "auth/approle/role/ci/secret-id-accessor/lookup",
            Some(json!({"secret_id_accessor": "x"})),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.body["data"]["error"].as_str().unwrap().starts_with("failed to find accessor entry"));

    let wrong_role = app
        .root(
            "POST",
            "auth/approle/role/other/secret-id-accessor/destroy",
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(wrong_role.status, StatusCode::FORBIDDEN);
    let destroyed = app
        .root(
            "POST",
            "auth/approle/role/ci/secret-id-accessor/destroy",
            Some(json!({"secret_id_accessor": accessor})),
        )
        .await;
    assert_eq!(destroyed.status, StatusCode::NO_CONTENT);
    assert_eq!(app.root("LIST", "auth/approle/role/ci/secret-id", None).await.status, StatusCode::NOT_FOUND);

    let custom = app
        .root("POST", "auth/approle/role/ci/custom-secret-id", Some(json!({"secret_id": "my-own-secret-id"})))
        .await;
    assert_eq!(custom.status, StatusCode::OK);
    let twice = app
        .root("POST", "auth/approle/role/ci/custom-secret-id", Some(json!({"secret_id": "my-own-secret-id"})))
        .await;
    assert_eq!(twice.status, StatusCode::INTERNAL_SERVER_ERROR);
    let rid = role_id(&app, "ci").await;
    assert_eq!(login(&app, &rid, "my-own-secret-id").await.status, StatusCode::OK);

    let tidy = app.root("POST", "auth/approle/tidy/secret-id", None).await;
    assert_eq!(tidy.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn roles_follow_vaults_rules() {
    let app = TestApp::new().await;
    enabled(&app, "approle", "approle").await;
    let bare = app.root("POST", "auth/approle/role/open", Some(json!({"bind_secret_id": false}))).await;
    assert_eq!(bare.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(errors(&bare)[0].contains("at least one constraint should be enabled on the role"));
    // Without a secret id, but bound to CIDRs: the role id alone logs in, from inside them.
    let cidr =
        json!({"bind_secret_id": false, "secret_id_bound_cidrs": ["127.0.0.1/32"], "policies": "Ops, ops"});
    assert!(app.root("POST", "auth/approle/role/open", Some(cidr)).await.status.is_success());
    let read = app.root("GET", "auth/approle/role/open", None).await;
    assert_eq!(read.body["data"]["token_policies"], json!(["ops"]));
    assert_eq!(read.body["data"]["policies"], json!(["ops"]), "a legacy name is echoed");
    let rid = role_id(&app, "open").await;
    let body = json!({"role_id": rid});
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(
        app.call_from(Some(local), "POST", "auth/approle/login", None, Some(body)).await.status,
        StatusCode::OK
    );

    // Custom role ids are unique per mount.
    approle_role(&app, "ci", json!({"role_id": "fixed-id"})).await;
    assert_eq!(role_id(&app, "ci").await, "fixed-id");
    let taken =
        app.root("POST", "auth/approle/role/open/role-id", Some(json!({"role_id": "fixed-id"}))).await;
    assert_eq!(taken.status, StatusCode::INTERNAL_SERVER_ERROR);
    // One-field views.
    let ttl = app.root("GET", "auth/approle/role/ci/token-ttl", None).await;
    assert_eq!(ttl.body["data"], json!({"token_ttl": 600}));
    assert_eq!(
        app.root("POST", "auth/approle/role/ci/token-ttl", Some(json!({"token_ttl": 60}))).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.root("GET", "auth/approle/role/ci", None).await.body["data"]["token_ttl"], 60);
    assert_eq!(
        app.root("DELETE", "auth/approle/role/ci/token-ttl", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.root("GET", "auth/approle/role/ci", None).await.body["data"]["token_ttl"], 0);
    let bad = app.root("POST", "auth/approle/role/ci", Some(json!({"token_type": "odd"}))).await;
    assert_eq!(errors(&bad), ["invalid 'token_type' value \"odd\""]);
    let root = app.root("POST", "auth/approle/role/ci", Some(json!({"token_policies": "root"}))).await;
    assert!(root.status.is_success());
    let sid = secret_id(&app, "ci", json!({})).await;
    let refused = login(&app, "fixed-id", sid["secret_id"].as_str().unwrap()).await;
    assert_eq!(errors(&refused), ["auth methods cannot create root tokens"]);
    assert_eq!(app.root("LIST", "auth/approle/role", None).await.body["data"]["keys"], json!(["ci", "open"]));
}

#[tokio::test]
async fn disabling_a_method_revokes_its_tokens_and_a_deleted_role_stops_renewals() {
    let app = TestApp::new().await;
    enabled(&app, "approle", "approle").await;
    approle_role(&app, "ci", json!({})).await;
    approle_role(&app, "gone", json!({})).await;
    let rid = role_id(&app, "ci").await;
    let sid = secret_id(&app, "ci", json!({})).await;
    let token = login(&app, &rid, sid["secret_id"].as_str().unwrap()).await.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let gone_rid = role_id(&app, "gone").await;
    let gone_sid = secret_id(&app, "gone", json!({})).await;
    let orphaned =
        login(&app, &gone_rid, gone_sid["secret_id"].as_str().unwrap()).await.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_string();

    assert_eq!(app.root("DELETE", "auth/approle/role/gone", None).await.status, StatusCode::NO_CONTENT);
    let renew = app.call("POST", "auth/token/renew-self", Some(&orphaned), None).await;
    assert_eq!(errors(&renew), ["role \"gone\" does not exist during renewal"]);

    assert_eq!(app.call("GET", "auth/token/lookup-self", Some(&token), None).await.status, StatusCode::OK);
    assert_eq!(app.root("DELETE", "sys/auth/approle", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.call("GET", "auth/token/lookup-self", Some(&token), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("GET", "auth/token/lookup-self", Some(&orphaned), None).await.status,
        StatusCode::FORBIDDEN
    );
    // The root token is no login's.
    assert_eq!(
        app.call("GET", "auth/token/lookup-self", Some(ROOT_TOKEN), None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn writes_need_capabilities_and_login_needs_none() {
    let app = TestApp::new().await;
    enabled(&app, "approle", "approle").await;
    let reader = app
        .root(
            "PUT",
            "sys/policies/acl/reader",
            Some(json!({"policy": "path \"auth/approle/role/*\" { capabilities = [\"read\"] }"})),
        )
        .await;
    assert_eq!(reader.status, StatusCode::NO_CONTENT);
    let token = app.token(&["reader"]).await;
    let write =
        app.call("POST", "auth/approle/role/ci", Some(&token), Some(json!({"token_policies": "x"}))).await;
    assert_eq!(write.status, StatusCode::FORBIDDEN);
    let enable = app.call("POST", "sys/auth/other", Some(&token), Some(json!({"type": "approle"}))).await;
    assert_eq!(enable.status, StatusCode::FORBIDDEN);
    // A login with a bad token header still logs in: the header is not looked at.
    approle_role(&app, "ci", json!({})).await;
    let rid = role_id(&app, "ci").await;
    let sid = secret_id(&app, "ci", json!({})).await;
    let body = json!({"role_id": rid, "secret_id": sid["secret_id"]});
    let logged = app.call("PUT", "auth/approle/login", Some("not-a-token"), Some(body)).await;
    assert_eq!(logged.status, StatusCode::OK, "{:?}", logged.body);
}

#[tokio::test]
async fn a_wrapped_secret_id_is_unwrapped_once_by_the_job() {
    let app = TestApp::new().await;
    enabled(&app, "approle", "approle").await;
    approle_role(&app, "jenkins", json!({"secret_id_num_uses": 1})).await;
    let rid = role_id(&app, "jenkins").await;
    let wrapped = app
        .call_with(
            "POST",
            "auth/approle/role/jenkins/secret-id",
            Some(ROOT_TOKEN),
            None,
            &[("X-Vault-Wrap-TTL", "60s")],
        )
        .await;
    assert_eq!(wrapped.status, StatusCode::OK, "{:?}", wrapped.body);
    assert!(wrapped.body["data"].is_null(), "the secret id is not in the answer");
    let info = &wrapped.body["wrap_info"];
    assert_eq!(info["creation_path"], "auth/approle/role/jenkins/secret-id");
    let listed = app.root("LIST", "auth/approle/role/jenkins/secret-id", None).await;
    assert_eq!(
        listed.body["data"]["keys"],
        json!([info["wrapped_accessor"]]),
        "wrapped_accessor names the secret id"
    );

    let wrapping_token = info["token"].as_str().unwrap();
    let unwrapped = app.call("POST", "sys/wrapping/unwrap", Some(wrapping_token), None).await;
    assert_eq!(unwrapped.status, StatusCode::OK, "{:?}", unwrapped.body);
    let secret = unwrapped.body["data"]["secret_id"].as_str().unwrap();
    let again = app.call("POST", "sys/wrapping/unwrap", Some(wrapping_token), None).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "an unwrap happens once");
    assert_eq!(login(&app, &rid, secret).await.status, StatusCode::OK);
    assert_eq!(login(&app, &rid, secret).await.status, StatusCode::BAD_REQUEST, "single use");
}
