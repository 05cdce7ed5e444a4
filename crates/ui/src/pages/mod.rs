//! The pages, one module each.

pub(crate) mod aws;
pub(crate) mod aws_config;
pub(crate) mod creds;
pub(crate) mod leases;
pub(crate) mod mounts;
pub(crate) mod overview;
pub(crate) mod policies;
pub(crate) mod roles;
pub(crate) mod sign_in;
pub(crate) mod static_roles;
pub(crate) mod token_accessor;
pub(crate) mod token_roles;
pub(crate) mod tokens;

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

/// Whether `name` may name a role, a policy or a token role in a UI path or form: letters,
/// digits and `-_.@`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

/// A list field as typed: one item a line (or comma-separated), trimmed, empty ones dropped.
pub(crate) fn items(text: &str) -> Vec<String> {
    text.split(['\n', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// `text` encoded for a URL's query.
pub(crate) fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// What the signed-in token may do at some paths, as `sys/capabilities-self` says, so a page
/// offers only the actions the token may take. When the server does not say (the token may not
/// ask), every action is offered and a refusal shows as a notice, as before.
pub(crate) struct May {
    known: Option<std::collections::HashMap<String, Vec<String>>>,
}

impl May {
    /// Asks once for all of `paths`.
    pub async fn ask(api: &crate::api::Api, paths: &[String]) -> May {
        if paths.is_empty() {
            return May { known: Some(Default::default()) };
        }
        let answer = api.post("sys/capabilities-self", &serde_json::json!({ "paths": paths })).await;
        let known = answer.ok().then(|| {
            paths
                .iter()
                .map(|p| {
                    let caps = answer.data()[p.as_str()]
                        .as_array()
                        .map(|c| c.iter().filter_map(serde_json::Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default();
                    (p.clone(), caps)
                })
                .collect()
        });
        May { known }
    }

    /// Whether the token has one of `caps` at `path` (root has all; `deny` none). A path that
    /// was not asked about, or an answer the server did not give, counts as allowed.
    pub fn to(&self, path: &str, caps: &[&str]) -> bool {
        let Some(held) = self.known.as_ref().and_then(|k| k.get(path)) else { return true };
        if held.iter().any(|c| c == "deny") {
            return false;
        }
        held.iter().any(|c| c == "root" || caps.contains(&c.as_str()))
    }
}

/// One `keymint_leases_active` sample of `sys/metrics`: live leases of a mount's role.
pub(crate) struct ActiveLeases {
    /// The mount path without its trailing `/`.
    pub mount: String,
    pub role: String,
    pub credential_type: String,
    pub leases: u64,
}

/// The live leases by mount and role, as the metrics count them; `None` when the token may not
/// read `sys/metrics`. Every page that shows lease numbers reads them here, so the pages and the
/// dashboards agree.
pub(crate) async fn active_leases(api: &crate::api::Api) -> Option<Vec<ActiveLeases>> {
    let metrics = api.get("sys/metrics").await;
    metrics.ok().then(|| active_leases_in(&metrics.body))
}

pub(crate) fn active_leases_in(metrics: &serde_json::Value) -> Vec<ActiveLeases> {
    let label = |g: &serde_json::Value, k: &str| g["Labels"][k].as_str().unwrap_or_default().to_string();
    metrics["Gauges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|g| g["Name"] == "keymint_leases_active")
        .map(|g| ActiveLeases {
            mount: label(g, "mount").trim_end_matches('/').to_string(),
            role: label(g, "role"),
            credential_type: label(g, "credential_type"),
            leases: g["Value"].as_f64().unwrap_or(0.0).max(0.0) as u64,
        })
        .collect()
}
