//! The seam between the engine and AWS: how the engine gets a mount's [`AwsClients`].
//!
//! The engine holds a [`ClientFactory`]. In production it is [`ClientFactory::aws`], which
//! builds the SDK clients from the mount's root config exactly as before (region, endpoints,
//! credentials, an assumed root role, timeouts, the SDK's retries off). A test gives the
//! factory an HTTP client of its own ([`ClientFactory::over`]): everything is built the same
//! way, and only the last hop, the bytes on the wire, is answered in process.
//!
//! Why the seam sits at the HTTP client, rather than behind a trait or aws-smithy-mocks:
//! - A hand-written trait over IAM and STS would restate the SDK's surface (some thirty
//!   operations, each with its builder, output and error types) and put it between every call
//!   site and the SDK. The fake behind it would skip what most needs testing: how the SDK
//!   turns AWS's answers into errors, and how `aws_error::classify` and the pacer's retries
//!   read those errors (status, error code, a connection cut after the request left).
//! - aws-smithy-mocks (0.3, compatible with the SDK versions we lock) answers at the
//!   interceptor level, rule by rule and operation by operation, with a typed output, a typed
//!   error or an HTTP response. It cannot cut a connection (an SDK dispatch failure), which is
//!   the "outcome unknown" case that `iam_user` and `keys` reconcile; a stateful IAM (a user
//!   exists until it is deleted, so a teardown lists what a mint made) would still need a
//!   computed rule per operation; and it needs the `test-util` feature of the service crates,
//!   one more build of the SDK.
//! - An HTTP client is the SDK's own extension point (`aws-smithy-runtime-api`, already a
//!   dependency; the same trait the SDK's `test-util` clients implement). Behind it a small
//!   in-memory IAM answers IAM's query protocol with the XML AWS sends, so the real request
//!   building, response parsing, error classification, pacing and retries all run in the
//!   tests, and a fault is exactly what AWS or the network would produce: a throttling answer,
//!   a 5xx, a refusal, or a connection lost after the call was carried out.

use std::sync::Arc;

use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::clients::{self, AwsClients};
use crate::config::{RootConfig, RootSecrets};
use crate::error::Result;
use crate::pace::Pacer;

/// Builds a mount's AWS clients; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct ClientFactory {
    /// Where requests go; `None`: the SDK's own HTTPS client, to AWS.
    http: Option<SharedHttpClient>,
}

impl ClientFactory {
    /// The production factory: requests go to AWS.
    pub fn aws() -> Self {
        ClientFactory { http: None }
    }

    /// A factory whose clients send every request to `http` (a test's in-process AWS).
    pub fn over(http: SharedHttpClient) -> Self {
        ClientFactory { http: Some(http) }
    }

    /// The clients for a config, paced by `pacer`. Nothing is called yet.
    pub async fn build(
        &self,
        cfg: &RootConfig,
        secrets: &RootSecrets,
        pacer: Arc<Pacer>,
    ) -> Result<AwsClients> {
        clients::build_over(cfg, secrets, pacer, self.http.clone()).await
    }
}
