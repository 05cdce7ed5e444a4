//! `keymint agent` as a sidecar: boto3, the AWS CLI and the Rust AWS SDK get their keys from the agent's container-credentials
//! endpoint; callers without the token are refused; keys are refreshed before they run out;
//! the agent keeps serving while keymint is down and picks up again after a restart; what it
//! holds is revoked when it stops.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use keymint_tests::*;

const AGENT_TOKEN: &str = "agent-token-0123456789abcdef";

struct Agent {
    child: tokio::process::Child,
    url: String,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_agent(km: &Keymint, dir: &std::path::Path, extra: &[&str]) -> Agent {
    let token_file = dir.join("agent-token");
    std::fs::write(&token_file, format!("{AGENT_TOKEN}\n")).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = tokio::process::Command::new(keymint_binary())
        .args(["agent", "--path", "aws/creds/deploy", "--listen", &listen, "--auth-token-file"])
        .arg(&token_file)
        .args(extra)
        .env_clear()
        .env("KEYMINT_ADDR", km.url())
        .env("KEYMINT_TOKEN", ROOT_TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://{listen}");
    let http = reqwest::Client::new();
    eventually("the agent to answer", Duration::from_secs(20), async || {
        http.get(format!("{url}/healthz")).send().await.ok().filter(|r| r.status() == 200)
    })
    .await;
    Agent { child, url }
}

async fn get_creds(url: &str, auth: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(format!("{url}/creds"));
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn agent_serves_boto3_refreshes_and_cleans_up(backend: Backend) {
    let storage = Storage::new(backend);
    // A fixed port, so the agent finds keymint again after a restart.
    let listen = format!("127.0.0.1:{}", free_port());
    let args = ["--dev-listen-address", listen.as_str()];
    let (moto, mut km) = tokio::join!(Moto::start(), Keymint::start_with(storage.url(), &args));
    km.post("aws/config/root", root_config(&moto)).await.expect(200);
    write_iam_user_role(&km, "deploy", "/agent/").await;
    // Short leases: renewed at half their life until the max TTL, then replaced.
    km.post("aws/roles/deploy", json!({"default_ttl": "8s", "max_ttl": "16s"})).await.expect(204);

    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(
        &km,
        dir.path(),
        &["--min-ttl", "2", "--credentials-file", dir.path().join("credentials").to_str().unwrap()],
    )
    .await;

    // Only callers with the token.
    let (status, body) = get_creds(&agent.url, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(get_creds(&agent.url, Some("wrong")).await.0, 403);
    let (status, first) = get_creds(&agent.url, Some(AGENT_TOKEN)).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["Expiration"].as_str().unwrap().ends_with('Z'), "{first}");
    // iam_user keys have no session token, but the field is there: botocore and the Rust SDK
    // refuse an answer without it.
    assert_eq!(first["Token"], "", "{first}");

    // boto3 through AWS_CONTAINER_CREDENTIALS_FULL_URI.
    let script = format!(
        "import boto3\nprint(boto3.client('sts', region_name='us-east-1', endpoint_url='{}').get_caller_identity()['Arn'])",
        moto.url()
    );
    let vars = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", format!("{}/creds", agent.url)),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", AGENT_TOKEN.to_owned()),
    ];
    let arn = run_consumer(python(), &["-c", &script], dir.path(), &vars).await;
    let users = moto.user_names("/agent/").await;
    assert_eq!(users.len(), 1);
    let user_arn = moto.user(&users[0]).await.arn;
    assert_eq!(arn, user_arn);
    // The AWS CLI and the Rust AWS SDK's default chain, the same way.
    let moto_url = moto.url();
    let aws_args =
        ["sts", "get-caller-identity", "--region", "us-east-1", "--output", "text", "--query", "Arn"];
    let aws_args: Vec<&str> = aws_args.into_iter().chain(["--endpoint-url", moto_url.as_str()]).collect();
    assert_eq!(run_consumer(aws_cli(), &aws_args, dir.path(), &vars).await, user_arn);
    assert_eq!(
        run_consumer(env!("CARGO_BIN_EXE_sdk-probe"), &[&moto_url], dir.path(), &vars).await,
        user_arn
    );
    let file = std::fs::read_to_string(dir.path().join("credentials")).unwrap();
    assert!(
        file.contains(&format!("aws_access_key_id = {}", first["AccessKeyId"].as_str().unwrap())),
        "{file}"
    );

    // The status page says what is held, never the secret.
    let status: Value = reqwest::get(format!("{}/status", agent.url)).await.unwrap().json().await.unwrap();
    assert_eq!(status["default"]["access_key"], first["AccessKeyId"], "{status}");
    assert!(!status.to_string().contains(first["SecretAccessKey"].as_str().unwrap()));

    // Past the max TTL the lease is replaced, and the replaced user deleted.
    let first_key = first["AccessKeyId"].as_str().unwrap().to_owned();
    eventually("new keys past the max TTL", Duration::from_secs(40), async || {
        let (_, now) = get_creds(&agent.url, Some(AGENT_TOKEN)).await;
        (now["AccessKeyId"].as_str() != Some(first_key.as_str())).then_some(())
    })
    .await;
    eventually("the replaced user to be deleted", Duration::from_secs(20), async || {
        (moto.user_names("/agent/").await.len() == 1).then_some(())
    })
    .await;

    // keymint down: keys still valid keep being served.
    km.kill9();
    let (status, held) = get_creds(&agent.url, Some(AGENT_TOKEN)).await;
    assert_eq!(status, 200, "{held}");
    km.restart().await;
    let held_key = held["AccessKeyId"].as_str().unwrap().to_owned();
    eventually("fresh keys after keymint's restart", Duration::from_secs(60), async || {
        let (s, now) = get_creds(&agent.url, Some(AGENT_TOKEN)).await;
        (s == 200 && now["AccessKeyId"].as_str() != Some(held_key.as_str())).then_some(())
    })
    .await;

    // SIGTERM: the agent revokes what it holds, so its IAM user goes at once.
    let pid = agent.child.id().unwrap();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    eventually("the agent's user to be deleted on shutdown", Duration::from_secs(30), async || {
        moto.user_names("/agent/").await.is_empty().then_some(())
    })
    .await;
}

both_backends!(agent_serves_boto3_refreshes_and_cleans_up);
