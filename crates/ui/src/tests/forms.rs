//! Forms (the server's validation errors are shown beside the fields they name) and the script
//! that adds copy buttons and countdowns.

use axum::http::StatusCode;
use keymint_api::testing::{ROOT_TOKEN, TestApp};

use super::{SAME, get, post, sign_in};

#[tokio::test]
async fn a_role_refused_by_the_server_shows_the_error_beside_its_field() {
    let app = TestApp::new().await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let form = "credential_type=iam_user&new=true&name=web&policy_arns=&permissions_boundary_arn=not-an-arn";
    let page = post(&app, "/ui/aws/aws/roles", Some(&cookie), SAME, form).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    let error_at =
        page.body.find(r#"id="permissions_boundary_arn-error""#).expect("the error sits by its field");
    let field_at = page.body.find(r#"id="permissions_boundary_arn" "#).expect("the field");
    assert!(error_at < field_at, "the error comes between the label and the field");
    assert!(
        page.body[error_at..field_at].contains("invalid permissions_boundary_arn parameter"),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"aria-invalid="true""#));
    assert!(page.body.contains("One field needs a change"), "{}", page.body);
    assert_eq!(
        app.root("GET", "aws/roles/web", None).await.status,
        StatusCode::NOT_FOUND,
        "nothing was saved"
    );

    // The UI's own check of the policy document goes beside that field too.
    let form = "credential_type=iam_user&new=true&name=web&policy_document=%7Bnope";
    let page = post(&app, "/ui/aws/aws/roles", Some(&cookie), SAME, form).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains(r#"id="policy_document-error""#), "{}", page.body);
}

#[tokio::test]
async fn the_script_is_served_with_the_integrity_every_page_names() {
    use base64::Engine;
    let app = TestApp::new().await;
    let script = get(&app, "/ui/static/ui.js", None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers[axum::http::header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript")
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, script.body.as_bytes());
    let integrity = format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()));
    let page = get(&app, "/ui/sign-in", None).await;
    assert!(page.body.contains(&format!(r#"integrity="{integrity}""#)), "{}", page.body);
    // The script only enhances: the copy buttons and countdowns it drives start hidden.
    for hook in ["button[data-copy]", "time[data-countdown]"] {
        assert!(script.body.contains(hook), "{hook}");
    }
    assert!(
        !script.body.contains("eval(") && !script.body.contains("innerHTML"),
        "no code from strings, no HTML"
    );
}

#[tokio::test]
async fn issued_keys_have_copy_buttons_hidden_until_the_script_shows_them_and_a_countdown() {
    let app = TestApp::new().await;
    app.root("POST", "aws/roles/web", Some(serde_json::json!({"credential_type": "iam_user", "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]}))).await;
    let cookie = sign_in(&app, ROOT_TOKEN).await;
    let page = post(&app, "/ui/aws/aws/creds/web", Some(&cookie), SAME, "ttl=1h").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for (id, label) in [
        ("access_key", "Copy the access key ID"),
        ("as-env", "Copy as env"),
        ("as-profile", "Copy as AWS CLI profile"),
        ("as-json", "Copy as JSON"),
    ] {
        let button = format!(r#"data-copy="{id}" aria-controls="copy-status" hidden>{label}</button>"#);
        assert!(page.body.contains(&button), "{button}");
        assert!(page.body.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    assert!(page.body.contains("<time data-countdown datetime=\""), "{}", page.body);
    assert!(page.body.contains("Renew the lease"), "iam_user leases renew");
}
