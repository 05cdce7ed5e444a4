//! `keymint-bench throughput`: N clients each sending credential requests back to back for a
//! fixed time, through keymint and with the same AWS calls made directly with the SDK (one
//! client shared by N tasks, as an application would), against the same upstream.
//!
//! Each point runs `--warmup-seconds` unmeasured, then `--seconds` measured: requests/s is
//! the requests that completed inside the window over its length, and the latencies are
//! theirs. Errors count over the whole run. The CPU time of keymint, the upstream and the
//! bench itself is read from /proc over the run, to tell who used the machine's cores.
//!
//! Between points, untimed, keymint's `iam_user` leases are revoked (through the expiry
//! worker) and, against moto, the direct client's users deleted.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use crate::direct::Direct;
use crate::setup::{Keymint, Upstream, UpstreamArgs, UpstreamKind, Workload};
use crate::stats::{Summary, cpu_time, fmt_ms, ms, stolen_time, summarize};
use crate::svg::{Figure, Panel, Scale, Series, Style};

#[derive(Args)]
pub struct ThroughputArgs {
    /// A keymint binary to measure, `LABEL=PATH` or `PATH`; repeat to compare builds.
    #[arg(long = "keymint", default_value = "target/release/keymint")]
    keymint: Vec<String>,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Concurrent clients to measure at, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "8,64,512")]
    clients: Vec<usize>,
    /// Measured seconds per point.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Unmeasured seconds before each point's window.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Times every point is measured, in turn; each point reports the round with the median
    /// requests/s and the range over all rounds.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Credential types to measure, comma-separated [default: sts against moto; sts,iam_user
    /// against the instant upstream].
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// The SVG plot to write [default: docs/bench/throughput-UPSTREAM.svg, e.g. throughput-moto.svg].
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// One point: a variant at a concurrency.
struct Row {
    workload: Workload,
    clients: usize,
    label: String,
    per_sec: f64,
    /// The lowest and highest requests/s over the rounds.
    range: (f64, f64),
    summary: Summary,
    errors: Vec<String>,
    /// keymint's CPU time per completed request, for keymint variants.
    keymint_cpu: Option<Duration>,
    /// keymint's resident memory at the end of the window, KiB.
    keymint_rss: Option<u64>,
    /// Cores in use over the run: keymint, the upstream, the bench, and the time the
    /// hypervisor gave to other machines (steal).
    cores: (f64, f64, f64, f64),
}

pub async fn run(mut args: ThroughputArgs) -> Result<()> {
    if args.workloads.is_empty() {
        args.workloads = match args.upstream.upstream {
            UpstreamKind::Moto => vec![Workload::Sts],
            UpstreamKind::Instant => vec![Workload::Sts, Workload::IamUser],
        };
    }
    let upstream = Upstream::start(&args.upstream).await?;
    let fixtures = upstream.fixtures().await?;
    let mut servers = Vec::new();
    for (index, spec) in args.keymint.iter().enumerate() {
        let postgres = args.upstream.postgres.as_deref();
        servers.push(Keymint::start(spec, index, postgres, &upstream.url(), &fixtures).await?);
    }
    let direct = Direct::new(&upstream.url(), &fixtures);
    let mut rounds = Vec::new();
    for round in 1..=args.rounds.max(1) {
        eprintln!("round {round} of {}", args.rounds.max(1));
        let mut rows = Vec::new();
        for &workload in &args.workloads {
            for &clients in &args.clients {
                rows.push(point(&args, &upstream, workload, clients, None, &direct).await?);
                for km in &servers {
                    rows.push(point(&args, &upstream, workload, clients, Some(km), &direct).await?);
                }
            }
        }
        rounds.push(rows);
    }
    let rows = median_rounds(rounds);
    if let Upstream::Instant(instant) = &upstream {
        eprintln!("instant upstream calls by action: {:?}", instant.calls().await?);
    }
    for km in servers {
        km.stop();
    }

    print_table(&args, &rows);
    let plot = args
        .plot
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("docs/bench/throughput-{}.svg", args.upstream.slug())));
    write_plot(&plot, &args, &rows)?;
    eprintln!("plot written to {}", plot.display());
    Ok(())
}

/// Measures one variant (`km`, or the direct client when `None`) at `clients`.
async fn point(
    args: &ThroughputArgs,
    upstream: &Upstream,
    workload: Workload,
    clients: usize,
    km: Option<&Keymint>,
    direct: &Direct,
) -> Result<Row> {
    let label = km.map_or_else(|| workload.direct_label().to_owned(), |k| k.label.clone());
    eprintln!("{} x{clients}: {label}…", workload.name());
    let (warmup, window) = (Duration::from_secs(args.warmup_seconds), Duration::from_secs(args.seconds));
    let pids = (km.map(|k| k.server.pid()), upstream.pid(), std::process::id());
    let (cpu_before, stolen_before) = (cpu_of(pids)?, stolen_time()?);
    let made = Arc::new(Mutex::new(Vec::new()));
    let load = match (km, workload) {
        (Some(km), _) => {
            let (http, url) = km.client_for(&workload.path());
            run_load(clients, warmup, window, move || {
                let (http, url) = (http.clone(), url.clone());
                async move { Keymint::issue(&http, &url).await }
            })
            .await
        }
        (None, Workload::Sts) => {
            let direct = direct.clone();
            run_load(clients, warmup, window, move || {
                let direct = direct.clone();
                async move { direct.assume_role().await }
            })
            .await
        }
        (None, Workload::IamUser) => {
            let (direct, made) = (direct.clone(), made.clone());
            run_load(clients, warmup, window, move || {
                let (direct, made) = (direct.clone(), made.clone());
                async move {
                    let user = direct.iam_user().await?;
                    made.lock().unwrap_or_else(|p| p.into_inner()).push(user);
                    Ok(())
                }
            })
            .await
        }
    };
    let (cpu_after, stolen_after) = (cpu_of(pids)?, stolen_time()?);
    let keymint_rss = pids.0.map(crate::memory_kib).transpose()?.map(|(rss, _)| rss);
    let wall = load.elapsed.as_secs_f64();
    let used = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => (b.saturating_sub(a)).as_secs_f64(),
        _ => 0.0,
    };
    let keymint_secs = used(cpu_before.0, cpu_after.0);
    let cores = (
        keymint_secs / wall,
        used(cpu_before.1, cpu_after.1) / wall,
        used(cpu_before.2, cpu_after.2) / wall,
        used(Some(stolen_before), Some(stolen_after)) / wall,
    );

    // Untimed: leave nothing behind for the next point.
    if workload == Workload::IamUser {
        match km {
            Some(km) => km.revoke_users_and_wait().await?,
            None if matches!(upstream, Upstream::Moto(_)) => {
                let users = std::mem::take(&mut *made.lock().unwrap_or_else(|p| p.into_inner()));
                direct.delete_users(users).await?;
            }
            None => {}
        }
    }
    let mut latencies = load.latencies;
    let per_sec = latencies.len() as f64 / window.as_secs_f64();
    let row = Row {
        workload,
        clients,
        label,
        per_sec,
        range: (per_sec, per_sec),
        summary: summarize(&mut latencies),
        errors: load.errors,
        keymint_cpu: km.map(|_| Duration::from_secs_f64(keymint_secs / load.completed.max(1) as f64)),
        keymint_rss,
        cores,
    };
    if let Some(first) = row.errors.first() {
        eprintln!("  {} errors; the first: {first}", row.errors.len());
    }
    Ok(row)
}

/// Each point's row from the round with the median requests/s, with the range and the errors
/// of every round. `rounds` each hold the same points in the same order.
fn median_rounds(rounds: Vec<Vec<Row>>) -> Vec<Row> {
    let mut by_point: Vec<Vec<Row>> = Vec::new();
    for rows in rounds {
        for (i, row) in rows.into_iter().enumerate() {
            match by_point.get_mut(i) {
                Some(runs) => runs.push(row),
                None => by_point.push(vec![row]),
            }
        }
    }
    by_point
        .into_iter()
        .filter_map(|mut runs| {
            runs.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
            let range = (runs.first()?.per_sec, runs.last()?.per_sec);
            let errors: Vec<String> = runs.iter().flat_map(|r| r.errors.iter().cloned()).collect();
            let mut median = runs.swap_remove(runs.len() / 2);
            median.range = range;
            median.errors = errors;
            Some(median)
        })
        .collect()
}

/// CPU time so far of (keymint, upstream, bench); keymint's is absent for a direct run.
fn cpu_of(pids: (Option<u32>, u32, u32)) -> Result<(Option<Duration>, Option<Duration>, Option<Duration>)> {
    Ok((pids.0.map(cpu_time).transpose()?, Some(cpu_time(pids.1)?), Some(cpu_time(pids.2)?)))
}

/// What a closed-loop run produced.
struct Load {
    /// Of the requests that completed inside the measured window.
    latencies: Vec<Duration>,
    /// Requests that succeeded over the whole run, warm-up and drain included.
    completed: usize,
    errors: Vec<String>,
    /// From the first request to the last answer.
    elapsed: Duration,
}

/// `clients` tasks, each calling `call` back to back until the window closes; the requests
/// still under way then are waited for.
async fn run_load<F, Fut>(clients: usize, warmup: Duration, window: Duration, call: F) -> Load
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let started = Instant::now();
    let (from, until) = (started + warmup, started + warmup + window);
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let (mut latencies, mut completed, mut errors) = (Vec::new(), 0, Vec::new());
                loop {
                    let t = Instant::now();
                    if t >= until {
                        break;
                    }
                    let outcome = call().await;
                    let done = Instant::now();
                    match outcome {
                        Ok(()) => {
                            completed += 1;
                            if done >= from && done <= until {
                                latencies.push(done - t);
                            }
                        }
                        Err(e) => errors.push(e),
                    }
                }
                (latencies, completed, errors)
            })
        })
        .collect();
    let mut load = Load { latencies: Vec::new(), completed: 0, errors: Vec::new(), elapsed: Duration::ZERO };
    for task in tasks {
        match task.await {
            Ok((latencies, completed, errors)) => {
                load.latencies.extend(latencies);
                load.completed += completed;
                load.errors.extend(errors);
            }
            Err(e) => load.errors.push(format!("client task failed: {e}")),
        }
    }
    load.elapsed = started.elapsed();
    load
}

fn print_table(args: &ThroughputArgs, rows: &[Row]) {
    println!(
        "{} s measured per point after {} s of warm-up; {} round(s), each point from the round with \
         the median requests/s (the range over the rounds in brackets); {}; keymint's \
         default pacing (no caps).",
        args.seconds,
        args.warmup_seconds,
        args.rounds.max(1),
        args.upstream.describe(),
    );
    println!();
    println!(
        "| credential | clients | variant | requests/s | p50 | p99 | errors | keymint CPU per request | keymint RSS | cores used: keymint / upstream / bench / stolen |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.0} ({:.0}–{:.0}) | {} | {} | {} | {} | {} | {:.2} / {:.2} / {:.2} / {:.2} |",
            r.workload.name(),
            r.clients,
            r.label,
            r.per_sec,
            r.range.0,
            r.range.1,
            fmt_ms(r.summary.p50),
            fmt_ms(r.summary.p99),
            r.errors.len(),
            r.keymint_cpu.map_or("—".to_owned(), fmt_ms),
            r.keymint_rss.map_or("—".to_owned(), |kib| format!("{:.1} MiB", kib as f64 / 1024.0)),
            r.cores.0,
            r.cores.1,
            r.cores.2,
            r.cores.3
        );
    }
}

fn write_plot(path: &Path, args: &ThroughputArgs, rows: &[Row]) -> Result<()> {
    let mut panels = Vec::new();
    for &workload in &args.workloads {
        let ours: Vec<&Row> = rows.iter().filter(|r| r.workload == workload).collect();
        let mut labels: Vec<&str> = Vec::new();
        for r in &ours {
            if !labels.contains(&r.label.as_str()) {
                labels.push(&r.label);
            }
        }
        // With `spread`, each point carries the range of requests/s over the rounds.
        let series = |value: &dyn Fn(&Row) -> f64, spread: bool| -> Vec<Series> {
            labels
                .iter()
                .map(|&label| {
                    let rows = || ours.iter().filter(|r| r.label == label);
                    Series {
                        label: label.to_owned(),
                        points: rows().map(|r| (r.clients as f64, value(r))).collect(),
                        spans: if spread && args.rounds > 1 {
                            rows().map(|r| (r.clients as f64, r.range.0, r.range.1)).collect()
                        } else {
                            Vec::new()
                        },
                    }
                })
                .collect()
        };
        let ticks: Vec<f64> = args.clients.iter().map(|&c| c as f64).collect();
        let panel = |title: String, y_label: &str, series: Vec<Series>| Panel {
            title,
            x_label: "concurrent clients".into(),
            y_label: y_label.into(),
            x_scale: Scale::Log,
            style: Style::Lines,
            x_ticks: Some(ticks.clone()),
            x_range: None,
            y_range: None,
            series,
        };
        panels.push(panel(
            match args.rounds {
                0 | 1 => format!("{}: requests per second", workload.name()),
                n => format!("{}: requests per second (bars: range over {n} rounds)", workload.name()),
            },
            "requests/s",
            series(&|r| r.per_sec, true),
        ));
        panels.push(panel(
            match args.rounds {
                0 | 1 => format!("{}: p99 latency", workload.name()),
                _ => format!("{}: p99 latency (of the median round)", workload.name()),
            },
            "p99 latency (ms)",
            series(&|r| ms(r.summary.p99), false),
        ));
    }
    let figure = Figure {
        title: format!(
            "Throughput against concurrency ({}, {} s per point, 2 vCPU shared by all)",
            args.upstream.describe(),
            args.seconds
        ),
        panels,
        columns: 2,
    };
    Ok(figure.save(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(clients: usize, per_sec: f64, errors: usize) -> Row {
        Row {
            workload: Workload::Sts,
            clients,
            label: "keymint".into(),
            per_sec,
            range: (per_sec, per_sec),
            summary: Summary::default(),
            errors: vec!["502".into(); errors],
            keymint_cpu: None,
            keymint_rss: None,
            cores: (0.0, 0.0, 0.0, 0.0),
        }
    }

    #[test]
    fn each_point_reports_its_median_round_the_range_and_every_error() {
        let rounds = vec![
            vec![row(8, 100.0, 0), row(64, 10.0, 1)],
            vec![row(8, 300.0, 0), row(64, 30.0, 0)],
            vec![row(8, 200.0, 2), row(64, 20.0, 0)],
        ];
        let rows = median_rounds(rounds);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].clients, rows[0].per_sec, rows[0].range), (8, 200.0, (100.0, 300.0)));
        assert_eq!(rows[0].errors.len(), 2);
        assert_eq!((rows[1].clients, rows[1].per_sec, rows[1].range), (64, 20.0, (10.0, 30.0)));
        assert_eq!(rows[1].errors.len(), 1, "an error of a round that is not the median still counts");
    }
}
