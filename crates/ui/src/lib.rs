//! keymint-ui: the operator web UI at `/ui/`, served by `keymint server`.
//!
//! Server-rendered pages (askama templates, escaped by default, checked at compile time) with
//! plain HTML forms: no JavaScript is needed, and the Content Security Policy allows nothing
//! inline. Every action is a request to the `/v1` API, run in process with the signed-in
//! token ([`api::Api`]), so the UI is held to exactly the same ACL checks and audit log as any
//! other client, and shows a 403 as a notice rather than a broken page.
//!
//! Guarantees:
//! - The session is a random id in an HttpOnly, SameSite=Strict cookie (Secure under TLS); the
//!   database keeps only its keyed hash and the token, sealed. A session ends with its token
//!   (or after [`SESSION_MAX`]); signing out forgets it server-side and revokes nothing.
//! - A state-changing request must come from the UI's own origin (`Origin`, else `Referer`).
//! - Every page is sent with `Cache-Control: no-store`, a CSP of `default-src 'none'` with
//!   `'self'` sources only, `X-Frame-Options: DENY` and `nosniff`.

mod api;
mod pages;
mod session;
mod view;

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keymint_api::AppState;

/// The longest a UI session lasts, whatever its token's TTL.
pub const SESSION_MAX: Duration = Duration::from_secs(8 * 3600);

/// How the UI is served.
#[derive(Debug, Clone, Copy, Default)]
pub struct UiOptions {
    /// The listener speaks TLS: the session cookie is marked Secure.
    pub tls: bool,
}

/// What every UI handler gets.
#[derive(Clone)]
pub(crate) struct UiState {
    pub app: AppState,
    pub options: UiOptions,
}

/// The UI's routes, under `/ui`.
pub fn router(app: AppState, options: UiOptions) -> Router {
    let state = UiState { app, options };
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::home))
        .route("/ui/static/ui.css", get(view::stylesheet))
        .route("/ui/static/ui.js", get(view::script))
        .route("/ui/sign-in", get(pages::sign_in::page).post(pages::sign_in::submit))
        .route("/ui/sign-out", post(pages::sign_in::sign_out))
        .route("/ui/overview", get(pages::overview::page))
        .route("/ui/mounts", get(pages::mounts::page).post(pages::mounts::enable))
        .route("/ui/mounts/disable", get(pages::mounts::confirm_disable).post(pages::mounts::disable))
        .route("/ui/aws/{*rest}", get(pages::aws::get).post(pages::aws::post))
        .route("/ui/policies", get(pages::policies::page))
        .route("/ui/policies/{name}", get(pages::policies::edit).post(pages::policies::save))
        .route("/ui/tokens", get(pages::tokens::page).post(pages::tokens::create))
        .route("/ui/tokens/accessor", get(pages::token_accessor::lookup))
        .route("/ui/tokens/renew", post(pages::token_accessor::renew))
        .route(
            "/ui/tokens/revoke",
            get(pages::token_accessor::confirm_revoke).post(pages::token_accessor::revoke),
        )
        .route("/ui/tokens/roles", get(pages::token_roles::page).post(pages::token_roles::save))
        .route("/ui/tokens/roles/{name}", get(pages::token_roles::edit))
        .route(
            "/ui/tokens/roles/{name}/delete",
            get(pages::token_roles::confirm_delete).post(pages::token_roles::delete),
        )
        .route("/ui/leases", get(pages::leases::page))
        .route("/ui/leases/lookup", get(pages::leases::lookup))
        .route("/ui/leases/renew", post(pages::leases::renew))
        .route("/ui/leases/revoke", post(pages::creds::revoke))
        .route("/ui/leases/revoke-prefix", post(pages::leases::revoke_prefix))
        .route("/ui/leases/irrevocable", get(pages::leases::irrevocable))
        // The API's router keeps the fallback: unknown UI pages get the UI's own 404.
        .route("/ui/{*rest}", axum::routing::any(pages::not_found))
        .layer(middleware::from_fn(same_origin_writes))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// The Content Security Policy of every page: nothing but the UI's own stylesheet, script and
/// forms; nothing inline.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// Refuses a state-changing request that does not come from the UI's own origin (CSRF).
async fn same_origin_writes(request: Request, next: Next) -> Response {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return next.run(request).await;
    }
    if !same_origin(request.headers()) {
        tracing::info!(path = %request.uri().path(), "cross-origin UI request refused");
        return view::refused(
            axum::http::StatusCode::FORBIDDEN,
            "This request came from another site, so it was refused. Use the form on this site.",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether the request's `Origin` (or, without one, its `Referer`) is this host.
fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let origin_of = |url: &str| -> Option<String> {
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split('/').next()?;
        Some(format!("{scheme}://{authority}"))
    };
    let given = match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => origin_of(origin),
        None => headers.get(header::REFERER).and_then(|r| r.to_str().ok()).and_then(origin_of),
    };
    given.is_some_and(|o| o == format!("http://{host}") || o == format!("https://{host}"))
}

#[cfg(test)]
mod tests;
