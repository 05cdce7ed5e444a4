//! Leases after they are issued: lookup, listing, renewal within the max TTL, revocation (one,
//! by prefix, forced, asynchronous, legacy paths), and the expiry worker, across a kill -9.
//! "Revoked" is checked in moto: the IAM user is gone.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use keymint_tests::*;

const USER_PATH: &str = "/keymint-leases/";

/// Writes the `deploy` role: iam_user, one inline policy, users under [`USER_PATH`].
async fn write_role(km: &Keymint) {
    write_iam_user_role(km, "deploy", USER_PATH).await;
}

async fn env_with_role(backend: Backend, lease: &str, lease_max: &str) -> TestEnv {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    write_role(&env.km).await;
    env.km.post("aws/config/lease", json!({"lease": lease, "lease_max": lease_max})).await.expect(204);
    env
}

/// Like [`env_with_role`] for a server started with extra flags.
async fn start_with_role(backend: Backend, args: &[&str]) -> (Storage, Moto, Keymint) {
    let storage = Storage::new(backend);
    let (moto, km) = tokio::join!(Moto::start(), Keymint::start_with(storage.url(), args));
    km.post("aws/config/root", root_config(&moto)).await.expect(200);
    write_role(&km).await;
    (storage, moto, km)
}

async fn mint(km: &Keymint) -> String {
    km.get("aws/creds/deploy").await.expect(200).json()["lease_id"].as_str().unwrap().to_owned()
}

async fn users(moto: &Moto) -> Vec<String> {
    moto.user_names(USER_PATH).await
}

async fn wait_no_users(moto: &Moto, what: &str) {
    eventually(what, Duration::from_secs(40), async || users(moto).await.is_empty().then_some(())).await;
}

async fn lookup_renew_and_revoke(backend: Backend) {
    let env = env_with_role(backend, "1h", "2h").await;
    let km = &env.km;
    let id = mint(km).await;
    assert_eq!(users(&env.moto).await.len(), 1);

    let found = km.put("sys/leases/lookup", json!({"lease_id": id})).await.expect(200);
    let data = found.data();
    assert_eq!(data["id"], id.as_str(), "{found}");
    assert_eq!(data["renewable"], true);
    assert_eq!(data["credential_type"], "iam_user", "{found}");
    let ttl = data["ttl"].as_i64().unwrap();
    assert!((3590..=3600).contains(&ttl), "{found}");
    assert!(data["issue_time"].as_str().unwrap().ends_with('Z'), "{found}");
    assert!(data["last_renewal"].is_null());

    let listed = km.list("sys/leases/lookup/aws/creds/").await.expect(200);
    assert_eq!(listed.data()["keys"], json!(["deploy/"]), "{listed}");
    let listed = km.list("sys/leases/lookup/aws/creds/deploy/").await.expect(200);
    assert_eq!(listed.data()["keys"], json!([id.rsplit('/').next().unwrap()]), "{listed}");

    let renewed = km.put("sys/leases/renew", json!({"lease_id": id, "increment": "30m"})).await.expect(200);
    assert_eq!(renewed.json()["lease_id"], id.as_str());
    assert_eq!(renewed.json()["lease_duration"], 1800, "{renewed}");
    assert_eq!(renewed.json()["renewable"], true);
    // Beyond the max TTL (2h from issue) the renewal is cut, with Vault's warning.
    let capped = km.put(&format!("sys/leases/renew/{id}"), json!({"increment": "5h"})).await.expect(200);
    let duration = capped.json()["lease_duration"].as_i64().unwrap();
    assert!((7190..=7200).contains(&duration), "{capped}");
    assert!(capped.warnings()[0].contains("exceeded the effective max_ttl of \"2h0m0s\""), "{capped}");
    let looked = km.put("sys/leases/lookup", json!({"lease_id": id})).await.expect(200);
    assert!(looked.data()["last_renewal"].is_string(), "{looked}");

    km.put(&format!("sys/leases/revoke/{id}"), json!({"sync": true})).await.expect(204);
    assert!(users(&env.moto).await.is_empty(), "the IAM user must be deleted by revocation");
    km.put("sys/leases/lookup", json!({"lease_id": id})).await.assert_errors(&["invalid lease"]);
    km.put("sys/leases/renew", json!({"lease_id": id})).await.assert_errors(&["lease not found"]);
    // Revoking what does not exist is a no-op, as in Vault.
    km.put("sys/leases/revoke", json!({"lease_id": id})).await.expect(204);
    km.put("sys/leases/lookup", json!({})).await.assert_errors(&["lease_id must be specified"]);
    km.list("sys/leases/lookup/aws/creds/deploy/").await.expect(404);
}

async fn sts_leases_are_not_renewable(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    let role_arn = env.moto.create_role("km-lease-role").await;
    env.km
        .post("aws/roles/ar", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);
    let creds = env.km.get("aws/creds/ar").await.expect(200);
    let id = creds.json()["lease_id"].as_str().unwrap().to_owned();
    let renew = env.km.put("sys/leases/renew", json!({"lease_id": id})).await;
    renew.assert_error_prefix(400, "lease is not renewable");
    let looked = env.km.put("sys/leases/lookup", json!({"lease_id": id})).await.expect(200);
    assert_eq!(looked.data()["renewable"], false);
    // Nothing to undo in AWS: revocation just ends the lease.
    env.km.put(&format!("sys/revoke/{id}"), json!({})).await.expect(204);
    env.km.put("sys/leases/lookup", json!({"lease_id": id})).await.assert_errors(&["invalid lease"]);
}

async fn expired_leases_are_revoked_even_across_kill_9(backend: Backend) {
    let mut env = env_with_role(backend, "3s", "1h").await;
    let first = mint(&env.km).await;
    wait_no_users(&env.moto, "the expired lease's user to be deleted").await;
    env.km.put("sys/leases/lookup", json!({"lease_id": first})).await.assert_errors(&["invalid lease"]);

    // A lease that falls due while keymint is dead is revoked after the restart.
    mint(&env.km).await;
    env.km.kill9();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(users(&env.moto).await.len(), 1, "nobody revoked it while keymint was down");
    env.km.restart().await;
    wait_no_users(&env.moto, "the lease that fell due during the outage to be revoked").await;
}

async fn revoke_prefix_force_and_async(backend: Backend) {
    let env = env_with_role(backend, "1h", "2h").await;
    let km = &env.km;
    for _ in 0..3 {
        mint(km).await;
    }
    assert_eq!(users(&env.moto).await.len(), 3);
    km.put("sys/leases/revoke-prefix/aws/creds/deploy", json!({"sync": true})).await.expect(204);
    assert!(users(&env.moto).await.is_empty());
    km.list("sys/leases/lookup/aws/creds/").await.expect(404);

    // Legacy path, forced: same outcome when AWS cooperates.
    mint(km).await;
    km.put("sys/revoke-force/aws/creds", json!({})).await.expect(204);
    assert!(users(&env.moto).await.is_empty());

    // Asynchronous revocation: 202 now, done by the worker shortly after.
    let id = mint(km).await;
    km.put("sys/leases/revoke", json!({"lease_id": id, "sync": false})).await.expect(202);
    wait_no_users(&env.moto, "the asynchronously revoked lease's user to be deleted").await;
    mint(km).await;
    km.put("sys/leases/revoke-prefix/aws/creds/deploy", json!({"sync": false})).await.expect(202);
    wait_no_users(&env.moto, "the leases revoked by prefix with sync=false to be revoked").await;

    // A prefix is a folder, as in Vault: `aws/creds/deploy` is not `aws/creds/deploy2/…`. A
    // whole lease id names that one lease.
    km.post(
        "aws/roles/deploy2",
        json!({"credential_type": "iam_user", "policy_document": S3_READ_POLICY, "user_path": USER_PATH}),
    )
    .await
    .expect(204);
    let other = km.get("aws/creds/deploy2").await.expect(200).json()["lease_id"].as_str().unwrap().to_owned();
    let (first, second) = (mint(km).await, mint(km).await);
    km.put(&format!("sys/leases/revoke-prefix/{first}"), json!({})).await.expect(204);
    for (id, alive) in [(&first, false), (&second, true), (&other, true)] {
        let status = km.put("sys/leases/lookup", json!({"lease_id": id})).await.status.as_u16();
        assert_eq!(status == 200, alive, "{id}: {status}");
    }
    km.put("sys/leases/revoke-prefix/aws/creds/deploy", json!({})).await.expect(204);
    km.put("sys/leases/lookup", json!({"lease_id": second})).await.expect(400);
    km.put("sys/leases/lookup", json!({"lease_id": other})).await.expect(200);
    km.put("sys/leases/revoke-prefix/aws/creds/deploy2/", json!({})).await.expect(204);
    assert!(users(&env.moto).await.is_empty());

    let tidy = km.post("sys/leases/tidy", json!({})).await.expect(202);
    assert!(tidy.warnings()[0].starts_with("Tidy operation successfully started"), "{tidy}");
}

async fn disabling_a_mount_revokes_its_leases(backend: Backend) {
    let env = env_with_role(backend, "1h", "2h").await;
    mint(&env.km).await;
    mint(&env.km).await;
    env.km.delete("sys/mounts/aws").await.expect(204);
    assert!(users(&env.moto).await.is_empty(), "disabling the mount must delete its users");
    let mounts = env.km.get("sys/mounts").await.expect(200);
    assert!(mounts.data().get("aws/").is_none(), "{mounts}");
}

both_backends!(
    lookup_renew_and_revoke,
    sts_leases_are_not_renewable,
    expired_leases_are_revoked_even_across_kill_9,
    revoke_prefix_force_and_async,
    disabling_a_mount_revokes_its_leases,
);

/// A lease AWS refuses to revoke (keymint's keys lose the right to delete users) is kept,
/// reported with its error, and listed as soon as it is flagged.
async fn failed_revocations_are_kept_and_reported(backend: Backend) {
    let env = env_with_role(backend, "1h", "2h").await;
    let id = mint(&env.km).await;
    // Point the mount at a dead endpoint: revocation now fails with AWS trouble.
    let mut root = root_config(&env.moto);
    root["iam_endpoint"] = json!(format!("http://127.0.0.1:{}", free_port()));
    root["max_retries"] = json!(0);
    root["verify_connection"] = json!(false);
    env.km.post("aws/config/root", root).await.expect(204);

    let failed = env.km.put("sys/leases/revoke", json!({"lease_id": id})).await;
    failed.assert_error_prefix(400, "failed to revoke entry");
    let looked = env.km.put("sys/leases/lookup", json!({"lease_id": id})).await.expect(200);
    assert_eq!(looked.data()["revocation_attempts"], 1, "{looked}");
    assert!(looked.data()["last_error"].as_str().unwrap().contains("could not reach AWS"), "{looked}");
    assert_eq!(users(&env.moto).await.len(), 1, "the user is still there and still accounted for");

    let count = env.km.get("sys/leases/count").await.expect(200);
    assert_eq!(count.data()["lease_count"], 1, "{count}");
    let listed = env.km.get("sys/leases?type=irrevocable").await.expect(200);
    assert_eq!(listed.data()["lease_count"], 0, "one failure is not irrevocable yet: {listed}");
    env.km.get("sys/leases?type=bogus").await.assert_error_prefix(400, "invalid type");

    // Forcing drops the record and says what was left behind in AWS.
    let forced = env.km.put("sys/leases/revoke-force/aws/creds/deploy", json!({})).await.expect(200);
    assert!(forced.warnings().iter().any(|w| w.contains(&id)), "{forced}");
    env.km.put("sys/leases/lookup", json!({"lease_id": id})).await.assert_errors(&["invalid lease"]);
}

both_backends!(failed_revocations_are_kept_and_reported);

/// kill -9 in the middle of a burst of 20 concurrent iam_user requests: after the restart and
/// the grace period, every IAM user keymint created belongs to a live lease; the rest (users
/// whose creation was cut short) are torn down.
async fn kill_9_during_a_burst_loses_no_user(backend: Backend) {
    let (_storage, moto, mut km) =
        start_with_role(backend, &["--iam-consistency-window", "1s", "--intent-grace", "3s"]).await;

    let client = km.client();
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.get("aws/creds/deploy").await })
        })
        .collect();
    // Let some requests get past CreateUser, then pull the plug.
    eventually("a user to be created", Duration::from_secs(20), async || {
        (!users(&moto).await.is_empty()).then_some(())
    })
    .await;
    km.kill9();
    for request in burst {
        let _ = request.await;
    }
    let created = users(&moto).await;
    assert!(!created.is_empty());

    km.restart().await;
    // After the grace period, each remaining user must carry the tag of a lease that exists.
    eventually("every remaining user to belong to a live lease", Duration::from_secs(40), async || {
        for name in users(&moto).await {
            // The sweeper may delete the user between the listing and this call: look again.
            let tags = moto.iam().list_user_tags().user_name(&name).send().await.ok()?;
            let lease = tags.tags().iter().find(|t| t.key() == "keymint:lease")?.value().to_owned();
            let found = km.put("sys/leases/lookup", json!({"lease_id": lease})).await;
            if found.status != 200 {
                return None;
            }
        }
        Some(())
    })
    .await;
}

both_backends!(kill_9_during_a_burst_loses_no_user);

/// Beyond Vault: a role's own TTLs for iam_user leases win over the mount-wide config/lease, at
/// issue and at renewal; and a lease asked for as an orphan is not tied to the token.
async fn role_ttls_and_orphan_leases(backend: Backend) {
    let env = env_with_role(backend, "1h", "2h").await;
    let km = &env.km;
    km.post("aws/roles/deploy", json!({"default_ttl": "10m", "max_ttl": "20m"})).await.expect(204);
    let read = km.get("aws/roles/deploy").await.expect(200);
    assert_eq!(
        (read.data()["default_ttl"].as_u64(), read.data()["max_ttl"].as_u64()),
        (Some(600), Some(1200))
    );

    let creds = km.get("aws/creds/deploy?orphan=true").await.expect(200);
    assert_eq!(creds.json()["lease_duration"], 600, "{creds}");
    let id = creds.json()["lease_id"].as_str().unwrap().to_owned();
    let looked = km.put("sys/leases/lookup", json!({"lease_id": id})).await.expect(200);
    assert_eq!(looked.data()["orphan"], true, "{looked}");

    // Renewal honours the role's max even after the role is deleted.
    km.delete("aws/roles/deploy").await.expect(204);
    let renewed = km.put("sys/leases/renew", json!({"lease_id": id, "increment": "1h"})).await.expect(200);
    let duration = renewed.json()["lease_duration"].as_i64().unwrap();
    assert!((1190..=1200).contains(&duration), "{renewed}");
    assert!(renewed.warnings()[0].contains("\"20m0s\""), "{renewed}");

    km.post("aws/roles/ar", json!({"credential_type": "assumed_role", "default_ttl": "1h"}))
        .await
        .assert_error_prefix(400, "error(s) validating supplied role data");
}

both_backends!(role_ttls_and_orphan_leases);

/// The reconciler lists (dry run) and removes IAM users carrying this installation's tags for
/// the mount that no lease or intent accounts for, and leaves every other user alone.
async fn reconciler_removes_only_this_installations_strays(backend: Backend) {
    let (_storage, moto, km) = start_with_role(backend, &["--iam-consistency-window", "1s"]).await;
    let live = km.get("aws/creds/deploy").await.expect(200);
    let ours = installation_id(&km).await;
    let tag = |k: &str, v: &str| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().unwrap();
    let make = async |name: &str, installation: &str| {
        moto.iam()
            .create_user()
            .user_name(name)
            .path(USER_PATH)
            .tags(tag("keymint:owner", "keymint"))
            .tags(tag("keymint:installation", installation))
            .tags(tag("keymint:lease", &format!("aws/creds/deploy/{name}")))
            .send()
            .await
            .unwrap();
    };
    make("stray", &ours).await;
    make("someone-elses", "another-installation").await;
    moto.iam().create_user().user_name("plain").path(USER_PATH).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let listed = km.get("aws/reconcile").await.expect(200);
    let strays: Vec<&str> = listed.data()["strays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_name"].as_str().unwrap())
        .collect();
    assert_eq!(strays, ["stray"], "{listed}");
    assert_eq!(users(&moto).await.len(), 4, "a listing removes nothing");

    let removed = km.post("aws/reconcile", json!({})).await.expect(200);
    assert_eq!(removed.data()["removed"][0]["user_name"], "stray", "{removed}");
    let mut left = users(&moto).await;
    left.sort();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&"plain".to_owned()) && left.contains(&"someone-elses".to_owned()));
    // The live lease's user is still there and still works.
    let data = live.data();
    let arn = moto
        .caller_arn(data["access_key"].as_str().unwrap(), data["secret_key"].as_str().unwrap(), None)
        .await;
    assert!(arn.contains(":user/keymint-leases/"), "{arn}");
}

both_backends!(reconciler_removes_only_this_installations_strays);
