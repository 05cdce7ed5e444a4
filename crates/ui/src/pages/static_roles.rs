//! Static roles of an AWS mount: an existing IAM user whose access key keymint rotates on a
//! period. List, create, edit (user and period), delete, and read the current key.

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::notice;
use crate::api::Api;
use crate::view::{Chrome, render};

pub(crate) struct StaticRow {
    pub name: String,
    pub username: String,
    pub period: String,
    pub can_read_key: bool,
    pub can_delete: bool,
}

#[derive(Template)]
#[template(path = "static_roles.html")]
struct StaticRoles {
    page: Chrome,
    mount: String,
    base: String,
    roles: Vec<StaticRow>,
    notices: Vec<String>,
    message: Option<String>,
    error: Option<String>,
    key: Option<(String, String, String, String)>,
    can_save: bool,
}

async fn show(
    api: &Api,
    mount: &str,
    message: Option<String>,
    error: Option<String>,
    key: Option<(String, String, String, String)>,
) -> Response {
    let listed = api.list(&format!("{mount}/static-roles")).await;
    let mut notices = Vec::new();
    if !listed.ok() && listed.status != StatusCode::NOT_FOUND {
        notices.push(notice(&format!("list the static roles of {mount}/"), &listed));
    }
    let names: Vec<&str> =
        listed.data()["keys"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let any = format!("{mount}/static-roles/*");
    let mut asked = vec![any.clone()];
    for name in &names {
        asked.push(format!("{mount}/static-roles/{name}"));
        asked.push(format!("{mount}/static-creds/{name}"));
    }
    let may = super::May::ask(api, &asked).await;
    let mut roles = Vec::new();
    for name in names {
        let role = api.get(&format!("{mount}/static-roles/{name}")).await;
        let text = |k: &str| match &role.data()[k] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        roles.push(StaticRow {
            name: name.to_string(),
            username: text("username"),
            period: format!("{}s", text("rotation_period")),
            can_read_key: may.to(&format!("{mount}/static-creds/{name}"), &["read"]),
            can_delete: may.to(&format!("{mount}/static-roles/{name}"), &["delete"]),
        });
    }
    let page = StaticRoles {
        page: Chrome::signed_in("Static roles", "static"),
        mount: mount.to_string(),
        base: format!("/ui/aws/{mount}/static-roles"),
        roles,
        notices,
        message,
        error,
        key,
        can_save: may.to(&any, &["create", "update"]),
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn page(api: &Api, mount: &str) -> Response {
    show(api, mount, None, None, None).await
}

/// `POST /ui/aws/<mount>/static-roles`: `op` = `save` (name, username, rotation_period),
/// `delete` or `creds` (name).
pub(crate) async fn submit(api: &Api, mount: &str, form: &HashMap<String, String>) -> Response {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let name = field("name");
    if !crate::pages::valid_name(&name) {
        return show(
            api,
            mount,
            None,
            Some("Give the static role a name: letters, digits, - _ . @.".into()),
            None,
        )
        .await;
    }
    match field("op").as_str() {
        "delete" => {
            let answer = api.delete(&format!("{mount}/static-roles/{name}")).await;
            if answer.ok() {
                show(
                    api,
                    mount,
                    Some(format!("Deleted static role {name}; keymint deleted the key it made.")),
                    None,
                    None,
                )
                .await
            } else {
                show(api, mount, None, Some(notice(&format!("delete static role {name}"), &answer)), None)
                    .await
            }
        }
        "creds" => {
            let answer = api.get(&format!("{mount}/static-creds/{name}")).await;
            if answer.ok() {
                let d = answer.data();
                let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                let key = (name.clone(), text("access_key"), text("secret_key"), text("expiration"));
                show(api, mount, None, None, Some(key)).await
            } else {
                show(api, mount, None, Some(notice(&format!("read the key of {name}"), &answer)), None).await
            }
        }
        _ => {
            let body = json!({"username": field("username"), "rotation_period": field("rotation_period")});
            let answer = api.post(&format!("{mount}/static-roles/{name}"), &body).await;
            if answer.ok() {
                show(api, mount, Some(format!("Saved static role {name}.")), None, None).await
            } else {
                show(api, mount, None, Some(notice(&format!("save static role {name}"), &answer)), None).await
            }
        }
    }
}
