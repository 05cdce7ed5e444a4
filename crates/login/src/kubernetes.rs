//! The Kubernetes method's checks: which service account a token names (projected and legacy
//! tokens), the role's name and namespace globs, and the API server's word on a token
//! (TokenReview) or on a namespace's labels.

use serde_json::{Map, Value, json};

/// Where a pod finds its own service-account token and the cluster's CA.
const LOCAL_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const LOCAL_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// The API server keymint asks.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    /// Its base URL, without a trailing `/`.
    pub host: &'a str,
    /// Its CA certificate (PEM); empty for the pod's own when `use_local`.
    pub ca_cert: &'a str,
    /// Use the pod's own token and CA when keymint runs in a pod and none is configured.
    pub use_local: bool,
}

/// `*` anywhere matches any run of characters.
pub fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            let Some(rest) = value.strip_prefix(head) else { return false };
            (0..=rest.len()).filter(|i| rest.is_char_boundary(*i)).any(|i| glob(tail, &rest[i..]))
        }
    }
}

pub fn matches_any(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| p == "*" || glob(p, value))
}

/// The service account a token names, from either token format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub secret_name: String,
}

pub fn service_account(claims: &Map<String, Value>) -> Option<ServiceAccount> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    if let Some(k8s) = claims.get("kubernetes.io").and_then(Value::as_object) {
        let sa = k8s.get("serviceaccount")?;
        return Some(ServiceAccount {
            namespace: text(k8s.get("namespace"))?,
            name: text(sa.get("name"))?,
            uid: text(sa.get("uid")).unwrap_or_default(),
            secret_name: text(k8s.get("secret").and_then(|s| s.get("name"))).unwrap_or_default(),
        });
    }
    Some(ServiceAccount {
        namespace: text(claims.get("kubernetes.io/serviceaccount/namespace"))?,
        name: text(claims.get("kubernetes.io/serviceaccount/service-account.name"))?,
        uid: text(claims.get("kubernetes.io/serviceaccount/service-account.uid")).unwrap_or_default(),
        secret_name: text(claims.get("kubernetes.io/serviceaccount/secret.name")).unwrap_or_default(),
    })
}

/// The `matchLabels` of a namespace selector (JSON; keymint reads no YAML).
pub fn selector_labels(selector: &str) -> Option<Map<String, Value>> {
    let value: Value = serde_json::from_str(selector).ok()?;
    let labels = value.get("matchLabels")?.as_object()?.clone();
    labels.values().all(Value::is_string).then_some(labels)
}

/// The bearer a TokenReview is sent with: the configured reviewer token, the pod's own token
/// when keymint runs in a pod, else the login's own token (as Vault does).
pub fn bearer<'a>(
    cluster: &Cluster<'_>,
    reviewer: Option<&'a str>,
    token: &'a str,
) -> std::borrow::Cow<'a, str> {
    if let Some(r) = reviewer {
        return r.into();
    }
    if cluster.use_local
        && let Ok(local) = std::fs::read_to_string(LOCAL_TOKEN)
    {
        return local.trim().to_string().into();
    }
    token.into()
}

pub fn api_client(cluster: &Cluster<'_>) -> Result<reqwest::Client, String> {
    let mut ca = cluster.ca_cert.to_string();
    if ca.trim().is_empty() && cluster.use_local {
        ca = std::fs::read_to_string(LOCAL_CA).unwrap_or_default();
    }
    crate::jwt::http_client(Some(&ca)).map_err(|e| format!("kubernetes client: {e}"))
}

/// Who the API server says a token is.
pub struct Reviewed {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Asks the API server whether `token` is a live service-account token for `audiences`.
pub async fn review(
    cluster: &Cluster<'_>,
    reviewer: Option<&str>,
    token: &str,
    audiences: &[String],
) -> Result<Reviewed, String> {
    let client = api_client(cluster)?;
    let mut spec = json!({ "token": token });
    if !audiences.is_empty() {
        spec["audiences"] = json!(audiences);
    }
    let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec});
    let url = format!("{}/apis/authentication.k8s.io/v1/tokenreviews", cluster.host);
    let response = client
        .post(&url)
        .bearer_auth(bearer(cluster, reviewer, token))
        .header("accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("lookup failed: {e}"))?;
    let status = response.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        tracing::warn!(
            kubernetes.host = %cluster.host,
            "the API server refused the TokenReview's bearer (401): the reviewer token is invalid or expired"
        );
        return Err("lookup failed: service account unauthorized; this could mean it has been deleted or recreated with a new token".into());
    }
    let answer: Value = response.json().await.map_err(|e| format!("lookup failed: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "lookup failed: {status}: {}",
            answer.get("message").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let review = answer.get("status").cloned().unwrap_or(Value::Null);
    if let Some(error) = review.get("error").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        return Err(format!("lookup failed: {error}"));
    }
    if review.get("authenticated").and_then(Value::as_bool) != Some(true) {
        return Err("lookup failed: service account jwt not valid".into());
    }
    if !audiences.is_empty() {
        let valid: Vec<&str> = review
            .get("audiences")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).collect());
        if !valid.iter().any(|a| audiences.iter().any(|w| w == a)) {
            return Err(format!(
                "lookup failed: service account jwt valid for audience(s) {valid:?}, but wanted {audiences:?}"
            ));
        }
    }
    let user = review.get("user").cloned().unwrap_or(Value::Null);
    let username = user.get("username").and_then(Value::as_str).unwrap_or_default();
    let parts: Vec<&str> = username.split(':').collect();
    if parts.len() != 4 {
        return Err("lookup failed: unexpected username format".into());
    }
    if parts[0] != "system" || parts[1] != "serviceaccount" {
        return Err("lookup failed: username returned is not a service account".into());
    }
    Ok(Reviewed {
        namespace: parts[2].to_string(),
        name: parts[3].to_string(),
        uid: user.get("uid").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}

/// Whether the namespace's labels match the role's selector (read from the API server with the
/// reviewer token).
pub async fn namespace_selected(
    cluster: &Cluster<'_>,
    reviewer: Option<&str>,
    namespace: &str,
    labels: &Map<String, Value>,
) -> bool {
    let Some(reviewer) = reviewer else { return false };
    let Ok(client) = api_client(cluster) else { return false };
    let url = format!("{}/api/v1/namespaces/{namespace}", cluster.host);
    let Ok(response) = client.get(&url).bearer_auth(reviewer).send().await else { return false };
    let Ok(ns) = response.json::<Value>().await else { return false };
    let have = ns.pointer("/metadata/labels").and_then(Value::as_object);
    labels.iter().all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_any_run() {
        assert!(glob("app-*", "app-web"));
        assert!(glob("*-prod", "team-a-prod"));
        assert!(glob("a*c*e", "abcde"));
        assert!(!glob("app-*", "web-app"));
        assert!(matches_any(&["*".into()], "anything"));
    }

    #[test]
    fn both_token_formats_name_their_service_account() {
        let projected =
            json!({"kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "runner", "uid": "u-1"}}});
        let legacy = json!({
            "kubernetes.io/serviceaccount/namespace": "ci",
            "kubernetes.io/serviceaccount/service-account.name": "runner",
            "kubernetes.io/serviceaccount/service-account.uid": "u-1",
            "kubernetes.io/serviceaccount/secret.name": "runner-token-x",
        });
        let a = service_account(projected.as_object().unwrap()).unwrap();
        let b = service_account(legacy.as_object().unwrap()).unwrap();
        assert_eq!((a.namespace.as_str(), a.name.as_str(), a.uid.as_str()), ("ci", "runner", "u-1"));
        assert_eq!(
            (b.namespace.as_str(), b.name.as_str(), b.secret_name.as_str()),
            ("ci", "runner", "runner-token-x")
        );
        assert!(service_account(json!({"sub": "x"}).as_object().unwrap()).is_none());
    }

    #[test]
    fn selectors_take_match_labels() {
        assert!(selector_labels(r#"{"matchLabels": {"team": "a"}}"#).is_some());
        assert!(selector_labels("matchLabels:\n  team: a").is_none());
        assert!(selector_labels(r#"{"matchLabels": {"n": 1}}"#).is_none());
    }
}
