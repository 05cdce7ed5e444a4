//! Generating credentials for a role (shown once), revoking a lease, and deleting a role after
//! saying how many leases stay live.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{notice, roles};
use crate::api::Api;
use crate::session::Session;
use crate::view::{Chrome, render};

#[derive(Template)]
#[template(path = "creds.html")]
struct Creds {
    page: Chrome,
    mount: String,
    role: String,
    action: String,
    kind: String,
    role_arns: Vec<String>,
    error: Option<String>,
    issued: Option<Issued>,
    /// What the token may do here (`sys/capabilities-self`): offered actions only.
    can_generate: bool,
    can_renew: bool,
    can_revoke: bool,
}

pub(crate) struct Issued {
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    pub lease_id: String,
    pub lease_duration: u64,
    pub expires: String,
    pub env: String,
    pub profile: String,
    pub json: String,
    /// STS leases cannot be revoked in AWS: revoking removes the record only.
    pub sts: bool,
    pub renewable: bool,
}

async fn role_facts(api: &Api, mount: &str, role: &str) -> (String, Vec<String>) {
    let answer = api.get(&format!("{mount}/roles/{role}")).await;
    let kind = answer.data()["credential_type"].as_str().unwrap_or_default().to_string();
    let arns = crate::api::strings(&answer.data()["role_arns"]);
    (kind, arns)
}

/// The paths whose capabilities the page needs, and what the token may do at them.
async fn may(api: &Api, mount: &str, role: &str) -> (String, super::May) {
    let creds = format!("{mount}/creds/{role}");
    let paths = [creds.clone(), "sys/leases/revoke".into(), "sys/leases/renew".into()];
    (creds, super::May::ask(api, &paths).await)
}

#[allow(clippy::too_many_arguments)]
async fn show(
    api: &Api,
    mount: &str,
    role: &str,
    kind: String,
    role_arns: Vec<String>,
    error: Option<String>,
    issued: Option<Issued>,
    status: StatusCode,
) -> Response {
    let (creds, may) = may(api, mount, role).await;
    let page = Creds {
        can_generate: may.to(&creds, &["read", "update"]),
        can_renew: may.to("sys/leases/renew", &["update"]),
        can_revoke: may.to("sys/leases/revoke", &["update"]),
        page: Chrome::signed_in("Credentials", "roles"),
        mount: mount.to_string(),
        role: role.to_string(),
        action: format!("/ui/aws/{mount}/creds/{role}"),
        kind,
        role_arns,
        error,
        issued,
    };
    render(status, &page)
}

pub(crate) async fn page(api: &Api, mount: &str, role: &str) -> Response {
    let (kind, arns) = role_facts(api, mount, role).await;
    show(api, mount, role, kind, arns, None, None, StatusCode::OK).await
}

/// `POST`: mints credentials (`ttl`, `role_arn` when the role has several).
pub(crate) async fn generate(api: &Api, mount: &str, role: &str, form: &HashMap<String, String>) -> Response {
    let (kind, arns) = role_facts(api, mount, role).await;
    let mut body = Map::new();
    for field in ["ttl", "role_arn"] {
        if let Some(v) = form.get(field).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            body.insert(field.into(), json!(v));
        }
    }
    // A token that may read the path gets its keys with a read (the parameters in the query),
    // as `vault read aws/creds/<role> ttl=1h` does; one that may only update, with a write.
    let (creds, may) = may(api, mount, role).await;
    let answer = if may.to(&creds, &["read"]) {
        let query: Vec<String> = body
            .iter()
            .map(|(k, v)| format!("{k}={}", super::encode(v.as_str().unwrap_or_default())))
            .collect();
        let path = if query.is_empty() { creds } else { format!("{creds}?{}", query.join("&")) };
        api.get(&path).await
    } else {
        api.post(&creds, &Value::Object(body)).await
    };
    if !answer.ok() {
        let status =
            if answer.status == StatusCode::FORBIDDEN { StatusCode::FORBIDDEN } else { StatusCode::OK };
        return show(
            api,
            mount,
            role,
            kind,
            arns,
            Some(notice(&format!("generate credentials for {role}"), &answer)),
            None,
            status,
        )
        .await;
    }
    let data = answer.data();
    let text = |k: &str| data[k].as_str().unwrap_or_default().to_string();
    let (access_key, secret_key, session_token) =
        (text("access_key"), text("secret_key"), text("session_token"));
    let lease_duration = answer.body["lease_duration"].as_u64().unwrap_or(0);
    let now = keymint_store::from_millis(api.state.store().clock().now_ms());
    let expires = (now + chrono_secs(lease_duration)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let token_line = if session_token.is_empty() {
        String::new()
    } else {
        format!("\nexport AWS_SESSION_TOKEN={session_token}")
    };
    let env = format!(
        "export AWS_ACCESS_KEY_ID={access_key}\nexport AWS_SECRET_ACCESS_KEY={secret_key}{token_line}"
    );
    let token_cfg = if session_token.is_empty() {
        String::new()
    } else {
        format!("\naws_session_token = {session_token}")
    };
    let profile = format!(
        "[{role}]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}{token_cfg}"
    );
    let mut json_creds =
        json!({"AccessKeyId": access_key, "SecretAccessKey": secret_key, "Expiration": expires});
    if !session_token.is_empty() {
        json_creds["SessionToken"] = json!(session_token);
    }
    let issued = Issued {
        sts: kind != "iam_user",
        renewable: answer.body["renewable"].as_bool().unwrap_or(false),
        lease_id: answer.body["lease_id"].as_str().unwrap_or_default().to_string(),
        lease_duration,
        expires,
        env,
        profile,
        json: serde_json::to_string_pretty(&json_creds).unwrap_or_default(),
        access_key,
        secret_key,
        session_token,
    };
    show(api, mount, role, kind, arns, None, Some(issued), StatusCode::OK).await
}

fn chrono_secs(secs: u64) -> chrono::TimeDelta {
    chrono::TimeDelta::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000).min(i64::MAX / 1000))
}

#[derive(Template)]
#[template(path = "done.html")]
struct Done {
    page: Chrome,
    heading: &'static str,
    message: Option<String>,
    error: Option<String>,
    back: String,
}

/// `POST /ui/leases/revoke` `{lease_id}`.
pub(crate) async fn revoke(session: Session, Form(form): Form<HashMap<String, String>>) -> Response {
    let lease_id = form.get("lease_id").cloned().unwrap_or_default();
    let answer = session.api.post("sys/leases/revoke", &json!({"lease_id": lease_id})).await;
    let (message, error, status) = if answer.ok() {
        (Some(format!("Revoked lease {lease_id}.")), None, StatusCode::OK)
    } else {
        let status =
            if answer.status == StatusCode::FORBIDDEN { StatusCode::FORBIDDEN } else { StatusCode::OK };
        (None, Some(notice(&format!("revoke lease {lease_id}"), &answer)), status)
    };
    let page = Done {
        page: Chrome::signed_in("Lease", "roles"),
        heading: "Revoke a lease",
        message,
        error,
        back: "/ui/aws/aws/roles".into(),
    };
    render(status, &page)
}

#[derive(Template)]
#[template(path = "role_delete.html")]
struct ConfirmDelete {
    page: Chrome,
    action: String,
    role: String,
    warning: String,
}

pub(crate) async fn confirm_delete(api: &Api, mount: &str, role: &str) -> Response {
    let live: Option<u64> = super::active_leases(api)
        .await
        .map(|all| all.iter().filter(|l| l.mount == mount && l.role == role).map(|l| l.leases).sum());
    let warning = match live {
        Some(n) => format!(
            "Deleting role {role} leaves its {n} live lease(s) alone: they stay valid until they expire or are revoked."
        ),
        None => format!(
            "Deleting role {role} leaves its live leases alone: they stay valid until they expire or are revoked."
        ),
    };
    let page = ConfirmDelete {
        page: Chrome::signed_in("Delete a role", "roles"),
        action: format!("/ui/aws/{mount}/roles/{role}/delete"),
        role: role.to_string(),
        warning,
    };
    render(StatusCode::OK, &page)
}

pub(crate) async fn delete(api: &Api, mount: &str, role: &str) -> Response {
    let answer = api.delete(&format!("{mount}/roles/{role}")).await;
    let message = if answer.ok() {
        format!("Deleted role {role}.")
    } else {
        notice(&format!("delete role {role}"), &answer)
    };
    roles::list(api, mount, Some(message)).await
}
