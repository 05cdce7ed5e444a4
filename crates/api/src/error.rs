//! The one place failures become HTTP: every error keymint answers goes out in Vault's
//! `{"errors": [...]}` body with Vault's status code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keymint_engine::{AwsFailure, EngineError};
use serde_json::json;

use crate::fields::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The caller's mistake: 400 with the message verbatim.
    #[error("{0}")]
    BadRequest(String),
    /// No token, an unknown token, or a denied path: 403 without saying which.
    #[error("permission denied")]
    PermissionDenied,
    /// 403 with Vault's own text, where Vault gives one (a lookup of an unknown token).
    #[error("{0}")]
    Denied(String),
    /// The HTTP layer refused the request (e.g. 413 for a body over the limit).
    #[error("{1}")]
    Rejected(StatusCode, String),
    /// A read or list that found nothing: 404 with an empty error list.
    #[error("not found")]
    NotFound,
    /// The mount has no such path.
    #[error("unsupported path")]
    UnsupportedPath,
    /// No mount serves this path.
    #[error("no handler for route {0:?}. route entry not found.")]
    NoHandler(String),
    /// The path exists but not for this method.
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// AWS trouble: throttling, 5xx, unreachable.
    #[error("{0}")]
    Upstream(String),
    /// Our own fault; `public` is what the client sees (Vault's text where it has one).
    #[error("{public}")]
    Internal { public: String },
}

/// Vault core wraps handler errors in go-multierror's text.
fn wrapped(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, errors): (StatusCode, Vec<String>) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, vec![m.clone()]),
            ApiError::PermissionDenied => (StatusCode::FORBIDDEN, vec![wrapped("permission denied")]),
            ApiError::Denied(m) => (StatusCode::FORBIDDEN, vec![m.clone()]),
            ApiError::Rejected(status, m) => (*status, vec![m.clone()]),
            ApiError::NotFound => (StatusCode::NOT_FOUND, vec![]),
            ApiError::UnsupportedPath => (StatusCode::NOT_FOUND, vec![wrapped("unsupported path")]),
            ApiError::NoHandler(path) => (
                StatusCode::NOT_FOUND,
                vec![wrapped(&format!("no handler for route {path:?}. route entry not found."))],
            ),
            ApiError::UnsupportedOperation => {
                (StatusCode::METHOD_NOT_ALLOWED, vec![wrapped("unsupported operation")])
            }
            ApiError::Upstream(m) => (StatusCode::BAD_GATEWAY, vec![m.clone()]),
            ApiError::Internal { public } => (StatusCode::INTERNAL_SERVER_ERROR, vec![wrapped(public)]),
        };
        (status, axum::Json(json!({ "errors": errors }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::BadRequest(m) => ApiError::BadRequest(m),
            EngineError::Aws { message, kind: AwsFailure::Rejected } => ApiError::BadRequest(message),
            EngineError::Aws { message, kind: AwsFailure::Unavailable } => ApiError::Upstream(message),
            EngineError::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                ApiError::Internal { public: m }
            }
            EngineError::Store(e) => ApiError::from(e),
        }
    }
}

impl From<keymint_store::StoreError> for ApiError {
    fn from(e: keymint_store::StoreError) -> Self {
        // The detail is logged once here; the client learns only that it was ours.
        tracing::error!(error = %e, "storage failure");
        ApiError::Internal { public: "internal error".into() }
    }
}

impl From<keymint_auth::AuthError> for ApiError {
    fn from(e: keymint_auth::AuthError) -> Self {
        match e {
            keymint_auth::AuthError::PermissionDenied => ApiError::PermissionDenied,
            keymint_auth::AuthError::Invalid(m) => ApiError::BadRequest(m),
            keymint_auth::AuthError::Internal(m) => {
                tracing::warn!(error = %m, "request failed");
                ApiError::Internal { public: m }
            }
            keymint_auth::AuthError::Store(s) => ApiError::from(s),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: impl Into<ApiError>) -> StatusCode {
        e.into().into_response().status()
    }

    #[test]
    fn engine_failures_map_to_vaults_statuses() {
        let aws = |kind| EngineError::Aws { message: "Error creating IAM user: x".into(), kind };
        assert_eq!(status(aws(AwsFailure::Rejected)), StatusCode::BAD_REQUEST);
        assert_eq!(status(aws(AwsFailure::Unavailable)), StatusCode::BAD_GATEWAY);
        assert_eq!(status(EngineError::bad_request("Role \"x\" not found")), StatusCode::BAD_REQUEST);
        assert_eq!(status(EngineError::Internal("boom".into())), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(status(ApiError::PermissionDenied), StatusCode::FORBIDDEN);
        assert_eq!(status(ApiError::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(status(ApiError::UnsupportedOperation), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn bodies_use_vaults_shape() {
        let body = |e: ApiError| async move {
            let bytes = axum::body::to_bytes(e.into_response().into_body(), 1 << 16).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        };
        assert_eq!(body(ApiError::NotFound).await, json!({"errors": []}));
        assert_eq!(
            body(ApiError::PermissionDenied).await,
            json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
        );
        assert_eq!(body(ApiError::BadRequest("nope".into())).await, json!({"errors": ["nope"]}));
    }
}
