//! The AWS account of a mount (`<mount>/config/root`): static keys (the secret and session
//! token are write-only) or the default credential chain, and independently a role to assume;
//! the expected account, region and endpoints; advanced settings, pacing and rotation. **Test
//! connection** checks the form's values with AWS without saving anything
//! (`config/root/verify`); **Save** runs the same check and stores them. The fields check the
//! API's rules as you type (HTML patterns); the server's errors are shown beside the fields
//! they name. Below: the lease of `iam_user` credentials (`config/lease`), and rotating the
//! root key now (`config/rotate-root`, after a confirmation page).

pub(crate) mod fields;
mod hints;
mod rotate;

use std::collections::HashMap;

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::notice;
use crate::api::{Answer, Api};
use crate::view::{Chrome, FieldErrors, render};
use fields::{Credentials, Group, Input, specs};

pub(crate) use rotate::{confirm_rotate, rotate};

/// One field as the template shows it.
pub(crate) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `password`, `number`, `lines` (a textarea) or `checkbox`.
    pub kind: &'static str,
    pub value: String,
    pub hint: String,
    pub pattern: &'static str,
    pub maxlength: u32,
    pub numeric: bool,
    pub min: String,
    pub max: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "aws_config.html")]
struct AwsConfig {
    page: Chrome,
    mount: String,
    action: String,
    rotate_action: String,
    keys: Vec<Field>,
    role: Vec<Field>,
    account: Vec<Field>,
    advanced: Vec<Field>,
    pacing: Vec<Field>,
    rotation: Vec<Field>,
    /// The default credential chain is chosen (else static keys).
    chain: bool,
    assume_role: bool,
    /// An advanced field has an error: its section is open.
    advanced_open: bool,
    notices: Vec<String>,
    connected: Option<String>,
    error: Option<String>,
    tip: Option<String>,
    lease: Lease,
}

/// The `config/lease` form.
pub(crate) struct Lease {
    pub action: String,
    /// The duration pattern of both fields.
    pub pattern: &'static str,
    pub lease: String,
    pub lease_max: String,
    pub errors: FieldErrors,
    pub saved: Option<String>,
}

/// What the account form shows: values by field, and how it came back from a submit.
struct View {
    values: HashMap<String, String>,
    credentials: Credentials,
    assume_role: bool,
    secret_set: bool,
    notices: Vec<String>,
    connected: Option<String>,
    error: Option<String>,
    tip: Option<String>,
    errors: FieldErrors,
}

fn secret_hint(name: &str, secret_set: bool) -> String {
    match name {
        "secret_key" if secret_set => "Never shown. A secret is set; leave this empty to keep it.".into(),
        "secret_key" => "Never shown. Not set.".into(),
        _ => "Never shown; for temporary keys only. Empty keeps the stored one, except that a new secret \
              replaces it too (empty: none)."
            .into(),
    }
}

fn show(mount: &str, view: View, lease: Lease, status: StatusCode) -> Response {
    let mut groups: HashMap<Group, Vec<Field>> = HashMap::new();
    for spec in specs() {
        let (kind, min, max) = match spec.input {
            Input::Text => ("text", String::new(), String::new()),
            Input::Secret => ("password", String::new(), String::new()),
            Input::Number(min, max) => ("number", min.to_string(), max.to_string()),
            Input::Lines => ("lines", String::new(), String::new()),
            Input::Check => ("checkbox", String::new(), String::new()),
        };
        let hint =
            if spec.input == Input::Secret { secret_hint(spec.name, view.secret_set) } else { spec.hint };
        let value = if spec.input == Input::Secret {
            String::new()
        } else {
            view.values.get(spec.name).cloned().unwrap_or_default()
        };
        groups.entry(spec.group).or_default().push(Field {
            name: spec.name,
            label: spec.label,
            kind,
            value,
            hint,
            pattern: spec.pattern,
            maxlength: spec.maxlength,
            numeric: spec.numeric,
            min,
            max,
            error: view.errors.of(spec.name),
        });
    }
    let mut take = |g| groups.remove(&g).unwrap_or_default();
    let advanced = take(Group::Advanced);
    let page = AwsConfig {
        page: Chrome::signed_in("AWS account", "aws"),
        mount: mount.to_string(),
        action: format!("/ui/aws/{mount}/config"),
        rotate_action: format!("/ui/aws/{mount}/config/rotate"),
        keys: take(Group::Keys),
        role: take(Group::Role),
        account: take(Group::Account),
        advanced_open: advanced.iter().any(|f| f.error.is_some()),
        advanced,
        pacing: take(Group::Pacing),
        rotation: take(Group::Rotation),
        chain: view.credentials == Credentials::Chain,
        assume_role: view.assume_role,
        notices: view.notices,
        connected: view.connected,
        error: view.error,
        tip: view.tip,
        lease,
    };
    render(status, &page)
}

/// The stored `config/root` (`None` when there is none), and a notice when it cannot be read.
async fn stored(api: &Api, mount: &str) -> (Option<Value>, Option<String>) {
    let answer = api.get(&format!("{mount}/config/root")).await;
    if answer.ok() {
        (Some(answer.data().clone()), None)
    } else if answer.status == StatusCode::NOT_FOUND {
        (None, None)
    } else {
        (None, Some(notice(&format!("read {mount}/config/root"), &answer)))
    }
}

/// The form's values from a stored config: every field, as the API returns it.
fn values_of(stored: Option<&Value>) -> HashMap<String, String> {
    let data = stored.cloned().unwrap_or(Value::Null);
    specs().iter().map(|s| (s.name.to_string(), s.shown(&data[s.name]))).collect()
}

fn text(data: &Value, key: &str) -> String {
    fields::shown(&data[key])
}

/// The stored `config/lease`, as the form shows it.
async fn lease_form(api: &Api, mount: &str, notices: &mut Vec<String>) -> Lease {
    let answer = api.get(&format!("{mount}/config/lease")).await;
    if !answer.ok() && answer.status != StatusCode::NOT_FOUND {
        notices.push(notice(&format!("read {mount}/config/lease"), &answer));
    }
    Lease {
        action: format!("/ui/aws/{mount}/config/lease"),
        pattern: fields::patterns::DURATION,
        lease: text(answer.data(), "lease"),
        lease_max: text(answer.data(), "lease_max"),
        errors: FieldErrors::default(),
        saved: None,
    }
}

/// The account form as stored.
async fn stored_view(api: &Api, mount: &str) -> View {
    let (stored, notice) = stored(api, mount).await;
    let access_key = stored.as_ref().map(|s| text(s, "access_key")).unwrap_or_default();
    View {
        values: values_of(stored.as_ref()),
        // Without a stored config, the form starts at static keys, the usual first setting.
        credentials: if stored.is_some() && access_key.is_empty() {
            Credentials::Chain
        } else {
            Credentials::Static
        },
        assume_role: stored.as_ref().is_some_and(|s| !text(s, "role_arn").is_empty()),
        secret_set: !access_key.is_empty(),
        notices: notice.into_iter().collect(),
        connected: None,
        error: None,
        tip: None,
        errors: FieldErrors::default(),
    }
}

pub(crate) async fn page(api: &Api, mount: &str) -> Response {
    let mut view = stored_view(api, mount).await;
    let lease = lease_form(api, mount, &mut view.notices).await;
    show(mount, view, lease, StatusCode::OK)
}

/// The names the API's errors may mention, for placing them beside their fields.
fn field_names() -> Vec<&'static str> {
    specs().iter().map(|s| s.name).collect()
}

/// Errors of a `config/root` write or verify: AWS's refusals (and the account mismatch) above
/// the form with a hint, validation errors beside the fields they name.
fn place(what: &str, answer: &Answer) -> (FieldErrors, String, Option<String>) {
    // A refusal (403) or AWS out of reach: one message.
    if answer.status != StatusCode::BAD_REQUEST {
        let text = notice(what, answer);
        let tip = hints::hint(&text);
        return (FieldErrors::default(), text, tip);
    }
    let (aws, checks): (Vec<String>, Vec<String>) = answer.errors().into_iter().partition(|e| {
        e.contains("(AWS operation ") || e.starts_with("the root credentials belong to account")
    });
    let mut placed = FieldErrors::place(checks, &field_names());
    let mut general = aws;
    general.append(&mut placed.general);
    let mut text = format!("Could not {what}");
    if !general.is_empty() {
        text = format!("{text}: {}", general.join("; "));
    }
    match placed.beside_fields() {
        0 => {}
        1 => text.push_str(". One field needs a change: its error is shown beside it."),
        n => text.push_str(&format!(". {n} fields need a change: their errors are shown beside them.")),
    }
    let tip = hints::hint(&general.join("; "));
    (placed, text, tip)
}

/// What the form itself can tell is missing before the API is asked.
fn precheck(form: &HashMap<String, String>, stored_key: &str) -> Option<FieldErrors> {
    if form.get("credentials").map(String::as_str) != Some("static") {
        return None;
    }
    let given = |name: &str| form.get(name).map(|v| v.trim()).unwrap_or_default();
    let key = given("access_key");
    if key.is_empty() {
        let error = "Give an access key ID and its secret, or choose the default credential chain.";
        return Some(FieldErrors::at("access_key", error.into()));
    }
    if given("secret_key").is_empty() && key != stored_key {
        let error = if stored_key.is_empty() {
            "Give the secret of this access key ID.".to_string()
        } else {
            format!("The stored secret belongs to access key ID {stored_key}: give the secret of this one.")
        };
        return Some(FieldErrors::at("secret_key", error));
    }
    None
}

/// `POST /ui/aws/<mount>/config`, `action` = `test` or `save`.
pub(crate) async fn submit(api: &Api, mount: &str, form: &HashMap<String, String>) -> Response {
    let saving = form.get("action").map(String::as_str) == Some("save");
    let (before, read_notice) = stored(api, mount).await;
    let stored_key = before.as_ref().map(|s| text(s, "access_key")).unwrap_or_default();
    let mut values = values_of(before.as_ref());
    for (name, value) in form {
        if let Some(slot) = values.get_mut(name) {
            slot.clone_from(value);
        }
    }
    let mut view = View {
        values,
        credentials: Credentials::of(form),
        assume_role: fields::assumes_role(form),
        secret_set: !stored_key.is_empty(),
        notices: read_notice.into_iter().collect(),
        connected: None,
        error: None,
        tip: None,
        errors: FieldErrors::default(),
    };
    let what = if saving { "save the AWS account" } else { "test the connection" };
    let mut status = StatusCode::OK;
    if let Some(errors) = precheck(form, &stored_key) {
        view.error =
            Some(format!("Could not {what}. One field needs a change: its error is shown beside it."));
        view.errors = errors;
    } else {
        let path =
            if saving { format!("{mount}/config/root") } else { format!("{mount}/config/root/verify") };
        let answer = api.post(&path, &Value::Object(fields::body(form))).await;
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
            if saving {
                // What is stored now, as the API returns it (durations in seconds).
                view = View { connected: view.connected.take(), ..stored_view(api, mount).await };
            }
        } else {
            if answer.status == StatusCode::FORBIDDEN {
                status = StatusCode::FORBIDDEN;
            }
            let (errors, text, tip) = place(what, &answer);
            (view.errors, view.error, view.tip) = (errors, Some(text), tip);
        }
    }
    let lease = lease_form(api, mount, &mut view.notices).await;
    show(mount, view, lease, status)
}

/// `POST /ui/aws/<mount>/config/lease`: `config/lease` from the small form under the account.
pub(crate) async fn save_lease(api: &Api, mount: &str, form: &HashMap<String, String>) -> Response {
    let view = stored_view(api, mount).await;
    let given = |name: &str| form.get(name).map(|v| v.trim().to_string()).unwrap_or_default();
    let mut lease = Lease {
        action: format!("/ui/aws/{mount}/config/lease"),
        pattern: fields::patterns::DURATION,
        lease: given("lease"),
        lease_max: given("lease_max"),
        errors: FieldErrors::default(),
        saved: None,
    };
    let body = json!({"lease": lease.lease, "lease_max": lease.lease_max});
    let answer = api.post(&format!("{mount}/config/lease"), &body).await;
    let mut status = StatusCode::OK;
    if answer.ok() {
        // Shown as the API now returns them.
        let mut ignored = Vec::new();
        lease = Lease {
            saved: Some("Saved the lease settings.".into()),
            ..lease_form(api, mount, &mut ignored).await
        };
    } else if answer.status == StatusCode::FORBIDDEN {
        status = StatusCode::FORBIDDEN;
        lease.errors = FieldErrors::general(notice("save the lease settings", &answer));
    } else {
        status = StatusCode::BAD_REQUEST;
        lease.errors = FieldErrors::place(answer.errors(), &["lease", "lease_max"]);
    }
    show(mount, view, lease, status)
}
