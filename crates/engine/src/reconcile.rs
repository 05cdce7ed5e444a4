//! The reconciler: IAM users that carry this installation's owner tags for a mount, but that no
//! lease or intent accounts for. They can only come from outside keymint's bookkeeping (a
//! restored database backup, a record dropped by revoke-force, a bug), and would otherwise
//! live forever. Listing is a dry run; removal tears them down.
//!
//! A user whose tags keymint may not read (`AccessDenied` on `ListUserTags`) is skipped and
//! counted, not fatal: a policy that lets keymint read tags only under its own user path (see
//! docs/iam-policy.md) denies every other user of the account, and those are not keymint's.

use chrono::{DateTime, Utc};
use keymint_store::{leases, wal};
use serde::Serialize;

use crate::error::Result;
use crate::mint::{INSTALLATION_TAG, LEASE_TAG, OWNER_TAG, OWNER_TAG_VALUE};
use crate::teardown;
use crate::{Engine, MountCtx};

/// An IAM user keymint made that nothing accounts for.
#[derive(Debug, Clone, Serialize)]
pub struct Stray {
    pub user_name: String,
    pub lease_id: String,
    pub created: String,
}

/// What a search for strays found.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub strays: Vec<Stray>,
    /// Users passed over because AWS refused to show their tags (`AccessDenied`).
    pub skipped_unreadable: u64,
}

/// What a removal did.
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub removed: Vec<Stray>,
    pub failed: Vec<(Stray, String)>,
    /// As in [`Scan`]: users whose tags could not be read, so not considered.
    pub skipped_unreadable: u64,
}

impl Engine {
    /// Finds the mount's stray users. Users younger than the consistency window are left out:
    /// their lease may be committing right now. Users whose tags AWS will not show are counted
    /// in [`Scan::skipped_unreadable`] and passed over.
    pub async fn find_strays(&self, mount: &MountCtx) -> Result<Scan> {
        let (clients, _) = self.clients(mount).await?;
        let iam = &clients.iam;
        let cutoff = self.now() - chrono::Duration::from_std(self.consistency_window).unwrap_or_default();
        let mut scan = Scan { strays: Vec::new(), skipped_unreadable: 0 };
        let mut marker = None;
        loop {
            let list = iam.list_users().set_marker(marker.take());
            let page = clients
                .iam_call("ListUsers", || list.clone().send())
                .await
                .map_err(|e| e.with_prefix("Error listing IAM users"))?;
            for user in page.users {
                let created =
                    DateTime::<Utc>::from_timestamp(user.create_date.secs(), 0).unwrap_or_else(|| self.now());
                if created > cutoff {
                    continue;
                }
                let list_tags = iam.list_user_tags().user_name(&user.user_name);
                let tags = match clients.iam_call("ListUserTags", || list_tags.clone().send()).await {
                    Ok(out) => out.tags,
                    // Deleted since the listing: nothing to reconcile.
                    Err(err) if err.is_code("NoSuchEntity") => continue,
                    Err(err) if err.is_code("AccessDenied") => {
                        tracing::debug!(user.name = %user.user_name, "reconcile: tags unreadable, user skipped");
                        scan.skipped_unreadable += 1;
                        continue;
                    }
                    Err(err) => return Err(err.with_prefix("Error listing user tags")),
                };
                let tag = |k: &str| tags.iter().find(|t| t.key == k).map(|t| t.value.clone());
                let ours = tag(OWNER_TAG).as_deref() == Some(OWNER_TAG_VALUE)
                    && tag(INSTALLATION_TAG).as_deref() == Some(self.store.installation_id());
                let Some(lease_id) = tag(LEASE_TAG).filter(|l| ours && l.starts_with(&mount.path)) else {
                    continue;
                };
                if leases::get(self.store.pool(), &lease_id).await?.is_some()
                    || wal::exists_for_user(self.store.pool(), &mount.id, &user.user_name).await?
                {
                    continue;
                }
                scan.strays.push(Stray {
                    user_name: user.user_name,
                    lease_id,
                    created: created.to_rfc3339(),
                });
            }
            match (page.is_truncated, page.marker) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        if scan.skipped_unreadable > 0 {
            tracing::info!(
                mount.path = %mount.path,
                skipped_unreadable = scan.skipped_unreadable,
                "reconcile skipped users whose tags keymint may not read"
            );
        }
        Ok(scan)
    }

    /// Tears down the mount's stray users, going on past failures.
    pub async fn remove_strays(&self, mount: &MountCtx) -> Result<Removal> {
        let scan = self.find_strays(mount).await?;
        let (clients, _) = self.clients(mount).await?;
        let mut removal =
            Removal { removed: Vec::new(), failed: Vec::new(), skipped_unreadable: scan.skipped_unreadable };
        for stray in scan.strays {
            match teardown::delete_user(&clients, &stray.user_name).await {
                Ok(_) => {
                    tracing::info!(user.name = %stray.user_name, lease.id = %stray.lease_id, "stray IAM user removed");
                    removal.removed.push(stray);
                }
                Err(e) => removal.failed.push((stray, e.to_string())),
            }
        }
        Ok(removal)
    }
}
