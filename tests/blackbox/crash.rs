//! Crash safety at the exact points where a crash hurts, with the real binary, file-backed or
//! PostgreSQL storage and moto behind the fault proxy: the proxy holds one AWS call, keymint is
//! killed with SIGKILL while it waits, and the end state in moto is checked after the restart.
//! And three replicas on one PostgreSQL, one killed mid-way, revoking each due lease once.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use keymint_tests::*;

const USER_PATH: &str = "/keymint-crash/";

/// Short windows so the recovery paths run within a test's patience.
const FLAGS: &[&str] =
    &["--iam-consistency-window", "1s", "--intent-grace", "2s", "--lease-claim-timeout", "2s"];

/// moto, a proxy in front of it, keymint on `storage` sending its AWS calls through the proxy,
/// and the `deploy` iam_user role.
async fn start(storage: &Storage) -> (Moto, FaultProxy, Keymint) {
    let moto = Moto::start().await;
    let proxy = FaultProxy::start(&moto).await;
    let km = Keymint::start_with(storage.url(), FLAGS).await;
    km.post("aws/config/root", root_config_via(&proxy)).await.expect(200);
    write_iam_user_role(&km, "deploy", USER_PATH).await;
    (moto, proxy, km)
}

async fn users(moto: &Moto) -> Vec<String> {
    moto.user_names(USER_PATH).await
}

async fn lease_count(km: &Keymint) -> i64 {
    km.get("sys/leases/count").await.expect(200).data()["lease_count"].as_i64().unwrap()
}

async fn wait_held(proxy: &FaultProxy, n: usize, what: &str) {
    eventually(what, Duration::from_secs(30), async || (proxy.held() >= n).then_some(())).await;
}

/// DeleteUser calls that reached moto, per user name.
fn deletes_per_user(proxy: &FaultProxy) -> BTreeMap<String, usize> {
    let mut per_user = BTreeMap::new();
    for call in proxy.calls(Some("DeleteUser")).iter().filter(|c| c.forwarded()) {
        *per_user.entry(call.param("UserName").unwrap().to_owned()).or_default() += 1;
    }
    per_user
}

/// Killed after CreateUser (and its policy) but before CreateAccessKey: no lease exists, only
/// the write-ahead intent. After the restart, the sweeper tears the user down.
async fn kill_9_between_create_user_and_create_access_key(backend: Backend) {
    let storage = Storage::new(backend);
    let (moto, proxy, mut km) = start(&storage).await;
    proxy.fail("CreateAccessKey", Fault::Hold);
    let client = km.client();
    let request = tokio::spawn(async move { client.get("aws/creds/deploy").await });
    wait_held(&proxy, 1, "CreateAccessKey to be held").await;
    let half_made = users(&moto).await;
    assert_eq!(half_made.len(), 1, "the user exists, without keys");
    assert!(
        moto.iam()
            .list_access_keys()
            .user_name(&half_made[0])
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .is_empty()
    );

    km.kill9();
    request.abort();
    proxy.clear();
    proxy.release_held();
    km.restart().await;

    eventually("the half-made user to be torn down", Duration::from_secs(40), async || {
        users(&moto).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(lease_count(&km).await, 0, "the interrupted request must not have left a lease");
    assert!(km.logs().contains("abandoned creation undone"), "the sweeper did it");
    assert_eq!(deletes_per_user(&proxy), BTreeMap::from([(half_made[0].clone(), 1)]));
    assert!(
        proxy.calls(Some("CreateAccessKey")).iter().all(|c| !c.forwarded()),
        "the held CreateAccessKey must never have reached moto"
    );
}

/// Killed in the middle of tearing an expired lease's user down (access key deleted, inline
/// policy not yet): the lease stays claimed by a dead process until the claim lapses, then the
/// restarted server finishes the teardown.
async fn kill_9_during_a_revocation(backend: Backend) {
    let storage = Storage::new(backend);
    let (moto, proxy, mut km) = start(&storage).await;
    km.post("aws/config/lease", json!({"lease": "2s", "lease_max": "1h"})).await.expect(204);
    proxy.fail("DeleteUserPolicy", Fault::Hold);
    let lease = km.get("aws/creds/deploy").await.expect(200).json()["lease_id"].as_str().unwrap().to_owned();
    let user = users(&moto).await.pop().expect("the lease's user");
    wait_held(&proxy, 1, "the expiry worker's DeleteUserPolicy to be held").await;
    let iam = moto.iam();
    // The teardown's other removals run alongside the held one and finish.
    eventually("the access key to be deleted before the crash", Duration::from_secs(10), async || {
        let keys = iam.list_access_keys().user_name(&user).send().await.unwrap();
        keys.access_key_metadata().is_empty().then_some(())
    })
    .await;
    assert_eq!(iam.list_user_policies().user_name(&user).send().await.unwrap().policy_names().len(), 1);

    km.kill9();
    proxy.clear();
    proxy.release_held();
    km.restart().await;

    eventually("the user to be deleted after the restart", Duration::from_secs(40), async || {
        users(&moto).await.is_empty().then_some(())
    })
    .await;
    eventually("the lease record to go", Duration::from_secs(10), async || {
        (lease_count(&km).await == 0).then_some(())
    })
    .await;
    km.put("sys/leases/lookup", json!({"lease_id": lease})).await.assert_errors(&["invalid lease"]);
    assert_eq!(deletes_per_user(&proxy), BTreeMap::from([(user, 1)]));
}

both_backends!(kill_9_between_create_user_and_create_access_key, kill_9_during_a_revocation);

/// Three replicas on one PostgreSQL. The first is alone when 30 leases fall due; it is killed
/// while three of its DeleteUser calls are held (they never reach moto) and others are under
/// way, after the two others have started. They revoke what is left and take its claims over
/// once they lapse. In the end every user is gone and each got exactly one DeleteUser in moto:
/// no lease revoked twice, none lost.
#[tokio::test]
async fn three_replicas_on_postgres_revoke_each_lease_once() {
    const LEASES: usize = 30;
    let storage = Storage::new(Backend::Postgres);
    let (moto, proxy, mut victim) = start(&storage).await;
    let client = victim.client();
    let minted: Vec<String> =
        futures_join_all((0..LEASES).map(|_| {
            let c = client.clone();
            async move {
                c.get("aws/creds/deploy").await.expect(200).json()["lease_id"].as_str().unwrap().to_owned()
            }
        }))
        .await;
    assert_eq!(users(&moto).await.len(), LEASES);

    // Three DeleteUser calls are held; the rest go through but answer a second late, so the
    // victim dies with revocations in every state: done, under way (done in moto, not yet in
    // the database), held, not yet started.
    proxy.fail_times("DeleteUser", Fault::Hold, 3);
    proxy.fail("DeleteUser", Fault::SlowAnswer(Duration::from_secs(1)));
    for id in &minted {
        victim.put("sys/leases/revoke", json!({"lease_id": id, "sync": false})).await.expect(202);
    }
    wait_held(&proxy, 3, "three of the victim's DeleteUser calls to be held").await;
    let (a, b) =
        tokio::join!(Keymint::start_with(storage.url(), FLAGS), Keymint::start_with(storage.url(), FLAGS));
    victim.kill9();
    proxy.release_held();

    eventually("every user to be deleted by the survivors", Duration::from_secs(60), async || {
        users(&moto).await.is_empty().then_some(())
    })
    .await;
    eventually("every lease record to go", Duration::from_secs(20), async || {
        (lease_count(&a).await == 0).then_some(())
    })
    .await;
    let deletes = deletes_per_user(&proxy);
    assert_eq!(deletes.len(), LEASES, "{deletes:?}");
    assert!(deletes.values().all(|&n| n == 1), "a user got more than one DeleteUser: {deletes:?}");
    let survivors_worked =
        a.logs().contains("expired lease revoked") || b.logs().contains("expired lease revoked");
    assert!(survivors_worked, "the survivors must have taken the victim's claims over");
}

/// Awaits every future, concurrently, in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
