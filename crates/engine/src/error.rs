//! Engine failures, named after what went wrong. The api crate maps each to a status.

use keymint_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The caller's mistake, answered verbatim with 400 (validation, unknown role...).
    #[error("{0}")]
    BadRequest(String),
    /// AWS refused or failed a call. `message` is the full Vault-style text
    /// (`Error creating IAM user: <code>: <message>`).
    #[error("{message}")]
    Aws { message: String, kind: AwsFailure },
    /// Our own fault, answered with 500; the message is Vault's text where Vault has one.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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

impl EngineError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        EngineError::BadRequest(msg.into())
    }
}
