//! The `vault` CLI's Go `api` client, replayed: [`Cli`] sends what it sends, and the
//! `assert_*` helpers check answers for what it relies on. Shared with `quirks`.
//!
//! What the Go client sends (hashicorp/vault `api/client.go`, `api/request.go`):
//! - `X-Vault-Request: true` on every request, `X-Vault-Token` when it has a token;
//! - no `Content-Type`: bodies are `json.Marshal` output (compact, no trailing newline, map keys
//!   sorted, struct fields in declaration order); `vault write -f` with no data marshals a nil
//!   map, so the body is `null`;
//! - `LIST` as `GET ?list=true`; `vault read` parameters as a query string sorted by key.
//!
//! What it relies on in answers (`api.ParseSecret`, `Logical().Read/List/Write`): a JSON body
//! whose envelope fields have Go's types (`lease_duration` an integer, `renewable` a bool,
//! `warnings` strings); an empty body for 204; for "no value", a 404 whose body parses and holds
//! no `data` or `warnings`; errors as `{"errors": [...]}`.

use keymint_tests::*;

/// The Go `api` client as the `vault` CLI drives it.
#[derive(Clone)]
pub(crate) struct Cli {
    /// Sends nothing by itself: the token goes in the headers below, as Go sends it.
    client: Client,
    token: Option<String>,
    /// `-wrap-ttl`: sent as `X-Vault-Wrap-TTL`.
    wrap_ttl: Option<String>,
}

impl Cli {
    /// `VAULT_ADDR` at `km`, `VAULT_TOKEN=root`.
    pub(crate) fn new(km: &Keymint) -> Cli {
        Cli { client: km.anonymous(), token: Some(ROOT_TOKEN.to_owned()), wrap_ttl: None }
    }

    pub(crate) fn with_token(&self, token: &str) -> Cli {
        Cli { token: Some(token.to_owned()), ..self.clone() }
    }

    /// `-wrap-ttl=<ttl>` on the command.
    pub(crate) fn with_wrap_ttl(&self, ttl: &str) -> Cli {
        Cli { wrap_ttl: Some(ttl.to_owned()), ..self.clone() }
    }

    /// No `VAULT_TOKEN` and no token file.
    pub(crate) fn without_token(&self) -> Cli {
        Cli { token: None, ..self.clone() }
    }

    /// One request: `query` is encoded like Go's `url.Values.Encode` (sorted by key); a body is
    /// sent as given, byte for byte.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let mut query = query.to_vec();
        query.sort_by_key(|(k, _)| *k);
        let target = if query.is_empty() {
            path.to_owned()
        } else {
            let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
            format!("{path}?{encoded}")
        };
        // net/http adds its default User-Agent and, in the transport, Accept-Encoding.
        let mut headers = vec![
            ("User-Agent", "Go-http-client/1.1"),
            ("X-Vault-Request", "true"),
            ("Accept-Encoding", "gzip"),
        ];
        if let Some(token) = &self.token {
            headers.push(("X-Vault-Token", token.as_str()));
        }
        if let Some(ttl) = &self.wrap_ttl {
            headers.push(("X-Vault-Wrap-TTL", ttl.as_str()));
        }
        // Go sends `Content-Length: 0` on a PUT or POST without a body; an empty body does that.
        let body = match body {
            Some(b) => Some(b.as_bytes().to_vec()),
            None if method == Method::PUT || method == Method::POST => Some(Vec::new()),
            None => None,
        };
        self.client.send_with_headers(method, &target, &headers, body).await
    }

    /// `vault read PATH [K=V...]`: `Logical().ReadWithData`.
    pub(crate) async fn read(&self, path: &str, query: &[(&str, &str)]) -> Resp {
        self.send(Method::GET, path, query, None).await
    }

    /// `vault write PATH K=V...` (`Logical().Write`): PUT with the marshalled map.
    pub(crate) async fn write(&self, path: &str, body: &str) -> Resp {
        self.send(Method::PUT, path, &[], Some(body)).await
    }

    /// `vault list PATH`: `Logical().List` turns LIST into `GET ?list=true`.
    pub(crate) async fn list(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &[("list", "true")], None).await
    }

    /// `vault delete PATH`.
    pub(crate) async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, &[], None).await
    }
}

/// A JSON string literal, as Go's `json.Marshal` writes one (for ASCII without `<>&`, the same
/// as serde_json).
pub(crate) fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// Asserts `Content-Type: application/json`, which Vault sets on every JSON body.
#[track_caller]
pub(crate) fn assert_json_content_type(resp: &Resp) {
    let content_type = resp.headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/json"), "Content-Type of {}: {resp}", resp.request);
}

/// Asserts a 2xx with Vault's envelope, every field of the type `api.Secret` decodes it into
/// (reference §1.3); returns the response.
#[track_caller]
pub(crate) fn assert_secret(resp: Resp, status: u16) -> Resp {
    let resp = resp.expect(status);
    assert_json_content_type(&resp);
    let body = resp.json();
    let field = |key: &str| body.get(key).unwrap_or_else(|| panic!("{}: no {key:?} in {resp}", resp.request));
    assert!(field("request_id").is_string(), "request_id: {resp}");
    assert!(field("lease_id").is_string(), "lease_id: {resp}");
    assert!(field("renewable").is_boolean(), "renewable: {resp}");
    assert!(field("lease_duration").is_u64(), "lease_duration must be whole seconds: {resp}");
    assert!(field("data").is_object() || field("data").is_null(), "data: {resp}");
    assert!(field("auth").is_object() || field("auth").is_null(), "auth: {resp}");
    assert!(field("wrap_info").is_object() || field("wrap_info").is_null(), "wrap_info: {resp}");
    let warnings = field("warnings");
    assert!(
        warnings.is_null() || warnings.as_array().is_some_and(|w| w.iter().all(Value::is_string)),
        "warnings must be null or strings: {resp}"
    );
    resp
}

/// Asserts 204 and an empty body: `api.ParseSecret` then returns no secret and the CLI prints
/// `Success! Data written to: …`.
#[track_caller]
pub(crate) fn assert_written(resp: Resp) {
    let resp = resp.expect(204);
    assert!(resp.text.is_empty(), "{}: a 204 must have no body, got {:?}", resp.request, resp.text);
}

/// Asserts Vault's "nothing there": 404 `{"errors":[]}` (reference §1.4), which the CLI turns
/// into `No value found at <path>`.
#[track_caller]
pub(crate) fn assert_no_value(resp: Resp) {
    let resp = resp.expect(404);
    assert_json_content_type(&resp);
    assert_eq!(resp.json(), &json!({"errors": []}), "{}: {resp}", resp.request);
}

/// Asserts an error answer: `status`, a JSON body `{"errors": [message]}`.
#[track_caller]
pub(crate) fn assert_refused(resp: Resp, status: u16, message: &str) {
    let resp = resp.expect(status);
    assert_json_content_type(&resp);
    resp.assert_errors(&[message]);
}

/// Asserts an error answer whose text the reference leaves open: `status`, a JSON body with a
/// non-empty `errors` array of strings.
#[track_caller]
pub(crate) fn assert_error_body(resp: Resp, status: u16) -> Vec<String> {
    let resp = resp.expect(status);
    assert_json_content_type(&resp);
    let errors = resp.json()["errors"].as_array().unwrap_or_else(|| panic!("no errors array: {resp}"));
    assert!(!errors.is_empty() && errors.iter().all(Value::is_string), "errors: {resp}");
    resp.errors()
}

#[track_caller]
pub(crate) fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("{key} is not a string: {value}"))
}

#[track_caller]
pub(crate) fn secs_of(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("{key} is not whole seconds: {value}"))
}
