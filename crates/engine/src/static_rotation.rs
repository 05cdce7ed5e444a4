//! Rotation of static roles' keys: on their schedule, and the first key of a new role.
//!
//! Order: check the user is still the one the role was made for, delete keys left over from
//! earlier rotations, make room if the user holds two keys (only by deleting keymint's own
//! current key), CreateAccessKey (listed as stale at once), store the new key sealed with its
//! expiration in the transaction that moves the schedule on, then delete the previous key.

use keymint_store::rotation::{self as rot, Release, static_role_target};
use keymint_store::static_roles::{self as rows, secret_identity};
use secrecy::ExposeSecret;
use tracing::{info, warn};

use crate::error::{EngineError, Result};
use crate::keys::{StaleKey, create_key, delete_key, list_keys, parse_stale, stale_json};
use crate::rotation::{CLEANUP_RETRY, Claim, ms};
use crate::static_roles::{StaticRole, corrupt, invalid_user, user_id};
use crate::{Engine, MountCtx};

impl Engine {
    /// The scheduled rotation of a claimed static role, or the cleanup of its old keys (also
    /// of a role deleted or never finished).
    pub(crate) async fn scheduled_static_rotation(
        &self,
        mount: &MountCtx,
        name: &str,
        claim: &Claim,
    ) -> Result<Release> {
        let target = static_role_target(name);
        let state = rot::get(self.store.pool(), &mount.id, &target)
            .await?
            .ok_or_else(|| EngineError::Unexpected("the static role's rotation row disappeared".into()))?;
        let mut stale = parse_stale(&state.stale_keys);
        let (clients, _) = self.clients(mount).await?;
        let Some(row) = rows::get(self.store.pool(), &mount.id, name).await? else {
            for f in self.delete_stale(&clients, claim, &mut stale, None).await {
                warn!(mount.path = %mount.path, static_role = name, error = %f, "could not delete an access key of a deleted static role; will retry");
            }
            if stale.is_empty() {
                rot::delete(self.store.pool(), &mount.id, &target).await?;
                return Ok(Release::default());
            }
            return Ok(Release {
                retry_at: Some(self.now_ms() + ms(CLEANUP_RETRY * 6)),
                ..Release::default()
            });
        };
        let role: StaticRole = serde_json::from_str(&row.body).map_err(corrupt)?;
        let due = state.next_due.is_none_or(|d| d <= self.now_ms()) || row.access_key.is_none();
        if !due {
            for f in self.delete_stale(&clients, claim, &mut stale, row.access_key.as_deref()).await {
                warn!(mount.path = %mount.path, static_role = name, error = %f, "could not delete an old access key; will retry");
            }
            let retry_at = (!stale.is_empty()).then(|| self.now_ms() + ms(CLEANUP_RETRY * 6));
            return Ok(Release { retry_at, ..Release::default() });
        }
        let result = self.rotate_static_claimed(mount, name, &role, claim, &mut stale).await;
        match &result {
            Ok(()) => info!(mount.path = %mount.path, static_role = name, "static role rotated"),
            Err(e) => {
                warn!(mount.path = %mount.path, static_role = name, error = %e, "static role rotation failed; the current key stays")
            }
        }
        Ok(self.after_attempt(&result, state.attempts, !stale.is_empty()))
    }

    /// Makes a new key for the role's user, stores it as current and deletes the previous one.
    pub(crate) async fn rotate_static_claimed(
        &self,
        mount: &MountCtx,
        name: &str,
        role: &StaticRole,
        claim: &Claim,
        stale: &mut Vec<StaleKey>,
    ) -> Result<()> {
        let (clients, _) = self.clients(mount).await?;
        let user = role.username.as_str();
        let id = user_id(&clients, user).await.map_err(|e| invalid_user(user, &e))?;
        if id != role.id {
            return Err(EngineError::RotationFailed(format!(
                "IAM user {user:?} is not the user static role {name:?} was made for (its ID is {id:?}, not {:?})",
                role.id
            )));
        }
        let current = rows::get(self.store.pool(), &mount.id, name).await?.and_then(|r| r.access_key);
        for f in self.delete_stale(&clients, claim, stale, current.as_deref()).await {
            warn!(mount.path = %mount.path, static_role = name, error = %f, "could not delete an old access key");
        }

        let mut known = list_keys(&clients, user).await.map_err(|source| EngineError::AwsStep {
            context: format!("unable to list access keys of user {user:?}"),
            source,
        })?;
        let mut previous = current.filter(|c| known.contains(c));
        let mut made_room = false;
        if known.len() >= 2 {
            // IAM allows two keys: only keymint's own may make room.
            let Some(ours) = previous.take() else {
                return Err(EngineError::KeySlotsFull {
                    user: user.to_string(),
                    role: name.to_string(),
                    keys: known,
                });
            };
            delete_key(&clients, user, &ours).await.map_err(|source| EngineError::AwsStep {
                context: format!("unable to delete access key {ours}"),
                source,
            })?;
            known.retain(|k| k != &ours);
            made_room = true;
        }

        // Listed before it is sent, as for the root key: a replica that dies before recording
        // the new key's id leaves the taker-over enough to find and delete it.
        let creating = stale.len();
        stale.push(StaleKey::creating(user.to_string(), &known));
        if !self.save_stale(claim, stale, true).await.unwrap_or(false) {
            stale.remove(creating);
            return Err(EngineError::RotationFailed("lost the claim on the static role's rotation".into()));
        }
        let new = match create_key(&clients, None, user, &known).await {
            Ok(new) => new,
            Err(e) => {
                if !e.outcome_unknown() {
                    stale.remove(creating);
                    if let Err(se) = self.save_stale(claim, stale, false).await {
                        warn!(error = %se, "could not record a failed key creation; the cleanup will look again");
                    }
                }
                if made_room {
                    // The stored key is gone in AWS: readers get a 404 until the retry, not a
                    // key that does not work. (Until now they kept the old key for the second
                    // the new one takes, as in Vault.)
                    rows::clear_key(self.store.pool(), &mount.id, name).await?;
                }
                return Err(EngineError::AwsStep {
                    context: format!("unable to create access key for user {user:?}"),
                    source: e,
                });
            }
        };
        stale[creating] = StaleKey::new(user.to_string(), new.id.clone());
        if !self.save_stale(claim, stale, true).await.unwrap_or(false) {
            self.discard_new_key(&clients, claim, stale, user, &new.id).await;
            return Err(EngineError::RotationFailed("lost the claim on the static role's rotation".into()));
        }

        let mut after: Vec<StaleKey> = stale.iter().filter(|k| k.key != new.id).cloned().collect();
        if let Some(old) = &previous {
            after.push(StaleKey::new(user.to_string(), old.clone()));
        }
        let expiration = self.now_ms() + ms(std::time::Duration::from_secs(role.rotation_period));
        let sealed =
            self.store.seal().seal(&secret_identity(&mount.id, name), new.secret.expose_secret().as_bytes());
        let stored = async {
            let mut tx = self.store.begin().await?;
            let ok = rows::set_key(&mut *tx, &mount.id, name, &new.id, &sealed, expiration).await?
                && rot::record_rotation(
                    &mut *tx,
                    &mount.id,
                    &claim.target,
                    &claim.id,
                    Some(expiration),
                    &stale_json(&after),
                    self.now_ms(),
                )
                .await?;
            if ok {
                tx.commit().await.map_err(keymint_store::StoreError::from)?;
            }
            Ok::<bool, EngineError>(ok)
        }
        .await;
        if !matches!(stored, Ok(true)) {
            self.discard_new_key(&clients, claim, stale, user, &new.id).await;
            return Err(stored.err().unwrap_or_else(|| {
                EngineError::RotationFailed(format!(
                    "static role {name:?} was deleted while its key was rotated"
                ))
            }));
        }
        *stale = after;

        if let Some(old) = previous {
            match delete_key(&clients, user, &old).await {
                Ok(_) => {
                    stale.retain(|k| k.key != old);
                    if let Err(e) = self.save_stale(claim, stale, false).await {
                        warn!(error = %e, "could not record the deletion of a static role's old key");
                    }
                }
                Err(e) => warn!(mount.path = %mount.path, static_role = name, access_key = %old, error = %e,
                    "could not delete the static role's old key; will retry"),
            }
        }
        Ok(())
    }
}
