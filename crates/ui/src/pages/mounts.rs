//! Mounts: the secrets engines and auth methods, enabling one, and disabling one after a
//! warning of what goes with it.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::notice;
use crate::api::Api;
use crate::session::Session;
use crate::view::{Chrome, render};

pub(crate) struct Row {
    pub path: String,
    pub kind: String,
    pub description: String,
    /// `secrets` or `auth`: which API disables it.
    pub class: &'static str,
    pub can_disable: bool,
}

#[derive(Template)]
#[template(path = "mounts.html")]
struct Mounts {
    page: Chrome,
    notices: Vec<String>,
    message: Option<String>,
    error: Option<String>,
    engines: Vec<Row>,
    methods: Vec<Row>,
    can_enable: bool,
}

fn rows(answer: &crate::api::Answer, class: &'static str) -> Vec<Row> {
    let mut out = Vec::new();
    for (path, mount) in answer.data().as_object().into_iter().flatten() {
        out.push(Row {
            path: path.clone(),
            kind: mount["type"].as_str().unwrap_or_default().to_string(),
            description: mount["description"].as_str().unwrap_or_default().to_string(),
            class,
            can_disable: true,
        });
    }
    out
}

async fn mounts_page(
    api: &Api,
    status: StatusCode,
    message: Option<String>,
    error: Option<String>,
) -> Response {
    let (engines, methods) = tokio::join!(api.get("sys/mounts"), api.get("sys/auth"));
    let mut notices = Vec::new();
    if !engines.ok() {
        notices.push(notice("list the secrets engines (sys/mounts)", &engines));
    }
    if !methods.ok() {
        notices.push(notice("list the auth methods (sys/auth)", &methods));
    }
    let mut engines = rows(&engines, "secrets");
    let mut methods: Vec<Row> = rows(&methods, "auth").into_iter().filter(|r| r.kind != "token").collect();
    let api_path = |r: &Row| {
        let path = r.path.trim_end_matches('/');
        if r.class == "auth" { format!("sys/auth/{path}") } else { format!("sys/mounts/{path}") }
    };
    let mut asked: Vec<String> = engines.iter().chain(&methods).map(api_path).collect();
    asked.extend(["sys/mounts/*".to_string(), "sys/auth/*".to_string()]);
    let may = super::May::ask(api, &asked).await;
    for row in engines.iter_mut().chain(methods.iter_mut()) {
        row.can_disable = may.to(&api_path(row), &["delete"]);
    }
    let page = Mounts {
        page: Chrome::signed_in("Mounts", "mounts"),
        notices,
        message,
        error,
        engines,
        methods,
        can_enable: may.to("sys/mounts/*", &["create", "update"])
            || may.to("sys/auth/*", &["create", "update"]),
    };
    render(status, &page)
}

pub(crate) async fn page(session: Session) -> Response {
    mounts_page(&session.api, StatusCode::OK, None, None).await
}

/// A mount path as typed: no leading or trailing `/`, nothing that climbs.
fn clean_path(path: &str) -> Option<String> {
    let path = path.trim().trim_matches('/');
    let ok = !path.is_empty()
        && path.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
        && path.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    ok.then(|| path.to_string())
}

/// `POST /ui/mounts`: enable a secrets engine (`aws`) or an auth method.
pub(crate) async fn enable(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let api = &session.api;
    let kind = form.get("mount_type").map(String::as_str).unwrap_or_default();
    let Some(path) = clean_path(form.get("mount_path").map(String::as_str).unwrap_or_default()) else {
        return mounts_page(
            api,
            StatusCode::BAD_REQUEST,
            None,
            Some("Enter a path such as aws-prod.".into()),
        )
        .await;
    };
    let description = form.get("description").cloned().unwrap_or_default();
    let target = match kind {
        "aws" => format!("sys/mounts/{path}"),
        "approle" | "jwt" | "kubernetes" => format!("sys/auth/{path}"),
        _ => return mounts_page(api, StatusCode::BAD_REQUEST, None, Some("Choose a type.".into())).await,
    };
    let answer = api.post(&target, &json!({"type": kind, "description": description})).await;
    if answer.ok() {
        mounts_page(api, StatusCode::OK, Some(format!("Enabled {kind} at {path}/.")), None).await
    } else {
        mounts_page(api, answer.status, None, Some(notice(&format!("enable {path}/"), &answer))).await
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct Which {
    path: String,
    class: String,
}

#[derive(Template)]
#[template(path = "mounts_disable.html")]
struct ConfirmDisable {
    page: Chrome,
    path: String,
    class: String,
    warning: String,
}

/// The leases a mount holds, by the metrics; `None` when the token may not read them.
async fn lease_count(api: &Api, path: &str) -> Option<u64> {
    let bare = path.trim_end_matches('/');
    let all = super::active_leases(api).await?;
    Some(all.iter().filter(|l| l.mount == bare).map(|l| l.leases).sum())
}

/// `GET /ui/mounts/disable?path=…&class=…`: what disabling will do, and a button to do it.
pub(crate) async fn confirm_disable(session: Session, Query(which): Query<Which>) -> Response {
    let warning = if which.class == "auth" {
        format!(
            "Disabling {} revokes every token its logins issued, and the AWS leases those tokens hold.",
            which.path
        )
    } else {
        match lease_count(&session.api, &which.path).await {
            Some(n) => format!(
                "Disabling {} first revokes its {n} lease(s): the IAM users and keys they hold are deleted.",
                which.path
            ),
            None => format!(
                "Disabling {} first revokes all its leases (your token may not read how many).",
                which.path
            ),
        }
    };
    let page = ConfirmDisable {
        page: Chrome::signed_in("Disable a mount", "mounts"),
        path: which.path,
        class: which.class,
        warning,
    };
    render(StatusCode::OK, &page)
}

/// `POST /ui/mounts/disable`.
pub(crate) async fn disable(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let api = &session.api;
    let Some(path) = clean_path(form.get("path").map(String::as_str).unwrap_or_default()) else {
        return mounts_page(api, StatusCode::BAD_REQUEST, None, Some("No such mount.".into())).await;
    };
    let target = match form.get("class").map(String::as_str) {
        Some("auth") => format!("sys/auth/{path}"),
        _ => format!("sys/mounts/{path}"),
    };
    let answer = api.delete(&target).await;
    if answer.ok() {
        mounts_page(api, StatusCode::OK, Some(format!("Disabled {path}/.")), None).await
    } else {
        let status =
            if answer.status == StatusCode::FORBIDDEN { StatusCode::FORBIDDEN } else { StatusCode::OK };
        mounts_page(api, status, None, Some(notice(&format!("disable {path}/"), &answer))).await
    }
}
