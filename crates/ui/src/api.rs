//! The `/v1` API, called in process: the UI's every read and write goes through the same
//! router, authentication, ACL and audit as a client's request.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keymint_api::AppState;
use keymint_api::tls::Peer;
use serde_json::Value;
use tower::ServiceExt;

/// The API as one signed-in token sees it.
#[derive(Clone)]
pub(crate) struct Api {
    pub state: AppState,
    pub token: Option<String>,
    /// The browser's address: tokens bound to CIDRs are checked against it.
    pub peer: Option<Peer>,
}

/// An answer: its status and its JSON body (`Value::Null` when it has none).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The errors the API gave, one each: Vault's "N errors occurred:" lists are split.
    pub fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for text in self.body["errors"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            match text.split_once(" occurred:") {
                Some((count, list)) if count.ends_with("error") || count.ends_with("errors") => out.extend(
                    list.split("\n\t* ").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
                ),
                _ => out.push(text.trim().to_string()),
            }
        }
        out
    }

    /// The errors the API gave, on one line.
    pub fn error(&self) -> String {
        let text = self.errors().join("; ");
        if text.is_empty() { format!("the server answered {}", self.status) } else { text }
    }
}

/// The strings of a JSON list (`keys`, `policies`, `warnings`...); nothing for anything else.
pub(crate) fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

impl Api {
    /// `method` on `/v1/<path>`, with a JSON `body`.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let mut request = Request::builder().method(method).uri(format!("/v1/{path}"));
        if let Some(token) = &self.token {
            request = request.header("x-vault-token", token);
        }
        if let Some(peer) = self.peer {
            request = request.extension(axum::extract::ConnectInfo(peer));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let Ok(request) = request.body(body) else {
            return Answer { status: StatusCode::BAD_REQUEST, body: Value::Null };
        };
        let Ok(response) = keymint_api::router(self.state.clone()).oneshot(request).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, body }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None).await
    }

    pub async fn list(&self, path: &str) -> Answer {
        self.call("LIST", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.call("POST", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call("DELETE", path, None).await
    }
}
