//! Revoking a mount's leases when it is disabled: IAM users are torn down, STS leases are
//! dropped (STS credentials cannot be revoked; they expire on their own).

use keymint_store::leases;
use serde::Deserialize;
use tracing::info;

use crate::error::{EngineError, Result};
use crate::teardown::{self, Teardown};
use crate::{Engine, MountCtx};

/// How long after creation a missing IAM user may still be IAM's eventual consistency.
const CONSISTENCY_WINDOW_MS: i64 = 5 * 60 * 1000;

#[derive(Deserialize)]
struct Internal {
    #[serde(default)]
    username: String,
    #[serde(default)]
    is_sts: bool,
}

impl Engine {
    /// Revokes every lease of the mount, page by page. Stops at the first failure with nothing
    /// lost: leases not yet revoked stay, and the mount stays enabled, so it can be retried.
    pub async fn revoke_mount_leases(&self, mount: &MountCtx) -> Result<()> {
        let pending_intents = leases::count_intents_for_mount(self.store.pool(), &mount.id).await?;
        if pending_intents > 0 {
            return Err(EngineError::bad_request(format!(
                "the mount has {pending_intents} IAM user(s) being created or awaiting cleanup; retry in a few minutes"
            )));
        }
        let mut after = String::new();
        let mut revoked = 0u64;
        loop {
            let page = leases::page_for_mount(self.store.pool(), &mount.id, &after, 100).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for lease in &page {
                let internal: Internal = serde_json::from_str(&lease.internal).map_err(|e| {
                    EngineError::Internal(format!("lease {} has unreadable data: {e}", lease.id))
                })?;
                if !internal.is_sts {
                    let (clients, _) = self.clients(mount).await?;
                    match teardown::delete_user(&clients.iam, &internal.username).await {
                        Ok(Teardown::Deleted) => {}
                        Ok(Teardown::AlreadyGone) => {
                            // Within IAM's consistency window "no such user" may just mean
                            // "not visible yet": forgetting the lease then could lose a user.
                            let age_ms = chrono::Utc::now().timestamp_millis() - lease.issue_time;
                            if age_ms < CONSISTENCY_WINDOW_MS {
                                return Err(EngineError::bad_request(format!(
                                    "lease {} is younger than IAM's consistency window and its user is not visible yet; retry in a few minutes",
                                    lease.id
                                )));
                            }
                        }
                        Err(e) => {
                            return Err(e.with_prefix(&format!("failed to revoke lease {}", lease.id)));
                        }
                    }
                }
                leases::delete(self.store.pool(), &lease.id).await?;
                revoked += 1;
            }
        }
        info!(mount = %mount.path, leases = revoked, "revoked the leases of a disabled mount");
        Ok(())
    }
}
