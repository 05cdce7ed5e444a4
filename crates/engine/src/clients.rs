//! AWS clients for a mount, built from its root config and cached until the config changes.
//!
//! Credentials: static keys (with an optional session token) or the default AWS chain; a
//! configured `role_arn` is then assumed on top of those for every call. The STS client is
//! chosen among the configured endpoint and its fallbacks by pinging GetCallerIdentity, as
//! Vault does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::aws_error::classify;
use crate::config::{RootConfig, RootSecrets};
use crate::error::{EngineError, Result};

/// The clients of one mount at one config version.
#[derive(Debug)]
pub struct AwsClients {
    pub iam: aws_sdk_iam::Client,
    sts_candidates: Vec<aws_sdk_sts::Client>,
    sts: OnceCell<aws_sdk_sts::Client>,
}

/// Who the configured credentials are, from GetCallerIdentity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
    pub user_id: String,
}

impl AwsClients {
    /// The first STS candidate that answers GetCallerIdentity, remembered once found.
    pub async fn sts(&self) -> Result<&aws_sdk_sts::Client> {
        self.sts
            .get_or_try_init(|| async {
                let mut last = String::new();
                for client in &self.sts_candidates {
                    match client.get_caller_identity().send().await {
                        Ok(_) => return Ok(client.clone()),
                        Err(e) => last = classify(&e).text,
                    }
                }
                Err(EngineError::bad_request(format!("could not obtain sts client: {last}")))
            })
            .await
    }

    /// GetCallerIdentity through the first working STS endpoint: checks the credentials and
    /// tells the operator which account and principal keymint acts as.
    pub async fn caller_identity(&self) -> Result<CallerIdentity> {
        let mut last = None;
        for client in &self.sts_candidates {
            match client.get_caller_identity().send().await {
                Ok(out) => {
                    let _ = self.sts.set(client.clone());
                    return Ok(CallerIdentity {
                        account: out.account.unwrap_or_default(),
                        arn: out.arn.unwrap_or_default(),
                        user_id: out.user_id.unwrap_or_default(),
                    });
                }
                Err(e) => last = Some(classify(&e)),
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

fn retry_config(max_retries: i64) -> RetryConfig {
    if max_retries >= 0 {
        let attempts = u32::try_from(max_retries).unwrap_or(u32::MAX - 1).saturating_add(1);
        RetryConfig::standard().with_max_attempts(attempts)
    } else {
        RetryConfig::standard()
    }
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(120))
        .build()
}

async fn base_config(cfg: &RootConfig, secrets: &RootSecrets, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .retry_config(retry_config(cfg.max_retries))
        .timeout_config(timeouts());
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

/// Builds the clients for a config. Nothing is called yet: the STS candidate is chosen at
/// first use.
pub async fn build(cfg: &RootConfig, secrets: &RootSecrets) -> Result<AwsClients> {
    let region = region_of(cfg);
    let mut shared = base_config(cfg, secrets, &region).await;
    if !cfg.role_arn.is_empty() {
        let mut sts_for_assume = shared.to_builder();
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
    Ok(AwsClients { iam, sts_candidates, sts: OnceCell::new() })
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

    #[test]
    fn retries_map_to_attempts() {
        assert_eq!(retry_config(0).max_attempts(), 1);
        assert_eq!(retry_config(4).max_attempts(), 5);
        assert_eq!(retry_config(-1).max_attempts(), RetryConfig::standard().max_attempts());
    }
}
