//! The audit device: a request and a response record per call, secrets only as HMACs that
//! `sys/audit-hash` reproduces, and requests refused when no device can record them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

const ROOT_SECRET: &str = "kmaudit-root-secret-value-9d2e71";

/// Enables the `file/` device, writing to `audit.log` in `dir`; returns the log's path.
async fn enable_file_device(km: &Keymint, dir: &std::path::Path) -> std::path::PathBuf {
    let log = dir.join("audit.log");
    km.put("sys/audit/file", json!({"type": "file", "options": {"file_path": log.to_str().unwrap()}}))
        .await
        .expect(204);
    log
}

fn records(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

async fn every_call_is_recorded_without_secrets(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    let dir = tempfile::tempdir().unwrap();
    let log = enable_file_device(km, dir.path()).await;
    let listed = km.get("sys/audit").await.expect(200);
    assert_eq!(listed.data()["file/"]["type"], "file", "{listed}");
    km.put("sys/audit/other", json!({"type": "syslog"}))
        .await
        .assert_error_prefix(400, "unknown audit device type");
    km.put("sys/audit/file", json!({"type": "file", "options": {"file_path": "stdout"}}))
        .await
        .assert_errors(&["path already in use: file/"]);

    let mut root = root_config(&env.moto);
    root["secret_key"] = json!(ROOT_SECRET);
    km.post("aws/config/root", root).await.expect(200);
    km.post("aws/roles/deploy", json!({"credential_type": "iam_user"})).await.expect(204);
    let creds = km.get("aws/creds/deploy").await.expect(200);
    let minted_secret = creds.data()["secret_key"].as_str().unwrap().to_owned();
    let lease_id = creds.json()["lease_id"].as_str().unwrap().to_owned();
    let token = km.post("auth/token/create", json!({"policies": ["default"]})).await.expect(200);
    let client_token = token.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    km.with_token("hvs.not-a-token").get("aws/creds/deploy").await.expect(403);

    let all = records(&log);
    let requests: Vec<&Value> = all.iter().filter(|r| r["type"] == "request").collect();
    let responses: Vec<&Value> = all.iter().filter(|r| r["type"] == "response").collect();
    assert_eq!(requests.len(), responses.len(), "a request and a response record per call");
    assert!(requests.len() >= 6, "{all:?}");

    // The root secret is in the log only as the HMAC sys/audit-hash computes.
    let hash = km.post("sys/audit-hash/file", json!({"input": ROOT_SECRET})).await.expect(200);
    let hash = hash.data()["hash"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("hmac-sha256:"), "{hash}");
    let config_write = requests.iter().find(|r| r["request"]["path"] == "aws/config/root").unwrap();
    assert_eq!(config_write["request"]["data"]["secret_key"], hash.as_str());
    assert_eq!(config_write["request"]["operation"], "update");
    assert_eq!(config_write["auth"]["policies"], json!(["root"]));
    // The credentials' response names its lease in clear, and hashes the keys.
    let issued =
        responses.iter().find(|r| r["request"]["path"] == "aws/creds/deploy" && r["error"] == "").unwrap();
    assert_eq!(issued["response"]["secret"]["lease_id"], lease_id.as_str());
    assert!(issued["response"]["data"]["secret_key"].as_str().unwrap().starts_with("hmac-sha256:"));
    // The refused request is recorded, with its error.
    let refused =
        responses.iter().find(|r| r["error"].as_str().unwrap().contains("permission denied")).unwrap();
    assert_eq!(refused["request"]["path"], "aws/creds/deploy");

    let text = std::fs::read_to_string(&log).unwrap();
    // (The dev root token, `root`, is also the root policy's name: it is not looked for.)
    for secret in [ROOT_SECRET, minted_secret.as_str(), client_token.as_str()] {
        assert!(!text.contains(&format!("\"{secret}\"")), "a secret is in the audit log: {secret}");
    }
    assert!(!text.contains(ROOT_SECRET) && !text.contains(&minted_secret) && !text.contains(&client_token));

    // Disabled: the disabling call is recorded, then nothing more.
    let before = records(&log).len();
    km.delete("sys/audit/file").await.expect(204);
    km.get("sys/audit").await.expect(200);
    assert_eq!(records(&log).len(), before + 2, "only the disabling call was recorded");
}

/// With one device that cannot write (`/dev/full`) and another that can, requests go on; with
/// only the broken one, they are refused before anything happens.
async fn requests_are_refused_when_no_device_can_record_them(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    let dir = tempfile::tempdir().unwrap();
    enable_file_device(km, dir.path()).await;
    km.put("sys/audit/full", json!({"type": "file", "options": {"file_path": "/dev/full"}}))
        .await
        .expect(204);
    km.get("sys/mounts").await.expect(200);
    km.delete("sys/audit/file").await.expect(204);

    let refused = km.post("aws/roles/ghost", json!({"credential_type": "iam_user"})).await;
    refused
        .assert_error_prefix(500, "1 error occurred:\n\t* no audit device succeeded in logging the request");
    if backend == Backend::Postgres {
        let roles = psql(env.storage.url(), "SELECT count(*) FROM aws_roles WHERE name = 'ghost'");
        assert_eq!(roles, "0", "the refused write must not have happened");
    }
}

both_backends!(every_call_is_recorded_without_secrets, requests_are_refused_when_no_device_can_record_them);
