//! Access keys keymint rotates: the root key (`config/rotate-root`, and on the schedule of
//! `rotation_period`/`rotation_schedule`) and static roles (`static-roles/`, `static-creds/`).
//! Each test checks what exists in (moto's) IAM afterwards: which keys a user holds.
//!
//! moto tells who calls GetUser without a UserName from the signing key, so the root config
//! here holds a real key of a moto IAM user, made by the harness.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use keymint_tests::*;

both_backends!(
    rotate_root_replaces_the_key_and_deletes_the_old_one,
    scheduled_rotation_happens_once_across_replicas,
    static_roles_follow_vaults_contract
);

/// An IAM user in moto with one access key, made by the harness: (key id, secret).
async fn user_with_key(moto: &Moto, name: &str) -> (String, String) {
    moto.iam().create_user().user_name(name).send().await.expect("CreateUser");
    add_key(moto, name).await
}

async fn add_key(moto: &Moto, user: &str) -> (String, String) {
    let out = moto.iam().create_access_key().user_name(user).send().await.expect("CreateAccessKey");
    let key = out.access_key().expect("a key");
    (key.access_key_id().to_owned(), key.secret_access_key().to_owned())
}

/// The access keys `user` holds in moto.
async fn keys_of(moto: &Moto, user: &str) -> BTreeSet<String> {
    moto.user(user).await.access_keys.into_iter().collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

/// A `config/root` body with the given keys, calls going to `endpoint`.
fn root_with(endpoint: &str, key: &str, secret: &str) -> Value {
    json!({
        "access_key": key,
        "secret_key": secret,
        "region": "us-east-1",
        "iam_endpoint": endpoint,
        "sts_endpoint": endpoint,
    })
}

async fn root_key(km: &Keymint) -> String {
    km.get("aws/config/root").await.expect(200).data()["access_key"].as_str().unwrap().to_owned()
}

async fn rotate(km: &Keymint) -> Resp {
    km.put("aws/config/rotate-root", json!({})).await
}

/// Calls keymint made (not the harness) of `action` for IAM user `user`.
fn keymint_calls(moto: &Moto, action: &str, user: &str) -> usize {
    let calls = moto.calls(Some(action));
    calls
        .iter()
        .filter(|c| c.access_key.as_deref() != Some(DUMMY_ACCESS_KEY) && c.param("UserName") == Some(user))
        .count()
}

fn unix_secs_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-03-01T12:00:05.12Z`).
fn unix_secs(rfc3339: &str) -> i64 {
    let (date, time) =
        rfc3339.strip_suffix('Z').and_then(|t| t.split_once('T')).expect("an RFC 3339 UTC time");
    let num = |s: &str| s.parse::<i64>().unwrap_or_else(|_| panic!("not a time: {rfc3339}"));
    let d: Vec<i64> = date.split('-').map(num).collect();
    let t: Vec<i64> = time.split('.').next().unwrap().split(':').map(num).collect();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]
}

async fn rotate_root_replaces_the_key_and_deletes_the_old_one(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let proxy = FaultProxy::start(&env.moto).await;
    let km = &env.km;

    // Vault's refusals come first.
    rotate(km)
        .await
        .expect(500)
        .assert_errors(&["1 error occurred:\n\t* no configuration found for config/root\n\n"]);
    km.post("aws/config/root", json!({"region": "us-east-1", "verify_connection": false})).await.expect(204);
    rotate(km)
        .await
        .expect(400)
        .assert_errors(&["Cannot call config/rotate-root when either access_key or secret_key is empty"]);
    km.get("aws/config/rotate-root").await.expect(405);

    let (k0, s0) = user_with_key(&env.moto, "keymint-root").await;
    km.post("aws/config/root", root_with(&proxy.url(), &k0, &s0)).await.expect(200);
    let rotated = rotate(km).await.expect(200);
    let k1 = rotated.data()["access_key"].as_str().unwrap().to_owned();
    assert_eq!(rotated.data().as_object().unwrap().len(), 1, "only the access key is returned: {rotated}");
    assert_ne!(k1, k0);
    assert_eq!(keys_of(&env.moto, "keymint-root").await, set(&[&k1]), "the old key is gone");
    assert_eq!(root_key(km).await, k1);

    // The new key was checked before the old one went, and the old one went with its own key.
    let probes = proxy.calls(Some("GetCallerIdentity"));
    assert!(probes.iter().any(|c| c.access_key.as_deref() == Some(k1.as_str())), "{probes:?}");
    let deleted = proxy.calls(Some("DeleteAccessKey"));
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0].param("AccessKeyId"), Some(k0.as_str()));
    assert_eq!(deleted[0].param("UserName"), Some("keymint-root"));
    assert_eq!(deleted[0].access_key.as_deref(), Some(k0.as_str()), "signed with the old key itself");
    let probe_at = proxy.calls(None).iter().position(|c| c.access_key.as_deref() == Some(k1.as_str()));
    let delete_at = proxy.calls(None).iter().position(|c| c.action == "DeleteAccessKey");
    assert!(probe_at < delete_at, "the new key is verified before the old one is deleted");

    // keymint works with the new key at once: its cached clients were dropped.
    write_iam_user_role(km, "deploy", "/km-rotation/").await;
    km.get("aws/creds/deploy").await.expect(200);
    let created = proxy.calls(Some("CreateUser"));
    assert_eq!(created.last().unwrap().access_key.as_deref(), Some(k1.as_str()), "{created:?}");

    let k2 = rotate(km).await.expect(200).data()["access_key"].as_str().unwrap().to_owned();
    assert_ne!(k2, k1);
    assert_eq!(keys_of(&env.moto, "keymint-root").await, set(&[&k2]));
    assert_eq!(root_key(km).await, k2);
}

#[tokio::test]
async fn rotate_root_failures_leave_the_old_key_in_place() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let proxy = FaultProxy::start(&env.moto).await;
    let (km, moto) = (&env.km, &env.moto);
    let (k0, s0) = user_with_key(moto, "keymint-root").await;
    let mut config = root_with(&proxy.url(), &k0, &s0);
    config["retry_deadline"] = json!("2s");
    km.post("aws/config/root", config).await.expect(200);

    // AWS fails CreateAccessKey: nothing changes.
    proxy.fail("CreateAccessKey", Fault::ServerError(500));
    let failed = rotate(km).await.expect(500);
    assert!(failed.errors()[0].contains("error calling CreateAccessKey"), "{failed}");
    assert_eq!(root_key(km).await, k0);
    assert_eq!(keys_of(moto, "keymint-root").await, set(&[&k0]));
    proxy.clear();

    // The key is made but the answer is lost: the orphan is deleted and the call made again.
    let count = |action: &str| proxy.calls(Some(action)).len();
    let (creates, deletes) = (count("CreateAccessKey"), count("DeleteAccessKey"));
    proxy.fail_times("CreateAccessKey", Fault::DropAfterForward, 1);
    let k1 = rotate(km).await.expect(200).data()["access_key"].as_str().unwrap().to_owned();
    assert_eq!(keys_of(moto, "keymint-root").await, set(&[&k1]), "no key without a secret is left");
    assert_eq!(count("CreateAccessKey") - creates, 2);
    assert_eq!(count("DeleteAccessKey") - deletes, 2, "the orphan, then the old key");

    // AWS takes a few seconds to accept the new key: keymint waits for it.
    proxy.delay_new_keys(Duration::from_secs(3));
    let k2 = rotate(km).await.expect(200).data()["access_key"].as_str().unwrap().to_owned();
    let probes: Vec<_> = proxy
        .calls(Some("GetCallerIdentity"))
        .into_iter()
        .filter(|c| c.access_key.as_deref() == Some(&k2))
        .collect();
    assert!(probes.len() > 1 && probes.last().unwrap().outcome == Outcome::Answered(200), "{probes:?}");
    assert_eq!(keys_of(moto, "keymint-root").await, set(&[&k2]));
    proxy.clear();

    // The old key cannot be deleted: the new one is in use, the old one goes later.
    proxy.fail("DeleteAccessKey", Fault::ServerError(500));
    let rotated = rotate(km).await.expect(200);
    let k3 = rotated.data()["access_key"].as_str().unwrap().to_owned();
    assert!(
        rotated.warnings().iter().any(|w| w.contains(&k2) && w.contains("could not be deleted")),
        "{rotated}"
    );
    assert_eq!(root_key(km).await, k3);
    assert_eq!(keys_of(moto, "keymint-root").await, set(&[&k2, &k3]));
    proxy.clear();
    eventually("the old root key to be deleted in the background", Duration::from_secs(60), async || {
        (keys_of(moto, "keymint-root").await == set(&[&k3])).then_some(())
    })
    .await;

    // A key AWS never accepts is deleted again, and config/root keeps the old one.
    proxy.delay_new_keys(Duration::from_secs(600));
    let failed = rotate(km).await.expect(500);
    assert!(failed.errors()[0].contains("did not accept the new access key"), "{failed}");
    assert_eq!(root_key(km).await, k3);
    assert_eq!(keys_of(moto, "keymint-root").await, set(&[&k3]));
}

async fn scheduled_rotation_happens_once_across_replicas(backend: Backend) {
    let storage = Storage::new(backend);
    // One after the other: the first applies the migrations.
    let (moto, a) = tokio::join!(Moto::start(), Keymint::start(storage.url()));
    let b = Keymint::start(storage.url()).await;
    let (k0, s0) = user_with_key(&moto, "keymint-root").await;
    let mut config = root_with(&moto.url(), &k0, &s0);
    config["rotation_period"] = json!(60);
    a.post("aws/config/root", config).await.expect(200);
    let read = b.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["rotation_period"], 60, "{read}");
    assert!(read.data()["next_rotation"].is_string(), "{read}");

    // A static role whose user also holds a key keymint did not make.
    moto.iam().create_user().user_name("app").send().await.expect("CreateUser");
    let (foreign, _) = add_key(&moto, "app").await;
    b.post("aws/static-roles/app", json!({"username": "app", "rotation_period": "1m"})).await.expect(200);
    let first =
        a.get("aws/static-creds/app").await.expect(200).data()["access_key"].as_str().unwrap().to_owned();
    assert_eq!(keys_of(&moto, "app").await, set(&[&foreign, &first]));

    let (k1, second) = eventually("both keys to be rotated", Duration::from_secs(150), async || {
        let root = root_key(&b).await;
        let creds = a.get("aws/static-creds/app").await.expect(200);
        let app = creds.data()["access_key"].as_str().unwrap().to_owned();
        (root != k0 && app != first).then_some((root, app))
    })
    .await;
    // Two replicas, one rotation each.
    assert_eq!(keymint_calls(&moto, "CreateAccessKey", "keymint-root"), 1);
    assert_eq!(keymint_calls(&moto, "CreateAccessKey", "app"), 2, "the first key, then one rotation");
    assert_eq!(keys_of(&moto, "keymint-root").await, set(&[&k1]));
    // keymint made room by deleting its own key, never the other one.
    assert_eq!(keys_of(&moto, "app").await, set(&[&foreign, &second]));
    let read = a.get("aws/config/root").await.expect(200);
    assert_eq!(read.data()["last_rotation_error"], "", "{read}");
}

async fn static_roles_follow_vaults_contract(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    let (km, moto) = (&env.km, &env.moto);
    let svc = moto.iam().create_user().user_name("svc").send().await.expect("CreateUser");
    let svc = svc.user().unwrap().clone();

    let write = async |name: &str, body: Value| km.post(&format!("aws/static-roles/{name}"), body).await;
    write("r", json!({})).await.expect(400).assert_errors(&["missing \"username\" parameter"]);
    write("r", json!({"username": "svc"}))
        .await
        .expect(400)
        .assert_errors(&["missing \"rotation_period\" parameter"]);
    write("r", json!({"username": "svc", "rotation_period": 59})).await.expect(500).assert_errors(&[
        "1 error occurred:\n\t* role rotation period out of range: must be greater than 60.00 seconds\n\n",
    ]);
    let cross = json!({"username": "svc", "rotation_period": "1h", "assume_role_arn": "arn:aws:iam::123456789012:role/x"});
    write("r", cross).await.expect(500).assert_errors(&[
        "1 error occurred:\n\t* cross-account static roles are only supported in Vault Enterprise\n\n",
    ]);
    write("r", json!({"username": "nobody", "rotation_period": 3600}))
        .await
        .assert_error_prefix(500, "1 error occurred:\n\t* unable to validate username \"nobody\": ");
    km.get("aws/static-roles/r").await.expect(404);
    km.list("aws/static-roles").await.expect(404);
    km.get("aws/static-creds/r").await.expect(404);

    let written = write("r", json!({"username": "svc", "rotation_period": "1h"})).await.expect(200);
    let expected = json!({
        "name": "r", "id": svc.user_id(), "username": "svc", "rotation_period": 3600,
        "assume_role_arn": "", "assume_role_session_name": "", "external_id": "",
    });
    assert_eq!(written.data(), &expected, "{written}");
    assert_eq!(km.get("aws/static-roles/r").await.expect(200).data(), &expected);
    assert_eq!(km.list("aws/static-roles").await.expect(200).data()["keys"], json!(["r"]));

    let creds = km.get("aws/static-creds/r").await.expect(200);
    let body = creds.json();
    assert_eq!(
        (&body["lease_id"], &body["lease_duration"], &body["renewable"]),
        (&json!(""), &json!(0), &json!(false))
    );
    let mut fields: Vec<&String> = creds.data().as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["access_key", "expiration", "secret_key"], "{creds}");
    let (key, secret) =
        (creds.data()["access_key"].as_str().unwrap(), creds.data()["secret_key"].as_str().unwrap());
    assert_eq!(keys_of(moto, "svc").await, set(&[key]));
    assert_eq!(moto.caller_arn(key, secret, None).await, svc.arn());
    let expiration = |creds: &Resp| unix_secs(creds.data()["expiration"].as_str().unwrap());
    let now = unix_secs_now();
    assert!((now + 3590..=now + 3600).contains(&expiration(&creds)), "expires in an hour: {creds}");

    // A new period moves the next rotation; the key stays.
    let updated = write("r", json!({"rotation_period": "2h", "bogus": 1})).await.expect(200);
    assert_eq!(updated.data()["rotation_period"], 7200, "{updated}");
    assert!(
        updated.warnings().contains(&"Endpoint ignored these unrecognized parameters: [bogus]".to_owned())
    );
    let again = km.get("aws/static-creds/r").await.expect(200);
    assert_eq!(again.data()["access_key"], key);
    let now = unix_secs_now();
    assert!((now + 7190..=now + 7200).contains(&expiration(&again)), "expires in two hours: {again}");

    // Another user under the role: refused.
    moto.iam().create_user().user_name("other").send().await.expect("CreateUser");
    write("r", json!({"username": "other"})).await.assert_error_prefix(
        500,
        "1 error occurred:\n\t* AWS GetUser returned a user, but the ID did not match",
    );

    // Delete takes keymint's key with it.
    km.delete("aws/static-roles/r").await.expect(204);
    assert_eq!(keys_of(moto, "svc").await, set(&[]));
    km.get("aws/static-roles/r").await.expect(404);
    km.get("aws/static-creds/r").await.expect(404);
    km.delete("aws/static-roles/r").await.expect(204);

    // Keys keymint did not make are never touched.
    moto.iam().create_user().user_name("full").send().await.expect("CreateUser");
    let (a1, _) = add_key(moto, "full").await;
    let (a2, _) = add_key(moto, "full").await;
    let refused = write("full", json!({"username": "full", "rotation_period": 3600})).await.expect(400);
    assert!(refused.errors()[0].contains("neither created by keymint"), "{refused}");
    assert_eq!(keys_of(moto, "full").await, set(&[&a1, &a2]));
    km.get("aws/static-roles/full").await.expect(404);

    moto.iam().create_user().user_name("half").send().await.expect("CreateUser");
    let (theirs, _) = add_key(moto, "half").await;
    write("half", json!({"username": "half", "rotation_period": 3600})).await.expect(200);
    assert_eq!(keys_of(moto, "half").await.len(), 2);
    km.delete("aws/static-roles/half").await.expect(204);
    assert_eq!(keys_of(moto, "half").await, set(&[&theirs]));
}

/// Static roles have no existence check in Vault: creating one needs `update`, as changing
/// it does; `create` alone is not enough.
#[tokio::test]
async fn static_roles_need_update_as_in_vault() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let km = &env.km;
    env.moto.iam().create_user().user_name("svc").send().await.expect("CreateUser");
    let token = async |caps: &str| {
        let name = format!("static-{}", caps.replace([',', '"', ' '], ""));
        let policy = format!("path \"aws/static-roles/*\" {{\n capabilities = [{caps}]\n}}\n");
        km.put(&format!("sys/policies/acl/{name}"), json!({"policy": policy})).await.expect(204);
        let created =
            km.post("auth/token/create", json!({"policies": [name], "no_default_policy": true})).await;
        km.with_token(created.expect(200).json()["auth"]["client_token"].as_str().unwrap())
    };
    let body = json!({"username": "svc", "rotation_period": 3600});
    token("\"create\"").await.post("aws/static-roles/r", body.clone()).await.expect(403);
    let update = token("\"update\"").await;
    update.post("aws/static-roles/r", body.clone()).await.expect(200);
    update.post("aws/static-roles/r", json!({"rotation_period": 7200})).await.expect(200);
    update.get("aws/static-roles/r").await.expect(403);
    token("\"read\"").await.get("aws/static-roles/r").await.expect(200);
}

/// The rotation fields of `config/root`: Vault's validation texts and keymint's schedule state.
#[tokio::test]
async fn config_root_schedules_rotation() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let write = async |extra: Value| {
        let mut body =
            json!({"access_key": "AKIAEXAMPLE", "secret_key": "secret", "verify_connection": false});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        km.post("aws/config/root", body).await
    };
    let read = async || km.get("aws/config/root").await.expect(200).data().clone();

    write(json!({})).await.expect(204);
    assert_eq!(read().await["next_rotation"], Value::Null);
    write(json!({"rotation_period": "1h"})).await.expect(204);
    let data = read().await;
    assert_eq!((&data["rotation_period"], &data["last_rotation_error"]), (&json!(3600), &json!("")));
    assert!(data["next_rotation"].as_str().is_some_and(|t| t.ends_with('Z')), "{data}");

    write(json!({"rotation_schedule": "0 * * * SAT"})).await.expect(400).assert_errors(&[
        "mutually exclusive fields rotation_schedule and rotation_period were both specified; only one of them can be provided",
    ]);
    write(json!({"rotation_period": 30}))
        .await
        .expect(400)
        .assert_errors(&["rotation_period must be at least 60 seconds"]);
    write(json!({"rotation_period": 0, "rotation_schedule": "every day"}))
        .await
        .assert_error_prefix(400, "failed to parse provided rotation_schedule: ");
    write(json!({"rotation_period": 0, "rotation_window": "1h"}))
        .await
        .expect(400)
        .assert_errors(&["cannot use rotation_window without rotation_schedule"]);

    write(json!({"rotation_period": 0, "rotation_schedule": "0 0 * * SAT", "rotation_window": "1h"}))
        .await
        .expect(204);
    let data = read().await;
    assert_eq!((&data["rotation_schedule"], &data["rotation_window"]), (&json!("0 0 * * SAT"), &json!(3600)));
    let next = data["next_rotation"].as_str().unwrap();
    assert!(next.ends_with("T00:00:00Z"), "midnight UTC: {next}");

    write(json!({"disable_automated_rotation": true})).await.expect(204);
    assert_eq!(read().await["next_rotation"], Value::Null);

    // A schedule rotates static keys: without them it is refused.
    km.post("sys/mounts/aws2", json!({"type": "aws"})).await.expect(204);
    let resp =
        km.post("aws2/config/root", json!({"rotation_period": 3600, "verify_connection": false})).await;
    assert!(resp.expect(400).errors()[0].contains("access_key and secret_key"));
}
