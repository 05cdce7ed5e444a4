//! Minting `iam_user` credentials.
//!
//! The ordering is what makes keymint crash-safe: a write-ahead intent naming the user is
//! committed before CreateUser, and the lease row is inserted in the same transaction that
//! deletes the intent. At every instant the user is accounted for by an intent or a lease.
//!
//! The two calls that cannot simply be repeated are reconciled when their answer is lost (a
//! 5xx, a timeout, a connection cut after the request went out):
//! - CreateUser: GetUser tells whether the user was made; if it was not visible, the repeated
//!   CreateUser answers EntityAlreadyExists, and the user's lease tag tells it is ours.
//!   Either way there is one user, and the intent covers it until the lease does.
//! - CreateAccessKey: a key may exist whose secret keymint never saw. Every key of the fresh
//!   user is deleted before a new one is made, and once made, any other key is deleted too,
//!   so the user ends with exactly the one key handed out.

use std::time::Duration;

use aws_sdk_iam::types::Tag as IamTag;
use keymint_common::go::template::Kind;
use keymint_lease::{CredentialKind, LeaseRecord, calculate_ttl, new_lease_id};
use keymint_store::{leases, wal};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::aws_error::{AwsCallError, Retry};
use crate::clients::AwsClients;
use crate::error::{EngineError, Result};
use crate::keys::{self, NewKey};
use crate::mint::{
    CredsRequest, INSTALLATION_TAG, LEASE_TAG, Minted, OWNER_TAG, OWNER_TAG_VALUE, generate_name, new_lease,
    ttl_capped_warning,
};
use crate::pace::Prepaid;
use crate::role::{DEFAULT_USABLE_TIMEOUT, Role};
use crate::teardown::{self, Teardown};
use crate::{Engine, MountCtx};

/// How many times a call whose answer was lost is reconciled and tried again.
const RECONCILE_ATTEMPTS: u32 = 2;

/// What a wait for a usable key leaves of the request's time limit, to answer in.
pub(crate) const ANSWER_MARGIN: Duration = Duration::from_secs(2);

impl Engine {
    pub(crate) async fn mint_iam_user(
        &self,
        mount: &MountCtx,
        role: &Role,
        req: &CredsRequest,
    ) -> Result<Minted> {
        let (clients, cfg) = self.clients(mount).await?;
        let user = generate_name(&cfg.username_template, Kind::Iam, &req.display_name, &req.role_name)?;
        let lease_id = new_lease_id(&mount.path, &Self::request_path(req));

        // Admission: the request's IAM writes are paid for at once, or it is refused before
        // anything is made.
        let writes = 2
            + role.policy_arns.as_ref().map_or(0, Vec::len)
            + usize::from(!role.policy_document.is_empty())
            + role.iam_groups.as_ref().map_or(0, Vec::len)
            + usize::from(role.iam_tags.as_ref().is_some_and(|t| !t.is_empty()));
        let ticket = clients
            .admit_iam_writes("CreateUser", u32::try_from(writes).unwrap_or(u32::MAX))
            .await
            .map_err(|e| e.with_prefix("Error creating IAM user"))?;
        let now = self.now();

        let intent = wal::IntentRow {
            id: uuid::Uuid::new_v4().to_string(),
            mount_id: mount.id.clone(),
            kind: CredentialKind::IamUser.as_str().into(),
            data: json!({"user_name": user, "lease_id": lease_id}).to_string(),
            created_at: now.timestamp_millis(),
        };
        wal::insert(self.store.pool(), &intent).await.map_err(|e| EngineError::Wal {
            context: "error writing WAL entry",
            source: Box::new(e.into()),
        })?;

        if let Err(e) = self.create_user(&clients, &ticket, role, &user, &lease_id).await {
            if e.outcome_unknown() {
                // The user may exist: the intent stays, and the sweeper removes whatever was made.
                warn!(user.name = %user, error = %e, "CreateUser outcome unknown; left to the intent sweeper");
            } else if let Err(del) = wal::delete(self.store.pool(), &intent.id).await {
                warn!(error = %del, "could not drop the intent of a user that was never created; the sweeper will");
            }
            return Err(e.with_prefix("Error creating IAM user"));
        }

        let key = match self.finish_iam_user(&clients, &ticket, role, req, &user).await {
            Ok(keys) => keys,
            Err(err) => {
                self.undo_user(&clients, &user, &intent.id).await;
                return Err(err);
            }
        };

        let lease_cfg = self.lease_config(mount).await?;
        let (cfg_ttl, cfg_max) = lease_cfg.map(|c| (c.lease, c.lease_max)).unwrap_or((0, 0));
        // A role's own TTLs win over config/lease, which is mount-wide.
        let backend_ttl = if role.default_ttl > 0 { role.default_ttl } else { cfg_ttl };
        let backend_max = if role.max_ttl > 0 { role.max_ttl } else { cfg_max };
        let decision = calculate_ttl(backend_ttl, backend_max, mount.ttls);
        // The role's TTLs travel with the lease: renewal must honour them even if the role
        // changes or is deleted meanwhile.
        let record = LeaseRecord {
            username: user.clone(),
            access_key_id: key.id.clone(),
            is_sts: false,
            role_ttl: Some(role.default_ttl),
            role_max_ttl: Some(role.max_ttl),
        };
        let issued = now.timestamp_millis();
        let expires = issued + (decision.ttl as i64) * 1000;
        let lease =
            new_lease(mount, req, lease_id.clone(), CredentialKind::IamUser, (issued, expires), record);
        let row = leases::LeaseRow::from(&lease);
        if let Err(e) = self.commit_lease(&row, Some(&intent.id)).await {
            self.undo_user(&clients, &user, &intent.id).await;
            return Err(EngineError::Wal { context: "failed to commit WAL entry", source: Box::new(e) });
        }

        let mut warnings = Vec::new();
        if let Some(asked) = decision.capped_from {
            warnings.push(ttl_capped_warning(asked, decision.max));
        }
        // The lease is committed first: a caller that gives up while we wait still has its
        // user cleaned up when the lease ends. The wait ends before the request's own time
        // limit: the keys are answered with a warning rather than cut off with the request.
        if req.wait_until_usable.unwrap_or(role.wait_until_usable) {
            let asked = Duration::from_secs(if role.usable_timeout > 0 {
                role.usable_timeout
            } else {
                DEFAULT_USABLE_TIMEOUT
            });
            let timeout = keymint_common::deadline::cap(asked, ANSWER_MARGIN);
            if let Some(w) = wait_until_usable(&clients, &key, timeout).await {
                warnings.push(w);
            }
        }
        let mut data = Map::new();
        data.insert("access_key".into(), json!(key.id));
        data.insert("secret_key".into(), json!(key.secret.expose_secret()));
        data.insert("session_token".into(), Value::Null);
        Ok(Minted {
            lease_id,
            lease_duration: decision.ttl,
            expire_time_ms: row.expire_time,
            renewable: true,
            data,
            warnings,
        })
    }

    /// CreateUser, reconciled when its answer is lost (see the module docs).
    async fn create_user(
        &self,
        clients: &AwsClients,
        ticket: &Prepaid,
        role: &Role,
        user: &str,
        lease_id: &str,
    ) -> Result<(), AwsCallError> {
        let tag = |k: &str, v: &str| IamTag::builder().key(k).value(v).build();
        let mut create = clients.iam.create_user().user_name(user).path(if role.user_path.is_empty() {
            "/"
        } else {
            role.user_path.as_str()
        });
        if !role.permissions_boundary_arn.is_empty() {
            create = create.permissions_boundary(&role.permissions_boundary_arn);
        }
        for (k, v) in [
            (OWNER_TAG, OWNER_TAG_VALUE),
            (LEASE_TAG, lease_id),
            (INSTALLATION_TAG, self.store.installation_id()),
        ] {
            // Invariant: key and value are both set, the only fields the builder requires.
            create = create.tags(tag(k, v).unwrap_or_else(|_| unreachable!()));
        }
        let mut lost = 0;
        loop {
            let err = match clients.iam_call_paid(ticket, "CreateUser", || create.clone().send()).await {
                Ok(_) => return Ok(()),
                Err(e) if lost > 0 && e.is_code("EntityAlreadyExists") => {
                    // The lost CreateUser went through after all, or someone else has the name.
                    match user_is_ours(clients, user, lease_id).await {
                        Ok(Some(true)) => {
                            info!(user.name = user, "lost CreateUser answer: the user was made, carrying on");
                            return Ok(());
                        }
                        _ => e,
                    }
                }
                Err(e) if e.outcome_unknown() && lost < RECONCILE_ATTEMPTS => {
                    lost += 1;
                    match user_is_ours(clients, user, lease_id).await {
                        Ok(Some(true)) => {
                            info!(user.name = user, "lost CreateUser answer: the user was made, carrying on");
                            return Ok(());
                        }
                        // Not there (or not visible yet): ask again; a duplicate is refused by
                        // name and recognised above.
                        Ok(None) => continue,
                        Ok(Some(false)) | Err(_) => e,
                    }
                }
                Err(e) => e,
            };
            // After a lost answer, a user may exist whatever the last call said: the caller
            // must keep the intent, so the sweeper removes it.
            return Err(if lost > 0 { AwsCallError { retry: Retry::Transient, ..err } } else { err });
        }
    }

    /// The steps after CreateUser: policies, groups, tags and the access key. They depend only
    /// on the user, so they run at once rather than one after another as Vault runs them: a
    /// request costs one CreateUser and the slowest step, not the sum of all. Every step is
    /// waited for, failed or not, so nothing is in flight when a failure tears the user down;
    /// the error reported is the first in Vault's order.
    async fn finish_iam_user(
        &self,
        clients: &AwsClients,
        ticket: &Prepaid,
        role: &Role,
        req: &CredsRequest,
        user: &str,
    ) -> Result<NewKey> {
        type Step<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>;
        let iam = &clients.iam;
        let mut steps: Vec<Step<'_>> = Vec::new();
        for arn in role.policy_arns.iter().flatten() {
            let call = iam.attach_user_policy().user_name(user).policy_arn(arn);
            steps.push(Box::pin(async move {
                clients
                    .iam_call_paid(ticket, "AttachUserPolicy", || call.clone().send())
                    .await
                    .map(drop)
                    .map_err(|e| e.with_prefix("Error attaching user policy"))
            }));
        }
        if !role.policy_document.is_empty() {
            let call = iam
                .put_user_policy()
                .user_name(user)
                .policy_name(&req.role_name)
                .policy_document(&role.policy_document);
            steps.push(Box::pin(async move {
                clients
                    .iam_call_paid(ticket, "PutUserPolicy", || call.clone().send())
                    .await
                    .map(drop)
                    .map_err(|e| e.with_prefix("Error putting user policy"))
            }));
        }
        for group in role.iam_groups.iter().flatten() {
            let call = iam.add_user_to_group().user_name(user).group_name(group);
            steps.push(Box::pin(async move {
                clients
                    .iam_call_paid(ticket, "AddUserToGroup", || call.clone().send())
                    .await
                    .map(drop)
                    .map_err(|e| e.with_prefix("Error adding user to group"))
            }));
        }
        if let Some(tags) = role.iam_tags.as_ref().filter(|t| !t.is_empty()) {
            let mut call = iam.tag_user().user_name(user);
            for (k, v) in tags {
                call = call.tags(
                    IamTag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| EngineError::Unexpected(format!("user tag: {e}")))?,
                );
            }
            steps.push(Box::pin(async move {
                clients
                    .iam_call_paid(ticket, "TagUser", || call.clone().send())
                    .await
                    .map(drop)
                    .map_err(|e| e.with_prefix("Error adding tags to user"))
            }));
        }
        let key = Box::pin(async {
            keys::create_key(clients, Some(ticket), user, &[])
                .await
                .map_err(|e| e.with_prefix("Error creating access keys"))
        });
        let (done, key) = tokio::join!(futures_util::future::join_all(steps), key);
        done.into_iter().collect::<Result<Vec<()>>>()?;
        key
    }

    /// Tears down a half-made user at once; if that fails the intent stays, and the sweeper
    /// finishes the job later.
    async fn undo_user(&self, clients: &AwsClients, user: &str, intent_id: &str) {
        match Box::pin(teardown::delete_user(clients, user)).await {
            Ok(Teardown::Deleted) => {
                if let Err(e) = wal::delete(self.store.pool(), intent_id).await {
                    warn!(user.name = user, error = %e, "user torn down but its intent remains; the sweeper will retire it");
                }
            }
            Ok(Teardown::AlreadyGone) => {
                // Right after CreateUser this can be IAM's eventual consistency: keep the
                // intent so the sweeper checks again after the consistency window.
                warn!(user.name = user, "half-made user not visible yet; left to the intent sweeper");
            }
            Err(e) => {
                warn!(user.name = user, error = %e, "could not tear down a half-made user; left to the intent sweeper");
            }
        }
    }
}

/// Whether `user` exists and carries `lease_id` as its lease tag: `None` when IAM does not
/// know the user (yet).
async fn user_is_ours(
    clients: &AwsClients,
    user: &str,
    lease_id: &str,
) -> Result<Option<bool>, AwsCallError> {
    let call = clients.iam.list_user_tags().user_name(user);
    match clients.iam_call("ListUserTags", || call.clone().send()).await {
        Ok(out) => Ok(Some(out.tags.iter().any(|t| t.key == LEASE_TAG && t.value == lease_id))),
        Err(e) if e.is_code("NoSuchEntity") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Polls GetCallerIdentity with the new key until AWS accepts it, or `timeout` passes; then
/// the warning to return with the key.
async fn wait_until_usable(clients: &AwsClients, key: &NewKey, timeout: Duration) -> Option<String> {
    keys::wait_until_accepted(clients, key, timeout)
        .await
        .err()
        .map(|why| format!("{why}; it may need a few more seconds"))
}
