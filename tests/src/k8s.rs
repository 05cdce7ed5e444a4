//! A fake Kubernetes API server for the Kubernetes auth method's tests: the TokenReview API
//! (and namespaces) over HTTPS on 127.0.0.1 under a private CA. A token is authentic when its
//! signature verifies with the [`Issuer`]'s current keys, it has not expired, its service
//! account has not been revoked, and its audiences meet the requested ones. Every review
//! request is recorded, so tests can check what keymint sent (bearer, token, audiences).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{Value, json};

use crate::oidc::{Issuer, Shared as IssuerKeys, claims::unix_now};
use crate::serve::{Body, SelfSignedTls, Serving, body_bytes, json as json_answer, serve};

const TOKEN_REVIEW_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const NAMESPACE_PREFIX: &str = "/api/v1/namespaces/";

/// One request to the TokenReview endpoint, authorized or not.
#[derive(Clone, Debug)]
pub struct RecordedReview {
    /// The `Authorization: Bearer` token, if any.
    pub bearer: Option<String>,
    /// `spec.token`.
    pub token: Option<String>,
    /// `spec.audiences`; `None` when absent.
    pub audiences: Option<Vec<String>>,
    /// The whole body as sent (`Value::Null` if it was not JSON).
    pub body: Value,
}

struct State {
    issuer: Arc<IssuerKeys>,
    reviewer_token: Mutex<String>,
    self_review: AtomicBool,
    revoked: Mutex<HashSet<(String, String)>>,
    labels: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    requests: Mutex<Vec<RecordedReview>>,
    reviews: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running fake API server; it stops serving when dropped.
pub struct TokenReviewServer {
    state: Arc<State>,
    ca_pem: String,
    serving: Serving,
}

impl TokenReviewServer {
    /// A server judging tokens by `issuer`'s keys and accepting `reviewer_token` as the bearer
    /// of review requests (what keymint gets as `token_reviewer_jwt`).
    pub async fn start(issuer: &Issuer, reviewer_token: &str) -> TokenReviewServer {
        let tls = SelfSignedTls::new();
        let state = Arc::new(State {
            issuer: issuer.shared.clone(),
            reviewer_token: Mutex::new(reviewer_token.to_owned()),
            self_review: AtomicBool::new(false),
            revoked: Mutex::default(),
            labels: Mutex::default(),
            requests: Mutex::default(),
            reviews: AtomicUsize::new(0),
        });
        let handler_state = state.clone();
        let serving = serve(Some(tls.acceptor), move |req| handle(handler_state.clone(), req)).await;
        TokenReviewServer { state, ca_pem: tls.ca_pem, serving }
    }

    /// `https://127.0.0.1:PORT`, keymint's `kubernetes_host`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.serving.port)
    }

    /// The CA certificate to trust (`kubernetes_ca_cert`).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// From now on only `token` is accepted as the reviewer's bearer.
    pub fn set_reviewer_token(&self, token: &str) {
        *lock(&self.state.reviewer_token) = token.to_owned();
    }

    /// Also accept a review whose bearer is the reviewed token itself, when that token is
    /// authentic: the client's own service account may review (Vault's "use the login JWT as
    /// the reviewer" mode).
    pub fn allow_self_review(&self, allow: bool) {
        self.state.self_review.store(allow, Ordering::SeqCst);
    }

    /// Reviews of `namespace/service_account`'s tokens answer `authenticated: false` from now
    /// on, as after the account is deleted.
    pub fn revoke_service_account(&self, namespace: &str, service_account: &str) {
        lock(&self.state.revoked).insert((namespace.to_owned(), service_account.to_owned()));
    }

    /// Labels of namespace `name`, beside its automatic `kubernetes.io/metadata.name`.
    pub fn set_namespace_labels(&self, name: &str, labels: &[(&str, &str)]) {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        lock(&self.state.labels).insert(name.to_owned(), labels);
    }

    /// Every request to the TokenReview endpoint so far, in order.
    pub fn requests(&self) -> Vec<RecordedReview> {
        lock(&self.state.requests).clone()
    }

    /// Reviews answered (requests with an accepted bearer and a TokenReview body).
    pub fn reviews(&self) -> usize {
        self.state.reviews.load(Ordering::SeqCst)
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let method = req.method().clone();
    if path == TOKEN_REVIEW_PATH {
        if method != Method::POST {
            return status(405, "MethodNotAllowed", "the server does not allow this method");
        }
        return token_review(&state, bearer, &body_bytes(req).await);
    }
    if let Some(name) = path.strip_prefix(NAMESPACE_PREFIX).filter(|n| !n.is_empty() && !n.contains('/')) {
        if method != Method::GET {
            return status(405, "MethodNotAllowed", "the server does not allow this method");
        }
        if bearer.as_deref() != Some(lock(&state.reviewer_token).as_str()) {
            return unauthorized();
        }
        return namespace(&state, name);
    }
    status(404, "NotFound", "the server could not find the requested resource")
}

fn token_review(state: &State, bearer: Option<String>, body: &[u8]) -> Response<Body> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let spec = parsed.as_ref().map(|b| &b["spec"]);
    let token = spec.and_then(|s| s["token"].as_str()).map(str::to_owned);
    let audiences = spec.and_then(|s| s["audiences"].as_array()).map(|list| strings(list));
    lock(&state.requests).push(RecordedReview {
        bearer: bearer.clone(),
        token: token.clone(),
        audiences: audiences.clone(),
        body: parsed.clone().unwrap_or(Value::Null),
    });

    let reviewer = lock(&state.reviewer_token).clone();
    let self_review = state.self_review.load(Ordering::SeqCst)
        && bearer.is_some()
        && bearer == token
        && token.as_deref().is_some_and(|t| review(state, t, None).is_ok());
    if bearer.as_deref() != Some(reviewer.as_str()) && !self_review {
        return unauthorized();
    }
    let (Some(parsed), Some(token)) = (parsed, token) else {
        return status(400, "BadRequest", "the body is not a TokenReview with spec.token");
    };
    state.reviews.fetch_add(1, Ordering::SeqCst);
    let status_field = match review(state, &token, audiences.as_deref()) {
        Ok(status) => status,
        Err(error) => json!({"authenticated": false, "user": {}, "error": error}),
    };
    json_answer(
        201,
        &json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": parsed["spec"],
            "status": status_field,
        }),
    )
}

/// The `status` of an authentic token, or the error the API server reports.
fn review(state: &State, token: &str, requested: Option<&[String]>) -> Result<Value, String> {
    let invalid = |why: &str| format!("[invalid bearer token, {why}]");
    let claims = state.issuer.verify(token).map_err(|e| invalid(&e))?;
    if claims["exp"].as_i64().is_some_and(|exp| exp <= unix_now()) {
        return Err(invalid("service account token has expired"));
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    let Some((namespace, name)) =
        sub.strip_prefix("system:serviceaccount:").and_then(|rest| rest.split_once(':'))
    else {
        return Err(invalid("the token is not a service account token"));
    };
    if lock(&state.revoked).contains(&(namespace.to_owned(), name.to_owned())) {
        return Err(invalid(&format!("serviceaccounts \"{name}\" not found")));
    }
    let token_audiences = match &claims["aud"] {
        Value::String(aud) => vec![aud.clone()],
        Value::Array(list) => strings(list),
        _ => Vec::new(),
    };
    let audiences: Vec<String> = match requested.filter(|r| !r.is_empty()) {
        None => token_audiences.clone(),
        Some(requested) => {
            let common: Vec<String> =
                requested.iter().filter(|a| token_audiences.contains(a)).cloned().collect();
            if common.is_empty() {
                return Err(invalid(&format!(
                    "token audiences {} is invalid for the target audiences {}",
                    json!(token_audiences),
                    json!(requested)
                )));
            }
            common
        }
    };
    let k8s = &claims["kubernetes.io"];
    let mut extra = serde_json::Map::new();
    if let (Some(pod), Some(pod_uid)) = (k8s["pod"]["name"].as_str(), k8s["pod"]["uid"].as_str()) {
        extra.insert("authentication.kubernetes.io/pod-name".to_owned(), json!([pod]));
        extra.insert("authentication.kubernetes.io/pod-uid".to_owned(), json!([pod_uid]));
    }
    if let Some(jti) = claims["jti"].as_str() {
        extra.insert("authentication.kubernetes.io/credential-id".to_owned(), json!([format!("JTI={jti}")]));
    }
    Ok(json!({
        "authenticated": true,
        "user": {
            "username": sub,
            "uid": k8s["serviceaccount"]["uid"].as_str().unwrap_or_default(),
            "groups": [
                "system:serviceaccounts",
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated",
            ],
            "extra": extra,
        },
        "audiences": audiences,
    }))
}

fn namespace(state: &State, name: &str) -> Response<Body> {
    let mut labels = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), name.to_owned())]);
    labels.extend(lock(&state.labels).get(name).cloned().unwrap_or_default());
    json_answer(
        200,
        &json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": name, "labels": labels},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }),
    )
}

fn unauthorized() -> Response<Body> {
    status(401, "Unauthorized", "Unauthorized")
}

/// A Kubernetes `Status` failure.
fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_answer(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }),
    )
}

fn strings(list: &[Value]) -> Vec<String> {
    list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}
