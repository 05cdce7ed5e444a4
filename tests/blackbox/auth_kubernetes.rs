//! The Kubernetes auth method against a local HTTPS server speaking the TokenReview API (there
//! is no cluster here): a pod's projected token logs in to AWS keys that work; what keymint
//! sends the API server; refusals for the wrong service account, namespace or audience, for a
//! service account the cluster revoked, and when keymint's reviewer token is refused.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

both_backends!(a_pod_logs_in_through_token_review);

const REVIEWER: &str = "reviewer-token-for-tests";
const CLUSTER_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

async fn a_pod_logs_in_through_token_review(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    env.configure_root().await;
    km.post("aws/roles/deploy", json!({"credential_type": "iam_user"})).await.expect(204);
    km.put(
        "sys/policies/acl/deploy",
        json!({"policy": r#"path "aws/creds/deploy" { capabilities = ["read"] }"#}),
    )
    .await
    .expect(204);
    let issuer = Issuer::start().await;
    let cluster = TokenReviewServer::start(&issuer, REVIEWER).await;

    // hvac's `enable_auth_method`, `configure` and `create_role` (legacy names, lists).
    km.post("sys/auth/kubernetes", json!({"type": "kubernetes", "local": false})).await.expect(204);
    km.post(
        "auth/kubernetes/config",
        json!({"kubernetes_host": cluster.url(), "kubernetes_ca_cert": cluster.ca_pem(),
               "token_reviewer_jwt": REVIEWER, "disable_local_ca_jwt": true}),
    )
    .await
    .expect(204);
    let config = km.get("auth/kubernetes/config").await.expect(200);
    assert_eq!(config.data()["token_reviewer_jwt_set"], true);
    assert!(!config.text.contains(REVIEWER), "the reviewer token is never returned");
    km.post(
        "auth/kubernetes/role/payments",
        json!({"bound_service_account_names": ["payments"], "bound_service_account_namespaces": ["pay-*"],
               "ttl": 900, "policies": ["deploy"], "audience": "vault"}),
    )
    .await
    .expect(204);

    let pod = |ns: &str, sa: &str, aud: &[&str]| {
        issuer.sign(&kubernetes_claims(CLUSTER_ISSUER, ns, sa, &format!("uid-{sa}"), aud), Alg::RS256)
    };
    let token = pod("pay-prod", "payments", &["vault"]);
    let logged =
        km.anonymous().post("auth/kubernetes/login", json!({"role": "payments", "jwt": token})).await;
    let logged = logged.expect(200);
    let auth = &logged.json()["auth"];
    assert_eq!(auth["metadata"]["service_account_name"], "payments");
    assert_eq!(auth["metadata"]["service_account_namespace"], "pay-prod");
    assert_eq!(auth["metadata"]["service_account_uid"], "uid-payments");
    assert_eq!(auth["lease_duration"], 900);
    let client_token = auth["client_token"].as_str().unwrap();
    let creds = km.with_token(client_token).get("aws/creds/deploy").await.expect(200);
    let arn = env
        .moto
        .caller_arn(
            creds.data()["access_key"].as_str().unwrap(),
            creds.data()["secret_key"].as_str().unwrap(),
            None,
        )
        .await;
    assert!(arn.contains("vault-kubernetes-pay-prod-payments-"), "{arn}");

    // What keymint asked: the login's token, for the role's audience, with the reviewer bearer.
    let asked = cluster.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].bearer.as_deref(), Some(REVIEWER));
    assert_eq!(asked[0].token.as_deref(), Some(token.as_str()));
    assert_eq!(asked[0].audiences, Some(vec!["vault".to_string()]));

    let refuse = |jwt: String, text: &'static str| {
        let km = km.anonymous();
        async move {
            let refused = km.post("auth/kubernetes/login", json!({"role": "payments", "jwt": jwt})).await;
            assert_eq!(refused.status, 403, "{text}: {refused}");
            assert!(refused.errors().iter().any(|e| e.contains(text)), "{refused} lacks {text:?}");
        }
    };
    refuse(pod("pay-prod", "intruder", &["vault"]), "service account name not authorized").await;
    refuse(pod("kube-system", "payments", &["vault"]), "namespace not authorized").await;
    refuse(pod("pay-prod", "payments", &["api"]), "invalid audience (aud) claim").await;
    // The cluster no longer vouches for the service account (deleted, recreated).
    cluster.revoke_service_account("pay-prod", "payments");
    refuse(pod("pay-prod", "payments", &["vault"]), "permission denied").await;
    // keymint's own reviewer token is refused by the API server: logged, and a plain 403.
    cluster.set_reviewer_token("another-reviewer");
    refuse(pod("pay-dev", "payments", &["vault"]), "permission denied").await;
    assert!(km.logs().contains("refused the TokenReview's bearer"), "the reviewer 401 is logged plainly");
    km.anonymous()
        .post("auth/kubernetes/login", json!({"role": "nobody", "jwt": "a.b.c"}))
        .await
        .assert_errors(&["invalid role name \"nobody\""]);
    // None of the tokens made it into the logs.
    assert!(!km.logs().contains(&token), "a service-account token in the logs");
}
