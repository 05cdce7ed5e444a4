//! The JWT/OIDC auth method against a local OIDC issuer (discovery, JWKS, RSA and EC keys):
//! CI jobs shaped like GitHub's and GitLab's log in and get AWS keys that work in moto; every
//! bad token is refused in Vault's words and makes no token; rotated keys are picked up
//! without a restart, and an issuer that is down does not stop logins with cached keys.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use keymint_tests::*;

both_backends!(
    a_github_job_gets_working_aws_keys_with_its_oidc_token,
    every_bad_token_is_refused_and_makes_no_token
);

const DEPLOY_POLICY: &str = r#"path "aws/creds/deploy" { capabilities = ["read"] }"#;

/// A moto, an issuer and a keymint whose `aws/` mount can mint `deploy` IAM users, with the
/// `deploy` policy written.
async fn setup(backend: Backend, extra_args: &[&str]) -> (Storage, Moto, Keymint, Issuer) {
    let storage = Storage::new(backend);
    let (moto, km, issuer) =
        tokio::join!(Moto::start(), Keymint::start_with(storage.url(), extra_args), Issuer::start());
    km.post("aws/config/root", root_config(&moto)).await.expect(200);
    km.post("aws/roles/deploy", json!({"credential_type": "iam_user"})).await.expect(204);
    km.put("sys/policies/acl/deploy", json!({"policy": DEPLOY_POLICY})).await.expect(204);
    (storage, moto, km, issuer)
}

/// Enables `path` as a JWT method trusting `issuer` through its discovery document, with a
/// `deploy` role bound to the acme/app repository's main branch.
async fn github_method(km: &Keymint, issuer: &Issuer, path: &str) {
    // `vault auth enable -path=... jwt`: the Go client's PUT.
    km.put(&format!("sys/auth/{path}"), json!({"type": "jwt", "description": "", "config": {}}))
        .await
        .expect(204);
    km.put(
        &format!("auth/{path}/config"),
        json!({"oidc_discovery_url": issuer.url(), "bound_issuer": issuer.url()}),
    )
    .await
    .expect(204);
    let role = json!({
        "role_type": "jwt", "user_claim": "repository",
        "bound_audiences": ["https://github.com/acme"],
        "bound_claims_type": "glob",
        "bound_claims": {"sub": "repo:acme/app:ref:refs/heads/*", "repository_owner": "acme"},
        "claim_mappings": {"repository": "repo", "ref": "ref"},
        "token_policies": "deploy", "token_ttl": "10m",
    });
    km.post(&format!("auth/{path}/role/deploy"), role).await.expect(204);
}

fn github(issuer: &Issuer, git_ref: &str) -> Value {
    github_claims(&issuer.url(), "acme/app", git_ref, "https://github.com/acme")
}

async fn login(km: &Keymint, path: &str, role: &str, jwt: &str) -> Resp {
    // vault-action's request: POST, no token.
    km.anonymous().post(&format!("auth/{path}/login"), json!({"jwt": jwt, "role": role})).await
}

async fn token_count(km: &Keymint) -> usize {
    km.list("auth/token/accessors").await.expect(200).data()["keys"].as_array().unwrap().len()
}

async fn a_github_job_gets_working_aws_keys_with_its_oidc_token(backend: Backend) {
    let (_storage, moto, km, issuer) = setup(backend, &[]).await;
    github_method(&km, &issuer, "jwt").await;

    for alg in [Alg::RS256, Alg::ES256] {
        let logged =
            login(&km, "jwt", "deploy", &issuer.sign(&github(&issuer, "refs/heads/main"), alg)).await;
        let logged = logged.expect(200);
        let auth = &logged.json()["auth"];
        assert_eq!(auth["policies"], json!(["default", "deploy"]), "{logged}");
        assert_eq!(auth["metadata"]["repo"], "acme/app");
        assert_eq!(auth["metadata"]["role"], "deploy");
        assert_eq!(auth["lease_duration"], 600);
        let token = auth["client_token"].as_str().unwrap();

        let creds = km.with_token(token).get("aws/creds/deploy").await.expect(200);
        let data = creds.data();
        let arn = moto
            .caller_arn(data["access_key"].as_str().unwrap(), data["secret_key"].as_str().unwrap(), None)
            .await;
        // The IAM user names the repository the job ran for.
        assert!(arn.contains("vault-jwt-acme_app-deploy-"), "{arn}");
        // The token may do what its policy says, and nothing more.
        km.with_token(token)
            .post("aws/roles/other", json!({"credential_type": "iam_user"}))
            .await
            .expect(403);
    }
    // Once when the config was written (to check it), once to build the key set.
    assert_eq!(issuer.discovery_fetches(), 2, "the discovery document is read once per config");
    assert_eq!(issuer.jwks_fetches(), 1, "the keys are fetched once and cached");

    // A second mount of the same type: GitLab, by its JWKS URL, with id-token claims.
    km.put("sys/auth/gitlab", json!({"type": "jwt"})).await.expect(204);
    km.put("auth/gitlab/config", json!({"jwks_url": issuer.jwks_url(), "bound_issuer": issuer.url()}))
        .await
        .expect(204);
    let role = json!({
        "role_type": "jwt", "user_claim": "user_email", "bound_audiences": "https://keymint.example",
        "bound_claims": {"project_id": "42", "ref_protected": "true"}, "token_policies": ["deploy"],
    });
    km.post("auth/gitlab/role/deploy", role).await.expect(204);
    let claims = gitlab_claims(&issuer.url(), "acme/app", 42, "main", "https://keymint.example");
    // gitlab-runner's request: the Go client's PUT.
    let logged = km
        .anonymous()
        .put("auth/gitlab/login", json!({"jwt": issuer.sign(&claims, Alg::RS256), "role": "deploy"}))
        .await
        .expect(200);
    let token = logged.json()["auth"]["client_token"].as_str().unwrap();
    let me = km.with_token(token).get("auth/token/lookup-self").await.expect(200);
    assert!(me.data()["display_name"].as_str().unwrap().starts_with("gitlab-"), "{me}");
    let other = gitlab_claims(&issuer.url(), "acme/app", 43, "main", "https://keymint.example");
    login(&km, "gitlab", "deploy", &issuer.sign(&other, Alg::RS256))
        .await
        .assert_error_prefix(400, "error validating claims: claim \"project_id\" does not match");

    // Disabling the method revokes its tokens.
    km.delete("sys/auth/gitlab").await.expect(204);
    km.with_token(token).get("auth/token/lookup-self").await.expect(403);
}

async fn every_bad_token_is_refused_and_makes_no_token(backend: Backend) {
    let (_storage, _moto, km, issuer) = setup(backend, &[]).await;
    github_method(&km, &issuer, "jwt").await;
    // A first good login warms the key cache, so what follows is judged against known keys.
    login(&km, "jwt", "deploy", &issuer.sign(&github(&issuer, "refs/heads/main"), Alg::RS256))
        .await
        .expect(200);
    let before = token_count(&km).await;

    let good = github(&issuer, "refs/heads/main");
    let now = unix_now();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "a key the issuer does not publish",
            issuer.sign_with_foreign_key(&good),
            "error validating token: error verifying token signature",
        ),
        (
            "alg none",
            issuer.unsigned(&good),
            "error validating token: invalid algorithm (alg) header parameter: token signed with unexpected algorithm",
        ),
        (
            "HS256 keyed with the public key",
            issuer.hs256_with_public_key(&good),
            "token signed with unexpected algorithm",
        ),
        (
            "HS256 keyed with the JWKS oct entry",
            issuer.hs256_with_published_secret(&good),
            "token signed with unexpected algorithm",
        ),
        (
            "expired",
            issuer.sign(&with_times(good.clone(), now - 900, now - 900, now - 600), Alg::RS256),
            "error validating token: invalid expiration time (exp) claim: token is expired",
        ),
        (
            "not yet valid",
            issuer.sign(&with_times(good.clone(), now, now + 600, now + 900), Alg::ES256),
            "error validating token: invalid not before (nbf) claim: token not yet valid",
        ),
        (
            "issued in the future",
            issuer.sign(&with_times(good.clone(), now + 600, now, now + 900), Alg::RS256),
            "error validating token: invalid issued at (iat) claim: token issued in the future",
        ),
        (
            "another issuer",
            issuer.sign(
                &github_claims(
                    "https://evil.example",
                    "acme/app",
                    "refs/heads/main",
                    "https://github.com/acme",
                ),
                Alg::RS256,
            ),
            "error validating token: invalid issuer (iss) claim",
        ),
        (
            "another audience",
            issuer.sign(
                &github_claims(&issuer.url(), "acme/app", "refs/heads/main", "https://github.com/evil"),
                Alg::RS256,
            ),
            "error validating token: invalid audience (aud) claim",
        ),
        (
            "a tag, not a branch",
            issuer.sign(&github(&issuer, "refs/tags/v1"), Alg::RS256),
            "error validating claims: claim \"sub\" does not match any associated bound claim values",
        ),
        (
            "another owner's repository",
            issuer.sign(
                &github_claims(&issuer.url(), "evil/app", "refs/heads/main", "https://github.com/acme"),
                Alg::RS256,
            ),
            "error validating claims: claim \"sub\" does not match",
        ),
        (
            "no bound claim",
            issuer.sign(&without_claims(good.clone(), &["repository_owner"]), Alg::RS256),
            "error validating claims: claim \"repository_owner\" is missing",
        ),
        (
            "no user claim",
            issuer.sign(&without_claims(good.clone(), &["repository"]), Alg::RS256),
            "claim \"repository\" not found in token",
        ),
        ("garbage", "a.b.c".to_string(), "error validating token"),
    ];
    for (what, jwt, text) in cases {
        let refused = login(&km, "jwt", "deploy", &jwt).await;
        assert_eq!(refused.status, 400, "{what}: {refused}");
        assert!(refused.errors().iter().any(|e| e.contains(text)), "{what}: {refused} lacks {text:?}");
    }
    login(&km, "jwt", "nope", &issuer.sign(&good, Alg::RS256))
        .await
        .assert_errors(&["role \"nope\" could not be found"]);
    login(&km, "jwt", "", &issuer.sign(&good, Alg::RS256)).await.assert_errors(&["missing role"]);
    assert_eq!(token_count(&km).await, before, "no refused login made a token");

    // Each refusal was counted.
    let metrics = km.get("sys/metrics?format=prometheus").await.expect(200);
    let text = &metrics.text;
    assert!(text.contains(r#"keymint_logins_total{method="jwt",outcome="refused"} 16"#), "{text}");
    assert!(text.contains(r#"keymint_logins_total{method="jwt",outcome="ok"} 1"#), "{text}");
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_a_down_issuer_does_not_block_cached_keys() {
    let (_storage, _moto, km, issuer) = setup(Backend::Sqlite, &["--jwks-refetch-interval", "1s"]).await;
    github_method(&km, &issuer, "jwt").await;
    let claims = github(&issuer, "refs/heads/main");
    login(&km, "jwt", "deploy", &issuer.sign(&claims, Alg::RS256)).await.expect(200);
    assert_eq!(issuer.jwks_fetches(), 1);

    // The issuer goes down: tokens signed by keys keymint has keep logging in.
    issuer.set_down(true);
    for _ in 0..3 {
        login(&km, "jwt", "deploy", &issuer.sign(&claims, Alg::ES256)).await.expect(200);
    }
    assert_eq!(issuer.jwks_fetches(), 1, "known keys need no fetch");

    // It comes back with new keys: a token signed by one is accepted once keymint refetches,
    // which an unknown key triggers (at most once a second here, a minute by default).
    issuer.set_down(false);
    issuer.rotate().await;
    let rotated = issuer.sign(&claims, Alg::RS256);
    let accepted =
        eventually("a token signed by a rotated key to log in", Duration::from_secs(10), async || {
            let answer = login(&km, "jwt", "deploy", &rotated).await;
            (answer.status == 200).then_some(answer)
        })
        .await;
    assert!(accepted.json()["auth"]["client_token"].is_string());
    let fetches = issuer.jwks_fetches();
    assert!((2..=4).contains(&fetches), "the rotation cost a refetch or two, not one per login: {fetches}");
    // Tokens with unknown keys do not make keymint hammer the issuer.
    let forged = issuer.sign_with_foreign_key(&claims);
    let started = std::time::Instant::now();
    for _ in 0..20 {
        login(&km, "jwt", "deploy", &forged).await.expect(400);
    }
    let allowed = fetches + started.elapsed().as_secs() as usize + 1;
    assert!(issuer.jwks_fetches() <= allowed, "at most one refetch per interval: {}", issuer.jwks_fetches());
}
