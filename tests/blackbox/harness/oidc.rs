//! The local OIDC issuer: what it publishes, what it signs (checked with ring, not with the
//! issuer's own verifier), its forgeries, rotation and outages, and the claim builders.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keymint_tests::*;
use ring::signature::{self as ring_sig, RsaPublicKeyComponents};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = client.get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn b64(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v.as_str().unwrap()).unwrap()
}

fn jwk<'a>(jwks: &'a Value, kty: &str) -> &'a Value {
    jwks["keys"].as_array().unwrap().iter().find(|k| k["kty"] == kty).unwrap()
}

/// Checks `token`'s signature with the JWKS entry its kid names, using ring directly.
fn verifies_with_jwks(token: &str, jwks: &Value) -> bool {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let header = decode_json(token.split('.').next().unwrap()).unwrap();
    let Some(key) = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]) else {
        return false;
    };
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    match header["alg"].as_str().unwrap() {
        "RS256" => RsaPublicKeyComponents { n: b64(&key["n"]), e: b64(&key["e"]) }
            .verify(&ring_sig::RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &signature)
            .is_ok(),
        "ES256" => {
            let point = [vec![4], b64(&key["x"]), b64(&key["y"])].concat();
            ring_sig::UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &signature)
                .is_ok()
        }
        _ => false,
    }
}

#[tokio::test]
async fn the_issuer_publishes_discovery_and_its_keys() {
    let issuer = Issuer::start().await;
    let url = issuer.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'), "{url}");
    let http = local_http();

    let (status, discovery) = get(&http, &format!("{url}/.well-known/openid-configuration")).await;
    assert_eq!(status, 200);
    assert_eq!(discovery["issuer"], url);
    assert_eq!(discovery["jwks_uri"], issuer.jwks_url());
    assert_eq!(issuer.discovery_fetches(), 1);

    let (status, jwks) = get(&http, &issuer.jwks_url()).await;
    assert_eq!(status, 200);
    assert_eq!(issuer.jwks_fetches(), 1);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{jwks}");
    let rsa = jwk(&jwks, "RSA");
    assert_eq!(
        (&rsa["kid"], &rsa["alg"], &rsa["use"]),
        (&json!(issuer.kid(Alg::RS256)), &json!("RS256"), &json!("sig"))
    );
    assert_eq!(b64(&rsa["n"]).len(), 256, "an RSA 2048 modulus");
    let ec = jwk(&jwks, "EC");
    assert_eq!(
        (&ec["kid"], &ec["alg"], &ec["crv"]),
        (&json!(issuer.kid(Alg::ES256)), &json!("ES256"), &json!("P-256"))
    );
    assert_eq!((b64(&ec["x"]).len(), b64(&ec["y"]).len()), (32, 32));
    assert_eq!(ec["use"], "sig");
    assert!(jwk(&jwks, "oct")["kid"].is_string(), "the GitLab-like oct entry: {jwks}");

    // The PEMs for jwt_validation_pubkeys are the same keys.
    let pems = issuer.public_pems();
    assert_eq!(pems.len(), 2);
    assert!(pems.iter().all(|p| p.starts_with("-----BEGIN PUBLIC KEY-----\n")), "{pems:?}");
    let from_pem = rsa::RsaPublicKey::from_public_key_pem(&pems[0]).unwrap();
    assert_eq!(from_pem.n().to_bytes_be(), b64(&rsa["n"]));
    let ec_spki = rsa::pkcs8::Document::from_public_key_pem(&pems[1]).unwrap();
    assert!(ec_spki.as_bytes().ends_with(&[b64(&ec["x"]), b64(&ec["y"])].concat()));
}

#[tokio::test]
async fn signed_tokens_verify_and_forgeries_do_not() {
    let issuer = Issuer::start().await;
    let (_, jwks) = get(&local_http(), &issuer.jwks_url()).await;
    let claims = github_claims(&issuer.url(), "acme/app", "refs/heads/main", "https://github.com/acme");

    for alg in [Alg::RS256, Alg::ES256] {
        let token = issuer.sign(&claims, alg);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let header = decode_json(parts[0]).unwrap();
        assert_eq!(header, json!({"alg": alg.name(), "kid": issuer.kid(alg), "typ": "JWT"}));
        assert_eq!(decode_json(parts[1]).unwrap(), claims);
        assert!(verifies_with_jwks(&token, &jwks), "{alg:?} token does not verify");
        assert_eq!(issuer.verify(&token).unwrap(), claims);
        // One changed claim breaks the signature.
        let tampered =
            format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(json!({"sub": "x"}).to_string()), parts[2]);
        assert!(!verifies_with_jwks(&tampered, &jwks) && issuer.verify(&tampered).is_err());
    }

    let odd = issuer.sign_with_header(&json!({"alg": "RS256"}), &claims, Alg::RS256);
    assert_eq!(decode_json(odd.split('.').next().unwrap()).unwrap(), json!({"alg": "RS256"}));
    issuer.verify(&odd).expect("no kid: the key of the alg");

    let unsigned = issuer.unsigned(&claims);
    assert!(unsigned.ends_with('.') && unsigned.split('.').count() == 3, "{unsigned}");
    assert_eq!(decode_json(unsigned.split('.').next().unwrap()).unwrap()["alg"], "none");
    let forgeries = [
        ("none", unsigned),
        ("hs256 with the public key", issuer.hs256_with_public_key(&claims)),
        ("hs256 with the oct key", issuer.hs256_with_published_secret(&claims)),
        ("foreign key", issuer.sign_with_foreign_key(&claims)),
    ];
    for (name, token) in &forgeries {
        assert!(!verifies_with_jwks(token, &jwks), "{name} verifies");
        assert!(issuer.verify(token).is_err(), "{name} verifies");
    }
    let foreign_header = decode_json(forgeries[3].1.split('.').next().unwrap()).unwrap();
    assert_eq!(foreign_header["kid"], issuer.kid(Alg::RS256));
    // The HS256 forgery really is keyed with the published PEM.
    let (input, tag) = forgeries[1].1.rsplit_once('.').unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, issuer.public_pems()[0].as_bytes());
    ring::hmac::verify(&key, input.as_bytes(), &URL_SAFE_NO_PAD.decode(tag).unwrap()).unwrap();
}

#[tokio::test]
async fn rotation_replaces_the_keys_and_outages_answer_503() {
    let issuer = Issuer::start_tls().await;
    let url = issuer.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = reqwest::Certificate::from_pem(issuer.ca_pem().unwrap().as_bytes()).unwrap();
    let https = reqwest::Client::builder().no_proxy().add_root_certificate(ca).build().unwrap();
    assert!(local_http().get(issuer.jwks_url()).send().await.is_err(), "served without TLS");

    let (_, before) = get(&https, &issuer.jwks_url()).await;
    let claims = kubernetes_claims(&url, "apps", "deployer", "uid-1", &["vault"]);
    let old_token = issuer.sign(&claims, Alg::RS256);
    let old_kids = [issuer.kid(Alg::RS256), issuer.kid(Alg::ES256)];
    issuer.rotate().await;
    let (status, after) = get(&https, &issuer.jwks_url()).await;
    assert_eq!(status, 200);
    assert_eq!(issuer.jwks_fetches(), 2);
    for kid in &old_kids {
        assert!(!after.to_string().contains(kid.as_str()), "{kid} still published: {after}");
        assert_ne!(&issuer.kid(Alg::RS256), kid);
        assert_ne!(&issuer.kid(Alg::ES256), kid);
    }
    assert_ne!(before["keys"][0]["n"], after["keys"][0]["n"]);
    assert!(verifies_with_jwks(&old_token, &before) && !verifies_with_jwks(&old_token, &after));
    assert!(issuer.verify(&old_token).is_err());
    assert!(verifies_with_jwks(&issuer.sign(&claims, Alg::RS256), &after));

    issuer.set_down(true);
    let discovery = format!("{url}/.well-known/openid-configuration");
    assert_eq!(get(&https, &discovery).await.0, 503);
    assert_eq!(get(&https, &issuer.jwks_url()).await.0, 503);
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 3));
    issuer.set_down(false);
    assert_eq!(get(&https, &discovery).await.1["issuer"], url);

    issuer.set_discovery_issuer(Some("https://elsewhere.example"));
    assert_eq!(get(&https, &discovery).await.1["issuer"], "https://elsewhere.example");
}

#[test]
fn claim_builders_have_the_providers_shapes() {
    let iss = "https://token.actions.githubusercontent.com";
    let gh = github_claims(iss, "acme/app", "refs/heads/main", "https://github.com/acme");
    assert_eq!(gh["sub"], "repo:acme/app:ref:refs/heads/main");
    assert_eq!(
        (&gh["iss"], &gh["aud"], &gh["ref_type"]),
        (&json!(iss), &json!("https://github.com/acme"), &json!("branch"))
    );
    assert_eq!((&gh["repository"], &gh["repository_owner"]), (&json!("acme/app"), &json!("acme")));
    assert!(
        gh["repository_id"].is_string() && gh["repository_owner_id"].is_string() && gh["run_id"].is_string()
    );
    assert!(gh.get("environment").is_none());
    let again = github_claims(iss, "acme/app", "refs/tags/v1", "a");
    assert_eq!(again["repository_id"], gh["repository_id"], "ids are stable");
    assert_ne!(again["jti"], gh["jti"]);
    assert_eq!(again["ref_type"], "tag");
    let env = with_github_environment(gh.clone(), "prod");
    assert_eq!(
        (&env["environment"], &env["sub"]),
        (&json!("prod"), &json!("repo:acme/app:environment:prod"))
    );

    let now = unix_now();
    let exp = gh["exp"].as_i64().unwrap();
    assert!(gh["iat"].as_i64().unwrap() <= now && (now + 290..=now + 300).contains(&exp), "{gh}");

    let gl = gitlab_claims("https://gitlab.example.com", "group/project", 42, "main", "https://keymint");
    assert_eq!(gl["sub"], "project_path:group/project:ref_type:branch:ref:main");
    assert_eq!((&gl["project_id"], &gl["ref_protected"]), (&json!("42"), &json!("true")));
    assert!(gl["runner_id"].is_u64(), "{gl}");
    assert_eq!(gl["groups_direct"], json!(["group"]));
    assert!(gl["user_email"].as_str().unwrap().contains('@'));

    let k8s = kubernetes_claims("https://kubernetes.default.svc", "apps", "deployer", "sa-uid", &["vault"]);
    assert_eq!(
        (&k8s["sub"], &k8s["aud"]),
        (&json!("system:serviceaccount:apps:deployer"), &json!(["vault"]))
    );
    let ns = &k8s["kubernetes.io"];
    assert_eq!(
        (&ns["namespace"], &ns["serviceaccount"]),
        (&json!("apps"), &json!({"name": "deployer", "uid": "sa-uid"}))
    );
    assert!(ns["pod"]["name"].is_string() && ns["pod"]["uid"].is_string());

    let old = with_times(k8s, 10, 20, 30);
    assert_eq!((&old["iat"], &old["nbf"], &old["exp"]), (&json!(10), &json!(20), &json!(30)));
    let bare = without_claims(old, &["exp", "nbf"]);
    assert!(bare.get("exp").is_none() && bare.get("nbf").is_none() && bare["iat"] == 10);
}
