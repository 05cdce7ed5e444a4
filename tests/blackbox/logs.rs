//! Logs never carry secrets: at the most verbose level (`trace`, every crate's spans and
//! events, the AWS SDK's included), a server that is given root keys, mints iam_user and STS
//! credentials and creates tokens writes none of those secrets anywhere in its output (the dev
//! banner's root token aside, which dev mode prints on purpose).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

#[tokio::test]
async fn trace_logs_carry_no_secret() {
    let storage = Storage::new(Backend::Sqlite);
    let moto = Moto::start().await;
    let km = Keymint::start_with_env(storage.url(), &[("KEYMINT_LOG", "trace")]).await;
    // moto checks no signature: a distinctive root secret to look for.
    let root_secret = "keymint-logs-root-secret-0123456789";
    let mut root = root_config(&moto);
    root["secret_key"] = json!(root_secret);
    km.post("aws/config/root", root).await.expect(200);
    write_iam_user_role(&km, "deploy", "/keymint-logs/").await;
    let role_arn = moto.create_role("km-logs").await;
    km.post("aws/roles/ci", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);

    let mut secrets = vec![root_secret.to_owned()];
    let user = km.get("aws/creds/deploy").await.expect(200);
    secrets.push(user.data()["secret_key"].as_str().unwrap().to_owned());
    let sts = km.get("aws/sts/ci").await.expect(200);
    secrets.push(sts.data()["secret_key"].as_str().unwrap().to_owned());
    secrets.push(sts.data()["session_token"].as_str().unwrap().to_owned());
    let token = km.post("auth/token/create", json!({"policies": ["default"]})).await.expect(200);
    let client_token = token.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    // The token is used too: it reaches the request path's logging.
    km.with_token(&client_token).get("auth/token/lookup-self").await.expect(200);
    secrets.push(client_token);

    let logs = km.logs();
    assert!(logs.contains("TRACE") || logs.contains("trace"), "the server did not log at trace level");
    assert!(logs.lines().count() > 100, "suspiciously little was logged:\n{logs}");
    for secret in &secrets {
        assert!(secret.len() >= 16, "{secret:?} is too short to search for");
        if let Some(line) = logs.lines().find(|l| l.contains(secret.as_str())) {
            panic!("a secret reached the log: {line}");
        }
    }
}
