//! Leases: browse by mount and role (the lease-id prefix tree, with a filter and pages), look
//! one up, renew it, revoke it; revoke or force-revoke a whole prefix after typing it again;
//! the irrevocable leases with their errors and a retry.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{encode, notice};
use crate::session::Session;
use crate::view::{Chrome, render};

const PAGE: usize = 50;

pub(crate) struct Entry {
    pub name: String,
    pub link: String,
    pub folder: bool,
}

#[derive(Template)]
#[template(path = "leases.html")]
struct Leases {
    page: Chrome,
    can_revoke_prefix: bool,
    can_force: bool,
    prefix: String,
    parent: Option<String>,
    filter: String,
    entries: Vec<Entry>,
    more: Option<String>,
    notices: Vec<String>,
    message: Option<String>,
    error: Option<String>,
}

fn link(prefix: &str) -> String {
    format!("/ui/leases?prefix={}", encode(prefix))
}

async fn browse(
    session: &Session,
    query: &HashMap<String, String>,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let prefix = query.get("prefix").map(|p| p.trim_start_matches('/').to_string()).unwrap_or_default();
    let filter = query.get("filter").cloned().unwrap_or_default();
    let page_no: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    let mut notices = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let listed = session.api.list(&format!("sys/leases/lookup/{prefix}")).await;
    if listed.ok() {
        keys = crate::api::strings(&listed.data()["keys"]);
    } else if listed.status != StatusCode::NOT_FOUND {
        notices.push(notice(
            &format!("list the leases under {}", if prefix.is_empty() { "/" } else { &prefix }),
            &listed,
        ));
    }
    keys.retain(|k| filter.is_empty() || k.contains(&filter));
    let total = keys.len();
    let entries = keys
        .into_iter()
        .skip(page_no * PAGE)
        .take(PAGE)
        .map(|k| {
            let full = format!("{prefix}{k}");
            let folder = k.ends_with('/');
            let link =
                if folder { link(&full) } else { format!("/ui/leases/lookup?lease_id={}", encode(&full)) };
            Entry { name: k, link, folder }
        })
        .collect();
    let more = (total > (page_no + 1) * PAGE).then(|| {
        format!("/ui/leases?prefix={}&filter={}&page={}", encode(&prefix), encode(&filter), page_no + 1)
    });
    let parent = (!prefix.is_empty()).then(|| {
        let trimmed = prefix.trim_end_matches('/');
        link(&trimmed.rsplit_once('/').map_or(String::new(), |(head, _)| format!("{head}/")))
    });
    // Revoking a prefix needs sudo on the path, as in Vault; forcing it, on its own path.
    let (revoke, force) =
        (format!("sys/leases/revoke-prefix/{prefix}"), format!("sys/leases/revoke-force/{prefix}"));
    let may = super::May::ask(&session.api, &[revoke.clone(), force.clone()]).await;
    let page = Leases {
        page: Chrome::signed_in("Leases", "leases"),
        can_revoke_prefix: may.to(&revoke, &["sudo"]) && may.to(&revoke, &["update"]),
        can_force: may.to(&force, &["sudo"]) && may.to(&force, &["update"]),
        prefix,
        parent,
        filter,
        entries,
        more,
        notices,
        message,
        error,
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn page(session: Session, Query(query): Query<HashMap<String, String>>) -> Response {
    browse(&session, &query, None, None).await
}

#[derive(Template)]
#[template(path = "lease.html")]
struct Lease {
    page: Chrome,
    lease_id: String,
    facts: Vec<(&'static str, String)>,
    renewable: bool,
    sts: bool,
    can_renew: bool,
    can_revoke: bool,
    /// The expiry (RFC 3339) the page counts down to.
    expires: Option<String>,
    message: Option<String>,
    error: Option<String>,
}

async fn lease_page(
    session: &Session,
    lease_id: &str,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let answer = session.api.post("sys/leases/lookup", &json!({"lease_id": lease_id})).await;
    let data = answer.data();
    let text = |k: &str| match &data[k] {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let facts = if answer.ok() {
        vec![
            ("Issued", text("issue_time")),
            ("Expires", text("expire_time")),
            ("TTL left (seconds)", text("ttl")),
            ("Credential type", text("credential_type")),
            ("Renewable", text("renewable")),
            ("Last renewal", text("last_renewal")),
            ("Revocation attempts", text("revocation_attempts")),
            ("Irrevocable", text("irrevocable")),
            ("Last error", text("last_error")),
        ]
    } else {
        Vec::new()
    };
    let error =
        error.or_else(|| (!answer.ok()).then(|| notice(&format!("look up lease {lease_id}"), &answer)));
    let may = super::May::ask(&session.api, &["sys/leases/renew".into(), "sys/leases/revoke".into()]).await;
    let page = Lease {
        can_renew: may.to("sys/leases/renew", &["update"]),
        can_revoke: may.to("sys/leases/revoke", &["update"]),
        page: Chrome::signed_in("Lease", "leases"),
        lease_id: lease_id.to_string(),
        facts,
        renewable: data["renewable"] == true,
        sts: answer.ok() && data["credential_type"] != "iam_user",
        expires: data["expire_time"].as_str().filter(|t| !t.is_empty()).map(str::to_string),
        message,
        error,
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn lookup(session: Session, Query(query): Query<HashMap<String, String>>) -> Response {
    let id = query.get("lease_id").cloned().unwrap_or_default();
    lease_page(&session, &id, None, None).await
}

/// `POST /ui/leases/renew` `{lease_id, increment}`.
pub(crate) async fn renew(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let id = form.get("lease_id").cloned().unwrap_or_default();
    let mut body = json!({"lease_id": id});
    if let Some(increment) = form.get("increment").map(|i| i.trim()).filter(|i| !i.is_empty()) {
        body["increment"] = json!(increment);
    }
    let answer = session.api.post("sys/leases/renew", &body).await;
    if answer.ok() {
        let secs = answer.body["lease_duration"].as_u64().unwrap_or(0);
        lease_page(&session, &id, Some(format!("Renewed: {secs} seconds from now.")), None).await
    } else {
        lease_page(&session, &id, None, Some(notice(&format!("renew lease {id}"), &answer))).await
    }
}

/// `POST /ui/leases/revoke-prefix` `{prefix, confirm, force}`: `confirm` must repeat the prefix.
pub(crate) async fn revoke_prefix(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let prefix = form.get("prefix").map(|p| p.trim_start_matches('/').to_string()).unwrap_or_default();
    let force = form.get("force").is_some_and(|f| f == "true");
    let mut query = HashMap::new();
    query.insert("prefix".to_string(), prefix.clone());
    if prefix.is_empty() || form.get("confirm").map(|c| c.trim()) != Some(prefix.as_str()) {
        let error = "Type the prefix exactly, to confirm.".to_string();
        return browse(&session, &query, None, Some(error)).await;
    }
    let path = if force {
        format!("sys/leases/revoke-force/{prefix}")
    } else {
        format!("sys/leases/revoke-prefix/{prefix}")
    };
    let answer = session.api.post(&path, &json!({})).await;
    if answer.ok() {
        let what = if force { "Force-revoked (records removed, errors ignored)" } else { "Revoked" };
        browse(&session, &query, Some(format!("{what}: every lease under {prefix}.")), None).await
    } else {
        browse(&session, &query, None, Some(notice(&format!("revoke the leases under {prefix}"), &answer)))
            .await
    }
}

pub(crate) struct Stuck {
    pub lease_id: String,
    pub error: String,
    pub attempts: String,
}

#[derive(Template)]
#[template(path = "irrevocable.html")]
struct Irrevocable {
    page: Chrome,
    leases: Vec<Stuck>,
    notices: Vec<String>,
}

/// `GET /ui/leases/irrevocable`.
pub(crate) async fn irrevocable(session: Session) -> Response {
    let answer = session.api.get("sys/leases?type=irrevocable").await;
    let mut notices = Vec::new();
    let mut leases = Vec::new();
    if answer.ok() {
        for l in answer.data()["leases"].as_array().into_iter().flatten() {
            leases.push(Stuck {
                lease_id: l["lease_id"].as_str().unwrap_or_default().to_string(),
                error: l["error"].as_str().unwrap_or_default().to_string(),
                attempts: l["attempts"].to_string(),
            });
        }
    } else {
        notices.push(notice("list the irrevocable leases (sys/leases, sudo)", &answer));
    }
    let page = Irrevocable { page: Chrome::signed_in("Irrevocable leases", "leases"), leases, notices };
    render(StatusCode::OK, &page)
}
