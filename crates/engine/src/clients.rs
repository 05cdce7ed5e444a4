//! AWS clients for a mount, built from its root config and cached until the config changes.
//!
//! Credentials: static keys (with an optional session token) or the default AWS chain; a
//! configured `role_arn` is then assumed on top of those for every call. The STS client is
//! chosen among the configured endpoint and its fallbacks by pinging GetCallerIdentity, as
//! Vault does. With no `sts_endpoint`, the SDK's endpoint rules pick the regional endpoint of
//! the region's partition (`sts.cn-north-1.amazonaws.com.cn`, `sts.us-gov-west-1.amazonaws.com`),
//! never a hard-coded global one; IAM's endpoint follows the partition the same way.
//!
//! Every call goes through the mount's [`Pacer`]: the SDK's own retries are off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::aws_error::AwsCallError;
use crate::config::{RootConfig, RootSecrets};
use crate::error::{EngineError, Result};
use crate::pace::{Op, Pacer, Prepaid};

/// The clients of one mount at one config version.
#[derive(Debug)]
pub struct AwsClients {
    pub iam: aws_sdk_iam::Client,
    sts_candidates: Vec<aws_sdk_sts::Client>,
    sts: OnceCell<aws_sdk_sts::Client>,
    pacer: Arc<Pacer>,
}

/// Who the configured credentials are, from GetCallerIdentity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

impl AwsClients {
    /// Runs one IAM call (`call` sends it) under the mount's pacing and retry rules.
    pub async fn iam_call<T, E, F, Fut>(&self, op: &'static str, call: F) -> Result<T, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.pacer.run(Op::iam(op), call).await
    }

    /// Admits a request that will make `cost` IAM writes, `op` first (see [`Prepaid`]).
    pub async fn admit_iam_writes(&self, op: &'static str, cost: u32) -> Result<Prepaid, AwsCallError> {
        self.pacer.admit(Op::iam(op), cost).await
    }

    /// [`AwsClients::iam_call`] on a slot paid at admission.
    pub async fn iam_call_paid<T, E, F, Fut>(
        &self,
        prepaid: &Prepaid,
        op: &'static str,
        call: F,
    ) -> Result<T, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.pacer.run_paid(Op::iam(op), Some(prepaid), call).await
    }

    /// Runs one STS call under the mount's pacing and retry rules.
    pub async fn sts_call<T, E, F, Fut>(&self, op: &'static str, call: F) -> Result<T, AwsCallError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.pacer.run(Op::sts(op), call).await
    }

    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    /// The first STS candidate that answers GetCallerIdentity, remembered once found.
    pub async fn sts(&self) -> Result<&aws_sdk_sts::Client> {
        self.sts
            .get_or_try_init(|| async {
                let mut last = String::new();
                for client in &self.sts_candidates {
                    match self.sts_call("GetCallerIdentity", || client.get_caller_identity().send()).await {
                        Ok(_) => return Ok(client.clone()),
                        Err(e) => last = e.to_string(),
                    }
                }
                Err(EngineError::bad_request(format!("could not obtain sts client: {last}")))
            })
            .await
    }

    /// An STS client like the selected one, but signing with other credentials: the probe
    /// that tells whether a freshly minted key works yet.
    pub async fn sts_as(&self, creds: Credentials) -> Result<aws_sdk_sts::Client> {
        let base = self.sts().await?;
        let conf = base.config().to_builder().credentials_provider(SharedCredentialsProvider::new(creds));
        Ok(aws_sdk_sts::Client::from_conf(conf.build()))
    }

    /// GetCallerIdentity through the first working STS endpoint: checks the credentials and
    /// tells the operator which account and principal keymint acts as.
    pub async fn caller_identity(&self) -> Result<CallerIdentity> {
        let mut last = None;
        for client in &self.sts_candidates {
            match self.sts_call("GetCallerIdentity", || client.get_caller_identity().send()).await {
                Ok(out) => {
                    let _ = self.sts.set(client.clone());
                    return Ok(CallerIdentity {
                        account: out.account.unwrap_or_default(),
                        arn: out.arn.unwrap_or_default(),
                        user_id: out.user_id.unwrap_or_default(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => e.with_prefix("error verifying the root credentials with GetCallerIdentity"),
            None => EngineError::Internal("no STS endpoint configured".into()),
        })
    }
}

fn region_of(cfg: &RootConfig) -> String {
    if !cfg.region.is_empty() {
        return cfg.region.clone();
    }
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return v;
        }
    }
    "us-east-1".to_string()
}

/// Every AWS call ends within `call_timeout`, connection included: a slow AWS never holds a
/// request (or anything it holds) longer than that per attempt.
fn timeouts(cfg: &RootConfig) -> TimeoutConfig {
    let call = Duration::from_secs(cfg.call_timeout.max(1));
    TimeoutConfig::builder()
        .connect_timeout(call.min(Duration::from_secs(5)))
        .operation_attempt_timeout(call)
        .operation_timeout(call)
        .build()
}

async fn base_config(
    cfg: &RootConfig,
    secrets: &RootSecrets,
    region: &str,
    http: Option<SharedHttpClient>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeouts(cfg));
    if let Some(http) = http {
        loader = loader.http_client(http);
    }
    if let Some(secret) = &secrets.secret_key {
        let creds = Credentials::new(
            cfg.access_key.clone(),
            secret.expose_secret().to_string(),
            secrets.session_token.as_ref().map(|t| t.expose_secret().to_string()),
            None,
            "keymint-config-root",
        );
        loader = loader.credentials_provider(creds);
    }
    loader.load().await
}

/// Builds the clients for a config, paced by `pacer`. Nothing is called yet: the STS candidate
/// is chosen at first use.
pub async fn build(cfg: &RootConfig, secrets: &RootSecrets, pacer: Arc<Pacer>) -> Result<AwsClients> {
    build_over(cfg, secrets, pacer, None).await
}

/// [`build`], sending every request (the root role's AssumeRole included) through `http` when
/// one is given: the seam of [`crate::client_factory`].
pub(crate) async fn build_over(
    cfg: &RootConfig,
    secrets: &RootSecrets,
    pacer: Arc<Pacer>,
    http: Option<SharedHttpClient>,
) -> Result<AwsClients> {
    let region = region_of(cfg);
    let mut shared = base_config(cfg, secrets, &region, http).await;
    if !cfg.role_arn.is_empty() {
        // The credentials provider refreshes the root role's session by itself, out of any
        // request: the SDK's standard retries suit it.
        let mut sts_for_assume = shared.to_builder().retry_config(RetryConfig::standard());
        if !cfg.sts_endpoint.is_empty() {
            sts_for_assume = sts_for_assume.endpoint_url(cfg.sts_endpoint.clone());
            if !cfg.sts_region.is_empty() {
                sts_for_assume = sts_for_assume.region(Region::new(cfg.sts_region.clone()));
            }
        }
        let session_name = if cfg.role_session_name.is_empty() {
            "keymint".to_string()
        } else {
            cfg.role_session_name.clone()
        };
        let mut assume = aws_config::sts::AssumeRoleProvider::builder(cfg.role_arn.clone())
            .session_name(session_name)
            .session_length(Duration::from_secs(if cfg.duration > 0 { cfg.duration } else { 3600 }))
            .configure(&sts_for_assume.build());
        if !cfg.external_id.is_empty() {
            assume = assume.external_id(cfg.external_id.clone());
        }
        let provider = assume.build().await;
        shared = shared.to_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build();
    }

    let mut iam = aws_sdk_iam::config::Builder::from(&shared);
    if !cfg.iam_endpoint.is_empty() {
        iam = iam.endpoint_url(cfg.iam_endpoint.clone());
    }
    let iam = aws_sdk_iam::Client::from_conf(iam.build());

    let sts_candidates = sts_candidates(cfg, &region)?
        .into_iter()
        .map(|(cand_region, endpoint)| {
            let mut b = aws_sdk_sts::config::Builder::from(&shared).region(Region::new(cand_region));
            if let Some(endpoint) = endpoint {
                b = b.endpoint_url(endpoint);
            }
            aws_sdk_sts::Client::from_conf(b.build())
        })
        .collect();
    Ok(AwsClients { iam, sts_candidates, sts: OnceCell::new(), pacer })
}

/// Vault's ordered list of (region, endpoint) STS candidates. `None` as endpoint means the SDK's
/// regional endpoint.
fn sts_candidates(cfg: &RootConfig, region: &str) -> Result<Vec<(String, Option<String>)>> {
    if cfg.sts_endpoint.is_empty() {
        return Ok(vec![(region.to_string(), None)]);
    }
    let mut regions =
        vec![if cfg.sts_region.is_empty() { region.to_string() } else { cfg.sts_region.clone() }];
    let mut endpoints = vec![cfg.sts_endpoint.clone()];
    endpoints.extend(cfg.sts_fallback_endpoints.iter().cloned());
    regions.extend(cfg.sts_fallback_regions.iter().cloned());
    if regions.len() != endpoints.len() {
        return Err(EngineError::bad_request("number of regions does not match number of endpoints"));
    }
    Ok(regions.into_iter().zip(endpoints.into_iter().map(Some)).collect())
}

/// Clients per mount, keyed by the config's version so a write through any replica is seen.
#[derive(Debug, Default)]
pub struct ClientCache {
    entries: Mutex<HashMap<String, (i64, Arc<AwsClients>)>>,
}

impl ClientCache {
    pub fn get(&self, mount_id: &str, version: i64) -> Option<Arc<AwsClients>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(mount_id).filter(|(v, _)| *v == version).map(|(_, c)| c.clone())
    }

    pub fn put(&self, mount_id: &str, version: i64, clients: Arc<AwsClients>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.insert(mount_id.to_string(), (version, clients));
    }

    pub fn forget(&self, mount_id: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(mount_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_candidates_follow_vaults_order() {
        let mut cfg = RootConfig { region: "eu-west-1".into(), ..RootConfig::default() };
        assert_eq!(sts_candidates(&cfg, "eu-west-1").unwrap(), vec![("eu-west-1".into(), None)]);
        cfg.sts_endpoint = "http://a".into();
        cfg.sts_region = "us-west-2".into();
        cfg.sts_fallback_endpoints = vec!["http://b".into()];
        cfg.sts_fallback_regions = vec!["us-east-2".into()];
        assert_eq!(
            sts_candidates(&cfg, "eu-west-1").unwrap(),
            vec![
                ("us-west-2".into(), Some("http://a".into())),
                ("us-east-2".into(), Some("http://b".into()))
            ]
        );
    }

    /// With no `sts_endpoint`, the endpoint follows the region's partition.
    #[test]
    fn default_endpoints_follow_the_partition() {
        use aws_sdk_iam::config::endpoint::{Params as IamParams, ResolveEndpoint as _};
        use aws_sdk_sts::config::endpoint::{Params as StsParams, ResolveEndpoint as _};
        let sts = |region: &str| {
            let params = StsParams::builder().region(region).build().unwrap();
            let resolver = aws_sdk_sts::config::endpoint::DefaultResolver::new();
            futures_util::FutureExt::now_or_never(resolver.resolve_endpoint(&params))
                .unwrap()
                .unwrap()
                .url()
                .to_string()
        };
        let iam = |region: &str| {
            let params = IamParams::builder().region(region).build().unwrap();
            let resolver = aws_sdk_iam::config::endpoint::DefaultResolver::new();
            futures_util::FutureExt::now_or_never(resolver.resolve_endpoint(&params))
                .unwrap()
                .unwrap()
                .url()
                .to_string()
        };
        assert_eq!(sts("eu-west-1"), "https://sts.eu-west-1.amazonaws.com");
        assert_eq!(sts("cn-north-1"), "https://sts.cn-north-1.amazonaws.com.cn");
        assert_eq!(sts("us-gov-west-1"), "https://sts.us-gov-west-1.amazonaws.com");
        assert!(iam("cn-north-1").ends_with(".amazonaws.com.cn"), "{}", iam("cn-north-1"));
        assert!(iam("us-gov-west-1").contains("us-gov"), "{}", iam("us-gov-west-1"));
        assert_eq!(iam("eu-west-1"), "https://iam.amazonaws.com");
    }
}
