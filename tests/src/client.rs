//! A deliberately dumb HTTP client for keymint's Vault-style API: it sends exactly what the test
//! says and hands back status and body, so tests see the wire, not a client library's opinion.

use std::fmt;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::process::local_http;

/// How a request authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// `X-Vault-Token: <token>`
    VaultToken(String),
    /// `Authorization: Bearer <token>`
    Bearer(String),
}

/// A client bound to one keymint address and one way of authenticating.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: Auth,
}

impl Client {
    /// `base` is `http://host:port`; request paths are relative to `/v1/`.
    pub fn new(base: &str, auth: Auth) -> Client {
        Client { http: local_http(), base: base.trim_end_matches('/').to_owned(), auth }
    }

    /// The same server, another token (sent as `X-Vault-Token`).
    pub fn with_token(&self, token: &str) -> Client {
        self.with_auth(Auth::VaultToken(token.to_owned()))
    }

    pub fn with_auth(&self, auth: Auth) -> Client {
        Client { auth, ..self.clone() }
    }

    /// The same server and token, connecting from `local` (any address of 127.0.0.0/8 works
    /// on Linux without setup): a load balancer, or a stranger, as keymint sees the peer.
    pub fn from_address(&self, local: std::net::IpAddr) -> Client {
        let http = reqwest::Client::builder()
            .no_proxy()
            .local_address(local)
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("build a reqwest client bound to a local address");
        Client { http, ..self.clone() }
    }

    /// `GET /v1/<path>`; `path` may carry a query string (`aws/creds/r?ttl=1h`).
    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    pub async fn head(&self, path: &str) -> Resp {
        self.send(Method::HEAD, path, None).await
    }

    /// `POST /v1/<path>` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `PUT /v1/<path>` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    /// The non-standard `LIST` verb that hvac uses.
    pub async fn list(&self, path: &str) -> Resp {
        let list = Method::from_bytes(b"LIST").expect("invariant: LIST is a valid method token");
        self.send(list, path, None).await
    }

    /// Any method, optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("serialize a JSON value"));
        self.send_raw(method, path, bytes, Some("application/json")).await
    }

    /// Any method, raw body bytes (for malformed JSON and other wire-level checks).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Resp {
        let headers = match (&body, content_type) {
            (Some(_), Some(ct)) => vec![(CONTENT_TYPE.as_str(), ct)],
            _ => vec![],
        };
        self.send_with_headers(method, path, &headers, body).await
    }

    /// Any method, exactly these headers and body bytes, plus this client's authentication
    /// (use [`Auth::None`] to send the token as one of `headers`): for replaying what a given
    /// client puts on the wire, header for header. reqwest adds only `accept: */*`, `host` and,
    /// with a body, `content-length`.
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let url = format!("{}/v1/{}", self.base, path.trim_start_matches('/'));
        let mut req = self.http.request(method.clone(), &url);
        req = match &self.auth {
            Auth::None => req,
            Auth::VaultToken(t) => req.header("X-Vault-Token", t),
            Auth::Bearer(t) => req.bearer_auth(t),
        };
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {url}: no HTTP response: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        let text =
            resp.text().await.unwrap_or_else(|e| panic!("{method} {url}: reading the body failed: {e}"));
        let body = serde_json::from_str(&text).ok();
        Resp {
            request: format!("{method} /v1/{}", path.trim_start_matches('/')),
            status,
            headers,
            text,
            body,
        }
    }
}

/// One HTTP response: status, headers, raw text and, when the text is JSON, the parsed body.
pub struct Resp {
    /// `METHOD /v1/path`, for failure messages.
    pub request: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Option<Value>,
}

impl Resp {
    /// Panics (showing the body) unless the status is `status`; returns the response otherwise,
    /// so calls chain: `km.get(p).await.expect(200).data()["x"]`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status.as_u16(), status, "unexpected status for {}: {self}", self.request);
        self
    }

    /// The parsed JSON body; panics if there is none.
    #[track_caller]
    pub fn json(&self) -> &Value {
        match &self.body {
            Some(v) => v,
            None => panic!("{} returned no JSON body: {self}", self.request),
        }
    }

    /// `body["data"]`
    #[track_caller]
    pub fn data(&self) -> &Value {
        &self.json()["data"]
    }

    /// The Vault `errors` array; panics if the body has none.
    #[track_caller]
    pub fn errors(&self) -> Vec<String> {
        self.string_array("errors")
            .unwrap_or_else(|| panic!("{} has no `errors` array: {self}", self.request))
    }

    /// The Vault `warnings` array; empty when `null` or absent.
    #[track_caller]
    pub fn warnings(&self) -> Vec<String> {
        self.string_array("warnings").unwrap_or_default()
    }

    /// Asserts the exact Vault error list (status checked separately).
    #[track_caller]
    pub fn assert_errors(&self, expected: &[&str]) {
        assert_eq!(self.errors(), expected, "errors of {} differ: {self}", self.request);
    }

    /// Asserts `status` and that the first error starts with `prefix`.
    #[track_caller]
    pub fn assert_error_prefix(&self, status: u16, prefix: &str) {
        assert_eq!(self.status.as_u16(), status, "{}: {self}", self.request);
        let errors = self.errors();
        assert!(
            errors.first().is_some_and(|e| e.starts_with(prefix)),
            "{}: expected an error starting with {prefix:?}, got {errors:?}",
            self.request
        );
    }

    fn string_array(&self, key: &str) -> Option<Vec<String>> {
        let items = self.body.as_ref()?.get(key)?.as_array()?;
        Some(
            items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        )
    }
}

impl fmt::Display for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} body: ", self.status)?;
        match &self.body {
            Some(v) => write!(f, "{v}"),
            None if self.text.is_empty() => write!(f, "<empty>"),
            None => write!(f, "{:?}", self.text),
        }
    }
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {self}", self.request)
    }
}
