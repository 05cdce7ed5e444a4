//! From HTTP to a logical request: Vault's method mapping, parameter parsing, authentication
//! and routing to `sys/`, `auth/token/` or a mount.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::{ApiError, ApiResult};
use crate::fields::{RequestData, parse_go_bool};
use keymint_auth::policy::Caps;
use keymint_store::cache;

use crate::{AppState, audit, aws, sys};

/// Vault's logical operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    List,
    Update,
    Delete,
    Head,
    /// `?help=…` on any method (or Vault's `HELP` verb): describe the path, touch nothing.
    Help,
}

/// One request, as handlers see it.
#[derive(Debug)]
pub struct LogicalRequest {
    pub op: Operation,
    /// Path after `/v1/`, with a trailing `/` for lists.
    pub path: String,
    pub data: RequestData,
    pub token: Option<String>,
}

pub async fn not_found() -> Response {
    ApiError::NotFound.into_response()
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_string());
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok())?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_string())
}

fn parse(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> ApiResult<LogicalRequest> {
    // Vault's Go server routes on the decoded path: hvac escapes `@` in role names as `%40`.
    let raw_path = uri.path().strip_prefix("/v1/").unwrap_or("");
    let path = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest("the request path is not valid UTF-8 once decoded".into()))?
        .into_owned();
    let query = uri.query().unwrap_or("");
    let (op, mut data) = match method.as_str() {
        "GET" => (Operation::Read, RequestData::from_query(query)),
        "HEAD" => (Operation::Head, RequestData::from_query(query)),
        "DELETE" => (Operation::Delete, RequestData::from_query(query)),
        "LIST" => (Operation::List, RequestData::from_query(query)),
        "POST" | "PUT" => {
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
            (Operation::Update, RequestData::from_body(content_type, body)?)
        }
        "HELP" => (Operation::Help, RequestData::from_query(query)),
        _ => return Err(ApiError::UnsupportedOperation),
    };
    let mut op = op;
    // As Vault: a non-empty `help` in the query string asks for the path's help, whatever the
    // method.
    if form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "help" && !v.is_empty()) {
        op = Operation::Help;
        data.remove("help");
    }
    if op == Operation::Read
        && let Some(list) = data.remove("list")
    {
        let text = match &list {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match parse_go_bool(&text) {
            Some(true) => op = Operation::List,
            Some(false) => {}
            None => {
                return Err(ApiError::BadRequest(format!(
                    "error parsing list parameter: strconv.ParseBool: parsing {text:?}: invalid syntax"
                )));
            }
        }
    }
    let mut path = path;
    if op == Operation::List && !path.ends_with('/') {
        path.push('/');
    }
    Ok(LogicalRequest { op, path, data, token: token_of(headers) })
}

/// The single entry point of `/v1/*`: every request gets an id (in its log span, its audit
/// records, the envelope's `request_id` and the `X-Request-Id` header) and is counted by route
/// and status in the metrics.
pub async fn dispatch(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("request", id = %request_id, method = %method, path = %uri.path());
    let mut mounts = None;
    let mut response = answer(&state, &method, &uri, &headers, &extensions, body, &request_id, &mut mounts)
        .instrument(span.clone())
        .await;
    let path = uri.path().strip_prefix("/v1/").unwrap_or("");
    let route = crate::metrics::route_label(path, mounts.as_deref().map_or(&[], |m| m.as_slice()));
    let status = response.status();
    crate::metrics::record_request(&route, method.as_str(), status, started.elapsed().as_secs_f64());
    if let Ok(value) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    span.in_scope(|| {
        tracing::debug!(status = status.as_u16(), route = %route, elapsed_ms = started.elapsed().as_millis() as u64, "answered")
    });
    response
}

/// Answers one request. `mounts` receives the mount table the request was routed with, when
/// it got that far (for the route label).
#[allow(clippy::too_many_arguments)]
async fn answer(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    request_id: &str,
    mounts: &mut Option<std::sync::Arc<Vec<keymint_store::mounts::MountRow>>>,
) -> Response {
    let state = state.clone();
    // A body over the limit is refused in Vault's error shape, not axum's plain text.
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return ApiError::Rejected(rejection.status(), rejection.body_text()).into_response();
        }
    };
    let req = match parse(method, uri, headers, &body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // `sys/health`, `sys/seal-status`, `sys/leader` and `sys/init` need no token, as in Vault:
    // load balancers, `vault status`, `keymint status` and hvac's `is_initialized` call them
    // before anyone logs in. Unaudited.
    if req.path == "sys/health" {
        return sys::health(&state, &req).await;
    }
    if req.path == "sys/seal-status" && req.op == Operation::Read {
        return sys::seal_status(&state).render("system", request_id);
    }
    if req.path == "sys/leader" && req.op == Operation::Read {
        return sys::leader().render("system", request_id);
    }
    if req.path == "sys/init" {
        return sys::init_status(&req);
    }
    let peer = extensions.get::<axum::extract::ConnectInfo<crate::tls::Peer>>().map(|c| c.0.0.ip());
    let authenticated = authenticate(&state, &req, peer).await;
    // Scraped every few seconds: answered here, unaudited (as `sys/health` is), but only to a
    // token whose policies allow reading `sys/metrics`.
    if req.path == "sys/metrics" && req.op == Operation::Read {
        let identity = match &authenticated {
            Ok(identity) => identity,
            Err(ApiError::PermissionDenied) => return ApiError::PermissionDenied.into_response(),
            Err(other) => return ApiError::Internal { public: other.to_string() }.into_response(),
        };
        let format = req.data.raw("format").and_then(|v| v.as_str()).map(str::to_owned);
        return cache::scope(Some(identity.config_generation), async {
            if let Err(e) = check_acl(&state, identity, &req).await {
                return e.into_response();
            }
            let response = crate::metrics::render(&state, format.as_deref()).await;
            *mounts = state.mounts().await.ok();
            response
        })
        .await;
    }
    if req.op == Operation::Help {
        return match &authenticated {
            Ok(identity) => cache::scope(Some(identity.config_generation), help(&state, identity, &req))
                .await
                .unwrap_or_else(IntoResponse::into_response),
            Err(_) => ApiError::PermissionDenied.into_response(),
        };
    }
    let identity = authenticated.as_ref().ok();
    let devices = state.audit().snapshot();
    let audited = !devices.is_empty();
    let token = req.token.clone();
    let remote = peer.map(|ip| ip.to_string()).unwrap_or_default();
    let caller = audit::Caller { token: token.as_deref(), identity, remote };
    let mut request_part = serde_json::Value::Null;
    if audited {
        let error = authenticated.as_ref().err().map(ToString::to_string);
        let record = audit::request_record(state.audit(), &req, request_id, &caller, error.as_deref());
        request_part = record["request"].clone();
        if let Err(e) = state.audit().log(&devices, &record) {
            return e.into_response();
        }
    }

    let outcome = match &authenticated {
        // Configuration is read as of the generation read with the token (see
        // `keymint_store::cache`): from memory unless it changed since it was cached.
        Ok(identity) => {
            let (outcome, table) = cache::scope(Some(identity.config_generation), async {
                let outcome = authorized(&state, identity, req).await;
                (outcome, state.mounts().await.ok())
            })
            .await;
            *mounts = table;
            outcome
        }
        Err(e) => Err(match e {
            ApiError::PermissionDenied => ApiError::PermissionDenied,
            other => ApiError::Internal { public: other.to_string() },
        }),
    };
    if audited {
        let record = audit::response_record(state.audit(), request_part, &caller, &outcome);
        if let Err(e) = state.audit().log(&devices, &record) {
            return e.into_response();
        }
    }
    if let Ok(identity) = &authenticated
        && identity.last_use
    {
        // The request that spent a token's last use is answered; then the token goes, as in
        // Vault, with whatever it created.
        let state = state.clone();
        let accessor = identity.accessor.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::tokens::revoke_token(&state, &accessor, false).await {
                tracing::warn!(token.accessor = %accessor, error = %e, "could not revoke a used-up token; the sweeper will");
            }
        });
    }
    match outcome {
        Ok((reply, mount_type)) => reply.render(&mount_type, request_id),
        Err(e) => e.into_response(),
    }
}

/// Path help, for a caller holding any capability on the path.
async fn help(
    state: &AppState,
    identity: &keymint_auth::Identity,
    req: &LogicalRequest,
) -> ApiResult<Response> {
    if !identity.is_root() {
        let acl = state.acl(&identity.policies).await?;
        if acl.capabilities(&req.path) == ["deny"] {
            return Err(ApiError::PermissionDenied);
        }
    }
    let rest = match sys::resolve_mount(state, &req.path).await? {
        Some((mount, rest)) if mount.mount_type == "aws" => Some(rest),
        _ => None,
    };
    Ok(crate::help::answer(&req.path, rest.as_deref()))
}

/// Checks the caller's policies for the request, then routes it: the reply and the type of
/// the mount that answered.
async fn authorized(
    state: &AppState,
    identity: &keymint_auth::Identity,
    req: LogicalRequest,
) -> ApiResult<(crate::envelope::Reply, String)> {
    check_acl(state, identity, &req).await?;
    if let Some(result) = crate::policies::handle(state, identity, &req).await {
        return result.map(|reply| (reply, "system".to_string()));
    }
    if let Some(result) = audit::handle(state, &req).await {
        return result.map(|reply| (reply, "system".to_string()));
    }
    if req.path.starts_with("sys/") {
        Ok((sys::handle(state, req).await?, "system".to_string()))
    } else if req.path.starts_with("auth/token/") {
        Ok((crate::tokens::handle(state, identity, req).await?, "token".to_string()))
    } else {
        match sys::resolve_mount(state, &req.path).await? {
            Some((mount, rest)) => {
                let kind = mount.mount_type.clone();
                Ok((aws::handle(state, identity, &mount, &rest, req).await?, kind))
            }
            None => Err(ApiError::NoHandler(req.path.clone())),
        }
    }
}

/// Paths that need `sudo` on top of the operation's capability, as Vault's root paths do.
pub(crate) fn needs_sudo(op: Operation, path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sys/leases/revoke-prefix/",
        "sys/leases/revoke-force/",
        "sys/revoke-prefix/",
        "sys/revoke-force/",
        "sys/audit/",
        "sys/rotate",
        "auth/token/revoke-orphan",
        "auth/token/accessors",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p))
        || (op == Operation::List && path.starts_with("sys/leases/lookup/"))
        // `sys/audit` itself, not `sys/audit-hash`, which Vault does not guard with sudo.
        || path == "sys/audit"
        || path == "sys/leases"
        || path.starts_with("sys/leases/count")
        || (op == Operation::Update && path == "sys/leases/revocation")
}

/// The capability a request needs: Vault's mapping of operations, with `create` instead of
/// `update` where Vault's existence check says the object is new.
async fn needed(state: &AppState, req: &LogicalRequest) -> ApiResult<Caps> {
    Ok(match req.op {
        Operation::Read | Operation::Head | Operation::Help => Caps::READ,
        Operation::List => Caps::LIST,
        Operation::Delete => Caps::DELETE,
        Operation::Update => {
            // Vault's existence checks: of the paths keymint serves, only an AWS mount's
            // `config/root` has one, so its first write is a create. Roles, static roles and
            // policies are always updates, as in Vault.
            // Token roles have one too (Vault's tokenStoreRoleExistenceCheck).
            if let Some(role) = req.path.strip_prefix("auth/token/roles/").filter(|r| !r.contains('/')) {
                let exists = keymint_store::token_roles::get(state.store().pool(), role).await?.is_some();
                return Ok(if exists { Caps::UPDATE } else { Caps::CREATE });
            }
            let Some((mount, rest)) = sys::resolve_mount(state, &req.path).await? else {
                return Ok(Caps::UPDATE);
            };
            if mount.mount_type == "aws" && rest == "config/root" {
                let stored = keymint_store::aws::get_config(
                    state.store().pool(),
                    &mount.id,
                    keymint_engine::ROOT_CONFIG_ENTRY,
                )
                .await?;
                if stored.is_none() {
                    return Ok(Caps::CREATE);
                }
            }
            Caps::UPDATE
        }
    })
}

async fn check_acl(
    state: &AppState,
    identity: &keymint_auth::Identity,
    req: &LogicalRequest,
) -> ApiResult<()> {
    if identity.is_root() {
        return Ok(());
    }
    let acl = state.acl(&identity.policies).await?;
    let need = needed(state, req).await?;
    let params: Vec<(&str, &serde_json::Value)> =
        req.data.as_map().iter().map(|(k, v)| (k.as_str(), v)).collect();
    acl.check(&req.path, need, needs_sudo(req.op, &req.path), &params).map_err(|denied| {
        tracing::info!(path = %req.path, token.accessor = %identity.accessor, ?denied, "request denied by policy");
        ApiError::PermissionDenied
    })
}

/// The caller's token, refused outside the CIDRs it is bound to (`peer`: the caller's address).
async fn authenticate(
    state: &AppState,
    req: &LogicalRequest,
    peer: Option<std::net::IpAddr>,
) -> ApiResult<keymint_auth::Identity> {
    let token = req.token.as_deref().ok_or(ApiError::PermissionDenied)?;
    let now = state.now_ms();
    Ok(keymint_auth::authenticate(state.store(), token, peer, now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str, body: &str) -> ApiResult<LogicalRequest> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let uri: Uri = uri.parse().unwrap();
        parse(&method, &uri, &HeaderMap::new(), &Bytes::from(body.to_string()))
    }

    #[test]
    fn methods_map_to_vault_operations() {
        assert_eq!(req("GET", "/v1/aws/roles/x", "").unwrap().op, Operation::Read);
        let list = req("GET", "/v1/aws/roles?list=True", "").unwrap();
        assert_eq!((list.op, list.path.as_str()), (Operation::List, "aws/roles/"));
        assert!(!list.data.contains("list"));
        assert_eq!(req("GET", "/v1/aws/roles?list=false", "").unwrap().op, Operation::Read);
        assert!(matches!(req("GET", "/v1/aws/roles?list=maybe", ""), Err(ApiError::BadRequest(_))));
        assert_eq!(req("LIST", "/v1/aws/roles", "").unwrap().path, "aws/roles/");
        assert_eq!(req("PUT", "/v1/aws/roles/x", "{}").unwrap().op, Operation::Update);
        assert!(matches!(req("PATCH", "/v1/aws/roles/x", "{}"), Err(ApiError::UnsupportedOperation)));
        assert!(matches!(req("POST", "/v1/aws/roles/x", "{nope"), Err(ApiError::BadRequest(_))));
        assert_eq!(req("GET", "/v1/aws/roles/team%40prod", "").unwrap().path, "aws/roles/team@prod");
        assert!(matches!(req("GET", "/v1/aws/roles/%FF", ""), Err(ApiError::BadRequest(_))));
        // Any non-empty `help` in the query asks for help, whatever the method (as Vault).
        let help = req("POST", "/v1/aws/roles/x?help=1", "{}").unwrap();
        assert!(help.op == Operation::Help && !help.data.contains("help"));
        assert_eq!(req("GET", "/v1/aws/creds/x?help=0", "").unwrap().op, Operation::Help);
        assert_eq!(req("HELP", "/v1/aws/creds/x", "").unwrap().op, Operation::Help);
        assert_eq!(req("GET", "/v1/aws/creds/x?help=", "").unwrap().op, Operation::Read);
    }

    #[test]
    fn tokens_come_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(token_of(&h).as_deref(), Some("abc"));
        h.insert("x-vault-token", "def".parse().unwrap());
        assert_eq!(token_of(&h).as_deref(), Some("def"));
        assert_eq!(token_of(&HeaderMap::new()), None);
    }
}
