//! The store against real databases: every test runs on SQLite and on PostgreSQL
//! (`KEYMINT_TEST_POSTGRES_URL`, set by scripts/test.sh; a PostgreSQL test fails without it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test crate: failing loudly is the point

use keymint_store::mounts::{self, MountRow};
use keymint_store::{KeyMaterial, KeySource, StoreError, aws, leases, wal};

use keymint_store::testing::TestDb as Db;

macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(super::Db::new(false).await).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$body(super::Db::new(true).await).await
            }
        }
    };
}

both!(dev_key_survives_restart, dev_key_body);
async fn dev_key_body(db: Db) {
    let a = db.open(KeySource::DevStored).await.unwrap();
    let hash = a.hasher().hash("root");
    let sealed = a.seal().seal("x", b"secret");
    a.close().await;
    let b = db.open(KeySource::DevStored).await.unwrap();
    assert_eq!(b.hasher().hash("root"), hash);
    assert_eq!(b.seal().open("x", &sealed).unwrap(), b"secret");
    // A database sealed by dev mode is not silently used by a production server.
    assert!(matches!(
        db.open(KeySource::Given(KeyMaterial::generate())).await,
        Err(StoreError::DevKeyInProduction)
    ));
}

both!(given_key_is_checked, given_key_body);
async fn given_key_body(db: Db) {
    let key = KeyMaterial::generate();
    db.open(KeySource::Given(key.clone())).await.unwrap().close().await;
    db.open(KeySource::Given(key)).await.unwrap().close().await;
    assert!(matches!(db.open(KeySource::Given(KeyMaterial::generate())).await, Err(StoreError::WrongKey)));
    assert!(matches!(db.open(KeySource::DevStored).await, Err(StoreError::NoKey)));
}

fn mount(path: &str) -> MountRow {
    MountRow {
        id: uuid::Uuid::new_v4().to_string(),
        path: path.into(),
        mount_type: "aws".into(),
        description: String::new(),
        accessor: "aws_0000".into(),
        default_lease_ttl: 0,
        max_lease_ttl: 0,
        options: "{}".into(),
        created_at: 1,
    }
}

both!(mounts_are_unique_and_cascade, mounts_body);
async fn mounts_body(db: Db) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let m = mount("aws/");
    assert!(mounts::insert(store.pool(), &m).await.unwrap());
    assert!(!mounts::insert(store.pool(), &mount("aws/")).await.unwrap());
    let row = aws::ConfigRow { body: "{}".into(), secret: Some(vec![1, 2, 3]), updated_at: 5 };
    aws::put_config(store.pool(), &m.id, "root", &row).await.unwrap();
    aws::put_role(store.pool(), &m.id, "deploy", "{}", 1).await.unwrap();
    assert_eq!(
        aws::get_config(store.pool(), &m.id, "root").await.unwrap().unwrap().secret,
        Some(vec![1, 2, 3])
    );
    assert_eq!(aws::list_roles(store.pool(), &m.id).await.unwrap(), vec!["deploy"]);
    mounts::delete(store.pool(), &m.id).await.unwrap();
    assert!(aws::get_config(store.pool(), &m.id, "root").await.unwrap().is_none());
    assert!(aws::list_roles(store.pool(), &m.id).await.unwrap().is_empty());
}

both!(lease_and_intent_commit_together, lease_body);
async fn lease_body(db: Db) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let intent = wal::IntentRow {
        id: "i1".into(),
        mount_id: "m".into(),
        kind: "iam_user".into(),
        data: "{}".into(),
        created_at: 10,
    };
    wal::insert(store.pool(), &intent).await.unwrap();
    let lease = leases::LeaseRow {
        id: "aws/creds/r/abc".into(),
        mount_id: "m".into(),
        role_name: "r".into(),
        credential_type: "iam_user".into(),
        issue_time: 10,
        expire_time: 20,
        last_renewal: None,
        renewable: 1,
        internal: "{}".into(),
        secret: None,
        token_accessor: Some("acc".into()),
        orphan: 0,
        state: leases::STATE_ACTIVE.into(),
        ..Default::default()
    };
    // A transaction that fails half-way leaves the intent in place and no lease.
    let mut tx = store.begin().await.unwrap();
    leases::insert(&mut *tx, &lease).await.unwrap();
    wal::delete(&mut *tx, "i1").await.unwrap();
    tx.rollback().await.unwrap();
    assert!(leases::get(store.pool(), &lease.id).await.unwrap().is_none());
    assert_eq!(wal::older_than(store.pool(), 11, 10).await.unwrap().len(), 1);

    let mut tx = store.begin().await.unwrap();
    leases::insert(&mut *tx, &lease).await.unwrap();
    wal::delete(&mut *tx, "i1").await.unwrap();
    tx.commit().await.unwrap();
    let got = leases::get(store.pool(), &lease.id).await.unwrap().unwrap();
    assert_eq!((got.expire_time, got.token_accessor.as_deref()), (20, Some("acc")));
    assert!(wal::older_than(store.pool(), 11, 10).await.unwrap().is_empty());
    assert_eq!(leases::page_for_mount(store.pool(), "m", "", 10).await.unwrap().len(), 1);
    assert!(leases::page_for_mount(store.pool(), "m", &lease.id, 10).await.unwrap().is_empty());
}

both!(next_due_weighs_retries_and_expiries, next_due_body);
async fn next_due_body(db: Db) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let pool = store.pool();
    assert_eq!(leases::next_due(pool).await.unwrap(), None);
    let add = async |id: &str, expire_time: i64, retry_at: Option<i64>, state: &str| {
        let row = leases::LeaseRow {
            id: id.into(),
            mount_id: "m".into(),
            role_name: "r".into(),
            credential_type: "iam_user".into(),
            expire_time,
            renewable: 1,
            internal: "{}".into(),
            state: state.into(),
            ..Default::default()
        };
        leases::insert(pool, &row).await.unwrap();
        if let Some(at) = retry_at {
            leases::record_failure(pool, id, "Throttling", at, 6).await.unwrap();
        }
    };
    // A lease being revoked right now is not "next".
    add("a", 50, None, leases::STATE_REVOKING).await;
    assert_eq!(leases::next_due(pool).await.unwrap(), None);
    add("b", 1000, None, leases::STATE_ACTIVE).await;
    assert_eq!(leases::next_due(pool).await.unwrap(), Some(1000));
    // A revocation that failed before expiry is retried no sooner than the expiry.
    add("c", 2000, Some(300), leases::STATE_ACTIVE).await;
    assert_eq!(leases::next_due(pool).await.unwrap(), Some(1000));
    // An expired lease waiting for its retry is due at the retry time.
    add("d", 100, Some(700), leases::STATE_ACTIVE).await;
    assert_eq!(leases::next_due(pool).await.unwrap(), Some(700));
    leases::make_due(pool, "c", 200).await.unwrap();
    assert_eq!(leases::next_due(pool).await.unwrap(), Some(200));
}

both!(rotation_reseals_under_a_new_data_key, rotation_body);
async fn rotation_body(db: Db) {
    use keymint_store::crypto::Seal;
    let a = db.open(KeySource::DevStored).await.unwrap();
    let m = mount("aws/");
    mounts::insert(a.pool(), &m).await.unwrap();
    let m1 = m.id.as_str();
    let identity = aws::config_identity(m1, "root");
    let before = a.seal().seal(&identity, b"root secret");
    assert_eq!(Seal::version_of(&before), 0);
    let row = aws::ConfigRow { body: "{}".into(), secret: Some(before.clone()), updated_at: 1 };
    aws::put_config(a.pool(), m1, "root", &row).await.unwrap();
    // A second process on the same database, as another replica would be.
    let b = db.open(KeySource::DevStored).await.unwrap();

    let done = a.rotate_seal_key().await.unwrap();
    assert_eq!((done.version, done.resealed, done.skipped), (1, 1, 0));
    let stored = aws::get_config(a.pool(), m1, "root").await.unwrap().unwrap().secret.unwrap();
    assert_eq!(Seal::version_of(&stored), 1);
    assert_ne!(stored, before);
    // The other process has not loaded key 1: its plain open says so, open_sealed loads it.
    assert!(matches!(b.seal().open(&identity, &stored), Err(StoreError::UnknownSealKey(1))));
    assert_eq!(b.open_sealed(&identity, &stored).await.unwrap(), b"root secret");
    // Values sealed before the rotation still open; new ones go under the new key.
    assert_eq!(b.open_sealed(&identity, &before).await.unwrap(), b"root secret");
    assert_eq!(Seal::version_of(&b.seal().seal(&identity, b"x")), 1);
    // The identity still binds: the value does not open as another row's.
    assert!(b.open_sealed(&aws::config_identity("m2", "root"), &stored).await.is_err());

    let again = b.rotate_seal_key().await.unwrap();
    assert_eq!((again.version, again.resealed), (2, 1));
    let reopened = db.open(KeySource::DevStored).await.unwrap();
    let stored = aws::get_config(reopened.pool(), m1, "root").await.unwrap().unwrap().secret.unwrap();
    assert_eq!(Seal::version_of(&stored), 2);
    assert_eq!(reopened.open_sealed(&identity, &stored).await.unwrap(), b"root secret");
}

both!(rotation_claims_go_to_one_holder, rotation_claims_body);
async fn rotation_claims_body(db: Db) {
    use keymint_store::rotation::{self as rot, Failure, Release};
    let store = db.open(KeySource::DevStored).await.unwrap();
    let pool = store.pool();
    let m = mount("aws/");
    assert!(mounts::insert(pool, &m).await.unwrap());
    let target = rot::static_role_target("app");

    // A new target is created claimed; nobody else can take it, even when it is due.
    assert!(rot::insert_claimed(pool, &m.id, &target, "a", 1_000).await.unwrap());
    assert!(!rot::insert_claimed(pool, &m.id, &target, "b", 1_000).await.unwrap());
    assert!(
        rot::set_stale(pool, &m.id, &target, "a", r#"[{"user":"u","key":"k1"}]"#, Some(100)).await.unwrap()
    );
    assert!(!rot::claim(pool, &m.id, &target, "b", 500, 2_000, true).await.unwrap());
    assert!(rot::due(pool, 500, 10).await.unwrap().is_empty(), "a claimed target is not offered");

    // Once the claim lapses the target is offered, and goes to one claimant.
    let due = rot::due(pool, 1_001, 10).await.unwrap();
    assert_eq!((due.len(), due[0].mount_path.as_str(), due[0].target.as_str()), (1, "aws/", target.as_str()));
    assert!(rot::claim(pool, &m.id, &target, "b", 1_001, 2_000, true).await.unwrap());
    assert!(!rot::claim(pool, &m.id, &target, "c", 1_001, 2_000, true).await.unwrap());
    // The first holder learns it lost the claim before it stores anything.
    assert!(!rot::record_rotation(pool, &m.id, &target, "a", Some(9_000), "[]", 1_001).await.unwrap());
    assert!(!rot::extend(pool, &m.id, &target, "a", 3_000).await.unwrap());
    assert!(rot::record_rotation(pool, &m.id, &target, "b", Some(9_000), "[]", 1_001).await.unwrap());
    rot::release(pool, &m.id, &target, "b", &Release { failure: Failure::Clear, ..Release::default() })
        .await
        .unwrap();
    let row = rot::get(pool, &m.id, &target).await.unwrap().unwrap();
    assert_eq!((row.next_due, row.retry_at, row.stale_keys.as_str()), (Some(9_000), None, "[]"));
    assert!(rot::due(pool, 8_999, 10).await.unwrap().is_empty());
    assert!(!rot::claim(pool, &m.id, &target, "c", 8_999, 20_000, true).await.unwrap(), "not due yet");

    // A failure is counted and backs off; a manual claim ignores the schedule.
    assert!(rot::claim(pool, &m.id, &target, "c", 9_000, 20_000, true).await.unwrap());
    let failed =
        Release { retry_at: Some(9_500), failure: Failure::Failed("boom".into()), ..Release::default() };
    rot::release(pool, &m.id, &target, "c", &failed).await.unwrap();
    let row = rot::get(pool, &m.id, &target).await.unwrap().unwrap();
    assert_eq!((row.attempts, row.last_error.as_deref(), row.retry_at), (1, Some("boom"), Some(9_500)));
    assert!(!rot::claim(pool, &m.id, &target, "d", 9_100, 20_000, true).await.unwrap(), "backing off");
    assert!(rot::claim(pool, &m.id, &target, "d", 9_100, 20_000, false).await.unwrap());

    // The rows go with their mount.
    mounts::delete(pool, &m.id).await.unwrap();
    assert!(rot::get(pool, &m.id, &target).await.unwrap().is_none());
}

both!(token_roles_are_kept_by_name, token_roles_body);
async fn token_roles_body(db: Db) {
    use keymint_store::{token_roles, tokens};
    let store = db.open(KeySource::DevStored).await.unwrap();
    let pool = store.pool();
    assert!(token_roles::names(pool).await.unwrap().is_empty());
    token_roles::put(pool, "ci", r#"{"orphan":true}"#, 1).await.unwrap();
    token_roles::put(pool, "CI", "{}", 1).await.unwrap();
    token_roles::put(pool, "ci", r#"{"orphan":false}"#, 2).await.unwrap();
    // Names are case-sensitive, as in Vault; a second put replaces the body.
    assert_eq!(token_roles::names(pool).await.unwrap(), ["CI", "ci"]);
    assert_eq!(token_roles::get(pool, "ci").await.unwrap().as_deref(), Some(r#"{"orphan":false}"#));
    assert!(token_roles::delete(pool, "ci").await.unwrap());
    assert!(!token_roles::delete(pool, "ci").await.unwrap());
    assert!(token_roles::get(pool, "ci").await.unwrap().is_none());

    // A token keeps the role it was created against and the CIDRs it is bound to.
    let row = tokens::TokenRow {
        hash: "h".into(),
        accessor: "a".into(),
        policies: "[]".into(),
        meta: "{}".into(),
        path: "auth/token/create/CI".into(),
        role: Some("CI".into()),
        bound_cidrs: r#"["10.0.0.0/8"]"#.into(),
        ..tokens::TokenRow::default()
    };
    tokens::insert(pool, &row, false).await.unwrap();
    let back = tokens::get_by_accessor(pool, "a").await.unwrap().unwrap();
    assert_eq!((back.role.as_deref(), back.bound_cidrs.as_str()), (Some("CI"), r#"["10.0.0.0/8"]"#));
}

both!(unflushed_lease_inserts_are_whole_and_local, unflushed_body);
async fn unflushed_body(db: Db) {
    let store = db.open(KeySource::DevStored).await.unwrap();
    let lease = leases::LeaseRow {
        id: "aws/sts/r/abc".into(),
        mount_id: "m".into(),
        role_name: "r".into(),
        credential_type: "assumed_role".into(),
        issue_time: 10,
        expire_time: 20,
        last_renewal: None,
        renewable: 0,
        internal: r#"{"is_sts":true}"#.into(),
        secret: None,
        token_accessor: Some("acc".into()),
        orphan: 0,
        state: leases::STATE_ACTIVE.into(),
        ..Default::default()
    };
    let mut conn = store.pool().acquire().await.unwrap();
    let postgres = store.backend() == keymint_store::Backend::Postgres;
    if postgres {
        // Durable commits on this connection, whatever the test server's default.
        sqlx::query("SET synchronous_commit = on").execute(&mut *conn).await.unwrap();
    }
    leases::insert_unflushed(&mut *conn, store.backend(), &lease).await.unwrap();
    let orphan =
        leases::LeaseRow { id: "aws/sts/r/def".into(), token_accessor: None, orphan: 1, ..lease.clone() };
    leases::insert_unflushed(&mut *conn, store.backend(), &orphan).await.unwrap();
    if postgres {
        // The relaxed commit was the statement's own: the connection commits durably again.
        let setting: String =
            sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(setting, "on");
    }
    drop(conn);
    for want in [&lease, &orphan] {
        let got = leases::get(store.pool(), &want.id).await.unwrap().unwrap();
        assert_eq!(
            (&got.credential_type, got.expire_time, got.renewable, &got.internal),
            (&want.credential_type, want.expire_time, want.renewable, &want.internal)
        );
        assert_eq!(
            (got.token_accessor.as_deref(), got.orphan),
            (want.token_accessor.as_deref(), want.orphan)
        );
        assert_eq!((got.last_renewal, got.secret.is_none()), (None, true));
    }
}

/// The tables of one backup file (everything between its header and its trailer).
fn table_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    lines[1..lines.len() - 1].iter().map(|l| l.to_string()).collect()
}

/// A populated store, backed up while open, restored into a fresh database of each backend:
/// a backup of the restored store holds the same rows, byte for byte, once resumed; the
/// restore pauses revocation, and every refusal changes nothing.
async fn backup_restore_body(from_postgres: bool) {
    use keymint_store::backup::{self, BackupError};
    use keymint_store::{revocation, tokens};

    let source = Db::new(from_postgres).await;
    let key = KeyMaterial::generate();
    let store = source.open(KeySource::Given(key.clone())).await.unwrap();
    let m = mount("aws/");
    mounts::insert(store.pool(), &m).await.unwrap();
    // Sealed bytes with every byte value, a role, a token, a lease with NULLs and a blob, an
    // intent.
    let blob: Vec<u8> = (0..=255u8).collect();
    let row = aws::ConfigRow {
        body: "{\"région\":\"eu-west-3\"}".into(),
        secret: Some(blob.clone()),
        updated_at: 5,
    };
    aws::put_config(store.pool(), &m.id, "root", &row).await.unwrap();
    aws::put_role(store.pool(), &m.id, "deploy", "{\"credential_type\":\"iam_user\"}", 1).await.unwrap();
    let token = tokens::TokenRow {
        hash: store.hasher().hash("t"),
        accessor: "acc".into(),
        policies: "[\"default\"]".into(),
        display_name: "token".into(),
        meta: "{}".into(),
        created_at: 1,
        expire_at: Some(i64::MAX / 2),
        ..Default::default()
    };
    tokens::insert(store.pool(), &token, false).await.unwrap();
    for i in 0..1200 {
        let lease = leases::LeaseRow {
            id: format!("aws/creds/deploy/{i:05}"),
            mount_id: m.id.clone(),
            role_name: "deploy".into(),
            credential_type: "iam_user".into(),
            issue_time: 10,
            expire_time: 20 + i,
            last_renewal: None,
            renewable: 1,
            internal: "{\"user\":\"u\"}".into(),
            secret: if i % 2 == 0 { Some(vec![0, 1, 2]) } else { None },
            token_accessor: Some("acc".into()),
            orphan: 0,
            state: leases::STATE_ACTIVE.into(),
            ..Default::default()
        };
        leases::insert(store.pool(), &lease).await.unwrap();
    }
    let intent = wal::IntentRow {
        id: "i1".into(),
        mount_id: m.id.clone(),
        kind: "iam_user".into(),
        data: "{}".into(),
        created_at: 10,
    };
    wal::insert(store.pool(), &intent).await.unwrap();

    // Every table of the schema is either backed up or deliberately left out.
    let mut expected: Vec<&str> = backup::TABLES.iter().chain(backup::NOT_BACKED_UP).copied().collect();
    expected.sort_unstable();
    assert_eq!(backup::schema_tables(&store).await.unwrap(), expected);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keymint.backup");
    let taken = backup::backup(&store, &file).await.unwrap();
    assert_eq!(taken.leases, 1200);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    for to_postgres in [false, true] {
        let target = Db::new(to_postgres).await;
        // The wrong seal key is refused, and leaves the new database as it was: the right key
        // still restores into it.
        let wrong = target.open(KeySource::Restoring(KeyMaterial::generate())).await.unwrap();
        assert!(matches!(backup::restore(&wrong, &file, false).await, Err(BackupError::WrongKey)));
        wrong.close().await;
        let restored = target.open(KeySource::Restoring(key.clone())).await.unwrap();
        let done = backup::restore(&restored, &file, false).await.unwrap();
        assert_eq!((done.rows, done.leases), (taken.rows, 1200));
        let pause = revocation::paused(restored.pool()).await.unwrap().expect("a restore pauses revocation");
        assert!(pause.reason.contains(&taken.taken_at), "{pause:?}");
        // A second restore into the now populated store needs --force.
        match backup::restore(&restored, &file, false).await {
            Err(BackupError::NotEmpty(what)) => assert!(what.contains("1200 leases"), "{what}"),
            other => panic!("restoring over data: {other:?}"),
        }
        backup::restore(&restored, &file, true).await.unwrap();
        assert!(revocation::resume(restored.pool()).await.unwrap());
        restored.close().await;

        // Reopened with the key: the installation id, the sealed secrets and the rows are the
        // source's.
        let reopened = target.open(KeySource::Given(key.clone())).await.unwrap();
        assert_eq!(reopened.installation_id(), store.installation_id());
        let again = dir.path().join(format!("again-{to_postgres}.backup"));
        backup::backup(&reopened, &again).await.unwrap();
        assert_eq!(table_lines(&again), table_lines(&file), "from postgres {from_postgres} to {to_postgres}");
        reopened.close().await;
    }

    // A damaged file is refused whole.
    let damaged = dir.path().join("damaged.backup");
    let text = std::fs::read_to_string(&file).unwrap().replacen("eu-west-3", "eu-west-1", 1);
    std::fs::write(&damaged, text).unwrap();
    let target = Db::new(from_postgres).await;
    let fresh = target.open(KeySource::Given(key.clone())).await.unwrap();
    match backup::restore(&fresh, &damaged, false).await {
        Err(BackupError::Format(why)) => assert!(why.contains("checksum"), "{why}"),
        other => panic!("a damaged backup: {other:?}"),
    }
    let cut = dir.path().join("cut.backup");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    assert!(matches!(backup::restore(&fresh, &cut, false).await, Err(BackupError::Format(_))));
    assert!(revocation::paused(fresh.pool()).await.unwrap().is_none(), "nothing was restored");
    assert_eq!(leases::count(fresh.pool(), false).await.unwrap(), 0);
}

#[tokio::test]
async fn backup_restore_from_sqlite() {
    backup_restore_body(false).await
}

#[tokio::test]
async fn backup_restore_from_postgres() {
    backup_restore_body(true).await
}

both!(job_claims_go_to_one_holder_at_a_time, job_claims_body);
async fn job_claims_body(db: Db) {
    use keymint_store::jobs;
    let store = db.open(KeySource::DevStored).await.unwrap();
    let pool = store.pool();

    // Many replicas race for a free job: exactly one wins.
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                jobs::claim(&pool, "sweep", &format!("r{i}"), 1_000, 61_000).await.unwrap()
            })
        })
        .collect();
    let mut won = Vec::new();
    for racer in racers {
        won.push(racer.await.unwrap());
    }
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let (holder, until) = jobs::holder(pool, "sweep").await.unwrap().unwrap();
    assert_eq!(until, 61_000);
    let other = if holder == "r0" { "r1" } else { "r0" };

    // Held: others are refused until the deadline, the holder may claim again and renew.
    assert!(!jobs::claim(pool, "sweep", other, 60_999, 120_000).await.unwrap());
    assert!(jobs::claim(pool, "sweep", &holder, 30_000, 90_000).await.unwrap(), "already ours");
    assert!(jobs::renew(pool, "sweep", &holder, 100_000).await.unwrap());
    assert!(!jobs::renew(pool, "sweep", other, 200_000).await.unwrap(), "not held by it");
    assert!(!jobs::claim(pool, "sweep", other, 99_999, 160_000).await.unwrap());
    // Other jobs are claimed on their own.
    assert!(jobs::claim(pool, "tidy", other, 99_999, 160_000).await.unwrap());

    // A holder that died: at its deadline another replica takes over, and the dead one's
    // renewal and release no longer count.
    assert!(jobs::claim(pool, "sweep", other, 100_000, 160_000).await.unwrap());
    assert!(!jobs::renew(pool, "sweep", &holder, 220_000).await.unwrap());
    assert!(!jobs::release(pool, "sweep", &holder).await.unwrap());
    assert_eq!(jobs::holder(pool, "sweep").await.unwrap().unwrap(), (other.to_owned(), 160_000));

    // Released: free at once.
    assert!(jobs::release(pool, "sweep", other).await.unwrap());
    assert!(jobs::claim(pool, "sweep", &holder, 100_001, 160_001).await.unwrap());

    // A scheduled run released with its next run's time: other scheduled runs wait for it, a
    // run on demand does not, and a later time is not moved back.
    assert!(jobs::release_until(pool, "sweep", &holder, 200_000).await.unwrap());
    assert!(!jobs::claim_due(pool, "sweep", other, 199_999, 260_000).await.unwrap());
    assert!(jobs::claim(pool, "sweep", other, 150_000, 260_000).await.unwrap());
    assert!(jobs::release_until(pool, "sweep", other, 180_000).await.unwrap());
    assert!(!jobs::claim_due(pool, "sweep", &holder, 199_999, 260_000).await.unwrap());
    assert!(jobs::claim_due(pool, "sweep", &holder, 200_000, 260_000).await.unwrap());
}
