//! The AWS engine's paths under a mount: `config/root`, `config/lease`, `roles/`, `creds/`
//! and `sts/` (`config/rotate-root` and static roles are in `static_roles`). Each handler
//! coerces Vault's fields, calls the engine and shapes the reply.

use keymint_common::go::duration::{format_go_duration, parse_duration_secs};
use keymint_engine::{CallerIdentity, CredsRequest, LeaseConfig, RoleInput, RootConfigInput};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::AppState;
use crate::dispatch::{Call, Target};
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::routes::BoxFuture;

/// Vault's existence check of `config/root`: its first write is a create.
pub(crate) fn root_config_exists(state: AppState, target: Target) -> BoxFuture<ApiResult<bool>> {
    Box::pin(async move {
        let Some(mount) = target.mount else { return Ok(false) };
        let stored = keymint_store::aws::get_config(
            state.store().pool(),
            &mount.id,
            keymint_engine::ROOT_CONFIG_ENTRY,
        )
        .await?;
        Ok(stored.is_some())
    })
}

pub(crate) async fn read_root(c: &Call) -> ApiResult<Reply> {
    let (state, ctx) = (&c.state, &c.ctx()?);
    let (cfg, _secrets, _) = state.engine().root_config(ctx).await?.ok_or(ApiError::NotFound)?;
    let (next_rotation, rotation_error) = state.engine().root_rotation_state(ctx).await?;
    let next_rotation = next_rotation.map(|ms| crate::static_roles::go_time(keymint_store::from_millis(ms)));
    let mut data = cfg.to_read_data();
    data.insert("next_rotation".into(), json!(next_rotation));
    data.insert("last_rotation_error".into(), json!(rotation_error.unwrap_or_default()));
    Ok(Reply::data(Value::Object(data)))
}

pub(crate) async fn write_root(c: &Call) -> ApiResult<Reply> {
    let verify = c.fields().bool("verify_connection")?.unwrap_or(true);
    match c.state.engine().write_root_config(&c.ctx()?, root_input(c)?, verify).await? {
        Some(who) => Ok(Reply::data(identity_data(&who))),
        None => Ok(Reply::no_content()),
    }
}

/// `config/root/verify`: the checks of a `config/root` write of the same body, nothing stored.
pub(crate) async fn verify_root(c: &Call) -> ApiResult<Reply> {
    let who = c.state.engine().verify_root_config(&c.ctx()?, root_input(c)?).await?;
    Ok(Reply::data(identity_data(&who)))
}

/// The `config/root` fields of a request body (`verify_connection` aside).
fn root_input(c: &Call) -> ApiResult<RootConfigInput> {
    let d = c.fields();
    let mut input: RootConfigInput = d.typed()?;
    input.secret_key = d.string("secret_key")?.map(SecretString::from);
    input.session_token = d.string("session_token")?.map(SecretString::from);
    Ok(input)
}

fn identity_data(who: &CallerIdentity) -> Value {
    json!({ "account_id": who.account, "arn": who.arn, "user_id": who.user_id })
}

pub(crate) async fn read_lease(c: &Call) -> ApiResult<Reply> {
    let (state, ctx) = (&c.state, &c.ctx()?);
    let cfg = state.engine().lease_config(ctx).await?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(json!({
        "lease": format_go_duration(cfg.lease),
        "lease_max": format_go_duration(cfg.lease_max),
    })))
}

pub(crate) async fn write_lease(c: &Call) -> ApiResult<Reply> {
    let (state, ctx, d) = (&c.state, &c.ctx()?, &c.fields());
    let field = |name: &str| -> ApiResult<u64> {
        let raw = d.text(name)?.unwrap_or_default();
        if raw.is_empty() {
            return Err(ApiError::BadRequest(format!("'{name}' is a required parameter")));
        }
        parse_duration_secs(&raw).map_err(|e| ApiError::BadRequest(format!("Invalid {name}: {e}")))
    };
    let cfg = LeaseConfig { lease: field("lease")?, lease_max: field("lease_max")? };
    state.engine().write_lease_config(ctx, cfg).await?;
    Ok(Reply::no_content())
}

pub(crate) async fn list_roles(c: &Call) -> ApiResult<Reply> {
    let keys = c.state.engine().list_roles(&c.ctx()?).await?;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

pub(crate) async fn read_role(c: &Call) -> ApiResult<Reply> {
    let role = c.state.engine().role(&c.ctx()?, c.name()).await?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(role.to_read_data()))
}

pub(crate) async fn delete_role(c: &Call) -> ApiResult<Reply> {
    c.state.engine().delete_role(&c.ctx()?, c.name()).await?;
    Ok(Reply::no_content())
}

pub(crate) async fn write_role(c: &Call) -> ApiResult<Reply> {
    let input: RoleInput = c.fields().typed()?;
    let warnings = c.state.engine().write_role(&c.ctx()?, c.name(), input).await?;
    Ok(Reply::written(warnings))
}

pub(crate) async fn find_strays(c: &Call) -> ApiResult<Reply> {
    let scan = c.state.engine().find_strays(&c.ctx()?).await?;
    Ok(Reply::data(json!({ "strays": scan.strays, "skipped_unreadable": scan.skipped_unreadable })))
}

pub(crate) async fn remove_strays(c: &Call) -> ApiResult<Reply> {
    let removal = c.state.engine().remove_strays(&c.ctx()?).await?;
    let failed: Vec<Value> = removal
        .failed
        .iter()
        .map(|(s, e)| json!({"user_name": s.user_name, "lease_id": s.lease_id, "error": e}))
        .collect();
    Ok(Reply::data(json!({
        "removed": removal.removed,
        "failed": failed,
        "skipped_unreadable": removal.skipped_unreadable,
    })))
}

/// `creds/<name>` and `sts/<name>`, read or written alike.
pub(crate) async fn creds(c: &Call) -> ApiResult<Reply> {
    let (state, identity, d) = (&c.state, c.identity()?, &c.fields());
    let req = CredsRequest {
        role_name: c.name().to_string(),
        via_sts_path: c.target.rest.starts_with("sts/"),
        ttl: d.duration("ttl")?,
        role_arn: d.string("role_arn")?,
        role_session_name: d.string("role_session_name")?,
        mfa_code: d.string("mfa_code")?,
        display_name: identity.display_name.clone(),
        token_accessor: Some(identity.accessor.clone()),
        orphan: d.bool("orphan")?.unwrap_or(false),
        wait_until_usable: d.bool("wait_until_usable")?,
    };
    let minted = state.engine().mint(&c.ctx()?, req).await?;
    state.leases().lease_created(minted.expire_time_ms);
    Ok(Reply {
        lease_id: minted.lease_id,
        renewable: minted.renewable,
        lease_duration: minted.lease_duration,
        data: Some(Value::Object(minted.data)),
        warnings: minted.warnings,
        ..Default::default()
    })
}
