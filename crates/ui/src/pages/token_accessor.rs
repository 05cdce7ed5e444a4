//! One token, by its accessor: its facts (never the token itself: a lookup by accessor has no
//! id), renewing it by an increment, and revoking it after a page that says what goes with it.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::notice;
use super::tokens::{self, CreateForm, Shown, own_accessor, span, strings, text, time_left, when};
use crate::UiState;
use crate::api::Api;
use crate::session::{self, Session};
use crate::view::{Chrome, FieldErrors, render};

#[derive(Template)]
#[template(path = "token.html")]
struct TokenPage {
    page: Chrome,
    accessor: String,
    facts: Vec<(&'static str, String)>,
    renewable: bool,
    mine: bool,
    message: Option<String>,
    warnings: Vec<String>,
    error: Option<String>,
}

fn yes_no(value: &Value) -> String {
    if *value == true { "Yes" } else { "No" }.to_string()
}

/// What a person wants to know of a token, from its lookup data, in order.
fn facts(data: &Value) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Display name", text(&data["display_name"])),
        ("Policies", strings(&data["policies"]).join(", ")),
        ("Time left", time_left(data)),
        ("Issued", data["issue_time"].as_str().map(when).unwrap_or_default()),
        ("Renewable", yes_no(&data["renewable"])),
        ("Orphan", yes_no(&data["orphan"])),
        (
            "Explicit max TTL",
            match data["explicit_max_ttl"].as_u64() {
                Some(0) | None => "None".to_string(),
                Some(secs) => span(secs),
            },
        ),
        (
            "Uses left",
            match data["num_uses"].as_u64() {
                Some(0) | None => "No limit".to_string(),
                Some(n) => n.to_string(),
            },
        ),
        ("Created through", text(&data["path"])),
    ];
    if let Some(period) = data["period"].as_u64() {
        facts.push(("Period", span(period)));
    }
    if let Some(role) = data["role"].as_str() {
        facts.push(("Token role", role.to_string()));
    }
    let cidrs = strings(&data["bound_cidrs"]);
    if !cidrs.is_empty() {
        facts.push(("Bound CIDRs", cidrs.join(", ")));
    }
    if let Some(meta) = data["meta"].as_object() {
        let pairs: Vec<String> = meta.iter().map(|(k, v)| format!("{k}={}", text(v))).collect();
        facts.push(("Metadata", pairs.join(", ")));
    }
    if let Some(at) = data["last_renewal"].as_str() {
        facts.push(("Last renewal", when(at)));
    }
    facts
}

async fn token_page(
    api: &Api,
    accessor: &str,
    message: Option<String>,
    warnings: Vec<String>,
    error: Option<String>,
) -> Response {
    let answer = api.post("auth/token/lookup-accessor", &json!({"accessor": accessor})).await;
    let lookup_error = (!answer.ok()).then(|| match answer.status {
        StatusCode::BAD_REQUEST => format!("No live token has the accessor {accessor}."),
        _ => notice(&format!("look up the token with accessor {accessor}"), &answer),
    });
    let page = TokenPage {
        page: Chrome::signed_in("Token", "tokens"),
        accessor: accessor.to_string(),
        facts: if answer.ok() { facts(answer.data()) } else { Vec::new() },
        renewable: answer.data()["renewable"] == true,
        mine: own_accessor(api).await.as_deref() == Some(accessor),
        message,
        warnings,
        error: error.or(lookup_error),
    };
    render(StatusCode::OK, &page)
}

/// The tokens page with `error` above it (a form of this module was sent without an accessor).
async fn no_accessor(api: &Api) -> Response {
    let shown = Shown {
        message: None,
        error: Some("Give the accessor of a token.".to_string()),
        status: StatusCode::BAD_REQUEST,
    };
    let form = CreateForm { renewable: true, ..CreateForm::default() };
    tokens::show(api, &HashMap::new(), shown, None, form, FieldErrors::default()).await
}

fn accessor_in(fields: &HashMap<String, String>) -> Option<String> {
    fields.get("accessor").map(|a| a.trim().to_string()).filter(|a| !a.is_empty())
}

/// `GET /ui/tokens/accessor?accessor=`.
pub(crate) async fn lookup(session: Session, Query(query): Query<HashMap<String, String>>) -> Response {
    match accessor_in(&query) {
        Some(accessor) => token_page(&session.api, &accessor, None, Vec::new(), None).await,
        None => no_accessor(&session.api).await,
    }
}

/// `POST /ui/tokens/renew` `{accessor, increment}`.
pub(crate) async fn renew(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let api = &session.api;
    let Some(accessor) = accessor_in(&form) else { return no_accessor(api).await };
    let mut body = json!({"accessor": accessor});
    if let Some(increment) = form.get("increment").map(|i| i.trim()).filter(|i| !i.is_empty()) {
        body["increment"] = json!(increment);
    }
    let answer = api.post("auth/token/renew-accessor", &body).await;
    if answer.ok() {
        let secs = answer.body["auth"]["lease_duration"].as_u64().unwrap_or(0);
        let message = format!("Renewed: it expires {} from now.", span(secs));
        token_page(api, &accessor, Some(message), strings(&answer.body["warnings"]), None).await
    } else {
        let error = notice(&format!("renew the token with accessor {accessor}"), &answer);
        token_page(api, &accessor, None, Vec::new(), Some(error)).await
    }
}

#[derive(Template)]
#[template(path = "token_revoke.html")]
struct ConfirmRevoke {
    page: Chrome,
    accessor: String,
    facts: Vec<(&'static str, String)>,
    mine: bool,
    error: Option<String>,
}

/// `GET /ui/tokens/revoke?accessor=`: what revoking the token takes with it, and the button.
pub(crate) async fn confirm_revoke(
    session: Session,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let api = &session.api;
    let Some(accessor) = accessor_in(&query) else { return no_accessor(api).await };
    let answer = api.post("auth/token/lookup-accessor", &json!({"accessor": accessor})).await;
    // A token that may revoke but not look up is still offered the button: the server decides.
    let (facts, error) = if answer.ok() {
        let all = facts(answer.data());
        let shown = ["Display name", "Policies", "Time left", "Orphan"];
        (all.into_iter().filter(|(k, _)| shown.contains(k)).collect(), None)
    } else {
        (Vec::new(), Some(notice(&format!("look up the token with accessor {accessor}"), &answer)))
    };
    let page = ConfirmRevoke {
        page: Chrome::signed_in("Revoke a token", "tokens"),
        mine: own_accessor(api).await.as_deref() == Some(accessor.as_str()),
        accessor,
        facts,
        error,
    };
    render(StatusCode::OK, &page)
}

/// `POST /ui/tokens/revoke` `{accessor}`. When the signed-in token went with it (it was the
/// token, or one of its parents), the session is over: it is forgotten and the browser sent to
/// the sign-in page.
pub(crate) async fn revoke(
    State(state): State<UiState>,
    parts: Parts,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let api = &session.api;
    let Some(accessor) = accessor_in(&form) else { return no_accessor(api).await };
    // A token that may not look itself up (no default policy) cannot tell it went; it is
    // then left to the next page's notices.
    let alive = api.get("auth/token/lookup-self").await.ok();
    let answer = api.post("auth/token/revoke-accessor", &json!({"accessor": accessor})).await;
    if !answer.ok() {
        let error = notice(&format!("revoke the token with accessor {accessor}"), &answer);
        return token_page(api, &accessor, None, Vec::new(), Some(error)).await;
    }
    if alive && api.get("auth/token/lookup-self").await.status == StatusCode::FORBIDDEN {
        session::end(&state, &parts).await;
        let mut response = Redirect::to("/ui/sign-in").into_response();
        if let Ok(value) = session::cookie(&state, None).parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    let shown = Shown {
        message: Some(format!(
            "Revoked the token with accessor {accessor}, the tokens created under it, and their leases."
        )),
        error: None,
        status: StatusCode::OK,
    };
    let form = CreateForm { renewable: true, ..CreateForm::default() };
    tokens::show(api, &HashMap::new(), shown, None, form, FieldErrors::default()).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::facts;

    #[test]
    fn facts_leave_out_what_the_token_does_not_have_and_never_show_an_id() {
        let data = json!({
            "accessor": "acc", "id": "hvs.never-shown", "display_name": "token-ci", "policies": ["default", "ops"],
            "ttl": 60, "expire_time": "2030-01-01T00:00:00Z", "issue_time": "2029-12-31T23:59:00Z",
            "renewable": true, "orphan": false, "explicit_max_ttl": 0, "num_uses": 3,
            "path": "auth/token/create", "meta": {"team": "ops"}
        });
        let facts = facts(&data);
        let get = |k: &str| facts.iter().find(|(name, _)| *name == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Policies"), Some("default, ops"));
        assert_eq!(get("Uses left"), Some("3"));
        assert_eq!(get("Explicit max TTL"), Some("None"));
        assert_eq!(get("Metadata"), Some("team=ops"));
        assert_eq!(get("Period"), None);
        assert_eq!(get("Token role"), None);
        assert!(!facts.iter().any(|(_, v)| v.contains("hvs.never-shown")), "never the token itself");
    }
}
