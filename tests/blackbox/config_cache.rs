//! Servers keep the configuration requests read (mounts, roles, `config/root`, `config/lease`,
//! ACL policies) in memory, tagged with the database's configuration generation. Two servers on
//! one database: whatever one writes, the other's very next request sees, with no waiting.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

both_backends!(a_write_on_one_server_is_seen_at_once_by_another);

/// The session name AssumeRole was given, from the `arn` of `aws/sts/<role>`.
fn session_of(creds: &Resp) -> String {
    let arn = creds.data()["arn"].as_str().expect("arn");
    arn.rsplit('/').next().unwrap().to_owned()
}

async fn a_write_on_one_server_is_seen_at_once_by_another(backend: Backend) {
    let storage = Storage::new(backend);
    let moto = Moto::start().await;
    // One after the other: the first applies the migrations.
    let a = Keymint::start(storage.url()).await;
    let b = Keymint::start(storage.url()).await;
    a.post("aws/config/root", root_config(&moto)).await.expect(200);
    let role_arn = moto.create_role("km-cache").await;
    a.post("aws/roles/ops", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);

    // B serves (and caches) the mount table, the role and config/root.
    let first = b.get("aws/sts/ops").await.expect(200);
    assert!(session_of(&first).starts_with("vault-root-ops-"), "{first}");
    assert_eq!(b.get("aws/roles/ops").await.expect(200).data()["default_sts_ttl"], 0);

    // config/root changes on A: B's next credentials follow the new username template.
    a.post("aws/config/root", json!({"username_template": "cached-{{ unix_time }}"})).await.expect(200);
    let second = b.get("aws/sts/ops").await.expect(200);
    assert!(session_of(&second).starts_with("cached-"), "{second}");

    // The role changes on A: B reads the new one, then finds it gone.
    a.post("aws/roles/ops", json!({"default_sts_ttl": "20m"})).await.expect(204);
    assert_eq!(b.get("aws/roles/ops").await.expect(200).data()["default_sts_ttl"], 1200);
    a.delete("aws/roles/ops").await.expect(204);
    b.get("aws/sts/ops").await.expect(400).assert_errors(&["Role \"ops\" not found"]);

    // A policy narrows on A: a token B had just let through is refused at once.
    let policy =
        |caps: &str| json!({"policy": format!("path \"aws/roles/*\" {{ capabilities = [{caps}] }}")});
    a.put("sys/policies/acl/reader", policy("\"read\"")).await.expect(204);
    let created = a.post("auth/token/create", json!({"policies": ["reader"]})).await.expect(200);
    let token = created.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    let reader = b.with_token(&token);
    reader.get("aws/roles/missing").await.expect(404);
    a.put("sys/policies/acl/reader", policy("\"deny\"")).await.expect(204);
    reader.get("aws/roles/missing").await.expect(403);

    // A mount enabled on A routes on B at once; disabled, it stops routing at once.
    let no_handler =
        ["1 error occurred:\n\t* no handler for route \"other/roles/x\". route entry not found.\n\n"];
    b.get("other/roles/x").await.expect(404).assert_errors(&no_handler);
    a.post("sys/mounts/other", json!({"type": "aws"})).await.expect(204);
    b.get("other/roles/x").await.expect(404).assert_errors(&[]);
    a.delete("sys/mounts/other").await.expect(204);
    b.get("other/roles/x").await.expect(404).assert_errors(&no_handler);
}
