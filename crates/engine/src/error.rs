//! Engine failures, named after what went wrong. The api crate gives each its status and
//! Vault's wording; the `Display` here is a plain description for logs.

use keymint_store::StoreError;

use crate::aws_error::AwsCallError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    // The caller's mistakes.
    #[error("role {0:?} not found")]
    RoleNotFound(String),
    /// A role write whose result breaks these rules (Vault's validation texts).
    #[error("invalid role: {}", .0.join("; "))]
    InvalidRole(Vec<String>),
    /// A role's `policy_document` that is not JSON, as given.
    #[error("role policy document is not JSON: {0:?}")]
    PolicyDocumentUnparsable(String),
    /// A policy document to merge with IAM group policies that is not JSON.
    #[error("policy document to merge is not JSON: {0}")]
    MergedPolicyUnparsable(String),
    /// A role or key name in `iam_tags` uses keymint's reserved `keymint:` prefix.
    #[error("iam_tags key {0:?} uses the reserved keymint: prefix")]
    ReservedTag(String),
    /// A legacy (`policy`/`arn`) role write also naming this modern field.
    #[error("legacy role parameters given with {0}")]
    LegacyParamsConflict(String),
    /// A legacy role write whose value is neither an ARN nor a policy document.
    #[error("legacy role value cannot be parsed: {0:?}")]
    LegacyValueUnparsable(String),
    /// A legacy role asked for through the other path (`creds` vs `sts`).
    #[error("legacy role of type {credential_type} asked for through the wrong path")]
    LegacyCredentialPath { credential_type: String, via_sts_path: bool },
    /// The role does not allow the credential type the path asks for.
    #[error("credential type {wanted} not allowed by the role ({allowed:?})")]
    CredentialTypeNotAllowed { wanted: String, allowed: Vec<String> },
    #[error("unknown credential type {0:?}")]
    UnknownCredentialType(String),
    #[error("role_arn {arn:?} not allowed by role {role:?}")]
    RoleArnNotAllowed { arn: String, role: String },
    #[error("no role_arn given and the role has several")]
    RoleArnRequired,
    #[error("federation_token role without a policy")]
    FederationPolicyRequired,
    /// A `config/root` (or `config/lease`) write that breaks this rule, in keymint's or
    /// Vault's words.
    #[error("{0}")]
    InvalidRootConfig(String),
    /// `config/root` credentials that AWS refused when verified.
    #[error("root credentials not verified: {context}: {source}")]
    RootUnverified { context: String, source: AwsCallError },
    #[error("root credentials of account {account}, expected {expected}")]
    WrongAccount { account: String, arn: String, expected: String },
    /// `config/rotate-root` without an access key pair.
    #[error("config/root has no access key to rotate")]
    RootKeyMissing,
    /// `config/rotate-root` with temporary credentials.
    #[error("config/root holds temporary credentials, which cannot be rotated")]
    RootKeyTemporary,
    /// No STS endpoint gave a client. (Revocation failures carry this text to clients.)
    #[error("could not obtain sts client: {0}")]
    NoStsClient(String),
    /// A required request parameter was not given.
    #[error("missing parameter {0}")]
    MissingParameter(&'static str),
    /// The IAM user already has two keys, none of them keymint's.
    #[error("IAM user {user:?} of static role {role:?} holds two foreign keys")]
    KeySlotsFull { user: String, role: String, keys: Vec<String> },
    /// Another request holds what this one needs.
    #[error("busy: {0:?}")]
    Busy(Busy),

    /// AWS refused or failed a call: the caller's problem or AWS trouble, by `source.failure`.
    /// `context` is Vault's prefix (`Error creating IAM user`), empty where Vault has none.
    #[error("{}", prefixed(context, source))]
    Aws { context: String, source: AwsCallError },

    // keymint's failures, for which Vault has a text.
    /// A legacy role write giving both `policy` and `arn`.
    #[error("legacy role write with both policy and arn")]
    LegacyPolicyAndArn,
    #[error("config/root is not configured")]
    NoRootConfig,
    #[error("static role rotation period under the minimum")]
    RotationPeriodTooShort,
    #[error("cross-account static roles are not supported")]
    CrossAccountStaticRole,
    /// An AWS call failed in a step Vault answers with a 500 (static role checks, root and
    /// static key rotation); `context` is Vault's prefix.
    #[error("{context}: {source}")]
    AwsStep { context: String, source: AwsCallError },
    /// The IAM user named by a static role is another user than the one it was made for.
    #[error("IAM user ID mismatch: expected {expected:?}, got {got:?}")]
    UserIdMismatch { expected: String, got: String },
    /// A key rotation that could not finish, and why. (The failure recorded for the
    /// rotation is this text.)
    #[error("{0}")]
    RotationFailed(String),
    #[error("username template does not parse: {0}")]
    TemplateUnparsable(String),
    #[error("username template cannot be rendered: {0}")]
    TemplateRender(String),
    #[error("generated {what} over {limit} characters")]
    UsernameTooLong { what: &'static str, limit: usize },

    // keymint's failures, for which the client learns only that it was ours.
    /// A value of ours that does not serialize.
    #[error("cannot encode {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    /// The write-ahead log of an IAM user could not be written or committed.
    #[error("{context}: {source}")]
    Wal { context: &'static str, source: Box<EngineError> },
    /// Something keymint relies on did not hold (a row gone, an answer AWS left empty).
    #[error("{0}")]
    Unexpected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What another request holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// Two `config/root` writes raced.
    ConfigRootWrite,
    /// The root key is being rotated.
    RootRotation,
    /// `config/root` was written while its key was rotated: the new key was dropped.
    ConfigRootWrittenDuringRotation,
    /// The named static role is being created.
    StaticRoleCreation(String),
    /// The named static role's key is being rotated.
    StaticRoleRotation(String),
}

/// How an AWS failure should be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsFailure {
    /// AWS answered with a client error (access denied, validation, no such entity): 400, as
    /// Vault does.
    Rejected,
    /// Throttling, AWS 5xx, timeouts, connection failures: 502.
    Unavailable,
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// `context: source`, or the bare source where there is no context.
pub fn prefixed(context: &str, source: &AwsCallError) -> String {
    if context.is_empty() { source.to_string() } else { format!("{context}: {source}") }
}

impl EngineError {
    /// True when the request itself was wrong (a 4xx): a caller's mistake, never logged as
    /// keymint's failure.
    pub fn is_callers_mistake(&self) -> bool {
        use EngineError::*;
        match self {
            RoleNotFound(_)
            | InvalidRole(_)
            | PolicyDocumentUnparsable(_)
            | MergedPolicyUnparsable(_)
            | ReservedTag(_)
            | LegacyParamsConflict(_)
            | LegacyValueUnparsable(_)
            | LegacyCredentialPath { .. }
            | CredentialTypeNotAllowed { .. }
            | UnknownCredentialType(_)
            | RoleArnNotAllowed { .. }
            | RoleArnRequired
            | FederationPolicyRequired
            | InvalidRootConfig(_)
            | RootUnverified { .. }
            | WrongAccount { .. }
            | RootKeyMissing
            | RootKeyTemporary
            | NoStsClient(_)
            | MissingParameter(_)
            | KeySlotsFull { .. }
            | Busy(_) => true,
            Aws { source, .. } => source.failure == AwsFailure::Rejected,
            LegacyPolicyAndArn
            | NoRootConfig
            | RotationPeriodTooShort
            | CrossAccountStaticRole
            | AwsStep { .. }
            | UserIdMismatch { .. }
            | RotationFailed(_)
            | TemplateUnparsable(_)
            | TemplateRender(_)
            | UsernameTooLong { .. }
            | Encode { .. }
            | Wal { .. }
            | Unexpected(_)
            | Store(_) => false,
        }
    }

    /// An AWS failure under Vault's prefix for the call.
    pub fn aws(context: impl Into<String>, source: AwsCallError) -> Self {
        EngineError::Aws { context: context.into(), source }
    }

    pub fn encode(what: &'static str) -> impl Fn(serde_json::Error) -> Self + Copy {
        move |source| EngineError::Encode { what, source }
    }

    pub fn invalid_root_config(reason: impl Into<String>) -> Self {
        EngineError::InvalidRootConfig(reason.into())
    }
}
