//! `keymint-bench expiry`: N leases (real IAM users in moto) falling due within one minute: how
//! late each revocation is, revocations per second, and the AWS call rate moto allows.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;

use crate::leases::{aws_mount_id, open_store, seed, user_name};
use crate::process::{Moto, Server};
use crate::{Common, TOKEN, storage, thousands};

#[derive(Args)]
pub struct ExpiryArgs {
    #[command(flatten)]
    common: Common,
    /// The moto_server executable.
    #[arg(long, default_value = ".venv/bin/moto_server")]
    moto_server: PathBuf,
    /// Leases (and IAM users) falling due within the minute.
    #[arg(long, default_value_t = 10_000)]
    leases: u64,
    /// Extra arguments for `keymint server`, e.g. `--iam-consistency-window=1s`.
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
    /// `iam_read_rate` of the mount's `config/root` (keymint's default if absent).
    #[arg(long)]
    iam_read_rate: Option<u64>,
    /// `iam_write_rate` of the mount's `config/root` (keymint's default if absent).
    #[arg(long)]
    iam_write_rate: Option<u64>,
}

pub async fn run(args: ExpiryArgs) -> Result<()> {
    let (url, _dir) = storage(&args.common)?;
    let bin = &args.common.keymint;
    let extra: Vec<&str> = args.server_arg.iter().map(String::as_str).collect();
    let n = args.leases;
    let moto = Moto::start(&args.moto_server).await?;

    let server = Server::start(bin, &url, &extra).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut root = json!({"access_key": "bench-root", "secret_key": "bench-root-secret", "region": "us-east-1",
                          "iam_endpoint": moto.url(), "sts_endpoint": moto.url()});
    if let Some(rate) = args.iam_read_rate {
        root["iam_read_rate"] = json!(rate);
    }
    if let Some(rate) = args.iam_write_rate {
        root["iam_write_rate"] = json!(rate);
    }
    let resp = http
        .post(format!("{}/v1/aws/config/root", server.url))
        .header("X-Vault-Token", TOKEN)
        .json(&root)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("config/root: {} {}", resp.status(), resp.text().await?);
    }
    server.stop();

    // The users the leases stand for, each with an inline policy and an access key, as keymint
    // makes them: a revocation has all of it to tear down.
    let t = Instant::now();
    let calls_before = moto.requests();
    create_users(&moto.url(), n).await?;
    let create_calls = moto.requests() - calls_before;
    eprintln!("created {n} users in moto in {:.1?} ({create_calls} calls)", t.elapsed());
    let create_rate = create_calls as f64 / t.elapsed().as_secs_f64();

    let store = open_store(&url).await?;
    let mount = aws_mount_id(&store).await?;
    // Due within one minute, starting 20 s from now (after keymint is back up).
    let start = chrono::Utc::now().timestamp_millis() + 20_000;
    let due = move |i: u64| start + (i * 60_000 / n.max(1)) as i64;
    seed(&store, &mount, 0, n, due).await?;

    let server = Server::start(bin, &url, &extra).await?;
    let calls_at_start = moto.requests();
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases").fetch_one(store.pool()).await?;
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{left} leases still not revoked after an hour");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let revoke_calls = moto.requests() - calls_at_start;

    // Each revocation is logged with its time: lateness = logged time − due time.
    let mut late = Vec::new();
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    for line in server.output_lines() {
        if !line.contains("expired lease revoked") {
            continue;
        }
        let Some((at, id)) = parse_revoked(&line) else { continue };
        let Some(i) = id.rsplit('/').next().and_then(|s| s.parse::<u64>().ok()) else { continue };
        late.push(at - due(i));
        first = first.min(at);
        last = last.max(at);
    }
    server.stop();
    if late.len() as u64 != n {
        bail!("found {} revocations in keymint's log, expected {n}", late.len());
    }
    late.sort_unstable();
    let pct = |p: f64| late[((late.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let span = (last - first).max(1) as f64 / 1000.0;
    let moto_rate = moto_call_rate(&moto.url()).await?;
    let per_revocation = revoke_calls as f64 / n as f64;

    println!("| measure | value |");
    println!("|---|---:|");
    println!("| leases due within one minute | {} |", thousands(n));
    let rate = |r: Option<u64>| r.map_or("keymint's default".to_owned(), |r| format!("{r}/s"));
    println!(
        "| keymint's `iam_read_rate` / `iam_write_rate` | {} / {} |",
        rate(args.iam_read_rate),
        rate(args.iam_write_rate)
    );
    println!("| lateness p50 / p90 / p99 | {:.1} s / {:.1} s / {:.1} s |", pct(0.5), pct(0.9), pct(0.99));
    println!("| lateness of the last revocation | {:.1} s |", pct(1.0));
    println!("| first to last revocation | {span:.1} s |");
    println!("| revocations per second | {:.1} |", n as f64 / span);
    println!("| AWS calls per revocation | {per_revocation:.1} |");
    println!("| AWS calls per second while revoking | {:.0} |", revoke_calls as f64 / span);
    println!("| moto's rate for one read call, 8 at a time | {moto_rate:.0} calls/s |");
    println!("| moto's rate while the bench created users (32 at a time) | {create_rate:.0} calls/s |");
    println!(
        "| revocations per second moto allows (read rate / calls per revocation) | {:.0} |",
        moto_rate / per_revocation
    );
    Ok(())
}

/// `2026-11-22T21:45:27.206167Z  INFO keymint_lease::manager: expired lease revoked lease.id=aws/creds/bench/…`
/// (ANSI colours stripped) → (unix ms, lease id).
fn parse_revoked(line: &str) -> Option<(i64, String)> {
    let plain = strip_ansi(line);
    let stamp = plain.split_whitespace().next()?;
    let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?.timestamp_millis();
    let id = plain.split_once("lease.id=")?.1.split_whitespace().next()?.to_owned();
    Some((at, id))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn iam_client(url: &str) -> aws_sdk_iam::Client {
    let creds = aws_credential_types::Credentials::new("bench", "bench", None, None, "keymint-bench");
    let config = aws_sdk_iam::Config::builder()
        .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
        .region(aws_sdk_iam::config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(creds)
        .build();
    aws_sdk_iam::Client::from_conf(config)
}

/// Creates users `bench-0..n` with an inline policy and an access key, 32 at a time.
async fn create_users(url: &str, n: u64) -> Result<()> {
    let iam = iam_client(url);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (iam, next) = (iam.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), anyhow::Error>(());
                }
                let name = user_name(i);
                iam.create_user().user_name(&name).path("/bench/").send().await?;
                iam.put_user_policy()
                    .user_name(&name)
                    .policy_name("bench")
                    .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
                    .send()
                    .await?;
                iam.create_access_key().user_name(&name).send().await?;
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

/// Calls per second moto serves for one cheap read (ListAccessKeys), 8 at a time: keymint's
/// revocation concurrency per replica.
async fn moto_call_rate(url: &str) -> Result<f64> {
    const CALLS: u64 = 4000;
    let iam = iam_client(url);
    iam.create_user().user_name("bench-rate").send().await?;
    let next = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (iam, next) = (iam.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < CALLS {
                iam.list_access_keys().user_name("bench-rate").send().await?;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(CALLS as f64 / t.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_log_line_gives_its_time_and_lease() {
        let line = "\u{1b}[2m2026-11-22T21:45:27.206167Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mkeymint_lease::manager\u{1b}[0m\u{1b}[2m:\u{1b}[0m expired lease revoked \u{1b}[3mlease.id\u{1b}[0m\u{1b}[2m=\u{1b}[0maws/creds/bench/000000000000000000000042";
        let (at, id) = parse_revoked(line).expect("parsed");
        assert_eq!(id, "aws/creds/bench/000000000000000000000042");
        assert_eq!(
            at,
            chrono::DateTime::parse_from_rfc3339("2026-11-22T21:45:27.206Z").unwrap().timestamp_millis()
        );
    }
}
