//! Tokens and ACL policies end to end: policies written through the API decide what a token
//! may do, tokens form a tree whose revocation takes children and leases along (IAM users gone
//! in moto), and expired or used-up tokens are refused and cleaned up. Token roles are in
//! `token_roles`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use keymint_tests::*;

const USER_PATH: &str = "/keymint-tokens/";

const DEPLOYER: &str = r#"
path "aws/creds/deploy" {
  capabilities = ["read"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}
path "sys/leases/revoke-prefix/*" {
  capabilities = ["update"]
}
"#;

/// May create child tokens (only with its own policies).
const TOKEN_MAKER: &str = r#"
path "auth/token/create" {
  capabilities = ["update"]
  allowed_parameters = {
    "policies" = []
    "ttl" = []
    "orphan" = []
    "display_name" = []
  }
}
"#;

pub(crate) async fn env_with_role(backend: Backend) -> TestEnv {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    write_iam_user_role(&env.km, "deploy", USER_PATH).await;
    env.km.put("sys/policies/acl/deployer", json!({"policy": DEPLOYER})).await.expect(204);
    env.km.put("sys/policies/acl/token-maker", json!({"policy": TOKEN_MAKER})).await.expect(204);
    env
}

/// Creates a token through `by` and returns (token, accessor, the whole answer).
pub(crate) async fn token(by: &Client, body: Value) -> (String, String, Resp) {
    let resp = by.post("auth/token/create", body).await.expect(200);
    let auth = resp.json()["auth"].clone();
    (auth["client_token"].as_str().unwrap().to_owned(), auth["accessor"].as_str().unwrap().to_owned(), resp)
}

async fn users(moto: &Moto) -> Vec<String> {
    moto.user_names(USER_PATH).await
}

async fn policies_decide_what_a_token_may_do(backend: Backend) {
    let env = env_with_role(backend).await;
    let km = &env.km;

    let read = km.get("sys/policies/acl/deployer").await.expect(200);
    assert_eq!(read.data()["name"], "deployer");
    assert_eq!(read.data()["policy"], DEPLOYER);
    let listed = km.list("sys/policies/acl").await.expect(200);
    assert_eq!(listed.data()["keys"], json!(["default", "deployer", "root", "token-maker"]));
    let legacy = km.get("sys/policy").await.expect(200);
    assert_eq!(legacy.json()["policies"], listed.data()["keys"]);
    assert_eq!(km.get("sys/policy/deployer").await.expect(200).data()["rules"], DEPLOYER);
    km.put("sys/policies/acl/bad", json!({"policy": r#"path "x" { capabilities = ["fly"] }"#}))
        .await
        .assert_error_prefix(400, "failed to parse policy");
    km.put("sys/policies/acl/root", json!({"policy": DEPLOYER}))
        .await
        .assert_errors(&["cannot update \"root\" policy"]);
    km.delete("sys/policies/acl/default").await.assert_errors(&["cannot delete \"default\" policy"]);
    km.get("sys/policies/acl/nope").await.expect(404);

    let (tok, _, created) =
        token(&km.client(), json!({"policies": ["deployer"], "ttl": "1h", "display_name": "ci"})).await;
    let auth = &created.json()["auth"];
    assert!(tok.starts_with("hvs."), "{created}");
    assert_eq!(auth["policies"], json!(["default", "deployer"]));
    assert_eq!(auth["token_policies"], auth["policies"]);
    assert_eq!((auth["lease_duration"].as_i64(), auth["renewable"].as_bool()), (Some(3600), Some(true)));
    assert_eq!(auth["orphan"], false);
    assert_eq!(auth["token_type"], "service");

    let ci = km.with_token(&tok);
    let me = ci.get("auth/token/lookup-self").await.expect(200);
    assert_eq!(me.data()["display_name"], "token-ci");
    assert_eq!(me.data()["path"], "auth/token/create");
    // Granted: reading creds. The display name feeds the IAM user name, as in Vault.
    let creds = ci.get("aws/creds/deploy").await.expect(200);
    let user = users(&env.moto).await.pop().unwrap();
    assert!(user.starts_with("vault-token-ci-deploy-"), "{user}");
    // Not granted: everything else, each a 403 in Vault's shape.
    for denied in [
        ci.get("aws/roles/deploy").await,
        ci.post("aws/roles/deploy", json!({"user_path": "/x/"})).await,
        ci.post("aws/creds/deploy", json!({})).await,
        ci.get("aws/config/root").await,
        ci.list("sys/leases/lookup/aws/creds/").await,
        ci.post("auth/token/create", json!({})).await,
        ci.put("sys/policies/acl/mine", json!({"policy": DEPLOYER})).await,
        // Allowed the path, but revoke-prefix also needs sudo.
        ci.put("sys/leases/revoke-prefix/aws/creds/deploy", json!({})).await,
    ] {
        denied.assert_errors(&["1 error occurred:\n\t* permission denied\n\n"]);
    }
    let caps =
        ci.post("sys/capabilities-self", json!({"paths": ["aws/creds/deploy", "aws/roles/deploy"]})).await;
    let caps = caps.expect(200);
    assert_eq!(caps.data()["aws/creds/deploy"], json!(["read"]));
    assert_eq!(caps.data()["aws/roles/deploy"], json!(["deny"]));
    let caps =
        km.post("sys/capabilities", json!({"token": tok, "path": "sys/leases/revoke"})).await.expect(200);
    assert_eq!(caps.data()["capabilities"], json!(["update"]));
    // The lease it got, it may revoke; the IAM user goes.
    let lease = creds.json()["lease_id"].as_str().unwrap().to_owned();
    ci.put("sys/leases/revoke", json!({"lease_id": lease})).await.expect(204);
    assert!(users(&env.moto).await.is_empty());

    // AWS roles have no existence check in Vault: every write to one needs `update`, the
    // first too (token roles do have one: see role_writes_need_create_or_update_and_bind_cidrs).
    km.put(
        "sys/policies/acl/role-maker",
        json!({"policy": "path \"aws/roles/*\" {\n capabilities = [\"create\"]\n}\n"}),
    )
    .await
    .expect(204);
    let (maker, _, _) = token(&km.client(), json!({"policies": "role-maker"})).await;
    let maker = km.with_token(&maker);
    maker.post("aws/roles/fresh", json!({"credential_type": "iam_user"})).await.expect(403);

    // Token creation: only a subset of the creator's policies, and only allowed parameters.
    let (parent, _, _) = token(&km.client(), json!({"policies": ["deployer", "token-maker"]})).await;
    let parent = km.with_token(&parent);
    parent
        .post("auth/token/create", json!({"policies": ["root"]}))
        .await
        .assert_errors(&["child policies must be subset of parent"]);
    parent
        .post("auth/token/create", json!({"policies": ["role-maker"]}))
        .await
        .assert_errors(&["child policies must be subset of parent"]);
    parent.post("auth/token/create", json!({"policies": ["deployer"], "num_uses": 3})).await.expect(403);
    let (child, _, resp) = token(&parent, json!({"policies": ["deployer"], "ttl": "10m"})).await;
    assert_eq!(resp.json()["auth"]["policies"], json!(["default", "deployer"]));
    km.with_token(&child).get("aws/creds/deploy").await.expect(200);
}

async fn revoking_a_token_takes_its_children_and_their_leases(backend: Backend) {
    let env = env_with_role(backend).await;
    let km = &env.km;
    let (parent, parent_accessor, _) =
        token(&km.client(), json!({"policies": ["deployer", "token-maker"]})).await;
    let parent = km.with_token(&parent);
    let (child, _, _) = token(&parent, json!({"policies": ["deployer"]})).await;
    let child = km.with_token(&child);

    child.get("aws/creds/deploy").await.expect(200);
    parent.get("aws/creds/deploy").await.expect(200);
    // Issued as an orphan: outlives the token.
    let kept = parent.get("aws/creds/deploy?orphan=true").await.expect(200);
    let kept_user = users(&env.moto).await;
    assert_eq!(kept_user.len(), 3);

    km.post("auth/token/revoke-accessor", json!({"accessor": parent_accessor})).await.expect(204);
    parent.get("auth/token/lookup-self").await.expect(403);
    child.get("auth/token/lookup-self").await.expect(403);
    eventually("the revoked tokens' users to be deleted", Duration::from_secs(30), async || {
        (users(&env.moto).await.len() == 1).then_some(())
    })
    .await;
    let kept_lease = kept.json()["lease_id"].as_str().unwrap();
    km.put("sys/leases/lookup", json!({"lease_id": kept_lease})).await.expect(200);

    // revoke-orphan: the children live on, as orphans.
    let (p2, _, _) = token(&km.client(), json!({"policies": ["token-maker"]})).await;
    let (c2, _, _) = token(&km.with_token(&p2), json!({"policies": ["token-maker"]})).await;
    km.post("auth/token/revoke-orphan", json!({"token": p2})).await.expect(204);
    let me = km.with_token(&c2).get("auth/token/lookup-self").await.expect(200);
    assert_eq!(me.data()["orphan"], true);
    km.with_token(&p2).get("auth/token/lookup-self").await.expect(403);
    // A token may revoke itself.
    km.with_token(&c2).post("auth/token/revoke-self", json!({})).await.expect(204);
    km.with_token(&c2).get("auth/token/lookup-self").await.expect(403);
}

async fn expired_and_used_up_tokens_are_refused(backend: Backend) {
    let env = env_with_role(backend).await;
    let km = &env.km;
    let (short, _, _) = token(&km.client(), json!({"policies": ["deployer"], "ttl": "3s"})).await;
    let short = km.with_token(&short);
    short.get("aws/creds/deploy").await.expect(200);
    assert_eq!(users(&env.moto).await.len(), 1);
    eventually("the token to expire", Duration::from_secs(20), async || {
        (short.get("auth/token/lookup-self").await.status == 403).then_some(())
    })
    .await;
    // Its lease goes with it.
    eventually("the expired token's user to be deleted", Duration::from_secs(30), async || {
        users(&env.moto).await.is_empty().then_some(())
    })
    .await;

    let (limited, _, _) = token(&km.client(), json!({"policies": ["deployer"], "num_uses": 2})).await;
    let limited = km.with_token(&limited);
    let looked = limited.get("auth/token/lookup-self").await.expect(200);
    assert_eq!(looked.data()["num_uses"], 1, "the lookup itself spent a use");
    limited.get("auth/token/lookup-self").await.expect(200);
    limited.get("auth/token/lookup-self").await.expect(403);

    // Renewal: up to the explicit max TTL, with Vault's warning past it.
    let (renewable, _, _) =
        token(&km.client(), json!({"policies": ["deployer"], "ttl": "1h", "explicit_max_ttl": "2h"})).await;
    let renewed =
        km.with_token(&renewable).post("auth/token/renew-self", json!({"increment": "3h"})).await.expect(200);
    let ttl = renewed.json()["auth"]["lease_duration"].as_i64().unwrap();
    assert!((7190..=7200).contains(&ttl), "{renewed}");
    assert!(renewed.warnings()[0].contains("exceeded the effective max_ttl"), "{renewed}");
    km.post("auth/token/renew-self", json!({})).await.assert_errors(&["lease is not renewable"]);
    // Vault: 403 "bad token" for a lookup of a token it does not know.
    km.post("auth/token/lookup", json!({"token": "hvs.nope"}))
        .await
        .expect(403)
        .assert_errors(&["bad token"]);
}

/// Vault's rules for `auth/token/create` by a token that is not root: `id`, `no_parent` and
/// `period` need sudo on the path; a use-limited token makes no children; an empty policy
/// list means the creator's; `display_name` loses a trailing `-`; `lease` is `ttl`.
#[tokio::test]
async fn token_create_follows_vaults_rules() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let client = km.client();
    let policy = |name: &str, caps: &str| {
        let client = client.clone();
        let text = format!("path \"auth/token/create\" {{\n  capabilities = {caps}\n}}\n");
        let name = name.to_owned();
        async move { client.put(&format!("sys/policies/acl/{name}"), json!({"policy": text})).await.expect(204) }
    };
    policy("maker", r#"["update"]"#).await;
    policy("sudo-maker", r#"["update", "sudo"]"#).await;

    let (maker, _, _) = token(&client, json!({"policies": ["maker"]})).await;
    let maker = client.with_token(&maker);
    for (body, error) in [
        (json!({"period": "1h"}), "root or sudo privileges required to create periodic token"),
        (json!({"id": "hvs.chosen-by-me"}), "root or sudo privileges required to specify token id"),
        (json!({"no_parent": true}), "root or sudo privileges required to create orphan token"),
    ] {
        maker.post("auth/token/create", body).await.expect(400).assert_errors(&[error]);
    }
    // An empty list is the creator's own policies; a trailing `-` of the display name goes.
    let (_, _, made) = token(&maker, json!({"policies": [], "display_name": "ci-", "lease": "30m"})).await;
    let auth = &made.json()["auth"];
    assert_eq!(auth["policies"], json!(["default", "maker"]), "{made}");
    assert_eq!(auth["lease_duration"], 1800, "`lease` is `ttl`: {made}");
    let child = made.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    let looked = client.post("auth/token/lookup", json!({"token": child})).await.expect(200);
    assert_eq!(looked.data()["display_name"], "token-ci", "{looked}");

    let (sudo, _, _) = token(&client, json!({"policies": ["sudo-maker"]})).await;
    let sudo = client.with_token(&sudo);
    let (_, _, periodic) = token(&sudo, json!({"period": "1h", "no_parent": true})).await;
    assert_eq!(periodic.json()["auth"]["orphan"], true, "{periodic}");
    assert_eq!(periodic.json()["auth"]["lease_duration"], 3600, "{periodic}");
    let (chosen, _, _) = token(&sudo, json!({"id": "hvs.chosen-by-sudo"})).await;
    assert_eq!(chosen, "hvs.chosen-by-sudo");

    let (limited, _, _) = token(&client, json!({"policies": ["maker"], "num_uses": 5})).await;
    client
        .with_token(&limited)
        .post("auth/token/create", json!({}))
        .await
        .expect(400)
        .assert_errors(&["restricted use token cannot generate child tokens"]);
}

both_backends!(
    policies_decide_what_a_token_may_do,
    revoking_a_token_takes_its_children_and_their_leases,
    expired_and_used_up_tokens_are_refused
);
