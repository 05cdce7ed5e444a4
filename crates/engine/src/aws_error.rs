//! Turning AWS SDK errors into keymint's: an error code and message AWS sent, or a transport
//! failure, classified as the caller's problem (400) or AWS trouble (502).

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::error::{AwsFailure, EngineError};

/// Error codes AWS uses when it throttles.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
];

/// A classified AWS failure with its code, for callers that branch on it (NoSuchEntity).
#[derive(Debug, Clone)]
pub struct AwsCallError {
    pub code: Option<String>,
    pub text: String,
    pub failure: AwsFailure,
}

impl AwsCallError {
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// The engine error with Vault's prefix, e.g. `Error creating IAM user: ...`.
    pub fn with_prefix(&self, prefix: &str) -> EngineError {
        EngineError::Aws { message: format!("{prefix}: {}", self.text), kind: self.failure }
    }
}

impl std::fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().map(str::to_string);
            let message = inner.message().unwrap_or("").to_string();
            let status = service.raw().status().as_u16();
            let throttled = code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c)) || status == 429;
            let failure =
                if throttled || status >= 500 { AwsFailure::Unavailable } else { AwsFailure::Rejected };
            let text = match (&code, message.is_empty()) {
                (Some(c), false) => format!("{c}: {message}"),
                (Some(c), true) => c.clone(),
                (None, _) => format!("AWS answered with status {status}"),
            };
            AwsCallError { code, text, failure }
        }
        SdkError::TimeoutError(_) => AwsCallError {
            code: None,
            text: "the AWS call timed out".into(),
            failure: AwsFailure::Unavailable,
        },
        SdkError::DispatchFailure(_) => AwsCallError {
            code: None,
            text: format!("could not reach AWS: {}", describe_chain(err)),
            failure: AwsFailure::Unavailable,
        },
        SdkError::ResponseError(_) => AwsCallError {
            code: None,
            text: "AWS sent a response that could not be read".into(),
            failure: AwsFailure::Unavailable,
        },
        SdkError::ConstructionFailure(_) => AwsCallError {
            code: None,
            text: format!("could not build the AWS request: {}", describe_chain(err)),
            failure: AwsFailure::Rejected,
        },
        _ => AwsCallError { code: None, text: describe_chain(err), failure: AwsFailure::Unavailable },
    }
}

fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::operation::create_user::CreateUserError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, message: &str, status: u16) -> SdkError<CreateUserError, HttpResponse> {
        let err = CreateUserError::generic(ErrorMetadata::builder().code(code).message(message).build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn refusals_are_the_callers_problem() {
        let e = classify(&service_error("AccessDenied", "User: x is not authorized", 403));
        assert_eq!(e.failure, AwsFailure::Rejected);
        assert_eq!(e.text, "AccessDenied: User: x is not authorized");
        assert!(e.is_code("AccessDenied"));
        match e.with_prefix("Error creating IAM user") {
            EngineError::Aws { message, kind } => {
                assert_eq!(message, "Error creating IAM user: AccessDenied: User: x is not authorized");
                assert_eq!(kind, AwsFailure::Rejected);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn throttling_and_server_faults_are_aws_trouble() {
        assert_eq!(
            classify(&service_error("Throttling", "Rate exceeded", 400)).failure,
            AwsFailure::Unavailable
        );
        assert_eq!(classify(&service_error("SlowDown", "", 503)).failure, AwsFailure::Unavailable);
        assert_eq!(classify(&service_error("ServiceFailure", "oops", 500)).failure, AwsFailure::Unavailable);
        assert_eq!(classify(&service_error("Whatever", "busy", 429)).failure, AwsFailure::Unavailable);
    }
}
