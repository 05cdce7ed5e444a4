//! The measurements behind docs/benchmarks.md, run against a real `keymint` binary (build it
//! with `cargo build --release -p keymint-cli` first: debug builds measure the wrong thing).
//!
//! - `keymint-bench startup`: time from process start to the first 200 from `sys/health`, and
//!   resident memory once started, with 0, 100k, 1M… active leases in the store.
//! - `keymint-bench expiry`: N leases (real IAM users in moto) falling due within one minute:
//!   how late each revocation is, revocations per second, and the AWS call rate moto allows.
//!
//! - `keymint-bench burst`: N concurrent `iam_user` requests against an account (moto behind
//!   the fault proxy) that throttles IAM writes above a rate: success rate and time to serve
//!   them all against the ideal.
//! - `keymint-bench issuance`: latency of one request at a time, STS and `iam_user`, through
//!   keymint and with the same AWS calls made directly with the SDK.
//! - `keymint-bench throughput`: requests per second and latency under 8, 64, 512 concurrent
//!   clients, keymint against the direct SDK, against moto or the instant upstream.
//!
//! Everything listens on 127.0.0.1; moto stands in for AWS, or the bench's own instant
//! upstream (`instant.rs`) when what is measured is keymint's own cost. `issuance` and
//! `throughput` write their plots (SVG, drawn by `svg.rs`) under docs/bench/.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use keymint_store::{KeySource, Store, StoreOptions};
use process::{Moto, Server};
use serde_json::json;

mod burst;
mod direct;
mod instant;
mod issuance;
mod process;
mod setup;
mod stats;
mod svg;
mod throughput;

/// The dev root token of every server the bench starts.
const TOKEN: &str = "bench";
/// The leases the bench writes are of this role, so they are easy to tell apart.
const ROLE: &str = "bench";

#[derive(Parser)]
#[command(about = "keymint's benchmarks (results in docs/benchmarks.md)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Startup time and memory against the number of active leases.
    Startup(StartupArgs),
    /// Revocation of many leases falling due within one minute, against moto.
    Expiry(ExpiryArgs),
    /// A burst of iam_user requests against an account that throttles IAM writes.
    Burst(burst::BurstArgs),
    /// Issuance latency, one request at a time: keymint against the same AWS calls made directly.
    Issuance(issuance::IssuanceArgs),
    /// Requests per second under concurrent clients: keymint against the direct SDK.
    Throughput(throughput::ThroughputArgs),
    /// The instant upstream on its own (the benchmarks start it themselves).
    #[command(hide = true)]
    InstantUpstream(instant::InstantArgs),
}

#[derive(Args)]
struct Common {
    /// The keymint binary to measure.
    #[arg(long, default_value = "target/release/keymint")]
    keymint: PathBuf,
    /// Storage URL (sqlite:///abs/path.db or postgres://…); a fresh SQLite file if absent.
    /// The bench writes leases into it: give it a throwaway database.
    #[arg(long)]
    storage: Option<String>,
}

#[derive(Args)]
struct StartupArgs {
    #[command(flatten)]
    common: Common,
    /// Lease counts to measure at, ascending, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,100000,1000000")]
    leases: Vec<u64>,
    /// Starts measured per lease count.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// The SVG plot to write [default: docs/bench/startup-sqlite.svg or startup-postgres.svg].
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// One lease count's start-up measurements.
struct StartupRow {
    leases: u64,
    /// Fastest, median and slowest start to ready.
    times: (Duration, Duration, Duration),
    /// Resident memory after start, MiB.
    rss_mib: f64,
}

#[derive(Args)]
struct ExpiryArgs {
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match cli.command {
        Cmd::Startup(args) => runtime()?.block_on(until_signal(startup(args))),
        Cmd::Expiry(args) => runtime()?.block_on(until_signal(expiry(args))),
        Cmd::Burst(args) => runtime()?.block_on(until_signal(burst::run(args))),
        Cmd::Issuance(args) => runtime()?.block_on(until_signal(issuance::run(args))),
        Cmd::Throughput(args) => runtime()?.block_on(until_signal(throughput::run(args))),
        // One thread: the stand-in for AWS takes as little of the machine as it can.
        Cmd::InstantUpstream(args) => {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(instant::run(args))
        }
    }
}

/// Runs a benchmark until it ends or SIGINT or SIGTERM arrives. On a signal the benchmark is
/// dropped where it stands, and with it the processes it started (moto, keymint servers, the
/// instant upstream), which would otherwise outlive it and load the machine.
async fn until_signal(bench: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        done = bench => done,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = term.recv() => bail!("terminated"),
    }
}

/// Storage for the run: the given URL, or a SQLite file in a directory that lives as long as
/// the returned guard.
fn storage(common: &Common) -> Result<(String, Option<tempfile::TempDir>)> {
    if let Some(url) = &common.storage {
        return Ok((url.clone(), None));
    }
    let dir = tempfile::Builder::new().prefix("keymint-bench-").tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("keymint.db").display());
    Ok((url, Some(dir)))
}

async fn startup(args: StartupArgs) -> Result<()> {
    let (url, _dir) = storage(&args.common)?;
    let bin = &args.common.keymint;
    // A first start creates the schema, the dev token and the aws/ mount.
    Server::start(bin, &url, &[]).await?.stop();
    let store = open_store(&url).await?;
    let mount = aws_mount_id(&store).await?;

    println!(
        "| active leases | startup (median of {}) | startup (max) | RSS after start | peak RSS | database size | per lease |",
        args.runs
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let empty = database_bytes(&store).await?;
    let mut rows = Vec::new();
    let mut seeded = 0;
    for &target in &args.leases {
        if target > seeded {
            let t = Instant::now();
            let now = chrono::Utc::now().timestamp_millis();
            // Due between tomorrow and a month from now: active, nothing for the worker to do.
            seed(&store, &mount, seeded, target, |i| now + 86_400_000 + (i as i64 % 2_592_000) * 1000)
                .await?;
            eprintln!("seeded {} leases in {:.1?}", target - seeded, t.elapsed());
            seeded = target;
        }
        let mut times = Vec::new();
        let (mut rss, mut hwm) = (0, 0);
        for _ in 0..args.runs {
            let server = Server::start(bin, &url, &[]).await?;
            times.push(server.ready_after);
            // Let the expiry worker and the sweeper do their first round.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let (r, h) = memory_kib(server.pid())?;
            rss = rss.max(r);
            hwm = hwm.max(h);
            server.stop();
        }
        times.sort();
        let slowest = *times.last().unwrap_or(&Duration::ZERO);
        rows.push(StartupRow {
            leases: target,
            times: (times[0], times[times.len() / 2], slowest),
            rss_mib: rss as f64 / 1024.0,
        });
        let size = database_bytes(&store).await?;
        let per_lease = match target {
            0 => "—".to_owned(),
            n => format!("{:.0} B", size.saturating_sub(empty) as f64 / n as f64),
        };
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.1} MiB | {:.1} MiB | {:.1} MiB | {per_lease} |",
            thousands(target),
            ms(times[times.len() / 2]),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            size as f64 / (1024.0 * 1024.0)
        );
    }
    let backend = match store.backend() {
        keymint_store::Backend::Sqlite => "sqlite",
        keymint_store::Backend::Postgres => "postgres",
    };
    let plot =
        args.plot.clone().unwrap_or_else(|| PathBuf::from(format!("docs/bench/startup-{backend}.svg")));
    write_startup_plot(&plot, backend, args.runs, &rows)?;
    eprintln!("plot written to {}", plot.display());
    Ok(())
}

/// Start-up time (median, with the range over the runs) and memory against the lease count.
fn write_startup_plot(path: &std::path::Path, backend: &str, runs: u32, rows: &[StartupRow]) -> Result<()> {
    use crate::svg::{Figure, Panel, Scale, Series, Style};
    let leases = |r: &StartupRow| r.leases as f64;
    let panel = |title: &str, y_label: &str, series: Series| Panel {
        title: title.to_owned(),
        x_label: "active leases".into(),
        y_label: y_label.to_owned(),
        x_scale: Scale::Linear,
        style: Style::Lines,
        x_ticks: None,
        x_range: None,
        y_range: None,
        series: vec![series],
    };
    let figure = Figure {
        title: format!("Start-up against active leases ({backend}, {runs} start(s) per count)"),
        panels: vec![
            panel(
                "time from spawn to ready (median; bars: fastest to slowest)",
                "milliseconds",
                Series {
                    label: "start to the first 200 from sys/health".into(),
                    points: rows.iter().map(|r| (leases(r), ms(r.times.1))).collect(),
                    spans: rows.iter().map(|r| (leases(r), ms(r.times.0), ms(r.times.2))).collect(),
                },
            ),
            panel(
                "resident memory 3 s after start",
                "MiB",
                Series {
                    label: "RSS".into(),
                    points: rows.iter().map(|r| (leases(r), r.rss_mib)).collect(),
                    spans: Vec::new(),
                },
            ),
        ],
        columns: 2,
    };
    Ok(figure.save(path)?)
}

async fn expiry(args: ExpiryArgs) -> Result<()> {
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
    for line in server.stderr_lines() {
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

async fn open_store(url: &str) -> Result<Store> {
    Store::open(&StoreOptions::new(url), KeySource::DevStored).await.context("opening the store")
}

/// The whole database's size in bytes, indexes included (on SQLite, as the connection sees it:
/// committed pages still in the WAL count).
async fn database_bytes(store: &Store) -> Result<u64> {
    let sql = match store.backend() {
        keymint_store::Backend::Sqlite => {
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
        }
        keymint_store::Backend::Postgres => "SELECT pg_database_size(current_database())",
    };
    let bytes: i64 = sqlx::query_scalar(sql).fetch_one(store.pool()).await?;
    Ok(u64::try_from(bytes).unwrap_or(0))
}

async fn aws_mount_id(store: &Store) -> Result<String> {
    let mount = keymint_store::mounts::get_by_path(store.pool(), "aws/").await?;
    Ok(mount.ok_or_else(|| anyhow!("no aws/ mount in the store"))?.id)
}

/// Inserts leases `from..to` of role [`ROLE`] on `mount`, lease `i` due at `due(i)`, for IAM
/// user `bench-<i>`, 500 rows a statement.
async fn seed(store: &Store, mount: &str, from: u64, to: u64, due: impl Fn(u64) -> i64) -> Result<()> {
    const ROWS: u64 = 500;
    const COLS: usize = 10;
    let issued = chrono::Utc::now().timestamp_millis() - 600_000;
    let mut i = from;
    while i < to {
        let end = (i + ROWS).min(to);
        let rows: Vec<String> = (0..(end - i) as usize)
            .map(|r| {
                let p: Vec<String> = (1..=COLS).map(|c| format!("${}", r * COLS + c)).collect();
                format!("({})", p.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO leases (id, mount_id, role_name, credential_type, issue_time, expire_time, \
             renewable, internal, orphan, state) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for k in i..end {
            query = query
                .bind(format!("aws/creds/{ROLE}/{k:024}"))
                .bind(mount.to_owned())
                .bind(ROLE)
                .bind("iam_user")
                .bind(issued)
                .bind(due(k))
                .bind(1_i64)
                .bind(json!({"username": user_name(k), "is_sts": false}).to_string())
                .bind(0_i64)
                .bind("active");
        }
        query.execute(store.pool()).await?;
        i = end;
    }
    Ok(())
}

fn user_name(i: u64) -> String {
    format!("bench-{i}")
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn thousands(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// (VmRSS, VmHWM) of a process, in KiB.
pub(crate) fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
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

    #[test]
    fn the_startup_plot_draws_time_with_its_range_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plots/startup.svg");
        let row = |leases, ms: u64, rss_mib| StartupRow {
            leases,
            times: (Duration::from_millis(ms - 2), Duration::from_millis(ms), Duration::from_millis(ms + 5)),
            rss_mib,
        };
        let rows = [row(0, 10, 14.0), row(100_000, 12, 15.0), row(1_000_000, 20, 16.0)];
        write_startup_plot(&path, "sqlite", 3, &rows).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("Start-up against active leases (sqlite, 3 start(s) per count)"));
        assert!(svg.contains("resident memory 3 s after start"));
        // Two lines, three range bars on the time panel only; a marker per point on each.
        assert_eq!(svg.matches("<path ").count(), 2 + 3);
        assert_eq!(svg.matches("<circle ").count(), 6);
    }

    #[test]
    fn counts_print_short() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(100_000), "100k");
        assert_eq!(thousands(1_000_000), "1M");
        assert_eq!(thousands(12_345), "12345");
    }
}
