//! `keymint agent` on JWT and Kubernetes auto-auth, with no keymint token anywhere: it logs in
//! with the token in its JWT file, keeps logging in as its short-lived keymint tokens run out,
//! and follows the file when it is replaced (as the kubelet rotates a projected token), so it
//! keeps serving working AWS keys after the first JWT has expired.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use keymint_tests::*;

use crate::login::{CALLER_TOKEN, get_creds, live_key, spawn_agent, try_creds};

const POLICY: &str = r#"
path "aws/creds/deploy" { capabilities = ["read"] }
path "sys/leases/*" { capabilities = ["update"] }
"#;

/// Replaces `file` the way the kubelet does: a new file renamed over the old one.
fn replace(file: &Path, text: &str) {
    let next = file.with_extension("next");
    std::fs::write(&next, text).unwrap();
    std::fs::rename(&next, file).unwrap();
}

/// Runs the agent with `auth` (its JWT file `jwt_file` holding `first`, valid for 12 s), then
/// replaces the file with `second` and checks that it serves working keys well after the first
/// JWT has expired, through several logins.
async fn outlives_its_first_jwt(
    env: &TestEnv,
    dir: &Path,
    jwt_file: &Path,
    second: &str,
    auth: &[std::ffi::OsString],
) {
    let caller_file = dir.join("caller");
    std::fs::write(&caller_file, CALLER_TOKEN).unwrap();
    let started = Instant::now();
    let agent = spawn_agent(&env.km, dir, &caller_file, auth);
    let first = eventually("the agent to serve keys", Duration::from_secs(20), async || {
        let (status, body) = try_creds(&agent.url).await?;
        (status == 200).then_some(body)
    })
    .await;
    let first_key = first["AccessKeyId"].as_str().unwrap().to_owned();
    assert!(live_key(&env.moto, "/auto-auth/", &first_key).await, "{first}");

    // The platform rotates the token.
    replace(jwt_file, second);
    let mut seen = vec![first_key];
    eventually("keys from logins with the rotated JWT", Duration::from_secs(60), async || {
        let (status, body) = get_creds(&agent.url).await;
        assert_eq!(status, 200, "the agent keeps serving: {body}");
        let key = body["AccessKeyId"].as_str().unwrap().to_owned();
        if !seen.contains(&key) {
            seen.push(key);
        }
        // The first JWT expired at 12 s and the keymint tokens last 8 s at most.
        (seen.len() >= 3 && started.elapsed() > Duration::from_secs(24)).then_some(())
    })
    .await;
    let (_, now) = get_creds(&agent.url).await;
    let key = now["AccessKeyId"].as_str().unwrap();
    assert!(live_key(&env.moto, "/auto-auth/", key).await, "served keys of a deleted user: {now}");
    env.moto.caller_arn(key, now["SecretAccessKey"].as_str().unwrap(), None).await;
}

async fn setup() -> (TestEnv, Issuer, tempfile::TempDir) {
    let (env, issuer) = tokio::join!(TestEnv::start(Backend::Sqlite), Issuer::start());
    env.configure_root().await;
    write_iam_user_role(&env.km, "deploy", "/auto-auth/").await;
    env.km.put("sys/policies/acl/deploy", json!({"policy": POLICY})).await.expect(204);
    (env, issuer, tempfile::tempdir().unwrap())
}

#[tokio::test]
async fn the_agent_logs_in_with_its_jwt_file_and_follows_it() {
    let (env, issuer, dir) = setup().await;
    let km = &env.km;
    km.put("sys/auth/ci", json!({"type": "jwt"})).await.expect(204);
    km.put("auth/ci/config", json!({"jwks_url": issuer.jwks_url(), "bound_issuer": issuer.url()}))
        .await
        .expect(204);
    let role = json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "keymint",
        "clock_skew_leeway": -1, "expiration_leeway": -1, "not_before_leeway": -1,
        "token_policies": "deploy", "token_ttl": "4s", "token_max_ttl": "8s"});
    km.post("auth/ci/role/build", role).await.expect(204);

    let now = unix_now();
    let claims = gitlab_claims(&issuer.url(), "acme/app", 42, "main", "keymint");
    let first = issuer.sign(&with_times(claims.clone(), now, now, now + 12), Alg::RS256);
    let second = issuer.sign(&with_times(claims, now, now, now + 600), Alg::ES256);
    let jwt_file = dir.path().join("jwt");
    std::fs::write(&jwt_file, &first).unwrap();
    let auth: Vec<std::ffi::OsString> = vec![
        "--auth-method".into(),
        "jwt".into(),
        "--auth-mount".into(),
        "ci".into(),
        "--auth-role".into(),
        "build".into(),
        "--jwt-file".into(),
        jwt_file.clone().into(),
    ];
    outlives_its_first_jwt(&env, dir.path(), &jwt_file, &second, &auth).await;
}

#[tokio::test]
async fn the_agent_logs_in_with_its_service_account_token_through_token_review() {
    let (env, issuer, dir) = setup().await;
    let km = &env.km;
    let cluster = TokenReviewServer::start(&issuer, "reviewer").await;
    km.put("sys/auth/kubernetes", json!({"type": "kubernetes"})).await.expect(204);
    let config = json!({"kubernetes_host": cluster.url(), "kubernetes_ca_cert": cluster.ca_pem(),
        "token_reviewer_jwt": "reviewer", "disable_local_ca_jwt": true});
    km.put("auth/kubernetes/config", config).await.expect(204);
    let role = json!({"bound_service_account_names": "payments", "bound_service_account_namespaces": "pay",
        "audience": "keymint", "token_policies": "deploy", "token_ttl": "4s", "token_max_ttl": "8s"});
    km.post("auth/kubernetes/role/payments", role).await.expect(204);

    let now = unix_now();
    let claims =
        kubernetes_claims("https://kubernetes.default.svc", "pay", "payments", "uid-7", &["keymint"]);
    // The API server refuses the first token once it has expired, whatever keymint's leeway.
    let first = issuer.sign(&with_times(claims.clone(), now, now, now + 12), Alg::RS256);
    let second = issuer.sign(&with_times(claims, now, now, now + 600), Alg::RS256);
    let jwt_file = dir.path().join("token");
    std::fs::write(&jwt_file, &first).unwrap();
    let auth: Vec<std::ffi::OsString> = vec![
        "--auth-method".into(),
        "kubernetes".into(),
        "--auth-role".into(),
        "payments".into(),
        "--jwt-file".into(),
        jwt_file.clone().into(),
    ];
    outlives_its_first_jwt(&env, dir.path(), &jwt_file, &second, &auth).await;
    let reviewed: Vec<_> = cluster.requests().into_iter().filter_map(|r| r.token).collect();
    assert!(reviewed.contains(&first) && reviewed.iter().any(|t| *t != first), "both tokens were reviewed");
}
