//! The authorization matrix: for each endpoint family, a token holding exactly the capability
//! Vault would check gets its answer, and a token without it (no policy at all, or a rule
//! that falls short, e.g. the capability without `sudo` where Vault wants sudo) gets a 403.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

struct Case {
    method: &'static str,
    path: &'static str,
    body: Value,
    /// The rule that grants it.
    grant: &'static str,
    /// The answer with the grant.
    status: u16,
    /// A rule that is not enough (e.g. the capability without sudo), besides no rule at all.
    short: Option<&'static str>,
}

fn case(method: &'static str, path: &'static str, grant: &'static str, status: u16) -> Case {
    Case { method, path, body: json!({}), grant, status, short: None }
}

async fn every_endpoint_checks_its_capability(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    let km = &env.km;
    km.post("aws/roles/deploy", json!({"credential_type": "iam_user"})).await.expect(204);
    let role_arn = env.moto.create_role("km-authz").await;
    km.post("aws/roles/ar", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);
    let lease = km.get("aws/creds/deploy").await.expect(200).json()["lease_id"].as_str().unwrap().to_owned();
    km.put("sys/audit/file", json!({"type": "file", "options": {"file_path": "discard"}})).await.expect(204);
    km.post("sys/mounts/fresh", json!({"type": "aws"})).await.expect(204);
    km.put("sys/policies/acl/existing", json!({"policy": "path \"x\" {\n capabilities = [\"read\"]\n}\n"}))
        .await
        .expect(204);
    km.put("sys/auth/approle", json!({"type": "approle"})).await.expect(204);
    km.put("sys/auth/jwt", json!({"type": "jwt"})).await.expect(204);
    km.put("sys/auth/kubernetes", json!({"type": "kubernetes"})).await.expect(204);
    km.post("auth/approle/role/ci", json!({"token_policies": "default"})).await.expect(204);
    let issuer = Issuer::start().await;
    let pems = issuer.public_pems();

    let cases = vec![
        case("GET", "aws/config/root", r#"path "aws/config/root" { capabilities = ["read"] }"#, 200),
        // Vault's one existence check among keymint's paths: the first config/root write of a
        // mount is a create, later ones updates.
        Case {
            body: root_config(&env.moto),
            short: Some(r#"path "aws/config/root" { capabilities = ["create"] }"#),
            ..case("POST", "aws/config/root", r#"path "aws/config/root" { capabilities = ["update"] }"#, 200)
        },
        Case {
            body: root_config(&env.moto),
            short: Some(r#"path "fresh/config/root" { capabilities = ["update"] }"#),
            ..case(
                "POST",
                "fresh/config/root",
                r#"path "fresh/config/root" { capabilities = ["create"] }"#,
                200,
            )
        },
        case("GET", "aws/config/lease", r#"path "aws/config/lease" { capabilities = ["read"] }"#, 404),
        Case {
            body: json!({"lease": "1h", "lease_max": "2h"}),
            ..case(
                "POST",
                "aws/config/lease",
                r#"path "aws/config/lease" { capabilities = ["update"] }"#,
                204,
            )
        },
        case("GET", "aws/roles/deploy", r#"path "aws/roles/*" { capabilities = ["read"] }"#, 200),
        case("LIST", "aws/roles", r#"path "aws/roles/" { capabilities = ["list"] }"#, 200),
        // Roles have no existence check in Vault: a new one needs `update` too.
        Case {
            body: json!({"credential_type": "iam_user"}),
            short: Some(r#"path "aws/roles/*" { capabilities = ["create"] }"#),
            ..case("POST", "aws/roles/new-role", r#"path "aws/roles/*" { capabilities = ["update"] }"#, 204)
        },
        Case {
            body: json!({"user_path": "/x/"}),
            short: Some(r#"path "aws/roles/*" { capabilities = ["create"] }"#),
            ..case("POST", "aws/roles/deploy", r#"path "aws/roles/*" { capabilities = ["update"] }"#, 204)
        },
        case("DELETE", "aws/roles/new-role", r#"path "aws/roles/*" { capabilities = ["delete"] }"#, 204),
        case("GET", "aws/creds/deploy", r#"path "aws/creds/deploy" { capabilities = ["read"] }"#, 200),
        // Parameter rules hold for the query of a read, as in Vault.
        Case {
            short: Some(
                "path \"aws/creds/deploy\" {\n capabilities = [\"read\"]\n allowed_parameters = { \"ttl\" = [\"15m\"] }\n}",
            ),
            ..case(
                "GET",
                "aws/creds/deploy?ttl=1h",
                "path \"aws/creds/deploy\" {\n capabilities = [\"read\"]\n allowed_parameters = { \"ttl\" = [\"1h\"] }\n}",
                200,
            )
        },
        case("POST", "aws/sts/ar", r#"path "aws/sts/ar" { capabilities = ["update"] }"#, 200),
        case("GET", "sys/mounts", r#"path "sys/mounts" { capabilities = ["read"] }"#, 200),
        Case {
            body: json!({"type": "aws"}),
            ..case("POST", "sys/mounts/aws2", r#"path "sys/mounts/*" { capabilities = ["update"] }"#, 204)
        },
        Case {
            body: json!({"lease_id": lease}),
            ..case(
                "PUT",
                "sys/leases/lookup",
                r#"path "sys/leases/lookup" { capabilities = ["update"] }"#,
                200,
            )
        },
        Case {
            short: Some(r#"path "sys/leases/lookup/*" { capabilities = ["list"] }"#),
            ..case(
                "LIST",
                "sys/leases/lookup/aws/creds/",
                r#"path "sys/leases/lookup/*" { capabilities = ["list", "sudo"] }"#,
                200,
            )
        },
        Case {
            short: Some(r#"path "sys/leases/revoke-prefix/*" { capabilities = ["update"] }"#),
            ..case(
                "PUT",
                "sys/leases/revoke-prefix/aws/creds/nothing-here",
                r#"path "sys/leases/revoke-prefix/*" { capabilities = ["update", "sudo"] }"#,
                204,
            )
        },
        case(
            "GET",
            "sys/policies/acl/existing",
            r#"path "sys/policies/acl/*" { capabilities = ["read"] }"#,
            200,
        ),
        case("LIST", "sys/policies/acl", r#"path "sys/policies/acl/" { capabilities = ["list"] }"#, 200),
        Case {
            body: json!({"policy": "path \"y\" {\n capabilities = [\"read\"]\n}\n"}),
            short: Some(r#"path "sys/policies/acl/*" { capabilities = ["create"] }"#),
            ..case(
                "PUT",
                "sys/policies/acl/written",
                r#"path "sys/policies/acl/*" { capabilities = ["update"] }"#,
                204,
            )
        },
        case(
            "DELETE",
            "sys/policies/acl/existing",
            r#"path "sys/policies/acl/*" { capabilities = ["delete"] }"#,
            204,
        ),
        Case {
            body: json!({"policies": ["default"]}),
            ..case(
                "POST",
                "auth/token/create",
                r#"path "auth/token/create" { capabilities = ["update"] }"#,
                200,
            )
        },
        Case {
            body: json!({"input": "x"}),
            ..case(
                "POST",
                "sys/audit-hash/file",
                r#"path "sys/audit-hash/*" { capabilities = ["update"] }"#,
                200,
            )
        },
        Case {
            body: json!({"type": "file", "options": {"file_path": "discard"}}),
            short: Some(r#"path "sys/audit/*" { capabilities = ["update"] }"#),
            ..case(
                "PUT",
                "sys/audit/second",
                r#"path "sys/audit/*" { capabilities = ["update", "sudo"] }"#,
                204,
            )
        },
        Case {
            short: Some(r#"path "sys/audit" { capabilities = ["read"] }"#),
            ..case("GET", "sys/audit", r#"path "sys/audit" { capabilities = ["read", "sudo"] }"#, 200)
        },
        // Auth methods: enabling and reading one is a root path, as in Vault.
        case("GET", "sys/auth", r#"path "sys/auth" { capabilities = ["read"] }"#, 200),
        Case {
            body: json!({"type": "approle"}),
            short: Some(r#"path "sys/auth/*" { capabilities = ["update"] }"#),
            ..case(
                "POST",
                "sys/auth/approle2",
                r#"path "sys/auth/*" { capabilities = ["update", "sudo"] }"#,
                204,
            )
        },
        Case {
            short: Some(r#"path "sys/auth/*" { capabilities = ["read"] }"#),
            ..case("GET", "sys/auth/approle", r#"path "sys/auth/*" { capabilities = ["read", "sudo"] }"#, 200)
        },
        Case {
            body: json!({"default_lease_ttl": "1h"}),
            ..case(
                "POST",
                "sys/auth/approle/tune",
                r#"path "sys/auth/approle/tune" { capabilities = ["update"] }"#,
                204,
            )
        },
        // Role writes have Vault's existence check: a new role needs `create`.
        Case {
            body: json!({"token_policies": "default"}),
            short: Some(r#"path "auth/approle/role/*" { capabilities = ["update"] }"#),
            ..case(
                "POST",
                "auth/approle/role/new",
                r#"path "auth/approle/role/*" { capabilities = ["create"] }"#,
                204,
            )
        },
        Case {
            body: json!({"token_ttl": "5m"}),
            short: Some(r#"path "auth/approle/role/*" { capabilities = ["create"] }"#),
            ..case(
                "POST",
                "auth/approle/role/ci",
                r#"path "auth/approle/role/*" { capabilities = ["update"] }"#,
                204,
            )
        },
        case(
            "GET",
            "auth/approle/role/ci/role-id",
            r#"path "auth/approle/role/+/role-id" { capabilities = ["read"] }"#,
            200,
        ),
        case(
            "POST",
            "auth/approle/role/ci/secret-id",
            r#"path "auth/approle/role/+/secret-id" { capabilities = ["update"] }"#,
            200,
        ),
        Case {
            body: json!({"jwt_validation_pubkeys": pems.clone()}),
            short: Some(r#"path "auth/jwt/config" { capabilities = ["read"] }"#),
            ..case("POST", "auth/jwt/config", r#"path "auth/jwt/config" { capabilities = ["update"] }"#, 204)
        },
        Case {
            body: json!({"kubernetes_host": "https://127.0.0.1:1"}),
            ..case(
                "POST",
                "auth/kubernetes/config",
                r#"path "auth/kubernetes/config" { capabilities = ["update"] }"#,
                204,
            )
        },
    ];

    for (i, c) in cases.into_iter().enumerate() {
        let what = format!("{} {}", c.method, c.path);
        // Without: no policy at all; then, where given, a rule that falls short.
        let mut refused = vec![mint_token(km, i, "none", None).await];
        if let Some(short) = c.short {
            refused.push(mint_token(km, i, "short", Some(short)).await);
        }
        for token in refused {
            let resp = send(&km.with_token(&token), c.method, c.path, &c.body).await;
            assert_eq!(resp.status, 403, "{what} without the capability: {resp}");
        }
        let token = mint_token(km, i, "grant", Some(c.grant)).await;
        let resp = send(&km.with_token(&token), c.method, c.path, &c.body).await;
        assert_eq!(resp.status, c.status, "{what} with {:?}: {resp}", c.grant);
    }

    // A login needs no capability, nor any token at all.
    let rid = km.get("auth/approle/role/ci/role-id").await.expect(200).data()["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sid = km.post("auth/approle/role/ci/secret-id", json!({})).await.expect(200).data()["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let none = mint_token(km, 999, "none", None).await;
    km.with_token(&none)
        .post("auth/approle/login", json!({"role_id": rid, "secret_id": sid}))
        .await
        .expect(200);
    km.anonymous().post("auth/approle/login", json!({"role_id": rid, "secret_id": sid})).await.expect(200);
}

/// A token holding only a policy made of `rule` (one-line HCL blocks are spread over lines,
/// as HCL wants), or no policy at all. Not even `default`: it grants lease lookups. "No
/// policy" is a name no policy has (it grants nothing): an empty list would be the creator's
/// policies, root here, as in Vault.
async fn mint_token(km: &Keymint, case: usize, kind: &str, rule: Option<&str>) -> String {
    let mut policies = vec!["no-such-policy".to_owned()];
    if let Some(rule) = rule {
        let name = format!("case-{case}-{kind}");
        let text = rule.replacen("{ ", "{\n", 1).replacen(" }", "\n}", 1);
        km.put(&format!("sys/policies/acl/{name}"), json!({"policy": text})).await.expect(204);
        policies.push(name);
    }
    let created = km
        .post("auth/token/create", json!({"policies": policies, "no_default_policy": true}))
        .await
        .expect(200);
    created.json()["auth"]["client_token"].as_str().unwrap().to_owned()
}

async fn send(client: &Client, method: &str, path: &str, body: &Value) -> Resp {
    match method {
        "GET" => client.get(path).await,
        "LIST" => client.list(path).await,
        "DELETE" => client.delete(path).await,
        "PUT" => client.put(path, body.clone()).await,
        _ => client.post(path, body.clone()).await,
    }
}

both_backends!(every_endpoint_checks_its_capability);
