//! Forms: the server's validation errors are shown beside the fields they name.

use axum::http::StatusCode;
use keymint_api::testing::{ROOT_TOKEN, TestApp};

use super::{SAME, post, sign_in};

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
