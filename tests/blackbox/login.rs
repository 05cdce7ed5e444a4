//! Logging in with an auth method from the CLI: `keymint login -method=approle` keeps a token
//! the next commands use; `keymint agent` and `keymint credential-process` with
//! `--auth-method approle` log in themselves, with no keymint token anywhere in their
//! environment. The agent outlives its login tokens (renewal, then a new login before the max
//! TTL) and keeps serving keys that work; credential-process logs in only when its cache misses.
//!
//! SQLite only: what is tested is the client, and the server's AppRole is the same code on both
//! stores (its storage is tested on both in it/). JWT and Kubernetes auto-auth: login_jwt.rs.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use keymint_tests::*;

use crate::cli::{cli, row};

pub(crate) const CALLER_TOKEN: &str = "login-agent-token-0123456789";

const DEPLOY_POLICY: &str = r#"
path "aws/creds/deploy" { capabilities = ["read"] }
path "sys/leases/*" { capabilities = ["update"] }
"#;

/// AppRole enabled at `mount` with a role `deploy` (policy `deploy`, the given token TTLs);
/// returns its role id.
async fn approle_role(km: &Keymint, mount: &str, role: Value) -> String {
    km.post(&format!("sys/auth/{mount}"), json!({"type": "approle"})).await.expect(204);
    km.put("sys/policies/acl/deploy", json!({"policy": DEPLOY_POLICY})).await.expect(204);
    let mut body = json!({"token_policies": "deploy"});
    body.as_object_mut().unwrap().extend(role.as_object().unwrap().clone());
    km.post(&format!("auth/{mount}/role/deploy"), body).await.expect(204);
    let read = km.get(&format!("auth/{mount}/role/deploy/role-id")).await.expect(200);
    read.json()["data"]["role_id"].as_str().unwrap().to_owned()
}

async fn secret_id(km: &Keymint, mount: &str, body: Value) -> String {
    let made = km.post(&format!("auth/{mount}/role/deploy/secret-id"), body).await.expect(200);
    made.json()["data"]["secret_id"].as_str().unwrap().to_owned()
}

/// Whether `key` is an access key of a user that still exists under `path`.
pub(crate) async fn live_key(moto: &Moto, path: &str, key: &str) -> bool {
    for name in moto.user_names(path).await {
        if moto.user(&name).await.access_keys.iter().any(|k| k == key) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn approle_login_keeps_a_token_the_next_commands_use() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let km = &env.km;
    write_iam_user_role(km, "deploy", "/login/").await;
    let role_id = approle_role(km, "approle", json!({})).await;
    let secret = secret_id(km, "approle", json!({"metadata": "{\"team\":\"ops\"}"})).await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let secret_file = h.join("secret-id");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();

    // Vault's habits: K=V, K=@file, the Success text and the auth table with its metadata.
    let role_arg = format!("role_id={role_id}");
    let secret_arg = format!("secret_id=@{}", secret_file.display());
    let table = cli(km, h, &["login", "-method=approle", &role_arg, &secret_arg], "").await.ok();
    assert!(table.starts_with("Success! You are now authenticated."), "{table}");
    assert_eq!(row(&table, "token_policies"), "[default deploy]", "{table}");
    assert_eq!(row(&table, "token_meta_role_name"), "deploy", "{table}");
    assert_eq!(row(&table, "token_meta_team"), "ops", "{table}");
    assert_eq!(row(&table, "token_renewable"), "true", "{table}");
    let token = row(&table, "token").to_owned();
    let file = h.join(".keymint-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // The next commands use it, with no token in their environment.
    let looked = cli(km, h, &["token", "lookup", "-format=json"], "").await.json();
    assert_eq!(looked["data"]["path"], "auth/approle/login", "{looked}");
    assert_eq!(looked["data"]["meta"]["role_name"], "deploy", "{looked}");
    let creds = cli(km, h, &["read", "-format=json", "aws/creds/deploy"], "").await.json();
    let key = creds["data"]["access_key"].as_str().unwrap();
    assert!(live_key(&env.moto, "/login/", key).await, "{creds}");
    // Its policy is the role's, not root's.
    let denied = cli(km, h, &["read", "sys/mounts"], "").await;
    assert_eq!(denied.code, 2, "{}", denied.stderr);

    // -token-only prints the token alone and stores nothing; `-` reads a value from stdin;
    // --flag works as -flag does.
    let printed = cli(
        km,
        h,
        &["login", "--method=approle", "-token-only", &role_arg, "secret_id=-"],
        &format!("{secret}\n"),
    )
    .await
    .ok();
    let other = printed.trim();
    assert!(!other.is_empty() && other != token && !other.contains(' '), "{printed}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token, "-token-only does not store");
    let lookup = km.with_token(other).get("auth/token/lookup-self").await.expect(200);
    assert_eq!(lookup.json()["data"]["path"], "auth/approle/login");
    // -format=json prints the server's whole answer; -no-store keeps the old token file.
    let json =
        cli(km, h, &["login", "-method=approle", "-no-store", "-format=json", &role_arg, &secret_arg], "")
            .await
            .json();
    assert_eq!(json["auth"]["metadata"]["role_name"], "deploy", "{json}");
    assert_ne!(json["auth"]["client_token"], token.as_str());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token, "-no-store does not store");

    // Another mount with -path.
    let other_role = approle_role(km, "ci-approle", json!({})).await;
    let other_secret = secret_id(km, "ci-approle", json!({})).await;
    let json = cli(
        km,
        h,
        &[
            "login",
            "-method=approle",
            "-path=ci-approle",
            "-format=json",
            &format!("role_id={other_role}"),
            &format!("secret_id={other_secret}"),
        ],
        "",
    )
    .await
    .json();
    let other_token = json["auth"]["client_token"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), other_token);

    // Refusals: the server's words and exit 2; a missing credential is caught before a call.
    let wrong = cli(km, h, &["login", "-method=approle", &role_arg, "secret_id=not-it"], "").await;
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("Error authenticating")
            && wrong.stderr.contains("Code: 400")
            && wrong.stderr.contains("invalid role or secret ID"),
        "{}",
        wrong.stderr
    );
    let missing = cli(km, h, &["login", "-method=approle", "secret_id=x"], "").await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("role_id"), "{}", missing.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), other_token, "a failed login stores nothing");

    // The token method as before, also spelled -method=token.
    let table = cli(km, h, &["login", "-method=token", ROOT_TOKEN], "").await.ok();
    assert_eq!(row(&table, "token_policies"), "[root]", "{table}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), ROOT_TOKEN);
}

pub(crate) struct Agent {
    child: tokio::process::Child,
    pub(crate) url: String,
}

/// `keymint agent` keeping `aws/creds/deploy` with the auto-auth flags `auth`, with no
/// KEYMINT_TOKEN, no VAULT_TOKEN and a HOME (`dir`) without a token file.
pub(crate) fn spawn_agent(
    km: &Keymint,
    dir: &Path,
    caller_file: &Path,
    auth: &[std::ffi::OsString],
) -> Agent {
    let listen = format!("127.0.0.1:{}", free_port());
    let child = tokio::process::Command::new(keymint_binary())
        .args(["agent", "--path", "aws/creds/deploy", "--listen", &listen, "--auth-token-file"])
        .arg(caller_file)
        .args(auth)
        .env_clear()
        .env("KEYMINT_ADDR", km.url())
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Agent { child, url: format!("http://{listen}") }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The agent's answer; `None` while it does not listen yet.
pub(crate) async fn try_creds(url: &str) -> Option<(u16, Value)> {
    let req = reqwest::Client::new().get(format!("{url}/creds")).header("Authorization", CALLER_TOKEN);
    let resp = req.send().await.ok()?;
    Some((resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null)))
}

pub(crate) async fn get_creds(url: &str) -> (u16, Value) {
    try_creds(url).await.expect("the agent answers")
}

#[tokio::test]
async fn the_agent_logs_in_itself_and_outlives_its_tokens() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let km = &env.km;
    write_iam_user_role(km, "deploy", "/login-agent/").await;
    // Tokens renewed at two thirds of 4s, capped at 8s: the agent must log in again, and
    // its keys, revoked with the token that fetched them, must be fetched anew in time.
    let role_id = approle_role(km, "approle", json!({"token_ttl": "4s", "token_max_ttl": "8s"})).await;
    let secret = secret_id(km, "approle", json!({})).await;
    let dir = tempfile::tempdir().unwrap();
    let (role_file, secret_file, caller_file) =
        (dir.path().join("role-id"), dir.path().join("secret-id"), dir.path().join("caller"));
    std::fs::write(&role_file, &role_id).unwrap();
    std::fs::write(&secret_file, &secret).unwrap();
    std::fs::write(&caller_file, CALLER_TOKEN).unwrap();

    let auth: Vec<std::ffi::OsString> = vec![
        "--auth-method".into(),
        "approle".into(),
        "--role-id-file".into(),
        role_file.into(),
        "--secret-id-file".into(),
        secret_file.into(),
    ];
    let started = Instant::now();
    let agent = spawn_agent(km, dir.path(), &caller_file, &auth);
    let first = eventually("the agent to serve keys", Duration::from_secs(20), async || {
        let (status, body) = try_creds(&agent.url).await?;
        (status == 200).then_some(body)
    })
    .await;
    let first_key = first["AccessKeyId"].as_str().unwrap().to_owned();
    assert!(live_key(&env.moto, "/login-agent/", &first_key).await, "{first}");

    // Well past two max TTLs: the agent has logged in again at least twice, each time
    // fetching keys under the new token, and what it serves works.
    let mut seen = vec![first_key.clone()];
    eventually("keys from a third login", Duration::from_secs(60), async || {
        let (status, body) = get_creds(&agent.url).await;
        assert_eq!(status, 200, "the agent keeps serving: {body}");
        let key = body["AccessKeyId"].as_str().unwrap().to_owned();
        if !seen.contains(&key) {
            seen.push(key);
        }
        (seen.len() >= 3 && started.elapsed() > Duration::from_secs(17)).then_some(())
    })
    .await;
    // Whatever the agent serves now belongs to a live user: never keys revoked with a token.
    let (_, now) = get_creds(&agent.url).await;
    let key = now["AccessKeyId"].as_str().unwrap();
    assert!(live_key(&env.moto, "/login-agent/", key).await, "served keys of a deleted user: {now}");
    let arn = env.moto.caller_arn(key, now["SecretAccessKey"].as_str().unwrap(), None).await;
    assert!(arn.contains("/login-agent/"), "{arn}");
    // The first token's keys went with it (or were revoked when replaced).
    eventually("the first keys to be revoked", Duration::from_secs(20), async || {
        (!live_key(&env.moto, "/login-agent/", &first_key).await).then_some(())
    })
    .await;
}

#[tokio::test]
async fn credential_process_logs_in_only_when_its_cache_misses() {
    let env = TestEnv::start(Backend::Sqlite).await;
    env.configure_root().await;
    let km = &env.km;
    write_iam_user_role(km, "deploy", "/login-cp/").await;
    let role_id = approle_role(km, "approle", json!({"token_ttl": "1h", "token_max_ttl": "2h"})).await;
    // A secret id good for one login only: a second login would be refused.
    let secret = secret_id(km, "approle", json!({"num_uses": 1})).await;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (role_file, secret_file) = (h.join("role-id"), h.join("secret-id"));
    std::fs::write(&role_file, format!("{role_id}\n")).unwrap();
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let (role_path, secret_path) = (role_file.display().to_string(), secret_file.display().to_string());
    let args = [
        "credential-process",
        "--auth-method",
        "approle",
        "--role-id-file",
        &role_path,
        "--secret-id-file",
        &secret_path,
        "aws/creds/deploy",
    ];

    let first = cli(km, h, &args, "").await.json();
    assert_eq!(first["Version"], 1, "{first}");
    let key = first["AccessKeyId"].as_str().unwrap();
    assert!(live_key(&env.moto, "/login-cp/", key).await, "{first}");
    // The keys end with the login's token (1h), not with their own 768h lease.
    let expires = epoch_secs(first["Expiration"].as_str().unwrap());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(expires <= now + 3600 && expires > now + 3000, "{first}");

    // From the cache: same keys, though the secret id is spent.
    let second = cli(km, h, &args, "").await.json();
    assert_eq!(second["AccessKeyId"], first["AccessKeyId"], "{second}");
    assert_eq!(env.moto.user_names("/login-cp/").await.len(), 1, "no second credential");
    let spent =
        km.anonymous().post("auth/approle/login", json!({"role_id": role_id, "secret_id": secret})).await;
    assert_eq!(spent.status, 400, "the secret id was used once, by the first run");

    // A cache miss logs in: refused now, with the server's words and exit 2.
    let no_cache: Vec<&str> = args.iter().copied().chain(["--no-cache"]).collect();
    let refused = cli(km, h, &no_cache, "").await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("invalid role or secret ID"), "{}", refused.stderr);
    assert!(!h.join(".keymint-token").exists(), "no token is stored");
}

/// Seconds since the epoch of a UTC time `YYYY-MM-DDTHH:MM:SSZ` (days from the civil date, as
/// in Howard Hinnant's algorithm).
fn epoch_secs(t: &str) -> u64 {
    let n =
        |r: std::ops::Range<usize>| -> i64 { t[r].parse().unwrap_or_else(|_| panic!("not a UTC time: {t}")) };
    assert!(t.len() == 20 && t.ends_with('Z'), "not a UTC time: {t}");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)).unwrap()
}
