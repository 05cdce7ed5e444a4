//! `keymint-bench burst`: N `iam_user` requests sent at once to a keymint whose AWS (moto
//! behind the fault proxy) throttles IAM writes above a rate, as an AWS account does. For each
//! of keymint's pacing rates asked for, it reports how many requests succeeded, how long
//! serving all of them took against the ideal (N users x IAM writes per user / AWS's rate),
//! the latency spread, how often AWS throttled, and the rate of IAM writes that reached AWS.
//!
//! With `--replicas N` (and `--postgres`), N keymint processes share one fresh PostgreSQL
//! database and the requests are spread over them in turn, as a load balancer would: the fleet
//! must keep to AWS's rate as one server does.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use keymint_tests::{FaultProxy, Outcome, is_iam_write};
use serde_json::{Value, json};

use crate::setup::PgDatabase;
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
    /// keymint processes sharing one database; the requests go to them in turn. More than one
    /// needs --postgres.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// A PostgreSQL server whose user may create databases, e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres: each run gets a fresh database of it
    /// (dropped after) instead of a SQLite file.
    #[arg(long)]
    postgres: Option<String>,
}

/// The window over which the peak rate of IAM writes reaching AWS is measured.
const PEAK_WINDOW: Duration = Duration::from_secs(5);

/// IAM writes keymint makes per user of the bench's role: CreateUser, PutUserPolicy,
/// CreateAccessKey.
const WRITES_PER_USER: f64 = 3.0;

pub async fn run(args: BurstArgs) -> Result<()> {
    if args.replicas == 0 {
        bail!("--replicas must be at least 1");
    }
    if args.replicas > 1 && args.postgres.is_none() {
        bail!("{} replicas share one database: give --postgres URL", args.replicas);
    }
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
    println!(
        "{} keymint {} on {}{}",
        args.replicas,
        if args.replicas == 1 { "server" } else { "replicas" },
        if args.postgres.is_some() { "PostgreSQL" } else { "SQLite" },
        if args.replicas > 1 { ", requests spread over them in turn" } else { "" },
    );
    println!();
    println!(
        "| keymint iam_write_rate | succeeded | failed | time to serve all | vs ideal | p50 | p99 | max | writes throttled by AWS | CreateUser calls reaching AWS | IAM writes reaching AWS, mean | after the first {w}s | busiest {w}s |",
        w = PEAK_WINDOW.as_secs()
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for rate in &args.rates {
        let row = one_run(&args, *rate).await?;
        println!(
            "| {} | {} | {} | {:.1} s | {:.2}x | {:.1} s | {:.1} s | {:.1} s | {} | {} | {:.1}/s | {:.1}/s | {:.1}/s |",
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
            row.write_rates.mean,
            row.write_rates.settled,
            row.write_rates.peak,
        );
        eprintln!(
            "  IAM writes reaching AWS in each of the first {} seconds (accepted+throttled): {}",
            row.first_seconds.len(),
            row.first_seconds.iter().map(|(a, t)| format!("{a}+{t}")).collect::<Vec<_>>().join(" ")
        );
        if let Some((count, seconds)) = row.exchanges {
            eprintln!(
                "  pacing exchanges with the fleet's database: {count} in all ({:.2} per request), \
                 {:.2} ms each on average",
                count / args.requests as f64,
                if count > 0.0 { seconds / count * 1000.0 } else { 0.0 },
            );
        }
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
    write_rates: WriteRates,
    /// IAM writes that reached AWS in each of the first seconds: (accepted, throttled).
    first_seconds: Vec<(usize, usize)>,
    /// The replicas' pacing exchanges with the database: how many, and the seconds they took.
    exchanges: Option<(f64, f64)>,
    failures: Vec<(u16, String)>,
}

/// The sum over `servers` of their pacing exchanges (count, seconds), read from their metrics;
/// `None` when none made any (SQLite).
async fn exchanges(http: &reqwest::Client, servers: &[Server]) -> Result<Option<(f64, f64)>> {
    let (mut count, mut seconds) = (0.0, 0.0);
    for server in servers {
        let text = http
            .get(format!("{}/v1/sys/metrics?format=prometheus", server.url))
            .header("X-Vault-Token", TOKEN)
            .send()
            .await?
            .text()
            .await?;
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        count += value("keymint_aws_pace_exchange_seconds_count");
        seconds += value("keymint_aws_pace_exchange_seconds_sum");
    }
    Ok((count > 0.0).then_some((count, seconds)))
}

/// IAM writes that reached AWS (accepted or throttled), per second.
#[derive(Debug, Default, PartialEq)]
struct WriteRates {
    /// From the first to the last.
    mean: f64,
    /// From [`PEAK_WINDOW`] after the first to the last: once the start's burst is over.
    settled: f64,
    /// In the busiest [`PEAK_WINDOW`].
    peak: f64,
}

/// The [`WriteRates`] of writes made at `times` (sorted).
fn write_rates(times: &[Instant]) -> WriteRates {
    let (Some(first), Some(last)) = (times.first(), times.last()) else { return WriteRates::default() };
    let per_second = |n: usize, from: Instant| {
        let span = last.duration_since(from).as_secs_f64();
        if span > 0.0 { n as f64 / span } else { 0.0 }
    };
    let mean = per_second(times.len(), *first);
    let later = times.iter().filter(|t| t.duration_since(*first) >= PEAK_WINDOW).count();
    let settled = per_second(later, *first + PEAK_WINDOW);
    let span = last.duration_since(*first).as_secs_f64();
    let mut peak = 0;
    let mut start = 0;
    for (end, t) in times.iter().enumerate() {
        while t.duration_since(times[start]) > PEAK_WINDOW {
            start += 1;
        }
        peak = peak.max(end + 1 - start);
    }
    let window = PEAK_WINDOW.as_secs_f64().min(span.max(f64::MIN_POSITIVE));
    WriteRates { mean, settled, peak: peak as f64 / window }
}

async fn one_run(args: &BurstArgs, rate: u64) -> Result<Row> {
    // A fresh database per run: what the fleet learned in one run must not pace the next.
    let (_db, (url, _dir)) = match &args.postgres {
        Some(admin) => {
            let (db, url) = PgDatabase::create(admin, &format!("keymint_bench_burst_{rate}")).await?;
            (Some(db), (url, None))
        }
        None => (None, storage(&args.common)?),
    };
    let moto = Moto::start(&args.moto_server).await?;
    let proxy = FaultProxy::start_for(moto.url()).await;
    let mut servers = Vec::with_capacity(args.replicas);
    for _ in 0..args.replicas {
        servers.push(Server::start(&args.common.keymint, &url, &[]).await?);
    }
    let server = &servers[0];
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
        .map(|i| {
            let to = &servers[i % servers.len()];
            let request = http.get(format!("{}/v1/aws/creds/burst", to.url)).header("X-Vault-Token", TOKEN);
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
    let mut writes: Vec<Instant> = calls.iter().filter(|c| is_iam_write(&c.action)).map(|c| c.at).collect();
    writes.sort();
    let write_rates = write_rates(&writes);
    let mut first_seconds = vec![(0, 0); 10];
    if let Some(first) = writes.first() {
        for c in calls.iter().filter(|c| is_iam_write(&c.action)) {
            let throttled = matches!(&c.outcome, Outcome::Injected(_, code) if code == "Throttling");
            if let Some(bin) = first_seconds.get_mut(c.at.duration_since(*first).as_secs() as usize) {
                if throttled { bin.1 += 1 } else { bin.0 += 1 }
            }
        }
    }
    let exchanges = exchanges(&http, &servers).await?;
    drop(servers);
    Ok(Row {
        ok: latencies.len(),
        failed: failures.len(),
        total,
        p50: pick(0.5),
        p99: pick(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        throttled,
        create_user_calls,
        write_rates,
        first_seconds,
        exchanges,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_rates_over_the_span_and_the_busiest_window() {
        let t0 = Instant::now();
        // 20 a second for 10 s, then 40 in the next second.
        let mut times: Vec<Instant> = (0..200).map(|i| t0 + Duration::from_millis(i * 50)).collect();
        times.extend((0..40).map(|i| t0 + Duration::from_secs(10) + Duration::from_millis(i * 25)));
        let rates = write_rates(&times);
        assert!((rates.mean - 240.0 / 10.975).abs() < 0.01, "{rates:?}");
        // From 5 s on: 100 at 20/s and the 40 of the last second, over 5.975 s.
        assert!((rates.settled - 140.0 / 5.975).abs() < 0.01, "{rates:?}");
        // The busiest 5 s: the last 4 s at 20/s and the 40 of the last second.
        assert!((rates.peak - 121.0 / 5.0).abs() < 0.5, "{rates:?}");
        assert_eq!(write_rates(&[]), WriteRates::default());
    }
}
