//! `sys/leases/*` and the legacy `sys/renew`, `sys/revoke`, `sys/revoke-prefix`,
//! `sys/revoke-force`: lookup, renewal and revocation of leases, in Vault's shapes.

use keymint_lease::LeaseError;
use keymint_lease::ttl::{PastMaxTtl, renew_ttl};
use keymint_store::mounts;
use serde_json::{Value, json};

use crate::AppState;
use crate::dispatch::mount_ctx;
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::request::LogicalRequest;

fn rfc3339(ms: i64) -> String {
    keymint_store::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The lease id from the body, or from the path after `prefix` (`renew/<id>`).
fn lease_id(req: &LogicalRequest, rest_of_path: &str) -> ApiResult<String> {
    let from_body = req.fields().string("lease_id")?.unwrap_or_default();
    let id = if from_body.is_empty() { rest_of_path.trim_start_matches('/').to_string() } else { from_body };
    if id.is_empty() {
        return Err(ApiError::BadRequest("lease_id must be specified".into()));
    }
    Ok(id)
}

/// The lease id or prefix a path carries after its verb (`sys/leases/renew/<id>`,
/// `sys/revoke-prefix/<prefix>`): "" when it carries none.
pub(crate) fn tail(path: &str) -> &str {
    let rest = path.strip_prefix("sys/leases/").or_else(|| path.strip_prefix("sys/")).unwrap_or(path);
    rest.split_once('/').map_or("", |(_, tail)| tail)
}

/// `sys/leases/tidy`: keymint's tidy undoes abandoned user creations now instead of at the next
/// sweep; like Vault's, it runs in the background and reports to the server log. It takes the
/// intent sweep's job claim, so it never sweeps beside another replica's sweep.
pub(crate) fn tidy(state: &AppState) -> Reply {
    let leases = state.leases().clone();
    tokio::spawn(async move {
        match leases.sweep_intents_exclusive().await {
            Some(Ok(n)) => tracing::info!(cleared = n, "tidy: abandoned creations undone"),
            Some(Err(e)) => tracing::warn!(error = %e, "tidy: intent sweep failed"),
            None => tracing::info!("tidy: another replica is sweeping abandoned creations now"),
        }
    });
    Reply {
        status: Some(axum::http::StatusCode::ACCEPTED),
        warnings: vec![
            "Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."
                .into(),
        ],
        ..Default::default()
    }
}

pub(crate) async fn lookup(state: &AppState, req: &LogicalRequest) -> ApiResult<Reply> {
    let id = lease_id(req, "")?;
    let lease = state.leases().lookup(&id).await.map_err(lease_error)?;
    let lease = lease.ok_or_else(|| ApiError::BadRequest("invalid lease".into()))?;
    let now = state.now_ms();
    Ok(Reply::data(json!({
        "id": lease.id,
        "issue_time": rfc3339(lease.issue_time),
        "expire_time": rfc3339(lease.expire_time),
        "last_renewal": lease.last_renewal.map(rfc3339),
        "renewable": lease.renewable && lease.expire_time > now,
        "ttl": ((lease.expire_time - now) / 1000).max(0),
        // Beyond Vault: why a lease is still here past its expiry.
        "revocation_attempts": lease.attempts,
        "irrevocable": lease.irrevocable,
        "last_error": lease.last_error,
        "orphan": lease.orphan,
        // What revoking does depends on it: STS credentials cannot be revoked in AWS.
        "credential_type": lease.kind.as_str(),
    })))
}

pub(crate) async fn list(state: &AppState, prefix: &str) -> ApiResult<Reply> {
    let keys = state.leases().list_children(prefix).await.map_err(lease_error)?;
    if keys.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({ "keys": keys })))
}

pub(crate) async fn renew(state: &AppState, req: &LogicalRequest, tail: &str) -> ApiResult<Reply> {
    let id = lease_id(req, tail)?;
    let increment = req.fields().duration("increment")?.unwrap_or(0);
    let lease = state
        .leases()
        .lookup(&id)
        .await
        .map_err(lease_error)?
        .ok_or_else(|| ApiError::BadRequest("lease not found".into()))?;
    if !lease.renewable {
        return Err(ApiError::BadRequest("lease is not renewable".into()));
    }
    let now = state.now_ms();
    if lease.irrevocable || (lease.expire_time <= now && lease.attempts > 0) {
        return Err(ApiError::BadRequest(
            "lease is expired and has failed previous revocation attempts".into(),
        ));
    }
    if lease.state != keymint_lease::LeaseState::Active {
        return Err(ApiError::BadRequest("lease expired".into()));
    }
    // Past its expiry but kept because revocation is paused (a restored store, whose expiry
    // times are those of the backup): renewable, so what is still in use can be kept.
    if lease.expire_time <= now && keymint_store::revocation::paused(state.store().pool()).await?.is_none() {
        return Err(ApiError::BadRequest("lease expired".into()));
    }
    let mount = mounts::get_by_id(state.store().pool(), &lease.mount_id)
        .await?
        .ok_or_else(|| ApiError::BadRequest("lease not found".into()))?;
    let ctx = mount_ctx(&mount);
    // Vault re-reads config/lease at renewal time.
    let cfg = state.engine().lease_config(&ctx).await?;
    let (cfg_ttl, cfg_max) = cfg.map(|c| (c.lease, c.lease_max)).unwrap_or((0, 0));
    // TTLs the role had when the lease was issued win over config/lease.
    let backend_ttl = lease.record.role_ttl.filter(|v| *v > 0).unwrap_or(cfg_ttl);
    let backend_max = lease.record.role_max_ttl.filter(|v| *v > 0).unwrap_or(cfg_max);
    let decision = renew_ttl(now, lease.issue_time, increment, backend_ttl, backend_max, ctx.ttls)
        .map_err(|PastMaxTtl| ApiError::BadRequest("past the max TTL, cannot renew".into()))?;
    let expire = now + (decision.ttl as i64) * 1000;
    if !keymint_store::leases::set_expiry(state.store().pool(), &id, expire, now).await? {
        return Err(ApiError::BadRequest("lease expired".into()));
    }
    let mut warnings = Vec::new();
    if let Some(asked) = decision.capped_from {
        warnings.push(keymint_engine::mint::ttl_capped_warning(asked, decision.max));
    }
    Ok(Reply { lease_id: id, renewable: true, lease_duration: decision.ttl, warnings, ..Default::default() })
}

pub(crate) async fn revoke(state: &AppState, req: &LogicalRequest, tail: &str) -> ApiResult<Reply> {
    let id = lease_id(req, tail)?;
    let sync = req.fields().bool("sync")?.unwrap_or(true);
    if !sync {
        state.leases().revoke_later(&id).await.map_err(lease_error)?;
        return Ok(Reply { status: Some(axum::http::StatusCode::ACCEPTED), ..Default::default() });
    }
    match state.leases().revoke_now(&id).await {
        Ok(_) => Ok(Reply::no_content()),
        Err(LeaseError::Revoke(e)) => Err(ApiError::BadRequest(format!(
            "failed to revoke entry: resp: (*logical.Response)(nil) err: {e}"
        ))),
        Err(e) => Err(lease_error(e)),
    }
}

pub(crate) async fn revoke_prefix(
    state: &AppState,
    req: &LogicalRequest,
    prefix: &str,
    force: bool,
) -> ApiResult<Reply> {
    // The route needs a prefix in the path (`revoke-prefix/<prefix>`).
    let prefix = prefix.to_string();
    if prefix.is_empty() {
        return Err(ApiError::BadRequest("prefix must be specified".into()));
    }
    // `sync=false` (revoke-prefix only): answer 202 at once; the expiry loop revokes them.
    if !force && !req.fields().bool("sync")?.unwrap_or(true) {
        state.leases().revoke_prefix_later(&prefix).await.map_err(lease_error)?;
        return Ok(Reply { status: Some(axum::http::StatusCode::ACCEPTED), ..Default::default() });
    }
    let failures = state.leases().revoke_prefix(&prefix, force).await.map_err(lease_error)?;
    if failures.is_empty() {
        return Ok(Reply::no_content());
    }
    let listed: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.lease_id, f.error)).collect();
    if force {
        // The records are gone; say what may remain in AWS so a person can clean it up.
        let mut warnings = vec![format!(
            "{} lease(s) could not be revoked and were removed anyway; clean up in AWS by hand",
            failures.len()
        )];
        warnings.extend(listed);
        return Ok(Reply { warnings, data: Some(Value::Null), ..Default::default() });
    }
    Err(ApiError::BadRequest(format!(
        "failed to revoke {} lease(s) under {prefix:?} (the others were revoked): {}",
        failures.len(),
        listed.join("; ")
    )))
}

/// `GET sys/leases[?type=irrevocable]` and `GET sys/leases/count[?type=irrevocable]`: the leases
/// keymint could not revoke, with their last error, so a person can act on them.
pub(crate) async fn irrevocable(
    state: &AppState,
    req: &LogicalRequest,
    count_only: bool,
) -> ApiResult<Reply> {
    const LIMIT: i64 = 10_000;
    let kind = req.fields().string("type")?.unwrap_or_default();
    let only_irrevocable = match kind.as_str() {
        "irrevocable" => true,
        "" | "all" if count_only => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid type {other:?}: listing supports type=irrevocable, counting irrevocable or all"
            )));
        }
    };
    let total = keymint_store::leases::count(state.store().pool(), only_irrevocable).await?;
    if count_only {
        return Ok(Reply::data(json!({ "lease_count": total })));
    }
    let rows = keymint_store::leases::irrevocable(state.store().pool(), LIMIT).await?;
    let leases: Vec<Value> = rows
        .iter()
        .map(|l| {
            json!({
                "lease_id": l.id,
                "mount_id": l.mount_id,
                "expire_time": rfc3339(l.expire_time),
                "attempts": l.attempts,
                "error": l.last_error,
            })
        })
        .collect();
    let mut reply = Reply::data(json!({ "lease_count": total, "leases": leases }));
    if total > LIMIT {
        reply.warnings.push(format!("showing the first {LIMIT} of {total} irrevocable leases"));
    }
    Ok(reply)
}

pub(crate) fn lease_error(e: LeaseError) -> ApiError {
    match e {
        LeaseError::Busy => ApiError::BadRequest(e.to_string()),
        LeaseError::Revoke(m) => ApiError::BadRequest(m),
        LeaseError::Unreadable(e) => {
            // Our own data is broken: the detail goes to the log, the client learns it was ours.
            tracing::error!(error = %e, "lease record unreadable");
            ApiError::Internal { public: "internal error".into() }
        }
        LeaseError::Store(s) => ApiError::from(s),
    }
}

/// `GET sys/leases/revocation` (keymint's own): whether automatic revocation is paused.
pub(crate) async fn revocation_state(state: &AppState) -> ApiResult<Reply> {
    let pause = keymint_store::revocation::paused(state.store().pool()).await?;
    Ok(Reply::data(match pause {
        Some(p) => serde_json::json!({
            "paused": true,
            "paused_since": keymint_store::from_millis(p.since).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "reason": p.reason,
        }),
        None => serde_json::json!({"paused": false}),
    }))
}

/// `PUT sys/leases/revocation {"paused": bool, "reason": "..."}` (sudo): pauses or resumes
/// automatic revocation on every replica of the store.
pub(crate) async fn set_revocation(state: &AppState, req: &LogicalRequest) -> ApiResult<Reply> {
    let Some(paused) = req.fields().bool("paused")? else {
        return Err(ApiError::BadRequest(
            "missing paused: true to pause automatic revocation, false to resume".into(),
        ));
    };
    if paused {
        let reason =
            req.fields().string("reason")?.unwrap_or_else(|| "paused through sys/leases/revocation".into());
        keymint_store::revocation::pause(
            state.store().pool(),
            &keymint_store::revocation::Pause { since: state.now_ms(), reason },
        )
        .await?;
    } else {
        keymint_store::revocation::resume(state.store().pool()).await?;
    }
    revocation_state(state).await
}
