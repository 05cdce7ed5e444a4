//! ACL policies: list, view, edit with the server checking the HCL before it is stored,
//! delete.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::notice;
use crate::api::Api;
use crate::session::Session;
use crate::view::{Chrome, render};

#[derive(Template)]
#[template(path = "policies.html")]
struct Policies {
    page: Chrome,
    names: Vec<String>,
    notices: Vec<String>,
    message: Option<String>,
    can_create: bool,
}

async fn list(api: &Api, message: Option<String>) -> Response {
    let answer = api.list("sys/policies/acl").await;
    let mut notices = Vec::new();
    let names = if answer.ok() {
        crate::api::strings(&answer.data()["keys"])
    } else {
        notices.push(notice("list the policies (sys/policies/acl)", &answer));
        Vec::new()
    };
    let any = "sys/policies/acl/*".to_string();
    let may = super::May::ask(api, std::slice::from_ref(&any)).await;
    let page = Policies {
        page: Chrome::signed_in("Policies", "policies"),
        names,
        notices,
        message,
        can_create: may.to(&any, &["create", "update"]),
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn page(session: Session) -> Response {
    list(&session.api, None).await
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyForm {
    page: Chrome,
    name: String,
    new: bool,
    builtin: bool,
    text: String,
    error: Option<String>,
    message: Option<String>,
    can_save: bool,
    can_delete: bool,
}

async fn form_page(
    api: &Api,
    name: &str,
    new: bool,
    text: String,
    error: Option<String>,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let path = if new { "sys/policies/acl/*".to_string() } else { format!("sys/policies/acl/{name}") };
    let may = super::May::ask(api, std::slice::from_ref(&path)).await;
    let page = PolicyForm {
        can_save: may.to(&path, &["create", "update"]),
        can_delete: may.to(&path, &["delete"]),
        page: Chrome::signed_in(if new { "New policy" } else { "Policy" }, "policies"),
        name: name.to_string(),
        new,
        builtin: name == "root",
        text,
        error,
        message,
    };
    render(status, &page)
}

/// `GET /ui/policies/<name>` (`new`: an empty form).
pub(crate) async fn edit(session: Session, Path(name): Path<String>) -> Response {
    if name == "new" {
        return form_page(&session.api, "", true, String::new(), None, None, StatusCode::OK).await;
    }
    if !crate::pages::valid_name(&name) {
        return super::not_found().await;
    }
    let answer = session.api.get(&format!("sys/policies/acl/{name}")).await;
    if !answer.ok() {
        return list(&session.api, Some(notice(&format!("read policy {name}"), &answer))).await;
    }
    let text = answer.data()["policy"].as_str().unwrap_or_default().to_string();
    form_page(&session.api, &name, false, text, None, None, StatusCode::OK).await
}

/// `POST /ui/policies/<name>`: save (`name`, `policy`) or, with `delete`, delete.
pub(crate) async fn save(
    session: Session,
    Path(path_name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let api = &session.api;
    let name = if path_name == "new" {
        form.get("name").map(|n| n.trim().to_string()).unwrap_or_default()
    } else {
        path_name
    };
    let new = form.get("new").is_some_and(|n| n == "true");
    let text = form.get("policy").cloned().unwrap_or_default();
    if !crate::pages::valid_name(&name) {
        let error = "Give the policy a name: letters, digits, - _ . @.".to_string();
        return form_page(api, &name, new, text, Some(error), None, StatusCode::BAD_REQUEST).await;
    }
    if form.contains_key("delete") {
        let answer = api.delete(&format!("sys/policies/acl/{name}")).await;
        let message = if answer.ok() {
            format!("Deleted policy {name}.")
        } else {
            notice(&format!("delete policy {name}"), &answer)
        };
        return list(api, Some(message)).await;
    }
    let answer = api.call("PUT", &format!("sys/policies/acl/{name}"), Some(&json!({"policy": text}))).await;
    if answer.ok() {
        form_page(api, &name, false, text, None, Some(format!("Saved policy {name}.")), StatusCode::OK).await
    } else {
        let status = if answer.status == StatusCode::FORBIDDEN {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let error = Some(notice(&format!("save policy {name}"), &answer));
        form_page(api, &name, new, text, error, None, status).await
    }
}
