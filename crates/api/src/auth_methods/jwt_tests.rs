//! The JWT and Kubernetes methods through the HTTP API, in process, with static keys (the
//! fetched key sets and the TokenReview are exercised by the black-box tests, against a local
//! issuer and API server).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::testing::{Answer, TestApp};

/// An EC P-256 key that signs ES256 tokens.
struct Signer {
    pair: EcdsaKeyPair,
}

impl Signer {
    fn new() -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Signer {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap(),
        }
    }

    /// The public key as an SPKI PEM (the fixed P-256 prefix, then the point).
    fn pem(&self) -> String {
        let mut der = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        der.extend_from_slice(self.pair.public_key().as_ref());
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
    }

    fn sign_with(&self, header: Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with(json!({"alg": "ES256", "typ": "JWT"}), claims)
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn github(repo: &str, git_ref: &str) -> Value {
    let t = now();
    json!({
        "iss": ISSUER, "aud": "https://github.com/acme",
        "sub": format!("repo:{repo}:ref:{git_ref}"),
        "repository": repo, "repository_owner": "acme", "repository_id": "123", "ref": git_ref,
        "ref_type": "branch", "run_id": "42", "runner_id": 7,
        "iat": t, "nbf": t, "exp": t + 300,
    })
}

fn errors(answer: &Answer) -> Vec<String> {
    serde_json::from_value(answer.body["errors"].clone()).unwrap_or_default()
}

async fn jwt_app(signer: &Signer) -> TestApp {
    let app = TestApp::new().await;
    let on = app.root("POST", "sys/auth/jwt", Some(json!({"type": "jwt"}))).await;
    assert_eq!(on.status, StatusCode::NO_CONTENT);
    let config = json!({"jwt_validation_pubkeys": [signer.pem()], "bound_issuer": ISSUER});
    let written = app.root("POST", "auth/jwt/config", Some(config)).await;
    assert_eq!(written.status, StatusCode::NO_CONTENT, "{:?}", written.body);
    // hvac's `create_role` body: lists as arrays, name and bound_claims_type included.
    let role = json!({
        "name": "deploy", "role_type": "jwt", "user_claim": "repository",
        "bound_audiences": ["https://github.com/acme"], "bound_claims_type": "glob",
        "bound_claims": {"sub": "repo:acme/app:ref:refs/heads/*", "repository_id": ["123", "456"]},
        "claim_mappings": {"repository": "repo", "ref": "ref"}, "token_policies": ["deploy"],
        "token_ttl": "15m", "verbose_oidc_logging": false,
    });
    let written = app.root("POST", "auth/jwt/role/deploy", Some(role)).await;
    assert!(written.status.is_success(), "{:?}", written.body);
    app
}

async fn login(app: &TestApp, role: &str, jwt: &str) -> Answer {
    app.call("POST", "auth/jwt/login", None, Some(json!({"role": role, "jwt": jwt}))).await
}

#[tokio::test]
async fn a_github_job_logs_in_with_its_oidc_token() {
    let signer = Signer::new();
    let app = jwt_app(&signer).await;
    let read = app.root("GET", "auth/jwt/role/deploy", None).await;
    assert_eq!(read.body["data"]["bound_claims_type"], "glob");
    assert_eq!(read.body["data"]["token_ttl"], 900);
    let config = app.root("GET", "auth/jwt/config", None).await;
    assert_eq!(config.body["data"]["bound_issuer"], ISSUER);

    let logged = login(&app, "deploy", &signer.sign(&github("acme/app", "refs/heads/main"))).await;
    assert_eq!(logged.status, StatusCode::OK, "{:?}", logged.body);
    let auth = &logged.body["auth"];
    assert_eq!(auth["metadata"], json!({"repo": "acme/app", "ref": "refs/heads/main", "role": "deploy"}));
    assert_eq!(auth["policies"], json!(["default", "deploy"]));
    assert_eq!(auth["lease_duration"], 900);
    let token = auth["client_token"].as_str().unwrap();
    let me = app.call("GET", "auth/token/lookup-self", Some(token), None).await;
    assert_eq!(me.body["data"]["display_name"], "jwt-acme/app", "the repository names the token");

    // `default_role` serves a login that names none (vault-action with an empty role).
    let config =
        json!({"jwt_validation_pubkeys": [signer.pem()], "bound_issuer": ISSUER, "default_role": "Deploy"});
    assert_eq!(app.root("POST", "auth/jwt/config", Some(config)).await.status, StatusCode::NO_CONTENT);
    let jwt = signer.sign(&github("acme/app", "refs/heads/dev"));
    let logged = app.call("POST", "auth/jwt/login", None, Some(json!({"role": "", "jwt": jwt}))).await;
    assert_eq!(logged.status, StatusCode::OK, "{:?}", logged.body);
}

#[tokio::test]
async fn every_bad_token_is_refused_in_vaults_words_and_makes_no_token() {
    let signer = Signer::new();
    let app = jwt_app(&signer).await;
    let before = keymint_store::tokens::count(app.state.store().pool()).await.unwrap();
    let good = github("acme/app", "refs/heads/main");
    let with = |key: &str, value: Value| {
        let mut claims = good.clone();
        claims[key] = value;
        claims
    };
    let stranger = Signer::new();
    let t = now();
    let unsigned = {
        let head = URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string());
        format!("{head}.{}.", URL_SAFE_NO_PAD.encode(good.to_string()))
    };
    let cases: Vec<(String, &str)> = vec![
        (
            stranger.sign(&good),
            "error validating token: error verifying token signature: no known key successfully validated the token signature",
        ),
        (
            unsigned,
            "error validating token: invalid algorithm (alg) header parameter: token signed with unexpected algorithm",
        ),
        (signer.sign_with(json!({"alg": "HS256"}), &good), "token signed with unexpected algorithm"),
        (
            signer.sign(&with("exp", json!(t - 600))),
            "error validating token: invalid expiration time (exp) claim: token is expired",
        ),
        (
            signer.sign(&with("nbf", json!(t + 600))),
            "error validating token: invalid not before (nbf) claim: token not yet valid",
        ),
        (
            signer.sign(&with("iss", json!("https://evil.example"))),
            "error validating token: invalid issuer (iss) claim",
        ),
        (
            signer.sign(&with("aud", json!("https://github.com/other"))),
            "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience",
        ),
        (
            signer.sign(&with("sub", json!("repo:acme/app:ref:refs/tags/v1"))),
            "error validating claims: claim \"sub\" does not match any associated bound claim values",
        ),
        (
            signer.sign(&with("repository_id", json!("999"))),
            "does not match any associated bound claim values",
        ),
        ("not.a.jwt".to_string(), "error validating token"),
    ];
    for (jwt, text) in cases {
        let refused = login(&app, "deploy", &jwt).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{text}: {:?}", refused.body);
        assert!(errors(&refused)[0].contains(text), "{:?} lacks {text:?}", refused.body);
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("repository");
    assert_eq!(
        errors(&login(&app, "deploy", &signer.sign(&missing)).await),
        ["claim \"repository\" not found in token"]
    );
    assert_eq!(errors(&login(&app, "nope", &signer.sign(&good)).await), ["role \"nope\" could not be found"]);
    assert_eq!(errors(&login(&app, "deploy", "").await), ["missing token"]);
    let after = keymint_store::tokens::count(app.state.store().pool()).await.unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn roles_and_configs_are_checked_when_written() {
    let signer = Signer::new();
    let app = jwt_app(&signer).await;
    let write = |body: Value| app.root("POST", "auth/jwt/role/r", Some(body));
    let oidc = write(json!({"user_claim": "sub", "bound_audiences": "x"})).await;
    assert!(errors(&oidc)[0].contains("role_type \"oidc\""), "{:?}", oidc.body);
    let no_claim = write(json!({"role_type": "jwt", "bound_audiences": "x"})).await;
    assert_eq!(errors(&no_claim), ["a user claim must be defined on the role"]);
    let unbound = write(json!({"role_type": "jwt", "user_claim": "sub"})).await;
    assert_eq!(errors(&unbound), ["must have at least one bound constraint when creating/updating a role"]);
    let glob_number = write(json!({"role_type": "jwt", "user_claim": "sub", "bound_claims_type": "glob", "bound_claims": {"n": 1}})).await;
    assert_eq!(glob_number.status, StatusCode::BAD_REQUEST);
    let leeway = write(json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "s", "clock_skew_leeway": -1, "expiration_leeway": "5m"})).await;
    assert!(leeway.status.is_success(), "{:?}", leeway.body);
    let read = app.root("GET", "auth/jwt/role/r", None).await;
    assert_eq!(
        (read.body["data"]["clock_skew_leeway"].clone(), read.body["data"]["expiration_leeway"].clone()),
        (json!(-1), json!(300))
    );

    let both = app
        .root(
            "POST",
            "auth/jwt/config",
            Some(json!({"jwt_validation_pubkeys": [signer.pem()], "jwks_url": "http://127.0.0.1:1/jwks"})),
        )
        .await;
    assert!(errors(&both)[0].starts_with("exactly one of"), "{:?}", both.body);
    let bad_key =
        app.root("POST", "auth/jwt/config", Some(json!({"jwt_validation_pubkeys": ["not a key"]}))).await;
    assert!(errors(&bad_key)[0].starts_with("error parsing public key"), "{:?}", bad_key.body);
    let algs = app
        .root(
            "POST",
            "auth/jwt/config",
            Some(json!({"jwt_validation_pubkeys": [signer.pem()], "jwt_supported_algs": "HS256"})),
        )
        .await;
    assert!(errors(&algs)[0].starts_with("invalid jwt_supported_algs"), "{:?}", algs.body);
    let down =
        app.root("POST", "auth/jwt/config", Some(json!({"jwks_url": "http://127.0.0.1:1/jwks"}))).await;
    assert!(errors(&down)[0].starts_with("error checking jwks URL"), "{:?}", down.body);
    // Only RS256 allowed: an ES256 token is refused before any key is tried.
    let rs = json!({"jwt_validation_pubkeys": [signer.pem()], "bound_issuer": ISSUER, "jwt_supported_algs": ["RS256"]});
    assert_eq!(app.root("POST", "auth/jwt/config", Some(rs)).await.status, StatusCode::NO_CONTENT);
    let refused = login(&app, "deploy", &signer.sign(&github("acme/app", "refs/heads/main"))).await;
    assert!(errors(&refused)[0].contains("unexpected algorithm"), "{:?}", refused.body);
}

fn service_account_claims(ns: &str, sa: &str, aud: &[&str]) -> Value {
    let t = now();
    json!({
        "iss": "https://kubernetes.default.svc.cluster.local", "aud": aud,
        "sub": format!("system:serviceaccount:{ns}:{sa}"),
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": sa, "uid": "uid-1"}, "pod": {"name": "p", "uid": "pod-1"}},
        "iat": t, "nbf": t, "exp": t + 3600,
    })
}

#[tokio::test]
async fn a_pod_logs_in_with_its_service_account_token_checked_locally() {
    let signer = Signer::new();
    let app = TestApp::new().await;
    assert_eq!(
        app.root("POST", "sys/auth/kubernetes", Some(json!({"type": "kubernetes"}))).await.status,
        StatusCode::NO_CONTENT
    );
    // hvac's `configure`: always sends disable_local_ca_jwt.
    let config = json!({"kubernetes_host": "https://127.0.0.1:1/", "pem_keys": [signer.pem()], "disable_local_ca_jwt": false});
    assert_eq!(app.root("POST", "auth/kubernetes/config", Some(config)).await.status, StatusCode::NO_CONTENT);
    let read = app.root("GET", "auth/kubernetes/config", None).await;
    assert_eq!(
        (read.body["data"]["kubernetes_host"].clone(), read.body["data"]["token_reviewer_jwt_set"].clone()),
        (json!("https://127.0.0.1:1"), json!(false))
    );
    // hvac's `create_role`: the legacy names.
    let role = json!({"bound_service_account_names": ["runner"], "bound_service_account_namespaces": ["ci-*"],
        "ttl": 600, "policies": ["deploy"], "audience": "vault"});
    let written = app.root("POST", "auth/kubernetes/role/ci", Some(role)).await;
    assert_eq!(written.status, StatusCode::NO_CONTENT, "{:?}", written.body);
    let read = app.root("GET", "auth/kubernetes/role/ci", None).await;
    assert_eq!(read.body["data"]["ttl"], 600, "legacy names are echoed");
    assert_eq!(read.body["data"]["token_ttl"], 600);

    let jwt = signer.sign(&service_account_claims("ci-main", "runner", &["vault"]));
    let logged =
        app.call("POST", "auth/kubernetes/login", None, Some(json!({"role": "ci", "jwt": jwt}))).await;
    assert_eq!(logged.status, StatusCode::OK, "{:?}", logged.body);
    assert_eq!(logged.body["auth"]["metadata"]["service_account_namespace"], "ci-main");
    assert_eq!(logged.body["auth"]["metadata"]["service_account_uid"], "uid-1");
    let token = logged.body["auth"]["client_token"].as_str().unwrap();
    let me = app.call("GET", "auth/token/lookup-self", Some(token), None).await;
    assert_eq!(me.body["data"]["display_name"], "kubernetes-ci-main-runner");

    let refuse = |ns: &str, sa: &str, aud: &[&str]| signer.sign(&service_account_claims(ns, sa, aud));
    for (jwt, status, text) in [
        (
            refuse("ci-main", "other", &["vault"]),
            StatusCode::FORBIDDEN,
            "service account name not authorized",
        ),
        (refuse("prod", "runner", &["vault"]), StatusCode::FORBIDDEN, "namespace not authorized"),
        (refuse("ci-main", "runner", &["api"]), StatusCode::FORBIDDEN, "invalid audience (aud) claim"),
        (
            Signer::new().sign(&service_account_claims("ci-main", "runner", &["vault"])),
            StatusCode::FORBIDDEN,
            "permission denied",
        ),
    ] {
        let refused =
            app.call("POST", "auth/kubernetes/login", None, Some(json!({"role": "ci", "jwt": jwt}))).await;
        assert_eq!(refused.status, status, "{text}: {:?}", refused.body);
        assert!(errors(&refused)[0].contains(text), "{:?} lacks {text:?}", refused.body);
    }
    let unknown =
        app.call("POST", "auth/kubernetes/login", None, Some(json!({"role": "x", "jwt": "a.b.c"}))).await;
    assert_eq!(errors(&unknown), ["invalid role name \"x\""]);
    let bad_role = app
        .root(
            "POST",
            "auth/kubernetes/role/bad",
            Some(json!({"bound_service_account_names": ["*", "a"], "bound_service_account_namespaces": "x"})),
        )
        .await;
    assert_eq!(errors(&bad_role), ["can not mix \"*\" with values"]);
    let no_aud = app
        .root(
            "POST",
            "auth/kubernetes/role/noaud",
            Some(json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "x"})),
        )
        .await;
    assert_eq!(no_aud.status, StatusCode::OK, "a warning: {:?}", no_aud.body);
    assert!(no_aud.body["warnings"][0].as_str().unwrap().contains("does not have an audience configured"));
}
