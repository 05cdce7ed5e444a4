//! `aws/creds/:name` and `aws/sts/:name` for every credential type: the response, the lease,
//! what exists in (moto's) AWS afterwards, and that the minted keys really work.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use keymint_tests::*;

both_backends!(iam_user_creds_build_the_user_the_role_describes, assumed_role_creds_work_as_the_role);

/// A lease of `ttl` seconds, give or take the seconds the request took.
fn about(ttl: u64) -> RangeInclusive<u64> {
    ttl - 15..=ttl
}

#[track_caller]
fn assert_secs_in(value: &Value, range: RangeInclusive<u64>, what: &str) {
    let secs = value.as_u64().unwrap_or_else(|| panic!("{what} is not whole seconds: {value}"));
    assert!(range.contains(&secs), "{what} = {secs}, expected within {range:?}");
}

/// The keys of `data`, sorted.
fn keys(data: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> =
        data.as_object().expect("data is an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

fn str_of<'a>(data: &'a Value, key: &str) -> &'a str {
    data[key].as_str().unwrap_or_else(|| panic!("data.{key} is not a string: {data}"))
}

fn s3_read_policy() -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
}

async fn iam_user_creds_build_the_user_the_role_describes(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    let (km, moto) = (&env.km, &env.moto);
    let managed = moto.create_managed_policy("km-managed", &s3_read_policy()).await;
    let boundary = moto.create_managed_policy("km-boundary", &s3_read_policy()).await;
    moto.create_group("km-devs").await;
    let inline = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]});
    let role = json!({
        "credential_type": "iam_user",
        "policy_document": inline.to_string(),
        "policy_arns": [managed],
        "iam_groups": ["km-devs"],
        "iam_tags": {"team": "core"},
        "user_path": "/keymint-test/",
        "permissions_boundary_arn": boundary,
    });
    km.post("aws/roles/deploy", role).await.expect(204);

    let creds = km.get("aws/creds/deploy").await.expect(200);
    let lease_id = creds.json()["lease_id"].as_str().unwrap().to_owned();
    assert_lease_id(&creds.json()["lease_id"], "aws/creds/deploy/");
    assert_eq!(creds.json()["renewable"], true, "{creds}");
    assert_eq!(creds.json()["lease_duration"], 2_764_800, "{creds}");
    let data = creds.data();
    assert_eq!(keys(data), ["access_key", "secret_key", "session_token"], "{creds}");
    assert_eq!(data["session_token"], Value::Null, "{creds}");
    let (access_key, secret_key) = (str_of(data, "access_key"), str_of(data, "secret_key"));

    // The user exists, built as the role says.
    let users = moto.user_names("/keymint-test/").await;
    assert_eq!(users.len(), 1, "{users:?}");
    let user = moto.user(&users[0]).await;
    assert!(user.name.len() <= 64, "{user:?}");
    assert_eq!(user.path, "/keymint-test/");
    assert_eq!(user.groups, ["km-devs"]);
    assert_eq!(user.attached_policies, [managed.as_str()]);
    assert_eq!(user.inline_policies, BTreeMap::from([("deploy".to_owned(), inline)]));
    let expected_tags = BTreeMap::from([
        ("team".to_owned(), "core".to_owned()),
        ("keymint:owner".to_owned(), "keymint".to_owned()),
        ("keymint:lease".to_owned(), lease_id.clone()),
        ("keymint:installation".to_owned(), installation_id(km).await),
    ]);
    assert_eq!(user.tags, expected_tags);
    assert_eq!(user.access_keys, [access_key]);
    // moto keeps no permissions boundary for users; the CreateUser call shows it was asked for.
    let created = moto.calls(Some("CreateUser"));
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0].access_key.as_deref(), Some(ROOT_ACCESS_KEY), "signed with the root key");
    assert_eq!(created[0].param("UserName"), Some(user.name.as_str()));
    assert_eq!(created[0].param("Path"), Some("/keymint-test/"));
    assert_eq!(created[0].param("PermissionsBoundary"), Some(boundary.as_str()));

    // The keys work, as that user.
    assert_eq!(user.arn, format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:user/keymint-test/{}", user.name));
    assert_eq!(moto.caller_arn(access_key, secret_key, None).await, user.arn);

    // Every request mints a new user; sts/ is the same handler, with its own lease prefix.
    let again = km.post("aws/sts/deploy", json!({})).await.expect(200);
    assert_lease_id(&again.json()["lease_id"], "aws/sts/deploy/");
    assert_ne!(again.data()["access_key"], data["access_key"]);
    assert_eq!(moto.user_names("/keymint-test/").await.len(), 2);
}

#[tokio::test]
async fn iam_user_lease_follows_config_lease() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let km = &env.km;
    km.post("aws/config/lease", json!({"lease": "30m", "lease_max": "1h"})).await.expect(204);
    km.post("aws/roles/short", json!({"credential_type": "iam_user"})).await.expect(204);

    let creds = km.get("aws/creds/short").await.expect(200);
    assert_eq!(creds.json()["lease_duration"], 1800, "{creds}");
    assert_eq!(creds.json()["renewable"], true, "{creds}");
}

async fn assumed_role_creds_work_as_the_role(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    let (km, moto) = (&env.km, &env.moto);
    let role_arn = moto.create_role("km-deploy").await;
    km.post("aws/roles/ops", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);

    let creds = km.post("aws/sts/ops", json!({"ttl": "30m"})).await.expect(200);
    assert_lease_id(&creds.json()["lease_id"], "aws/sts/ops/");
    // A lookup says what revoking can do: nothing in AWS for STS credentials.
    let looked = km.put("sys/leases/lookup", json!({"lease_id": creds.json()["lease_id"]})).await.expect(200);
    assert_eq!(looked.data()["credential_type"], "assumed_role", "{looked}");
    assert_eq!(creds.json()["renewable"], false, "{creds}");
    assert_secs_in(&creds.json()["lease_duration"], about(1800), "lease_duration");
    let data = creds.data();
    assert_eq!(
        keys(data),
        ["access_key", "arn", "secret_key", "security_token", "session_token", "ttl"],
        "{creds}"
    );
    assert_secs_in(&data["ttl"], about(1800), "data.ttl");
    assert_eq!(data["security_token"], data["session_token"], "{creds}");
    let arn = str_of(data, "arn");
    let prefix = format!("arn:aws:sts::{MOTO_ACCOUNT_ID}:assumed-role/km-deploy/");
    let session = arn.strip_prefix(&prefix).unwrap_or_else(|| panic!("arn {arn} lacks {prefix}"));
    assert!((2..=64).contains(&session.len()), "session name {session:?}");

    let assumed = moto.calls(Some("AssumeRole"));
    let call = assumed.last().expect("keymint called AssumeRole");
    assert_eq!(call.access_key.as_deref(), Some(ROOT_ACCESS_KEY), "{call:?}");
    assert_eq!(call.param("RoleArn"), Some(role_arn.as_str()), "{call:?}");
    assert_eq!(call.param("RoleSessionName"), Some(session), "{call:?}");
    assert_eq!(call.param("DurationSeconds"), Some("1800"), "{call:?}");

    let session_token = str_of(data, "session_token");
    let whoami =
        moto.caller_arn(str_of(data, "access_key"), str_of(data, "secret_key"), Some(session_token)).await;
    assert_eq!(whoami, arn);

    // A caller-chosen session name is normalized to IAM's alphabet; the default TTL is an hour.
    let named = km.get("aws/creds/ops?role_session_name=deploy%20bot%21").await.expect(200);
    assert_lease_id(&named.json()["lease_id"], "aws/creds/ops/");
    assert_eq!(named.data()["arn"], format!("{prefix}deploy_bot_"), "{named}");
    assert_secs_in(&named.json()["lease_duration"], about(3600), "default lease_duration");
}

#[tokio::test]
async fn assumed_role_uses_only_allowed_role_arns() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let (km, moto) = (&env.km, &env.moto);
    let first = moto.create_role("km-first").await;
    let second = moto.create_role("km-second").await;
    let role = json!({"credential_type": "assumed_role", "role_arns": [first, second]});
    km.post("aws/roles/multi", role).await.expect(204);

    let resp = km.get("aws/creds/multi").await.expect(400);
    resp.assert_errors(&["did not supply a role_arn parameter and unable to determine one"]);
    let other = format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:role/not-allowed");
    let resp = km.post("aws/sts/multi", json!({"role_arn": other})).await.expect(400);
    resp.assert_errors(&[&format!(r#"role_arn "{other}" not in allowed role arns for Vault role "multi""#)]);
    assert!(moto.calls(Some("AssumeRole")).is_empty(), "a refused request reached AWS");

    let ok = km.post("aws/sts/multi", json!({"role_arn": second})).await.expect(200);
    let arn = str_of(ok.data(), "arn");
    assert!(arn.starts_with(&format!("arn:aws:sts::{MOTO_ACCOUNT_ID}:assumed-role/km-second/")), "{ok}");
}

#[tokio::test]
async fn federation_token_creds_need_a_policy() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let (km, moto) = (&env.km, &env.moto);
    km.post("aws/roles/fed", json!({"credential_type": "federation_token"})).await.expect(204);

    let resp = km.get("aws/creds/fed").await.expect(400);
    resp.assert_errors(&[
        "must specify at least one of policy_arns or policy_document with federation_token credential_type",
    ]);
    assert!(moto.calls(Some("GetFederationToken")).is_empty());

    let policy = s3_read_policy();
    km.post("aws/roles/fed", json!({"policy_document": policy.to_string()})).await.expect(204);
    let creds = km.get("aws/creds/fed").await.expect(200);
    assert_lease_id(&creds.json()["lease_id"], "aws/creds/fed/");
    assert_eq!(creds.json()["renewable"], false, "{creds}");
    assert_secs_in(&creds.json()["lease_duration"], about(3600), "lease_duration");
    let data = creds.data();
    assert_eq!(keys(data), ["access_key", "secret_key", "security_token", "session_token", "ttl"], "{creds}");
    assert_eq!(data["security_token"], data["session_token"], "{creds}");
    assert_secs_in(&data["ttl"], about(3600), "data.ttl");

    let calls = moto.calls(Some("GetFederationToken"));
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.access_key.as_deref(), Some(ROOT_ACCESS_KEY), "{call:?}");
    assert_eq!(call.param("DurationSeconds"), Some("3600"), "{call:?}");
    let sent: Value = serde_json::from_str(call.param("Policy").expect("Policy sent")).unwrap();
    assert_eq!(sent, policy, "{call:?}");
    let name = call.param("Name").expect("Name sent");
    assert!((2..=32).contains(&name.len()), "federated user name {name:?}");
}

#[tokio::test]
async fn session_token_creds() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let (km, moto) = (&env.km, &env.moto);
    km.post("aws/roles/sess", json!({"credential_type": "session_token"})).await.expect(204);

    let creds = km.get("aws/creds/sess?ttl=2h").await.expect(200);
    assert_lease_id(&creds.json()["lease_id"], "aws/creds/sess/");
    assert_eq!(creds.json()["renewable"], false, "{creds}");
    assert_secs_in(&creds.json()["lease_duration"], about(7200), "lease_duration");
    let data = creds.data();
    assert_eq!(keys(data), ["access_key", "secret_key", "session_token", "ttl"], "{creds}");
    assert_secs_in(&data["ttl"], about(7200), "data.ttl");
    assert!(!str_of(data, "session_token").is_empty(), "{creds}");

    let calls = moto.calls(Some("GetSessionToken"));
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].access_key.as_deref(), Some(ROOT_ACCESS_KEY), "{calls:?}");
    assert_eq!(calls[0].param("DurationSeconds"), Some("7200"), "{calls:?}");
}

#[tokio::test]
async fn creds_request_errors() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let arn = format!("arn:aws:iam::{MOTO_ACCOUNT_ID}:role/km-deploy");
    km.post("aws/roles/ops", json!({"credential_type": "assumed_role", "role_arns": [arn]}))
        .await
        .expect(204);

    km.get("aws/creds/nope").await.expect(400).assert_errors(&[r#"Role "nope" not found"#]);
    km.post("aws/sts/nope", json!({})).await.expect(400).assert_errors(&[r#"Role "nope" not found"#]);

    let bad_ttl = km.get("aws/creds/ops?ttl=abc").await;
    bad_ttl
        .assert_error_prefix(400, r#"Field validation failed: error converting input abc for field "ttl""#);
    let bad_ttl = km.post("aws/sts/ops", json!({"ttl": "abc"})).await;
    bad_ttl
        .assert_error_prefix(400, r#"Field validation failed: error converting input abc for field "ttl""#);
}

#[tokio::test]
async fn each_mount_mints_through_its_own_endpoint() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let moto_b = Moto::start().await;
    let (km, moto_a) = (&env.km, &env.moto);
    env.configure_root().await;
    km.post("sys/mounts/aws2", json!({"type": "aws"})).await.expect(204);
    env.configure_mount_root("aws2", &moto_b).await;
    let role = json!({"credential_type": "iam_user", "user_path": "/km-mounts/"});
    km.post("aws/roles/deploy", role.clone()).await.expect(204);
    km.post("aws2/roles/deploy", role).await.expect(204);

    let a = km.get("aws/creds/deploy").await.expect(200);
    assert_lease_id(&a.json()["lease_id"], "aws/creds/deploy/");
    assert_eq!(moto_a.user_names("/km-mounts/").await.len(), 1);
    assert!(moto_b.user_names("/").await.is_empty(), "aws/ created a user in aws2/'s moto");

    let b = km.get("aws2/creds/deploy").await.expect(200);
    assert_lease_id(&b.json()["lease_id"], "aws2/creds/deploy/");
    assert_eq!(moto_a.user_names("/").await.len(), 1, "aws2/ created a user in aws/'s moto");
    let users_b = moto_b.user_names("/km-mounts/").await;
    assert_eq!(users_b.len(), 1);

    let user_b = moto_b.user(&users_b[0]).await;
    assert_eq!(user_b.tags.get("keymint:lease"), b.json()["lease_id"].as_str().map(str::to_owned).as_ref());
    let data = b.data();
    let whoami = moto_b.caller_arn(str_of(data, "access_key"), str_of(data, "secret_key"), None).await;
    assert_eq!(whoami, user_b.arn);
}

/// Vault folds a role's IAM groups into STS requests: inline group policies join the role's
/// document (groups first), attached group policies join its policy ARNs.
#[tokio::test]
async fn group_policies_are_merged_into_assume_role() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let (km, moto) = (&env.km, &env.moto);
    let role_arn = moto.create_role("km-merged").await;
    moto.create_group("km-readers").await;
    let group_doc = json!({"Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}});
    moto.iam()
        .put_group_policy()
        .group_name("km-readers")
        .policy_name("list")
        .policy_document(group_doc.to_string())
        .send()
        .await
        .unwrap();
    let managed = moto.create_managed_policy("km-group-managed", &s3_read_policy()).await;
    moto.iam().attach_group_policy().group_name("km-readers").policy_arn(&managed).send().await.unwrap();
    let role_doc = json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
    km.post(
        "aws/roles/merged",
        json!({"credential_type": "assumed_role", "role_arns": [role_arn], "iam_groups": ["km-readers"],
               "policy_document": role_doc.to_string()}),
    )
    .await
    .expect(204);

    km.get("aws/creds/merged").await.expect(200);
    let calls = moto.calls(Some("AssumeRole"));
    let call = calls.last().expect("keymint called AssumeRole");
    let policy: Value = serde_json::from_str(call.param("Policy").expect("a Policy was sent")).unwrap();
    let actions: Vec<&str> =
        policy["Statement"].as_array().unwrap().iter().map(|s| s["Action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["s3:ListBucket", "s3:GetObject"], "{policy}");
    assert_eq!(call.param("PolicyArns.member.1.arn"), Some(managed.as_str()), "{call:?}");
}
