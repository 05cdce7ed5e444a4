//! AppRole's secret ids: generated or registered (shown once, stored as a keyed hash), looked
//! up and destroyed by value or by accessor, and tidied once expired.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use keymint_auth::cidr;
use keymint_store::auth_methods::{self as rows, SecretIdRow};
use serde_json::{Value, json};

use super::{SecretDetails, load_role, role_name, secret_hash};
use crate::auth_methods::mount_of;
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::Operation;

/// `role/<name>/secret-id` (generate, or LIST accessors) and `role/<name>/custom-secret-id`.
pub(crate) async fn secret_id(c: &Call, custom: bool) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let name = role_name(c);
    let role = load_role(c, mount, &name).await?;
    if c.req.op == Operation::List {
        let pool = c.state.store().pool();
        let keys = rows::secret_id_accessors(pool, &mount.id, &name).await?;
        if role.is_none() || keys.is_empty() {
            return Err(ApiError::NotFound);
        }
        return Ok(Reply::data(json!({ "keys": keys })));
    }
    let role = role
        .ok_or_else(|| ApiError::Rejected(StatusCode::NOT_FOUND, format!("role {name:?} does not exist")))?;
    if !role.bind_secret_id {
        return Err(ApiError::BadRequest("bind_secret_id is not set on the role".into()));
    }
    let f = c.fields();
    let secret = if custom {
        f.string("secret_id")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::BadRequest("missing secret_id".into()))?
    } else {
        uuid::Uuid::new_v4().to_string()
    };
    let metadata = parse_metadata(f.string("metadata")?.as_deref())?;
    let cidr_list = clean(f.list("cidr_list")?);
    if cidr_list.iter().any(|b| cidr::Cidr::parse(b).is_err()) {
        return Err(ApiError::BadRequest("failed to parse the CIDR blocks of cidr_list".into()));
    }
    if !role.secret_id_bound_cidrs.is_empty() && !cidr::subset(&cidr_list, &role.secret_id_bound_cidrs) {
        return Err(ApiError::BadRequest(
            "failed to verify the CIDR restrictions set on the secret ID: they must lie within the role's secret_id_bound_cidrs".into(),
        ));
    }
    let token_cidrs = clean(f.list("token_bound_cidrs")?);
    if token_cidrs.iter().any(|b| cidr::Cidr::parse(b).is_err()) {
        return Err(ApiError::BadRequest("failed to parse the CIDR blocks of token_bound_cidrs".into()));
    }
    if !role.tokens.token_bound_cidrs.is_empty()
        && !cidr::subset(&token_cidrs, &role.tokens.token_bound_cidrs)
    {
        return Err(ApiError::BadRequest(
            "failed to verify the token_bound_cidrs of the secret ID: they must lie within the role's token_bound_cidrs".into(),
        ));
    }
    let num_uses = f.int("num_uses")?.unwrap_or(role.secret_id_num_uses);
    if num_uses < 0 {
        return Err(ApiError::BadRequest("num_uses cannot be negative".into()));
    }
    if role.secret_id_num_uses > 0 && (num_uses == 0 || num_uses > role.secret_id_num_uses) {
        return Err(ApiError::BadRequest(
            "num_uses cannot be higher than the role's secret_id_num_uses".into(),
        ));
    }
    let mut ttl = f.duration("ttl")?.map_or(role.secret_id_ttl, |t| i64::try_from(t).unwrap_or(i64::MAX));
    if role.secret_id_ttl > 0 && (ttl == 0 || ttl > role.secret_id_ttl) {
        return Err(ApiError::BadRequest("ttl cannot be longer than the role's secret_id_ttl".into()));
    }
    let mount_max =
        if mount.max_lease_ttl > 0 { mount.max_lease_ttl } else { keymint_auth::token::MAX_TTL_SECS };
    if ttl > mount_max {
        ttl = mount_max;
    }
    let now = c.state.now_ms();
    let accessor = uuid::Uuid::new_v4().to_string();
    let details =
        SecretDetails { metadata, cidr_list, token_bound_cidrs: token_cidrs, ttl, last_updated_time: now };
    let row = SecretIdRow {
        mount_id: mount.id.clone(),
        role_name: name.clone(),
        hash: secret_hash(c, mount, &name, &secret),
        accessor: accessor.clone(),
        uses_left: num_uses,
        expire_at: (ttl > 0).then(|| now.saturating_add(ttl.saturating_mul(1000))),
        body: serde_json::to_string(&details).map_err(|e| ApiError::hidden(&e))?,
        created_at: now,
    };
    if !rows::insert_secret_id(c.state.store().pool(), &row).await? {
        return Err(ApiError::vaults_500("SecretID is already registered"));
    }
    tracing::info!(auth.role = %name, secret_id.accessor = %accessor, "secret id created");
    Ok(Reply::data(json!({
        "secret_id": secret,
        "secret_id_accessor": accessor,
        "secret_id_ttl": ttl,
        "secret_id_num_uses": num_uses,
    })))
}

fn clean(list: Option<Vec<String>>) -> Vec<String> {
    list.unwrap_or_default().into_iter().map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect()
}

/// A secret id's `metadata`: a JSON object of strings in a string, `k=v,...`, or base64 JSON.
fn parse_metadata(text: Option<&str>) -> ApiResult<BTreeMap<String, String>> {
    let text = text.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Ok(BTreeMap::new());
    }
    let bad = |why: &str| ApiError::BadRequest(format!("failed to parse metadata: {why}"));
    let from_json = |raw: &str| -> Option<Result<BTreeMap<String, String>, ApiError>> {
        let value: Value = serde_json::from_str(raw).ok()?;
        Some(match value {
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    _ => Err(bad("metadata values must be strings")),
                })
                .collect(),
            _ => Err(bad("metadata must be a JSON object")),
        })
    };
    if let Some(parsed) = from_json(text) {
        return parsed;
    }
    use base64::Engine as _;
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text)
        && let Some(parsed) = std::str::from_utf8(&bytes).ok().and_then(from_json)
    {
        return parsed;
    }
    text.split(',')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
            _ => Err(bad("not a JSON object nor key=value pairs")),
        })
        .collect()
}

/// `role/<name>/secret-id/lookup` and `.../secret-id-accessor/lookup`.
pub(crate) async fn lookup(c: &Call, by_accessor: bool) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let name = role_name(c);
    if load_role(c, mount, &name).await?.is_none() {
        return Err(ApiError::vaults_500(&format!("role {name:?} does not exist")));
    }
    let pool = c.state.store().pool();
    let row = if by_accessor {
        let accessor = c.fields().string("secret_id_accessor")?.unwrap_or_default();
        let row =
            rows::secret_id_by_accessor(pool, &mount.id, &accessor).await?.filter(|r| r.role_name == name);
        match row {
            Some(row) => row,
            None => {
                let text = format!("failed to find accessor entry for secret_id_accessor: {accessor:?}");
                return Ok(Reply {
                    status: Some(StatusCode::NOT_FOUND),
                    data: Some(json!({ "error": text })),
                    ..Default::default()
                });
            }
        }
    } else {
        let secret = c.fields().string("secret_id")?.unwrap_or_default();
        if secret.is_empty() {
            return Err(ApiError::BadRequest("missing secret_id".into()));
        }
        match rows::secret_id_by_hash(pool, &mount.id, &secret_hash(c, mount, &name, &secret)).await? {
            Some(row) => row,
            None => return Ok(Reply::no_content()),
        }
    };
    let details: SecretDetails = serde_json::from_str(&row.body).unwrap_or_default();
    let rfc3339 =
        |ms: i64| keymint_store::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    Ok(Reply::data(json!({
        "secret_id_accessor": row.accessor,
        "secret_id_num_uses": row.uses_left,
        "secret_id_ttl": details.ttl,
        "creation_time": rfc3339(row.created_at),
        "expiration_time": row.expire_at.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339),
        "last_updated_time": rfc3339(details.last_updated_time.max(row.created_at)),
        "metadata": details.metadata,
        "cidr_list": details.cidr_list,
        "token_bound_cidrs": details.token_bound_cidrs,
    })))
}

/// `role/<name>/secret-id/destroy` and `.../secret-id-accessor/destroy`.
pub(crate) async fn destroy(c: &Call, by_accessor: bool) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let name = role_name(c);
    if load_role(c, mount, &name).await?.is_none() {
        return Err(ApiError::vaults_500(&format!("role {name:?} does not exist")));
    }
    let pool = c.state.store().pool();
    if by_accessor {
        let accessor = c.fields().string("secret_id_accessor")?.unwrap_or_default();
        let row = rows::secret_id_by_accessor(pool, &mount.id, &accessor).await?;
        let row = match row {
            Some(row) if row.role_name == name => row,
            Some(_) => return Err(ApiError::Denied("invalid secret id accessor".into())),
            None => {
                return Err(ApiError::vaults_500(&format!(
                    "failed to find accessor entry for secret_id_accessor: {accessor:?}"
                )));
            }
        };
        rows::delete_secret_id(pool, &mount.id, &row.hash).await?;
    } else {
        let secret = c.fields().string("secret_id")?.unwrap_or_default();
        if secret.is_empty() {
            return Err(ApiError::BadRequest("missing secret_id".into()));
        }
        rows::delete_secret_id(pool, &mount.id, &secret_hash(c, mount, &name, &secret)).await?;
    }
    Ok(Reply::no_content())
}

/// `role/<name>/local-secret-ids`.
pub(crate) async fn local_secret_ids(c: &Call) -> ApiResult<Reply> {
    let mount = mount_of(c)?;
    let role = load_role(c, mount, &role_name(c)).await?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(json!({ "local_secret_ids": role.local_secret_ids })))
}

/// `tidy/secret-id`: removes expired secret ids. Expired ones are refused at login anyway;
/// this keeps the table small. Answers 202 as Vault does, after the work (it is one statement
/// per batch, not a walk holding locks).
pub(crate) async fn tidy(c: &Call) -> ApiResult<Reply> {
    let removed = tidy_expired(&c.state).await?;
    tracing::info!(secret_ids_removed = removed, "approle secret ids tidied");
    Ok(Reply {
        status: Some(StatusCode::ACCEPTED),
        warnings: vec!["Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs.".into()],
        ..Default::default()
    })
}

/// Deletes expired secret ids of every mount, in batches.
pub(crate) async fn tidy_expired(state: &crate::AppState) -> ApiResult<u64> {
    let mut total = 0;
    loop {
        let n = rows::delete_expired_secret_ids(state.store().pool(), state.now_ms(), 1000).await?;
        total += n;
        if n < 1000 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_comes_as_json_pairs_or_base64() {
        let want: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        assert_eq!(parse_metadata(Some(r#"{"env":"prod"}"#)).unwrap(), want);
        assert_eq!(parse_metadata(Some("env=prod")).unwrap(), want);
        assert_eq!(parse_metadata(Some("eyJlbnYiOiJwcm9kIn0=")).unwrap(), want);
        assert!(parse_metadata(Some("")).unwrap().is_empty());
        let err = parse_metadata(Some(r#"{"n": 1}"#)).unwrap_err().to_string();
        assert!(err.starts_with("failed to parse metadata: "), "{err}");
        assert!(parse_metadata(Some("just words")).is_err());
    }
}
