//! AppRole with the real binary: hvac's and the vault CLI's request shapes end in AWS keys that
//! work in moto; no secret id, role id or issued token reaches the database, the logs or the
//! audit log in clear; failed logins are audited and counted; and a single-use secret id sent
//! to two replicas at the same moment logs in exactly once.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

both_backends!(an_approle_login_ends_in_working_aws_keys_and_leaves_no_secret_behind);

async fn role_id(km: &Keymint, role: &str) -> String {
    let read = km.get(&format!("auth/approle/role/{role}/role-id")).await.expect(200);
    read.data()["role_id"].as_str().unwrap().to_owned()
}

async fn secret_id(km: &Keymint, role: &str, body: Value) -> String {
    let made = km.post(&format!("auth/approle/role/{role}/secret-id"), body).await.expect(200);
    made.data()["secret_id"].as_str().unwrap().to_owned()
}

async fn an_approle_login_ends_in_working_aws_keys_and_leaves_no_secret_behind(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    km.put("sys/audit/file", json!({"type": "file", "options": {"file_path": audit.to_str().unwrap()}}))
        .await
        .expect(204);
    env.configure_root().await;
    km.post("aws/roles/deploy", json!({"credential_type": "iam_user"})).await.expect(204);
    km.put(
        "sys/policies/acl/deploy",
        json!({"policy": r#"path "aws/creds/deploy" { capabilities = ["read"] }"#}),
    )
    .await
    .expect(204);

    // `vault auth enable approle`: the CLI's whole body, PUT.
    let enable = json!({"type": "approle", "description": "", "config": {"options": null,
        "default_lease_ttl": "0s", "max_lease_ttl": "0s", "force_no_cache": false},
        "local": false, "seal_wrap": false, "external_entropy_access": false, "options": null});
    km.put("sys/auth/approle", enable).await.expect(204);
    let listed = km.get("sys/auth").await.expect(200);
    assert_eq!(listed.json()["approle/"]["type"], "approle", "hvac reads the top level: {listed}");
    // hvac's create_or_update_approle: comma-joined lists and a field Vault does not know.
    let role = json!({"token_policies": "deploy", "token_ttl": "20m", "token_max_ttl": "1h",
        "bind_secret_id": true, "secret_id_num_uses": 0, "secret_id_ttl": 0, "enable_local_secret_ids": false});
    let written = km.post("auth/approle/role/jenkins", role).await.expect(200);
    assert_eq!(
        written.warnings(),
        ["Endpoint ignored these unrecognized parameters: [enable_local_secret_ids]"]
    );
    let rid = role_id(km, "jenkins").await;
    let sid = secret_id(km, "jenkins", json!({"metadata": "{\"job\": \"nightly\"}", "num_uses": 2})).await;

    // A failed login first: audited, counted, no token.
    km.anonymous()
        .post("auth/approle/login", json!({"role_id": rid, "secret_id": "guessed-secret-id"}))
        .await
        .assert_errors(&["invalid role or secret ID"]);
    // hvac's login: POST, `secret_id` given.
    let logged = km.anonymous().post("auth/approle/login", json!({"role_id": rid, "secret_id": sid})).await;
    let logged = logged.expect(200);
    let auth = &logged.json()["auth"];
    assert_eq!(auth["metadata"], json!({"job": "nightly", "role_name": "jenkins"}));
    assert_eq!(auth["token_policies"], json!(["default", "deploy"]));
    let token = auth["client_token"].as_str().unwrap().to_owned();
    let creds = km.with_token(&token).get("aws/creds/deploy").await.expect(200);
    let (access, secret) =
        (creds.data()["access_key"].as_str().unwrap(), creds.data()["secret_key"].as_str().unwrap());
    let arn = env.moto.caller_arn(access, secret, None).await;
    assert!(arn.contains("vault-approle-deploy-"), "{arn}");

    // The secret id's last use, then a spent secret id.
    km.anonymous().put("auth/approle/login", json!({"role_id": rid, "secret_id": sid})).await.expect(200);
    km.anonymous()
        .put("auth/approle/login", json!({"role_id": rid, "secret_id": sid}))
        .await
        .assert_errors(&["invalid role or secret ID"]);

    // Revoking the login's token revokes its AWS keys.
    km.post("auth/token/revoke", json!({"token": token})).await.expect(204);
    let user = arn.rsplit('/').next().unwrap().to_owned();
    eventually("the login's IAM user to be deleted", std::time::Duration::from_secs(30), async || {
        let users = env.moto.iam().list_users().send().await.ok()?;
        (!users.users().iter().any(|u| u.user_name() == user)).then_some(())
    })
    .await;

    // Nothing secret in clear: not in the database, the logs or the audit log.
    let secrets = [sid.as_str(), token.as_str()];
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    let database = database_text(&env);
    for secret in secrets {
        assert!(!audit_text.contains(secret), "a secret in the audit log");
        assert!(!km.logs().contains(secret), "a secret in the server's log");
        assert!(!database.contains(secret), "a secret in the database");
    }
    let failed: Vec<Value> = audit_text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| {
            r["type"] == "response" && r["request"]["path"] == "auth/approle/login" && r["error"] != ""
        })
        .collect();
    assert_eq!(failed.len(), 2, "both failed logins are audited");
    assert!(failed[0]["request"]["data"]["secret_id"].as_str().unwrap().starts_with("hmac-sha256:"));
    let metrics = km.get("sys/metrics?format=prometheus").await.expect(200);
    assert!(
        metrics.text.contains(r#"keymint_logins_total{method="approle",outcome="refused"} 2"#),
        "{}",
        metrics.text
    );
    assert!(
        metrics.text.contains(r#"keymint_logins_total{method="approle",outcome="ok"} 2"#),
        "{}",
        metrics.text
    );
}

/// Every row of every table, as text.
fn database_text(env: &TestEnv) -> String {
    match env.backend() {
        Backend::Postgres => psql(
            env.storage.url(),
            "SELECT string_agg(t::text, E'\\n') FROM (SELECT row_to_json(x)::text AS t FROM (SELECT * FROM tokens) x \
             UNION ALL SELECT row_to_json(x)::text FROM (SELECT * FROM approle_secret_ids) x \
             UNION ALL SELECT row_to_json(x)::text FROM (SELECT mount_id, kind, name, body FROM auth_entries) x) rows",
        ),
        Backend::Sqlite => {
            let path = env.storage.url().strip_prefix("sqlite://").unwrap().to_owned();
            // The file and its write-ahead log, as bytes: what a stolen disk would show.
            let mut bytes = std::fs::read(&path).unwrap();
            bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

/// Two replicas on one PostgreSQL receive the same single-use secret id at the same moment,
/// over and over: each secret id logs in exactly once.
#[tokio::test]
async fn a_single_use_secret_id_logs_in_once_across_two_replicas() {
    let storage = Storage::new(Backend::Postgres);
    // One after the other: two dev-mode servers initialising one empty database at the same
    // moment can race on the dev seal key (the second may find the schema but no key yet).
    let a = Keymint::start(storage.url()).await;
    let b = Keymint::start(storage.url()).await;
    a.put("sys/auth/approle", json!({"type": "approle"})).await.expect(204);
    a.post("auth/approle/role/ci", json!({"token_policies": "default", "secret_id_num_uses": 1}))
        .await
        .expect(204);
    let rid = role_id(&a, "ci").await;
    let (to_a, to_b) = (a.anonymous(), b.anonymous());
    for round in 0..20 {
        let sid = secret_id(&a, "ci", json!({})).await;
        let body = json!({"role_id": rid, "secret_id": sid});
        let (x, y) = tokio::join!(
            to_a.post("auth/approle/login", body.clone()),
            to_b.post("auth/approle/login", body.clone())
        );
        let mut statuses = [x.status.as_u16(), y.status.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 400], "round {round}: {x} / {y}");
    }
}
