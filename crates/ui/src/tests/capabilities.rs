//! Pages offer only what the signed-in token may do (`sys/capabilities-self`), and what they
//! offer works with just that capability.

use axum::http::StatusCode;
use keymint_api::testing::{ROOT_TOKEN, TestApp};
use serde_json::json;

use super::{SAME, get, post, sign_in};

async fn creds_reader(app: &TestApp) -> String {
    let role =
        json!({"credential_type": "iam_user", "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]});
    assert!(app.root("POST", "aws/roles/web", Some(role)).await.status.is_success());
    let hcl = r#"path "aws/creds/web" { capabilities = ["read"] }"#;
    let made = app.root("POST", "sys/policies/acl/creds-web", Some(json!({"policy": hcl}))).await;
    assert!(made.status.is_success(), "{:?}", made.body);
    app.token(&["creds-web"]).await
}

#[tokio::test]
async fn a_token_that_may_only_read_one_roles_creds_gets_keys_and_no_other_offers() {
    let app = TestApp::new().await;
    let token = creds_reader(&app).await;
    let cookie = sign_in(&app, &token).await;

    let form = get(&app, "/ui/aws/aws/creds/web", Some(&cookie)).await;
    assert!(form.body.contains("Generate credentials</button>"), "{}", form.body);
    // Read is enough: the page asks with a read, not a write it may not make.
    let issued = post(&app, "/ui/aws/aws/creds/web", Some(&cookie), SAME, "ttl=30m").await;
    assert_eq!(issued.status, StatusCode::OK, "{}", issued.body);
    assert!(issued.body.contains(r#"<code id="access_key">"#), "{}", issued.body);
    assert!(!issued.body.contains("Revoke this lease"), "it may not revoke");
    assert!(issued.body.contains("Your token may not revoke leases"));
    // The default policy lets every token renew leases (as Vault's does).
    assert!(issued.body.contains("Renew the lease"));

    let mounts = get(&app, "/ui/mounts", Some(&cookie)).await;
    assert!(!mounts.body.contains(r#"id="mount_path""#), "no enable form: {}", mounts.body);
    let roles = get(&app, "/ui/aws/aws/roles", Some(&cookie)).await;
    assert!(roles.body.contains("Your token may not"), "{}", roles.body);
    assert!(!roles.body.contains("New iam_user role"), "{}", roles.body);

    // Another role's creds are neither offered nor given.
    let other = get(&app, "/ui/aws/aws/creds/other", Some(&cookie)).await;
    assert!(other.body.contains("Your token may not generate credentials for other"), "{}", other.body);
    let refused = post(&app, "/ui/aws/aws/creds/other", Some(&cookie), SAME, "ttl=").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn root_is_offered_everything() {
    let app = TestApp::new().await;
    let token = creds_reader(&app).await;
    drop(token);
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let roles = get(&app, "/ui/aws/aws/roles", Some(&cookie)).await;
    for offer in ["Generate credentials for web", "Delete web", "New iam_user role"] {
        assert!(roles.body.contains(offer), "{offer}: {}", roles.body);
    }
    let mounts = get(&app, "/ui/mounts", Some(&cookie)).await;
    assert!(
        mounts.body.contains(r#"id="mount_path""#) && mounts.body.contains("Disable aws/"),
        "{}",
        mounts.body
    );
    let leases = get(&app, "/ui/leases?prefix=aws%2F", Some(&cookie)).await;
    assert!(leases.body.contains("Force: remove the records"), "{}", leases.body);
}
