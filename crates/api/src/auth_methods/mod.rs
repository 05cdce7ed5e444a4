//! Auth methods: AppRole, JWT/OIDC and Kubernetes, mounted under `auth/` through `sys/auth`.
//!
//! Each method keeps its configuration and roles as JSON entries of its mount
//! (`keymint_store::auth_methods`); a role's token settings are the shared
//! [`TokenFields`], flattened into the role. An accepted login becomes a token through
//! [`keymint_auth::login::issue`], and is answered here in Vault's `auth` block. Every login,
//! accepted or refused, is counted by method and outcome.

pub(crate) mod approle;
pub(crate) mod jwt;
#[cfg(test)]
mod jwt_tests;
pub(crate) mod kubernetes;
pub(crate) mod mounts;
#[cfg(test)]
mod tests;

use keymint_auth::login::{Grant, Issued, RenewLimits};
use keymint_auth::token_fields::{LEGACY_NAMES, TokenFields};
use keymint_store::auth_methods::{self as rows, EntryRow};
use keymint_store::mounts::MountRow;
use keymint_store::tokens::TokenRow;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::AppState;
use crate::dispatch::{Call, Fields};
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};

/// The auth method types keymint can mount (besides the built-in `token`).
pub(crate) const METHOD_TYPES: &[&str] = &["approle", "jwt", "kubernetes"];

/// The token fields' parameters of a role route, with Vault's legacy names as aliases.
macro_rules! token_params {
    ($($extra:expr),* $(,)?) => {
        &[
            $($extra,)*
            $crate::routes::p("token_ttl", $crate::routes::Kind::Duration, "Default TTL of the tokens this role issues.").alias(&["ttl"]),
            $crate::routes::p("token_max_ttl", $crate::routes::Kind::Duration, "Longest TTL of the tokens this role issues.").alias(&["max_ttl"]),
            $crate::routes::p("token_policies", $crate::routes::Kind::CommaList, "Policies of the tokens this role issues.").alias(&["policies"]),
            $crate::routes::p("token_bound_cidrs", $crate::routes::Kind::CommaList, "CIDRs the tokens may be used from.").alias(&["bound_cidrs"]),
            $crate::routes::p("token_explicit_max_ttl", $crate::routes::Kind::Duration, "A hard cap on the tokens' lifetime, renewals included."),
            $crate::routes::p("token_no_default_policy", $crate::routes::Kind::Bool, "Leave the default policy out."),
            $crate::routes::p("token_num_uses", $crate::routes::Kind::Int, "Uses per token; 0 for unlimited.").alias(&["num_uses"]),
            $crate::routes::p("token_period", $crate::routes::Kind::Duration, "Makes the tokens periodic, renewable by this much forever.").alias(&["period"]),
            $crate::routes::p("token_type", $crate::routes::Kind::String, "default, service or batch (keymint issues service tokens)."),
        ]
    };
}
pub(crate) use token_params;

/// The token fields of a role write, over `existing` (a merge: fields left out keep their
/// value), checked as Vault checks them. `approle` allows AppRole's extra token types.
pub(crate) fn token_fields(
    fields: &Fields<'_>,
    data: &crate::fields::RequestData,
    existing: TokenFields,
    approle: bool,
) -> ApiResult<(TokenFields, Vec<String>)> {
    let mut f = existing;
    let secs = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    if let Some(v) = fields.duration("token_ttl")? {
        f.token_ttl = secs(v);
    }
    if let Some(v) = fields.duration("token_max_ttl")? {
        f.token_max_ttl = secs(v);
    }
    if let Some(v) = fields.list("token_policies")? {
        f.token_policies = v;
    }
    if let Some(v) = fields.list("token_bound_cidrs")? {
        f.token_bound_cidrs = v.into_iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect();
    }
    if let Some(v) = fields.duration("token_explicit_max_ttl")? {
        f.token_explicit_max_ttl = secs(v);
    }
    if let Some(v) = fields.bool("token_no_default_policy")? {
        f.token_no_default_policy = v;
    }
    if let Some(v) = fields.int("token_num_uses")? {
        f.token_num_uses = v;
    }
    if let Some(v) = fields.duration("token_period")? {
        f.token_period = secs(v);
    }
    if let Some(v) = fields.string("token_type")? {
        f.token_type = v;
    }
    // A field sent under its legacy name alone is echoed under that name on reads; sent under
    // its new name, the legacy echo stops.
    for (new, old) in LEGACY_NAMES {
        if data.contains(new) {
            f.legacy.retain(|l| l != old);
        } else if data.contains(old) && !f.legacy.iter().any(|l| l == old) {
            f.legacy.push((*old).to_string());
        }
    }
    let warnings = f.check(approle).map_err(ApiError::BadRequest)?;
    Ok((f, warnings))
}

/// A mount's JSON entry, decoded.
pub(crate) async fn load<T: DeserializeOwned>(
    state: &AppState,
    mount: &MountRow,
    kind: &str,
    name: &str,
) -> ApiResult<Option<T>> {
    let Some(row) = rows::get(state.store().pool(), &mount.id, kind, name).await? else {
        return Ok(None);
    };
    let value = serde_json::from_str(&row.body).map_err(|e| {
        ApiError::hidden(&keymint_store::StoreError::Corrupt(format!("{} {kind} {name:?}: {e}", mount.path)))
    })?;
    Ok(Some(value))
}

/// Stores a mount's JSON entry (its secret part sealed, when it has one).
pub(crate) async fn save<T: Serialize>(
    state: &AppState,
    mount: &MountRow,
    kind: &str,
    name: &str,
    value: &T,
    secret: Option<&str>,
) -> ApiResult<()> {
    let body = serde_json::to_string(value)
        .map_err(|e| ApiError::hidden(&keymint_store::StoreError::Corrupt(format!("encode {kind}: {e}"))))?;
    let secret = secret
        .filter(|s| !s.is_empty())
        .map(|s| state.store().seal().seal(&rows::secret_identity(&mount.id, kind, name), s.as_bytes()));
    let row = EntryRow { body, secret, updated_at: state.now_ms() };
    rows::put(state.store().pool(), &mount.id, kind, name, &row).await?;
    Ok(())
}

/// The sealed secret of a mount's entry, opened.
pub(crate) async fn secret_of(
    state: &AppState,
    mount: &MountRow,
    kind: &str,
    name: &str,
) -> ApiResult<Option<String>> {
    let Some(row) = rows::get(state.store().pool(), &mount.id, kind, name).await? else {
        return Ok(None);
    };
    let Some(sealed) = row.secret else { return Ok(None) };
    let plain = state.store().open_sealed(&rows::secret_identity(&mount.id, kind, name), &sealed).await?;
    Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
}

/// A role's token fields, read from any method's role body (they are flattened into it).
fn role_token_fields(body: &str) -> Option<TokenFields> {
    serde_json::from_str(body).ok()
}

/// What a login's token renews within: its role's token settings and its mount's tuning as
/// they are now. `None` for tokens that no login issued; an error when the role (or the
/// mount) is gone, so the token is not renewed.
pub(crate) async fn renew_limits(state: &AppState, row: &TokenRow) -> ApiResult<Option<RenewLimits>> {
    let (Some(mount_id), Some(role)) = (&row.auth_mount, &row.auth_role) else {
        return Ok(None);
    };
    let pool = state.store().pool();
    let gone = || ApiError::BadRequest(format!("role {role:?} does not exist during renewal"));
    let mount = keymint_store::mounts::get_by_id(pool, mount_id).await?.ok_or_else(gone)?;
    let entry = rows::get(pool, mount_id, rows::ROLE, role).await?.ok_or_else(gone)?;
    let fields = role_token_fields(&entry.body).ok_or_else(gone)?;
    Ok(Some(RenewLimits {
        fields,
        mount_default_ttl: mount.default_lease_ttl,
        mount_max_ttl: mount.max_lease_ttl,
    }))
}

/// `role/<name>` of any method: the existence check of a write (role names are lowercased).
pub(crate) async fn role_exists(state: AppState, target: crate::dispatch::Target) -> ApiResult<bool> {
    let Some(mount) = target.mount.as_ref() else { return Ok(false) };
    let name = target.name().to_lowercase();
    Ok(rows::get(state.store().pool(), &mount.id, rows::ROLE, &name).await?.is_some())
}

/// `LIST role` of any method: 404 when there are none, as in Vault.
pub(crate) async fn list_roles(c: &Call) -> ApiResult<Reply> {
    let keys = rows::names(c.state.store().pool(), &mount_of(c)?.id, rows::ROLE).await?;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

/// The mount a method's route serves.
pub(crate) fn mount_of(c: &Call) -> ApiResult<&MountRow> {
    c.target.mount.as_ref().ok_or(ApiError::UnsupportedPath)
}

/// A grant's common part for a login on `mount` with `role`.
pub(crate) fn grant(mount: &MountRow, role_name: &str, fields: TokenFields) -> Grant {
    Grant {
        mount_id: mount.id.clone(),
        mount_path: mount.path.clone(),
        mount_default_ttl: mount.default_lease_ttl,
        mount_max_ttl: mount.max_lease_ttl,
        role_name: role_name.to_string(),
        display_name: String::new(),
        metadata: Default::default(),
        fields,
        bound_cidrs: None,
    }
}

/// Issues the token of an accepted login and answers with Vault's `auth` block.
pub(crate) async fn issue(state: &AppState, grant: Grant) -> ApiResult<Reply> {
    let Issued { token, row, policies, warnings } =
        keymint_auth::login::issue(state.store(), grant, state.now_ms()).await?;
    tracing::info!(
        token.accessor = %row.accessor,
        auth.mount = row.path.trim_end_matches("login"),
        auth.role = row.auth_role.as_deref().unwrap_or_default(),
        "login accepted"
    );
    let meta: Value = serde_json::from_str(&row.meta).unwrap_or(Value::Null);
    let auth = json!({
        "client_token": token,
        "accessor": row.accessor,
        "policies": policies,
        "token_policies": policies,
        "metadata": if meta.as_object().is_some_and(|m| !m.is_empty()) { meta } else { Value::Null },
        "lease_duration": row.ttl,
        "renewable": row.renewable == 1,
        "entity_id": "",
        "token_type": "service",
        "orphan": true,
        "mfa_requirement": Value::Null,
        "num_uses": row.num_uses.max(0),
    });
    Ok(Reply { auth: Some(auth), warnings, ..Default::default() })
}

/// Runs a method's login and counts it by outcome: `ok`, `refused` (the caller's fault: a 4xx)
/// or `error` (ours or a dependency's).
pub(crate) async fn counted(
    method: &str,
    login: impl std::future::Future<Output = ApiResult<Reply>>,
) -> ApiResult<Reply> {
    let outcome = login.await;
    let label = match &outcome {
        Ok(_) => "ok",
        Err(e) if e.status().is_client_error() => "refused",
        Err(_) => "error",
    };
    crate::metrics::record_login(method, label);
    if let Err(e) = &outcome
        && label == "refused"
    {
        tracing::info!(auth.method = method, reason = %e, "login refused");
    }
    outcome
}

/// A role read's answer: the method's own fields, then the token fields.
pub(crate) fn role_json(own: Value, tokens: &TokenFields) -> Value {
    let mut out = match own {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    out.extend(tokens.to_json());
    Value::Object(out)
}
