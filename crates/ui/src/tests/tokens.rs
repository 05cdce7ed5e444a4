//! Tokens and token roles: the list, lookup, renew and revoke by accessor, creating from a
//! role, and a token without sudo.

use axum::http::{StatusCode, header};
use keymint_api::testing::{ROOT_TOKEN, TestApp};
use serde_json::{Value, json};

use super::{SAME, get, post, sign_in};

/// The text between `start` and the next `end` in `body`.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body.find(start).unwrap_or_else(|| panic!("no {start:?} in {body}")) + start.len();
    let len = body[from..].find(end).unwrap();
    &body[from..from + len]
}

/// A token made by root through the API: (token, accessor).
async fn made(app: &TestApp, body: Value) -> (String, String) {
    let made = app.root("POST", "auth/token/create", Some(body)).await;
    assert_eq!(made.status, StatusCode::OK, "{:?}", made.body);
    let text = |k: &str| made.body["auth"][k].as_str().unwrap().to_string();
    (text("client_token"), text("accessor"))
}

async fn works(app: &TestApp, token: &str) -> bool {
    app.call("GET", "auth/token/lookup-self", Some(token), None).await.status == StatusCode::OK
}

async fn put_policy(app: &TestApp, name: &str, hcl: &str) {
    let answer = app.root("PUT", &format!("sys/policies/acl/{name}"), Some(json!({"policy": hcl}))).await;
    assert!(answer.status.is_success(), "{:?}", answer.body);
}

#[tokio::test]
async fn tokens_are_listed_looked_up_and_revoked_with_their_children_after_a_confirmation() {
    let app = TestApp::new().await;
    let ops = r#"path "aws/creds/*" { capabilities = ["read"] }
path "auth/token/create" { capabilities = ["update"] }"#;
    put_policy(&app, "ops", ops).await;
    let (token, accessor) =
        made(&app, json!({"policies": ["ops"], "display_name": "deployer", "ttl": "1h"})).await;
    let child = app.call("POST", "auth/token/create", Some(&token), Some(json!({"policies": ["ops"]}))).await;
    let child = child.body["auth"]["client_token"].as_str().unwrap().to_string();
    let cookie = sign_in(&app, ROOT_TOKEN).await;

    let list = get(&app, "/ui/tokens", Some(&cookie)).await;
    assert_eq!(list.status, StatusCode::OK);
    let row = between(&list.body, r#"<td data-label="Display name">token-deployer</td>"#, "</tr>");
    assert!(row.contains(r#"<td data-label="Policies">default, ops</td>"#), "{row}");
    assert!(row.contains("59m") && row.contains("UTC"), "time left and expiry: {row}");
    assert!(row.contains(&format!("/ui/tokens/revoke?accessor={accessor}")), "{row}");
    assert!(list.body.contains("<strong>Yes: signed in with it</strong>"), "root's own row is marked");
    assert!(!list.body.contains(&token), "a list shows accessors, never tokens");
    let filtered = get(&app, "/ui/tokens?filter=deploy", Some(&cookie)).await;
    assert!(filtered.body.contains("1 token(s) matching"), "{}", filtered.body);
    assert!(filtered.body.contains(&accessor));
    let by_policy = get(&app, "/ui/tokens?filter=ops", Some(&cookie)).await;
    assert!(by_policy.body.contains("2 token(s) matching"), "the token and its child: {}", by_policy.body);

    let lookup = get(&app, &format!("/ui/tokens/accessor?accessor={accessor}"), Some(&cookie)).await;
    assert!(lookup.body.contains("<dt>Display name</dt><dd>token-deployer</dd>"), "{}", lookup.body);
    assert!(lookup.body.contains("<dt>Orphan</dt><dd>No</dd>"), "{}", lookup.body);
    assert!(!lookup.body.contains(&token), "a lookup by accessor has no token to show");
    let unknown = get(&app, "/ui/tokens/accessor?accessor=nope", Some(&cookie)).await;
    assert!(unknown.body.contains("No live token has the accessor nope."), "{}", unknown.body);

    let confirm = get(&app, &format!("/ui/tokens/revoke?accessor={accessor}"), Some(&cookie)).await;
    assert!(confirm.body.contains("every token created under it"), "{}", confirm.body);
    assert!(confirm.body.contains("<dt>Display name</dt><dd>token-deployer</dd>"), "{}", confirm.body);
    assert!(works(&app, &token).await, "the confirmation page revokes nothing");
    let done = post(&app, "/ui/tokens/revoke", Some(&cookie), SAME, &format!("accessor={accessor}")).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains(&format!("Revoked the token with accessor {accessor}")), "{}", done.body);
    assert!(!works(&app, &token).await, "the token is revoked");
    assert!(!works(&app, &child).await, "and its child with it");
    assert!(!done.body.contains("token-deployer"), "no longer listed");
}

#[tokio::test]
async fn the_list_has_pages_of_25() {
    let app = TestApp::new().await;
    for n in 0..30 {
        made(&app, json!({"policies": ["default"], "display_name": format!("bulk-{n}")})).await;
    }
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    // The 30 and root's own: signing in with a token makes none.
    let first = get(&app, "/ui/tokens", Some(&cookie)).await;
    assert!(first.body.contains("31 token(s) · page 1 of 2"), "{}", first.body);
    assert_eq!(first.body.matches("/ui/tokens/revoke?accessor=").count(), 25);
    assert!(first.body.contains(r#"page=2">Next page</a>"#), "{}", first.body);
    let second = get(&app, "/ui/tokens?page=2", Some(&cookie)).await;
    assert_eq!(second.body.matches("/ui/tokens/revoke?accessor=").count(), 6);
    assert!(second.body.contains("Previous page") && !second.body.contains("Next page"));
    let filtered = get(&app, "/ui/tokens?filter=bulk-2", Some(&cookie)).await;
    assert!(filtered.body.contains("1 token(s) matching"), "bulk-2 only: {}", filtered.body);
}

#[tokio::test]
async fn a_token_is_renewed_by_its_accessor() {
    let app = TestApp::new().await;
    let (token, accessor) =
        made(&app, json!({"policies": ["default"], "ttl": "1h", "explicit_max_ttl": "5h"})).await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let renewed =
        post(&app, "/ui/tokens/renew", Some(&cookie), SAME, &format!("accessor={accessor}&increment=3h"))
            .await;
    assert!(renewed.body.contains("Renewed: it expires 3h 0m from now."), "{}", renewed.body);
    assert!(renewed.body.contains("<dt>Explicit max TTL</dt><dd>5h 0m</dd>"), "{}", renewed.body);
    let ttl = app.call("GET", "auth/token/lookup-self", Some(&token), None).await.body["data"]["ttl"].clone();
    assert!(ttl.as_u64().is_some_and(|t| t > 3 * 3600 - 60), "renewed in the server: {ttl}");

    let (_, fixed) = made(&app, json!({"policies": ["default"], "renewable": false})).await;
    let page = get(&app, &format!("/ui/tokens/accessor?accessor={fixed}"), Some(&cookie)).await;
    assert!(page.body.contains("It is not renewable"), "{}", page.body);
    let refused =
        post(&app, "/ui/tokens/renew", Some(&cookie), SAME, &format!("accessor={fixed}&increment=1h")).await;
    assert!(refused.body.contains("Could not renew the token"), "{}", refused.body);
}

#[tokio::test]
async fn revoking_your_own_token_signs_you_out() {
    let app = TestApp::new().await;
    let (token, accessor) = made(&app, json!({"policies": ["root"]})).await;
    let cookie = sign_in(&app, &token).await;
    let confirm = get(&app, &format!("/ui/tokens/revoke?accessor={accessor}"), Some(&cookie)).await;
    assert!(
        confirm.body.contains("You are signed in with this token: you will be signed out."),
        "{}",
        confirm.body
    );
    let done = post(&app, "/ui/tokens/revoke", Some(&cookie), SAME, &format!("accessor={accessor}")).await;
    assert_eq!(done.headers[header::LOCATION], "/ui/sign-in");
    assert!(done.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(get(&app, "/ui/tokens", Some(&cookie)).await.headers[header::LOCATION], "/ui/sign-in");

    // Revoking a parent of the signed-in token takes the session too.
    let (parent, parent_accessor) = made(&app, json!({"policies": ["root"]})).await;
    let child = app.call("POST", "auth/token/create", Some(&parent), Some(json!({}))).await;
    let child = child.body["auth"]["client_token"].as_str().unwrap().to_string();
    let cookie = sign_in(&app, &child).await;
    let done =
        post(&app, "/ui/tokens/revoke", Some(&cookie), SAME, &format!("accessor={parent_accessor}")).await;
    assert_eq!(done.headers[header::LOCATION], "/ui/sign-in");
    assert!(!works(&app, &child).await);
}

#[tokio::test]
async fn a_token_role_is_created_edited_used_and_deleted() {
    let app = TestApp::new().await;
    put_policy(&app, "ops", r#"path "aws/creds/*" { capabilities = ["read"] }"#).await;
    // The creator holds neither ops nor sudo: the role alone grants ops.
    put_policy(
        &app,
        "creator",
        r#"path "auth/token/create/*" { capabilities = ["update"] }
path "auth/token/roles/" { capabilities = ["list"] }"#,
    )
    .await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let empty = get(&app, "/ui/tokens/roles", Some(&cookie)).await;
    assert!(empty.body.contains("No token roles yet."), "{}", empty.body);
    let form = get(&app, "/ui/tokens/roles/new", Some(&cookie)).await;
    for field in ["allowed_policies", "token_period", "token_bound_cidrs", "path_suffix", "token_type"] {
        assert!(form.body.contains(&format!(r#"<label for="{field}">"#)), "{field}: {}", form.body);
    }
    assert!(form.body.contains(r#"id="renewable" name="renewable" value="true" checked"#), "Vault's default");

    let base = "new=true&name=ci&allowed_policies=ops&disallowed_policies=&allowed_policies_glob=\
                &disallowed_policies_glob=&renewable=true&token_max_ttl=2h&token_explicit_max_ttl=\
                &token_period=&token_num_uses=&token_type=service&token_bound_cidrs=&allowed_entity_aliases=";
    let bad =
        post(&app, "/ui/tokens/roles", Some(&cookie), SAME, &format!("{base}&token_ttl=3h&path_suffix=a/b"))
            .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        between(&bad.body, r#"id="path_suffix-error""#, "</p>").contains("invalid characters"),
        "{}",
        bad.body
    );
    assert_eq!(app.root("GET", "auth/token/roles/ci", None).await.status, StatusCode::NOT_FOUND);
    let bad =
        post(&app, "/ui/tokens/roles", Some(&cookie), SAME, &format!("{base}&token_ttl=3h&path_suffix="))
            .await;
    assert!(
        between(&bad.body, r#"id="token_ttl-error""#, "</p>").contains("cannot be greater"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains(r#"value="3h""#), "what was typed is kept");

    let saved =
        post(&app, "/ui/tokens/roles", Some(&cookie), SAME, &format!("{base}&token_ttl=1h&path_suffix="))
            .await;
    assert!(saved.body.contains("Saved token role ci."), "{}", saved.body);
    assert!(saved.body.contains("1h 0m / 2h 0m"), "{}", saved.body);
    let role = app.root("GET", "auth/token/roles/ci", None).await.body["data"].clone();
    assert_eq!(role["allowed_policies"], json!(["ops"]));
    assert_eq!(role["token_ttl"], 3600);
    assert_eq!(role["orphan"], false, "an unchecked box is false");
    assert_eq!(role["token_type"], "service");
    let again =
        post(&app, "/ui/tokens/roles", Some(&cookie), SAME, &format!("{base}&token_ttl=1h&path_suffix="))
            .await;
    assert!(again.body.contains("exists already"), "a new role does not overwrite: {}", again.body);

    let edit = get(&app, "/ui/tokens/roles/ci", Some(&cookie)).await;
    assert!(edit.body.contains(r#"value="1h""#) && edit.body.contains(">ops</textarea>"), "{}", edit.body);
    let changed = base.replace("new=true", "new=false").replace("renewable=true", "orphan=true");
    let saved = post(
        &app,
        "/ui/tokens/roles",
        Some(&cookie),
        SAME,
        &format!("{changed}&token_ttl=30m&path_suffix=team"),
    )
    .await;
    assert!(saved.body.contains("Saved token role ci."), "{}", saved.body);
    let role = app.root("GET", "auth/token/roles/ci", None).await.body["data"].clone();
    assert_eq!((role["orphan"].clone(), role["renewable"].clone()), (json!(true), json!(false)));
    assert_eq!(role["path_suffix"], "team");

    // A token from the role, by a creator holding neither ops nor sudo.
    let creator = app.token(&["creator"]).await;
    let limited = sign_in(&app, &creator).await;
    let page = get(&app, "/ui/tokens?role=ci", Some(&limited)).await;
    assert!(page.body.contains(r#"<option value="ci" selected>ci</option>"#), "{}", page.body);
    let form = "role=ci&policies=&ttl=&display_name=from-role&period=&explicit_max_ttl=&num_uses=2\
                &meta=team%3Dops%0D%0Aticket%3DOPS-1&renewable_shown=true&renewable=true";
    let made = post(&app, "/ui/tokens", Some(&limited), SAME, form).await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let token = between(&made.body, r#"<code id="client_token" class="wrap">"#, "<").to_string();
    let me = app.call("GET", "auth/token/lookup-self", Some(&token), None).await.body["data"].clone();
    assert_eq!(me["policies"], json!(["default", "ops"]), "the role's allowed policy");
    assert_eq!(me["role"], "ci");
    assert_eq!(me["orphan"], true, "the role decides");
    assert_eq!(me["path"], "auth/token/create/ci/team");
    assert_eq!(me["meta"], json!({"team": "ops", "ticket": "OPS-1"}));
    assert_eq!(me["num_uses"], 1, "two uses, one spent on this lookup");

    let confirm = get(&app, "/ui/tokens/roles/ci/delete", Some(&cookie)).await;
    assert!(confirm.body.contains("Delete token role ci"), "{}", confirm.body);
    assert_eq!(app.root("GET", "auth/token/roles/ci", None).await.status, StatusCode::OK, "not yet");
    let deleted = post(&app, "/ui/tokens/roles/ci/delete", Some(&cookie), SAME, "").await;
    assert!(deleted.body.contains("Deleted token role ci."), "{}", deleted.body);
    assert_eq!(app.root("GET", "auth/token/roles/ci", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_takes_the_new_fields_and_shows_refusals_beside_them() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    // Without the renewable box (its marker sent), the token is not renewable.
    let form = "policies=default&ttl=1h&display_name=batch&explicit_max_ttl=2h&num_uses=&period=\
                &meta=&no_parent=true&renewable_shown=true";
    let made = post(&app, "/ui/tokens", Some(&cookie), SAME, form).await;
    let accessor = between(&made.body, r#"<code id="created_accessor">"#, "<").to_string();
    let data = app.root("POST", "auth/token/lookup-accessor", Some(json!({"accessor": accessor}))).await;
    let data = &data.body["data"];
    assert_eq!((data["renewable"].clone(), data["orphan"].clone()), (json!(false), json!(true)));
    assert_eq!(data["explicit_max_ttl"], 7200);
    assert!(made.body.contains("token-batch"), "the new token is in the list below: {}", made.body);

    // A token without sudo may not make an orphan: the refusal sits beside the box.
    put_policy(&app, "maker", r#"path "auth/token/create" { capabilities = ["update"] }"#).await;
    let maker = sign_in(&app, &app.token(&["maker"]).await).await;
    let refused = post(&app, "/ui/tokens", Some(&maker), SAME, "policies=&no_parent=true").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(between(&refused.body, r#"id="no_parent-error""#, "</p>").contains("orphan"), "{}", refused.body);
    assert!(refused.body.contains(r#"id="no_parent" name="no_parent" value="true" checked"#), "kept");
    let refused = post(&app, "/ui/tokens", Some(&maker), SAME, "policies=&meta=a%3D1%0Ab").await;
    assert!(
        between(&refused.body, r#"id="meta-error""#, "</p>").contains("invalid key pair"),
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn a_token_without_sudo_sees_a_notice_and_can_still_create_and_look_up() {
    let app = TestApp::new().await;
    put_policy(
        &app,
        "helpdesk",
        r#"path "auth/token/create" { capabilities = ["update"] }
path "auth/token/lookup-accessor" { capabilities = ["update"] }
path "auth/token/accessors" { capabilities = ["list"] }"#,
    )
    .await;
    let (_, other) = made(&app, json!({"policies": ["default"], "display_name": "someone"})).await;
    let cookie = sign_in(&app, &app.token(&["helpdesk"]).await).await;
    let page = get(&app, "/ui/tokens", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your token may not list the tokens: that needs sudo"), "{}", page.body);
    assert!(page.body.contains(r#"<label for="accessor">Accessor</label>"#), "the lookup form is there");
    assert!(!page.body.contains("<table"), "no list");
    let made = post(&app, "/ui/tokens", Some(&cookie), SAME, "policies=default&ttl=10m").await;
    assert!(made.body.contains(r#"<code id="client_token""#), "{}", made.body);
    let lookup = get(&app, &format!("/ui/tokens/accessor?accessor={other}"), Some(&cookie)).await;
    assert!(lookup.body.contains("<dt>Display name</dt><dd>token-someone</dd>"), "{}", lookup.body);
    // Revoking is the server's call: this token may not.
    let refused = post(&app, "/ui/tokens/revoke", Some(&cookie), SAME, &format!("accessor={other}")).await;
    assert!(refused.body.contains("Your token may not revoke the token"), "{}", refused.body);
    let roles = get(&app, "/ui/tokens/roles", Some(&cookie)).await;
    assert!(roles.body.contains("Your token may not list the token roles"), "{}", roles.body);
}
