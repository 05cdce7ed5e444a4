//! Every failure's status and the exact body a client sees.

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
    assert_eq!(status(ApiError::Timeout), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body(ApiError::Timeout).await,
        json!({"errors": ["1 error occurred:\n\t* context deadline exceeded\n\n"]})
    );
    assert_eq!(status(ApiError::Unavailable("not ready".into())), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body(ApiError::Unavailable("not ready".into())).await, json!({"errors": ["not ready"]}));
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
        (E::TemplateRender("bad".into()), 500, "1 error occurred:\n\t* failed to generate username: bad\n\n"),
        (
            E::UsernameTooLong { what: "IAM username", limit: 64 },
            500,
            "1 error occurred:\n\t* the username generated by the template exceeds the IAM username length limits of 64 chars\n\n",
        ),
        // keymint's own failures never show their detail.
        (E::Encode { what: "role", source: serde_failure }, 500, "1 error occurred:\n\t* internal error\n\n"),
        (
            E::Wal {
                context: "error writing WAL entry",
                source: Box::new(E::Store(keymint_store::StoreError::Corrupt("pq: secret".into()))),
            },
            500,
            "1 error occurred:\n\t* internal error\n\n",
        ),
        // The database went away under the write-ahead log: the request may be sent again.
        (
            E::Wal {
                context: "failed to commit WAL entry",
                source: Box::new(E::Store(keymint_store::StoreError::Database(sqlx::Error::PoolTimedOut))),
            },
            503,
            "storage is unavailable: the database does not answer",
        ),
        (
            E::Store(keymint_store::StoreError::Database(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )))),
            503,
            "storage is unavailable: the database does not answer",
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

#[tokio::test]
async fn server_errors_carry_the_request_id() {
    let read = |r: Response| async move {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };
    let failed = with_request_id(ApiError::hidden(&"pq: relation missing").into_response(), "req-1").await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed.headers()[axum::http::header::CONTENT_TYPE], "application/json");
    assert_eq!(
        read(failed).await,
        json!({"errors": ["1 error occurred:\n\t* internal error\n\n"], "request_id": "req-1"})
    );
    let refused = with_request_id(ApiError::BadRequest("nope".into()).into_response(), "req-2").await;
    assert_eq!(read(refused).await, json!({"errors": ["nope"]}));
}

#[tokio::test]
async fn each_auth_failure_has_its_status_and_text() {
    use keymint_auth::AuthError as A;
    let serde_failure = serde_json::from_str::<u8>("x").unwrap_err();
    let cases: Vec<(A, u16, serde_json::Value)> = vec![
        (A::PermissionDenied, 403, json!(["1 error occurred:\n\t* permission denied\n\n"])),
        (A::InvalidTokenRole("bad role".into()), 400, json!(["bad role"])),
        (
            A::PolicyNotAllowed("child policies must be subset of parent".into()),
            400,
            json!(["child policies must be subset of parent"]),
        ),
        (A::RequestRefused("lease is not renewable".into()), 400, json!(["lease is not renewable"])),
        (
            A::TokenRoleGone("periodic".into()),
            500,
            json!([
                "1 error occurred:\n\t* original token role \"periodic\" could not be found, not renewing\n\n"
            ]),
        ),
        (A::LoginRoleGone("ci".into()), 400, json!(["role \"ci\" does not exist during renewal"])),
        (
            A::Encode { what: "token policies", source: serde_failure },
            500,
            json!(["1 error occurred:\n\t* internal error\n\n"]),
        ),
    ];
    for (e, want_status, want_errors) in cases {
        let label = format!("{e:?}");
        let response = ApiError::from(e).into_response();
        assert_eq!(response.status().as_u16(), want_status, "{label}");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body, json!({ "errors": want_errors }), "{label}");
    }
}
