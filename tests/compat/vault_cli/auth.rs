//! The `vault` CLI's auth-method commands, replayed as the Go `api` client sends them:
//! `vault auth enable|list|tune|disable`, role and secret-id writes, logins by `vault write`
//! (what `vault login -method=...` sends too), `-wrap-ttl` and `vault unwrap`.

use keymint_tests::*;

use super::{Cli, assert_secret, assert_written};

#[tokio::test]
async fn approle_from_enable_to_a_wrapped_secret_id_and_a_login() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let cli = Cli::new(&km);

    // `vault auth enable approle`: api.EnableAuthOptions marshalled, POST (sys/auth is the one
    // `vault auth enable` posts to).
    let enable = r#"{"type":"approle","description":"","config":{"default_lease_ttl":"0s","max_lease_ttl":"0s","force_no_cache":false,"options":null},"local":false,"seal_wrap":false,"external_entropy_access":false,"options":null}"#;
    assert_written(cli.send(Method::POST, "sys/auth/approle", &[], Some(enable)).await);
    // `vault auth list`: the mounts at the top level of the body, where api.ListAuth reads them.
    let listed = assert_secret(cli.read("sys/auth", &[]).await, 200);
    assert_eq!(listed.json()["approle/"]["type"], "approle", "{listed}");
    assert_eq!(listed.json()["token/"]["type"], "token", "{listed}");
    // `vault auth tune -default-lease-ttl=72h approle/`: sys/mounts, not sys/auth.
    let tune = r#"{"options":null,"default_lease_ttl":"72h0m0s","max_lease_ttl":"","force_no_cache":false}"#;
    assert_written(cli.send(Method::POST, "sys/mounts/auth/approle/tune", &[], Some(tune)).await);
    let tuned = assert_secret(cli.read("sys/auth/approle/tune", &[]).await, 200);
    assert_eq!(tuned.data()["default_lease_ttl"], 259_200);

    // `vault write auth/approle/role/ci token_policies=deploy secret_id_num_uses=1`.
    assert_written(
        cli.write("auth/approle/role/ci", r#"{"secret_id_num_uses":"1","token_policies":"deploy"}"#).await,
    );
    let role_id = assert_secret(cli.read("auth/approle/role/ci/role-id", &[]).await, 200);
    let role_id = role_id.data()["role_id"].as_str().unwrap().to_owned();
    // `vault write -wrap-ttl=60s -f auth/approle/role/ci/secret-id`: a nil map marshals to null.
    let wrapped = cli.with_wrap_ttl("60s").write("auth/approle/role/ci/secret-id", "null").await.expect(200);
    let info = &wrapped.json()["wrap_info"];
    assert_eq!(info["creation_path"], "auth/approle/role/ci/secret-id", "{wrapped}");
    assert_eq!(info["ttl"], 60);
    let wrapping_token = info["token"].as_str().unwrap().to_owned();

    // `vault unwrap` with VAULT_TOKEN set to the wrapping token: PUT, no body.
    let unwrapped = cli.with_token(&wrapping_token).send(Method::PUT, "sys/wrapping/unwrap", &[], None).await;
    let unwrapped = assert_secret(unwrapped, 200);
    let secret_id = unwrapped.data()["secret_id"].as_str().unwrap().to_owned();
    // A second unwrap: the CLI prints Vault's error.
    let again = cli
        .send(Method::PUT, "sys/wrapping/unwrap", &[], Some(&format!(r#"{{"token":"{wrapping_token}"}}"#)))
        .await;
    assert_eq!(again.status, 400, "{again}");

    // `vault write auth/approle/login role_id=... secret_id=...` (and `vault login
    // -method=approle`, which sends the same): no token.
    let body = format!(r#"{{"role_id":"{role_id}","secret_id":"{secret_id}"}}"#);
    let login = assert_secret(cli.without_token().write("auth/approle/login", &body).await, 200);
    let auth = &login.json()["auth"];
    assert!(auth["client_token"].as_str().unwrap().starts_with("hvs."), "{login}");
    assert_eq!(auth["policies"], json!(["default", "deploy"]));
    assert_eq!(auth["lease_duration"], 259_200, "the tuned default TTL");
    let spent = cli.without_token().write("auth/approle/login", &body).await;
    assert_eq!((spent.status.as_u16(), spent.errors()), (400, vec!["invalid role or secret ID".to_string()]));

    // `vault auth disable approle`: the token the login made goes with it.
    let token = auth["client_token"].as_str().unwrap().to_owned();
    assert_written(cli.delete("sys/auth/approle").await);
    assert_eq!(cli.with_token(&token).read("auth/token/lookup-self", &[]).await.status, 403);
}

#[tokio::test]
async fn jwt_and_kubernetes_logins_by_vault_write() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let cli = Cli::new(&km);
    let issuer = Issuer::start().await;
    assert_written(cli.send(Method::POST, "sys/auth/jwt", &[], Some(r#"{"type":"jwt"}"#)).await);
    // `vault write auth/jwt/config jwks_url=... bound_issuer=...`
    let config =
        serde_json::to_string(&json!({"bound_issuer": issuer.url(), "jwks_url": issuer.jwks_url()})).unwrap();
    assert_written(cli.write("auth/jwt/config", &config).await);
    // `vault write auth/jwt/role/ci role_type=jwt user_claim=sub bound_audiences=vault bound_claims=@claims.json`
    let role = r#"{"bound_audiences":"vault","bound_claims":{"project_id":"42"},"role_type":"jwt","user_claim":"sub"}"#;
    assert_written(cli.write("auth/jwt/role/ci", role).await);
    let jwt = issuer.sign(&gitlab_claims(&issuer.url(), "acme/app", 42, "main", "vault"), Alg::RS256);
    let login =
        cli.without_token().write("auth/jwt/login", &format!(r#"{{"jwt":"{jwt}","role":"ci"}}"#)).await;
    let login = assert_secret(login, 200);
    assert!(login.json()["auth"]["client_token"].is_string(), "{login}");

    // Kubernetes, with the cluster's keys and no reviewer: checked locally.
    assert_written(
        cli.send(Method::POST, "sys/auth/kubernetes", &[], Some(r#"{"type":"kubernetes"}"#)).await,
    );
    let config = serde_json::to_string(
        &json!({"kubernetes_host": "https://127.0.0.1:1", "pem_keys": issuer.public_pems()}),
    )
    .unwrap();
    assert_written(cli.write("auth/kubernetes/config", &config).await);
    let role = r#"{"audience":"vault","bound_service_account_names":"runner","bound_service_account_namespaces":"ci","policies":"default"}"#;
    assert_written(cli.write("auth/kubernetes/role/runner", role).await);
    let claims = kubernetes_claims("https://kubernetes.default.svc", "ci", "runner", "uid-1", &["vault"]);
    let jwt = issuer.sign(&claims, Alg::ES256);
    let login = cli
        .without_token()
        .write("auth/kubernetes/login", &format!(r#"{{"jwt":"{jwt}","role":"runner"}}"#))
        .await;
    let login = assert_secret(login, 200);
    assert_eq!(login.json()["auth"]["metadata"]["service_account_name"], "runner");
}
