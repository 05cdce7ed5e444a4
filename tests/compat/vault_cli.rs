//! The `vault` CLI against keymint, without the CLI: each test replays the requests a `vault`
//! command sends (reference §10.2) exactly as Vault's Go `api` client puts them on the wire
//! (see `go_client`), and checks the answers for what the CLI relies on when it parses and
//! prints them.

mod auth;
mod go_client;

pub(crate) use go_client::{
    Cli, assert_error_body, assert_json_content_type, assert_no_value, assert_refused, assert_secret,
    assert_written,
};
use go_client::{quoted, secs_of, str_of};
use keymint_tests::*;

/// An IAM user in moto with one access key, as the root credentials `rotate-root` needs.
async fn user_with_key(moto: &Moto, name: &str) -> (String, String) {
    moto.iam().create_user().user_name(name).send().await.expect("CreateUser");
    let out = moto.iam().create_access_key().user_name(name).send().await.expect("CreateAccessKey");
    let key = out.access_key().expect("a key");
    (key.access_key_id().to_owned(), key.secret_access_key().to_owned())
}

/// `vault write aws/roles/r credential_type=iam_user policy_document=@p.json`: the file's text,
/// newline and all, as a string.
const POLICY_FILE: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"*\"}\n  ]\n}\n";

/// [`POLICY_FILE`] as Vault stores it: compacted, key order kept.
const POLICY_COMPACT: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

/// `vault write aws/roles/<name> credential_type=iam_user policy_document=@p.json`.
async fn write_iam_user_role(cli: &Cli, name: &str) {
    let body = format!(r#"{{"credential_type":"iam_user","policy_document":{}}}"#, quoted(POLICY_FILE));
    assert_written(cli.write(&format!("aws/roles/{name}"), &body).await);
}

/// `vault secrets enable -path=aws2 aws`: `api.MountInput` marshalled (its `config` has Go's
/// zero durations as `"0s"` and nil maps as `null`), POSTed to `sys/mounts/aws2`.
#[tokio::test]
async fn secrets_enable_sends_the_whole_mount_input() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let cli = Cli::new(&km);
    let input = r#"{"type":"aws","description":"","config":{"options":null,"default_lease_ttl":"0s","max_lease_ttl":"0s","force_no_cache":false},"local":false,"seal_wrap":false,"external_entropy_access":false,"options":null}"#;
    assert_written(cli.send(Method::POST, "sys/mounts/aws2", &[], Some(input)).await);

    // "0s" is "the system default" (§9.2), not zero.
    let tune = assert_secret(cli.read("sys/mounts/aws2/tune", &[]).await, 200);
    assert_eq!(tune.data()["default_lease_ttl"], 2_764_800, "{tune}");
    assert_eq!(tune.data()["max_lease_ttl"], 2_764_800, "{tune}");
    // The new mount answers: an empty role list, not "no handler".
    assert_no_value(cli.list("aws2/roles").await);

    // `vault secrets enable aws` where the dev server already has aws/.
    let again = cli.send(Method::POST, "sys/mounts/aws", &[], Some(input)).await;
    assert_refused(again, 400, "path is already in use at aws/");
}

/// `vault write aws/config/root access_key=… iam_endpoint=… max_retries=3 region=… secret_key=…
/// sts_endpoint=…`: every value a string, `max_retries` included; then `vault read`.
#[tokio::test]
async fn write_config_root_with_string_values_then_read_it() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let cli = Cli::new(&env.km);
    let url = env.moto.url();
    let body = format!(
        r#"{{"access_key":"{ROOT_ACCESS_KEY}","iam_endpoint":"{url}","max_retries":"3","region":"us-east-1","secret_key":"{ROOT_SECRET_KEY}","sts_endpoint":"{url}"}}"#
    );
    let written = cli.write("aws/config/root", &body).await;
    // Vault answers 204. keymint checks the keys with GetCallerIdentity first and answers 200
    // with what AWS said (README, `verify_connection`); the CLI prints either.
    match written.status.as_u16() {
        204 => assert_written(written),
        _ => {
            assert_secret(written, 200);
        }
    }

    let read = assert_secret(cli.read("aws/config/root", &[]).await, 200);
    let data = read.data();
    assert_eq!(data["access_key"], ROOT_ACCESS_KEY, "{read}");
    assert_eq!(data["region"], "us-east-1", "{read}");
    assert_eq!(data["iam_endpoint"], url.as_str(), "{read}");
    assert_eq!(data["sts_endpoint"], url.as_str(), "{read}");
    assert_eq!(data["max_retries"], 3, "the string \"3\" is stored as the int 3: {read}");
    assert!(data.get("secret_key").is_none(), "secret_key is never returned: {read}");
    // Every key the newest Vault CE returns (§2.1).
    for key in [
        "access_key",
        "region",
        "iam_endpoint",
        "sts_endpoint",
        "sts_region",
        "sts_fallback_endpoints",
        "sts_fallback_regions",
        "max_retries",
        "username_template",
        "role_arn",
        "identity_token_audience",
        "identity_token_ttl",
        "rotation_schedule",
        "rotation_window",
        "rotation_period",
        "disable_automated_rotation",
        "rotation_policy",
    ] {
        assert!(data.get(key).is_some(), "config/root read lacks {key:?}: {read}");
    }
}

/// `vault write -f aws/config/rotate-root`: no data, so the body is `null`.
#[tokio::test]
async fn write_force_rotate_root() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let (old_key, old_secret) = user_with_key(&env.moto, "keymint-root").await;
    let mut config = root_config(&env.moto);
    config["access_key"] = json!(old_key);
    config["secret_key"] = json!(old_secret);
    env.km.post("aws/config/root", config).await.expect(200);
    let cli = Cli::new(&env.km);

    let rotated = assert_secret(cli.write("aws/config/rotate-root", "null").await, 200);
    let new_key = str_of(rotated.data(), "access_key").to_owned();
    assert_ne!(new_key, old_key, "{rotated}");
    assert!(rotated.data().get("secret_key").is_none(), "the secret is never returned: {rotated}");
    let read = assert_secret(cli.read("aws/config/root", &[]).await, 200);
    assert_eq!(read.data()["access_key"], new_key.as_str(), "{read}");

    // Clients that send no body at all (hvac, curl -X PUT) rotate the same way.
    let again = assert_secret(cli.send(Method::PUT, "aws/config/rotate-root", &[], None).await, 200);
    assert_ne!(str_of(again.data(), "access_key"), new_key, "{again}");
}

/// `vault write aws/config/lease lease=30m lease_max=12h`, `vault read aws/config/lease`.
#[tokio::test]
async fn write_and_read_config_lease() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let cli = Cli::new(&km);
    assert_no_value(cli.read("aws/config/lease", &[]).await);

    assert_written(cli.write("aws/config/lease", r#"{"lease":"30m","lease_max":"12h"}"#).await);
    let read = assert_secret(cli.read("aws/config/lease", &[]).await, 200);
    // Go's time.Duration.String(), hours never rolled into days (§2.3).
    assert_eq!(read.data(), &json!({"lease": "30m0s", "lease_max": "12h0m0s"}), "{read}");
    assert_eq!(read.json()["lease_id"], "", "{read}");
    assert_eq!(read.json()["lease_duration"], 0, "{read}");

    let partial = cli.write("aws/config/lease", r#"{"lease_max":"12h"}"#).await;
    assert_refused(partial, 400, "'lease' is a required parameter");
}

/// `vault write aws/roles/r credential_type=iam_user policy_document=@p.json iam_tags=team=core
/// iam_tags=env=dev`, then `vault read`, `vault list aws/roles`, `vault delete`.
#[tokio::test]
async fn write_read_list_and_delete_a_role() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let cli = Cli::new(&km);
    assert_no_value(cli.list("aws/roles").await);

    // A repeated key becomes a list; map keys are sorted.
    let body = format!(
        r#"{{"credential_type":"iam_user","iam_tags":["team=core","env=dev"],"policy_document":{}}}"#,
        quoted(POLICY_FILE)
    );
    assert_written(cli.write("aws/roles/r", &body).await);

    let read = assert_secret(cli.read("aws/roles/r", &[]).await, 200);
    let data = read.data();
    assert_eq!(data["credential_type"], "iam_user", "a string, not a list (§2.4): {read}");
    assert_eq!(data["policy_document"], POLICY_COMPACT, "{read}");
    assert_eq!(data["iam_tags"], json!({"team": "core", "env": "dev"}), "{read}");
    for never_set in ["policy_arns", "role_arns", "iam_groups", "session_tags"] {
        assert_eq!(data[never_set], Value::Null, "{never_set} was never set (§1.3): {read}");
    }
    for empty in ["user_path", "permissions_boundary_arn", "mfa_serial_number", "external_id"] {
        assert_eq!(data[empty], "", "{empty}: {read}");
    }
    assert_eq!(data["default_sts_ttl"], 0, "{read}");
    assert_eq!(data["max_sts_ttl"], 0, "{read}");

    let list = assert_secret(cli.list("aws/roles").await, 200);
    assert_eq!(list.data(), &json!({"keys": ["r"]}), "{list}");

    assert_written(cli.delete("aws/roles/r").await);
    assert_no_value(cli.read("aws/roles/r", &[]).await);
    assert_no_value(cli.list("aws/roles").await);
    // Deleting what is not there is still a success (§2.4).
    assert_written(cli.delete("aws/roles/r").await);

    // `vault write aws/roles/bad credential_type=iam_user role_arns=arn:…`: Vault's message,
    // the multierror text Go-quoted (§8).
    let bad = cli
        .write(
            "aws/roles/bad",
            r#"{"credential_type":"iam_user","role_arns":"arn:aws:iam::123456789012:role/x"}"#,
        )
        .await;
    assert_refused(
        bad,
        400,
        r#"error(s) validating supplied role data: "1 error occurred:\n\t* cannot supply role_arns when credential_type isn't assumed_role\n\n""#,
    );
}

/// `vault read aws/creds/r` for an `iam_user` role: the lease and keys the CLI prints, and the
/// user behind them in moto.
#[tokio::test]
async fn read_iam_user_creds() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let cli = Cli::new(&env.km);
    write_iam_user_role(&cli, "r").await;

    let creds = assert_secret(cli.read("aws/creds/r", &[]).await, 200);
    assert_lease_id(&creds.json()["lease_id"], "aws/creds/r/");
    assert_eq!(creds.json()["renewable"], true, "{creds}");
    assert_eq!(creds.json()["lease_duration"], 2_764_800, "{creds}");
    let data = creds.data().as_object().expect("data is an object");
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_key", "secret_key", "session_token"], "{creds}");
    assert_eq!(data["session_token"], Value::Null, "{creds}");
    assert!(data["secret_key"].as_str().is_some_and(|s| !s.is_empty()), "{creds}");

    let users = env.moto.user_names("/").await;
    assert_eq!(users.len(), 1, "{users:?}");
    let user = env.moto.user(&users[0]).await;
    assert_eq!(user.access_keys, [str_of(creds.data(), "access_key")], "{user:?}");

    assert_refused(cli.read("aws/creds/nope", &[]).await, 400, r#"Role "nope" not found"#);
}

/// `vault read aws/creds/ar role_session_name=cli-session ttl=15m` (parameters in the query)
/// and `vault write aws/sts/ar ttl=60m` (in the body) for an `assumed_role` role.
#[tokio::test]
async fn read_creds_with_parameters_and_write_sts() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let cli = Cli::new(&env.km);
    let arn = env.moto.create_role("deploy").await;
    let role = format!(r#"{{"credential_type":"assumed_role","role_arns":"{arn}"}}"#);
    assert_written(cli.write("aws/roles/ar", &role).await);

    let creds = assert_secret(
        cli.read("aws/creds/ar", &[("ttl", "15m"), ("role_session_name", "cli-session")]).await,
        200,
    );
    assert_lease_id(&creds.json()["lease_id"], "aws/creds/ar/");
    assert_eq!(creds.json()["renewable"], false, "STS leases are not renewable: {creds}");
    let lease = secs_of(creds.json(), "lease_duration");
    assert!((1..=900).contains(&lease), "ttl=15m: {creds}");
    let data = creds.data();
    assert!((1..=900).contains(&secs_of(data, "ttl")), "{creds}");
    assert!(str_of(data, "arn").ends_with("/cli-session"), "{creds}");
    assert!(!str_of(data, "access_key").is_empty() && !str_of(data, "secret_key").is_empty(), "{creds}");
    assert_eq!(data["security_token"], data["session_token"], "{creds}");
    assert!(!str_of(data, "session_token").is_empty(), "{creds}");

    let sts = assert_secret(cli.write("aws/sts/ar", r#"{"ttl":"60m"}"#).await, 200);
    assert_lease_id(&sts.json()["lease_id"], "aws/sts/ar/");
    assert_eq!(sts.json()["renewable"], false, "{sts}");
    let lease = secs_of(sts.json(), "lease_duration");
    assert!((901..=3600).contains(&lease), "ttl=60m: {sts}");
}

/// `vault write aws/static-roles/x username=svc rotation_period=1h`, `vault read
/// aws/static-creds/x`: the current key, with no lease.
#[tokio::test]
async fn read_static_creds() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let cli = Cli::new(&env.km);
    env.moto.iam().create_user().user_name("svc").send().await.expect("CreateUser");
    assert_no_value(cli.read("aws/static-creds/x", &[]).await);

    let role = assert_secret(
        cli.write("aws/static-roles/x", r#"{"rotation_period":"1h","username":"svc"}"#).await,
        200,
    );
    assert_eq!(role.data()["username"], "svc", "{role}");
    assert_eq!(role.data()["rotation_period"], 3600, "{role}");

    let creds = assert_secret(cli.read("aws/static-creds/x", &[]).await, 200);
    assert_eq!(creds.json()["lease_id"], "", "static creds have no lease (§6): {creds}");
    assert_eq!(creds.json()["lease_duration"], 0, "{creds}");
    assert_eq!(creds.json()["renewable"], false, "{creds}");
    let data = creds.data();
    let key = str_of(data, "access_key");
    assert!(!str_of(data, "secret_key").is_empty(), "{creds}");
    assert!(str_of(data, "expiration").contains('T'), "an RFC 3339 time: {creds}");
    assert_eq!(env.moto.user("svc").await.access_keys, [key]);
}

/// `vault lease lookup`, `vault lease renew [-increment=1h]`, `vault list sys/leases/lookup/…`
/// and `vault lease revoke`, with the lease id where each puts it.
#[tokio::test]
async fn lease_lookup_renew_list_and_revoke() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let cli = Cli::new(&env.km);
    write_iam_user_role(&cli, "r").await;
    let creds = assert_secret(cli.read("aws/creds/r", &[]).await, 200);
    let id = str_of(creds.json(), "lease_id").to_owned();
    let suffix = id.strip_prefix("aws/creds/r/").expect("lease under aws/creds/r/");

    // `vault lease lookup ID`
    let lookup_body = format!(r#"{{"lease_id":"{id}"}}"#);
    let found = assert_secret(cli.write("sys/leases/lookup", &lookup_body).await, 200);
    let data = found.data();
    assert_eq!(data["id"], id.as_str(), "{found}");
    assert!(str_of(data, "issue_time").contains('T'), "{found}");
    assert!(str_of(data, "expire_time").contains('T'), "{found}");
    assert_eq!(data["renewable"], true, "{found}");
    assert!(data["ttl"].is_u64(), "{found}");

    // `vault lease renew -increment=1h ID`: the increment in whole seconds.
    let renew = format!(r#"{{"increment":3600,"lease_id":"{id}"}}"#);
    let renewed = assert_secret(cli.write("sys/leases/renew", &renew).await, 200);
    assert_eq!(renewed.json()["lease_id"], id.as_str(), "{renewed}");
    assert_eq!(renewed.json()["renewable"], true, "{renewed}");
    assert!((3500..=3600).contains(&secs_of(renewed.json(), "lease_duration")), "{renewed}");
    assert_eq!(renewed.json()["data"], Value::Null, "{renewed}");

    // `vault lease renew ID`: increment 0, the backend's default (the mount's 768h, capped at
    // issue time + max).
    let renew = format!(r#"{{"increment":0,"lease_id":"{id}"}}"#);
    let renewed = assert_secret(cli.write("sys/leases/renew", &renew).await, 200);
    let lease = secs_of(renewed.json(), "lease_duration");
    assert!((2_764_000..=2_764_800).contains(&lease), "{renewed}");

    // `vault list sys/leases/lookup/aws/creds/r`
    let listed = assert_secret(cli.list("sys/leases/lookup/aws/creds/r").await, 200);
    assert_eq!(listed.data(), &json!({"keys": [suffix]}), "{listed}");

    // `vault lease revoke ID`: the id in the URL, `sync` in the body.
    assert_written(cli.write(&format!("sys/leases/revoke/{id}"), r#"{"sync":true}"#).await);
    assert_eq!(env.moto.user_names("/").await, Vec::<String>::new(), "a sync revoke deletes the user");
    assert_refused(cli.write("sys/leases/lookup", &lookup_body).await, 400, "invalid lease");
    assert_no_value(cli.list("sys/leases/lookup/aws/creds/r").await);
}

/// `vault lease revoke -prefix aws/creds/r` and `vault lease revoke -force -prefix aws/creds/r`.
#[tokio::test]
async fn lease_revoke_prefix_and_force() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let cli = Cli::new(&env.km);
    write_iam_user_role(&cli, "r").await;
    for _ in 0..2 {
        assert_secret(cli.read("aws/creds/r", &[]).await, 200);
    }
    assert_eq!(env.moto.user_names("/").await.len(), 2);

    assert_written(cli.write("sys/leases/revoke-prefix/aws/creds/r", r#"{"sync":true}"#).await);
    assert_eq!(env.moto.user_names("/").await, Vec::<String>::new());
    assert_no_value(cli.list("sys/leases/lookup/aws/creds/r").await);

    let creds = assert_secret(cli.read("aws/creds/r", &[]).await, 200);
    let id = str_of(creds.json(), "lease_id").to_owned();
    // -force sends no body at all.
    assert_written(cli.send(Method::PUT, "sys/leases/revoke-force/aws/creds/r", &[], None).await);
    let lookup = cli.write("sys/leases/lookup", &format!(r#"{{"lease_id":"{id}"}}"#)).await;
    assert_refused(lookup, 400, "invalid lease");
    assert_eq!(env.moto.user_names("/").await, Vec::<String>::new());
}

/// `vault login TOKEN` / `vault token lookup` (lookup-self) and `vault token create -policy=p`.
#[tokio::test]
async fn login_token_lookup_and_token_create() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let cli = Cli::new(&km);

    let root = assert_secret(cli.read("auth/token/lookup-self", &[]).await, 200);
    let data = root.data();
    for key in [
        "accessor",
        "creation_time",
        "creation_ttl",
        "display_name",
        "entity_id",
        "expire_time",
        "explicit_max_ttl",
        "id",
        "issue_time",
        "meta",
        "num_uses",
        "orphan",
        "path",
        "policies",
        "renewable",
        "ttl",
        "type",
    ] {
        assert!(data.get(key).is_some(), "lookup-self lacks {key:?} (§9.4): {root}");
    }
    assert_eq!(data["id"], ROOT_TOKEN, "{root}");
    assert_eq!(data["display_name"], "root", "{root}");
    assert_eq!(data["policies"], json!(["root"]), "{root}");
    assert_eq!(data["path"], "auth/token/root", "{root}");
    assert_eq!(data["ttl"], 0, "{root}");
    assert_eq!(data["expire_time"], Value::Null, "{root}");
    assert!(data["creation_time"].is_u64(), "unix seconds: {root}");
    assert!(!str_of(data, "accessor").is_empty(), "{root}");

    // `vault token create -policy=p`: api.TokenCreateRequest marshalled, the CLI's unset
    // durations as "0s", renewable true, type "service".
    let request = r#"{"policies":["p"],"ttl":"0s","explicit_max_ttl":"0s","period":"0s","display_name":"","num_uses":0,"renewable":true,"type":"service","entity_alias":""}"#;
    let created = assert_secret(cli.send(Method::POST, "auth/token/create", &[], Some(request)).await, 200);
    assert_eq!(created.json()["data"], Value::Null, "{created}");
    let auth = &created.json()["auth"];
    let token = str_of(auth, "client_token").to_owned();
    assert!(token.starts_with("hvs."), "{created}");
    assert!(!str_of(auth, "accessor").is_empty(), "{created}");
    assert_eq!(auth["policies"], json!(["default", "p"]), "{created}");
    assert_eq!(auth["token_policies"], json!(["default", "p"]), "{created}");
    assert!(auth["metadata"].is_null() || auth["metadata"].is_object(), "{created}");
    assert_eq!(auth["lease_duration"], 2_764_800, "ttl and period \"0s\" mean none: {created}");
    assert_eq!(auth["renewable"], true, "{created}");
    assert_eq!(auth["orphan"], false, "{created}");
    assert_eq!(auth["entity_id"], "", "{created}");
    assert_eq!(auth["token_type"], "service", "{created}");
    assert_eq!(auth["num_uses"], 0, "{created}");

    // `vault login <new token>`
    let me = assert_secret(cli.with_token(&token).read("auth/token/lookup-self", &[]).await, 200);
    let data = me.data();
    assert_eq!(data["id"], token.as_str(), "{me}");
    assert_eq!(data["policies"], json!(["default", "p"]), "{me}");
    assert_eq!(data["path"], "auth/token/create", "{me}");
    assert_eq!(data["display_name"], "token", "{me}");
    assert_eq!(data["renewable"], true, "{me}");
    assert_eq!(data["orphan"], false, "{me}");
    assert_eq!(data["type"], "service", "{me}");
    assert_eq!(data["num_uses"], 0, "{me}");
    assert_eq!(data["explicit_max_ttl"], 0, "{me}");
    assert!((1..=2_764_800).contains(&secs_of(data, "ttl")), "{me}");
    assert!(str_of(data, "expire_time").contains('T'), "{me}");

    // `vault login` with a token that does not exist.
    assert_error_body(
        cli.with_token("hvs.AAAAAAAAAAAAAAAAAAAAAAAA").read("auth/token/lookup-self", &[]).await,
        403,
    );
}

/// `vault policy write reader reader.hcl` (sys/policies/acl), `vault policy read reader`, and a
/// token holding it.
#[tokio::test]
async fn policy_write_and_read() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    let cli = Cli::new(&km);
    let hcl = "path \"aws/config/lease\" {\n  capabilities = [\"read\"]\n}\n";
    assert_written(cli.write("sys/policies/acl/reader", &format!(r#"{{"policy":{}}}"#, quoted(hcl))).await);

    let read = assert_secret(cli.read("sys/policies/acl/reader", &[]).await, 200);
    assert_eq!(read.data()["name"], "reader", "{read}");
    assert_eq!(read.data()["policy"], hcl, "{read}");
    assert_no_value(cli.read("sys/policies/acl/nope", &[]).await);

    let broken = cli.write("sys/policies/acl/broken", r#"{"policy":"path \"x\" { capabilities = "}"#).await;
    assert_error_body(broken, 400);

    assert_written(cli.write("aws/config/lease", r#"{"lease":"1h","lease_max":"2h"}"#).await);
    let request = r#"{"policies":["reader"],"ttl":"0s","explicit_max_ttl":"0s","period":"0s","display_name":"","num_uses":0,"renewable":true,"type":"service","entity_alias":""}"#;
    let created = assert_secret(cli.send(Method::POST, "auth/token/create", &[], Some(request)).await, 200);
    let reader = cli.with_token(str_of(&created.json()["auth"], "client_token"));
    assert_secret(reader.read("aws/config/lease", &[]).await, 200);
    assert_error_body(reader.list("aws/roles").await, 403);
}

/// `vault status`: `GET sys/seal-status`, then `GET sys/leader`, both decoded from the top
/// level of the body into `api.SealStatusResponse` / `api.LeaderResponse` (no envelope).
async fn check_status(cli: &Cli) {
    let seal = cli.read("sys/seal-status", &[]).await.expect(200);
    assert_json_content_type(&seal);
    let body = seal.json();
    assert!(body["type"].is_string(), "{seal}");
    assert_eq!(body["initialized"], true, "{seal}");
    assert_eq!(body["sealed"], false, "{seal}");
    for int in ["t", "n", "progress"] {
        assert!(body[int].is_u64(), "{int}: {seal}");
    }
    assert!(body["version"].is_string(), "{seal}");
    // Optional for the CLI, but Go's decoder fails on a wrong type.
    for (key, ok) in [
        ("nonce", Value::is_string as fn(&Value) -> bool),
        ("build_date", Value::is_string),
        ("migration", Value::is_boolean),
        ("recovery_seal", Value::is_boolean),
        ("cluster_name", Value::is_string),
        ("cluster_id", Value::is_string),
        ("storage_type", Value::is_string),
    ] {
        assert!(body.get(key).is_none_or(ok), "{key}: {seal}");
    }

    let leader = cli.read("sys/leader", &[]).await.expect(200);
    assert_json_content_type(&leader);
    let body = leader.json();
    assert!(body["ha_enabled"].is_boolean(), "ha_enabled at the top level: {leader}");
    assert!(body["is_self"].is_boolean(), "is_self at the top level: {leader}");
    assert!(body["leader_address"].is_string(), "{leader}");
    assert!(body["leader_cluster_address"].is_string(), "{leader}");
    assert!(body["performance_standby"].is_boolean(), "{leader}");
    assert!(body["performance_standby_last_remote_wal"].is_u64(), "{leader}");
    // A Go time.Time: RFC 3339 (or null).
    assert!(
        body.get("active_time").is_none_or(|t| t.is_null() || t.as_str().is_some_and(|s| s.contains('T'))),
        "{leader}"
    );
}

#[tokio::test]
async fn status_reads_seal_status_and_leader() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    check_status(&Cli::new(&km)).await;
}

/// `vault status` before `vault login`: Vault serves both paths without a token
/// (`http/sys_seal.go`, `http/sys_leader.go` answer before any token check).
#[tokio::test]
async fn status_needs_no_token() {
    let km = Keymint::start_on(Backend::Sqlite).await;
    check_status(&Cli::new(&km).without_token()).await;
}

/// `vault path-help aws/creds/deploy`: `GET …?help=1`, answered with a bare `{"help": …}`
/// (`api.Help`), and nothing minted; a path no route matches is a 404.
#[tokio::test]
async fn path_help_describes_without_acting() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let cli = Cli::new(&env.km);
    write_iam_user_role(&cli, "deploy").await;

    let help = cli.read("aws/creds/deploy", &[("help", "1")]).await;
    assert_eq!(help.status, 200, "{help}");
    assert_json_content_type(&help);
    let text = help.json()["help"].as_str().unwrap_or_else(|| panic!("no help text: {help}"));
    assert!(text.starts_with("Request:        creds/deploy\nMatching Route: ^"), "{text}");
    assert!(text.contains("\n    ttl (duration)\n"), "{text}");
    assert!(help.json().get("data").is_none(), "help is not an envelope: {help}");
    assert!(env.moto.calls(Some("CreateUser")).is_empty(), "help must not mint: {:?}", env.moto.calls(None));

    // Help on a write path is help too, not a write; and on core paths.
    let help = cli.send(Method::POST, "aws/roles/other", &[("help", "1")], Some("{}")).await;
    assert!(help.json()["help"].as_str().unwrap().contains("credential_type (string)"), "{help}");
    assert_no_value(cli.read("aws/roles/other", &[]).await);
    let help = cli.read("sys/leases/revoke-prefix/aws/creds/deploy", &[("help", "1")]).await;
    assert!(help.json()["help"].as_str().unwrap().contains("sudo"), "{help}");

    assert_eq!(cli.read("aws/nothing/here", &[("help", "1")]).await.status, 404);
    assert_error_body(cli.without_token().read("aws/creds/deploy", &[("help", "1")]).await, 403);
}
