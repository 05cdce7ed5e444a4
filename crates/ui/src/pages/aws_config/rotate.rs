//! "Rotate root key now": a confirmation page first, then `<mount>/config/rotate-root`, which
//! answers with the new access key id (the page never sees the secret).

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::hints;
use crate::api::Api;
use crate::pages::notice;
use crate::view::{Chrome, render};

#[derive(Template)]
#[template(path = "aws_rotate.html")]
struct Rotate {
    page: Chrome,
    mount: String,
    action: String,
    back: String,
    /// The access key id in use now, when known.
    current: String,
    /// After a rotation: the new access key id.
    rotated: Option<String>,
    warnings: Vec<String>,
    error: Option<String>,
    tip: Option<String>,
}

fn page(mount: &str, current: String) -> Rotate {
    Rotate {
        page: Chrome::signed_in("Rotate the root key", "aws"),
        mount: mount.to_string(),
        action: format!("/ui/aws/{mount}/config/rotate"),
        back: format!("/ui/aws/{mount}/config"),
        current,
        rotated: None,
        warnings: Vec::new(),
        error: None,
        tip: None,
    }
}

async fn current_key(api: &Api, mount: &str) -> String {
    let answer = api.get(&format!("{mount}/config/root")).await;
    answer.data()["access_key"].as_str().unwrap_or_default().to_string()
}

/// `GET /ui/aws/<mount>/config/rotate`, and the account page's button: what will happen, and
/// the button that does it.
pub(crate) async fn confirm_rotate(api: &Api, mount: &str) -> Response {
    render(StatusCode::OK, &page(mount, current_key(api, mount).await))
}

/// `POST /ui/aws/<mount>/config/rotate`: without `confirm=yes`, the confirmation page; with it,
/// the rotation.
pub(crate) async fn rotate(api: &Api, mount: &str, form: &HashMap<String, String>) -> Response {
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return confirm_rotate(api, mount).await;
    }
    let before = current_key(api, mount).await;
    let answer = api.post(&format!("{mount}/config/rotate-root"), &json!({})).await;
    let mut shown = page(mount, before);
    if answer.ok() {
        shown.rotated = Some(answer.data()["access_key"].as_str().unwrap_or_default().to_string());
        shown.warnings = crate::api::strings(&answer.body["warnings"]);
        return render(StatusCode::OK, &shown);
    }
    let text = notice("rotate the root key", &answer);
    shown.tip = hints::hint(&text);
    shown.error = Some(text);
    let status = if answer.status == StatusCode::FORBIDDEN { StatusCode::FORBIDDEN } else { StatusCode::OK };
    render(status, &shown)
}
