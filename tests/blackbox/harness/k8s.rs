//! The fake Kubernetes API server's TokenReview answers, as keymint will see them.

use keymint_tests::*;

struct Cluster {
    issuer: Issuer,
    api: TokenReviewServer,
    http: reqwest::Client,
    reviewer: String,
}

impl Cluster {
    async fn start() -> Cluster {
        let issuer = Issuer::start().await;
        let reviewer = issuer.sign(
            &kubernetes_claims(
                &issuer.url(),
                "kube-system",
                "token-reviewer",
                "reviewer-uid",
                &["https://kubernetes.default.svc"],
            ),
            Alg::RS256,
        );
        let api = TokenReviewServer::start(&issuer, &reviewer).await;
        let ca = reqwest::Certificate::from_pem(api.ca_pem().as_bytes()).unwrap();
        let http = reqwest::Client::builder().no_proxy().add_root_certificate(ca).build().unwrap();
        Cluster { issuer, api, http, reviewer }
    }

    fn token(&self, namespace: &str, sa: &str, aud: &[&str]) -> String {
        let claims =
            kubernetes_claims("https://kubernetes.default.svc", namespace, sa, &format!("{sa}-uid"), aud);
        self.issuer.sign(&claims, Alg::ES256)
    }

    /// POSTs a TokenReview the way Vault does (no TypeMeta); returns the status and body.
    async fn review(&self, bearer: Option<&str>, token: &str, audiences: Option<&[&str]>) -> (u16, Value) {
        let mut spec = json!({"token": token});
        if let Some(audiences) = audiences {
            spec["audiences"] = json!(audiences);
        }
        let mut req = self
            .http
            .post(format!("{}/apis/authentication.k8s.io/v1/tokenreviews", self.api.url()))
            .json(&json!({"spec": spec}));
        if let Some(bearer) = bearer {
            req = req.bearer_auth(bearer);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }
}

#[tokio::test]
async fn token_review_authenticates_issued_tokens() {
    let k8s = Cluster::start().await;
    assert!(k8s.api.url().starts_with("https://127.0.0.1:"));
    let token = k8s.token("apps", "deployer", &["vault", "other"]);

    let (status, body) = k8s.review(Some(&k8s.reviewer), &token, Some(&["vault"])).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (&body["kind"], &body["apiVersion"]),
        (&json!("TokenReview"), &json!("authentication.k8s.io/v1"))
    );
    let review = &body["status"];
    assert_eq!(review["authenticated"], true, "{body}");
    assert_eq!(review["user"]["username"], "system:serviceaccount:apps:deployer");
    assert_eq!(review["user"]["uid"], "deployer-uid");
    assert!(review["user"]["groups"].as_array().unwrap().contains(&json!("system:serviceaccounts:apps")));
    assert_eq!(review["audiences"], json!(["vault"]));

    // No audiences asked: the token's own.
    let (_, body) = k8s.review(Some(&k8s.reviewer), &token, None).await;
    assert_eq!(body["status"]["audiences"], json!(["vault", "other"]));

    let recorded = k8s.api.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].bearer.as_deref(), Some(k8s.reviewer.as_str()));
    assert_eq!(recorded[0].token.as_deref(), Some(token.as_str()));
    assert_eq!(recorded[0].audiences, Some(vec!["vault".to_owned()]));
    assert_eq!(recorded[1].audiences, None);
    assert_eq!(k8s.api.reviews(), 2);
}

#[tokio::test]
async fn token_review_refuses_bad_bearers_and_bad_tokens() {
    let k8s = Cluster::start().await;
    let token = k8s.token("apps", "deployer", &["vault"]);

    for bearer in [None, Some("not-the-reviewer"), Some(token.as_str())] {
        let (status, body) = k8s.review(bearer, &token, None).await;
        assert_eq!(status, 401, "{bearer:?}: {body}");
        assert_eq!(
            (&body["kind"], &body["reason"], &body["code"]),
            (&json!("Status"), &json!("Unauthorized"), &json!(401))
        );
    }
    assert_eq!(k8s.api.requests().len(), 3, "refused requests are recorded too");
    assert_eq!(k8s.api.reviews(), 0);

    // The client's own token as bearer, once allowed.
    k8s.api.allow_self_review(true);
    assert_eq!(k8s.review(Some(&token), &token, None).await.1["status"]["authenticated"], true);
    // A new reviewer token replaces the old.
    k8s.api.set_reviewer_token("rotated-reviewer");
    assert_eq!(k8s.review(Some(&k8s.reviewer), &token, None).await.0, 401);
    let reviewer = "rotated-reviewer";

    let refused = async |token: &str, audiences: Option<&[&str]>| {
        let (status, body) = k8s.review(Some(reviewer), token, audiences).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"]["authenticated"], false, "{body}");
        body["status"]["error"].as_str().unwrap().to_owned()
    };
    let error = refused(&token, Some(&["elsewhere"])).await;
    assert!(
        error.contains(r#"token audiences ["vault"] is invalid for the target audiences ["elsewhere"]"#),
        "{error}"
    );

    let now = unix_now();
    let expired = with_times(
        kubernetes_claims("https://kubernetes.default.svc", "apps", "deployer", "deployer-uid", &["vault"]),
        now - 600,
        now - 600,
        now - 1,
    );
    refused(&k8s.issuer.sign(&expired, Alg::RS256), None).await;
    let claims =
        kubernetes_claims("https://kubernetes.default.svc", "apps", "deployer", "deployer-uid", &["vault"]);
    refused(&k8s.issuer.sign_with_foreign_key(&claims), None).await;
    refused(&k8s.issuer.unsigned(&claims), None).await;

    k8s.api.revoke_service_account("apps", "deployer");
    let error = refused(&token, Some(&["vault"])).await;
    assert!(error.contains("not found"), "{error}");
    let other = k8s.token("apps", "builder", &["vault"]);
    assert_eq!(k8s.review(Some(reviewer), &other, None).await.1["status"]["authenticated"], true);
}

#[tokio::test]
async fn namespaces_carry_their_labels() {
    let k8s = Cluster::start().await;
    k8s.api.set_namespace_labels("apps", &[("team", "payments")]);
    let url = format!("{}/api/v1/namespaces/apps", k8s.api.url());
    let resp = k8s.http.get(&url).bearer_auth(&k8s.reviewer).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ns: Value = resp.json().await.unwrap();
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["metadata"]["labels"], json!({"kubernetes.io/metadata.name": "apps", "team": "payments"}));
    assert_eq!(k8s.http.get(&url).send().await.unwrap().status(), 401);
}
