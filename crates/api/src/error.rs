//! The one place failures become HTTP: every error keymint answers goes out in Vault's
//! `{"errors": [...]}` body with Vault's status code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keymint_common::go::text::{go_quote, multierror};
use keymint_engine::error::prefixed;
use keymint_engine::{AwsFailure, Busy, EngineError};
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
    /// The server cannot serve now (its database does not answer): 503, for readiness checks.
    #[error("{0}")]
    Unavailable(String),
    /// The request ran out of its time limit (`[listener] request_timeout`).
    #[error("context deadline exceeded")]
    Timeout,
}

/// Vault core wraps handler errors in go-multierror's text.
fn wrapped(msg: &str) -> String {
    format!("1 error occurred:\n\t* {msg}\n\n")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, errors) = self.parts();
        (status, axum::Json(json!({ "errors": errors }))).into_response()
    }
}

impl ApiError {
    /// The status Vault answers with.
    pub(crate) fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, Vec<String>) {
        match self {
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
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, vec![m.clone()]),
            // Vault's words: its request context's deadline is what ends a request there.
            ApiError::Timeout => (StatusCode::GATEWAY_TIMEOUT, vec![wrapped("context deadline exceeded")]),
        }
    }

    /// A 500 saying `public` (Vault's text, or "internal error"); `detail` goes to the log,
    /// once, here.
    pub(crate) fn internal(public: impl Into<String>, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        ApiError::Internal { public: public.into() }
    }

    /// The 500 Vault answers to some requests that are the caller's mistake (parity): not
    /// keymint's failure, so not logged as an error.
    pub(crate) fn vaults_500(text: &str) -> Self {
        tracing::info!(error = text, "refused as Vault does, with a 500");
        ApiError::Internal { public: text.into() }
    }

    /// A 500 that tells the client only that the fault was keymint's.
    pub(crate) fn hidden(detail: &dyn std::fmt::Display) -> Self {
        ApiError::internal(INTERNAL_ERROR, detail)
    }

    /// The 503 for a database that does not answer: no fault of the request, which may be
    /// sent again (a load balancer's readiness check takes the replica out meanwhile). The
    /// detail goes to the log, once, here; a warning, as the outage is the database's and
    /// keymint recovers from it by itself.
    fn storage_unavailable(detail: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "request failed: the database does not answer");
        ApiError::Unavailable(STORAGE_UNAVAILABLE.into())
    }
}

/// What a 500 says when Vault has no text for the failure.
pub(crate) const INTERNAL_ERROR: &str = "internal error";

/// What a 503 says when the database does not answer.
pub(crate) const STORAGE_UNAVAILABLE: &str = "storage is unavailable: the database does not answer";

impl From<EngineError> for ApiError {
    /// Vault's status and exact wording for each engine failure.
    fn from(e: EngineError) -> Self {
        use EngineError as E;
        let bad = ApiError::BadRequest;
        match e {
            E::RoleNotFound(name) => bad(format!("Role {name:?} not found")),
            E::InvalidRole(rules) => {
                bad(format!("error(s) validating supplied role data: {}", go_quote(&multierror(&rules))))
            }
            E::PolicyDocumentUnparsable(doc) => bad(format!("cannot parse policy document: {}", go_quote(&doc))),
            E::MergedPolicyUnparsable(why) => bad(format!("cannot parse policy document: {why}")),
            E::ReservedTag(key) => bad(format!(
                "iam_tags: {key:?} uses the \"keymint:\" prefix, which is reserved for the tags keymint puts on the users it creates"
            )),
            E::LegacyParamsConflict(field) => {
                bad(format!("cannot supply deprecated role or policy parameters with {field}"))
            }
            E::LegacyValueUnparsable(value) => bad(format!("unable to parse supplied data: {}", go_quote(&value))),
            E::LegacyCredentialPath { credential_type, via_sts_path } => {
                let path = if via_sts_path { "sts" } else { "creds" };
                bad(format!(
                    "attempted to retrieve {credential_type} credentials through the {path} path; this is not allowed for legacy roles"
                ))
            }
            E::CredentialTypeNotAllowed { wanted, allowed } => {
                bad(format!("requested credential type {wanted:?} not in allowed credential types {allowed:?}"))
            }
            E::UnknownCredentialType(kind) => bad(format!("unknown credential_type: {kind:?}")),
            E::RoleArnNotAllowed { arn, role } => {
                bad(format!("role_arn {arn:?} not in allowed role arns for Vault role {role:?}"))
            }
            E::RoleArnRequired => bad("did not supply a role_arn parameter and unable to determine one".into()),
            E::FederationPolicyRequired => bad(
                "must specify at least one of policy_arns or policy_document with federation_token credential_type"
                    .into(),
            ),
            E::InvalidRootConfig(reason) => bad(reason),
            E::RootUnverified { context, source } => bad(prefixed(&context, &source)),
            E::WrongAccount { account, arn, expected } => bad(format!(
                "the root credentials belong to account {account} ({arn}), not to the expected account {expected}"
            )),
            E::RootKeyMissing => {
                bad("Cannot call config/rotate-root when either access_key or secret_key is empty".into())
            }
            E::RootKeyTemporary => bad("config/root holds temporary credentials (a session_token); only the \
                 long-lived access key of an IAM user can be rotated"
                .into()),
            E::NoStsClient(why) => bad(format!("could not obtain sts client: {why}")),
            E::MissingParameter(name) => bad(format!("missing {name:?} parameter")),
            E::KeySlotsFull { user, role, keys } => bad(format!(
                "IAM user {user:?} already holds two access keys ({}), neither created by keymint for \
                 static role {role:?}; keymint never deletes keys it did not create: delete one of them",
                keys.join(", ")
            )),
            E::Busy(what) => bad(busy_text(what)),
            E::Aws { context, source } => match source.failure {
                AwsFailure::Rejected => bad(prefixed(&context, &source)),
                AwsFailure::Unavailable => {
                    let text = prefixed(&context, &source);
                    tracing::error!(error = %text, "AWS failed the request");
                    ApiError::Upstream(text)
                }
            },
            // Requests Vault refuses with a 500 although the fault is the caller's.
            E::LegacyPolicyAndArn => ApiError::vaults_500("only one of policy or arn should be provided"),
            E::NoRootConfig => ApiError::vaults_500("no configuration found for config/root"),
            E::RotationPeriodTooShort => {
                ApiError::vaults_500("role rotation period out of range: must be greater than 60.00 seconds")
            }
            E::CrossAccountStaticRole => {
                ApiError::vaults_500("cross-account static roles are only supported in Vault Enterprise")
            }
            E::AwsStep { context, source } => {
                let text = prefixed(&context, &source);
                ApiError::internal(text.clone(), &text)
            }
            // The caller named another user than the static role's: Vault's 500.
            E::UserIdMismatch { expected, got } => ApiError::vaults_500(&format!(
                "AWS GetUser returned a user, but the ID did not match: expected {expected:?}, got {got:?}"
            )),
            E::RotationFailed(why) => ApiError::internal(why.clone(), &why),
            E::TemplateUnparsable(why) => {
                let text = format!("unable to initialize username template: {why}");
                ApiError::internal(text.clone(), &text)
            }
            E::TemplateRender(why) => {
                let text = format!("failed to generate username: {why}");
                ApiError::internal(text.clone(), &text)
            }
            E::UsernameTooLong { what, limit } => {
                let text = format!("the username generated by the template exceeds the {what} length limits of {limit} chars");
                ApiError::internal(text.clone(), &text)
            }
            // The intent or the lease could not be written because the database went away.
            E::Wal { ref source, .. } if matches!(&**source, E::Store(s) if s.is_unavailable()) => {
                ApiError::storage_unavailable(&e)
            }
            e @ (E::Encode { .. } | E::Wal { .. } | E::Unexpected(_)) => ApiError::hidden(&e),
            E::Store(e) => ApiError::from(e),
        }
    }
}

fn busy_text(what: Busy) -> String {
    match what {
        Busy::ConfigRootWrite => {
            "config/root was written by another request at the same time; try again".into()
        }
        Busy::RootRotation => {
            "the root credentials of this mount are being rotated right now; try again in a minute".into()
        }
        Busy::ConfigRootWrittenDuringRotation => {
            "config/root was written while the root key was being rotated; \
             the new key was deleted and the written config kept"
                .into()
        }
        Busy::StaticRoleCreation(name) => format!("static role {name:?} is being created by another request"),
        Busy::StaticRoleRotation(name) => {
            format!("static role {name:?} is being rotated; try again in a minute")
        }
    }
}

impl From<keymint_store::StoreError> for ApiError {
    fn from(e: keymint_store::StoreError) -> Self {
        if e.is_unavailable() {
            return ApiError::storage_unavailable(&e);
        }
        // The client learns only that it was ours.
        ApiError::hidden(&e)
    }
}

impl From<keymint_auth::AuthError> for ApiError {
    fn from(e: keymint_auth::AuthError) -> Self {
        match e {
            keymint_auth::AuthError::PermissionDenied => ApiError::PermissionDenied,
            keymint_auth::AuthError::InvalidTokenRole(m)
            | keymint_auth::AuthError::PolicyNotAllowed(m)
            | keymint_auth::AuthError::RequestRefused(m) => ApiError::BadRequest(m),
            // The caller renewing a token whose role is gone: Vault's 500, no fault of keymint's.
            keymint_auth::AuthError::TokenRoleGone(name) => ApiError::vaults_500(&format!(
                "original token role {name:?} could not be found, not renewing"
            )),
            e @ keymint_auth::AuthError::LoginRoleGone(_) => ApiError::BadRequest(e.to_string()),
            e @ keymint_auth::AuthError::Encode { .. } => ApiError::hidden(&e),
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

/// Adds the request id to a 5xx error body, so a report of the failure can be matched with
/// the log line that holds its detail. Other responses pass unchanged.
pub(crate) async fn with_request_id(response: Response, request_id: &str) -> Response {
    if !response.status().is_server_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Error bodies are a few hundred bytes; anything this large is no error body of ours.
    let bytes = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "could not read a 5xx body to add the request id");
            return Response::from_parts(parts, axum::body::Body::empty());
        }
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut map)) if map.contains_key("errors") => {
            map.insert("request_id".into(), json!(request_id));
            serde_json::Value::Object(map).to_string().into()
        }
        _ => bytes,
    };
    let mut response = Response::from_parts(parts, axum::body::Body::from(body));
    response.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
    response
}

#[cfg(test)]
mod tests;
