//! Sessions: a signed-in browser holds a random id in the `keymint_ui` cookie; the database
//! holds the id's keyed hash and the token, sealed, until the token's expiry (or
//! [`crate::SESSION_MAX`]).

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use keymint_api::tls::Peer;
use keymint_common::random::base62;
use keymint_store::ui_sessions::{self, SessionRow};

use crate::UiState;
use crate::api::Api;

pub(crate) const COOKIE: &str = "keymint_ui";

fn id_hash(state: &UiState, id: &str) -> String {
    state.app.store().hasher().hash(&format!("ui-session/{id}"))
}

/// The `Set-Cookie` value of a new session (`id`), or of one being cleared (`None`).
pub(crate) fn cookie(state: &UiState, id: Option<&str>) -> String {
    let secure = if state.options.tls { "; Secure" } else { "" };
    match id {
        Some(id) => format!("{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict{secure}"),
        None => format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// The session id the request's cookie holds.
fn cookie_value(parts: &Parts) -> Option<String> {
    parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then(|| value.to_string())
        })
    })
}

/// Starts a session for `token`, ending at `expire_at_ms`; returns the cookie to set.
pub(crate) async fn start(state: &UiState, token: &str, expire_at_ms: i64) -> Result<String, String> {
    let id = base62(32);
    let hash = id_hash(state, &id);
    let store = state.app.store();
    let row = SessionRow {
        id_hash: hash.clone(),
        token: store.seal().seal(&ui_sessions::identity(&hash), token.as_bytes()),
        created_at: store.clock().now_ms(),
        expire_at: expire_at_ms,
    };
    ui_sessions::insert(store.pool(), &row).await.map_err(|e| e.to_string())?;
    // Sessions that ended are removed as new ones start: no background task needed.
    if let Err(e) = ui_sessions::delete_ended(store.pool(), store.clock().now_ms()).await {
        tracing::warn!(error = %e, "could not remove ended UI sessions");
    }
    Ok(cookie(state, Some(&id)))
}

/// Forgets the request's session, if any.
pub(crate) async fn end(state: &UiState, parts: &Parts) {
    if let Some(id) = cookie_value(parts)
        && let Err(e) = ui_sessions::delete(state.app.store().pool(), &id_hash(state, &id)).await
    {
        tracing::warn!(error = %e, "could not forget a UI session");
    }
}

fn peer(parts: &Parts) -> Option<Peer> {
    parts.extensions.get::<ConnectInfo<Peer>>().map(|c| c.0)
}

/// A signed-in request: the API as its token sees it. Without a live session, the request is
/// sent to the sign-in page.
pub(crate) struct Session {
    pub api: Api,
}

impl FromRequestParts<UiState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, Self::Rejection> {
        let to_sign_in = || Redirect::to("/ui/sign-in").into_response();
        let id = cookie_value(parts).ok_or_else(to_sign_in)?;
        let hash = id_hash(state, &id);
        let store = state.app.store();
        let row = match ui_sessions::get(store.pool(), &hash, store.clock().now_ms()).await {
            Ok(Some(row)) => row,
            Ok(None) => return Err(to_sign_in()),
            Err(e) => {
                tracing::error!(error = %e, "could not read a UI session");
                return Err(crate::view::refused(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "The server could not read your session; try again.",
                )
                .into_response());
            }
        };
        let token = store
            .open_sealed(&ui_sessions::identity(&hash), &row.token)
            .await
            .ok()
            .and_then(|t| String::from_utf8(t).ok())
            .ok_or_else(to_sign_in)?;
        Ok(Session { api: Api { state: state.app.clone(), token: Some(token), peer: peer(parts) } })
    }
}

/// The API without a token (for the sign-in page's logins).
pub(crate) struct Anonymous {
    pub api: Api,
}

impl FromRequestParts<UiState> for Anonymous {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, Self::Rejection> {
        Ok(Anonymous { api: Api { state: state.app.clone(), token: None, peer: peer(parts) } })
    }
}
