//! `config/rotate-root`, `static-roles/:name`, `static-roles` (LIST) and `static-creds/:name`:
//! access keys keymint rotates instead of minting.

use keymint_engine::StaticRoleInput;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};

/// `config/rotate-root`: 200 with the new access key (never the secret).
pub(crate) async fn rotate_root(c: &Call) -> ApiResult<Reply> {
    let rotated = c.state.engine().rotate_root(&c.ctx()?).await?;
    Ok(Reply {
        data: Some(json!({ "access_key": rotated.access_key })),
        warnings: rotated.warnings,
        ..Default::default()
    })
}

/// LIST `static-roles`.
pub(crate) async fn list(c: &Call) -> ApiResult<Reply> {
    let keys = c.state.engine().list_static_roles(&c.ctx()?).await?;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

/// Read `static-roles/:name`.
pub(crate) async fn read(c: &Call) -> ApiResult<Reply> {
    let role = c.state.engine().static_role(&c.ctx()?, c.name()).await?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(role.to_read_data(c.name())))
}

/// Delete `static-roles/:name`.
pub(crate) async fn delete(c: &Call) -> ApiResult<Reply> {
    c.state.engine().delete_static_role(&c.ctx()?, c.name()).await?;
    Ok(Reply::no_content())
}

/// Write `static-roles/:name`.
pub(crate) async fn write(c: &Call) -> ApiResult<Reply> {
    let input: StaticRoleInput = c.fields().typed()?;
    let role = c.state.engine().write_static_role(&c.ctx()?, c.name(), input).await?;
    Ok(Reply::data(role.to_read_data(c.name())))
}

/// `static-creds/:name`: the current key, with no lease.
pub(crate) async fn static_creds(c: &Call) -> ApiResult<Reply> {
    let creds = c.state.engine().static_creds(&c.ctx()?, c.name()).await?.ok_or(ApiError::NotFound)?;
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
