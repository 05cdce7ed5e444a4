#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use super::*;
use crate::testing::TestApp;

const LOAD_BALANCER: &str = "10.0.0.2";
const STRANGER: &str = "10.0.0.9";
const CLIENT: &str = "203.0.113.7";
const OUTSIDER: &str = "198.51.100.9";

const NOT_PRESENT: &str = "missing x-forwarded-for header and configured to reject when not present";
const NOT_AUTHORIZED: &str =
    "client address not authorized for x-forwarded-for and configured to reject connection";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn rules() -> ForwardedFor {
    ForwardedFor::trusting(vec![Cidr::parse("10.0.0.0/30").unwrap()])
}

fn lenient() -> ForwardedFor {
    ForwardedFor { reject_not_authorized: false, reject_not_present: false, ..rules() }
}

fn headers(values: &[&str]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for v in values {
        map.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
    }
    map
}

fn from(rules: &ForwardedFor, peer: &str, values: &[&str]) -> Result<Option<IpAddr>, String> {
    rules.client_address(Some(ip(peer)), &headers(values))
}

#[test]
fn a_trusted_proxy_names_the_client() {
    assert_eq!(from(&rules(), LOAD_BALANCER, &[CLIENT]), Ok(Some(ip(CLIENT))));
    assert_eq!(from(&lenient(), LOAD_BALANCER, &[CLIENT]), Ok(Some(ip(CLIENT))));
    // The peer as a dual-stack listener reports it is the same address.
    assert_eq!(from(&rules(), "::ffff:10.0.0.2", &[CLIENT]), Ok(Some(ip(CLIENT))));
}

#[test]
fn a_header_from_anyone_else_is_refused_or_ignored() {
    assert_eq!(from(&rules(), STRANGER, &[CLIENT]), Err(NOT_AUTHORIZED.into()));
    assert_eq!(from(&lenient(), STRANGER, &[CLIENT]), Ok(None), "ignored: the connection's address stands");
}

#[test]
fn a_missing_header_is_refused_or_the_connection_stands() {
    // Checked before the peer, as Vault does: a direct client is refused too.
    assert_eq!(from(&rules(), LOAD_BALANCER, &[]), Err(NOT_PRESENT.into()));
    assert_eq!(from(&rules(), CLIENT, &[]), Err(NOT_PRESENT.into()));
    assert_eq!(from(&lenient(), CLIENT, &[]), Ok(None));
    // Unknown connection address: the not-present rule decides.
    assert!(
        rules().client_address(None, &headers(&[CLIENT])).unwrap_err().starts_with("error parsing client")
    );
    assert_eq!(lenient().client_address(None, &headers(&[CLIENT])), Ok(None));
}

#[test]
fn hops_are_skipped_from_the_right_across_header_lines() {
    let skip = |n| ForwardedFor { hop_skips: n, ..rules() };
    let chain = [CLIENT, "192.0.2.1, 10.0.0.1"];
    assert_eq!(from(&skip(0), LOAD_BALANCER, &chain), Ok(Some(ip("10.0.0.1"))));
    assert_eq!(from(&skip(1), LOAD_BALANCER, &chain), Ok(Some(ip("192.0.2.1"))));
    assert_eq!(from(&skip(2), LOAD_BALANCER, &chain), Ok(Some(ip(CLIENT))));
    assert_eq!(
        from(&skip(3), LOAD_BALANCER, &chain),
        Err("malformed x-forwarded-for configuration or request, hops to skip (3) would skip before \
             earliest chain link (chain length 3)"
            .into())
    );
}

#[test]
fn the_chosen_entry_must_be_an_address() {
    assert_eq!(from(&rules(), LOAD_BALANCER, &["192.0.2.7:5071"]), Ok(Some(ip("192.0.2.7"))));
    assert_eq!(from(&rules(), LOAD_BALANCER, &["[2001:db8::7]:5071"]), Ok(Some(ip("2001:db8::7"))));
    assert_eq!(from(&rules(), LOAD_BALANCER, &["[2001:db8::7]"]), Ok(Some(ip("2001:db8::7"))));
    for bad in ["unknown", "203.0.113.7, ", "_hidden", "203.0.113.300"] {
        let refused = from(&rules(), LOAD_BALANCER, &[bad]).unwrap_err();
        assert!(refused.starts_with("malformed x-forwarded-for header"), "{bad:?}: {refused}");
    }
    let mut raw = HeaderMap::new();
    raw.insert("x-forwarded-for", HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap());
    assert!(rules().client_address(Some(ip(LOAD_BALANCER)), &raw).is_err());
}

/// A token bound to the clients' network, made before the rules are in place (the setup calls
/// come from no address at all).
async fn bound_token(app: &TestApp) -> String {
    let role = json!({"token_bound_cidrs": "203.0.113.0/24", "allowed_policies": ["default"]});
    assert_eq!(app.root("POST", "auth/token/roles/lb", Some(role)).await.status, StatusCode::NO_CONTENT);
    let made = app.root("POST", "auth/token/create/lb", Some(json!({}))).await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    made.body["auth"]["client_token"].as_str().unwrap().to_string()
}

async fn lookup(
    app: &TestApp,
    peer: &str,
    token: &str,
    forwarded: &[&str],
) -> (StatusCode, serde_json::Value) {
    let headers: Vec<(&str, &str)> = forwarded.iter().map(|v| ("x-forwarded-for", *v)).collect();
    let answer = app
        .call_from_with(Some(ip(peer)), "GET", "auth/token/lookup-self", Some(token), None, &headers)
        .await;
    (answer.status, answer.body)
}

#[tokio::test]
async fn bound_tokens_see_the_client_behind_a_trusted_proxy_only() {
    let app = TestApp::new().await;
    let token = bound_token(&app).await;
    let app = app.behind_proxies(rules());

    assert_eq!(lookup(&app, LOAD_BALANCER, &token, &[CLIENT]).await.0, StatusCode::OK);
    assert_eq!(lookup(&app, LOAD_BALANCER, &token, &[OUTSIDER]).await.0, StatusCode::FORBIDDEN);
    // A stranger claiming to forward for a client inside the block: refused outright.
    let (status, body) = lookup(&app, STRANGER, &token, &[CLIENT]).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"errors": [NOT_AUTHORIZED]})));
    // The client itself, straight to keymint: no header, refused.
    let (status, body) = lookup(&app, CLIENT, &token, &[]).await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, json!({"errors": [NOT_PRESENT]})));
    // The probes answer whatever the header says.
    for path in ["sys/live", "sys/ready"] {
        let forwarded = [("x-forwarded-for", CLIENT)];
        let probe = app.call_from_with(Some(ip(STRANGER)), "GET", path, None, None, &forwarded).await;
        assert_eq!(probe.status, StatusCode::OK, "{path}: {:?}", probe.body);
        assert_eq!(
            app.call_from_with(Some(ip(CLIENT)), "GET", path, None, None, &[]).await.status,
            StatusCode::OK
        );
    }
    // Vault's sys/health is held to the rules, as in Vault.
    let health = app.call_from_with(Some(ip(CLIENT)), "GET", "sys/health", None, None, &[]).await;
    assert_eq!(health.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_the_reject_options_an_untrusted_header_is_ignored() {
    let app = TestApp::new().await;
    let token = bound_token(&app).await;
    let app = app.behind_proxies(lenient());

    assert_eq!(lookup(&app, LOAD_BALANCER, &token, &[CLIENT]).await.0, StatusCode::OK);
    // The stranger's header is not believed: its own address is outside the block.
    assert_eq!(lookup(&app, STRANGER, &token, &[CLIENT]).await.0, StatusCode::FORBIDDEN);
    // A client inside the block, straight to keymint: its connection's address stands.
    assert_eq!(lookup(&app, CLIENT, &token, &[]).await.0, StatusCode::OK);
    assert_eq!(lookup(&app, OUTSIDER, &token, &[]).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn hop_skips_pass_over_proxies_of_ones_own() {
    let app = TestApp::new().await;
    let token = bound_token(&app).await;
    // An edge proxy appends the client, an inner one appends the edge: skip one.
    let app = app.behind_proxies(ForwardedFor { hop_skips: 1, ..rules() });
    assert_eq!(lookup(&app, LOAD_BALANCER, &token, &["203.0.113.7, 10.0.0.1"]).await.0, StatusCode::OK);
    // Whatever the client itself wrote on the left is never read.
    assert_eq!(
        lookup(&app, LOAD_BALANCER, &token, &["203.0.113.7, 198.51.100.9, 10.0.0.1"]).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = lookup(&app, LOAD_BALANCER, &token, &[CLIENT]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn approle_logins_and_the_audit_log_see_the_client() {
    let app = TestApp::new().await;
    let log = std::env::temp_dir().join(format!("keymint-forwarded-{}.log", uuid::Uuid::new_v4()));
    let device = json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}});
    assert_eq!(app.root("PUT", "sys/audit/file", Some(device)).await.status, StatusCode::NO_CONTENT);
    let enabled = app.root("POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await;
    assert_eq!(enabled.status, StatusCode::NO_CONTENT, "{:?}", enabled.body);
    let role = json!({"secret_id_bound_cidrs": ["203.0.113.0/24"], "token_policies": ["default"]});
    assert_eq!(app.root("POST", "auth/approle/role/ci", Some(role)).await.status, StatusCode::NO_CONTENT);
    let role_id = app.root("GET", "auth/approle/role/ci/role-id", None).await.body["data"]["role_id"].clone();
    let secret = app.root("POST", "auth/approle/role/ci/secret-id", Some(json!({}))).await;
    let login = json!({"role_id": role_id, "secret_id": secret.body["data"]["secret_id"]});
    let app = app.behind_proxies(lenient());

    let forwarded = [("x-forwarded-for", CLIENT)];
    let refused = app
        .call_from_with(
            Some(ip(STRANGER)),
            "POST",
            "auth/approle/login",
            None,
            Some(login.clone()),
            &forwarded,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{:?}", refused.body);
    assert!(refused.body["errors"][0].as_str().unwrap().contains(STRANGER), "{:?}", refused.body);
    let admitted = app
        .call_from_with(Some(ip(LOAD_BALANCER)), "POST", "auth/approle/login", None, Some(login), &forwarded)
        .await;
    assert_eq!(admitted.status, StatusCode::OK, "{:?}", admitted.body);

    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let records: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let logins: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "request" && r["request"]["path"] == "auth/approle/login")
        .collect();
    assert_eq!(logins.len(), 2, "{text}");
    // The stranger's header was not believed; the load balancer's was.
    assert_eq!(logins[0]["request"]["remote_address"], STRANGER);
    assert_eq!(logins[1]["request"]["remote_address"], CLIENT);
}
