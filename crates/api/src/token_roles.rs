//! `auth/token/roles/<name>` (read, write, delete) and `auth/token/roles` (LIST): Vault's token
//! roles. A write merges as Vault's does: a new role starts from the defaults, an existing one
//! changes only in the fields given. Creating a token against a role
//! (`auth/token/create/<name>`) is in `tokens`.

use keymint_auth::token;
use keymint_auth::token_role::{self, RoleWrite, TokenRole};
use keymint_store::token_roles;
use serde_json::{Value, json};
use tracing::info;

use crate::AppState;
use crate::dispatch::{Call, Fields, Target};
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::fields::RequestData;
use crate::request::Operation;
use crate::routes::BoxFuture;

const ROLE_NAME_REPLACED: &str = "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [role_name]";

/// LIST `auth/token/roles`: the role names, 404 when there are none.
pub(crate) async fn list(state: &AppState) -> ApiResult<Reply> {
    let keys = token_roles::names(state.store().pool()).await?;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

/// Vault's existence check of a token role (tokenStoreRoleExistenceCheck): its first write
/// needs `create`.
pub(crate) fn exists(state: AppState, target: Target) -> BoxFuture<ApiResult<bool>> {
    Box::pin(async move {
        let Some(role) = target.rest.strip_prefix("auth/token/roles/").filter(|r| !r.contains('/')) else {
            return Ok(false);
        };
        Ok(token_roles::get(state.store().pool(), role).await?.is_some())
    })
}

/// `auth/token/roles/<name>`.
pub(crate) async fn role(c: &Call) -> ApiResult<Reply> {
    let (state, req) = (&c.state, &c.req);
    let name = req.path.strip_prefix("auth/token/roles/").unwrap_or_default();
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
            let warnings = role.apply(role_write(&c.fields())?)?;
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
    let known = c.target.route.map(|r| r.route.known_fields()).unwrap_or_default();
    annotate(reply, &req.data, name, &known)
}

/// Vault's framework warnings: parameters the path does not know, and a `role_name` in the
/// data that the path's overrides. As for the AWS paths, a write that would answer a bare 204
/// answers 200 with them instead, so a misspelt field is never silently dropped.
fn annotate(mut reply: Reply, data: &RequestData, name: &str, known: &[&str]) -> ApiResult<Reply> {
    if let Some(warning) = crate::dispatch::unknown_warning(data, known) {
        reply.no_content = false;
        reply.warnings.push(warning);
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
fn role_write(d: &Fields<'_>) -> ApiResult<RoleWrite> {
    let mut write: RoleWrite = d.typed()?;
    // Vault tells a null token_type (back to the default) from an absent one.
    write.token_type = match d.raw("token_type")? {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => Some(d.string("token_type")?),
    };
    Ok(write)
}
