//! `keymint-bench burst`: N `iam_user` requests sent at once to a keymint whose AWS (moto
//! behind the fault proxy) throttles IAM writes above a rate, as an AWS account does. For each
//! of keymint's pacing rates asked for, it reports how many requests succeeded, how long
//! serving all of them took against the ideal (N users x IAM writes per user / AWS's rate),
//! the latency spread, and how often AWS throttled.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use keymint_tests::{FaultProxy, Outcome, is_iam_write};
use serde_json::{Value, json};

use crate::{Common, Moto, Server, TOKEN, storage};

#[derive(Args)]
pub struct BurstArgs {
    #[command(flatten)]
    common: Common,
    /// The moto_server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    moto_server: PathBuf,
    /// Requests sent at once.
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// The IAM write rate AWS (the proxy) allows, per second.
    #[arg(long, default_value_t = 20.0)]
    aws_write_rate: f64,
    /// keymint's `iam_write_rate` settings to measure, comma-separated; 0 is no cap (keymint's
    /// default: the rate is learned from AWS's throttling).
    #[arg(long, value_delimiter = ',', default_value = "0,20,40")]
    rates: Vec<u64>,
    /// keymint's `max_queue_wait`, in seconds [default: keymint's].
    #[arg(long)]
    max_queue_wait: Option<u64>,
}

/// IAM writes keymint makes per user of the bench's role: CreateUser, PutUserPolicy,
/// CreateAccessKey.
const WRITES_PER_USER: f64 = 3.0;

pub async fn run(args: BurstArgs) -> Result<()> {
    let ideal = args.requests as f64 * WRITES_PER_USER / args.aws_write_rate;
    println!(
        "{} concurrent iam_user requests; AWS throttles IAM writes above {}/s; ideal {:.0} s \
         ({} users x {} writes / {}/s); keymint's max_queue_wait {}",
        args.requests,
        args.aws_write_rate,
        ideal,
        args.requests,
        WRITES_PER_USER,
        args.aws_write_rate,
        args.max_queue_wait.map_or_else(|| "the default".to_string(), |s| format!("{s} s")),
    );
    println!();
    println!(
        "| keymint iam_write_rate | succeeded | failed | time to serve all | vs ideal | p50 | p99 | max | writes throttled by AWS | CreateUser calls reaching AWS |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for rate in &args.rates {
        let row = one_run(&args, *rate).await?;
        println!(
            "| {} | {} | {} | {:.1} s | {:.2}x | {:.1} s | {:.1} s | {:.1} s | {} | {} |",
            if *rate == 0 { "no cap (adaptive)".to_string() } else { format!("{rate}/s") },
            row.ok,
            row.failed,
            row.total.as_secs_f64(),
            row.total.as_secs_f64() / ideal,
            row.p50.as_secs_f64(),
            row.p99.as_secs_f64(),
            row.max.as_secs_f64(),
            row.throttled,
            row.create_user_calls,
        );
        for (status, error) in row.failures.iter().take(3) {
            eprintln!("  failure: {status} {error}");
        }
    }
    Ok(())
}

struct Row {
    ok: usize,
    failed: usize,
    total: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
    throttled: usize,
    create_user_calls: usize,
    failures: Vec<(u16, String)>,
}

async fn one_run(args: &BurstArgs, rate: u64) -> Result<Row> {
    let (url, _dir) = storage(&args.common)?;
    let moto = Moto::start(&args.moto_server).await?;
    let proxy = FaultProxy::start_for(moto.url()).await;
    let server = Server::start(&args.common.keymint, &url, &[]).await?;
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(300)).build()?;
    let call = |path: &str, body: Value| {
        http.post(format!("{}/v1/{path}", server.url)).header("X-Vault-Token", TOKEN).json(&body).send()
    };
    let mut root = json!({"access_key": "bench-root", "secret_key": "bench-root-secret", "region": "us-east-1",
                      "iam_endpoint": proxy.url(), "sts_endpoint": proxy.url(), "iam_write_rate": rate});
    if let Some(wait) = args.max_queue_wait {
        root["max_queue_wait"] = json!(wait);
    }
    let policy =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    for (path, body) in [
        ("aws/config/root", root),
        ("aws/roles/burst", json!({"credential_type": "iam_user", "policy_document": policy})),
    ] {
        let resp = call(path, body).await?;
        if !resp.status().is_success() {
            bail!("{path}: {} {}", resp.status(), resp.text().await?);
        }
    }
    proxy.limit_iam_writes(args.aws_write_rate);

    let started = Instant::now();
    let requests: Vec<_> = (0..args.requests)
        .map(|_| {
            let request =
                http.get(format!("{}/v1/aws/creds/burst", server.url)).header("X-Vault-Token", TOKEN);
            tokio::spawn(async move {
                let t = Instant::now();
                let resp = request.send().await;
                let status = resp.as_ref().map_or(0, |r| r.status().as_u16());
                let body = match resp {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                (status, body, t.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    for r in requests {
        let (status, body, took) = r.await?;
        if status == 200 {
            latencies.push(took);
        } else {
            failures.push((status, body));
        }
    }
    let total = started.elapsed();
    latencies.sort();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    let calls = proxy.calls(None);
    let throttled = calls
        .iter()
        .filter(|c| {
            is_iam_write(&c.action)
                && matches!(&c.outcome, Outcome::Injected(_, code) if code == "Throttling")
        })
        .count();
    let create_user_calls = calls.iter().filter(|c| c.action == "CreateUser" && c.forwarded()).count();
    server.stop();
    Ok(Row {
        ok: latencies.len(),
        failed: failures.len(),
        total,
        p50: pick(0.5),
        p99: pick(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        throttled,
        create_user_calls,
        failures,
    })
}
