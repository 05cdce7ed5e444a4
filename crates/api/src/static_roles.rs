//! `config/rotate-root`, `static-roles/:name`, `static-roles` (LIST) and `static-creds/:name`:
//! access keys keymint rotates instead of minting.

use keymint_engine::{MountCtx, StaticRoleInput};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::AppState;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::{LogicalRequest, Operation};

pub(crate) const STATIC_ROLE_FIELDS: &[&str] =
    &["name", "username", "rotation_period", "assume_role_arn", "assume_role_session_name", "external_id"];

/// `config/rotate-root`: 200 with the new access key (never the secret).
pub async fn rotate_root(state: &AppState, ctx: &MountCtx, req: &LogicalRequest) -> ApiResult<Reply> {
    if req.op != Operation::Update {
        return Err(ApiError::UnsupportedOperation);
    }
    let rotated = state.engine().rotate_root(ctx).await?;
    Ok(Reply {
        data: Some(json!({ "access_key": rotated.access_key })),
        warnings: rotated.warnings,
        ..Default::default()
    })
}

/// LIST `static-roles`.
pub async fn list(state: &AppState, ctx: &MountCtx, req: &LogicalRequest) -> ApiResult<Reply> {
    if req.op != Operation::List {
        return Err(ApiError::UnsupportedOperation);
    }
    let keys = state.engine().list_static_roles(ctx).await?;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

/// `static-roles/:name`.
pub async fn static_role(
    state: &AppState,
    ctx: &MountCtx,
    name: &str,
    req: &LogicalRequest,
) -> ApiResult<Reply> {
    match req.op {
        Operation::Read => {
            let role = state.engine().static_role(ctx, name).await?.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(role.to_read_data(name)))
        }
        Operation::Delete => {
            state.engine().delete_static_role(ctx, name).await?;
            Ok(Reply::no_content())
        }
        Operation::Update => {
            let d = &req.data;
            let input = StaticRoleInput {
                username: d.get_string("username")?,
                rotation_period: d.get_duration_secs("rotation_period")?,
                assume_role_arn: d.get_string("assume_role_arn")?,
                assume_role_session_name: d.get_string("assume_role_session_name")?,
                external_id: d.get_string("external_id")?,
            };
            let role = state.engine().write_static_role(ctx, name, input).await?;
            Ok(Reply::data(role.to_read_data(name)))
        }
        _ => Err(ApiError::UnsupportedOperation),
    }
}

/// `static-creds/:name`: the current key, with no lease.
pub async fn static_creds(
    state: &AppState,
    ctx: &MountCtx,
    name: &str,
    req: &LogicalRequest,
) -> ApiResult<Reply> {
    if req.op != Operation::Read {
        return Err(ApiError::UnsupportedOperation);
    }
    let creds = state.engine().static_creds(ctx, name).await?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(json!({
        "access_key": creds.access_key,
        "secret_key": creds.secret_key.expose_secret(),
        "expiration": creds.expiration.map(go_time),
    })))
}

/// A time as Go's JSON encoding writes it (RFC 3339 with as many fraction digits as needed).
pub fn go_time(t: chrono::DateTime<chrono::Utc>) -> String {
    let text = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match text.split_once('.') {
        Some((whole, fraction)) => {
            let digits = fraction.trim_end_matches('Z').trim_end_matches('0');
            if digits.is_empty() { format!("{whole}Z") } else { format!("{whole}.{digits}Z") }
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn times_read_like_gos() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 5).unwrap();
        assert_eq!(go_time(t), "2026-03-01T12:00:05Z");
        assert_eq!(go_time(t + chrono::TimeDelta::milliseconds(120)), "2026-03-01T12:00:05.12Z");
        assert_eq!(go_time(t + chrono::TimeDelta::nanoseconds(7)), "2026-03-01T12:00:05.000000007Z");
    }
}
