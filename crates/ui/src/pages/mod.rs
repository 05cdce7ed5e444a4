//! The pages, one module each.

pub(crate) mod aws;
pub(crate) mod aws_config;
pub(crate) mod creds;
pub(crate) mod leases;
pub(crate) mod mounts;
pub(crate) mod overview;
pub(crate) mod roles;
pub(crate) mod sign_in;

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

use crate::UiState;
use crate::api::Answer;
use crate::session::Session;
use crate::view::{Chrome, Message, render};

/// `/ui/`: the overview when signed in, else the sign-in page.
pub(crate) async fn home(State(state): State<UiState>, mut parts: Parts) -> Response {
    match Session::from_request_parts(&mut parts, &state).await {
        Ok(_) => Redirect::to("/ui/overview").into_response(),
        Err(to_sign_in) => to_sign_in,
    }
}

pub(crate) async fn not_found() -> Response {
    let page = Message {
        page: Chrome { title: "Not found", signed_in: false, current: "" },
        heading: "Not found",
        text: "There is no such page.".into(),
    };
    render(StatusCode::NOT_FOUND, &page)
}

/// What a page says when the API refused to show it something: a 403 names the path the token
/// may not use; anything else is the API's own words.
pub(crate) fn notice(what: &str, answer: &Answer) -> String {
    if answer.status == StatusCode::FORBIDDEN {
        format!("Your token may not {what}.")
    } else {
        format!("Could not {what}: {}", answer.error())
    }
}
