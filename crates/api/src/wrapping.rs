//! Vault's response wrapping: a request sent with `X-Vault-Wrap-TTL` gets, instead of its
//! response, a single-use wrapping token (`wrap_info`), and the response is kept, sealed, for
//! whoever presents that token to `sys/wrapping/unwrap`. `sys/wrapping/lookup` tells when and
//! where a token was made without spending it, `sys/wrapping/rewrap` moves a response to a new
//! token, and `sys/wrapping/wrap` wraps the data it is given.
//!
//! Guarantees: a wrapped response is handed out at most once, across replicas: the row is
//! deleted by the statement that reads it ([`keymint_store::wrapping::take`]). A wrapping token
//! is an orphan with one use, no renewal and the built-in `response-wrapping` policy only; it
//! expires with its wrap TTL, and its response goes with it (revoking the token deletes the
//! row). Responses are sealed under the token's accessor, never stored in clear.

use axum::http::HeaderMap;
use keymint_auth::RESPONSE_WRAPPING_POLICY_NAME;
use keymint_store::StoreError;
use keymint_store::tokens::{self, TokenRow};
use keymint_store::wrapping::{self, WrappedRow};
use serde_json::{Value, json};
use tracing::info;

use crate::AppState;
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::LogicalRequest;

/// Vault's text for a wrapping token that is unknown, used, expired or not a wrapping token.
const INVALID_TOKEN: &str = "wrapping token is not valid or does not exist";

/// The paths that take a wrapping token, from the body or as the caller's own token.
const TOKEN_PATHS: [&str; 2] = ["sys/wrapping/unwrap", "sys/wrapping/rewrap"];

pub(crate) fn invalid_token() -> ApiError {
    ApiError::BadRequest(INVALID_TOKEN.into())
}

/// The wrap TTL a request asks for with `X-Vault-Wrap-TTL` (seconds or a Go duration), or
/// `None` when it asks for none (no header, or 0).
pub(crate) fn requested_ttl(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get("x-vault-wrap-ttl") else { return Ok(None) };
    let bad = |why: &str| ApiError::BadRequest(format!("error parsing X-Vault-Wrap-TTL header: {why}"));
    let text = value.to_str().map_err(|_| bad("not valid text"))?;
    match keymint_common::go::duration::parse_duration_secs(text) {
        Ok(0) => Ok(None),
        Ok(secs) => Ok(Some(secs)),
        Err(keymint_common::go::duration::DurationError::Negative(_)) => {
            Err(bad("requested wrap ttl cannot be negative"))
        }
        Err(e) => Err(bad(&e.to_string())),
    }
}

/// Whether a request that failed authentication was an unwrap (or rewrap) presenting its
/// wrapping token as the client token: Vault checks the wrapping token before the client
/// token, so a used or unknown one is a 400 in its words, not a 403.
pub(crate) fn unwrap_by_own_token(req: &LogicalRequest) -> bool {
    TOKEN_PATHS.contains(&req.path.as_str())
        && req.data.as_map().get("token").and_then(Value::as_str).is_none_or(str::is_empty)
}

/// Puts a successful reply into a wrapping token valid `ttl` seconds; `path` is the request
/// path (the `creation_path`). Replies with no body (204), bare bodies and replies already
/// wrapped (a rewrap) are answered as they are, as in Vault.
pub(crate) async fn wrap(
    state: &AppState,
    reply: Reply,
    mount_type: &str,
    path: &str,
    ttl: u64,
    request_id: &str,
) -> ApiResult<Reply> {
    let has_body = !reply.no_content && reply.raw.is_none() && reply.wrap_info.is_none();
    if !has_body || reply.status.is_some_and(|s| s != axum::http::StatusCode::OK) {
        return Ok(reply);
    }
    // The accessor of what is wrapped: a token's, or an AppRole secret id's (Vault's).
    let wrapped_accessor = reply
        .auth
        .as_ref()
        .and_then(|a| a["accessor"].as_str())
        .or_else(|| reply.data.as_ref().and_then(|d| d["secret_id_accessor"].as_str()))
        .unwrap_or_default()
        .to_string();
    let body = reply.body(mount_type, request_id);
    let plain = serde_json::to_vec(&body).map_err(|e| ApiError::hidden(&e))?;
    let new = NewWrapping::build(state, &plain, path, ttl, &wrapped_accessor);
    let mut tx = state.store().begin().await?;
    new.insert(&mut tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    info!(token.accessor = %new.token.accessor, path, ttl_secs = ttl, "response wrapped");
    Ok(Reply { wrap_info: Some(new.info), ..Reply::default() })
}

/// `sys/wrapping/unwrap`: the original response, as it would have been answered.
pub(crate) async fn unwrap(c: &Call) -> ApiResult<Reply> {
    let held = held_token(c).await?;
    let store = c.state.store();
    let mut tx = store.begin().await?;
    let row = wrapping::take(&mut *tx, &held.accessor, c.state.now_ms()).await?.ok_or_else(invalid_token)?;
    if held.third_party {
        // Presented as the caller's own token, the token spent its one use on this request
        // and is revoked once it is answered.
        tokens::delete_by_accessor(&mut *tx, &held.accessor).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    info!(token.accessor = %held.accessor, "response unwrapped");
    let plain = store.open_sealed(&wrapping::identity(&held.accessor), &row.response).await?;
    let body: Value = serde_json::from_slice(&plain).map_err(|e| ApiError::hidden(&e))?;
    // Answered as it was when wrapped, request id included, as Vault does.
    Ok(Reply { raw: Some(body), ..Reply::default() })
}

/// `sys/wrapping/lookup`: when and where a wrapping token was made; the token stays valid.
pub(crate) async fn lookup(c: &Call) -> ApiResult<Reply> {
    if c.fields().string("token")?.filter(|t| !t.is_empty()).is_none() && c.req.token.is_none() {
        return Err(ApiError::BadRequest("missing \"token\" value in input".into()));
    }
    let held = held_token(c).await?;
    let row = wrapping::get(c.state.store().pool(), &held.accessor, c.state.now_ms())
        .await?
        .ok_or_else(invalid_token)?;
    Ok(Reply::data(json!({
        "creation_path": row.creation_path,
        "creation_time": rfc3339(row.created_at),
        "creation_ttl": row.ttl,
    })))
}

/// `sys/wrapping/rewrap`: the same response under a new token with the same TTL; the old
/// token is spent.
pub(crate) async fn rewrap(c: &Call) -> ApiResult<Reply> {
    let held = held_token(c).await?;
    let store = c.state.store();
    let mut tx = store.begin().await?;
    let old = wrapping::take(&mut *tx, &held.accessor, c.state.now_ms()).await?.ok_or_else(invalid_token)?;
    if held.third_party {
        tokens::delete_by_accessor(&mut *tx, &held.accessor).await?;
    }
    let plain = store.open_sealed(&wrapping::identity(&held.accessor), &old.response).await?;
    let wrapped_accessor = serde_json::from_slice::<Value>(&plain)
        .ok()
        .and_then(|body| {
            body["auth"]["accessor"]
                .as_str()
                .or_else(|| body["data"]["secret_id_accessor"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let ttl = u64::try_from(old.ttl).unwrap_or(0);
    let new = NewWrapping::build(&c.state, &plain, &old.creation_path, ttl, &wrapped_accessor);
    new.insert(&mut tx).await?;
    tx.commit().await.map_err(StoreError::from)?;
    info!(token.accessor = %new.token.accessor, old.accessor = %held.accessor, "response rewrapped");
    Ok(Reply { wrap_info: Some(new.info), ..Reply::default() })
}

/// `sys/wrapping/wrap`: the request's own data, to be wrapped (it needs a wrap TTL).
pub(crate) fn wrap_data(c: &Call) -> ApiResult<Reply> {
    if c.req.wrap_ttl.is_none() {
        return Err(ApiError::BadRequest("endpoint requires response wrapping to be used".into()));
    }
    Ok(Reply::data(Value::Object(c.req.data.as_map().clone())))
}

/// The wrapping token a request is about: the `token` field, else the caller's own token.
struct Held {
    accessor: String,
    /// Named in the body rather than presented by the caller: the handler revokes it.
    third_party: bool,
}

async fn held_token(c: &Call) -> ApiResult<Held> {
    let named = c.fields().string("token")?.filter(|t| !t.is_empty());
    match (named, &c.identity) {
        (None, Some(identity)) => {
            // Authentication has spent the token's one use already.
            let wrapping =
                identity.policies.len() == 1 && identity.policies[0] == RESPONSE_WRAPPING_POLICY_NAME;
            if !wrapping {
                return Err(invalid_token());
            }
            Ok(Held { accessor: identity.accessor.clone(), third_party: false })
        }
        (named, identity) => {
            // Unauthenticated (a lookup): the token presented is read, not spent.
            let token = named.as_deref().or(c.req.token.as_deref()).ok_or_else(invalid_token)?;
            let row =
                tokens::get_by_hash(c.state.store().pool(), &c.state.store().hasher().hash(token)).await?;
            let row = row.filter(|r| is_wrapping(r, c.state.now_ms())).ok_or_else(invalid_token)?;
            let own = identity.as_ref().is_some_and(|i| i.accessor == row.accessor);
            Ok(Held { third_party: named.is_some() && !own, accessor: row.accessor })
        }
    }
}

/// A live, unspent response-wrapping token.
fn is_wrapping(row: &TokenRow, now_ms: i64) -> bool {
    let policies = keymint_auth::policies_of(row).unwrap_or_default();
    policies == [RESPONSE_WRAPPING_POLICY_NAME]
        && row.num_uses > 0
        && row.expire_at.is_some_and(|at| at > now_ms)
}

/// A wrapping token and its sealed response, ready to insert, and the `wrap_info` naming them.
struct NewWrapping {
    token: TokenRow,
    row: WrappedRow,
    info: Value,
}

impl NewWrapping {
    fn build(state: &AppState, plain: &[u8], creation_path: &str, ttl: u64, wrapped_accessor: &str) -> Self {
        let now = state.now_ms();
        let ttl_secs = i64::try_from(ttl).unwrap_or(i64::MAX);
        let expire_at = now.saturating_add(ttl_secs.saturating_mul(1000));
        let token = keymint_auth::generate_token();
        let accessor = keymint_auth::generate_accessor();
        let row = WrappedRow {
            accessor: accessor.clone(),
            response: state.store().seal().seal(&wrapping::identity(&accessor), plain),
            creation_path: creation_path.to_string(),
            created_at: now,
            ttl: ttl_secs,
            expire_at,
        };
        let info = json!({
            "token": token,
            "accessor": accessor,
            "ttl": ttl_secs,
            "creation_time": rfc3339(now),
            "creation_path": creation_path,
            "wrapped_accessor": wrapped_accessor,
        });
        let token = TokenRow {
            hash: state.store().hasher().hash(&token),
            accessor,
            policies: json!([RESPONSE_WRAPPING_POLICY_NAME]).to_string(),
            display_name: "response-wrapping".into(),
            meta: "{}".into(),
            created_at: now,
            expire_at: Some(expire_at),
            parent: None,
            orphan: 1,
            ttl: ttl_secs,
            explicit_max_ttl: ttl_secs,
            num_uses: 1,
            renewable: 0,
            path: creation_path.to_string(),
            bound_cidrs: "[]".into(),
            ..TokenRow::default()
        };
        NewWrapping { token, row, info }
    }

    async fn insert(&self, conn: &mut keymint_store::AnyConnection) -> ApiResult<()> {
        tokens::insert(&mut *conn, &self.token, false).await?;
        wrapping::insert(&mut *conn, &self.row).await?;
        Ok(())
    }
}

/// A stored time as Go prints a `time.Time` in JSON (RFC 3339, fraction without trailing
/// zeros), which is how Vault writes `creation_time`.
fn rfc3339(ms: i64) -> String {
    let text = keymint_store::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    match text.strip_suffix('Z').and_then(|t| t.split_once('.')) {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() { format!("{whole}Z") } else { format!("{whole}.{fraction}Z") }
        }
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_ttls_read_as_vault_reads_them() {
        let ttl = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-vault-wrap-ttl", v.parse().unwrap());
            requested_ttl(&h)
        };
        assert_eq!(requested_ttl(&HeaderMap::new()).unwrap(), None);
        assert_eq!(ttl("60").unwrap(), Some(60));
        assert_eq!(ttl("5m").unwrap(), Some(300));
        assert_eq!(ttl("0").unwrap(), None);
        let negative = ttl("-5").unwrap_err().to_string();
        assert!(negative.contains("requested wrap ttl cannot be negative"), "{negative}");
        assert!(ttl("soon").unwrap_err().to_string().contains("error parsing X-Vault-Wrap-TTL header"));
    }

    #[test]
    fn creation_times_print_as_go_prints_them() {
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_700_000_000_120), "2023-11-14T22:13:20.12Z");
    }
}
