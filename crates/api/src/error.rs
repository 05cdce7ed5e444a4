//! The one place failures become HTTP: every error keymint answers goes out in Vault's
//! `{"errors": [...]}` body with Vault's status code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keymint_engine::error::prefixed;
use keymint_engine::gotext::{go_quote, multierror};
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

impl ApiError {
    /// A 500 saying `public` (Vault's text, or "internal error"); `detail` goes to the log,
    /// once, here.
    pub(crate) fn internal(public: impl Into<String>, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        ApiError::Internal { public: public.into() }
    }

    /// The 500 Vault answers to some requests that are the caller's mistake (parity): not
    /// keymint's failure, so not logged as an error.
    fn vaults_500(text: &str) -> Self {
        tracing::info!(error = text, "refused as Vault does, with a 500");
        ApiError::Internal { public: text.into() }
    }

    /// A 500 that tells the client only that the fault was keymint's.
    pub(crate) fn hidden(detail: &dyn std::fmt::Display) -> Self {
        ApiError::internal(INTERNAL_ERROR, detail)
    }
}

/// What a 500 says when Vault has no text for the failure.
pub(crate) const INTERNAL_ERROR: &str = "internal error";

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
            E::UserIdMismatch { expected, got } => {
                let text =
                    format!("AWS GetUser returned a user, but the ID did not match: expected {expected:?}, got {got:?}");
                ApiError::internal(text.clone(), &text)
            }
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
        // The client learns only that it was ours.
        ApiError::hidden(&e)
    }
}

impl From<keymint_auth::AuthError> for ApiError {
    fn from(e: keymint_auth::AuthError) -> Self {
        match e {
            keymint_auth::AuthError::PermissionDenied => ApiError::PermissionDenied,
            keymint_auth::AuthError::Invalid(m) => ApiError::BadRequest(m),
            // The caller renewing a token whose role is gone: Vault's 500, no fault of keymint's.
            keymint_auth::AuthError::TokenRoleGone(name) => ApiError::vaults_500(&format!(
                "original token role {name:?} could not be found, not renewing"
            )),
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

#[cfg(test)]
mod tests {
    use super::*;
    use keymint_engine::aws_error::{AwsCallError, Retry};

    fn status(e: impl Into<ApiError>) -> StatusCode {
        e.into().into_response().status()
    }

    fn aws_failure(failure: AwsFailure) -> AwsCallError {
        AwsCallError {
            op: "CreateUser",
            code: Some("AccessDenied".into()),
            text: "AccessDenied: no".into(),
            failure,
            retry: Retry::Never,
            gave_up: None,
        }
    }

    #[test]
    fn engine_failures_map_to_vaults_statuses() {
        let aws = |failure| EngineError::aws("Error creating IAM user", aws_failure(failure));
        assert_eq!(status(aws(AwsFailure::Rejected)), StatusCode::BAD_REQUEST);
        assert_eq!(status(aws(AwsFailure::Unavailable)), StatusCode::BAD_GATEWAY);
        assert_eq!(status(EngineError::RoleNotFound("x".into())), StatusCode::BAD_REQUEST);
        assert_eq!(status(EngineError::Unexpected("boom".into())), StatusCode::INTERNAL_SERVER_ERROR);
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

    /// Every engine failure: its status and the exact text a client sees (Vault's, where Vault
    /// has one), and 4xx exactly where the engine calls it the caller's mistake.
    #[tokio::test]
    async fn each_engine_failure_has_its_status_and_text() {
        use EngineError as E;
        let aws = |failure| aws_failure(failure);
        let serde_failure = serde_json::from_str::<u8>("x").unwrap_err();
        let cases: Vec<(E, u16, &str)> = vec![
            (E::RoleNotFound("r".into()), 400, r#"Role "r" not found"#),
            (
                E::InvalidRole(vec!["did not supply credential_type".into()]),
                400,
                r#"error(s) validating supplied role data: "1 error occurred:\n\t* did not supply credential_type\n\n""#,
            ),
            (E::PolicyDocumentUnparsable("{nope".into()), 400, r#"cannot parse policy document: "{nope""#),
            (E::MergedPolicyUnparsable("EOF".into()), 400, "cannot parse policy document: EOF"),
            (
                E::ReservedTag("keymint:x".into()),
                400,
                r#"iam_tags: "keymint:x" uses the "keymint:" prefix, which is reserved for the tags keymint puts on the users it creates"#,
            ),
            (
                E::LegacyParamsConflict("an explicit credential_type".into()),
                400,
                "cannot supply deprecated role or policy parameters with an explicit credential_type",
            ),
            (E::LegacyValueUnparsable("x\"".into()), 400, r#"unable to parse supplied data: "x\"""#),
            (
                E::LegacyCredentialPath { credential_type: "iam_user".into(), via_sts_path: true },
                400,
                "attempted to retrieve iam_user credentials through the sts path; this is not allowed for legacy roles",
            ),
            (
                E::LegacyCredentialPath { credential_type: "assumed_role".into(), via_sts_path: false },
                400,
                "attempted to retrieve assumed_role credentials through the creds path; this is not allowed for legacy roles",
            ),
            (
                E::CredentialTypeNotAllowed {
                    wanted: "iam_user".into(),
                    allowed: vec!["assumed_role".into(), "session_token".into()],
                },
                400,
                r#"requested credential type "iam_user" not in allowed credential types ["assumed_role", "session_token"]"#,
            ),
            (E::UnknownCredentialType("x".into()), 400, r#"unknown credential_type: "x""#),
            (
                E::RoleArnNotAllowed { arn: "arn:a".into(), role: "r".into() },
                400,
                r#"role_arn "arn:a" not in allowed role arns for Vault role "r""#,
            ),
            (E::RoleArnRequired, 400, "did not supply a role_arn parameter and unable to determine one"),
            (
                E::FederationPolicyRequired,
                400,
                "must specify at least one of policy_arns or policy_document with federation_token credential_type",
            ),
            (E::InvalidRootConfig("call_timeout bad".into()), 400, "call_timeout bad"),
            (
                E::RootUnverified { context: "error verifying".into(), source: aws(AwsFailure::Unavailable) },
                400,
                "error verifying: AccessDenied: no (AWS operation CreateUser; hint: the credentials in config/root need the iam:CreateUser permission)",
            ),
            (
                E::WrongAccount { account: "1".into(), arn: "arn:x".into(), expected: "2".into() },
                400,
                "the root credentials belong to account 1 (arn:x), not to the expected account 2",
            ),
            (
                E::RootKeyMissing,
                400,
                "Cannot call config/rotate-root when either access_key or secret_key is empty",
            ),
            (
                E::RootKeyTemporary,
                400,
                "config/root holds temporary credentials (a session_token); only the long-lived access key of an IAM user can be rotated",
            ),
            (E::NoStsClient("boom".into()), 400, "could not obtain sts client: boom"),
            (E::MissingParameter("username"), 400, r#"missing "username" parameter"#),
            (
                E::KeySlotsFull { user: "u".into(), role: "r".into(), keys: vec!["K1".into(), "K2".into()] },
                400,
                r#"IAM user "u" already holds two access keys (K1, K2), neither created by keymint for static role "r"; keymint never deletes keys it did not create: delete one of them"#,
            ),
            (
                E::Busy(Busy::ConfigRootWrite),
                400,
                "config/root was written by another request at the same time; try again",
            ),
            (
                E::Busy(Busy::RootRotation),
                400,
                "the root credentials of this mount are being rotated right now; try again in a minute",
            ),
            (
                E::Busy(Busy::ConfigRootWrittenDuringRotation),
                400,
                "config/root was written while the root key was being rotated; the new key was deleted and the written config kept",
            ),
            (
                E::Busy(Busy::StaticRoleCreation("r".into())),
                400,
                r#"static role "r" is being created by another request"#,
            ),
            (
                E::Busy(Busy::StaticRoleRotation("r".into())),
                400,
                r#"static role "r" is being rotated; try again in a minute"#,
            ),
            (
                E::aws("Error creating IAM user", aws(AwsFailure::Rejected)),
                400,
                "Error creating IAM user: AccessDenied: no (AWS operation CreateUser; hint: the credentials in config/root need the iam:CreateUser permission)",
            ),
            (
                E::aws("", aws(AwsFailure::Unavailable)),
                502,
                "AccessDenied: no (AWS operation CreateUser; hint: the credentials in config/root need the iam:CreateUser permission)",
            ),
            (
                E::LegacyPolicyAndArn,
                500,
                "1 error occurred:\n\t* only one of policy or arn should be provided\n\n",
            ),
            (E::NoRootConfig, 500, "1 error occurred:\n\t* no configuration found for config/root\n\n"),
            (
                E::RotationPeriodTooShort,
                500,
                "1 error occurred:\n\t* role rotation period out of range: must be greater than 60.00 seconds\n\n",
            ),
            (
                E::CrossAccountStaticRole,
                500,
                "1 error occurred:\n\t* cross-account static roles are only supported in Vault Enterprise\n\n",
            ),
            (
                E::AwsStep { context: "error calling GetUser".into(), source: aws(AwsFailure::Rejected) },
                500,
                "1 error occurred:\n\t* error calling GetUser: AccessDenied: no (AWS operation CreateUser; hint: the credentials in config/root need the iam:CreateUser permission)\n\n",
            ),
            (
                E::UserIdMismatch { expected: "A".into(), got: "B".into() },
                500,
                "1 error occurred:\n\t* AWS GetUser returned a user, but the ID did not match: expected \"A\", got \"B\"\n\n",
            ),
            (E::RotationFailed("lost the claim".into()), 500, "1 error occurred:\n\t* lost the claim\n\n"),
            (
                E::TemplateUnparsable("bad".into()),
                500,
                "1 error occurred:\n\t* unable to initialize username template: bad\n\n",
            ),
            (
                E::TemplateRender("bad".into()),
                500,
                "1 error occurred:\n\t* failed to generate username: bad\n\n",
            ),
            (
                E::UsernameTooLong { what: "IAM username", limit: 64 },
                500,
                "1 error occurred:\n\t* the username generated by the template exceeds the IAM username length limits of 64 chars\n\n",
            ),
            // keymint's own failures never show their detail.
            (
                E::Encode { what: "role", source: serde_failure },
                500,
                "1 error occurred:\n\t* internal error\n\n",
            ),
            (
                E::Wal {
                    context: "error writing WAL entry",
                    source: Box::new(E::Store(keymint_store::StoreError::Corrupt("pq: secret".into()))),
                },
                500,
                "1 error occurred:\n\t* internal error\n\n",
            ),
            (E::Unexpected("row gone".into()), 500, "1 error occurred:\n\t* internal error\n\n"),
            (
                E::Store(keymint_store::StoreError::Corrupt("sqlx said".into())),
                500,
                "1 error occurred:\n\t* internal error\n\n",
            ),
        ];
        for (e, want_status, want_text) in cases {
            let label = format!("{e:?}");
            let mistake = e.is_callers_mistake();
            let response = ApiError::from(e).into_response();
            let status = response.status().as_u16();
            assert_eq!(status, want_status, "{label}");
            assert_eq!(mistake, status < 500, "{label}: 4xx exactly for the caller's mistakes");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body, json!({"errors": [want_text]}), "{label}");
        }
    }
}
