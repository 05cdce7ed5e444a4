//! keymint-engine: the AWS side of keymint.
//!
//! It keeps each mount's root config and roles, builds AWS clients from them, and mints the
//! four credential types. Every minted credential is recorded as a lease before it is returned;
//! an IAM user exists in AWS only under a write-ahead intent or a lease, so nothing keymint
//! creates can be forgotten.

pub mod aws_error;
pub mod client_factory;
pub mod clients;
pub mod config;
pub mod error;
/// An in-process IAM/STS for tests of this crate and of the crates above it.
#[cfg(any(test, feature = "test-support"))]
pub mod fake_aws;
mod groups;
mod iam_user;
mod keys;
pub mod mint;
pub mod pace;
pub mod reconcile;
pub mod revoke;
pub mod role;
mod root_rotation;
mod rotation;
pub mod schedule;
pub mod static_roles;
mod static_rotation;
pub mod teardown;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use keymint_lease::MountTtls;
use keymint_store::cache::Cache;
use keymint_store::{Store, aws as rows};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use client_factory::ClientFactory;
pub use clients::{AwsClients, CallerIdentity, ClientCache};
pub use config::{LeaseConfig, RootConfig, RootConfigInput, RootSecrets};
pub use error::{AwsFailure, Busy, EngineError, Result};
pub use mint::{CredsRequest, Minted};
pub use role::{Role, RoleInput, RoleWrite};
pub use root_rotation::RootRotation;
pub use static_roles::{StaticCreds, StaticRole, StaticRoleInput};

/// The mount a request addresses.
#[derive(Debug, Clone)]
pub struct MountCtx {
    pub id: String,
    /// With its trailing slash, e.g. `aws/`.
    pub path: String,
    pub ttls: MountTtls,
}

/// The AWS engine, shared by every mount of type `aws`.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    /// Builds a mount's AWS clients (the seam tests answer AWS through).
    factory: ClientFactory,
    clients: Arc<ClientCache>,
    /// Each mount's pacing state, kept across config versions so a config write does not
    /// reset the queue.
    pacers: Arc<pace::Pacers>,
    /// How long a missing IAM user may be eventual consistency (see `revoke`).
    consistency_window: std::time::Duration,
    /// How long a rotation claim lasts unless renewed: how long a dead replica's rotation
    /// waits before another replica takes it over (`[leases] claim_timeout`).
    claim_for: std::time::Duration,
    /// Roles and configuration as requests read them (see `keymint_store::cache`).
    cached: Arc<ConfigCaches>,
    /// Who this process is among the replicas pacing AWS calls together (PostgreSQL): random
    /// per process, so a restarted replica starts with a fresh slice.
    replica: Arc<str>,
    /// Started with the first pacer in a fleet: the task that hears of other replicas' cuts.
    cut_listener: Arc<std::sync::Once>,
}

/// What a credential request reads of a mount, cached per configuration generation.
#[derive(Debug)]
struct ConfigCaches {
    /// By (mount id, role name); `None` for a role that does not exist.
    roles: Cache<(String, String), Option<Role>>,
    /// By mount id: `config/root` with its opened secrets and version.
    roots: Cache<String, Option<(RootConfig, RootSecrets, i64)>>,
    /// By mount id.
    leases: Cache<String, Option<LeaseConfig>>,
}

impl Default for ConfigCaches {
    fn default() -> Self {
        ConfigCaches { roles: Cache::new(10_000), roots: Cache::new(1_000), leases: Cache::new(1_000) }
    }
}

#[derive(Serialize, Deserialize, Default)]
struct SealedRootSecrets {
    secret_key: Option<String>,
    session_token: Option<String>,
}

/// The `aws_config` entry of a mount's root configuration.
pub const ROOT_CONFIG_ENTRY: &str = "root";
const ROOT: &str = ROOT_CONFIG_ENTRY;
const LEASE: &str = "lease";

fn root_identity(mount_id: &str) -> String {
    keymint_store::aws::config_identity(mount_id, ROOT)
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Store(keymint_store::StoreError::Corrupt(format!("{what}: {e}")))
}

impl Engine {
    pub fn new(store: Store) -> Self {
        Engine {
            store,
            factory: ClientFactory::aws(),
            clients: Arc::new(ClientCache::default()),
            pacers: Arc::default(),
            consistency_window: revoke::DEFAULT_CONSISTENCY_WINDOW,
            claim_for: rotation::CLAIM_FOR,
            cached: Arc::default(),
            replica: keymint_common::random::base62(16).into(),
            cut_listener: Arc::new(std::sync::Once::new()),
        }
    }

    /// Builds AWS clients with `factory` instead of [`ClientFactory::aws`] (tests answer AWS
    /// in process through it).
    pub fn with_client_factory(mut self, factory: ClientFactory) -> Self {
        self.factory = factory;
        self
    }

    /// Sets IAM's eventual-consistency window (tests shorten it).
    pub fn with_consistency_window(mut self, window: std::time::Duration) -> Self {
        self.consistency_window = window;
        self
    }

    /// Sets how long rotation claims last unless renewed (default one minute).
    pub fn with_claim_timeout(mut self, claim_for: std::time::Duration) -> Self {
        self.claim_for = claim_for.max(std::time::Duration::from_secs(1));
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The stored root config with its version, if the mount has one.
    pub async fn root_config(&self, mount: &MountCtx) -> Result<Option<(RootConfig, RootSecrets, i64)>> {
        let Some(row) = rows::get_config(self.store.pool(), &mount.id, ROOT).await? else {
            return Ok(None);
        };
        let cfg: RootConfig = serde_json::from_str(&row.body).map_err(|e| corrupt("config/root", e))?;
        let mut secrets = RootSecrets::default();
        if let Some(sealed) = row.secret {
            let plain = self.store.open_sealed(&root_identity(&mount.id), &sealed).await?;
            let s: SealedRootSecrets =
                serde_json::from_slice(&plain).map_err(|e| corrupt("config/root secret", e))?;
            secrets.secret_key = s.secret_key.map(SecretString::from);
            secrets.session_token = s.session_token.map(SecretString::from);
        }
        Ok(Some((cfg, secrets, row.updated_at)))
    }

    /// Writes `config/root`. Unless `verify` is false, the new credentials are checked with
    /// GetCallerIdentity first (and against `expected_account_id`); on failure nothing is
    /// stored. The write lands only on the config it was merged into: if another write or a
    /// root rotation came in between, the merge is done again. A changed rotation schedule
    /// moves the next rotation in the same transaction.
    pub async fn write_root_config(
        &self,
        mount: &MountCtx,
        input: RootConfigInput,
        verify: bool,
    ) -> Result<Option<CallerIdentity>> {
        for _ in 0..3 {
            let stored = self.root_config(mount).await?;
            let previous_version = stored.as_ref().map(|(_, _, v)| *v);
            let old_schedule = stored.as_ref().map(|(c, _, _)| schedule_fields(c));
            let (cfg, secrets) = config::apply_root_write(stored.map(|(c, s, _)| (c, s)), input.clone())?;
            let identity = if verify { Some(self.verify_root(&cfg, &secrets).await?) } else { None };
            let row = self.root_row(mount, &cfg, &secrets, previous_version)?;
            let mut tx = self.store.begin().await?;
            if !rows::put_config_if(&mut *tx, &mount.id, ROOT, &row, previous_version).await? {
                continue;
            }
            if old_schedule.as_ref() != Some(&schedule_fields(&cfg)) {
                let next_due = schedule::Schedule::of_root(&cfg)
                    .and_then(|s| s.next_after(self.now()))
                    .map(|t| t.timestamp_millis());
                keymint_store::rotation::set_schedule(
                    &mut *tx,
                    &mount.id,
                    keymint_store::rotation::ROOT,
                    next_due,
                )
                .await?;
            }
            tx.commit().await.map_err(keymint_store::StoreError::from)?;
            self.clients.forget(&mount.id);
            return Ok(identity);
        }
        Err(EngineError::Busy(error::Busy::ConfigRootWrite))
    }

    /// Checks what a `config/root` write of `input` would check, and stores nothing: `input`
    /// is merged over the stored config and validated as [`Engine::write_root_config`] does,
    /// then verified with GetCallerIdentity (through `role_arn` when one is set) and against
    /// `expected_account_id`. The mount's cached clients, pacer and rotation schedule are left
    /// alone: the check runs on clients of its own.
    pub async fn verify_root_config(
        &self,
        mount: &MountCtx,
        input: RootConfigInput,
    ) -> Result<CallerIdentity> {
        let stored = self.root_config(mount).await?;
        let (cfg, secrets) = config::apply_root_write(stored.map(|(c, s, _)| (c, s)), input)?;
        self.verify_root(&cfg, &secrets).await
    }

    /// GetCallerIdentity with `cfg` on clients built for this one check (with their own pacer,
    /// so a test of other credentials never queues behind the mount's calls or joins its cache).
    async fn verify_root(&self, cfg: &RootConfig, secrets: &RootSecrets) -> Result<CallerIdentity> {
        let pacer = Arc::new(pace::Pacer::new(cfg.limits()));
        let clients = self.factory.build(cfg, secrets, pacer).await?;
        let who = clients.caller_identity().await.map_err(|e| match e {
            EngineError::Aws { context, source } => EngineError::RootUnverified { context, source },
            other => other,
        })?;
        if !cfg.expected_account_id.is_empty() && who.account != cfg.expected_account_id {
            return Err(EngineError::WrongAccount {
                account: who.account,
                arn: who.arn,
                expected: cfg.expected_account_id.clone(),
            });
        }
        Ok(who)
    }

    /// The stored row of a root config, its secrets sealed, one version after `previous`.
    fn root_row(
        &self,
        mount: &MountCtx,
        cfg: &RootConfig,
        secrets: &RootSecrets,
        previous: Option<i64>,
    ) -> Result<rows::ConfigRow> {
        let sealed = SealedRootSecrets {
            secret_key: secrets.secret_key.as_ref().map(|s| s.expose_secret().to_string()),
            session_token: secrets.session_token.as_ref().map(|s| s.expose_secret().to_string()),
        };
        let plain = serde_json::to_vec(&sealed).map_err(EngineError::encode("root secrets"))?;
        Ok(rows::ConfigRow {
            body: serde_json::to_string(cfg).map_err(EngineError::encode("config/root"))?,
            secret: Some(self.store.seal().seal(&root_identity(&mount.id), &plain)),
            updated_at: next_version(previous, self.now_ms()),
        })
    }

    /// The scheduling state of the mount's root key: when the next rotation is due (unix ms)
    /// and the error of the last failed scheduled attempt.
    pub async fn root_rotation_state(&self, mount: &MountCtx) -> Result<(Option<i64>, Option<String>)> {
        let row =
            keymint_store::rotation::get(self.store.pool(), &mount.id, keymint_store::rotation::ROOT).await?;
        Ok(row.map(|r| (r.next_due, r.last_error)).unwrap_or_default())
    }

    /// Clients for the mount's current config (the default AWS chain when it has none).
    pub async fn clients(&self, mount: &MountCtx) -> Result<(Arc<AwsClients>, RootConfig)> {
        let stored = self.cached.roots.get_or_load(mount.id.clone(), || self.root_config(mount)).await?;
        let (cfg, secrets, version) = stored.unwrap_or_default();
        if let Some(c) = self.clients.get(&mount.id, version) {
            return Ok((c, cfg));
        }
        let pacer = self.pacer(&mount.id, &cfg);
        let built = Arc::new(self.factory.build(&cfg, &secrets, pacer).await?);
        self.clients.put(&mount.id, version, built.clone());
        Ok((built, cfg))
    }

    /// Drops what this process keeps for a mount that was disabled: its AWS clients and its
    /// pacer. (A mount enabled again at the same path is a new mount, with a new id.)
    pub fn forget_mount(&self, mount_id: &str) {
        self.clients.forget(mount_id);
        self.pacers.lock().unwrap_or_else(|p| p.into_inner()).remove(mount_id);
    }

    /// The mount's pacer, created on first use and kept up to date with `cfg`. On PostgreSQL
    /// it paces with the other replicas of the installation.
    fn pacer(&self, mount_id: &str, cfg: &RootConfig) -> Arc<pace::Pacer> {
        let mut pacers = self.pacers.lock().unwrap_or_else(|p| p.into_inner());
        let pacer = pacers
            .entry(mount_id.to_string())
            .or_insert_with(|| match self.store.backend() {
                keymint_store::Backend::Postgres => {
                    self.cut_listener.call_once(|| {
                        tokio::spawn(pace::listen_for_cuts(self.store.clone(), Arc::downgrade(&self.pacers)));
                    });
                    pace::Pacer::in_fleet(
                        cfg.limits(),
                        pace::Fleet::new(self.store.clone(), mount_id, &self.replica),
                    )
                }
                keymint_store::Backend::Sqlite => Arc::new(pace::Pacer::new(cfg.limits())),
            })
            .clone();
        pacer.set_limits(cfg.limits());
        pacer
    }

    pub async fn lease_config(&self, mount: &MountCtx) -> Result<Option<LeaseConfig>> {
        self.cached
            .leases
            .get_or_load(mount.id.clone(), || async {
                let Some(row) = rows::get_config(self.store.pool(), &mount.id, LEASE).await? else {
                    return Ok(None);
                };
                Ok(Some(serde_json::from_str(&row.body).map_err(|e| corrupt("config/lease", e))?))
            })
            .await
    }

    pub async fn write_lease_config(&self, mount: &MountCtx, cfg: LeaseConfig) -> Result<()> {
        let row = rows::ConfigRow {
            body: serde_json::to_string(&cfg).map_err(EngineError::encode("config/lease"))?,
            secret: None,
            updated_at: self.now_ms(),
        };
        rows::put_config(self.store.pool(), &mount.id, LEASE, &row).await?;
        Ok(())
    }

    pub async fn role(&self, mount: &MountCtx, name: &str) -> Result<Option<Role>> {
        self.cached
            .roles
            .get_or_load((mount.id.clone(), name.to_owned()), || async {
                let Some(body) = rows::get_role(self.store.pool(), &mount.id, name).await? else {
                    return Ok(None);
                };
                Ok(Some(serde_json::from_str(&body).map_err(|e| corrupt("role", e))?))
            })
            .await
    }

    /// Merges a write into the role. Concurrent writes to one role are serialised by doing the
    /// read-merge-write in one transaction.
    pub async fn write_role(&self, mount: &MountCtx, name: &str, input: RoleInput) -> Result<Vec<String>> {
        let mut tx = self.store.begin().await?;
        let existing = match rows::get_role(&mut *tx, &mount.id, name).await? {
            Some(body) => Some(serde_json::from_str(&body).map_err(|e| corrupt("role", e))?),
            None => None,
        };
        let written = role::apply_role_write(existing, input)?;
        let body = serde_json::to_string(&written.role).map_err(EngineError::encode("role"))?;
        rows::put_role(&mut *tx, &mount.id, name, &body, self.now_ms()).await?;
        tx.commit().await.map_err(keymint_store::StoreError::from)?;
        Ok(written.warnings)
    }

    pub async fn delete_role(&self, mount: &MountCtx, name: &str) -> Result<()> {
        rows::delete_role(self.store.pool(), &mount.id, name).await?;
        Ok(())
    }

    pub async fn list_roles(&self, mount: &MountCtx) -> Result<Vec<String>> {
        Ok(rows::list_roles(self.store.pool(), &mount.id).await?)
    }
}

/// The fields that make up a root rotation schedule.
fn schedule_fields(cfg: &RootConfig) -> (u64, String, u64, bool) {
    (cfg.rotation_period, cfg.rotation_schedule.clone(), cfg.rotation_window, cfg.disable_automated_rotation)
}

/// A config version that always moves forward, even when two writes share a millisecond.
fn next_version(previous: Option<i64>, now: i64) -> i64 {
    match previous {
        Some(p) if p >= now => p + 1,
        _ => now,
    }
}
