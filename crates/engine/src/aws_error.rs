//! Turning AWS SDK errors into keymint's. Each failure keeps the AWS operation, AWS's error
//! code and message, whether a retry can help, and a hint for the common causes, and is
//! classified as the caller's problem (400) or AWS trouble (502), as Vault splits them.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::error::{AwsFailure, EngineError};

/// Error codes AWS uses when it throttles. IAM's own `LimitExceeded` is not among them: it is
/// a quota (users per account, keys per user), which waiting does not lift.
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

/// Whether repeating a failed call can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// AWS refused the call as it stands (validation, permission, quota).
    Never,
    /// AWS throttled the call: it was not carried out, so any call may be repeated.
    Throttled,
    /// A 5xx, a timeout or a broken connection: the call may or may not have happened in AWS.
    Transient,
}

/// A classified AWS failure.
#[derive(Debug, Clone)]
pub struct AwsCallError {
    /// The AWS operation, e.g. `CreateUser`.
    pub op: &'static str,
    pub code: Option<String>,
    /// `Code: message` as AWS sent it, or what went wrong on the way.
    pub text: String,
    pub failure: AwsFailure,
    pub retry: Retry,
    /// Set when keymint stopped retrying: how many attempts, over how long.
    pub gave_up: Option<String>,
}

impl AwsCallError {
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when the call may have happened in AWS even though no answer came back.
    pub fn outcome_unknown(&self) -> bool {
        self.retry == Retry::Transient
    }

    /// The engine error with Vault's prefix, e.g. `Error creating IAM user: <code>: <message>`,
    /// followed by the operation and, where one applies, a hint.
    pub fn with_prefix(&self, prefix: &str) -> EngineError {
        EngineError::aws(prefix, self.clone())
    }

    /// The same failure under another operation's name (a probe made for `op`).
    pub fn during(mut self, op: &'static str) -> Self {
        self.op = op;
        self
    }
}

impl std::error::Error for AwsCallError {}

impl std::fmt::Display for AwsCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (AWS operation {}", self.text, self.op)?;
        if let Some(g) = &self.gave_up {
            write!(f, "; {g}")?;
        }
        if let Some(h) = hint(self) {
            write!(f, "; hint: {h}")?;
        }
        f.write_str(")")
    }
}

/// The IAM or STS action name behind an operation, for permission hints.
fn action(op: &str) -> String {
    let service =
        if matches!(op, "AssumeRole" | "GetFederationToken" | "GetSessionToken" | "GetCallerIdentity") {
            "sts"
        } else {
            "iam"
        };
    format!("{service}:{op}")
}

/// What usually causes this failure, in words an operator can act on.
fn hint(e: &AwsCallError) -> Option<String> {
    let code = e.code.as_deref().unwrap_or("");
    let text = e.text.to_ascii_lowercase();
    let h = match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnauthorizedAccess" => {
            if e.op == "AssumeRole" {
                "check that the role ARN exists and that its trust policy lets keymint's principal \
                 call sts:AssumeRole (and that external_id matches when the trust policy asks for one)"
                    .to_string()
            } else {
                format!("the credentials in config/root need the {} permission", action(e.op))
            }
        }
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException"
        | "InvalidAccessKeyId" => "AWS does not accept the credentials in config/root: check access_key \
             and secret_key (a key created seconds ago may not work yet)"
            .to_string(),
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the temporary credentials in config/root have expired: write fresh ones, or give \
             keymint long-lived keys or a role_arn to assume"
                .to_string()
        }
        "NoSuchEntity" if e.op == "AttachUserPolicy" => {
            "one of the role's policy_arns does not exist in this account".to_string()
        }
        "NoSuchEntity" if e.op == "AddUserToGroup" => {
            "one of the role's iam_groups does not exist in this account".to_string()
        }
        "LimitExceeded" if e.op == "CreateAccessKey" => {
            "the IAM user already has the two access keys AWS allows".to_string()
        }
        "LimitExceeded" if e.op == "CreateUser" => {
            "the account is at its IAM user quota: revoke unused leases or ask AWS to raise it".to_string()
        }
        "PackedPolicyTooLarge" => "the session policies are over AWS's size limit: move statements \
             into managed policies and list them in policy_arns"
            .to_string(),
        "LimitExceeded" if text.contains("policy") || text.contains("size") => {
            "the policy is over AWS's size limit (2,048 characters for a user's inline policies): move \
             statements into managed policies and list them in policy_arns"
                .to_string()
        }
        "MalformedPolicyDocument" | "MalformedPolicyDocumentException" => {
            "AWS refused the role's policy_document: check its JSON and its actions".to_string()
        }
        "EntityAlreadyExists" if e.op == "CreateUser" => {
            "an IAM user of that name already exists: make username_template produce unique names".to_string()
        }
        "RegionDisabledException" => {
            "STS is not activated in this region: activate it in the account settings, or set \
             sts_endpoint and sts_region to a region where it is"
                .to_string()
        }
        "ValidationError" | "ValidationException"
            if text.contains("durationseconds") || text.contains("maxsessionduration") =>
        {
            "the session asked for is longer than the role's maximum session duration in AWS: lower \
             the role's default_sts_ttl or max_sts_ttl (or the ttl parameter), or raise the IAM \
             role's MaxSessionDuration"
                .to_string()
        }
        "ValidationError" | "ValidationException" if text.contains("rolearn") || text.contains("arn") => {
            "role ARNs take the form arn:<partition>:iam::<account-id>:role/<name>".to_string()
        }
        _ if e.retry == Retry::Throttled && e.gave_up.is_some() => {
            "AWS kept throttling: something else may be using the account's quota, or a cap \
             (iam_write_rate, iam_read_rate, sts_rate in config/root) is above what it allows; \
             lower or remove the cap, or raise retry_deadline"
                .to_string()
        }
        _ => return None,
    };
    Some(h)
}

/// Classifies what an SDK call of `op` returned.
pub fn classify<E>(op: &'static str, err: &SdkError<E, HttpResponse>) -> AwsCallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    // With a `role_arn` in config/root, every call first assumes that role through the SDK's
    // credentials provider; the provider's failure arrives wrapped as this call's dispatch
    // failure. Classified as the AssumeRole refusal it is, it gets AssumeRole's hint (and a
    // refusal is not mistaken for AWS being unreachable).
    if !matches!(err, SdkError::ServiceError(_))
        && let Some(assume) = find_in_chain::<SdkError<AssumeRoleError, HttpResponse>>(err)
    {
        return classify("AssumeRole", assume);
    }
    let unavailable = |text: String, retry| AwsCallError {
        op,
        code: None,
        text,
        failure: AwsFailure::Unavailable,
        retry,
        gave_up: None,
    };
    match err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let code = inner.code().map(str::to_string);
            let message = inner.message().unwrap_or("").to_string();
            let status = service.raw().status().as_u16();
            let throttled = code.as_deref().is_some_and(|c| THROTTLING_CODES.contains(&c)) || status == 429;
            let (failure, retry) = if throttled {
                (AwsFailure::Unavailable, Retry::Throttled)
            } else if status >= 500 {
                (AwsFailure::Unavailable, Retry::Transient)
            } else {
                (AwsFailure::Rejected, Retry::Never)
            };
            let text = match (&code, message.is_empty()) {
                (Some(c), false) => format!("{c}: {message}"),
                (Some(c), true) => c.clone(),
                (None, _) => format!("AWS answered with status {status}"),
            };
            AwsCallError { op, code, text, failure, retry, gave_up: None }
        }
        SdkError::TimeoutError(_) => unavailable("the AWS call timed out".into(), Retry::Transient),
        SdkError::DispatchFailure(d) => {
            // A connection cut off midway may have carried the call to AWS: its outcome is
            // unknown. Only a request the SDK could not even send is a plain refusal.
            let retry = if d.is_user() { Retry::Never } else { Retry::Transient };
            unavailable(format!("could not reach AWS: {}", describe_chain(err)), retry)
        }
        SdkError::ResponseError(_) => {
            unavailable("AWS sent a response that could not be read".into(), Retry::Transient)
        }
        SdkError::ConstructionFailure(_) => AwsCallError {
            op,
            code: None,
            text: format!("could not build the AWS request: {}", describe_chain(err)),
            failure: AwsFailure::Rejected,
            retry: Retry::Never,
            gave_up: None,
        },
        _ => unavailable(describe_chain(err), Retry::Transient),
    }
}

/// The first error of type `T` among `err`'s sources.
fn find_in_chain<'e, T: std::error::Error + 'static>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref::<T>() {
            return Some(found);
        }
        source = s.source();
    }
    None
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
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_iam::operation::create_user::CreateUserError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: &str, message: &str, status: u16) -> SdkError<CreateUserError, HttpResponse> {
        let err = CreateUserError::generic(ErrorMetadata::builder().code(code).message(message).build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn refusals_are_the_callers_problem_and_say_why() {
        let e = classify("CreateUser", &service_error("AccessDenied", "User: x is not authorized", 403));
        assert_eq!(e.failure, AwsFailure::Rejected);
        assert_eq!(e.retry, Retry::Never);
        assert!(e.is_code("AccessDenied"));
        match e.with_prefix("Error creating IAM user") {
            EngineError::Aws { context, source } => {
                assert_eq!(
                    format!("{context}: {source}"),
                    "Error creating IAM user: AccessDenied: User: x is not authorized (AWS operation \
                     CreateUser; hint: the credentials in config/root need the iam:CreateUser permission)"
                );
                assert_eq!(source.failure, AwsFailure::Rejected);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn throttling_and_server_faults_are_aws_trouble() {
        let t = classify("CreateUser", &service_error("Throttling", "Rate exceeded", 400));
        assert_eq!((t.failure, t.retry), (AwsFailure::Unavailable, Retry::Throttled));
        let s = classify("CreateUser", &service_error("ServiceFailure", "oops", 500));
        assert_eq!((s.failure, s.retry), (AwsFailure::Unavailable, Retry::Transient));
        assert!(s.outcome_unknown());
        assert_eq!(classify("X", &service_error("Whatever", "busy", 429)).retry, Retry::Throttled);
        // IAM's quota error is not throttling: waiting does not lift it.
        let q = classify("CreateAccessKey", &service_error("LimitExceeded", "Cannot exceed quota", 409));
        assert_eq!((q.failure, q.retry), (AwsFailure::Rejected, Retry::Never));
        assert!(q.to_string().contains("two access keys"), "{q}");
    }

    #[test]
    fn hints_for_the_common_causes() {
        let cases = [
            ("AssumeRole", "AccessDenied", "not authorized to perform: sts:AssumeRole", "trust policy"),
            (
                "AssumeRole",
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                "MaxSessionDuration",
            ),
            ("PutUserPolicy", "LimitExceeded", "Maximum policy size of 2048 bytes exceeded", "size limit"),
            ("GetFederationToken", "PackedPolicyTooLarge", "too large", "managed policies"),
            ("GetCallerIdentity", "InvalidClientTokenId", "invalid", "access_key"),
            ("AttachUserPolicy", "NoSuchEntity", "Policy arn:x does not exist", "policy_arns"),
        ];
        for (op, code, message, wanted) in cases {
            let e = classify(op, &service_error(code, message, 400));
            let text = e.to_string();
            assert!(text.contains(wanted), "{op}/{code}: {text}");
            assert!(text.contains(&format!("AWS operation {op}")), "{text}");
        }
        // A refused AssumeRole of config/root's role_arn, as the credentials provider reports it
        // through the call it was resolving credentials for.
        let refused = AssumeRoleError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("not authorized to perform: sts:AssumeRole")
                .build(),
        );
        let raw = HttpResponse::new(StatusCode::try_from(403).unwrap(), SdkBody::empty());
        let provider = CredentialsError::provider_error(SdkError::service_error(refused, raw));
        let wrapped: SdkError<CreateUserError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::other(Box::new(provider), None));
        let e = classify("CreateUser", &wrapped);
        assert_eq!((e.op, e.failure, e.retry), ("AssumeRole", AwsFailure::Rejected, Retry::Never));
        assert!(e.to_string().contains("trust policy"), "{e}");
        let plain = classify("GetUser", &service_error("NoSuchEntity", "no user", 404));
        assert_eq!(plain.to_string(), "NoSuchEntity: no user (AWS operation GetUser)");
    }
}
