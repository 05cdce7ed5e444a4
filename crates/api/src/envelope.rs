//! Vault's success envelope.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// What a handler answers on success.
#[derive(Debug, Default)]
pub struct Reply {
    pub status: Option<StatusCode>,
    pub lease_id: String,
    pub renewable: bool,
    pub lease_duration: u64,
    /// `None` serialises as `"data": null`.
    pub data: Option<Value>,
    pub warnings: Vec<String>,
    /// Keys copied to the top level of the body (Vault does this for `sys/mounts`).
    pub top_level: Option<Map<String, Value>>,
    /// No body at all: 204.
    pub no_content: bool,
    /// Vault's `auth` block (token creation and renewal).
    pub auth: Option<Value>,
    /// The whole body instead of the envelope (Vault's raw responses: the OpenAPI document).
    pub raw: Option<Value>,
    /// Vault's `wrap_info`: the response went into a wrapping token (see [`crate::wrapping`]).
    pub wrap_info: Option<Value>,
}

impl Reply {
    pub fn no_content() -> Self {
        Reply { no_content: true, ..Default::default() }
    }

    pub fn data(data: Value) -> Self {
        Reply { data: Some(data), ..Default::default() }
    }

    /// A write that has warnings to tell answers 200 with them instead of 204.
    pub fn written(warnings: Vec<String>) -> Self {
        if warnings.is_empty() { Reply::no_content() } else { Reply { warnings, ..Default::default() } }
    }

    /// Renders the reply; `mount_type` names the engine that answered (`aws`, `system`, `token`)
    /// and `request_id` is the id the request is logged and audited under.
    pub fn render(self, mount_type: &str, request_id: &str) -> Response {
        if self.no_content {
            return StatusCode::NO_CONTENT.into_response();
        }
        if let Some(raw) = self.raw {
            return (self.status.unwrap_or(StatusCode::OK), axum::Json(raw)).into_response();
        }
        let status = self.status.unwrap_or(StatusCode::OK);
        (status, axum::Json(self.body(mount_type, request_id))).into_response()
    }

    /// The envelope as JSON (what [`Reply::render`] writes for a reply with a body).
    pub fn body(self, mount_type: &str, request_id: &str) -> Value {
        let mut body = Map::new();
        if let Some(extra) = self.top_level {
            body.extend(extra);
        }
        body.insert("request_id".into(), json!(request_id));
        body.insert("lease_id".into(), json!(self.lease_id));
        body.insert("renewable".into(), json!(self.renewable));
        body.insert("lease_duration".into(), json!(self.lease_duration));
        body.insert("data".into(), self.data.unwrap_or(Value::Null));
        body.insert("wrap_info".into(), self.wrap_info.unwrap_or(Value::Null));
        body.insert(
            "warnings".into(),
            if self.warnings.is_empty() { Value::Null } else { json!(self.warnings) },
        );
        body.insert("auth".into(), self.auth.unwrap_or(Value::Null));
        body.insert("mount_type".into(), json!(mount_type));
        Value::Object(body)
    }
}
