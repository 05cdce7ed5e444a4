//! Roles of an AWS mount: the list (type, TTLs, live leases), a form per credential type with
//! only the fields that type uses, delete after a warning, and generating credentials.

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::notice;
use crate::api::Api;
use crate::view::{Chrome, FieldErrors, render};

pub(crate) const TYPES: &[&str] = &["iam_user", "assumed_role", "federation_token", "session_token"];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One line.
    Text,
    /// Several lines (a JSON document).
    Area,
    /// Items, one per line (or comma-separated).
    List,
    /// `key=value`, one per line.
    Pairs,
}

/// The fields a credential type uses, with their labels.
fn fields_of(kind: &str) -> &'static [(&'static str, &'static str, Kind)] {
    const POLICIES: [(&str, &str, Kind); 2] = [
        ("policy_document", "Policy document (JSON)", Kind::Area),
        ("policy_arns", "Managed policy ARNs", Kind::List),
    ];
    match kind {
        "iam_user" => &[
            POLICIES[0],
            POLICIES[1],
            ("iam_groups", "IAM groups", Kind::List),
            ("permissions_boundary_arn", "Permissions boundary ARN", Kind::Text),
            ("user_path", "IAM path of the users", Kind::Text),
            ("iam_tags", "Tags (key=value)", Kind::Pairs),
            ("default_ttl", "Default lease TTL", Kind::Text),
            ("max_ttl", "Maximum lease TTL", Kind::Text),
        ],
        "assumed_role" => &[
            ("role_arns", "Role ARNs", Kind::List),
            ("external_id", "External ID", Kind::Text),
            POLICIES[0],
            POLICIES[1],
            ("iam_groups", "IAM groups (their policies are added)", Kind::List),
            ("session_tags", "Session tags (key=value)", Kind::Pairs),
            ("default_sts_ttl", "Default STS TTL", Kind::Text),
            ("max_sts_ttl", "Maximum STS TTL", Kind::Text),
        ],
        "federation_token" => &[
            POLICIES[0],
            POLICIES[1],
            ("iam_groups", "IAM groups (their policies are added)", Kind::List),
            ("default_sts_ttl", "Default STS TTL", Kind::Text),
            ("max_sts_ttl", "Maximum STS TTL", Kind::Text),
        ],
        _ => &[
            ("default_sts_ttl", "Default STS TTL", Kind::Text),
            ("max_sts_ttl", "Maximum STS TTL", Kind::Text),
            ("mfa_serial_number", "MFA device serial number", Kind::Text),
        ],
    }
}

pub(crate) struct FormField {
    pub name: &'static str,
    pub label: &'static str,
    pub area: bool,
    pub hint: &'static str,
    pub value: String,
}

fn hint(kind: Kind) -> &'static str {
    match kind {
        Kind::List => "One per line.",
        Kind::Pairs => "One key=value per line.",
        Kind::Area => "JSON, checked before it is saved.",
        Kind::Text => "",
    }
}

/// A stored value as the form shows it.
fn shown(value: &Value, kind: Kind) -> String {
    match (value, kind) {
        (Value::Null, _) => String::new(),
        (Value::Array(items), _) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"),
        (Value::Object(map), _) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n"),
        (Value::String(s), Kind::Area) => serde_json::from_str::<Value>(s)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| s.clone()),
        (Value::String(s), _) => s.clone(),
        (Value::Number(n), _) if n.as_u64() == Some(0) => String::new(),
        (other, _) => other.to_string(),
    }
}

pub(crate) struct RoleRow {
    pub name: String,
    pub kind: String,
    pub ttls: String,
    pub leases: String,
    pub link: String,
    pub can_generate: bool,
    pub can_delete: bool,
}

#[derive(Template)]
#[template(path = "roles.html")]
struct Roles {
    page: Chrome,
    mount: String,
    base: String,
    notices: Vec<String>,
    message: Option<String>,
    roles: Vec<RoleRow>,
    types: &'static [&'static str],
    can_create: bool,
}

/// Leases by role of `mount`, from the metrics; `None` when the token may not read them.
async fn leases_by_role(api: &Api, mount: &str) -> Option<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for l in super::active_leases(api).await?.into_iter().filter(|l| l.mount == mount) {
        *out.entry(l.role).or_default() += l.leases;
    }
    Some(out)
}

pub(crate) async fn list(api: &Api, mount: &str, message: Option<String>) -> Response {
    let mut notices = Vec::new();
    let listed = api.list(&format!("{mount}/roles")).await;
    let names = crate::api::strings(&listed.data()["keys"]);
    if !listed.ok() && listed.status != StatusCode::NOT_FOUND {
        notices.push(notice(&format!("list the roles of {mount}/"), &listed));
    }
    let leases = leases_by_role(api, mount).await;
    let any_role = format!("{mount}/roles/*");
    let mut asked = vec![any_role.clone()];
    for name in &names {
        asked.push(format!("{mount}/roles/{name}"));
        asked.push(format!("{mount}/creds/{name}"));
    }
    let may = super::May::ask(api, &asked).await;
    let mut roles = Vec::new();
    for name in names {
        let role = api.get(&format!("{mount}/roles/{name}")).await;
        let data = role.data();
        let kind = data["credential_type"].as_str().unwrap_or_default().to_string();
        let ttl = |k: &str| {
            data[k].as_u64().filter(|t| *t > 0).map_or_else(|| "default".to_string(), |t| format!("{t}s"))
        };
        let ttls = if kind == "iam_user" {
            format!("{} / {}", ttl("default_ttl"), ttl("max_ttl"))
        } else {
            format!("{} / {}", ttl("default_sts_ttl"), ttl("max_sts_ttl"))
        };
        let count = leases
            .as_ref()
            .map_or_else(|| "not shown".to_string(), |l| l.get(&name).copied().unwrap_or(0).to_string());
        roles.push(RoleRow {
            can_generate: may.to(&format!("{mount}/creds/{name}"), &["read", "update"]),
            can_delete: may.to(&format!("{mount}/roles/{name}"), &["delete"]),
            link: format!("/ui/aws/{mount}/roles/{name}"),
            name,
            kind,
            ttls,
            leases: count,
        });
    }
    let page = Roles {
        page: Chrome::signed_in("Roles", "roles"),
        mount: mount.to_string(),
        base: format!("/ui/aws/{mount}"),
        notices,
        message,
        roles,
        types: TYPES,
        can_create: may.to(&any_role, &["create", "update"]),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "role_form.html")]
struct RoleForm {
    page: Chrome,
    mount: String,
    base: String,
    name: String,
    new: bool,
    kind: String,
    fields: Vec<FormField>,
    errors: FieldErrors,
    message: Option<String>,
}

/// The form of role `name` (`None`: a new role of `kind`).
pub(crate) async fn form(api: &Api, mount: &str, name: Option<&str>, kind: &str) -> Response {
    let (stored, kind) = match name {
        Some(name) => {
            let role = api.get(&format!("{mount}/roles/{name}")).await;
            if !role.ok() {
                return list(api, mount, Some(notice(&format!("read role {name}"), &role))).await;
            }
            let kind = role.data()["credential_type"].as_str().unwrap_or("iam_user").to_string();
            (role.data().clone(), kind)
        }
        None => (Value::Null, kind.to_string()),
    };
    let fields = fields_of(&kind)
        .iter()
        .map(|(field, label, k)| FormField {
            name: field,
            label,
            area: *k == Kind::Area,
            hint: hint(*k),
            value: shown(&stored[*field], *k),
        })
        .collect();
    let errors = FieldErrors::default();
    show_form(mount, name.unwrap_or_default(), name.is_none(), &kind, fields, errors, None, StatusCode::OK)
}

#[allow(clippy::too_many_arguments)]
fn show_form(
    mount: &str,
    name: &str,
    new: bool,
    kind: &str,
    fields: Vec<FormField>,
    errors: FieldErrors,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let page = RoleForm {
        page: Chrome::signed_in(if new { "New role" } else { "Edit role" }, "roles"),
        mount: mount.to_string(),
        base: format!("/ui/aws/{mount}"),
        name: name.to_string(),
        new,
        kind: kind.to_string(),
        fields,
        errors,
        message,
    };
    render(status, &page)
}

/// `POST` of the role form: the body the API takes, checked first where the UI can.
pub(crate) async fn save(api: &Api, mount: &str, form: &HashMap<String, String>) -> Response {
    let kind = form.get("credential_type").cloned().unwrap_or_default();
    let name = form.get("name").map(|n| n.trim().to_string()).unwrap_or_default();
    let new = form.get("new").is_some_and(|v| v == "true");
    let spec = fields_of(&kind);
    let fields: Vec<FormField> = spec
        .iter()
        .map(|(field, label, k)| FormField {
            name: field,
            label,
            area: *k == Kind::Area,
            hint: hint(*k),
            value: form.get(*field).cloned().unwrap_or_default(),
        })
        .collect();
    let fail = |errors: FieldErrors, fields| {
        show_form(mount, &name, new, &kind, fields, errors, None, StatusCode::BAD_REQUEST)
    };
    if !TYPES.contains(&kind.as_str()) {
        return fail(FieldErrors::general("Choose a credential type.".into()), fields);
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
        return fail(
            FieldErrors::at("name", "Give the role a name: letters, digits, - _ . @.".into()),
            fields,
        );
    }
    let mut body = Map::new();
    body.insert("credential_type".into(), json!(kind));
    for (field, _, k) in spec {
        let text = form.get(*field).map(|v| v.trim().to_string()).unwrap_or_default();
        let value = match k {
            Kind::Text => json!(text),
            Kind::Area => {
                if !text.is_empty()
                    && let Err(e) = serde_json::from_str::<Value>(&text)
                {
                    let error = format!("The policy document is not valid JSON: {e}");
                    return fail(FieldErrors::at(field, error), fields);
                }
                json!(text)
            }
            Kind::List => json!(crate::pages::items(&text)),
            Kind::Pairs => {
                let mut map = Map::new();
                for line in crate::pages::items(&text) {
                    let Some((k, v)) = line.split_once('=') else {
                        return fail(FieldErrors::at(field, format!("{line:?} is not key=value")), fields);
                    };
                    map.insert(k.trim().to_string(), json!(v.trim()));
                }
                Value::Object(map)
            }
        };
        body.insert((*field).to_string(), value);
    }
    let answer = api.post(&format!("{mount}/roles/{name}"), &Value::Object(body)).await;
    if !answer.ok() {
        let status = if answer.status == StatusCode::FORBIDDEN {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let errors = if answer.status == StatusCode::FORBIDDEN {
            FieldErrors::general(notice(&format!("save role {name}"), &answer))
        } else {
            let names: Vec<&'static str> = spec.iter().map(|(f, _, _)| *f).collect();
            FieldErrors::place(answer.errors(), &names)
        };
        return show_form(mount, &name, new, &kind, fields, errors, None, status);
    }
    list(api, mount, Some(format!("Saved role {name}."))).await
}
