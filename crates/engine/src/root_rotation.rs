//! Rotation of the root access key: `config/rotate-root`, and the same routine on the
//! schedule of `rotation_period` or `rotation_schedule`.
//!
//! keymint's order is safer than Vault's: GetUser, ListAccessKeys, CreateAccessKey (the
//! creation is listed as stale before it is sent, with the keys the user held, and the new key
//! in its place at once, so a crash from here on cannot forget it), then wait until
//! AWS accepts the new key, store it (only if `config/root` was not rewritten meanwhile, in
//! the transaction that moves the schedule on), drop the cached clients, and only then delete
//! the old key. A new key that never works, or that cannot be stored, is deleted and the old
//! config stays. An old key whose deletion fails stays listed and the background task deletes
//! it. Calls are made with the IAM user's own keys, even when `role_arn` is assumed on top.

use std::time::Duration;

use keymint_store::rotation::{self as rows, Failure, Release};
use tracing::{info, warn};

use crate::aws_error::AwsCallError;
use crate::clients::AwsClients;
use crate::config::{RootConfig, RootSecrets};
use crate::error::{Busy, EngineError, Result};
use crate::keys::{
    StaleKey, create_key, delete_key, list_keys, parse_stale, stale_json, wait_until_accepted,
};
use crate::rotation::{CLEANUP_RETRY, Claim, ms};
use crate::schedule::Schedule;
use crate::{Engine, MountCtx};

/// How long a new root key may take to be accepted by AWS before the rotation gives up.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// What `config/rotate-root` answers.
#[derive(Debug)]
pub struct RootRotation {
    pub access_key: String,
    pub warnings: Vec<String>,
}

fn internal(prefix: &str, e: &AwsCallError) -> EngineError {
    EngineError::AwsStep { context: prefix.to_string(), source: e.clone() }
}

fn no_config() -> EngineError {
    EngineError::NoRootConfig
}

fn check_rotatable(cfg: &RootConfig, secrets: &RootSecrets) -> Result<()> {
    if cfg.access_key.is_empty() || secrets.secret_key.is_none() {
        return Err(EngineError::RootKeyMissing);
    }
    if secrets.session_token.is_some() {
        return Err(EngineError::RootKeyTemporary);
    }
    Ok(())
}

impl Engine {
    /// `config/rotate-root`.
    pub async fn rotate_root(&self, mount: &MountCtx) -> Result<RootRotation> {
        let (cfg, secrets, _) = self.root_config(mount).await?.ok_or_else(no_config)?;
        check_rotatable(&cfg, &secrets)?;
        let Some(claim) = self.claim(&mount.id, rows::ROOT, false).await? else {
            return Err(EngineError::Busy(Busy::RootRotation));
        };
        let row = rows::get(self.store.pool(), &mount.id, rows::ROOT).await;
        let (mut stale, retry_at) = match &row {
            Ok(Some(r)) => (parse_stale(&r.stale_keys), r.retry_at),
            _ => (Vec::new(), None),
        };
        let result = self.holding(&claim, self.rotate_root_claimed(mount, &claim, &mut stale)).await;
        let cleanup = (!stale.is_empty()).then(|| self.now_ms() + ms(CLEANUP_RETRY));
        let release = match &result {
            Ok(_) => Release { retry_at: cleanup, failure: Failure::Clear, ..Release::default() },
            // A failed manual rotation leaves the schedule's own retries as they were.
            Err(_) => {
                Release { retry_at: cleanup.or(retry_at), failure: Failure::Keep, ..Release::default() }
            }
        };
        self.release(&claim, release).await;
        result
    }

    /// The scheduled rotation of a claimed root target, or the cleanup of its old keys.
    pub(crate) async fn scheduled_root_rotation(&self, mount: &MountCtx, claim: &Claim) -> Result<Release> {
        let row = rows::get(self.store.pool(), &mount.id, rows::ROOT)
            .await?
            .ok_or_else(|| EngineError::Unexpected("the root rotation row disappeared".into()))?;
        let mut stale = parse_stale(&row.stale_keys);
        let Some((cfg, secrets, _)) = self.root_config(mount).await? else {
            return Ok(Release { next_due: Some(None), ..Release::default() });
        };
        let schedule = Schedule::of_root(&cfg);
        let now = self.now();
        let due = row.next_due.map(keymint_store::from_millis).filter(|d| *d <= now);
        match (due, &schedule) {
            (Some(due), Some(schedule)) => {
                if let Some(next) = schedule.missed(due, now) {
                    warn!(mount.path = %mount.path, "the scheduled root rotation did not happen within rotation_window; waiting for the next occurrence");
                    return Ok(Release {
                        next_due: Some(next.map(|t| t.timestamp_millis())),
                        retry_at: (!stale.is_empty()).then(|| self.now_ms() + ms(CLEANUP_RETRY)),
                        failure: Failure::Keep,
                    });
                }
                let result = self.rotate_root_claimed(mount, claim, &mut stale).await;
                match &result {
                    Ok(r) => {
                        info!(mount.path = %mount.path, access_key = %r.access_key, "scheduled root rotation done")
                    }
                    Err(e) => {
                        warn!(mount.path = %mount.path, error = %e, "scheduled root rotation failed; the old key stays in use")
                    }
                }
                Ok(self.after_attempt(&result.map(|_| ()), row.attempts, !stale.is_empty()))
            }
            // Due, but the schedule was switched off meanwhile.
            (Some(_), None) => Ok(Release { next_due: Some(None), ..Release::default() }),
            (None, _) => {
                if !stale.is_empty() && secrets.secret_key.is_some() {
                    let base = self.root_user_clients(mount, &cfg, &secrets).await?;
                    for f in self.delete_stale(&base, claim, &mut stale, Some(&cfg.access_key)).await {
                        warn!(mount.path = %mount.path, error = %f, "could not delete a superseded root access key; will retry");
                    }
                }
                let retry = (!stale.is_empty()).then(|| self.now_ms() + ms(CLEANUP_RETRY * 6));
                Ok(Release { retry_at: retry, ..Release::default() })
            }
        }
    }

    /// Clients signing with the IAM user's keys themselves (no role assumed on top).
    async fn root_user_clients(
        &self,
        mount: &MountCtx,
        cfg: &RootConfig,
        secrets: &RootSecrets,
    ) -> Result<AwsClients> {
        let mut base = cfg.clone();
        base.role_arn.clear();
        base.external_id.clear();
        base.role_session_name.clear();
        base.duration = 0;
        self.factory.build(&base, secrets, self.pacer(&mount.id, cfg)).await
    }

    async fn rotate_root_claimed(
        &self,
        mount: &MountCtx,
        claim: &Claim,
        stale: &mut Vec<StaleKey>,
    ) -> Result<RootRotation> {
        let (cfg, secrets, version) = self.root_config(mount).await?.ok_or_else(no_config)?;
        check_rotatable(&cfg, &secrets)?;
        let base = self.root_user_clients(mount, &cfg, &secrets).await?;
        // Leftovers of earlier rotations go first: IAM allows two keys per user.
        for f in self.delete_stale(&base, claim, stale, Some(&cfg.access_key)).await {
            warn!(mount.path = %mount.path, error = %f, "could not delete a superseded root access key");
        }

        let get_user = base.iam.get_user();
        let out = base
            .iam_call("GetUser", || get_user.clone().send())
            .await
            .map_err(|e| internal("error calling GetUser", &e))?;
        let user = out
            .user
            .map(|u| u.user_name)
            .ok_or_else(|| EngineError::Unexpected("error calling GetUser: AWS returned no user".into()))?;
        let known =
            list_keys(&base, &user).await.map_err(|e| internal("error calling ListAccessKeys", &e))?;
        // The creation is listed before it is sent: should this replica die before it records
        // the new key's id, the replica that takes the claim over deletes the key it made.
        let creating = stale.len();
        stale.push(StaleKey::creating(user.clone(), &known));
        if !self.save_stale(claim, stale, true).await.unwrap_or(false) {
            stale.remove(creating);
            return Err(EngineError::RotationFailed("lost the claim on the root key rotation".into()));
        }
        let new = match create_key(&base, None, &user, &known).await {
            Ok(new) => new,
            Err(e) => {
                if !e.outcome_unknown() {
                    // Nothing was made; a key made by a call whose answer was lost would stay
                    // listed for the cleanup.
                    stale.remove(creating);
                    if let Err(se) = self.save_stale(claim, stale, false).await {
                        warn!(error = %se, "could not record a failed key creation; the cleanup will look again");
                    }
                }
                return Err(internal("error calling CreateAccessKey", &e));
            }
        };

        stale[creating] = StaleKey::new(user.clone(), new.id.clone());
        if !self.save_stale(claim, stale, true).await.unwrap_or(false) {
            self.discard_new_key(&base, claim, stale, &user, &new.id).await;
            return Err(EngineError::RotationFailed(
                "lost the claim on the root key rotation; the new key was deleted".into(),
            ));
        }
        // Asked through config/rotate-root: ends before the request's limit, so the new key
        // is deleted and the old config kept, and the caller is told, instead of a cut.
        let verify_for = keymint_common::deadline::cap(VERIFY_TIMEOUT, crate::iam_user::ANSWER_MARGIN);
        if let Err(why) = wait_until_accepted(&base, &new, verify_for).await {
            self.discard_new_key(&base, claim, stale, &user, &new.id).await;
            return Err(EngineError::RotationFailed(format!(
                "{why}; the new key was deleted and config/root keeps the old one"
            )));
        }

        let old = cfg.access_key.clone();
        let mut new_cfg = cfg.clone();
        new_cfg.access_key = new.id.clone();
        let new_secrets = RootSecrets { secret_key: Some(new.secret.clone()), session_token: None };
        let mut after: Vec<StaleKey> = stale.iter().filter(|k| k.key != new.id).cloned().collect();
        after.push(StaleKey::new(user.clone(), old.clone()));
        let now = self.now();
        let next_due = Schedule::of_root(&cfg).and_then(|s| s.next_after(now)).map(|t| t.timestamp_millis());
        let stored =
            self.store_rotated_root(mount, claim, &new_cfg, &new_secrets, version, next_due, &after).await;
        match stored {
            Ok(true) => {}
            Ok(false) => {
                self.discard_new_key(&base, claim, stale, &user, &new.id).await;
                return Err(EngineError::Busy(Busy::ConfigRootWrittenDuringRotation));
            }
            Err(e) => {
                self.discard_new_key(&base, claim, stale, &user, &new.id).await;
                return Err(e);
            }
        }
        *stale = after;
        self.clients.forget(&mount.id);
        info!(mount.path = %mount.path, access_key = %new.id, old_access_key = %old, "root access key rotated");

        let mut warnings = Vec::new();
        match delete_key(&base, &user, &old).await {
            Ok(_) => {
                stale.retain(|k| k.key != old);
                if let Err(e) = self.save_stale(claim, stale, false).await {
                    warn!(error = %e, "could not record the deletion of the old root key; it will be looked up again");
                }
            }
            Err(e) => {
                warn!(mount.path = %mount.path, access_key = %old, error = %e, "could not delete the old root access key; will retry");
                warnings.push(format!(
                    "the old access key {old} could not be deleted yet ({e}); keymint keeps trying in the background"
                ));
            }
        }
        Ok(RootRotation { access_key: new.id, warnings })
    }

    /// Stores the rotated config if it is still at `version`, with the rotation's schedule and
    /// stale keys, in one transaction. False when config/root changed or the claim was lost.
    #[allow(clippy::too_many_arguments)]
    async fn store_rotated_root(
        &self,
        mount: &MountCtx,
        claim: &Claim,
        cfg: &RootConfig,
        secrets: &RootSecrets,
        version: i64,
        next_due: Option<i64>,
        stale: &[StaleKey],
    ) -> Result<bool> {
        let row = self.root_row(mount, cfg, secrets, Some(version))?;
        let mut tx = self.store.begin().await?;
        let ok = keymint_store::aws::put_config_if(&mut *tx, &mount.id, crate::ROOT, &row, Some(version))
            .await?
            && rows::record_rotation(
                &mut *tx,
                &mount.id,
                rows::ROOT,
                &claim.id,
                next_due,
                &stale_json(stale),
                self.now_ms(),
            )
            .await?;
        if ok {
            tx.commit().await.map_err(keymint_store::StoreError::from)?;
        }
        Ok(ok)
    }
}
