//! `auth/token/roles/<name>` (read, write, delete) and `auth/token/roles` (LIST): Vault's token
//! roles. A write merges as Vault's does: a new role starts from the defaults, an existing one
//! changes only in the fields given. Creating a token against a role
//! (`auth/token/create/<name>`) is in `tokens`.

use keymint_auth::token;
use keymint_auth::token_role::{self, ROLE_FIELDS, RoleWrite, TokenRole};
use keymint_store::token_roles;
use serde_json::{Value, json};
use tracing::info;

use crate::AppState;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::fields::RequestData;
use crate::request::{LogicalRequest, Operation};

const ROLE_NAME_REPLACED: &str = "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [role_name]";

/// LIST `auth/token/roles`: the role names, 404 when there are none.
pub async fn list(state: &AppState, req: &LogicalRequest) -> ApiResult<Reply> {
    if req.op != Operation::List {
        return Err(ApiError::UnsupportedOperation);
    }
    let keys = token_roles::names(state.store().pool()).await?;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

/// `auth/token/roles/<name>`.
pub async fn role(state: &AppState, name: &str, req: &LogicalRequest) -> ApiResult<Reply> {
    if !token_role::valid_name(name) {
        return Err(ApiError::UnsupportedPath);
    }
    let reply = match req.op {
        Operation::Read => {
            let role = token::load_role(state.store(), name).await?.ok_or(ApiError::NotFound)?;
            Reply::data(role.read_data())
        }
        Operation::Update => {
            let existing = token::load_role(state.store(), name).await?;
            let created = existing.is_none();
            let mut role = existing.unwrap_or_else(|| TokenRole::new(name));
            let warnings = role.apply(role_write(&req.data)?)?;
            token::save_role(state.store(), &role, state.now_ms()).await?;
            info!(token_role = %name, created, "token role written");
            Reply::written(warnings)
        }
        Operation::Delete => {
            if token_roles::delete(state.store().pool(), name).await? {
                info!(token_role = %name, "token role deleted");
            }
            Reply::no_content()
        }
        _ => return Err(ApiError::UnsupportedOperation),
    };
    annotate(reply, &req.data, name)
}

/// Vault's framework warnings: parameters the path does not know, and a `role_name` in the
/// data that the path's overrides. As for the AWS paths, a write that would answer a bare 204
/// answers 200 with them instead, so a misspelt field is never silently dropped.
fn annotate(mut reply: Reply, data: &RequestData, name: &str) -> ApiResult<Reply> {
    let unknown = data.unknown_keys(ROLE_FIELDS);
    if !unknown.is_empty() {
        reply.no_content = false;
        reply
            .warnings
            .push(format!("Endpoint ignored these unrecognized parameters: [{}]", unknown.join(" ")));
    }
    if data.contains("role_name") {
        let differs = data.get_string("role_name")?.is_some_and(|n| n != name);
        if differs || !reply.no_content {
            reply.no_content = false;
            reply.warnings.push(ROLE_NAME_REPLACED.to_string());
        }
    }
    Ok(reply)
}

/// The fields a write gives, coerced the way Vault's framework does.
fn role_write(d: &RequestData) -> ApiResult<RoleWrite> {
    let secs = |key: &str| -> ApiResult<Option<i64>> {
        Ok(d.get_duration_secs(key)?.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
    };
    let token_type = match d.raw("token_type") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => Some(d.get_string("token_type")?),
    };
    Ok(RoleWrite {
        allowed_policies: d.get_comma_slice("allowed_policies")?,
        disallowed_policies: d.get_comma_slice("disallowed_policies")?,
        allowed_policies_glob: d.get_comma_slice("allowed_policies_glob")?,
        disallowed_policies_glob: d.get_comma_slice("disallowed_policies_glob")?,
        allowed_entity_aliases: d.get_comma_slice("allowed_entity_aliases")?,
        orphan: d.get_bool("orphan")?,
        renewable: d.get_bool("renewable")?,
        path_suffix: d.get_string("path_suffix")?,
        period: secs("period")?,
        token_period: secs("token_period")?,
        explicit_max_ttl: secs("explicit_max_ttl")?,
        token_explicit_max_ttl: secs("token_explicit_max_ttl")?,
        token_type,
        bound_cidrs: d.get_comma_slice("bound_cidrs")?,
        token_bound_cidrs: d.get_comma_slice("token_bound_cidrs")?,
        token_no_default_policy: d.get_bool("token_no_default_policy")?,
        token_num_uses: d.get_int("token_num_uses")?,
        token_ttl: secs("token_ttl")?,
        token_max_ttl: secs("token_max_ttl")?,
    })
}
