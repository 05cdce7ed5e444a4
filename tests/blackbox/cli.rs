//! The `keymint` client commands against a real server: Vault CLI habits (`-format=json`,
//! `-field=`, `k=@file`, `k=-`, the token file `login` writes), output and exit codes.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Stdio;

use keymint_tests::*;
use tokio::io::AsyncWriteExt;

/// What a `keymint` command printed, and how it exited (shared with login.rs).
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    #[track_caller]
    pub(crate) fn ok(self) -> String {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stdout
    }

    pub(crate) fn json(self) -> Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Runs `keymint ARGS` against `km` with HOME at `home` and no token in the environment.
pub(crate) async fn cli(km: &Keymint, home: &std::path::Path, args: &[&str], stdin: &str) -> Out {
    let mut child = tokio::process::Command::new(keymint_binary())
        .args(args)
        .env_clear()
        .env("KEYMINT_ADDR", km.url())
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keymint");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The value column of the `key` row of a Key/Value table.
pub(crate) fn row<'a>(table: &'a str, key: &str) -> &'a str {
    table
        .lines()
        .find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with(' ')).map(str::trim))
        .unwrap_or_else(|| panic!("no row {key:?} in:\n{table}"))
}

async fn every_command_with_both_formats(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    let km = &env.km;
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    // No token yet: status works (unauthenticated), reading does not.
    let status = cli(km, h, &["status"], "").await.ok();
    assert_eq!(row(&status, "Sealed"), "false", "{status}");
    let denied = cli(km, h, &["read", "sys/mounts"], "").await;
    assert_eq!(denied.code, 2);
    assert!(
        denied.stderr.contains("Code: 403") && denied.stderr.contains("permission denied"),
        "{}",
        denied.stderr
    );

    // login keeps the token in ~/.keymint-token, owner-only.
    let login = cli(km, h, &["login", "-"], &format!("{ROOT_TOKEN}\n")).await.ok();
    assert_eq!(row(&login, "token_policies"), "[root]", "{login}");
    let file = h.join(".keymint-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), ROOT_TOKEN);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    assert_eq!(cli(km, h, &["login", "wrong-token"], "").await.code, 2);

    // write with k=@file and k=-, read back as a table, as JSON and as one field.
    let policy = h.join("policy.json");
    std::fs::write(&policy, S3_READ_POLICY).unwrap();
    let written = cli(
        km,
        h,
        &[
            "write",
            "aws/roles/deploy",
            "credential_type=iam_user",
            &format!("policy_document=@{}", policy.display()),
            "user_path=-",
        ],
        "/cli/\n",
    )
    .await
    .ok();
    assert_eq!(written.trim(), "Success! Data written to: aws/roles/deploy");
    let table = cli(km, h, &["read", "aws/roles/deploy"], "").await.ok();
    assert_eq!(row(&table, "user_path"), "/cli/");
    assert_eq!(row(&table, "iam_groups"), "<nil>");
    let json = cli(km, h, &["read", "-format=json", "aws/roles/deploy"], "").await.json();
    assert_eq!(json["data"]["credential_type"], "iam_user", "{json}");
    let field = cli(km, h, &["read", "-field=policy_document", "aws/roles/deploy"], "").await.ok();
    assert_eq!(
        serde_json::from_str::<Value>(field.trim()).unwrap(),
        serde_json::from_str::<Value>(S3_READ_POLICY).unwrap()
    );

    // The CI one-liner: credentials as JSON, and they work.
    let creds = cli(km, h, &["read", "aws/creds/deploy", "-format=json"], "").await.json();
    let (key, secret) =
        (creds["data"]["access_key"].as_str().unwrap(), creds["data"]["secret_key"].as_str().unwrap());
    let user = env.moto.user_names("/cli/").await;
    assert_eq!(env.moto.caller_arn(key, secret, None).await, env.moto.user(&user[0]).await.arn);
    let lease_id = creds["lease_id"].as_str().unwrap().to_owned();
    let table = cli(km, h, &["read", "aws/creds/deploy"], "").await.ok();
    assert_eq!(row(&table, "lease_duration"), "768h", "{table}");
    assert_eq!(row(&table, "session_token"), "<nil>");

    // Leases.
    let looked = cli(km, h, &["lease", "lookup", "-format=json", &lease_id], "").await.json();
    assert_eq!(looked["data"]["id"], lease_id.as_str());
    let renewed =
        cli(km, h, &["lease", "renew", "-increment=1h", "-format=json", &lease_id], "").await.json();
    assert_eq!(renewed["lease_duration"], 3600, "{renewed}");
    let revoked = cli(km, h, &["lease", "revoke", &lease_id], "").await.ok();
    assert!(revoked.contains("Success! Revoked lease"), "{revoked}");
    let prefix = cli(km, h, &["lease", "revoke", "-prefix", "aws/creds/deploy"], "").await.ok();
    assert!(prefix.contains("Success!"), "{prefix}");
    assert!(env.moto.user_names("/cli/").await.is_empty(), "revocation deleted the users");

    // Lists.
    let listed = cli(km, h, &["list", "aws/roles"], "").await.ok();
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["Keys", "----", "deploy"]);
    assert_eq!(cli(km, h, &["list", "-format=json", "aws/roles"], "").await.json(), json!(["deploy"]));

    // Tokens.
    let token = cli(
        km,
        h,
        &["token", "create", "-policy=default", "-ttl=1h", "-display_name=ci_bot", "-field=token"],
        "",
    )
    .await
    .ok();
    let token = token.trim();
    let lookup = cli(km, h, &["token", "lookup", "-format=json", token], "").await.json();
    assert_eq!(lookup["data"]["display_name"], "token-ci-bot", "{lookup}");
    assert_eq!(lookup["data"]["policies"], json!(["default"]));
    let table = cli(km, h, &["token", "lookup", token], "").await.ok();
    assert_eq!(row(&table, "display_name"), "token-ci-bot", "{table}");
    cli(km, h, &["token", "revoke", token], "").await.ok();
    assert_eq!(cli(km, h, &["token", "lookup", token], "").await.code, 2);
    // By accessor, and a token revoking itself.
    let child = cli(km, h, &["token", "create", "-format=json"], "").await.json();
    let accessor = child["auth"]["accessor"].as_str().unwrap();
    let looked = cli(km, h, &["token", "lookup", "-accessor", "-format=json", accessor], "").await.json();
    assert_eq!(looked["data"]["accessor"], accessor, "{looked}");
    cli(km, h, &["token", "revoke", "-accessor", accessor], "").await.ok();
    // Against a token role: the role decides its shape.
    cli(km, h, &["write", "auth/token/roles/ci", "allowed_policies=default", "orphan=true"], "").await.ok();
    let from_role = cli(km, h, &["token", "create", "-role=ci", "-format=json"], "").await.json();
    assert_eq!(from_role["auth"]["orphan"], true, "{from_role}");
    let role_token = from_role["auth"]["client_token"].as_str().unwrap();
    let looked = cli(km, h, &["token", "lookup", "-format=json", role_token], "").await.json();
    assert_eq!(looked["data"]["path"], "auth/token/create/ci", "{looked}");
    let own = cli(km, h, &["token", "create", "-field=token"], "").await.ok();
    let own_home = tempfile::tempdir().unwrap();
    std::fs::write(own_home.path().join(".keymint-token"), own.trim()).unwrap();
    cli(km, own_home.path(), &["token", "revoke", "-self"], "").await.ok();
    assert_eq!(cli(km, own_home.path(), &["token", "lookup"], "").await.code, 2, "the token is gone");
    let status = cli(km, h, &["status", "-format=json"], "").await.json();
    assert_eq!(status["sealed"], false, "{status}");

    // Errors: the server's message and exit code 2; a missing value is exit 2 too.
    let bad = cli(km, h, &["write", "aws/roles/bad", "credential_type=bogus"], "").await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("Code: 400") && bad.stderr.contains("unrecognized credential type: bogus"),
        "{}",
        bad.stderr
    );
    let missing = cli(km, h, &["read", "aws/roles/nope"], "").await;
    assert_eq!((missing.code, missing.stderr.trim()), (2, "No value found at aws/roles/nope"));
    let deleted = cli(km, h, &["delete", "aws/roles/deploy"], "").await.ok();
    assert_eq!(deleted.trim(), "Success! Data deleted (if it existed) at: aws/roles/deploy");
    let usage = cli(km, h, &["write", "aws/roles/x", "no-equals-sign"], "").await;
    assert_eq!(usage.code, 1, "{}", usage.stderr);

    // Completions and help with examples.
    let completion = cli(km, h, &["completions", "bash"], "").await.ok();
    assert!(completion.contains("keymint") && completion.contains("read"), "{completion}");
    let help = cli(km, h, &["read", "--help"], "").await.ok();
    assert!(help.contains("keymint read -format=json aws/creds/deploy"), "{help}");
}

/// boto3 gets its keys from `credential_process = keymint credential-process ...`; the
/// second run reuses the cached answer instead of making another IAM user.
async fn credential_process_feeds_boto3_and_caches(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.configure_root().await;
    write_iam_user_role(&env.km, "deploy", "/cp/").await;
    let home = tempfile::tempdir().unwrap();
    let aws_config = home.path().join("aws-config");
    std::fs::write(
        &aws_config,
        format!(
            "[profile deploy]\ncredential_process = {} credential-process aws/creds/deploy\nregion = us-east-1\n",
            keymint_binary().display()
        ),
    )
    .unwrap();
    let script = format!(
        "import boto3\nprint(boto3.Session(profile_name='deploy').client('sts', endpoint_url='{}').get_caller_identity()['Arn'])",
        env.moto.url()
    );
    let vars = [
        ("AWS_CONFIG_FILE", aws_config.display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none").display().to_string()),
        ("KEYMINT_ADDR", env.km.url().to_owned()),
        ("KEYMINT_TOKEN", ROOT_TOKEN.to_owned()),
    ];
    let boto3 = async || run_consumer(python(), &["-c", &script], home.path(), &vars).await;
    let first = boto3().await;
    let users = env.moto.user_names("/cp/").await;
    assert_eq!(users.len(), 1);
    assert_eq!(first, env.moto.user(&users[0]).await.arn);
    assert_eq!(boto3().await, first, "the cached credentials are used again");
    // The AWS CLI, with the same profile and cache.
    let moto_url = env.moto.url();
    let aws_args =
        ["sts", "get-caller-identity", "--profile", "deploy", "--output", "text", "--query", "Arn"];
    let aws_args: Vec<&str> = aws_args.into_iter().chain(["--endpoint-url", moto_url.as_str()]).collect();
    assert_eq!(run_consumer(aws_cli(), &aws_args, home.path(), &vars).await, first);
    assert_eq!(env.moto.user_names("/cp/").await.len(), 1, "no second user");

    let cached: Vec<_> =
        std::fs::read_dir(home.path().join(".cache/keymint")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cached.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cached[0]).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Asking for more lifetime than the cache has left fetches anew.
    let out =
        cli(&env.km, home.path(), &["credential-process", "--refresh-before", "800h", "aws/sts/deploy"], "")
            .await;
    assert_eq!(out.code, 2, "no token in this environment: {}", out.stderr);
    std::fs::write(home.path().join(".keymint-token"), ROOT_TOKEN).unwrap();
    let printed: Value = serde_json::from_str(
        &cli(&env.km, home.path(), &["credential-process", "--no-cache", "aws/creds/deploy"], "").await.ok(),
    )
    .unwrap();
    assert_eq!(printed["Version"], 1);
    assert!(printed["Expiration"].as_str().unwrap().ends_with('Z'), "{printed}");
    assert_eq!(env.moto.user_names("/cp/").await.len(), 2, "--no-cache made a new credential");
    // No session token for iam_user keys: the credential_process format leaves SessionToken out.
    assert!(printed.get("SessionToken").is_none(), "{printed}");
    // STS keys carry theirs.
    let role_arn = env.moto.create_role("km-cp").await;
    env.km
        .post("aws/roles/ops", json!({"credential_type": "assumed_role", "role_arns": [role_arn]}))
        .await
        .expect(204);
    let sts: Value = serde_json::from_str(
        &cli(&env.km, home.path(), &["credential-process", "--no-cache", "aws/sts/ops"], "").await.ok(),
    )
    .unwrap();
    assert!(sts["SessionToken"].as_str().is_some_and(|t| !t.is_empty()), "{sts}");
}

both_backends!(every_command_with_both_formats, credential_process_feeds_boto3_and_caches);
