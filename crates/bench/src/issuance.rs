//! `keymint-bench issuance`: the latency of one credential request at a time, through keymint
//! and with the same AWS calls made directly with the SDK, against the same upstream.
//!
//! - STS: `GET aws/sts/ROLE` of an `assumed_role` role against one AssumeRole.
//! - iam_user: `GET aws/creds/ROLE` of a role with an inline policy, two managed policies, a
//!   group and tags, against CreateUser, AttachUserPolicy x2, PutUserPolicy, AddUserToGroup,
//!   TagUser and CreateAccessKey sent one after another.
//!
//! The variants (direct, then each keymint binary) take turns in chunks of requests, so a slow
//! drift of the upstream falls on all of them alike. Between chunks, untimed, keymint's
//! `iam_user` leases are revoked and the direct client's users deleted, so moto does not
//! grow. Results: Markdown tables on stdout and an ECDF plot in SVG.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use clap::Args;

use crate::direct::Direct;
use crate::setup::{Keymint, Upstream, UpstreamArgs, UpstreamKind, Workload};
use crate::stats::{Summary, fmt_delta_ms, fmt_ms, ms, summarize};
use crate::svg::{Figure, Panel, Scale, Series, Style, ecdf};

#[derive(Args)]
pub struct IssuanceArgs {
    /// A keymint binary to measure, `LABEL=PATH` or `PATH`; repeat to compare builds.
    #[arg(long = "keymint", default_value = "target/release/keymint")]
    keymint: Vec<String>,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Measured requests per variant and credential type.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Requests per variant and credential type before measuring, not counted.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Requests a variant makes in a row before the next variant's turn.
    #[arg(long, default_value_t = 20)]
    chunk: usize,
    /// The SVG plot to write [default: docs/bench/issuance-latency.svg against moto,
    /// issuance-latency-instant[-Nms].svg against the instant upstream, with `-postgres` added
    /// on PostgreSQL].
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Who sends the request.
enum Via<'a> {
    Direct,
    Keymint(&'a Keymint),
}

/// One variant's measured latencies, sorted.
struct Measured {
    label: String,
    samples: Vec<Duration>,
    summary: Summary,
}

pub async fn run(args: IssuanceArgs) -> Result<()> {
    let upstream = Upstream::start(&args.upstream).await?;
    let fixtures = upstream.fixtures().await?;
    let mut servers = Vec::new();
    for (index, spec) in args.keymint.iter().enumerate() {
        let postgres = args.upstream.postgres.as_deref();
        servers.push(Keymint::start(spec, index, postgres, &upstream.url(), &fixtures).await?);
    }
    let direct = Direct::new(&upstream.url(), &fixtures);
    let mut results = Vec::new();
    for workload in [Workload::Sts, Workload::IamUser] {
        let started = Instant::now();
        let measured = measure(workload, &args, &direct, &servers).await?;
        eprintln!("{} measured in {:.1?}", workload.name(), started.elapsed());
        results.push((workload, measured));
    }
    if let Upstream::Instant(instant) = &upstream {
        eprintln!("instant upstream calls by action: {:?}", instant.calls().await?);
    }
    for km in servers {
        km.stop();
    }

    println!(
        "{} requests per variant, one at a time, after {} unmeasured; {}.",
        args.requests,
        args.warmup,
        args.upstream.describe()
    );
    for (workload, measured) in &results {
        print_table(*workload, measured);
    }
    let plot = args.plot.clone().unwrap_or_else(|| {
        let suffix = match (args.upstream.upstream, &args.upstream.postgres) {
            (UpstreamKind::Moto, None) => String::new(),
            _ => format!("-{}", args.upstream.slug()),
        };
        PathBuf::from(format!("docs/bench/issuance-latency{suffix}.svg"))
    });
    write_plot(&plot, &args, &results)?;
    eprintln!("plot written to {}", plot.display());
    Ok(())
}

async fn measure(
    workload: Workload,
    args: &IssuanceArgs,
    direct: &Direct,
    servers: &[Keymint],
) -> Result<Vec<Measured>> {
    let variants: Vec<Via<'_>> =
        std::iter::once(Via::Direct).chain(servers.iter().map(Via::Keymint)).collect();
    let mut samples = vec![Vec::new(); variants.len()];
    let mut order: Vec<usize> = (0..variants.len()).collect();
    for via in &variants {
        chunk(workload, via, direct, args.warmup).await?;
    }
    while samples.iter().any(|s| s.len() < args.requests) {
        for &i in &order {
            let n = args.requests.saturating_sub(samples[i].len()).min(args.chunk.max(1));
            samples[i].extend(chunk(workload, &variants[i], direct, n).await?);
        }
        // Nobody always goes first (right after another variant's cleanup).
        order.rotate_left(1);
    }
    Ok(variants
        .iter()
        .zip(samples)
        .map(|(via, mut samples)| {
            let summary = summarize(&mut samples);
            Measured { label: label(via, workload), samples, summary }
        })
        .collect())
}

/// `n` requests in a row by `via`, timed one by one; then, untimed, what they made in IAM is
/// removed.
async fn chunk(workload: Workload, via: &Via<'_>, direct: &Direct, n: usize) -> Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(n);
    let mut made = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let outcome = match (via, workload) {
            (Via::Direct, Workload::Sts) => direct.assume_role().await,
            (Via::Direct, Workload::IamUser) => direct.iam_user().await.map(|user| made.push(user)),
            (Via::Keymint(km), _) => {
                let (http, url) = km.client_for(&workload.path());
                Keymint::issue(&http, &url).await
            }
        };
        took.push(t.elapsed());
        outcome.map_err(|e| anyhow!("{}: {}: {e}", label(via, workload), workload.name()))?;
    }
    match via {
        Via::Keymint(km) if workload == Workload::IamUser => km.revoke_users_now().await?,
        Via::Direct if !made.is_empty() => direct.delete_users(made).await?,
        _ => {}
    }
    Ok(took)
}

fn label(via: &Via<'_>, workload: Workload) -> String {
    match via {
        Via::Direct => workload.direct_label().to_owned(),
        Via::Keymint(km) => km.label.clone(),
    }
}

fn print_table(workload: Workload, measured: &[Measured]) {
    let Some(direct) = measured.first() else { return };
    println!();
    match workload {
        Workload::Sts => println!("STS: `GET /v1/{}` against AssumeRole sent directly", workload.path()),
        Workload::IamUser => {
            println!("iam_user: `GET /v1/{}` against the same 7 IAM calls in a row", workload.path())
        }
    }
    println!();
    println!("| variant | median | p95 | p99 | max | median vs direct | difference at the median |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for m in measured {
        let s = &m.summary;
        println!(
            "| {} | {} | {} | {} | {} | {:.2}x | {} |",
            m.label,
            fmt_ms(s.p50),
            fmt_ms(s.p95),
            fmt_ms(s.p99),
            fmt_ms(s.max),
            ms(s.p50) / ms(direct.summary.p50),
            if std::ptr::eq(m, direct) { "—".to_owned() } else { fmt_delta_ms(s.p50, direct.summary.p50) }
        );
    }
    println!();
    for m in &measured[1..] {
        let (added, ratio) =
            (ms(m.summary.p50) - ms(direct.summary.p50), ms(m.summary.p50) / ms(direct.summary.p50));
        match workload {
            Workload::Sts => println!(
                "- {}: adds {} at the median (goal: under 1 ms): {}",
                m.label,
                fmt_delta_ms(m.summary.p50, direct.summary.p50),
                if added < 1.0 { "met" } else { "missed" }
            ),
            Workload::IamUser => println!(
                "- {}: {ratio:.2}x the sequential client's median (goal: faster than it): {}",
                m.label,
                verdict(ratio)
            ),
        }
    }
}

/// Whether a median `ratio` times the direct client's is faster. Within 1% either way is a
/// tie: two runs of the same thing differ by that much.
fn verdict(ratio: f64) -> &'static str {
    match ratio {
        r if r < 0.99 => "met",
        r if r <= 1.01 => "missed (a tie)",
        _ => "missed",
    }
}

fn write_plot(path: &Path, args: &IssuanceArgs, results: &[(Workload, Vec<Measured>)]) -> Result<()> {
    let panels = results
        .iter()
        .map(|(workload, measured)| {
            // Up to the slowest p99, so the bodies of the distributions get the width; the
            // longest tails are in the tables.
            let right = measured.iter().map(|m| ms(m.summary.p99)).fold(0.0, f64::max) * 1.05;
            let series = measured
                .iter()
                .map(|m| Series {
                    label: format!(
                        "{}: median {}, p95 {}",
                        m.label,
                        fmt_ms(m.summary.p50),
                        fmt_ms(m.summary.p95)
                    ),
                    points: ecdf(&m.samples.iter().map(|&d| ms(d)).collect::<Vec<_>>()),
                    spans: Vec::new(),
                })
                .collect();
            Panel {
                title: format!("{}: GET /v1/{}", workload.name(), workload.path()),
                x_label: "latency (ms)".into(),
                y_label: "share of requests at or below".into(),
                x_scale: Scale::Linear,
                style: Style::Steps,
                x_ticks: None,
                x_range: Some((0.0, right)),
                y_range: Some((0.0, 1.0)),
                series,
            }
        })
        .collect();
    let figure = Figure {
        title: format!(
            "Issuance latency, one request at a time ({}, {} requests each)",
            args.upstream.describe(),
            args.requests
        ),
        panels,
        columns: 2,
    };
    Ok(figure.save(path)?)
}
