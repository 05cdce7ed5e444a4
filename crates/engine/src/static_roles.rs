//! Static roles: an existing IAM user whose access key keymint holds, hands out on
//! `static-creds/:name` and rotates every `rotation_period`, with Vault's fields and texts.
//!
//! keymint deletes only keys it created: every key it makes for a role is listed as stale the
//! moment CreateAccessKey answers, until it is stored as the role's current key, and a
//! replaced key stays listed until its deletion succeeds. When the user already holds the two
//! keys IAM allows, keymint makes room only by deleting its own current key; two keys that are
//! not keymint's make the rotation fail (and retry later) rather than touch them.

use chrono::{DateTime, Utc};
use keymint_store::rotation::{self as rot, Release, static_role_target};
use keymint_store::static_roles::{self as rows, secret_identity};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws_error::AwsCallError;
use crate::clients::AwsClients;
use crate::error::{Busy, EngineError, Result};
use crate::keys::{StaleKey, parse_stale};
use crate::rotation::{CLEANUP_RETRY, Claim, ms};
use crate::schedule::MIN_ROTATION_PERIOD;
use crate::{Engine, MountCtx};

/// A static role as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct StaticRole {
    pub username: String,
    /// The IAM user's immutable `UserId`: a user deleted and made again under the same name is
    /// another user, and is refused.
    pub id: String,
    /// Seconds.
    pub rotation_period: u64,
}

impl StaticRole {
    /// The `data` of a read or write (cross-account fields are Enterprise-only: always empty).
    pub fn to_read_data(&self, name: &str) -> Value {
        json!({
            "name": name,
            "id": self.id,
            "username": self.username,
            "rotation_period": self.rotation_period,
            "assume_role_arn": "",
            "assume_role_session_name": "",
            "external_id": "",
        })
    }
}

/// The fields a write supplied, under their API names (the api crate fills it from the route's
/// schema).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StaticRoleInput {
    pub username: Option<String>,
    pub rotation_period: Option<u64>,
    pub assume_role_arn: Option<String>,
    pub assume_role_session_name: Option<String>,
    pub external_id: Option<String>,
}

/// `static-creds/:name`.
#[derive(Debug)]
pub struct StaticCreds {
    pub access_key: String,
    pub secret_key: SecretString,
    pub expiration: Option<DateTime<Utc>>,
}

pub(crate) fn corrupt(e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(keymint_store::StoreError::Corrupt(format!("static role: {e}")))
}

fn check_period(period: u64) -> Result<()> {
    if period < MIN_ROTATION_PERIOD {
        return Err(EngineError::RotationPeriodTooShort);
    }
    Ok(())
}

/// GetUser: the user's `UserId`.
pub(crate) async fn user_id(clients: &AwsClients, user: &str) -> Result<String, AwsCallError> {
    let call = clients.iam.get_user().user_name(user);
    let out = clients.iam_call("GetUser", || call.clone().send()).await?;
    Ok(out.user.map(|u| u.user_id).unwrap_or_default())
}

pub(crate) fn invalid_user(user: &str, e: &AwsCallError) -> EngineError {
    EngineError::AwsStep { context: format!("unable to validate username {user:?}"), source: e.clone() }
}

impl Engine {
    pub async fn static_role(&self, mount: &MountCtx, name: &str) -> Result<Option<StaticRole>> {
        match rows::get(self.store.pool(), &mount.id, name).await? {
            Some(row) => Ok(Some(serde_json::from_str(&row.body).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    pub async fn list_static_roles(&self, mount: &MountCtx) -> Result<Vec<String>> {
        Ok(rows::list(self.store.pool(), &mount.id).await?)
    }

    /// The role's current key; `None` for no role, or a role whose first key is not made yet.
    pub async fn static_creds(&self, mount: &MountCtx, name: &str) -> Result<Option<StaticCreds>> {
        let Some(row) = rows::get(self.store.pool(), &mount.id, name).await? else { return Ok(None) };
        let (Some(access_key), Some(sealed)) = (row.access_key, row.secret) else { return Ok(None) };
        let plain = self.store.open_sealed(&secret_identity(&mount.id, name), &sealed).await?;
        let secret = String::from_utf8(plain).map_err(corrupt)?;
        Ok(Some(StaticCreds {
            access_key,
            secret_key: SecretString::from(secret),
            expiration: row.expiration.map(keymint_store::from_millis),
        }))
    }

    /// Creates a role (validating the user and making its first key) or merges into one.
    pub async fn write_static_role(
        &self,
        mount: &MountCtx,
        name: &str,
        input: StaticRoleInput,
    ) -> Result<StaticRole> {
        let cross_account = [&input.assume_role_arn, &input.assume_role_session_name, &input.external_id];
        if cross_account.iter().any(|f| f.as_ref().is_some_and(|v| !v.is_empty())) {
            return Err(EngineError::CrossAccountStaticRole);
        }
        match rows::get(self.store.pool(), &mount.id, name).await? {
            None => self.create_static_role(mount, name, input).await,
            Some(row) => {
                let mut role: StaticRole = serde_json::from_str(&row.body).map_err(corrupt)?;
                if let Some(username) = input.username.filter(|u| !u.is_empty()) {
                    let (clients, _) = self.clients(mount).await?;
                    let id = user_id(&clients, &username).await.map_err(|e| invalid_user(&username, &e))?;
                    if id != role.id {
                        return Err(EngineError::UserIdMismatch { expected: role.id, got: id });
                    }
                    role.username = username;
                }
                let mut next_due = None;
                if let Some(period) = input.rotation_period {
                    check_period(period)?;
                    if period != role.rotation_period {
                        role.rotation_period = period;
                        next_due = Some(self.now_ms() + ms(std::time::Duration::from_secs(period)));
                    }
                }
                let body = serde_json::to_string(&role).map_err(EngineError::encode("static role"))?;
                let mut tx = self.store.begin().await?;
                rows::update_body(&mut *tx, &mount.id, name, &body, self.now_ms()).await?;
                if let Some(due) = next_due {
                    rot::set_schedule(&mut *tx, &mount.id, &static_role_target(name), Some(due)).await?;
                    rows::set_expiration(&mut *tx, &mount.id, name, due).await?;
                }
                tx.commit().await.map_err(keymint_store::StoreError::from)?;
                Ok(role)
            }
        }
    }

    async fn create_static_role(
        &self,
        mount: &MountCtx,
        name: &str,
        input: StaticRoleInput,
    ) -> Result<StaticRole> {
        let username =
            input.username.filter(|u| !u.is_empty()).ok_or(EngineError::MissingParameter("username"))?;
        let period = input.rotation_period.ok_or(EngineError::MissingParameter("rotation_period"))?;
        check_period(period)?;
        let (clients, _) = self.clients(mount).await?;
        let id = user_id(&clients, &username).await.map_err(|e| invalid_user(&username, &e))?;
        let role = StaticRole { username, id, rotation_period: period };

        // The role goes in first, claimed: if keymint dies from here on, the background task
        // makes the first key, and deletes any key made before.
        let target = static_role_target(name);
        let body = serde_json::to_string(&role).map_err(EngineError::encode("static role"))?;
        let claim_id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.store.begin().await?;
        let created = rows::insert(&mut *tx, &mount.id, name, &body, self.now_ms()).await?
            && rot::insert_claimed(
                &mut *tx,
                &mount.id,
                &target,
                &claim_id,
                self.now_ms() + ms(self.claim_for),
            )
            .await?;
        if !created {
            return Err(EngineError::Busy(Busy::StaticRoleCreation(name.to_string())));
        }
        tx.commit().await.map_err(keymint_store::StoreError::from)?;
        let claim = Claim { mount_id: mount.id.clone(), target: target.clone(), id: claim_id };

        let mut stale = Vec::new();
        let result =
            self.holding(&claim, self.rotate_static_claimed(mount, name, &role, &claim, &mut stale)).await;
        match result {
            Ok(()) => {
                self.release(&claim, self.after_attempt(&Ok(()), 0, !stale.is_empty())).await;
                Ok(role)
            }
            Err(e) => {
                // Vault stores no role whose first key could not be made.
                rows::delete(self.store.pool(), &mount.id, name).await?;
                if stale.is_empty() {
                    rot::delete(self.store.pool(), &mount.id, &target).await?;
                } else {
                    let retry_at = Some(self.now_ms() + ms(CLEANUP_RETRY));
                    self.release(&claim, Release { retry_at, ..Release::default() }).await;
                }
                Err(e)
            }
        }
    }

    /// Deletes keymint's keys for the role, then the role. A key that cannot be deleted keeps
    /// the role (and the error is returned), so no key of keymint's is ever forgotten.
    pub async fn delete_static_role(&self, mount: &MountCtx, name: &str) -> Result<()> {
        let target = static_role_target(name);
        let Some(row) = rows::get(self.store.pool(), &mount.id, name).await? else { return Ok(()) };
        let role: StaticRole = serde_json::from_str(&row.body).map_err(corrupt)?;
        let mut claim = None;
        for _ in 0..10 {
            claim = self.claim(&mount.id, &target, false).await?;
            if claim.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        let Some(claim) = claim else {
            return Err(EngineError::Busy(Busy::StaticRoleRotation(name.to_string())));
        };
        let work = async {
            let (clients, _) = self.clients(mount).await?;
            let mut stale = match rot::get(self.store.pool(), &mount.id, &target).await? {
                Some(r) => parse_stale(&r.stale_keys),
                None => Vec::new(),
            };
            if let Some(key) = &row.access_key {
                stale.push(StaleKey::new(role.username.clone(), key.clone()));
            }
            let failures = self.delete_stale(&clients, &claim, &mut stale, None).await;
            if let Some(first) = failures.first() {
                if row.access_key.as_ref().is_some_and(|k| !stale.iter().any(|s| &s.key == k)) {
                    rows::clear_key(self.store.pool(), &mount.id, name).await?;
                }
                return Err(EngineError::RotationFailed(format!(
                    "could not delete the access keys of static role {name:?}, which stays: {first}"
                )));
            }
            let mut tx = self.store.begin().await?;
            rows::delete(&mut *tx, &mount.id, name).await?;
            rot::delete(&mut *tx, &mount.id, &target).await?;
            tx.commit().await.map_err(keymint_store::StoreError::from)?;
            Ok(())
        };
        let result = self.holding(&claim, work).await;
        if result.is_err() {
            let retry_at = Some(self.now_ms() + ms(CLEANUP_RETRY));
            self.release(&claim, Release { retry_at, ..Release::default() }).await;
        }
        result
    }

    /// Deletes every static role of a mount (before the mount is disabled).
    pub async fn delete_static_roles(&self, mount: &MountCtx) -> Result<()> {
        for name in self.list_static_roles(mount).await? {
            self.delete_static_role(mount, &name).await?;
        }
        Ok(())
    }
}
