//! Token roles end to end: written, read, listed and deleted; the tokens created against them
//! follow them (policies beyond the creator's, orphans, periods, use limits, bound CIDRs) and
//! renew by them; role writes need create or update as Vault's existence check says.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use keymint_tests::*;

use crate::tokens::{env_with_role, token};

/// May create tokens: child tokens, and tokens against any token role.
const ROLE_USER: &str = r#"
path "auth/token/create" {
  capabilities = ["update"]
}
path "auth/token/create/*" {
  capabilities = ["update"]
}
"#;

async fn token_roles_are_written_read_listed_and_deleted(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    km.list("auth/token/roles").await.expect(404).assert_errors(&[]);

    // Created with comma strings and legacy fields: what is not given takes Vault's defaults.
    km.post(
        "auth/token/roles/ci",
        json!({"allowed_policies": "deployer, Other", "orphan": true, "period": "1h", "path_suffix": "rev2"}),
    )
    .await
    .expect(204);
    let read = km.get("auth/token/roles/ci").await.expect(200);
    assert_eq!(
        read.data(),
        &json!({
            "allowed_entity_aliases": [],
            "allowed_policies": ["deployer", "other"],
            "allowed_policies_glob": [],
            "disallowed_policies": [],
            "disallowed_policies_glob": [],
            "explicit_max_ttl": 0,
            "name": "ci",
            "orphan": true,
            "path_suffix": "rev2",
            "period": 3600,
            "renewable": true,
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_max_ttl": 0,
            "token_no_default_policy": false,
            "token_num_uses": 0,
            "token_period": 3600,
            "token_ttl": 0,
            "token_type": "default-service",
        })
    );
    assert_eq!(read.json()["mount_type"], "token");

    // An update changes only what it names.
    km.post(
        "auth/token/roles/ci",
        json!({"renewable": false, "token_num_uses": "3", "token_type": "service"}),
    )
    .await
    .expect(204);
    let read = km.get("auth/token/roles/ci").await.expect(200);
    assert_eq!(read.data()["allowed_policies"], json!(["deployer", "other"]));
    assert_eq!(
        (read.data()["orphan"].as_bool(), read.data()["renewable"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(
        (read.data()["token_num_uses"].as_i64(), read.data()["period"].as_i64()),
        (Some(3), Some(3600))
    );
    assert_eq!(read.data()["token_type"], "service");

    // Unknown parameters and both spellings of a field: 200 with Vault's warnings.
    let warned = km
        .post("auth/token/roles/ci", json!({"token_period": 60, "period": 90, "bogus": 1}))
        .await
        .expect(200);
    assert_eq!(
        warned.warnings(),
        [
            "Both 'token_period' and deprecated 'period' value supplied, ignoring the deprecated value",
            "Endpoint ignored these unrecognized parameters: [bogus]",
        ]
    );
    let read = km.get("auth/token/roles/ci").await.expect(200);
    assert_eq!((read.data()["period"].as_i64(), read.data()["token_period"].as_i64()), (Some(0), Some(60)));

    // Refused writes change nothing.
    for (body, error) in [
        (
            json!({"path_suffix": "a..b"}),
            "error registering path suffix: path cannot contain parent references",
        ),
        (json!({"token_type": "nope"}), "invalid 'token_type' value \"nope\""),
        (json!({"token_type": null}), "Invalid 'token_type' value: null"),
        (json!({"token_num_uses": -1}), "error parsing role fields: 'token_num_uses' cannot be negative"),
        (
            json!({"token_bound_cidrs": "10.0.0.0/40"}),
            "error parsing role fields: error parsing address \"10.0.0.0/40\": not an IP address or CIDR block",
        ),
        (
            json!({"token_type": "batch"}),
            "keymint issues service tokens only; token_type \"batch\" is not supported",
        ),
    ] {
        km.post("auth/token/roles/ci", body).await.expect(400).assert_errors(&[error]);
    }
    km.post("auth/token/roles/ci", json!({"token_period": "-5s"})).await.expect(400);
    assert_eq!(km.get("auth/token/roles/ci").await.expect(200).data()["path_suffix"], "rev2");

    km.post("auth/token/roles/another", json!({})).await.expect(204);
    assert_eq!(km.list("auth/token/roles").await.expect(200).data()["keys"], json!(["another", "ci"]));
    let listed = km.get("auth/token/roles?list=true").await.expect(200);
    assert_eq!(listed.data()["keys"], json!(["another", "ci"]));
    km.get("auth/token/roles").await.expect(405);
    km.get("auth/token/roles/-bad").await.expect(404);

    km.delete("auth/token/roles/ci").await.expect(204);
    km.get("auth/token/roles/ci").await.expect(404).assert_errors(&[]);
    km.delete("auth/token/roles/ci").await.expect(204);
    assert_eq!(km.list("auth/token/roles").await.expect(200).data()["keys"], json!(["another"]));
}

async fn tokens_created_against_roles_follow_them(backend: Backend) {
    let env = env_with_role(backend).await;
    let km = &env.km;
    km.put("sys/policies/acl/role-user", json!({"policy": ROLE_USER})).await.expect(204);
    km.post(
        "auth/token/roles/deployers",
        json!({"allowed_policies": ["deployer"], "path_suffix": "rev2", "token_explicit_max_ttl": "2h"}),
    )
    .await
    .expect(204);
    let (user, user_accessor, _) = token(&km.client(), json!({"policies": ["role-user"]})).await;
    let user = km.with_token(&user);

    // The role grants what its creator does not hold: that is what roles are for.
    let created = user.post("auth/token/create/deployers", json!({})).await.expect(200);
    let auth = &created.json()["auth"];
    assert_eq!(auth["policies"], json!(["default", "deployer"]));
    assert_eq!((auth["orphan"].as_bool(), auth["lease_duration"].as_i64()), (Some(false), Some(7200)));
    let child = auth["client_token"].as_str().unwrap().to_owned();
    km.with_token(&child).get("aws/creds/deploy").await.expect(200);
    let looked = km.post("auth/token/lookup", json!({"token": child})).await.expect(200);
    assert_eq!(looked.data()["path"], "auth/token/create/deployers/rev2");
    assert_eq!(looked.data()["role"], "deployers");
    assert_eq!(looked.data()["explicit_max_ttl"], 7200);
    // Without a role the same token may only hand out its own policies.
    user.post("auth/token/create", json!({"policies": ["deployer"]}))
        .await
        .expect(400)
        .assert_errors(&["child policies must be subset of parent"]);

    // Only what the role allows, whatever the creator holds.
    km.post("auth/token/create/deployers", json!({"policies": ["deployer", "token-maker"]}))
        .await
        .expect(400)
        .assert_errors(&[
            r#"token policies (["default" "deployer" "token-maker"]) must be subset of the role's allowed policies (["default" "deployer"]) or glob policies ([])"#,
        ]);
    let quiet = km
        .post("auth/token/create/deployers", json!({"policies": "deployer", "no_default_policy": true}))
        .await
        .expect(200);
    assert_eq!(quiet.json()["auth"]["policies"], json!(["deployer"]));
    km.post("auth/token/create/nope", json!({})).await.expect(400).assert_errors(&["unknown role nope"]);
    km.get("auth/token/create/deployers").await.expect(405);

    // Disallowed policies are refused even when the creator holds them.
    km.post("auth/token/roles/no-deploy", json!({"disallowed_policies": "deployer", "token_num_uses": 5}))
        .await
        .expect(204);
    km.post("auth/token/create/no-deploy", json!({"policies": ["deployer"]}))
        .await
        .expect(400)
        .assert_errors(&["token policy \"deployer\" is disallowed by this role"]);
    // Without allowed policies a role widens nothing: a subset of the creator's, as always.
    user.post("auth/token/create/no-deploy", json!({"policies": ["token-maker"]}))
        .await
        .expect(400)
        .assert_errors(&["child policies must be subset of parent"]);
    let limited = km
        .post("auth/token/create/no-deploy", json!({"policies": ["token-maker"], "num_uses": 9}))
        .await
        .expect(200);
    assert_eq!(limited.json()["auth"]["num_uses"], 5, "the role's smaller use limit wins");

    // A non-orphan role's tokens die with their parent; an orphan role's outlive it.
    km.post(
        "auth/token/roles/loose",
        json!({"allowed_policies": "deployer", "orphan": true, "renewable": false}),
    )
    .await
    .expect(204);
    let loose = user.post("auth/token/create/loose", json!({"no_parent": false})).await.expect(200);
    assert_eq!(loose.json()["auth"]["orphan"], true);
    assert_eq!(loose.json()["auth"]["renewable"], false);
    let loose = loose.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    km.post("auth/token/revoke-accessor", json!({"accessor": user_accessor})).await.expect(204);
    km.with_token(&child).get("auth/token/lookup-self").await.expect(403);
    km.with_token(&loose).get("auth/token/lookup-self").await.expect(200);

    // entity_alias: only with a role that allows it; keymint has no entities to tie it to.
    km.post("auth/token/create", json!({"entity_alias": "bot"}))
        .await
        .expect(400)
        .assert_errors(&["'entity_alias' is only allowed in combination with token role"]);
    km.post("auth/token/roles/bots", json!({"allowed_entity_aliases": "bot-*"})).await.expect(204);
    km.post("auth/token/create/bots", json!({"entity_alias": "human"}))
        .await
        .expect(400)
        .assert_errors(&["invalid 'entity_alias' value"]);
    let bot = km.post("auth/token/create/bots", json!({"entity_alias": "Bot-7"})).await.expect(200);
    assert!(bot.warnings()[0].starts_with("keymint has no identity entities"), "{bot}");
}

async fn role_tokens_renew_by_their_role(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    km.post("auth/token/roles/periodic", json!({"allowed_policies": "default", "token_period": "1h"}))
        .await
        .expect(204);
    let created = km.post("auth/token/create/periodic", json!({"period": "2h"})).await.expect(200);
    assert_eq!(created.json()["auth"]["lease_duration"], 3600);
    assert_eq!(
        created.warnings(),
        ["Period specified both during creation call and in role; using the lesser value of 3600 seconds"]
    );
    let tok = created.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    let me = km.with_token(&tok);
    assert_eq!(me.get("auth/token/lookup-self").await.expect(200).data()["period"], 3600);

    // Renewals follow the role as it is now.
    km.post("auth/token/roles/periodic", json!({"token_period": "30m"})).await.expect(204);
    let renewed = me.post("auth/token/renew-self", json!({"increment": "5h"})).await.expect(200);
    assert_eq!(renewed.json()["auth"]["lease_duration"], 1800);

    // Once the role is gone, its tokens can no longer be renewed (but still work).
    km.delete("auth/token/roles/periodic").await.expect(204);
    me.post("auth/token/renew-self", json!({})).await.expect(500).assert_errors(&[
        "1 error occurred:\n\t* original token role \"periodic\" could not be found, not renewing\n\n",
    ]);
    me.get("auth/token/lookup-self").await.expect(200);

    // A token's explicit max TTL is a hard cap: a role's later, longer one does not lift it, a
    // shorter one lowers it.
    km.post(
        "auth/token/roles/capped",
        json!({"allowed_policies": "default", "token_explicit_max_ttl": "1h"}),
    )
    .await
    .expect(204);
    let capped = km.post("auth/token/create/capped", json!({"ttl": "30m"})).await.expect(200);
    assert_eq!(capped.json()["auth"]["lease_duration"], 1800);
    let capped = km.with_token(capped.json()["auth"]["client_token"].as_str().unwrap());
    km.post("auth/token/roles/capped", json!({"token_explicit_max_ttl": "10h"})).await.expect(204);
    let renewed = capped.post("auth/token/renew-self", json!({"increment": "5h"})).await.expect(200);
    let ttl = renewed.json()["auth"]["lease_duration"].as_i64().unwrap();
    assert!((3590..=3600).contains(&ttl), "still capped at 1h from creation: {renewed}");
    assert!(renewed.warnings()[0].contains("exceeded the effective max_ttl"), "{renewed}");
    km.post("auth/token/roles/capped", json!({"token_explicit_max_ttl": "10m"})).await.expect(204);
    let renewed = capped.post("auth/token/renew-self", json!({"increment": "5h"})).await.expect(200);
    let ttl = renewed.json()["auth"]["lease_duration"].as_i64().unwrap();
    assert!((590..=600).contains(&ttl), "lowered to 10m from creation: {renewed}");

    // keymint's token_ttl and token_max_ttl: the default TTL and the cap of a role's tokens.
    km.post("auth/token/roles/short", json!({"token_ttl": "10m", "token_max_ttl": "20m"})).await.expect(204);
    // (The role sets no policies, so its tokens hold a subset of the creator's: not root here.)
    let short = km.post("auth/token/create/short", json!({"policies": "default"})).await.expect(200);
    assert_eq!(short.json()["auth"]["lease_duration"], 600);
    let long =
        km.post("auth/token/create/short", json!({"policies": "default", "ttl": "1h"})).await.expect(200);
    assert_eq!(long.json()["auth"]["lease_duration"], 1200);
    let short = short.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    let renewed = km.with_token(&short).post("auth/token/renew-self", json!({"increment": "1h"})).await;
    let ttl = renewed.expect(200).json()["auth"]["lease_duration"].as_i64().unwrap();
    assert!((1190..=1200).contains(&ttl), "capped at token_max_ttl from creation: {ttl}");
}

async fn role_writes_need_create_or_update_and_bind_cidrs(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let km = &env.km;
    let policy = |caps: &str| format!("path \"auth/token/roles/*\" {{\n  capabilities = [{caps}]\n}}\n");
    km.put("sys/policies/acl/role-creator", json!({"policy": policy(r#""create""#)})).await.expect(204);
    km.put("sys/policies/acl/role-updater", json!({"policy": policy(r#""update", "read""#)}))
        .await
        .expect(204);
    let (creator, _, _) = token(&km.client(), json!({"policies": ["role-creator"]})).await;
    let (updater, _, _) = token(&km.client(), json!({"policies": ["role-updater"]})).await;
    let (creator, updater) = (km.with_token(&creator), km.with_token(&updater));

    // A role that does not exist yet needs `create`, one that does needs `update`.
    updater.post("auth/token/roles/fresh", json!({"orphan": true})).await.expect(403);
    creator.post("auth/token/roles/fresh", json!({"orphan": true})).await.expect(204);
    creator.post("auth/token/roles/fresh", json!({"orphan": false})).await.expect(403);
    updater.post("auth/token/roles/fresh", json!({"orphan": false})).await.expect(204);
    assert_eq!(updater.get("auth/token/roles/fresh").await.expect(200).data()["orphan"], false);

    // Bound CIDRs: the token works only from inside them (the tests reach keymint over
    // 127.0.0.1), and its children inherit them.
    km.post("auth/token/roles/elsewhere", json!({"token_bound_cidrs": ["10.0.0.0/8", "192.168.0.1"]}))
        .await
        .expect(204);
    km.post("auth/token/roles/here", json!({"token_bound_cidrs": "127.0.0.1/32"})).await.expect(204);
    let read = km.get("auth/token/roles/elsewhere").await.expect(200);
    assert_eq!(read.data()["token_bound_cidrs"], json!(["10.0.0.0/8", "192.168.0.1"]));

    let elsewhere =
        km.post("auth/token/create/elsewhere", json!({"policies": ["default"]})).await.expect(200);
    let elsewhere = elsewhere.json()["auth"]["client_token"].as_str().unwrap().to_owned();
    km.with_token(&elsewhere)
        .get("auth/token/lookup-self")
        .await
        .expect(403)
        .assert_errors(&["1 error occurred:\n\t* permission denied\n\n"]);
    let looked = km.post("auth/token/lookup", json!({"token": elsewhere})).await.expect(200);
    assert_eq!(looked.data()["bound_cidrs"], json!(["10.0.0.0/8", "192.168.0.1"]));

    let maker = "path \"auth/token/create\" {\n  capabilities = [\"update\"]\n}\n";
    km.put("sys/policies/acl/child-maker", json!({"policy": maker})).await.expect(204);
    let here = km.post("auth/token/create/here", json!({"policies": ["child-maker"]})).await.expect(200);
    let here = km.with_token(here.json()["auth"]["client_token"].as_str().unwrap());
    let me = here.get("auth/token/lookup-self").await.expect(200);
    assert_eq!(me.data()["bound_cidrs"], json!(["127.0.0.1"]));
    let (child, _, _) = token(&here, json!({"policies": ["child-maker"]})).await;
    let child = km.with_token(&child).get("auth/token/lookup-self").await.expect(200);
    assert_eq!(child.data()["bound_cidrs"], json!(["127.0.0.1"]), "a child inherits its parent's CIDRs");
}

both_backends!(
    token_roles_are_written_read_listed_and_deleted,
    tokens_created_against_roles_follow_them,
    role_tokens_renew_by_their_role,
    role_writes_need_create_or_update_and_bind_cidrs
);
