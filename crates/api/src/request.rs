//! From HTTP to a logical request: Vault's method mapping, parameter parsing, authentication
//! and routing to `sys/`, `auth/token/` or a mount.

use axum::body::Bytes;
use axum::extract::{FromRequest, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use keymint_auth::policy::Caps;
use keymint_store::cache;

use crate::dispatch::{self, Answer, Call, Target};
use crate::envelope::Reply;
use crate::error::{ApiError, ApiResult};
use crate::fields::{RequestData, parse_go_bool};
use crate::{AppState, audit, routes, sys};

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
    /// The caller's address, when the listener knows it (CIDR checks of logins).
    pub remote: Option<std::net::IpAddr>,
    /// The route serving the request, once resolved: its schema types the fields.
    pub route: Option<&'static crate::routes::Route>,
    /// The wrap TTL asked for with `X-Vault-Wrap-TTL`, seconds (see [`crate::wrapping`]).
    pub wrap_ttl: Option<u64>,
}

impl LogicalRequest {
    /// The request's fields, read through its route's schema.
    pub(crate) fn fields(&self) -> crate::dispatch::Fields<'_> {
        crate::dispatch::Fields::new(self.route, &self.data)
    }
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
    let wrap_ttl = crate::wrapping::requested_ttl(headers)?;
    Ok(LogicalRequest { op, path, data, token: token_of(headers), remote: None, route: None, wrap_ttl })
}

/// The single entry point of `/v1/*`: every request gets an id (in its log span, its audit
/// records, the envelope's `request_id` and the `X-Request-Id` header), is held to the
/// server's time limit (body upload included) and is counted by route and status in the
/// metrics.
pub async fn dispatch(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let started = std::time::Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let (method, uri) = (&parts.method, &parts.uri);
    let span = tracing::info_span!("request", id = %request_id, method = %method, path = %uri.path());
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<crate::tls::Peer>>().map(|c| c.0.0.ip());
    // The body is read under the time limit too; its size limit (`DefaultBodyLimit`) travels
    // in the extensions.
    let mut body_request = axum::extract::Request::new(body);
    *body_request.extensions_mut() = parts.extensions;
    let mut mounts = None;
    let limit = state.request_timeout();
    let work = async {
        let body = Bytes::from_request(body_request, &state).await;
        answer(&state, method, uri, &parts.headers, peer, body, &request_id, &mut mounts).await
    };
    // The engine reads the limit too: a wait it makes on purpose (until a new IAM key works)
    // ends before it, so the request answers with what it made instead of being cut.
    let work = keymint_common::deadline::scope(tokio::time::Instant::now() + limit, work);
    let response = match tokio::time::timeout(limit, work.instrument(span.clone())).await {
        Ok(response) => response,
        Err(_) => {
            // Whatever the request was doing stopped at its next await point; what that leaves
            // (an intent for the sweeper, a lease that expires) is in docs/load-balancers.md.
            span.in_scope(|| {
                tracing::warn!(limit_secs = limit.as_secs_f64(), "request cut at its time limit")
            });
            ApiError::Timeout.into_response()
        }
    };
    let mut response = crate::error::with_request_id(response, &request_id).await;
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
    peer: Option<std::net::IpAddr>,
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
    let root = routes::find_root(&req.path);
    // Unauthenticated routes (`sys/health`, `sys/seal-status`, `sys/leader`, `sys/init`, and
    // keymint's probes `sys/live` and `sys/ready`) need no token, as in Vault: load balancers,
    // `vault status`, `keymint status` and hvac's `is_initialized` call them before anyone logs
    // in. Unaudited.
    if let Some(compiled) = root
        && compiled.route.unauthenticated
        && compiled.route.op(served_as(req.op)).is_some()
    {
        let call = Call { state, identity: None, target: Target::root(&req.path, root), req };
        return render(dispatch::run(call).await, request_id);
    }
    let mut req = req;
    req.remote = peer;
    // Logins (`auth/<mount>/login`) need no token, as in Vault, but are audited like any
    // request: a failed login leaves a record.
    let login = match unauthenticated_mount_route(&state, &req, root).await {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    let authenticated = match &login {
        Some(_) => Ok(None),
        None => authenticate(&state, &req, peer).await.map(Some),
    };
    if req.op == Operation::Help {
        return match &authenticated {
            Ok(Some(identity)) => {
                cache::scope(Some(identity.config_generation), help(&state, identity, &req))
                    .await
                    .unwrap_or_else(IntoResponse::into_response)
            }
            _ => ApiError::PermissionDenied.into_response(),
        };
    }
    // Scraped every few seconds (`sys/metrics`): unaudited, as `sys/health` is.
    let unaudited = root.is_some_and(|c| c.route.unaudited);
    let devices = state.audit().snapshot();
    let audited = !unaudited && !devices.is_empty();
    let token = req.token.clone();
    // The path a wrapped response was created at, kept for after the request is run.
    let wrapping = req.wrap_ttl.map(|ttl| (ttl, req.path.clone()));
    let remote = peer.map(|ip| ip.to_string()).unwrap_or_default();
    let identity = authenticated.as_ref().ok().and_then(Option::as_ref);
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
        Ok(None) => match login {
            Some(target) => {
                *mounts = state.mounts().await.ok();
                dispatch::run(Call { state: state.clone(), identity: None, req, target }).await
            }
            None => Err(ApiError::PermissionDenied),
        },
        // Configuration is read as of the generation read with the token (see
        // `keymint_store::cache`): from memory unless it changed since it was cached.
        Ok(Some(identity)) => {
            let (outcome, table) = cache::scope(Some(identity.config_generation), async {
                let outcome = authorized(&state, identity, req, root).await;
                (outcome, state.mounts().await.ok())
            })
            .await;
            *mounts = table;
            outcome
        }
        Err(_) if crate::wrapping::unwrap_by_own_token(&req) => Err(crate::wrapping::invalid_token()),
        Err(e) => Err(match e {
            ApiError::PermissionDenied => ApiError::PermissionDenied,
            // Already logged where it was made; its text is safe to show.
            ApiError::Internal { public } => ApiError::Internal { public: public.clone() },
            // The token could not be read because the database does not answer.
            ApiError::Unavailable(m) => ApiError::Unavailable(m.clone()),
            other => ApiError::hidden(other),
        }),
    };
    // Wrapped before the response is audited: the audit shows the wrap_info, not the response.
    let outcome = match (outcome, wrapping) {
        (Ok(Answer::Reply(reply, mount_type)), Some((ttl, path))) => {
            crate::wrapping::wrap(&state, *reply, &mount_type, &path, ttl, request_id)
                .await
                .map(|wrapped| Answer::Reply(Box::new(wrapped), mount_type))
        }
        (outcome, _) => outcome,
    };
    if audited {
        let empty = Reply::default();
        let seen = match &outcome {
            Ok(Answer::Reply(reply, mount_type)) => Ok((&**reply, mount_type.as_str())),
            Ok(Answer::Raw(_)) => Ok((&empty, "system")),
            Err(e) => Err(e),
        };
        let record = audit::response_record(state.audit(), request_part, &caller, seen);
        if let Err(e) = state.audit().log(&devices, &record) {
            return e.into_response();
        }
    }
    if let Ok(Some(identity)) = &authenticated
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
    render(outcome, request_id)
}

/// The target of a request to an unauthenticated route of a mount (an auth method's login),
/// resolved before any token is looked at; `None` for every other request.
async fn unauthenticated_mount_route(
    state: &AppState,
    req: &LogicalRequest,
    root: Option<&'static routes::Compiled>,
) -> ApiResult<Option<Target>> {
    if root.is_some() || !req.path.starts_with("auth/") || req.op == Operation::Help {
        return Ok(None);
    }
    let target = dispatch::resolve(state, &req.path, None).await?;
    let open = target.route.is_some_and(|c| c.route.unauthenticated && c.route.op(req.op).is_some());
    Ok(open.then_some(target))
}

/// The operation whose handler serves `op`: HEAD is served as a read (unauthenticated routes
/// only: elsewhere no route lists it).
pub(crate) fn served_as(op: Operation) -> Operation {
    if op == Operation::Head { Operation::Read } else { op }
}

fn render(outcome: ApiResult<Answer>, request_id: &str) -> Response {
    match outcome {
        Ok(Answer::Reply(reply, mount_type)) => reply.render(&mount_type, request_id),
        Ok(Answer::Raw(response)) => response,
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
    if routes::is_root_path(&req.path) {
        return Ok(crate::help::answer(&req.path, None));
    }
    let mount = sys::resolve_mount(state, &req.path).await?;
    Ok(crate::help::answer(&req.path, mount.as_ref().map(|(m, rest)| (m.mount_type.as_str(), rest.as_str()))))
}

/// Resolves the request's route (`root`: the route of a path outside mounts, looked up
/// already), checks the caller's policies for it, then runs it.
async fn authorized(
    state: &AppState,
    identity: &keymint_auth::Identity,
    req: LogicalRequest,
    root: Option<&'static routes::Compiled>,
) -> ApiResult<Answer> {
    let target = dispatch::resolve(state, &req.path, root).await?;
    check_acl(state, identity, &req, &target).await?;
    dispatch::run(Call { state: state.clone(), identity: Some(identity.clone()), req, target }).await
}

/// The capability a request needs: Vault's mapping of operations, with `create` instead of
/// `update` where the route's existence check says the object is new.
async fn needed(state: &AppState, req: &LogicalRequest, target: &Target) -> ApiResult<Caps> {
    Ok(match req.op {
        Operation::Read | Operation::Head | Operation::Help => Caps::READ,
        Operation::List => Caps::LIST,
        Operation::Delete => Caps::DELETE,
        Operation::Update => match target.route.and_then(|c| c.route.existence) {
            Some(exists) if !exists(state.clone(), target.clone()).await? => Caps::CREATE,
            _ => Caps::UPDATE,
        },
    })
}

async fn check_acl(
    state: &AppState,
    identity: &keymint_auth::Identity,
    req: &LogicalRequest,
    target: &Target,
) -> ApiResult<()> {
    if identity.is_root() {
        return Ok(());
    }
    let acl = state.acl(&identity.policies).await?;
    let need = needed(state, req, target).await?;
    let sudo = target.route.is_some_and(|c| c.route.needs_sudo(req.op));
    let params: Vec<(&str, &serde_json::Value)> =
        req.data.as_map().iter().map(|(k, v)| (k.as_str(), v)).collect();
    acl.check(&req.path, need, sudo, &params).map_err(|denied| {
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
