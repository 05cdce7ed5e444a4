//! The AWS engine's paths under a mount: `config/root`, `config/lease`, `roles/`, `creds/`
//! and `sts/` (`config/rotate-root` and static roles are in `static_roles`). Each handler
//! coerces Vault's fields, calls the engine and shapes the reply.

use std::sync::LazyLock;

use keymint_auth::Identity;
use keymint_common::go::duration::{format_go_duration, parse_duration_secs};
use keymint_engine::{CredsRequest, LeaseConfig, MountCtx, RoleInput, RootConfigInput};
use keymint_lease::MountTtls;
use keymint_store::mounts::MountRow;
use regex::Regex;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::AppState;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::fields::RequestData;
use crate::request::{LogicalRequest, Operation};

/// Vault's "generic name with @": word characters at both ends, `-`, `.` and `@` inside.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    // Invariant: a literal, valid pattern.
    Regex::new(r"^\w(([\w\-.@]+)?\w)?$").unwrap_or_else(|_| unreachable!())
});

pub fn mount_ctx(m: &MountRow) -> MountCtx {
    MountCtx {
        id: m.id.clone(),
        path: m.path.clone(),
        ttls: MountTtls {
            default_lease_ttl: u64::try_from(m.default_lease_ttl).unwrap_or(0),
            max_lease_ttl: u64::try_from(m.max_lease_ttl).unwrap_or(0),
        },
    }
}

const ROOT_FIELDS: &[&str] = &[
    "access_key",
    "secret_key",
    "session_token",
    "region",
    "iam_endpoint",
    "sts_endpoint",
    "sts_region",
    "sts_fallback_endpoints",
    "sts_fallback_regions",
    "max_retries",
    "username_template",
    "role_arn",
    "identity_token_audience",
    "identity_token_ttl",
    "rotation_schedule",
    "rotation_window",
    "rotation_period",
    "disable_automated_rotation",
    "rotation_policy",
    "external_id",
    "role_session_name",
    "duration",
    "expected_account_id",
    "iam_write_rate",
    "iam_read_rate",
    "sts_rate",
    "max_queue_wait",
    "retry_deadline",
    "call_timeout",
    "verify_connection",
];
const LEASE_FIELDS: &[&str] = &["lease", "lease_max"];
const ROLE_FIELDS: &[&str] = &[
    "name",
    "credential_type",
    "role_arns",
    "policy_arns",
    "policy_document",
    "iam_groups",
    "iam_tags",
    "session_tags",
    "external_id",
    "default_sts_ttl",
    "max_sts_ttl",
    "default_ttl",
    "max_ttl",
    "user_path",
    "permissions_boundary_arn",
    "mfa_serial_number",
    "policy",
    "arn",
    "wait_until_usable",
    "usable_timeout",
];
const CREDS_FIELDS: &[&str] =
    &["name", "role_arn", "role_session_name", "ttl", "mfa_code", "orphan", "wait_until_usable"];

/// Vault's warning for parameters a path does not know, added to any reply with a body.
fn unknown_warning(data: &RequestData, known: &[&str]) -> Option<String> {
    let unknown = data.unknown_keys(known);
    (!unknown.is_empty())
        .then(|| format!("Endpoint ignored these unrecognized parameters: [{}]", unknown.join(" ")))
}

const NAME_REPLACED: &str = "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [name]";

/// Vault's framework warnings, added to every reply of a mount path:
/// - parameters the path does not know (`known`), on reads as on writes;
/// - a `name` parameter on a path that captures the name (`captured`): the path's wins.
///
/// Vault adds them only to replies with a body and drops them from a bare 204. keymint turns a
/// 204 into a 200 carrying the warning when something was ignored, or when the body's `name`
/// differs from the path's, so a misspelt field on a write is never silently dropped.
fn annotate(
    mut reply: Reply,
    data: &RequestData,
    known: &[&str],
    captured: Option<&str>,
) -> ApiResult<Reply> {
    if let Some(w) = unknown_warning(data, known) {
        reply.no_content = false;
        reply.warnings.push(w);
    }
    if let Some(name) = captured
        && data.contains("name")
    {
        let differs = data.get_string("name")?.is_some_and(|n| n != name);
        if (differs || !reply.no_content) && !reply.warnings.iter().any(|w| w == NAME_REPLACED) {
            reply.no_content = false;
            reply.warnings.push(NAME_REPLACED.to_string());
        }
    }
    Ok(reply)
}

/// The parameters a mount path takes, and the name it captures, for [`annotate`].
pub(crate) fn path_fields(rest: &str) -> (&'static [&'static str], Option<&str>) {
    let named = |prefix: &str| rest.strip_prefix(prefix).filter(|n| NAME.is_match(n));
    if rest == "config/root" {
        (ROOT_FIELDS, None)
    } else if rest == "config/lease" {
        (LEASE_FIELDS, None)
    } else if let Some(name) = named("roles/") {
        (ROLE_FIELDS, Some(name))
    } else if let Some(name) = named("creds/").or_else(|| named("sts/")) {
        (CREDS_FIELDS, Some(name))
    } else if let Some(name) = named("static-roles/") {
        (crate::static_roles::STATIC_ROLE_FIELDS, Some(name))
    } else if let Some(name) = named("static-creds/") {
        (&["name"], Some(name))
    } else {
        (&[], None)
    }
}

pub async fn handle(
    state: &AppState,
    identity: &Identity,
    mount: &MountRow,
    rest: &str,
    req: LogicalRequest,
) -> ApiResult<Reply> {
    let data = req.data.clone();
    let reply = route(state, identity, mount, rest, req).await?;
    let (known, captured) = path_fields(rest);
    annotate(reply, &data, known, captured)
}

async fn route(
    state: &AppState,
    identity: &Identity,
    mount: &MountRow,
    rest: &str,
    req: LogicalRequest,
) -> ApiResult<Reply> {
    let ctx = mount_ctx(mount);
    let op = req.op;
    match rest {
        "config/root" => match op {
            Operation::Read => read_root(state, &ctx).await,
            Operation::Update => write_root(state, &ctx, &req.data).await,
            _ => Err(ApiError::UnsupportedOperation),
        },
        "config/rotate-root" => crate::static_roles::rotate_root(state, &ctx, &req).await,
        "static-roles/" | "static-roles" => crate::static_roles::list(state, &ctx, &req).await,
        "config/lease" => match op {
            Operation::Read => read_lease(state, &ctx).await,
            Operation::Update => write_lease(state, &ctx, &req.data).await,
            _ => Err(ApiError::UnsupportedOperation),
        },
        "reconcile" => match op {
            Operation::Read => {
                let strays = state.engine().find_strays(&ctx).await?;
                Ok(Reply::data(json!({ "strays": strays })))
            }
            Operation::Update => {
                let removal = state.engine().remove_strays(&ctx).await?;
                let failed: Vec<Value> = removal
                    .failed
                    .iter()
                    .map(|(s, e)| json!({"user_name": s.user_name, "lease_id": s.lease_id, "error": e}))
                    .collect();
                Ok(Reply::data(json!({ "removed": removal.removed, "failed": failed })))
            }
            _ => Err(ApiError::UnsupportedOperation),
        },
        "roles/" | "roles" => match op {
            Operation::List => {
                let keys = state.engine().list_roles(&ctx).await?;
                if keys.is_empty() {
                    return Err(ApiError::NotFound);
                }
                Ok(Reply::data(json!({ "keys": keys })))
            }
            _ => Err(ApiError::UnsupportedOperation),
        },
        _ => {
            if let Some(name) = rest.strip_prefix("roles/").filter(|n| NAME.is_match(n)) {
                return role(state, &ctx, name, req).await;
            }
            if let Some(name) = rest.strip_prefix("static-roles/").filter(|n| NAME.is_match(n)) {
                return crate::static_roles::static_role(state, &ctx, name, &req).await;
            }
            if let Some(name) = rest.strip_prefix("static-creds/").filter(|n| NAME.is_match(n)) {
                return crate::static_roles::static_creds(state, &ctx, name, &req).await;
            }
            for (prefix, via_sts) in [("creds/", false), ("sts/", true)] {
                if let Some(name) = rest.strip_prefix(prefix).filter(|n| NAME.is_match(n)) {
                    return match op {
                        Operation::Read | Operation::Update => {
                            creds(state, identity, &ctx, name, via_sts, &req.data).await
                        }
                        _ => Err(ApiError::UnsupportedOperation),
                    };
                }
            }
            Err(ApiError::UnsupportedPath)
        }
    }
}

async fn read_root(state: &AppState, ctx: &MountCtx) -> ApiResult<Reply> {
    let (cfg, _secrets, _) = state.engine().root_config(ctx).await?.ok_or(ApiError::NotFound)?;
    let (next_rotation, rotation_error) = state.engine().root_rotation_state(ctx).await?;
    let next_rotation = next_rotation.map(|ms| crate::static_roles::go_time(keymint_store::from_millis(ms)));
    Ok(Reply::data(json!({
        "access_key": cfg.access_key,
        "region": cfg.region,
        "iam_endpoint": cfg.iam_endpoint,
        "sts_endpoint": cfg.sts_endpoint,
        "sts_region": cfg.sts_region,
        "sts_fallback_endpoints": cfg.sts_fallback_endpoints,
        "sts_fallback_regions": cfg.sts_fallback_regions,
        "max_retries": cfg.max_retries,
        "username_template": cfg.username_template,
        "role_arn": cfg.role_arn,
        "identity_token_audience": cfg.identity_token_audience,
        "identity_token_ttl": cfg.identity_token_ttl,
        "rotation_schedule": cfg.rotation_schedule,
        "rotation_window": cfg.rotation_window,
        "rotation_period": cfg.rotation_period,
        "disable_automated_rotation": cfg.disable_automated_rotation,
        "rotation_policy": cfg.rotation_policy,
        "external_id": cfg.external_id,
        "role_session_name": cfg.role_session_name,
        "duration": cfg.duration,
        "expected_account_id": cfg.expected_account_id,
        "iam_write_rate": cfg.iam_write_rate,
        "iam_read_rate": cfg.iam_read_rate,
        "sts_rate": cfg.sts_rate,
        "max_queue_wait": cfg.max_queue_wait,
        "retry_deadline": cfg.retry_deadline,
        "call_timeout": cfg.call_timeout,
        "next_rotation": next_rotation,
        "last_rotation_error": rotation_error.unwrap_or_default(),
    })))
}

async fn write_root(state: &AppState, ctx: &MountCtx, d: &RequestData) -> ApiResult<Reply> {
    let input = RootConfigInput {
        access_key: d.get_string("access_key")?,
        secret_key: d.get_string("secret_key")?.map(SecretString::from),
        session_token: d.get_string("session_token")?.map(SecretString::from),
        region: d.get_string("region")?,
        iam_endpoint: d.get_string("iam_endpoint")?,
        sts_endpoint: d.get_string("sts_endpoint")?,
        sts_region: d.get_string("sts_region")?,
        sts_fallback_endpoints: d.get_comma_slice("sts_fallback_endpoints")?,
        sts_fallback_regions: d.get_comma_slice("sts_fallback_regions")?,
        max_retries: d.get_int("max_retries")?,
        username_template: d.get_string("username_template")?.filter(|s| !s.is_empty()),
        role_arn: d.get_string("role_arn")?,
        identity_token_audience: d.get_string("identity_token_audience")?,
        identity_token_ttl: d.get_duration_secs("identity_token_ttl")?,
        rotation_schedule: d.get_string("rotation_schedule")?,
        rotation_window: d.get_duration_secs("rotation_window")?,
        rotation_period: d.get_duration_secs("rotation_period")?,
        disable_automated_rotation: d.get_bool("disable_automated_rotation")?,
        rotation_policy: d.get_string("rotation_policy")?,
        external_id: d.get_string("external_id")?,
        role_session_name: d.get_string("role_session_name")?,
        duration: d.get_duration_secs("duration")?,
        expected_account_id: d.get_string("expected_account_id")?,
        iam_write_rate: non_negative(d, "iam_write_rate")?,
        iam_read_rate: non_negative(d, "iam_read_rate")?,
        sts_rate: non_negative(d, "sts_rate")?,
        max_queue_wait: d.get_duration_secs("max_queue_wait")?,
        retry_deadline: d.get_duration_secs("retry_deadline")?,
        call_timeout: d.get_duration_secs("call_timeout")?,
    };
    let verify = d.get_bool("verify_connection")?.unwrap_or(true);
    match state.engine().write_root_config(ctx, input, verify).await? {
        Some(who) => Ok(Reply::data(json!({
            "account_id": who.account,
            "arn": who.arn,
            "user_id": who.user_id,
        }))),
        None => Ok(Reply::no_content()),
    }
}

fn non_negative(d: &RequestData, name: &str) -> ApiResult<Option<u64>> {
    match d.get_int(name)? {
        Some(v) => u64::try_from(v).map(Some).map_err(|_| {
            ApiError::BadRequest(format!("{name} must be a positive number of calls per second"))
        }),
        None => Ok(None),
    }
}

async fn read_lease(state: &AppState, ctx: &MountCtx) -> ApiResult<Reply> {
    let cfg = state.engine().lease_config(ctx).await?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(json!({
        "lease": format_go_duration(cfg.lease),
        "lease_max": format_go_duration(cfg.lease_max),
    })))
}

async fn write_lease(state: &AppState, ctx: &MountCtx, d: &RequestData) -> ApiResult<Reply> {
    let field = |name: &str| -> ApiResult<u64> {
        let raw = d.get_string(name)?.unwrap_or_default();
        if raw.is_empty() {
            return Err(ApiError::BadRequest(format!("'{name}' is a required parameter")));
        }
        parse_duration_secs(&raw).map_err(|e| ApiError::BadRequest(format!("Invalid {name}: {e}")))
    };
    let cfg = LeaseConfig { lease: field("lease")?, lease_max: field("lease_max")? };
    state.engine().write_lease_config(ctx, cfg).await?;
    Ok(Reply::no_content())
}

async fn role(state: &AppState, ctx: &MountCtx, name: &str, req: LogicalRequest) -> ApiResult<Reply> {
    match req.op {
        Operation::Read => {
            let role = state.engine().role(ctx, name).await?.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(role.to_read_data()))
        }
        Operation::Delete => {
            state.engine().delete_role(ctx, name).await?;
            Ok(Reply::no_content())
        }
        Operation::Update => {
            let d = &req.data;
            let input = RoleInput {
                credential_type: d.get_string("credential_type")?,
                role_arns: d.get_comma_slice("role_arns")?,
                policy_arns: d.get_comma_slice("policy_arns")?,
                policy_document: d.get_string("policy_document")?,
                iam_groups: d.get_comma_slice("iam_groups")?,
                iam_tags: d.get_kv_pairs("iam_tags")?,
                session_tags: d.get_kv_pairs("session_tags")?,
                external_id: d.get_string("external_id")?,
                default_sts_ttl: d.get_duration_secs("default_sts_ttl")?,
                max_sts_ttl: d.get_duration_secs("max_sts_ttl")?,
                user_path: d.get_string("user_path")?,
                permissions_boundary_arn: d.get_string("permissions_boundary_arn")?,
                mfa_serial_number: d.get_string("mfa_serial_number")?,
                default_ttl: d.get_duration_secs("default_ttl")?,
                max_ttl: d.get_duration_secs("max_ttl")?,
                legacy_policy: d.get_string("policy")?,
                legacy_arn: d.get_string("arn")?,
                wait_until_usable: d.get_bool("wait_until_usable")?,
                usable_timeout: d.get_duration_secs("usable_timeout")?,
            };
            let warnings = state.engine().write_role(ctx, name, input).await?;
            Ok(Reply::written(warnings))
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

async fn creds(
    state: &AppState,
    identity: &Identity,
    ctx: &MountCtx,
    name: &str,
    via_sts: bool,
    d: &RequestData,
) -> ApiResult<Reply> {
    let req = CredsRequest {
        role_name: name.to_string(),
        via_sts_path: via_sts,
        ttl: d.get_duration_secs("ttl")?,
        role_arn: d.get_string("role_arn")?,
        role_session_name: d.get_string("role_session_name")?,
        mfa_code: d.get_string("mfa_code")?,
        display_name: identity.display_name.clone(),
        token_accessor: Some(identity.accessor.clone()),
        orphan: d.get_bool("orphan")?.unwrap_or(false),
        wait_until_usable: d.get_bool("wait_until_usable")?,
    };
    let minted = state.engine().mint(ctx, req).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_vaults_pattern() {
        for ok in ["deploy", "a", "team.deploy@prod", "ci-role_1"] {
            assert!(NAME.is_match(ok), "{ok}");
        }
        for bad in ["", "-x", "x-", "a/b", "a b"] {
            assert!(!NAME.is_match(bad), "{bad}");
        }
    }
}
