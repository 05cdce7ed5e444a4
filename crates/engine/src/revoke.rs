//! The engine's side of revocation: what undoing a lease means in AWS.

use std::time::Duration;

use keymint_lease::{CredentialKind, RevokeError};
use keymint_store::wal::IntentRow;
use serde::Deserialize;
use tracing::warn;

use crate::teardown::{self, Teardown};
use crate::{Engine, EngineError, MountCtx};

/// How long after creation a missing IAM user may still be IAM's eventual consistency rather
/// than a deleted user (Vault uses five minutes).
pub const DEFAULT_CONSISTENCY_WINDOW: Duration = Duration::from_secs(5 * 60);

#[derive(Deserialize)]
struct IntentData {
    user_name: String,
}

/// Why a revocation failed, as the lease manager records and shows it: keymint's own
/// failures are told only as such, their detail goes to the log. A store error stays one, so
/// a request is told that the database did not answer rather than that the revocation failed.
fn reason(e: impl Into<EngineError>) -> RevokeError {
    match e.into() {
        EngineError::Store(e) => {
            warn!(error = %e, "revocation could not read what it needs");
            RevokeError::Store(e)
        }
        e @ (EngineError::Encode { .. } | EngineError::Wal { .. } | EngineError::Unexpected(_)) => {
            warn!(error = %e, "revocation could not read what it needs");
            RevokeError::Failed("internal error".into())
        }
        e => RevokeError::Failed(e.to_string()),
    }
}

impl Engine {
    async fn aws_for_mount(&self, mount_id: &str) -> Result<std::sync::Arc<crate::AwsClients>, RevokeError> {
        let mount = keymint_store::mounts::get_by_id(self.store.pool(), mount_id)
            .await
            .map_err(reason)?
            .ok_or_else(|| format!("mount {mount_id} no longer exists"))?;
        let ctx = MountCtx { id: mount.id, path: mount.path, ttls: Default::default() };
        let (clients, _) = self.clients(&ctx).await.map_err(reason)?;
        Ok(clients)
    }
}

#[async_trait::async_trait]
impl keymint_lease::Revoker for Engine {
    async fn undo_intent(&self, intent: &IntentRow) -> Result<(), String> {
        if intent.kind != CredentialKind::IamUser.as_str() {
            return Err(format!("unknown type to rollback: {}", intent.kind));
        }
        let data: IntentData =
            serde_json::from_str(&intent.data).map_err(|e| format!("intent data is unreadable: {e}"))?;
        let aws = self.aws_for_mount(&intent.mount_id).await.map_err(|e| e.to_string())?;
        // Past the grace period, "no such user" is the truth: the creation never happened or
        // was already undone.
        Box::pin(teardown::delete_user(&aws, &data.user_name)).await.map(|_| ()).map_err(|e| e.to_string())
    }

    async fn revoke(&self, lease: &keymint_lease::Lease) -> Result<(), RevokeError> {
        let internal = &lease.record;
        // STS credentials cannot be revoked; they end at their expiry.
        if internal.is_sts {
            return Ok(());
        }
        if internal.username.is_empty() {
            return Err("secret is missing username internal data".into());
        }
        let aws = self.aws_for_mount(&lease.mount_id).await?;
        match Box::pin(teardown::delete_user(&aws, &internal.username)).await {
            Ok(Teardown::Deleted) => Ok(()),
            Ok(Teardown::AlreadyGone) => {
                let age = self.now_ms() - lease.issue_time;
                if age < self.consistency_window.as_millis() as i64 {
                    // Forgetting the lease now could lose a user IAM has not shown yet.
                    Err(RevokeError::Failed(format!(
                        "IAM user {} is not visible yet; it may be IAM's eventual consistency",
                        internal.username
                    )))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(RevokeError::Failed(e.to_string())),
        }
    }
}
