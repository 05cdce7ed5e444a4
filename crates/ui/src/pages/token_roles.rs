//! Token roles (`auth/token/roles/<name>`): the list, a form with every field keymint's route
//! takes (the whole role is written each time, so the form is what is stored), and delete after
//! a confirmation. The server checks the role; its errors are shown beside their fields.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::notice;
use super::tokens::{span, strings, text};
use crate::api::Api;
use crate::view::{Chrome, FieldErrors, render};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One line (a duration, a number, a suffix).
    Text,
    /// Items, one per line (or comma-separated).
    List,
    /// A checkbox.
    Flag,
    /// `token_type`: one of [`TOKEN_TYPES`].
    Choice,
    /// A duration in seconds, shown as `1h`, `90m` or `45s`; empty for 0.
    Secs,
}

const TOKEN_TYPES: &[&str] = &["default-service", "service"];

/// The fields of the form: API name, label, kind, hint.
const FIELDS: &[(&str, &str, Kind, &str)] = &[
    (
        "allowed_policies",
        "Allowed policies",
        Kind::List,
        "Its tokens may hold these, even ones the creator does not; empty: only the creator's.",
    ),
    ("disallowed_policies", "Disallowed policies", Kind::List, "Its tokens may never hold these."),
    (
        "allowed_policies_glob",
        "Allowed policy patterns",
        Kind::List,
        "Like allowed policies, with * (team-*).",
    ),
    (
        "disallowed_policies_glob",
        "Disallowed policy patterns",
        Kind::List,
        "Like disallowed policies, with *.",
    ),
    ("orphan", "Orphan tokens", Kind::Flag, "Its tokens have no parent: revoking their creator leaves them."),
    ("renewable", "Renewable", Kind::Flag, "Its tokens can be renewed, up to their maximum."),
    ("token_no_default_policy", "Leave out the default policy", Kind::Flag, ""),
    ("token_ttl", "Default TTL", Kind::Secs, "For example 1h; empty for the mount's (32 days)."),
    ("token_max_ttl", "Maximum TTL", Kind::Secs, "Renewals included; empty for the mount's (32 days)."),
    (
        "token_explicit_max_ttl",
        "Explicit max TTL",
        Kind::Secs,
        "A hard cap no renewal passes; empty for none.",
    ),
    ("token_period", "Period", Kind::Secs, "Makes its tokens periodic: each renewal restores this TTL."),
    (
        "token_num_uses",
        "Uses per token",
        Kind::Text,
        "Requests before a token is revoked; empty or 0 for no limit.",
    ),
    ("token_type", "Token type", Kind::Choice, "keymint issues service tokens only."),
    (
        "token_bound_cidrs",
        "Bound CIDRs",
        Kind::List,
        "Addresses its tokens may be used from (10.0.0.0/8); empty for any.",
    ),
    ("path_suffix", "Path suffix", Kind::Text, "Added to its tokens' path, to revoke them by prefix later."),
    (
        "allowed_entity_aliases",
        "Allowed entity aliases",
        Kind::List,
        "Aliases a creator may name (keymint ties tokens to no entity).",
    ),
];

/// Server errors that name a field in words rather than by its API name.
const PHRASES: &[(&str, &str)] =
    &[("path suffix", "path_suffix"), ("address", "token_bound_cidrs"), ("bound_cidrs", "token_bound_cidrs")];

pub(crate) struct RoleRow {
    pub name: String,
    pub allowed: String,
    pub disallowed: String,
    pub orphan: bool,
    pub renewable: bool,
    pub ttls: String,
    pub period: String,
}

#[derive(Template)]
#[template(path = "token_roles.html")]
struct Roles {
    page: Chrome,
    notices: Vec<String>,
    message: Option<String>,
    error: Option<String>,
    roles: Vec<RoleRow>,
}

/// Seconds as the list shows them, `or` for 0.
fn secs_or(value: &Value, or: &str) -> String {
    value.as_u64().filter(|s| *s > 0).map_or_else(|| or.to_string(), span)
}

async fn list(api: &Api, message: Option<String>, notices: Vec<String>, error: Option<String>) -> Response {
    let mut notices = notices;
    let listed = api.list("auth/token/roles").await;
    if !listed.ok() && listed.status != StatusCode::NOT_FOUND {
        notices.push(notice("list the token roles (auth/token/roles)", &listed));
    }
    let mut roles = Vec::new();
    for name in strings(&listed.data()["keys"]) {
        let role = api.get(&format!("auth/token/roles/{name}")).await;
        let d = role.data();
        let or_none =
            |items: Vec<String>| if items.is_empty() { "—".to_string() } else { items.join(", ") };
        roles.push(RoleRow {
            allowed: or_none(
                [strings(&d["allowed_policies"]), strings(&d["allowed_policies_glob"])].concat(),
            ),
            disallowed: or_none(
                [strings(&d["disallowed_policies"]), strings(&d["disallowed_policies_glob"])].concat(),
            ),
            orphan: d["orphan"] == true,
            renewable: d["renewable"] == true,
            ttls: format!(
                "{} / {}",
                secs_or(&d["token_ttl"], "default"),
                secs_or(&d["token_max_ttl"], "default")
            ),
            period: secs_or(&d["token_period"], "—"),
            name,
        });
    }
    let page = Roles { page: Chrome::signed_in("Token roles", "tokens"), notices, message, error, roles };
    render(StatusCode::OK, &page)
}

/// `GET /ui/tokens/roles`.
pub(crate) async fn page(session: crate::session::Session) -> Response {
    list(&session.api, None, Vec::new(), None).await
}

pub(crate) struct FormField {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    pub hint: &'static str,
    pub value: String,
}

impl FormField {
    pub fn is(&self, kind: &str) -> bool {
        match self.kind {
            Kind::Text | Kind::Secs => kind == "text",
            Kind::List => kind == "list",
            Kind::Flag => kind == "flag",
            Kind::Choice => kind == "choice",
        }
    }

    pub fn checked(&self) -> bool {
        self.value == "true"
    }

    /// The ids of what describes the field (its error, its hint), for `aria-describedby`.
    pub fn described(&self, has_error: bool) -> String {
        let error = has_error.then(|| format!("{}-error", self.name));
        let hint = (!self.hint.is_empty()).then(|| format!("{}-hint", self.name));
        error.into_iter().chain(hint).collect::<Vec<_>>().join(" ")
    }
}

#[derive(Template)]
#[template(path = "token_role_form.html")]
struct RoleForm {
    page: Chrome,
    name: String,
    new: bool,
    fields: Vec<FormField>,
    types: &'static [&'static str],
    errors: FieldErrors,
}

/// A duration in seconds as the form shows it: the largest whole unit Vault parses.
fn duration(secs: u64) -> String {
    match secs {
        0 => String::new(),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A stored value as the form shows it.
fn shown(value: &Value, kind: Kind) -> String {
    match kind {
        Kind::List => strings(value).join("\n"),
        Kind::Flag => (*value == true).to_string(),
        Kind::Secs => duration(value.as_u64().unwrap_or(0)),
        Kind::Text if value.as_u64() == Some(0) => String::new(),
        Kind::Text | Kind::Choice => text(value),
    }
}

fn form_page(
    name: &str,
    new: bool,
    fields: Vec<FormField>,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    let page = RoleForm {
        page: Chrome::signed_in(if new { "New token role" } else { "Edit token role" }, "tokens"),
        name: name.to_string(),
        new,
        fields,
        types: TOKEN_TYPES,
        errors,
    };
    render(status, &page)
}

fn fields_from(value_of: impl Fn(&'static str, Kind) -> String) -> Vec<FormField> {
    FIELDS
        .iter()
        .map(|(name, label, kind, hint)| FormField {
            name,
            label,
            kind: *kind,
            hint,
            value: value_of(name, *kind),
        })
        .collect()
}

/// `GET /ui/tokens/roles/<name>` (`new`: an empty form, with Vault's defaults).
pub(crate) async fn edit(session: crate::session::Session, Path(name): Path<String>) -> Response {
    if name == "new" {
        let defaults = json!({"renewable": true, "token_type": "default-service"});
        let fields = fields_from(|field, kind| shown(&defaults[field], kind));
        return form_page("", true, fields, FieldErrors::default(), StatusCode::OK);
    }
    if !crate::pages::valid_name(&name) {
        return super::not_found().await;
    }
    let role = session.api.get(&format!("auth/token/roles/{name}")).await;
    if !role.ok() {
        return list(&session.api, None, Vec::new(), Some(notice(&format!("read token role {name}"), &role)))
            .await;
    }
    let fields = fields_from(|field, kind| shown(&role.data()[field], kind));
    form_page(&name, false, fields, FieldErrors::default(), StatusCode::OK)
}

/// `POST /ui/tokens/roles`: writes the whole role from the form (`name`, `new`, the fields).
pub(crate) async fn save(
    session: crate::session::Session,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let api = &session.api;
    let name = form.get("name").map(|n| n.trim().to_string()).unwrap_or_default();
    let new = form.get("new").is_some_and(|v| v == "true");
    let fields = fields_from(|field, kind| match kind {
        // An unchecked box is not sent.
        Kind::Flag => (form.get(field).map(String::as_str) == Some("true")).to_string(),
        _ => form.get(field).cloned().unwrap_or_default(),
    });
    let fail = |errors: FieldErrors, fields, status| form_page(&name, new, fields, errors, status);
    if !crate::pages::valid_name(&name) {
        let error = "Give the token role a name: letters, digits, - _ . @.".to_string();
        return fail(FieldErrors::at("name", error), fields, StatusCode::BAD_REQUEST);
    }
    if new && api.get(&format!("auth/token/roles/{name}")).await.ok() {
        let error = format!("A token role named {name} exists already: edit it from the list instead.");
        return fail(FieldErrors::at("name", error), fields, StatusCode::BAD_REQUEST);
    }
    let mut body = Map::new();
    for f in fields.iter().filter(|f| !(f.kind == Kind::Choice && f.value.trim().is_empty())) {
        let value = match f.kind {
            Kind::List => json!(crate::pages::items(&f.value)),
            Kind::Flag => json!(f.checked()),
            Kind::Text | Kind::Secs | Kind::Choice => json!(f.value.trim()),
        };
        body.insert(f.name.to_string(), value);
    }
    let answer = api.post(&format!("auth/token/roles/{name}"), &Value::Object(body)).await;
    if !answer.ok() {
        let (errors, status) = if answer.status == StatusCode::FORBIDDEN {
            (FieldErrors::general(notice(&format!("save token role {name}"), &answer)), StatusCode::FORBIDDEN)
        } else {
            let names: Vec<&'static str> = FIELDS.iter().map(|(f, ..)| *f).collect();
            (FieldErrors::place_with(answer.errors(), &names, PHRASES), StatusCode::BAD_REQUEST)
        };
        return fail(errors, fields, status);
    }
    list(api, Some(format!("Saved token role {name}.")), strings(&answer.body["warnings"]), None).await
}

#[derive(Template)]
#[template(path = "token_role_delete.html")]
struct ConfirmDelete {
    page: Chrome,
    name: String,
}

/// `GET /ui/tokens/roles/<name>/delete`.
pub(crate) async fn confirm_delete(_session: crate::session::Session, Path(name): Path<String>) -> Response {
    if !crate::pages::valid_name(&name) {
        return super::not_found().await;
    }
    render(StatusCode::OK, &ConfirmDelete { page: Chrome::signed_in("Delete a token role", "tokens"), name })
}

/// `POST /ui/tokens/roles/<name>/delete`.
pub(crate) async fn delete(session: crate::session::Session, Path(name): Path<String>) -> Response {
    if !crate::pages::valid_name(&name) {
        return super::not_found().await;
    }
    let answer = session.api.delete(&format!("auth/token/roles/{name}")).await;
    if answer.ok() {
        list(&session.api, Some(format!("Deleted token role {name}.")), Vec::new(), None).await
    } else {
        list(&session.api, None, Vec::new(), Some(notice(&format!("delete token role {name}"), &answer)))
            .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Kind, duration, shown};

    #[test]
    fn stored_values_are_shown_as_the_form_takes_them_back() {
        assert_eq!(duration(0), "");
        assert_eq!(duration(7200), "2h");
        assert_eq!(duration(90), "90s");
        assert_eq!(duration(5400), "90m");
        assert_eq!(shown(&json!(["a", "b"]), Kind::List), "a\nb");
        assert_eq!(shown(&json!(true), Kind::Flag), "true");
        assert_eq!(shown(&json!(null), Kind::Flag), "false");
        assert_eq!(shown(&json!(0), Kind::Text), "");
        assert_eq!(shown(&json!(3), Kind::Text), "3");
        assert_eq!(shown(&json!("service"), Kind::Choice), "service");
    }
}
