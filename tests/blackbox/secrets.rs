//! No secret in plaintext where an attacker with the disk or the logs would look: the root
//! secret key and session token, minted secret keys and session tokens, and client tokens
//! never appear in the database (the SQLite file with its -wal and -shm, or every PostgreSQL
//! table) nor in the server's output.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

/// Distinctive values, so a hit cannot be a coincidence. Obviously not AWS keys.
const ROOT_SECRET: &str = "kmgrep-root-secret-value-4f1c9e";
const ROOT_SESSION: &str = "kmgrep-root-session-token-77ab10";

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Everything the database holds, as text: the SQLite files byte for byte (lossy UTF-8), or
/// every PostgreSQL table row by row (binary columns as hex).
fn database_text(storage: &Storage) -> String {
    match storage.backend() {
        Backend::Sqlite => {
            let db = storage.url().trim_start_matches("sqlite://");
            let dir = std::path::Path::new(db).parent().unwrap();
            let mut text = String::new();
            for entry in std::fs::read_dir(dir).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
            assert!(text.contains("aws/creds/deploy/"), "the files hold the leases: the dump is real");
            text
        }
        Backend::Postgres => {
            let tables = psql(
                storage.url(),
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
            );
            let mut text = String::new();
            for table in tables.lines() {
                text.push_str(&psql(storage.url(), &format!("SELECT t::text FROM \"{table}\" t")));
                text.push('\n');
            }
            assert!(text.contains("aws/creds/deploy/"), "the tables hold the leases: the dump is real");
            text
        }
    }
}

async fn no_secret_in_the_database_or_the_logs(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    let mut root = root_config(&env.moto);
    root["secret_key"] = json!(ROOT_SECRET);
    root["session_token"] = json!(ROOT_SESSION);
    km.post("aws/config/root", root).await.expect(200);
    // A plain (non-secret) value stored the same way: the dump must find it, or it proves nothing.
    km.post("aws/roles/deploy", json!({"credential_type": "iam_user", "user_path": "/kmgrep-canary/"}))
        .await
        .expect(204);
    let role_arn = env.moto.create_role("kmgrep-role").await;
    km.post("aws/roles/ar", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);

    let user = km.get("aws/creds/deploy").await.expect(200);
    let assumed = km.get("aws/creds/ar").await.expect(200);
    let session = km.get("aws/creds/ar").await.expect(200);
    let created = km.post("auth/token/create", json!({"policies": ["default"]})).await.expect(200);
    let client_token = created.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    // Use the token, so it passes through the request path and its logging too.
    km.with_token(&client_token).get("auth/token/lookup-self").await.expect(200);

    let mut secrets = vec![ROOT_SECRET.to_owned(), ROOT_SESSION.to_owned(), client_token];
    for resp in [&user, &assumed, &session] {
        let data = resp.data();
        secrets.push(data["secret_key"].as_str().unwrap().to_owned());
        if let Some(token) = data["session_token"].as_str() {
            secrets.push(token.to_owned());
        }
    }
    assert_eq!(secrets.len(), 8, "root key and token, a client token, three secret keys, two session tokens");

    let stored = database_text(&env.storage);
    assert!(stored.contains("kmgrep-canary"), "the dump does not show stored values");
    let logs = km.logs();
    for secret in &secrets {
        assert!(!stored.contains(secret.as_str()), "a secret is stored in plaintext: {secret}");
        assert!(!stored.contains(&hex(secret)), "a secret is stored in plaintext (as bytes): {secret}");
        assert!(!logs.contains(secret.as_str()), "a secret is in the server's output: {secret}");
    }
}

both_backends!(no_secret_in_the_database_or_the_logs);
