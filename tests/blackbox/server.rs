//! The server as a whole: health, authentication, secrets-engine mounts, wire-level errors, and
//! state that must survive a kill -9.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use keymint_tests::*;

const PERMISSION_DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

#[tokio::test]
async fn health_needs_no_token_and_reports_an_active_unsealed_server() {
    let km = Keymint::start_on(Backend::Sqlite).await;

    let resp = km.anonymous().get("sys/health").await.expect(200);
    let health = resp.json();
    assert_eq!(health["initialized"], true, "{resp}");
    assert_eq!(health["sealed"], false, "{resp}");
    assert_eq!(health["standby"], false, "{resp}");
    assert!(health["version"].as_str().is_some_and(|v| !v.is_empty()), "version: {resp}");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let server_time = health["server_time_utc"]
        .as_u64()
        .unwrap_or_else(|| panic!("server_time_utc is not unix seconds: {resp}"));
    assert!(now.abs_diff(server_time) < 300, "server_time_utc {server_time}, now {now}");

    // hvac probes with HEAD; a junk token must not turn health into a 403.
    let head = km.anonymous().head("sys/health").await.expect(200);
    assert!(head.text.is_empty(), "HEAD returned a body: {head}");
    km.with_token("junk").get("sys/health").await.expect(200);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_denied() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let role = json!({"credential_type": "iam_user"});

    let strangers = [
        km.anonymous(),
        km.with_token("not-the-root-token"),
        km.client().with_auth(Auth::Bearer("not-the-root-token".into())),
    ];
    for client in &strangers {
        for resp in [
            client.get("sys/mounts").await,
            client.post("sys/mounts/aws2", json!({"type": "aws"})).await,
            client.get("aws/config/root").await,
            client.post("aws/roles/intruder", role.clone()).await,
            client.list("aws/roles").await,
            client.get("aws/creds/intruder").await,
        ] {
            assert_eq!(resp.status, 403, "{resp:?}");
            resp.assert_errors(&[PERMISSION_DENIED]);
            let content_type = resp.headers.get("content-type").unwrap();
            assert!(content_type.to_str().unwrap().starts_with("application/json"));
        }
    }

    // Nothing a stranger sent took effect.
    km.get("aws/roles/intruder").await.expect(404);
    let mounts = km.get("sys/mounts").await.expect(200);
    assert!(mounts.data().get("aws2/").is_none(), "{mounts}");

    // The root token works in either header.
    let bearer = km.client().with_auth(Auth::Bearer(ROOT_TOKEN.into()));
    bearer.post("aws/roles/ok", role.clone()).await.expect(204);
    km.with_token(ROOT_TOKEN).get("aws/roles/ok").await.expect(200);
}

/// Two servers started at the same moment on one fresh SQLite file both come up (neither
/// trips over the other's migrations) and serve the same data. Repeated: a race shows only
/// now and then.
#[tokio::test]
async fn two_servers_started_at_once_on_a_fresh_sqlite_file_both_serve() {
    for round in 0..3 {
        let storage = Storage::new(Backend::Sqlite);
        let (a, b) = tokio::join!(Keymint::start(storage.url()), Keymint::start(storage.url()));
        assert_eq!(installation_id(&a).await, installation_id(&b).await, "round {round}");
        let role = format!("written-by-a-{round}");
        a.post(&format!("aws/roles/{role}"), json!({"credential_type": "iam_user"})).await.expect(204);
        let listed = b.list("aws/roles").await.expect(200);
        assert_eq!(listed.data()["keys"], json!([role]), "round {round}: {listed}");
    }
}

/// Dev mode refuses to listen on every interface, says exactly that, and opens nothing; one
/// address of the host is accepted.
#[test]
fn dev_mode_refuses_the_unspecified_address_before_opening_anything() {
    let dir = tempfile::tempdir().unwrap();
    for (addr, ip) in [("0.0.0.0:0", "0.0.0.0"), ("[::]:0", "::")] {
        let db = dir.path().join("never.db");
        let out = std::process::Command::new(keymint_binary())
            .args(["server", "--dev", "--dev-listen-address", addr, "--storage"])
            .arg(format!("sqlite://{}", db.display()))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("--dev-listen-address {addr}: dev mode refuses the unspecified address {ip}");
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("Api Address"));
        assert!(!db.exists(), "refused before the store was opened");
    }
}

both_backends!(secrets_engines_mount_tune_and_unmount, state_survives_kill_9);

async fn secrets_engines_mount_tune_and_unmount(backend: Backend) {
    let km = Keymint::start_on(backend).await;

    let mounts = km.get("sys/mounts").await.expect(200);
    assert_eq!(mounts.data()["aws/"]["type"], "aws", "dev mode mounts aws/: {mounts}");
    assert!(mounts.data().get("aws2/").is_none(), "{mounts}");

    km.post("sys/mounts/aws2", json!({"type": "aws"})).await.expect(204);
    let mounts = km.get("sys/mounts").await.expect(200);
    assert_eq!(mounts.data()["aws2/"]["type"], "aws", "{mounts}");
    assert_eq!(mounts.json()["aws2/"]["type"], "aws", "top-level copy: {mounts}");

    km.post("sys/mounts/aws2", json!({"type": "aws"}))
        .await
        .expect(400)
        .assert_errors(&["path is already in use at aws2/"]);

    let tune = json!({"default_lease_ttl": "1h", "max_lease_ttl": "2h"});
    km.post("sys/mounts/aws2/tune", tune).await.expect(204);
    let tuned = km.get("sys/mounts/aws2/tune").await.expect(200);
    assert_eq!(tuned.data()["default_lease_ttl"], 3600, "{tuned}");
    assert_eq!(tuned.data()["max_lease_ttl"], 7200, "{tuned}");
    // Tuning one mount leaves the other alone.
    let untouched = km.get("sys/mounts/aws/tune").await.expect(200);
    assert_ne!(untouched.data()["max_lease_ttl"], 7200, "{untouched}");

    // Each mount is its own engine with its own roles.
    km.post("aws2/roles/only-here", json!({"credential_type": "iam_user"})).await.expect(204);
    km.get("aws2/roles/only-here").await.expect(200);
    km.get("aws/roles/only-here").await.expect(404);

    km.delete("sys/mounts/aws2").await.expect(204);
    let mounts = km.get("sys/mounts").await.expect(200);
    assert!(mounts.data().get("aws2/").is_none(), "{mounts}");
    assert_eq!(mounts.data()["aws/"]["type"], "aws", "{mounts}");
    km.get("aws2/roles/only-here").await.expect(404);

    // Mounting the path again starts from nothing.
    km.post("sys/mounts/aws2", json!({"type": "aws"})).await.expect(204);
    km.get("aws2/roles/only-here").await.expect(404);
}

#[tokio::test]
async fn wire_level_errors() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let client = km.client();
    km.post("aws/roles/r", json!({"credential_type": "iam_user"})).await.expect(204);

    // No mount at that path.
    km.get("nope/x").await.expect(404);

    let malformed = client
        .send_raw(
            Method::POST,
            "aws/roles/broken",
            Some(b"{\"credential_type\": ".to_vec()),
            Some("application/json"),
        )
        .await
        .expect(400);
    malformed.assert_errors(&["error parsing JSON"]);
    km.get("aws/roles/broken").await.expect(404);

    // creds supports read and update only.
    let patch = client
        .send_raw(Method::PATCH, "aws/creds/r", Some(b"{}".to_vec()), Some("application/merge-patch+json"))
        .await;
    assert_eq!(patch.status, 405, "{patch:?}");
    let delete = km.delete("aws/creds/r").await;
    assert_eq!(delete.status, 405, "{delete:?}");
}

async fn state_survives_kill_9(backend: Backend) {
    let mut env = TestEnv::start(backend).await;
    env.configure_root().await;
    let km = &env.km;
    km.post("aws/config/lease", json!({"lease": "1h", "lease_max": "2h"})).await.expect(204);
    let role = json!({"credential_type": "iam_user", "user_path": "/persist/"});
    km.post("aws/roles/deploy", role).await.expect(204);
    km.post("sys/mounts/aws2", json!({"type": "aws"})).await.expect(204);
    let tune = json!({"default_lease_ttl": "1h", "max_lease_ttl": "2h"});
    km.post("sys/mounts/aws2/tune", tune).await.expect(204);
    let arn = format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:role/elsewhere");
    let other = json!({"credential_type": "assumed_role", "role_arns": [arn]});
    km.post("aws2/roles/other", other).await.expect(204);
    let config_before = km.get("aws/config/root").await.expect(200).data().clone();

    env.km.restart().await;
    let km = &env.km;

    // The dev root token still works, and everything written is back.
    assert_eq!(km.get("aws/config/root").await.expect(200).data(), &config_before);
    let lease = km.get("aws/config/lease").await.expect(200);
    assert_eq!(lease.data()["lease"], "1h0m0s", "{lease}");
    assert_eq!(lease.data()["lease_max"], "2h0m0s", "{lease}");
    let deploy = km.get("aws/roles/deploy").await.expect(200);
    assert_eq!(deploy.data()["user_path"], "/persist/", "{deploy}");
    let mounts = km.get("sys/mounts").await.expect(200);
    assert_eq!(mounts.data()["aws2/"]["type"], "aws", "{mounts}");
    let tuned = km.get("sys/mounts/aws2/tune").await.expect(200);
    assert_eq!(tuned.data()["max_lease_ttl"], 7200, "{tuned}");
    let other = km.get("aws2/roles/other").await.expect(200);
    assert_eq!(other.data()["role_arns"], json!([arn]), "{other}");
    let roles = km.list("aws/roles").await.expect(200);
    assert_eq!(roles.data()["keys"], json!(["deploy"]), "{roles}");

    // The restored root config (secret key included) still mints working credentials.
    let creds = km.get("aws/creds/deploy").await.expect(200);
    assert_eq!(creds.json()["lease_duration"], 3600, "{creds}");
    let users = env.moto.user_names("/persist/").await;
    assert_eq!(users.len(), 1, "{users:?}");
    let data = creds.data();
    let arn = env
        .moto
        .caller_arn(data["access_key"].as_str().unwrap(), data["secret_key"].as_str().unwrap(), None)
        .await;
    assert_eq!(arn, format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:user/persist/{}", users[0]));
}
