//! `sys/auth`: list, enable, read and disable auth methods, and tune them. Auth mounts are
//! rows of the mount table under `auth/`; `sys/auth` names them without that prefix
//! (`approle/`), as Vault does. `token/` is built in: listed, never enabled or disabled.

use keymint_store::mounts::{self, MountRow};
use keymint_store::tokens;
use serde_json::{Map, Value, json};

use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::{AppState, sys};

/// The mount path (`auth/approle/`) a `sys/auth/<path>` request names.
fn auth_path(c: &Call, suffix: &str) -> ApiResult<String> {
    let raw = c.req.path.strip_prefix("sys/auth/").unwrap_or_default();
    let raw = raw.strip_suffix(suffix).unwrap_or(raw);
    let path = sys::normalize_mount_path(raw)?;
    Ok(format!("auth/{path}"))
}

/// The entry of the built-in token method.
fn token_entry() -> Value {
    json!({
        "type": "token",
        "description": "token based credentials",
        "accessor": "auth_token_builtin",
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false, "token_type": "default-service"},
        "options": Value::Null,
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
        "uuid": "",
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "deprecation_status": Value::Null,
    })
}

fn entry(m: &MountRow) -> Value {
    let mut e = sys::mount_json(m);
    e["config"]["token_type"] = json!("default-service");
    e["deprecation_status"] = json!("supported");
    e
}

/// `GET sys/auth`: every auth method, keyed by its path, under `data` and at the top level
/// (hvac's own tests look there).
pub(crate) async fn list(state: &AppState) -> ApiResult<Reply> {
    let mut data = Map::new();
    data.insert("token/".into(), token_entry());
    for m in mounts::list(state.store().pool()).await? {
        if let Some(path) = m.path.strip_prefix("auth/") {
            data.insert(path.to_string(), entry(&m));
        }
    }
    Ok(Reply { top_level: Some(data.clone()), data: Some(Value::Object(data)), ..Default::default() })
}

/// `sys/auth/<path>`: enable (with `type`, `description`, `config`), read, disable.
pub(crate) async fn mount(c: &Call) -> ApiResult<Reply> {
    let path = auth_path(c, "")?;
    let pool = c.state.store().pool();
    match c.req.op {
        crate::request::Operation::Update => {
            let f = c.fields();
            let kind = f.string("type")?.unwrap_or_default();
            if kind.is_empty() {
                return Err(ApiError::BadRequest("backend type must be specified as a string".into()));
            }
            let description = f.string("description")?.unwrap_or_default();
            let config = f.map("config")?.filter(|v| !v.is_null());
            let default_ttl = sys::config_ttl(config, "default_lease_ttl")?.unwrap_or(0);
            let max_ttl = sys::config_ttl(config, "max_lease_ttl")?.unwrap_or(0);
            sys::check_ttls(default_ttl, max_ttl)?;
            let options = match f.map("options")? {
                Some(Value::Object(o)) => Value::Object(o.clone()).to_string(),
                _ => "{}".to_string(),
            };
            sys::enable(&c.state, &path, &kind, &description, default_ttl, max_ttl, options).await?;
            tracing::info!(mount.path = %path, mount.kind = %kind, "auth method enabled");
            Ok(Reply::no_content())
        }
        crate::request::Operation::Read => {
            let m = mounts::get_by_path(pool, &path).await?.ok_or_else(|| {
                ApiError::BadRequest(format!("No auth engine at {}", path.trim_start_matches("auth/")))
            })?;
            Ok(Reply::data(entry(&m)))
        }
        crate::request::Operation::Delete => {
            let Some(m) = mounts::get_by_path(pool, &path).await? else {
                return Ok(Reply::no_content());
            };
            disable(&c.state, &m).await?;
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

/// Disables an auth method: the tokens its logins issued are revoked first (with their
/// children and leases), then the mount goes with its configuration, roles and secret ids.
async fn disable(state: &AppState, m: &MountRow) -> ApiResult<()> {
    let mut revoked = 0;
    // Until none is left: a login racing the revocations may have issued one more.
    for _ in 0..3 {
        let issued = tokens::issued_by_mount(state.store().pool(), &m.id).await?;
        if issued.is_empty() {
            break;
        }
        for accessor in &issued {
            crate::tokens::revoke_token(state, accessor, false).await?;
        }
        revoked += issued.len();
    }
    mounts::delete(state.store().pool(), &m.id).await?;
    crate::auth_methods::jwt::forget_mount(&m.id);
    tracing::info!(mount.path = %m.path, tokens_revoked = revoked, "auth method disabled");
    Ok(())
}

/// `sys/auth/<path>/tune`: the same tuning as `sys/mounts/auth/<path>/tune`.
pub(crate) async fn tune(c: Call) -> ApiResult<Reply> {
    let path = auth_path(&c, "/tune")?;
    sys::tune_mount(&c.state, c.req, &path).await
}
