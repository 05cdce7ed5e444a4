//! `sys/` (health, mounts, tuning, seal status) and the token self-lookup Vault clients use
//! to check their token.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keymint_common::go::duration::parse_duration_secs;
use keymint_lease::SYSTEM_DEFAULT_TTL_SECS;
use keymint_store::mounts::{self, MountRow};
use serde_json::{Map, Value, json};

use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::{LogicalRequest, Operation};
use crate::{AppState, VERSION};

/// Engines keymint can mount.
const MOUNT_TYPES: &[&str] = &["aws"];
/// Prefixes no mount may take.
const RESERVED: &[&str] = &["sys/", "auth/", "cubbyhole/", "identity/"];

pub async fn health(state: &AppState, req: &LogicalRequest) -> Response {
    let now = state.now();
    let mut status = StatusCode::OK;
    let activecode = match req.fields().raw("activecode") {
        Ok(code) => code,
        Err(e) => return e.into_response(),
    };
    if let Some(code) = activecode {
        // A final status only: a 1xx would leave the client waiting for the real answer.
        let code = code.as_str().and_then(|s| s.parse::<u16>().ok()).filter(|c| (200..=599).contains(c));
        match code.and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(c) => status = c,
            None => return ApiError::BadRequest("unable to parse activecode code".into()).into_response(),
        }
    }
    // A health check that cannot reach the database is not healthy. The same round trip
    // reads whether automatic revocation is paused (a restored store), which operators should
    // see where they look first. Bounded like the readiness check: a load balancer's check
    // must not hang while the pool retries a database that refuses connections.
    let paused = keymint_store::revocation::paused(state.store().pool());
    let revocation_paused = match tokio::time::timeout(crate::health::READY_TIMEOUT, paused).await {
        Ok(Ok(pause)) => pause.is_some(),
        Ok(Err(_)) | Err(_) => {
            status = StatusCode::SERVICE_UNAVAILABLE;
            false
        }
    };
    if req.op == Operation::Head {
        return status.into_response();
    }
    let body = json!({
        "initialized": true,
        "sealed": false,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now.timestamp(),
        "version": VERSION,
        "enterprise": false,
        "cluster_name": state.inner.cluster_name,
        "cluster_id": state.inner.cluster_id,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
        "revocation_paused": revocation_paused,
    });
    (status, axum::Json(body)).into_response()
}

pub(crate) fn normalize_mount_path(raw: &str) -> ApiResult<String> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Err(ApiError::BadRequest("path cannot be empty".into()));
    }
    if trimmed.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..")
        || !trimmed.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        return Err(ApiError::BadRequest(format!("invalid mount path {raw:?}")));
    }
    Ok(format!("{trimmed}/"))
}

/// The mount serving `path` (longest prefix) and the rest of the path.
pub async fn resolve_mount(state: &AppState, path: &str) -> ApiResult<Option<(MountRow, String)>> {
    let all = state.mounts().await?;
    let best = all
        .iter()
        .filter(|m| path.starts_with(&m.path) || path.len() + 1 == m.path.len() && m.path.starts_with(path))
        .max_by_key(|m| m.path.len());
    Ok(best.map(|m| {
        let rest = path.get(m.path.len()..).unwrap_or("").to_string();
        (m.clone(), rest)
    }))
}

pub(crate) fn mount_json(m: &MountRow) -> Value {
    json!({
        "type": m.mount_type,
        "description": m.description,
        "accessor": m.accessor,
        "config": {
            "default_lease_ttl": m.default_lease_ttl,
            "max_lease_ttl": m.max_lease_ttl,
            "force_no_cache": false,
        },
        "options": serde_json::from_str::<Value>(&m.options).unwrap_or(Value::Null),
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
        "uuid": m.id,
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
    })
}

/// Creates a mount unless one exists at `path` already.
pub async fn ensure_mount(state: &AppState, path: &str, kind: &str, description: &str) -> ApiResult<()> {
    if mounts::get_by_path(state.store().pool(), path).await?.is_some() {
        return Ok(());
    }
    enable(state, path, kind, description, 0, 0, "{}".into()).await.or_else(|e| match e {
        // Another replica enabled it at the same moment.
        ApiError::BadRequest(_) => Ok(()),
        other => Err(other),
    })
}

pub(crate) async fn enable(
    state: &AppState,
    path: &str,
    kind: &str,
    description: &str,
    default_ttl: i64,
    max_ttl: i64,
    options: String,
) -> ApiResult<()> {
    // Auth methods live under `auth/` (enabled through `sys/auth`); secrets engines anywhere
    // else.
    let auth = path.starts_with("auth/");
    if auth {
        if !crate::auth_methods::METHOD_TYPES.contains(&kind) {
            return Err(ApiError::BadRequest(if kind == "token" {
                "token credential backend cannot be instantiated".into()
            } else {
                format!("plugin not found in the catalog: {kind}")
            }));
        }
    } else {
        if let Some(r) = RESERVED.iter().find(|r| path.starts_with(*r)) {
            return Err(ApiError::BadRequest(format!("cannot mount under reserved path {r:?}")));
        }
        if !MOUNT_TYPES.contains(&kind) {
            return Err(ApiError::BadRequest(format!("plugin not found in the catalog: {kind}")));
        }
    }
    if auth && path == "auth/token/" {
        return Err(ApiError::BadRequest("path is already in use at token/".into()));
    }
    for existing in mounts::list(state.store().pool()).await? {
        if path.starts_with(&existing.path) || existing.path.starts_with(path) {
            let shown = existing.path.strip_prefix("auth/").filter(|_| auth).unwrap_or(&existing.path);
            return Err(ApiError::BadRequest(format!("path is already in use at {shown}")));
        }
    }
    let accessor_kind = if auth { format!("auth_{kind}") } else { kind.to_string() };
    let row = MountRow {
        id: uuid::Uuid::new_v4().to_string(),
        path: path.to_string(),
        mount_type: kind.to_string(),
        description: description.to_string(),
        accessor: format!("{accessor_kind}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        default_lease_ttl: default_ttl,
        max_lease_ttl: max_ttl,
        options,
        created_at: state.now_ms(),
    };
    if !mounts::insert(state.store().pool(), &row).await? {
        return Err(ApiError::BadRequest(format!("path is already in use at {path}")));
    }
    Ok(())
}

/// A TTL in a mount config: a duration string or integer seconds; `""`, `"0"`, `"system"` and
/// null mean the system default (0).
pub(crate) fn config_ttl(config: Option<&Value>, key: &str) -> ApiResult<Option<i64>> {
    let Some(v) = config.and_then(|c| c.get(key)) else { return Ok(None) };
    let secs = match v {
        Value::Null => 0,
        Value::Number(n) => n.as_u64().ok_or_else(|| ApiError::BadRequest(format!("invalid {key}")))?,
        Value::String(s) if s.is_empty() || s == "system" => 0,
        Value::String(s) => {
            parse_duration_secs(s).map_err(|e| ApiError::BadRequest(format!("invalid {key}: {e}")))?
        }
        _ => return Err(ApiError::BadRequest(format!("invalid {key}"))),
    };
    Ok(Some(i64::try_from(secs).unwrap_or(i64::MAX)))
}

pub(crate) fn check_ttls(default_ttl: i64, max_ttl: i64) -> ApiResult<()> {
    let eff_default = if default_ttl > 0 { default_ttl } else { SYSTEM_DEFAULT_TTL_SECS as i64 };
    let eff_max = if max_ttl > 0 { max_ttl } else { SYSTEM_DEFAULT_TTL_SECS as i64 };
    if eff_default > eff_max {
        return Err(ApiError::BadRequest(
            "invalid tuning: default_lease_ttl cannot be greater than max_lease_ttl".into(),
        ));
    }
    Ok(())
}

/// `sys/metrics`: Prometheus text with `format=prometheus`, else Vault's JSON shape.
pub(crate) async fn metrics(c: &Call) -> Response {
    match c.fields().string("format") {
        Ok(format) => crate::metrics::render(&c.state, format.as_deref()).await,
        Err(e) => e.into_response(),
    }
}

/// `sys/internal/specs/openapi`, with the AWS routes under each AWS mount, and only the paths
/// the caller's policies grant something on.
pub(crate) async fn openapi(c: &Call) -> ApiResult<Reply> {
    let mounts = c.state.mounts().await?;
    let all: Vec<(&str, &str)> = mounts.iter().map(|m| (m.path.as_str(), m.mount_type.as_str())).collect();
    let acl = c.state.acl(&c.identity()?.policies).await?;
    let doc = crate::openapi::document(&all, &|path| acl.grants_somewhere(path));
    Ok(Reply { raw: Some(doc), ..Default::default() })
}

/// `sys/init`: keymint is initialised from its first start, so a read says so (Vault's bare
/// `{"initialized": true}`, no envelope) and an attempt to initialise is refused as Vault
/// refuses a second one.
pub(crate) fn init_status(req: &LogicalRequest) -> Response {
    match req.op {
        Operation::Read | Operation::Head => axum::Json(json!({"initialized": true})).into_response(),
        Operation::Update => ApiError::BadRequest("Vault is already initialized".into()).into_response(),
        _ => ApiError::UnsupportedOperation.into_response(),
    }
}

/// `sys/leader`: Vault answers with the fields at the top level of the body (the `vault` CLI
/// and node-vault read them there); they are under `data` too, for clients that look there.
/// Every keymint replica serves every request, so each is its own leader and HA is off.
pub(crate) fn leader() -> Reply {
    let fields = json!({
        "ha_enabled": false, "is_self": true, "active_time": "0001-01-01T00:00:00Z",
        "leader_address": "", "leader_cluster_address": "", "performance_standby": false,
        "performance_standby_last_remote_wal": 0,
    });
    Reply { top_level: fields.as_object().cloned(), data: Some(fields), ..Default::default() }
}

pub(crate) fn seal_status(state: &AppState) -> Reply {
    // Vault clients read these fields; keymint has no seal to open, so it is always unsealed.
    let mut reply = Reply::data(Value::Null);
    let top = json!({
        "type": "shamir", "initialized": true, "sealed": false, "t": 1, "n": 1, "progress": 0,
        "nonce": "", "version": VERSION, "build_date": "", "migration": false,
        "cluster_name": state.inner.cluster_name, "cluster_id": state.inner.cluster_id,
        "recovery_seal": false, "storage_type": "sql",
    });
    if let Value::Object(map) = top {
        reply.top_level = Some(map);
    }
    reply
}

pub(crate) async fn list_mounts(state: &AppState) -> ApiResult<Reply> {
    let mut data = Map::new();
    // Auth methods are listed by `sys/auth`.
    for m in mounts::list(state.store().pool()).await?.into_iter().filter(|m| !m.path.starts_with("auth/")) {
        data.insert(m.path.clone(), mount_json(&m));
    }
    Ok(Reply { top_level: Some(data.clone()), data: Some(Value::Object(data)), ..Default::default() })
}

/// `sys/mounts/<path>`: enable, read or disable a mount.
pub(crate) async fn mount_op(state: &AppState, req: LogicalRequest) -> ApiResult<Reply> {
    let path = &normalize_mount_path(req.path.strip_prefix("sys/mounts/").unwrap_or_default())?;
    if path.starts_with("auth/") && req.op != Operation::Update {
        return Err(ApiError::BadRequest("auth methods are read and disabled through sys/auth".into()));
    }
    match req.op {
        Operation::Update => {
            let kind = req.fields().string("type")?.unwrap_or_default();
            if kind.is_empty() {
                return Err(ApiError::BadRequest("backend type must be specified as a string".into()));
            }
            let description = req.fields().string("description")?.unwrap_or_default();
            let config = req.fields().map("config")?.filter(|v| !v.is_null());
            let default_ttl = config_ttl(config, "default_lease_ttl")?.unwrap_or(0);
            let max_ttl = config_ttl(config, "max_lease_ttl")?.unwrap_or(0);
            check_ttls(default_ttl, max_ttl)?;
            let options = match req.fields().map("options")? {
                Some(Value::Object(o)) => Value::Object(o.clone()).to_string(),
                _ => "{}".to_string(),
            };
            enable(state, path, &kind, &description, default_ttl, max_ttl, options).await?;
            Ok(Reply::no_content())
        }
        Operation::Read => {
            let m = mounts::get_by_path(state.store().pool(), path).await?.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(mount_json(&m)))
        }
        Operation::Delete => {
            let Some(m) = mounts::get_by_path(state.store().pool(), path).await? else {
                return Ok(Reply::no_content());
            };
            // Disabling a mount must not orphan what its leases hold in AWS: revoke them all
            // first, and keep the mount if any could not be.
            let pending = keymint_store::wal::count_for_mount(state.store().pool(), &m.id).await?;
            if pending > 0 {
                return Err(ApiError::BadRequest(format!(
                    "the mount has {pending} IAM user(s) being created or awaiting cleanup; retry in a few minutes"
                )));
            }
            let failures =
                state.leases().revoke_prefix(&m.path, false).await.map_err(crate::leases::lease_error)?;
            if let Some(first) = failures.first() {
                return Err(ApiError::BadRequest(format!(
                    "failed to revoke {} lease(s) of the mount, which stays enabled: {}: {}",
                    failures.len(),
                    first.lease_id,
                    first.error
                )));
            }
            // The keys keymint made for static roles go too; a key that cannot be deleted
            // keeps its role, and the mount.
            if m.mount_type == "aws" {
                state.engine().delete_static_roles(&crate::dispatch::mount_ctx(&m)).await.map_err(|e| {
                    // keymint's own failures stay 500s; what AWS or another request stood in the
                    // way with is told, as the reason the mount stays.
                    match ApiError::from(e) {
                        ApiError::BadRequest(why) | ApiError::Upstream(why) => ApiError::BadRequest(format!(
                            "failed to delete the static roles of the mount, which stays enabled: {why}"
                        )),
                        ApiError::Internal { public } if public != crate::error::INTERNAL_ERROR => {
                            ApiError::BadRequest(format!(
                                "failed to delete the static roles of the mount, which stays enabled: {public}"
                            ))
                        }
                        other => other,
                    }
                })?;
            }
            mounts::delete(state.store().pool(), &m.id).await?;
            state.engine().forget_mount(&m.id);
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

/// `sys/mounts/<path>/tune` (`sys/mounts/auth/<path>/tune` for an auth method).
pub(crate) async fn tune(state: &AppState, req: LogicalRequest) -> ApiResult<Reply> {
    let mount =
        req.path.strip_prefix("sys/mounts/").and_then(|p| p.strip_suffix("/tune")).unwrap_or_default();
    let path = normalize_mount_path(mount)?;
    tune_mount(state, req, &path).await
}

/// Reads or tunes the mount at `path` (with its trailing `/`).
pub(crate) async fn tune_mount(state: &AppState, req: LogicalRequest, path: &str) -> ApiResult<Reply> {
    let m = mounts::get_by_path(state.store().pool(), path)
        .await?
        .ok_or_else(|| ApiError::BadRequest(format!("cannot fetch sysview for path {path:?}")))?;
    let effective = |v: i64| if v > 0 { v } else { SYSTEM_DEFAULT_TTL_SECS as i64 };
    match req.op {
        Operation::Read => {
            let mut data = json!({
                "default_lease_ttl": effective(m.default_lease_ttl),
                "max_lease_ttl": effective(m.max_lease_ttl),
                "force_no_cache": false,
                "description": m.description,
                "options": serde_json::from_str::<Value>(&m.options).unwrap_or(Value::Null),
            });
            // Auth methods issue tokens: Vault reports which kind.
            if m.path.starts_with("auth/") {
                data["token_type"] = json!("default-service");
            }
            Ok(Reply::data(data))
        }
        Operation::Update => {
            let body = Value::Object(
                req.data.keys().filter_map(|k| req.data.raw(k).map(|v| (k.clone(), v.clone()))).collect(),
            );
            let default_ttl = config_ttl(Some(&body), "default_lease_ttl")?.unwrap_or(m.default_lease_ttl);
            let max_ttl = config_ttl(Some(&body), "max_lease_ttl")?.unwrap_or(m.max_lease_ttl);
            check_ttls(default_ttl, max_ttl)?;
            let description = req.fields().string("description")?.unwrap_or(m.description.clone());
            let options = match req.fields().map("options")? {
                Some(Value::Object(o)) => Value::Object(o.clone()).to_string(),
                _ => m.options.clone(),
            };
            mounts::update_tune(state.store().pool(), &m.id, default_ttl, max_ttl, &description, &options)
                .await?;
            Ok(Reply::no_content())
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

/// `auth/token/lookup-self`: what `vault login` and hvac's `is_authenticated` call.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths_are_normalised_and_checked() {
        assert_eq!(normalize_mount_path("aws").unwrap(), "aws/");
        assert_eq!(normalize_mount_path("/team/aws/").unwrap(), "team/aws/");
        assert!(normalize_mount_path("").is_err());
        assert!(normalize_mount_path("a//b").is_err());
        assert!(normalize_mount_path("a/../b").is_err());
        assert!(normalize_mount_path("a b").is_err());
    }

    #[test]
    fn mount_ttls_parse_like_vault() {
        let cfg = json!({"default_lease_ttl": "1h", "max_lease_ttl": 7200});
        assert_eq!(config_ttl(Some(&cfg), "default_lease_ttl").unwrap(), Some(3600));
        assert_eq!(config_ttl(Some(&cfg), "max_lease_ttl").unwrap(), Some(7200));
        let zero = json!({"default_lease_ttl": "0s", "max_lease_ttl": "system"});
        assert_eq!(config_ttl(Some(&zero), "default_lease_ttl").unwrap(), Some(0));
        assert_eq!(config_ttl(Some(&zero), "max_lease_ttl").unwrap(), Some(0));
        assert_eq!(config_ttl(None, "max_lease_ttl").unwrap(), None);
        assert!(check_ttls(7200, 3600).is_err());
        assert!(check_ttls(0, 0).is_ok());
    }
}
