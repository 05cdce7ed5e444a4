//! Scheduled work across a fleet: three keymint processes on one PostgreSQL, their AWS calls
//! going through a fault proxy in front of moto, which counts what reaches AWS. A root key
//! rotation that falls due once is carried out once, and a replica killed in the middle of one
//! leaves no key behind: the rotation claim lapses and another replica finishes. The intent
//! sweep, a periodic job under a job claim, undoes an abandoned creation on one replica.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use keymint_tests::*;

/// A short claim timeout, so a dead replica's rotation is taken over within the test, and a
/// short intent grace, so the sweeper runs every 2 seconds on every replica.
const FLAGS: &[&str] =
    &["--lease-claim-timeout", "3s", "--intent-grace", "2s", "--iam-consistency-window", "1s"];
const USER_PATH: &str = "/km-fleet/";
const ROOT_USER: &str = "keymint-root";

/// moto, a proxy in front of it, three replicas (the first applies the migrations), and
/// `config/root` holding a key of the IAM user `keymint-root`, rotated hourly, through the
/// proxy. Returns the replicas and the first key.
async fn fleet(storage: &Storage) -> (Moto, FaultProxy, Vec<Keymint>, String) {
    let moto = Moto::start().await;
    let proxy = FaultProxy::start(&moto).await;
    let first = Keymint::start_with(storage.url(), FLAGS).await;
    let (second, third) =
        tokio::join!(Keymint::start_with(storage.url(), FLAGS), Keymint::start_with(storage.url(), FLAGS));
    moto.iam().create_user().user_name(ROOT_USER).send().await.expect("CreateUser");
    let made = moto.iam().create_access_key().user_name(ROOT_USER).send().await.expect("CreateAccessKey");
    let key = made.access_key().expect("a key");
    let mut config = root_config_via(&proxy);
    config["access_key"] = json!(key.access_key_id());
    config["secret_key"] = json!(key.secret_access_key());
    config["rotation_period"] = json!(3600);
    first.post("aws/config/root", config).await.expect(200);
    write_iam_user_role(&first, "deploy", USER_PATH).await;
    let k0 = key.access_key_id().to_owned();
    (moto, proxy, vec![first, second, third], k0)
}

/// Makes the root rotation due now, as an hour passing would.
fn make_root_rotation_due(storage: &Storage) {
    psql(storage.url(), "UPDATE aws_key_rotations SET next_due = 0 WHERE target = 'root'");
}

async fn root_keys(moto: &Moto) -> BTreeSet<String> {
    moto.user(ROOT_USER).await.access_keys.into_iter().collect()
}

async fn stored_key(km: &Keymint) -> String {
    km.get("aws/config/root").await.expect(200).data()["access_key"].as_str().unwrap().to_owned()
}

/// Kills (-9) the replica that claimed the due rotation; returns its index.
fn kill_the_rotation_holder(replicas: &mut [Keymint]) -> usize {
    let holder = replicas
        .iter()
        .position(|km| km.logs().contains("claimed a due key rotation"))
        .expect("the replica holding the rotation claim");
    replicas[holder].kill9();
    holder
}

/// keymint's CreateAccessKey calls for the root user that reached moto.
fn root_creations(proxy: &FaultProxy) -> Vec<ProxiedCall> {
    let calls = proxy.calls(Some("CreateAccessKey"));
    calls.into_iter().filter(|c| c.param("UserName") == Some(ROOT_USER) && c.forwarded()).collect()
}

/// Every replica reads `key` as the root key, and signs its next AWS call (a credential
/// request) with it.
async fn every_replica_uses(proxy: &FaultProxy, replicas: &[&Keymint], key: &str) {
    for km in replicas {
        assert_eq!(stored_key(km).await, key);
        km.get("aws/creds/deploy").await.expect(200);
        let created = proxy.calls(Some("CreateUser"));
        let last = created.last().expect("the credential request's CreateUser");
        assert_eq!(last.access_key.as_deref(), Some(key), "signed with the stored root key");
        assert!(last.forwarded(), "{last:?}");
    }
}

#[tokio::test]
async fn a_due_root_rotation_happens_once_across_three_replicas() {
    let storage = Storage::new(Backend::Postgres);
    let (moto, proxy, replicas, k0) = fleet(&storage).await;
    make_root_rotation_due(&storage);

    let k1 = eventually("the root key to be rotated", Duration::from_secs(60), async || {
        let key = stored_key(&replicas[1]).await;
        (key != k0).then_some(key)
    })
    .await;
    eventually("the old key to be deleted", Duration::from_secs(30), async || {
        (root_keys(&moto).await == BTreeSet::from([k1.clone()])).then_some(())
    })
    .await;
    // Every replica looks for due rotations every 5 seconds: give each several looks.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(root_creations(&proxy).len(), 1, "one CreateAccessKey reached AWS");
    assert_eq!(root_keys(&moto).await, BTreeSet::from([k1.clone()]));
    let claimed = replicas.iter().filter(|km| km.logs().contains("claimed a due key rotation")).count();
    assert_eq!(claimed, 1, "one replica claimed the rotation");
    every_replica_uses(&proxy, &replicas.iter().collect::<Vec<_>>(), &k1).await;
}

#[tokio::test]
async fn killing_the_rotating_replica_leaves_one_working_key() {
    let storage = Storage::new(Backend::Postgres);
    let (moto, proxy, mut replicas, k0) = fleet(&storage).await;
    // The first CreateAccessKey happens in AWS, but its answer is late: the replica that sent
    // it is killed before it learns the new key's id.
    proxy.fail_times("CreateAccessKey", Fault::SlowAnswer(Duration::from_secs(120)), 1);
    make_root_rotation_due(&storage);

    let orphan = eventually("the new key to exist in AWS", Duration::from_secs(30), async || {
        let keys = root_keys(&moto).await;
        (keys.len() == 2).then(|| keys.into_iter().find(|k| *k != k0).unwrap())
    })
    .await;
    let holder = kill_the_rotation_holder(&mut replicas);
    let survivors: Vec<&Keymint> =
        replicas.iter().enumerate().filter(|(i, _)| *i != holder).map(|(_, km)| km).collect();

    // The claim lapses after 3 s; the next look of a survivor takes it over.
    let stored = eventually("a survivor to finish the rotation", Duration::from_secs(60), async || {
        let key = stored_key(survivors[0]).await;
        (key != k0 && root_keys(&moto).await == BTreeSet::from([key.clone()])).then_some(key)
    })
    .await;
    assert_ne!(stored, orphan, "the key nobody recorded is not the one in use");
    assert!(survivors.iter().any(|km| km.logs().contains("claimed a due key rotation")));
    let deleted = proxy.calls(Some("DeleteAccessKey"));
    assert!(
        deleted.iter().any(|c| c.param("AccessKeyId") == Some(orphan.as_str()) && c.forwarded()),
        "the orphaned key was deleted: {deleted:?}"
    );
    assert_eq!(root_creations(&proxy).len(), 2, "the killed replica's key, then the survivor's");
    // Nothing more happens once it is done.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(root_keys(&moto).await, BTreeSet::from([stored.clone()]));
    assert_eq!(root_creations(&proxy).len(), 2);
    every_replica_uses(&proxy, &survivors, &stored).await;
}

/// A replica killed between CreateUser and CreateAccessKey leaves a write-ahead intent. The two
/// others both sweep every 2 seconds, and the teardown's DeleteUser answers 4 seconds late:
/// without the job claim the second would tear the same user down beside the first.
#[tokio::test]
async fn an_abandoned_creation_is_undone_by_one_replica() {
    let storage = Storage::new(Backend::Postgres);
    let (moto, proxy, mut replicas, _) = fleet(&storage).await;
    proxy.fail("CreateAccessKey", Fault::Hold);
    let client = replicas[0].client();
    let request = tokio::spawn(async move { client.get("aws/creds/deploy").await });
    eventually("CreateAccessKey to be held", Duration::from_secs(30), async || {
        (proxy.held() == 1).then_some(())
    })
    .await;
    let half_made = moto.user_names(USER_PATH).await;
    assert_eq!(half_made.len(), 1, "the user exists, without keys");
    replicas[0].kill9();
    request.abort();
    proxy.clear();
    proxy.release_held();
    proxy.fail("DeleteUser", Fault::SlowAnswer(Duration::from_secs(4)));

    eventually("the half-made user to be torn down", Duration::from_secs(60), async || {
        moto.user_names(USER_PATH).await.is_empty().then_some(())
    })
    .await;
    // Let every survivor sweep a few more times.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let undone: usize =
        replicas[1..].iter().map(|km| km.logs().matches("abandoned creation undone").count()).sum();
    assert_eq!(undone, 1, "one replica undid the creation");
    let deletes = proxy.calls(Some("DeleteUser"));
    let deletes = deletes.iter().filter(|c| c.forwarded() && c.param("UserName") == Some(&half_made[0]));
    assert_eq!(deletes.count(), 1);
}

/// The same kill during a static role's rotation: its user ends with the one key
/// `static-creds` returns, never losing the key keymint did not make.
#[tokio::test]
async fn killing_a_replica_mid_static_rotation_leaves_the_users_keys_right() {
    let storage = Storage::new(Backend::Postgres);
    let (moto, proxy, mut replicas, _) = fleet(&storage).await;
    moto.iam().create_user().user_name("app").send().await.expect("CreateUser");
    let made = moto.iam().create_access_key().user_name("app").send().await.expect("CreateAccessKey");
    let foreign = made.access_key().unwrap().access_key_id().to_owned();
    let app_keys = async || -> BTreeSet<String> { moto.user("app").await.access_keys.into_iter().collect() };
    replicas[0]
        .post("aws/static-roles/app", json!({"username": "app", "rotation_period": "1h"}))
        .await
        .expect(200);
    let creds = async |km: &Keymint| {
        km.get("aws/static-creds/app").await.expect(200).data()["access_key"].as_str().unwrap().to_owned()
    };
    let first = creds(&replicas[0]).await;
    assert_eq!(app_keys().await, BTreeSet::from([foreign.clone(), first.clone()]));

    proxy.fail_times("CreateAccessKey", Fault::SlowAnswer(Duration::from_secs(120)), 1);
    psql(storage.url(), "UPDATE aws_key_rotations SET next_due = 0 WHERE target = 'static-roles/app'");
    // IAM allows two keys: the rotation deletes keymint's own to make room, then creates.
    let orphan = eventually("the new key to exist in AWS", Duration::from_secs(30), async || {
        app_keys().await.into_iter().find(|k| *k != first && *k != foreign)
    })
    .await;
    let holder = kill_the_rotation_holder(&mut replicas);
    let survivor = replicas.iter().enumerate().find(|(i, _)| *i != holder).map(|(_, km)| km).unwrap();

    let stored = eventually("a survivor to finish the rotation", Duration::from_secs(60), async || {
        let key = creds(survivor).await;
        (key != first && app_keys().await == BTreeSet::from([foreign.clone(), key.clone()])).then_some(key)
    })
    .await;
    assert_ne!(stored, orphan);
    let deleted = proxy.calls(Some("DeleteAccessKey"));
    assert!(
        deleted.iter().any(|c| c.param("AccessKeyId") == Some(orphan.as_str()) && c.forwarded()),
        "the orphaned key was deleted: {deleted:?}"
    );
}
