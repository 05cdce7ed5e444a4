//! Signing in (with a token, AppRole or a JWT pasted in) and out.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::session::{self, Anonymous};
use crate::view::{Chrome, render};
use crate::{SESSION_MAX, UiState};

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignIn {
    page: Chrome,
    error: Option<String>,
    approle_mount: String,
    jwt_mount: String,
}

fn sign_in_page(status: StatusCode, error: Option<String>) -> Response {
    let page = SignIn {
        page: Chrome { title: "Sign in", signed_in: false, current: "" },
        error,
        approle_mount: "approle".into(),
        jwt_mount: "jwt".into(),
    };
    render(status, &page)
}

pub(crate) async fn page() -> Response {
    sign_in_page(StatusCode::OK, None)
}

/// `POST /ui/sign-in`: `method` is `token`, `approle` or `jwt`, with that method's fields.
pub(crate) async fn submit(
    State(state): State<UiState>,
    anonymous: Anonymous,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(|v| v.trim().to_string()).unwrap_or_default();
    let api = anonymous.api;
    let now_ms = state.app.store().clock().now_ms();
    // The token, and its TTL in seconds (0: it never expires).
    let signed: Result<(String, i64), String> = match field("method").as_str() {
        "token" => {
            let token = field("token");
            if token.is_empty() {
                Err("Enter a token.".into())
            } else {
                let me = crate::api::Api { token: Some(token.clone()), ..api.clone() };
                let answer = me.get("auth/token/lookup-self").await;
                if answer.ok() {
                    Ok((token, answer.data()["ttl"].as_i64().unwrap_or(0)))
                } else {
                    Err("That token is not valid (unknown, expired, or not allowed from this address)."
                        .into())
                }
            }
        }
        method @ ("approle" | "jwt") => {
            let (mount, body) = if method == "approle" {
                (
                    field("approle_mount"),
                    json!({"role_id": field("role_id"), "secret_id": field("secret_id")}),
                )
            } else {
                (field("jwt_mount"), json!({"role": field("jwt_role"), "jwt": field("jwt")}))
            };
            let mount = mount.trim_matches('/').to_string();
            if mount.is_empty() || mount.contains("..") {
                Err("Enter the mount of the auth method.".into())
            } else {
                let answer = api.post(&format!("auth/{mount}/login"), &body).await;
                match answer.body["auth"]["client_token"].as_str() {
                    Some(token) if answer.ok() => {
                        Ok((token.to_string(), answer.body["auth"]["lease_duration"].as_i64().unwrap_or(0)))
                    }
                    _ => Err(format!("Sign-in refused: {}", answer.error())),
                }
            }
        }
        _ => Err("Choose how to sign in.".into()),
    };
    let (token, ttl) = match signed {
        Ok(signed) => signed,
        Err(error) => return sign_in_page(StatusCode::UNAUTHORIZED, Some(error)),
    };
    let max = i64::try_from(SESSION_MAX.as_millis()).unwrap_or(i64::MAX);
    let lifetime = if ttl > 0 { ttl.saturating_mul(1000).min(max) } else { max };
    match session::start(&state, &token, now_ms.saturating_add(lifetime)).await {
        Ok(cookie) => {
            let mut response = Redirect::to("/ui/overview").into_response();
            if let Ok(value) = cookie.parse() {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "could not start a UI session");
            sign_in_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The server could not start a session; try again.".into()),
            )
        }
    }
}

/// `POST /ui/sign-out`: the session is forgotten; the token is not revoked.
pub(crate) async fn sign_out(State(state): State<UiState>, parts: Parts) -> Response {
    session::end(&state, &parts).await;
    let mut response = Redirect::to("/ui/sign-in").into_response();
    if let Ok(value) = session::cookie(&state, None).parse() {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
