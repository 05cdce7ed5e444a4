//! The AWS account of a mount (`<mount>/config/root`): static keys (the secret is write-only),
//! or a role to assume with an external id, and the endpoints and region. **Test connection**
//! checks the form's values with AWS without saving anything (`config/root/verify`); **Save**
//! runs the same check and stores them.

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::notice;
use crate::api::Api;
use crate::view::{Chrome, render};

/// The form's fields, in order, with their labels; the secret is handled apart.
const FIELDS: &[(&str, &str)] = &[
    ("access_key", "Access key ID"),
    ("region", "Region"),
    ("iam_endpoint", "IAM endpoint"),
    ("sts_endpoint", "STS endpoint"),
    ("expected_account_id", "Expected account ID"),
    ("role_arn", "Role ARN"),
    ("external_id", "External ID"),
    ("role_session_name", "Role session name"),
];

pub(crate) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub value: String,
}

#[derive(Template)]
#[template(path = "aws_config.html")]
struct AwsConfig {
    page: Chrome,
    mount: String,
    action: String,
    fields: Vec<Field>,
    secret_set: bool,
    notices: Vec<String>,
    connected: Option<String>,
    error: Option<String>,
}

fn text(data: &Value, key: &str) -> String {
    match &data[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

struct View {
    status: StatusCode,
    values: HashMap<String, String>,
    secret_set: bool,
    notices: Vec<String>,
    connected: Option<String>,
    error: Option<String>,
}

fn show(mount: &str, view: View) -> Response {
    let fields = FIELDS
        .iter()
        .map(|(name, label)| Field {
            name,
            label,
            value: view.values.get(*name).cloned().unwrap_or_default(),
        })
        .collect();
    let page = AwsConfig {
        page: Chrome::signed_in("AWS account", "aws"),
        mount: mount.to_string(),
        action: format!("/ui/aws/{mount}/config"),
        fields,
        secret_set: view.secret_set,
        notices: view.notices,
        connected: view.connected,
        error: view.error,
    };
    render(view.status, &page)
}

pub(crate) async fn page(api: &Api, mount: &str) -> Response {
    let answer = api.get(&format!("{mount}/config/root")).await;
    let mut notices = Vec::new();
    let mut values = HashMap::new();
    let mut secret_set = false;
    if answer.ok() {
        for (name, _) in FIELDS {
            values.insert((*name).to_string(), text(answer.data(), name));
        }
        secret_set = !text(answer.data(), "access_key").is_empty();
    } else if answer.status != StatusCode::NOT_FOUND {
        notices.push(notice(&format!("read {mount}/config/root"), &answer));
    }
    show(mount, View { status: StatusCode::OK, values, secret_set, notices, connected: None, error: None })
}

/// `POST /ui/aws/<mount>/config`, `action` = `test` or `save`.
pub(crate) async fn submit(api: &Api, mount: &str, form: &HashMap<String, String>) -> Response {
    // Only what the form gives: an empty secret keeps the stored one (config/root merges).
    let mut body = Map::new();
    for (name, _) in FIELDS {
        let value = form.get(*name).map(|v| v.trim().to_string()).unwrap_or_default();
        body.insert((*name).to_string(), Value::String(value));
    }
    if let Some(secret) = form.get("secret_key").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        body.insert("secret_key".into(), Value::String(secret.to_string()));
    }
    let saving = form.get("action").map(String::as_str) == Some("save");
    let path = if saving { format!("{mount}/config/root") } else { format!("{mount}/config/root/verify") };
    let answer = api.post(&path, &Value::Object(body)).await;
    let values: HashMap<String, String> =
        FIELDS.iter().map(|(n, _)| ((*n).to_string(), form.get(*n).cloned().unwrap_or_default())).collect();
    let stored = api.get(&format!("{mount}/config/root")).await;
    let secret_set = stored.ok() && !text(stored.data(), "access_key").is_empty();
    let mut view = View {
        status: StatusCode::OK,
        values,
        secret_set,
        notices: Vec::new(),
        connected: None,
        error: None,
    };
    if answer.ok() {
        let who = answer.data();
        let account = text(who, "account_id");
        let arn = text(who, "arn");
        let lead = if saving { "Saved. Connected" } else { "Connected (nothing saved)" };
        view.connected = Some(if account.is_empty() {
            format!("{lead}.")
        } else {
            format!("{lead}: account {account}, {arn}")
        });
    } else {
        view.status =
            if answer.status == StatusCode::FORBIDDEN { StatusCode::FORBIDDEN } else { StatusCode::OK };
        let what = if saving { "save the AWS account" } else { "test the connection" };
        view.error = Some(notice(what, &answer));
    }
    show(mount, view)
}
