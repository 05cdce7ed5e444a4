//! `auth/token/*`: create (also create-orphan, and create against a token role), lookup, renew
//! and revoke tokens, by token, by accessor or self, with Vault's `auth` block; token roles
//! themselves are routed to `token_roles`. Revoking a token revokes its children (unless
//! revoked with `revoke-orphan`) and makes the leases each of them created due at once.

use keymint_auth::Identity;
use keymint_auth::token::{self, CreateRequest};
use keymint_auth::token_role::{self, RoleTokenType};
use keymint_store::tokens::{self, TokenRow};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::AppState;
use crate::dispatch::Call;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::LogicalRequest;

/// `auth/token/create`, `auth/token/create-orphan` and `auth/token/create/<role>`.
pub(crate) async fn create_at(c: &Call) -> ApiResult<Reply> {
    let (state, identity, req) = (&c.state, c.identity()?, &c.req);
    let rest = req.path.strip_prefix("auth/token/").unwrap_or_default();
    let origin = match rest {
        "create" => Origin::Create,
        "create-orphan" => Origin::CreateOrphan,
        _ => match rest.strip_prefix("create/").filter(|name| token_role::valid_name(name)) {
            Some(name) => Origin::Role(name),
            None => return Err(ApiError::UnsupportedPath),
        },
    };
    create(state, identity, req, origin).await
}

/// `auth/token/lookup-self`: what `vault login` and hvac's `is_authenticated` call.
pub(crate) async fn lookup_self(c: &Call) -> ApiResult<Reply> {
    let row = own_row(&c.state, c.identity()?).await?;
    Ok(Reply::data(lookup_data(&row, c.req.token.as_deref().unwrap_or_default(), c.state.now_ms())?))
}

/// `auth/token/lookup` (by token) and `auth/token/lookup-accessor`.
pub(crate) async fn lookup(c: &Call) -> ApiResult<Reply> {
    if c.req.path.ends_with("lookup-accessor") {
        let row = by_accessor(&c.state, &c.req).await?;
        return Ok(Reply::data(lookup_data(&row, "", c.state.now_ms())?));
    }
    // Vault answers a lookup of an unknown token with 403 "bad token".
    let found = find_token(&c.state, &c.req).await?;
    let (row, token) = found.ok_or_else(|| ApiError::Denied("bad token".into()))?;
    Ok(Reply::data(lookup_data(&row, &token, c.state.now_ms())?))
}

pub(crate) async fn renew_self(c: &Call) -> ApiResult<Reply> {
    let row = own_row(&c.state, c.identity()?).await?;
    renew(&c.state, &row, &c.req, c.req.token.as_deref().unwrap_or_default()).await
}

pub(crate) async fn renew_token(c: &Call) -> ApiResult<Reply> {
    let (row, token) = by_token(&c.state, &c.req).await?;
    renew(&c.state, &row, &c.req, &token).await
}

pub(crate) async fn renew_accessor(c: &Call) -> ApiResult<Reply> {
    let row = by_accessor(&c.state, &c.req).await?;
    renew(&c.state, &row, &c.req, "").await
}

pub(crate) async fn revoke_self(c: &Call) -> ApiResult<Reply> {
    revoke_token(&c.state, &c.identity()?.accessor, false).await?;
    Ok(Reply::no_content())
}

/// `auth/token/revoke`, and `auth/token/revoke-orphan` (`orphan`: its children stay).
pub(crate) async fn revoke(c: &Call, orphan: bool) -> ApiResult<Reply> {
    let (row, _) = by_token(&c.state, &c.req).await?;
    revoke_token(&c.state, &row.accessor, orphan).await?;
    Ok(Reply::no_content())
}

pub(crate) async fn revoke_accessor(c: &Call) -> ApiResult<Reply> {
    let row = by_accessor(&c.state, &c.req).await?;
    revoke_token(&c.state, &row.accessor, false).await?;
    Ok(Reply::no_content())
}

pub(crate) async fn accessors(c: &Call) -> ApiResult<Reply> {
    let keys = tokens::accessors(c.state.store().pool()).await?;
    Ok(Reply::data(json!({ "keys": keys })))
}

async fn own_row(state: &AppState, identity: &Identity) -> ApiResult<TokenRow> {
    tokens::get_by_accessor(state.store().pool(), &identity.accessor).await?.ok_or(ApiError::PermissionDenied)
}

/// The live token named by the `token` parameter, and that token; `None` when there is none.
async fn find_token(state: &AppState, req: &LogicalRequest) -> ApiResult<Option<(TokenRow, String)>> {
    let token = req.fields().string("token")?.filter(|t| !t.is_empty());
    let token = token.ok_or_else(|| ApiError::BadRequest("missing token to look up".into()))?;
    let row = tokens::get_by_hash(state.store().pool(), &state.store().hasher().hash(&token)).await?;
    Ok(row.filter(|r| live(r, state.now_ms())).map(|row| (row, token)))
}

/// [`find_token`] for renew and revoke: an unknown token is the caller's mistake (400).
async fn by_token(state: &AppState, req: &LogicalRequest) -> ApiResult<(TokenRow, String)> {
    find_token(state, req).await?.ok_or_else(|| ApiError::BadRequest("bad token".into()))
}

async fn by_accessor(state: &AppState, req: &LogicalRequest) -> ApiResult<TokenRow> {
    let accessor = req.fields().string("accessor")?.filter(|a| !a.is_empty());
    let accessor = accessor.ok_or_else(|| ApiError::BadRequest("missing accessor".into()))?;
    let row = tokens::get_by_accessor(state.store().pool(), &accessor).await?;
    row.filter(|r| live(r, state.now_ms())).ok_or_else(|| ApiError::BadRequest("invalid accessor".into()))
}

/// Neither expired by `now_ms` nor used up (the sweeper may not have removed it yet).
fn live(row: &TokenRow, now_ms: i64) -> bool {
    row.num_uses >= 0 && row.expire_at.is_none_or(|at| at > now_ms)
}

/// Whether the caller holds `sudo` on `path` (root does).
async fn has_sudo(state: &AppState, identity: &Identity, path: &str) -> ApiResult<bool> {
    if identity.is_root() {
        return Ok(true);
    }
    let acl = state.acl(&identity.policies).await?;
    Ok(acl.capabilities(path).iter().any(|c| c == "sudo"))
}

/// Which endpoint creates a token.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    Create,
    CreateOrphan,
    /// `auth/token/create/<role>`.
    Role(&'a str),
}

async fn create(
    state: &AppState,
    identity: &Identity,
    req: &LogicalRequest,
    origin: Origin<'_>,
) -> ApiResult<Reply> {
    let d = &req.fields();
    let role = match origin {
        Origin::Role(name) => Some(
            token::load_role(state.store(), name)
                .await?
                .ok_or_else(|| ApiError::BadRequest(format!("unknown role {name}")))?,
        ),
        Origin::Create | Origin::CreateOrphan => None,
    };
    // A role that issues service tokens overrides the type asked for, as in Vault.
    let type_decided = role.as_ref().is_some_and(|r| r.token_type == RoleTokenType::Service);
    if let Some(kind) = d.string("type")?
        && !type_decided
        && !kind.is_empty()
        && kind != "service"
        && kind != "default"
    {
        return Err(ApiError::BadRequest(format!(
            "keymint issues service tokens only; type {kind:?} is not supported"
        )));
    }
    let secs = |key: &str| -> ApiResult<Option<i64>> {
        Ok(d.duration(key)?.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
    };
    let meta = match d.kv("meta")? {
        Some(m) => m.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
        None => serde_json::Map::new(),
    };
    let request = CreateRequest {
        id: d.string("id")?.filter(|s| !s.is_empty()),
        policies: d.list("policies")?,
        meta,
        no_parent: d.bool("no_parent")?.unwrap_or(false),
        no_default_policy: d.bool("no_default_policy")?.unwrap_or(false),
        renewable: d.bool("renewable")?,
        ttl: secs("ttl")?,
        explicit_max_ttl: secs("explicit_max_ttl")?,
        period: secs("period")?,
        display_name: d.string("display_name")?,
        num_uses: d.int("num_uses")?.unwrap_or(0),
        orphan_endpoint: matches!(origin, Origin::CreateOrphan),
        role,
        entity_alias: d.string("entity_alias")?,
        parent_sudo: has_sudo(state, identity, &req.path).await?,
    };
    let created = token::create(state.store(), identity, request, state.now_ms()).await?;
    info!(
        token.accessor = %created.row.accessor,
        parent = %identity.accessor,
        token_role = created.row.role.as_deref().unwrap_or_default(),
        "token created"
    );
    let mut reply = Reply {
        auth: Some(auth_block(&created.row, &created.token, created.row.ttl)?),
        warnings: created.warnings,
        ..Default::default()
    };
    let known = req.route.map(|r| r.known_fields()).unwrap_or_default();
    let unknown = match origin {
        Origin::Role(_) => {
            // The reply has a body, so Vault always says so, whatever the value.
            if req.data.contains("role_name") {
                reply.warnings.push(
                    "Endpoint replaced the value of these parameters with the values captured from the endpoint's path: [role_name]"
                        .to_string(),
                );
            }
            req.data.unknown_keys(&[known.as_slice(), &["role_name"]].concat())
        }
        Origin::Create | Origin::CreateOrphan => req.data.unknown_keys(&known),
    };
    if !unknown.is_empty() {
        reply
            .warnings
            .push(format!("Endpoint ignored these unrecognized parameters: [{}]", unknown.join(" ")));
    }
    Ok(reply)
}

async fn renew(state: &AppState, row: &TokenRow, req: &LogicalRequest, token: &str) -> ApiResult<Reply> {
    let increment = req.fields().duration("increment")?.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX));
    let limits = crate::auth_methods::renew_limits(state, row).await?;
    let renewed = token::renew(state.store(), row, increment, state.now_ms(), limits.as_ref()).await?;
    let mut reply = Reply { auth: Some(auth_block(row, token, renewed.ttl)?), ..Default::default() };
    reply.warnings.extend(renewed.warning);
    Ok(reply)
}

/// Vault's `auth` block for a token.
fn auth_block(row: &TokenRow, token: &str, ttl: i64) -> ApiResult<Value> {
    let policies = keymint_auth::policies_of(row)?;
    let meta: Value = serde_json::from_str(&row.meta).unwrap_or(Value::Null);
    let meta = if meta.as_object().is_some_and(|m| !m.is_empty()) { meta } else { Value::Null };
    Ok(json!({
        "client_token": token,
        "accessor": row.accessor,
        "policies": policies,
        "token_policies": policies,
        "metadata": meta,
        "lease_duration": ttl,
        "renewable": row.renewable == 1,
        "entity_id": "",
        "token_type": "service",
        "orphan": row.orphan == 1 || row.parent.is_none(),
        "mfa_requirement": Value::Null,
        "num_uses": row.num_uses.max(0),
    }))
}

/// `auth/token/lookup*` data.
fn lookup_data(row: &TokenRow, token: &str, now_ms: i64) -> ApiResult<Value> {
    let policies = keymint_auth::policies_of(row)?;
    let meta: Value = serde_json::from_str(&row.meta).unwrap_or(Value::Null);
    let meta = if meta.as_object().is_some_and(|m| !m.is_empty()) { meta } else { Value::Null };
    let rfc3339 =
        |ms: i64| keymint_store::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let ttl = row.expire_at.map_or(0, |at| ((at - now_ms) / 1000).max(0));
    let mut data = json!({
        "accessor": row.accessor,
        "creation_time": row.created_at / 1000,
        "creation_ttl": row.ttl,
        "display_name": row.display_name,
        "entity_id": "",
        "expire_time": row.expire_at.map(rfc3339),
        "explicit_max_ttl": row.explicit_max_ttl,
        "id": token,
        "issue_time": rfc3339(row.created_at),
        "meta": meta,
        "num_uses": row.num_uses.max(0),
        "orphan": row.orphan == 1 || row.parent.is_none(),
        "path": row.path,
        "policies": policies,
        "renewable": row.renewable == 1,
        "ttl": ttl,
        "type": "service",
    });
    if row.period > 0 {
        data["period"] = json!(row.period);
    }
    if let Some(role) = &row.role {
        data["role"] = json!(role);
    }
    let bound_cidrs = keymint_auth::bound_cidrs_of(row)?;
    if !bound_cidrs.is_empty() {
        data["bound_cidrs"] = json!(bound_cidrs);
    }
    if let Some(at) = row.last_renewal {
        data["last_renewal"] = json!(rfc3339(at));
        data["last_renewal_time"] = json!(at / 1000);
    }
    Ok(data)
}

/// Revokes a token: with `orphan_children`, its children become orphans; otherwise they are
/// revoked too, deepest first. Each revoked token's leases (bar orphan leases) are made due,
/// and the expiry worker revokes them.
pub async fn revoke_token(state: &AppState, accessor: &str, orphan_children: bool) -> ApiResult<()> {
    let doomed = if orphan_children {
        tokens::orphan_children(state.store().pool(), accessor).await?;
        vec![accessor.to_string()]
    } else {
        token::tree(state.store(), accessor).await?
    };
    for acc in doomed {
        // Leases first: should this stop half-way, a token that still exists can be revoked
        // again, while leases of a token already gone would have nobody to revoke them.
        state.leases().revoke_for_token(&acc).await.map_err(crate::leases::lease_error)?;
        tokens::delete_by_accessor(state.store().pool(), &acc).await?;
        info!(token.accessor = %acc, "token revoked");
    }
    Ok(())
}

/// Revokes the tokens that have expired, a batch at a time.
async fn revoke_expired_tokens(state: &AppState) {
    match tokens::expired(state.store().pool(), state.now_ms(), 100).await {
        Ok(accessors) => {
            for acc in accessors {
                if let Err(e) = revoke_token(state, &acc, false).await {
                    warn!(token.accessor = %acc, error = %e, "could not revoke an expired token; will retry");
                }
            }
        }
        Err(e) => warn!(error = %e, "could not look for expired tokens"),
    }
}

/// How often [`run_token_expiry`] looks.
const TOKEN_EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Revokes tokens that expired or ran out of uses, with their children and leases, and removes
/// expired AppRole secret ids, every two seconds until `shutdown`, once across the fleet
/// (periodic job claims); also follows audit device changes made through other replicas and
/// data keys added by `keymint operator rotate`.
pub async fn run_token_expiry(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    while !shutdown.is_cancelled() {
        // Devices another replica enabled or disabled, and data keys an operator rotated in,
        // are picked up here too.
        if let Err(e) = state.audit().reload(&state).await {
            warn!(error = %e, "could not refresh the audit devices");
        }
        if let Err(e) = state.store().load_seal_keys().await {
            warn!(error = %e, "could not load new data keys");
        }
        // A restored store's tokens carry the expiry times of the backup: renewed since, they
        // would look expired, and revoking them would revoke their leases.
        if !state.leases().revocation_paused().await {
            // One replica at a time: two would revoke the same tokens (and their leases) twice.
            state
                .leases()
                .jobs()
                .periodic(
                    keymint_lease::jobs::TOKEN_EXPIRY,
                    TOKEN_EXPIRY_EVERY,
                    revoke_expired_tokens(&state),
                )
                .await;
        }
        // Expired AppRole secret ids are refused at login already; this keeps their table small.
        let tidy = crate::auth_methods::approle::tidy_expired(&state);
        let jobs = state.leases().jobs();
        if let Some(Err(e)) =
            jobs.periodic(keymint_lease::jobs::SECRET_ID_TIDY, TOKEN_EXPIRY_EVERY, tidy).await
        {
            warn!(error = %e, "could not remove expired secret ids; will retry");
        }
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(TOKEN_EXPIRY_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests;
