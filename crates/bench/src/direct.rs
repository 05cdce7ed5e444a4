//! The floor keymint is compared to: the same AWS calls keymint makes, made directly with
//! the SDK, set up as keymint sets up its own clients (no SDK retries, 20 s per call).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use aws_sdk_iam::config::retry::RetryConfig;
use aws_sdk_iam::config::timeout::TimeoutConfig;
use aws_sdk_iam::config::{BehaviorVersion, Region};

use crate::setup::{Fixtures, POLICY, TAGS, USER_ROLE};

/// The SDK settings keymint uses for its own clients: no SDK retries, 20 s per call.
fn sdk_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(20))
        .build()
}

fn bench_credentials() -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new("bench-root", "bench-root-secret", None, None, "keymint-bench")
}

pub fn iam_client(url: &str) -> aws_sdk_iam::Client {
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(bench_credentials())
        .retry_config(RetryConfig::disabled())
        .timeout_config(sdk_timeouts())
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

pub fn sts_client(url: &str) -> aws_sdk_sts::Client {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(bench_credentials())
        .retry_config(RetryConfig::disabled())
        .timeout_config(sdk_timeouts())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// A name no other call of this run uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Turns an SDK error into the message a benchmark reports.
fn failed<E: std::fmt::Debug>(op: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{op}: {e:?}")
}

/// The same calls keymint makes, made directly, one after another, as a client without
/// keymint would.
#[derive(Clone)]
pub struct Direct {
    sts: aws_sdk_sts::Client,
    iam: aws_sdk_iam::Client,
    fixtures: Fixtures,
}

impl Direct {
    pub fn new(url: &str, fixtures: &Fixtures) -> Direct {
        Direct { sts: sts_client(url), iam: iam_client(url), fixtures: fixtures.clone() }
    }

    /// AssumeRole of the fixture role, for an hour (what keymint asks for by default).
    pub async fn assume_role(&self) -> Result<(), String> {
        let session = unique_name("bench-direct");
        let call = self.sts.assume_role().role_arn(&self.fixtures.role_arn).role_session_name(session);
        call.duration_seconds(3600).send().await.map(|_| ()).map_err(|e| format!("AssumeRole: {e:?}"))
    }

    /// CreateUser, PutUserPolicy, AttachUserPolicy for each policy, AddUserToGroup, TagUser,
    /// CreateAccessKey: what keymint does for the `iam_user` role. Returns the user and key.
    pub async fn iam_user(&self) -> Result<(String, String), String> {
        let name = unique_name("bench-direct");
        let iam = &self.iam;
        iam.create_user().user_name(&name).path("/").send().await.map_err(failed("CreateUser"))?;
        for arn in &self.fixtures.policy_arns {
            iam.attach_user_policy()
                .user_name(&name)
                .policy_arn(arn)
                .send()
                .await
                .map_err(failed("AttachUserPolicy"))?;
        }
        let put = iam.put_user_policy().user_name(&name).policy_name(USER_ROLE).policy_document(POLICY);
        put.send().await.map_err(failed("PutUserPolicy"))?;
        let add = iam.add_user_to_group().user_name(&name).group_name(&self.fixtures.group);
        add.send().await.map_err(failed("AddUserToGroup"))?;
        let mut tag = iam.tag_user().user_name(&name);
        for (k, v) in TAGS {
            // Invariant: key and value are both set, the only fields the builder requires.
            tag = tag.tags(
                aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap_or_else(|_| unreachable!()),
            );
        }
        tag.send().await.map_err(failed("TagUser"))?;
        let key = iam.create_access_key().user_name(&name).send().await.map_err(failed("CreateAccessKey"))?;
        let key = key.access_key.map(|k| k.access_key_id).ok_or("CreateAccessKey returned no key")?;
        Ok((name, key))
    }

    /// Undoes [`Direct::iam_user`].
    pub async fn delete_user(&self, name: &str, key: &str) -> Result<()> {
        let iam = &self.iam;
        iam.delete_access_key().user_name(name).access_key_id(key).send().await?;
        for arn in &self.fixtures.policy_arns {
            iam.detach_user_policy().user_name(name).policy_arn(arn).send().await?;
        }
        iam.delete_user_policy().user_name(name).policy_name(USER_ROLE).send().await?;
        iam.remove_user_from_group().user_name(name).group_name(&self.fixtures.group).send().await?;
        iam.delete_user().user_name(name).send().await?;
        Ok(())
    }

    /// Deletes the users made by [`Direct::iam_user`], 8 at a time.
    pub async fn delete_users(&self, users: Vec<(String, String)>) -> Result<()> {
        let users = std::sync::Arc::new(std::sync::Mutex::new(users));
        let mut workers = Vec::new();
        for _ in 0..8 {
            let (direct, users) = (self.clone(), users.clone());
            workers.push(tokio::spawn(async move {
                loop {
                    let next = users.lock().unwrap_or_else(|p| p.into_inner()).pop();
                    let Some((name, key)) = next else { return Ok::<(), anyhow::Error>(()) };
                    direct.delete_user(&name, &key).await?;
                }
            }));
        }
        for w in workers {
            w.await??;
        }
        Ok(())
    }
}
