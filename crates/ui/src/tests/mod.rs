//! The UI in process, over the real API ([`keymint_api::testing::TestApp`]): headers, sessions,
//! CSRF, and pages holding a token to its policies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use keymint_api::testing::{ROOT_TOKEN, TestApp};
use keymint_common::clock::ManualTime;
use serde_json::json;
use tower::ServiceExt;

use crate::{CSP, UiOptions, router};

mod aws_config;
mod capabilities;
mod forms;
mod tokens;

pub(crate) const HOST: &str = "keymint.test";

pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

pub(crate) async fn send(app: &TestApp, options: UiOptions, request: Request<Body>) -> Page {
    let response = router(app.state.clone(), options).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Page { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

pub(crate) async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Page {
    let mut request = Request::get(path).header(header::HOST, HOST);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, UiOptions::default(), request.body(Body::empty()).unwrap()).await
}

pub(crate) async fn post(
    app: &TestApp,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: &str,
) -> Page {
    let mut request = Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    if let Some(origin) = origin {
        request = request.header(header::ORIGIN, origin);
    }
    send(app, UiOptions::default(), request.body(Body::from(form.to_string())).unwrap()).await
}

pub(crate) const SAME: Option<&str> = Some("http://keymint.test");

/// Signs in with `token`; returns the cookie to send back.
pub(crate) async fn sign_in(app: &TestApp, token: &str) -> String {
    let page = post(app, "/ui/sign-in", None, SAME, &format!("method=token&token={token}")).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let set = page.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn pages_are_sent_with_strict_headers_and_sessions_in_strict_cookies() {
    let app = TestApp::new().await;
    let page = get(&app, "/ui/sign-in", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(page.body.contains(r#"<label for="token">Token</label>"#));
    assert!(!page.body.contains("style="), "no inline style");
    assert_eq!(page.body.matches("<script").count(), 1, "one script");
    assert!(page.body.contains(r#"<script src="/ui/static/ui.js" integrity="sha256-"#), "not inline");
    assert_eq!(get(&app, "/ui/", None).await.headers[header::LOCATION], "/ui/sign-in");
    assert_eq!(get(&app, "/ui/overview", None).await.headers[header::LOCATION], "/ui/sign-in");
    assert_eq!(get(&app, "/ui/nowhere", None).await.status, StatusCode::NOT_FOUND);
    let css = get(&app, "/ui/static/ui.css", None).await;
    assert!(css.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));

    let signed = post(&app, "/ui/sign-in", None, SAME, &format!("method=token&token={ROOT_TOKEN}")).await;
    let cookie = signed.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"));
    // Under TLS the cookie is Secure too.
    let request = Request::post("/ui/sign-in")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, "https://keymint.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("method=token&token={ROOT_TOKEN}")))
        .unwrap();
    let tls = send(&app, UiOptions { tls: true }, request).await;
    assert!(tls.headers[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
    let bad = post(&app, "/ui/sign-in", None, SAME, "method=token&token=hvs.not-a-token").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains(r#"class="error" role="alert""#), "{}", bad.body);
}

#[tokio::test]
async fn cross_origin_writes_are_refused() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    for origin in [Some("https://evil.example"), Some("http://keymint.test.evil.example"), None] {
        let page = post(&app, "/ui/mounts", Some(&cookie), origin, "mount_path=stolen&mount_type=aws").await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{origin:?}");
    }
    let mounts = app.root("GET", "sys/mounts", None).await;
    assert!(mounts.body["data"].get("stolen/").is_none(), "nothing was enabled");
    // The same form from the UI's own origin goes through.
    let page = post(&app, "/ui/mounts", Some(&cookie), SAME, "mount_path=mine&mount_type=aws").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Enabled aws at mine/."), "{}", page.body);
}

#[tokio::test]
async fn a_token_without_the_capability_sees_notices_not_broken_pages() {
    let app = TestApp::new().await;
    let token = app.token(&["default"]).await;
    let cookie = sign_in(&app, &token).await;
    for path in ["/ui/overview", "/ui/mounts", "/ui/aws/aws/config"] {
        let page = get(&app, path, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains("Your token may not"), "{path}: {}", page.body);
        assert!(page.body.contains(r#"<nav aria-label="Main">"#), "{path}");
    }
    let refused = post(&app, "/ui/mounts", Some(&cookie), SAME, "mount_path=x&mount_type=aws").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Your token may not enable x/."), "{}", refused.body);
}

#[tokio::test]
async fn signing_out_forgets_the_session_and_revokes_nothing() {
    let app = TestApp::new().await;
    let token = app.token(&["default"]).await;
    let cookie = sign_in(&app, &token).await;
    assert_eq!(get(&app, "/ui/overview", Some(&cookie)).await.status, StatusCode::OK);
    let out = post(&app, "/ui/sign-out", Some(&cookie), SAME, "").await;
    assert_eq!(out.headers[header::LOCATION], "/ui/sign-in");
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(get(&app, "/ui/overview", Some(&cookie)).await.headers[header::LOCATION], "/ui/sign-in");
    let alive = app.call("GET", "auth/token/lookup-self", Some(&token), None).await;
    assert_eq!(alive.status, StatusCode::OK, "the token still works");
}

#[tokio::test]
async fn a_session_ends_with_its_token() {
    let time = ManualTime::start();
    let app = TestApp::with_clock(time.clock()).await;
    let made =
        app.root("POST", "auth/token/create", Some(json!({"policies": ["default"], "ttl": "60s"}))).await;
    let token = made.body["auth"]["client_token"].as_str().unwrap().to_string();
    let cookie = sign_in(&app, &token).await;
    assert_eq!(get(&app, "/ui/overview", Some(&cookie)).await.status, StatusCode::OK);
    time.advance(Duration::from_secs(61)).await;
    assert_eq!(get(&app, "/ui/overview", Some(&cookie)).await.headers[header::LOCATION], "/ui/sign-in");
}

#[tokio::test]
async fn an_approle_sign_in_and_a_disable_warning() {
    let app = TestApp::new().await;
    assert_eq!(
        app.root("POST", "sys/auth/approle", Some(json!({"type": "approle"}))).await.status,
        StatusCode::NO_CONTENT
    );
    app.root("PUT", "sys/policies/acl/ops", Some(json!({"policy": "path \"sys/*\" { capabilities = [\"read\", \"list\", \"update\", \"delete\", \"sudo\"] }"}))).await;
    app.root("POST", "auth/approle/role/ops", Some(json!({"token_policies": "ops"}))).await;
    let rid = app.root("GET", "auth/approle/role/ops/role-id", None).await.body["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sid = app.root("POST", "auth/approle/role/ops/secret-id", None).await.body["data"]["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let form = format!("method=approle&role_id={rid}&secret_id={sid}&approle_mount=approle");
    let signed = post(&app, "/ui/sign-in", None, SAME, &form).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let cookie = signed.headers[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();

    let mounts = get(&app, "/ui/mounts", Some(&cookie)).await;
    assert!(mounts.body.contains("approle/"), "{}", mounts.body);
    let confirm = get(&app, "/ui/mounts/disable?class=secrets&path=aws/", Some(&cookie)).await;
    assert!(confirm.body.contains("first revokes its 0 lease(s)"), "{}", confirm.body);
    let refused = post(
        &app,
        "/ui/sign-in",
        None,
        SAME,
        "method=approle&role_id=nope&secret_id=x&approle_mount=approle",
    )
    .await;
    assert!(refused.body.contains("invalid role or secret ID"), "{}", refused.body);
}

#[tokio::test]
async fn test_connection_saves_nothing_and_save_stores() {
    use keymint_api::testing::ROOT_KEY;
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let before = app.root("GET", "aws/config/root", None).await.body["data"].clone();
    let form = |secret: &str, action: &str, region: &str| {
        format!(
            "access_key={ROOT_KEY}&secret_key={secret}&region={region}&iam_endpoint=http%3A%2F%2Fiam.fake.invalid\
             &sts_endpoint=http%3A%2F%2Fsts.fake.invalid&expected_account_id=&role_arn=&external_id=\
             &role_session_name=&action={action}"
        )
    };
    let wrong =
        post(&app, "/ui/aws/aws/config", Some(&cookie), SAME, &form("not-the-secret", "test", "eu-west-1"))
            .await;
    assert_eq!(wrong.status, StatusCode::OK);
    assert!(wrong.body.contains("SignatureDoesNotMatch"), "{}", wrong.body);
    let good = post(&app, "/ui/aws/aws/config", Some(&cookie), SAME, &form("", "test", "eu-west-1")).await;
    assert!(good.body.contains("Connected (nothing saved): account"), "{}", good.body);
    assert_eq!(app.root("GET", "aws/config/root", None).await.body["data"], before, "a test saves nothing");
    let saved = post(&app, "/ui/aws/aws/config", Some(&cookie), SAME, &form("", "save", "eu-west-1")).await;
    assert!(saved.body.contains("Saved. Connected: account"), "{}", saved.body);
    assert_eq!(app.root("GET", "aws/config/root", None).await.body["data"]["region"], "eu-west-1");
    assert!(!saved.body.contains("test-root-secret"), "the secret is never shown");
}

#[tokio::test]
async fn a_role_made_in_the_ui_mints_keys_that_the_ui_revokes() {
    use keymint_api::testing::ROOT_USER;
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let form = get(&app, "/ui/aws/aws/roles/new?type=iam_user", Some(&cookie)).await;
    assert!(form.body.contains(r#"<label for="permissions_boundary_arn">"#), "{}", form.body);
    assert!(!form.body.contains("role_arns"), "only the fields iam_user uses");
    let bad_json = "credential_type=iam_user&new=true&name=deploy&policy_document=%7Bnot+json";
    let refused = post(&app, "/ui/aws/aws/roles", Some(&cookie), SAME, bad_json).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("The policy document is not valid JSON"), "{}", refused.body);
    let boundary = "arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2Fboundary";
    let good = format!(
        "credential_type=iam_user&new=true&name=deploy&policy_document=&policy_arns=&iam_groups=\
         &permissions_boundary_arn={boundary}&user_path=%2Fui%2F&iam_tags=team%3Dops&default_ttl=1h&max_ttl="
    );
    let saved = post(&app, "/ui/aws/aws/roles", Some(&cookie), SAME, &good).await;
    assert!(saved.body.contains("Saved role deploy."), "{}", saved.body);
    let role = app.root("GET", "aws/roles/deploy", None).await.body["data"].clone();
    assert_eq!(role["permissions_boundary_arn"], "arn:aws:iam::123456789012:policy/boundary");
    assert_eq!(role["iam_tags"], json!({"team": "ops"}));

    let issued = post(&app, "/ui/aws/aws/creds/deploy", Some(&cookie), SAME, "ttl=").await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    let users: Vec<String> = app.fake.user_names().into_iter().filter(|u| u != ROOT_USER).collect();
    assert_eq!(users.len(), 1, "{users:?}");
    let lease = issued
        .body
        .split(r#"<code id="lease_id" class="wrap">"#)
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(lease.starts_with("aws/creds/deploy/"), "{lease}");
    assert!(issued.body.contains("export AWS_ACCESS_KEY_ID="));
    let revoked = post(&app, "/ui/leases/revoke", Some(&cookie), SAME, &format!("lease_id={lease}")).await;
    assert!(revoked.body.contains("Revoked lease"), "{}", revoked.body);
    assert_eq!(app.fake.user_names(), [ROOT_USER]);
    let listing = get(&app, "/ui/aws/aws/roles", Some(&cookie)).await;
    assert!(
        listing.body.contains("iam_user") && listing.body.contains("3600s / default"),
        "{}",
        listing.body
    );
}

#[tokio::test]
async fn leases_are_browsed_looked_up_renewed_and_revoked_by_prefix() {
    use keymint_api::testing::ROOT_USER;
    let app = TestApp::new().await;
    let role = json!({"credential_type": "iam_user", "default_ttl": "1h", "max_ttl": "3h"});
    assert_eq!(app.root("POST", "aws/roles/deploy", Some(role)).await.status, StatusCode::NO_CONTENT);
    let first =
        app.root("GET", "aws/creds/deploy", None).await.body["lease_id"].as_str().unwrap().to_string();
    app.root("GET", "aws/creds/deploy", None).await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;

    let top = get(&app, "/ui/leases?prefix=aws/creds/", Some(&cookie)).await;
    assert!(top.body.contains("deploy/"), "{}", top.body);
    let folder = get(&app, "/ui/leases?prefix=aws/creds/deploy/", Some(&cookie)).await;
    let id = first.rsplit('/').next().unwrap();
    assert!(folder.body.contains(id), "{}", folder.body);
    let lookup = get(&app, &format!("/ui/leases/lookup?lease_id={first}"), Some(&cookie)).await;
    assert!(lookup.body.contains("<dt>Renewable</dt><dd>true</dd>"), "{}", lookup.body);
    assert!(lookup.body.contains("<dt>Credential type</dt><dd>iam_user</dd>"), "{}", lookup.body);
    assert!(!lookup.body.contains("These are STS credentials"), "an IAM user is revoked in AWS");
    let renewed =
        post(&app, "/ui/leases/renew", Some(&cookie), SAME, &format!("lease_id={first}&increment=2h")).await;
    assert!(renewed.body.contains("Renewed: 7200 seconds from now."), "{}", renewed.body);

    let typo = post(
        &app,
        "/ui/leases/revoke-prefix",
        Some(&cookie),
        SAME,
        "prefix=aws/creds/deploy/&confirm=aws/creds/&force=false",
    )
    .await;
    assert!(typo.body.contains("Type the prefix exactly"), "{}", typo.body);
    assert_eq!(app.fake.user_names().len(), 3, "nothing revoked yet");
    let done = post(
        &app,
        "/ui/leases/revoke-prefix",
        Some(&cookie),
        SAME,
        "prefix=aws/creds/deploy/&confirm=aws/creds/deploy/&force=false",
    )
    .await;
    assert!(done.body.contains("Revoked: every lease under aws/creds/deploy/."), "{}", done.body);
    assert_eq!(app.fake.user_names(), [ROOT_USER]);
    let none = get(&app, "/ui/leases/irrevocable", Some(&cookie)).await;
    assert!(none.body.contains("<p>None.</p>"), "{}", none.body);
}

#[tokio::test]
async fn policies_are_checked_by_the_server_and_tokens_are_shown_once() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let bad = post(
        &app,
        "/ui/policies/new",
        Some(&cookie),
        SAME,
        "new=true&name=ops&policy=path+%22x%22+%7B+capabilities+%3D+%5B%22fly%22%5D+%7D",
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains(r#"class="error" role="alert""#), "{}", bad.body);
    assert_eq!(
        app.root("GET", "sys/policies/acl/ops", None).await.status,
        StatusCode::NOT_FOUND,
        "nothing stored"
    );
    let hcl = "path+%22aws%2Fcreds%2F*%22+%7B+capabilities+%3D+%5B%22read%22%5D+%7D";
    let saved =
        post(&app, "/ui/policies/new", Some(&cookie), SAME, &format!("new=true&name=ops&policy={hcl}")).await;
    assert!(saved.body.contains("Saved policy ops."), "{}", saved.body);
    assert!(get(&app, "/ui/policies", Some(&cookie)).await.body.contains(r#"href="/ui/policies/ops""#));
    assert!(get(&app, "/ui/policies/ops", Some(&cookie)).await.body.contains("aws/creds/*"));

    let made = post(&app, "/ui/tokens", Some(&cookie), SAME, "policies=ops&ttl=1h&display_name=ci").await;
    let token = made
        .body
        .split(r#"<code id="client_token" class="wrap">"#)
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let me = app.call("GET", "auth/token/lookup-self", Some(&token), None).await;
    assert_eq!(me.body["data"]["policies"], json!(["default", "ops"]));
    // A token holding only read on aws/creds/* sees notices elsewhere, not broken pages.
    let limited = sign_in(&app, &token).await;
    let mounts = get(&app, "/ui/mounts", Some(&limited)).await;
    assert!(mounts.body.contains("Your token may not list the secrets engines"), "{}", mounts.body);
    let deleted = post(&app, "/ui/policies/ops", Some(&cookie), SAME, "policy=&delete=true").await;
    assert!(deleted.body.contains("Deleted policy ops."), "{}", deleted.body);
}

#[tokio::test]
async fn a_static_role_is_made_shown_and_deleted() {
    use keymint_engine::fake_aws::User;
    let app = TestApp::new().await;
    app.fake.put_user(
        "app-user",
        User { path: "/".into(), ..User::default() },
        app.state.store().clock().now(),
    );
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let page = get(&app, "/ui/aws/aws/static-roles", Some(&cookie)).await;
    assert!(page.body.contains("No static roles yet."), "{}", page.body);
    let saved = post(
        &app,
        "/ui/aws/aws/static-roles",
        Some(&cookie),
        SAME,
        "op=save&name=app&username=app-user&rotation_period=24h",
    )
    .await;
    assert!(saved.body.contains("Saved static role app."), "{}", saved.body);
    assert!(saved.body.contains("86400s"), "{}", saved.body);
    let shown = post(&app, "/ui/aws/aws/static-roles", Some(&cookie), SAME, "op=creds&name=app").await;
    let key = shown
        .body
        .split(r#"<code id="static_access_key">"#)
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    assert!(app.fake.secret_of(&key).is_some(), "the key shown exists in AWS: {key}");
    let short = post(
        &app,
        "/ui/aws/aws/static-roles",
        Some(&cookie),
        SAME,
        "op=save&name=fast&username=app-user&rotation_period=5s",
    )
    .await;
    assert!(short.body.contains(r#"class="error" role="alert""#), "{}", short.body);
    let deleted = post(&app, "/ui/aws/aws/static-roles", Some(&cookie), SAME, "op=delete&name=app").await;
    assert!(deleted.body.contains("Deleted static role app"), "{}", deleted.body);
    assert!(app.fake.secret_of(&key).is_none(), "keymint deleted the key it made");
}
