//! In-process tests of the engine's AWS paths (minting `iam_user` credentials, teardown,
//! revocation, the reconciler, root key rotation) against [`crate::fake_aws`], with a SQLite store
//! in a temporary directory. Each test injects failures at chosen steps and checks that
//! nothing is left half-made: every IAM user is gone, or still covered by its intent or lease.
//!
//! They run on real time: under tokio's paused clock the store's connection pool times out
//! (its acquire timeout fires while SQLite works on its own thread). Retries are capped at two
//! per call so a fault that never ends costs well under a second of backoff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_root;
mod iam_user;
mod reconcile;
mod revoke;
mod root_rotation;
mod teardown;

use std::collections::BTreeMap;
use std::time::Duration;

use keymint_store::testing::TestDb;
use keymint_store::{KeySource, leases, mounts, wal};
use secrecy::SecretString;

use crate::fake_aws::{FakeAws, User};
use crate::{CredsRequest, Engine, MountCtx, RoleInput, RootConfigInput};

/// The IAM user whose key `config/root` holds.
const ROOT_USER: &str = "keymint-root";
const ROOT_KEY: &str = "TESTROOTKEY0001";
const ROOT_SECRET: &str = "root-secret";

/// An engine whose mount `aws/` talks to a fake IAM.
struct Harness {
    engine: Engine,
    fake: FakeAws,
    mount: MountCtx,
    _db: TestDb,
}

impl Harness {
    /// A mount whose calls are retried at most twice (so a fault that never ends ends a test
    /// quickly) and whose pacing never makes a test wait.
    async fn new() -> Harness {
        Self::with_retries(2).await
    }

    async fn with_retries(max_retries: i64) -> Harness {
        let db = TestDb::new(false).await;
        let store = db.open(KeySource::DevStored).await.unwrap();
        let fake = FakeAws::default();
        fake.put_user(ROOT_USER, User { path: "/".into(), ..User::default() }, chrono::Utc::now());
        fake.put_key(ROOT_USER, ROOT_KEY, ROOT_SECRET);
        let mount = MountCtx { id: "mount-1".into(), path: "aws/".into(), ttls: Default::default() };
        let row = mounts::MountRow {
            id: mount.id.clone(),
            path: mount.path.clone(),
            mount_type: "aws".into(),
            description: String::new(),
            accessor: "aws_0001".into(),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            options: "{}".into(),
            created_at: 0,
        };
        assert!(mounts::insert(store.pool(), &row).await.unwrap());
        // Revocation's consistency window reads the wall clock: tests that need it set their own.
        let engine =
            Engine::new(store).with_client_factory(fake.factory()).with_consistency_window(Duration::ZERO);
        let root = RootConfigInput {
            access_key: Some(ROOT_KEY.into()),
            secret_key: Some(SecretString::from(ROOT_SECRET)),
            region: Some("us-east-1".into()),
            // Reserved names: were a request ever to miss the fake, it could not go anywhere.
            iam_endpoint: Some("http://iam.fake.invalid".into()),
            sts_endpoint: Some("http://sts.fake.invalid".into()),
            max_retries: Some(max_retries),
            iam_write_rate: Some(10_000),
            iam_read_rate: Some(10_000),
            sts_rate: Some(10_000),
            ..RootConfigInput::default()
        };
        engine.write_root_config(&mount, root, false).await.unwrap();
        Harness { engine, fake, mount, _db: db }
    }

    /// Writes an `iam_user` role with two managed policies, an inline policy, two groups and
    /// two tags: every step of a mint.
    async fn full_role(&self, name: &str) {
        let tags =
            BTreeMap::from([("team".to_string(), "payments".to_string()), ("env".into(), "test".into())]);
        let input = RoleInput {
            credential_type: Some("iam_user".into()),
            policy_arns: Some(vec![
                "arn:aws:iam::aws:policy/ReadOnlyAccess".into(),
                "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess".into(),
            ]),
            policy_document: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.into()),
            iam_groups: Some(vec!["developers".into(), "auditors".into()]),
            iam_tags: Some(tags),
            ..RoleInput::default()
        };
        self.engine.write_role(&self.mount, name, input).await.unwrap();
    }

    fn request(role: &str) -> CredsRequest {
        CredsRequest {
            role_name: role.into(),
            via_sts_path: false,
            ttl: None,
            role_arn: None,
            role_session_name: None,
            mfa_code: None,
            display_name: "token".into(),
            token_accessor: None,
            orphan: false,
            wait_until_usable: None,
        }
    }

    /// The IAM users other than the root user.
    fn minted_users(&self) -> Vec<String> {
        self.fake.user_names().into_iter().filter(|u| u != ROOT_USER).collect()
    }

    async fn intents(&self) -> Vec<wal::IntentRow> {
        wal::older_than(self.engine.store().pool(), i64::MAX, 1000).await.unwrap()
    }

    async fn lease_ids(&self) -> Vec<String> {
        leases::ids_with_prefix(self.engine.store().pool(), "", "", 1000).await.unwrap()
    }
}
