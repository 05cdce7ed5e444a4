//! `keymint-bench startup`: time from process start to the first 200 from `sys/health`, and
//! resident memory once started, against the number of active leases in the store.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use crate::leases::{aws_mount_id, database_bytes, open_store, seed};
use crate::process::Server;
use crate::stats::ms;
use crate::{Common, memory_kib, storage, thousands};

#[derive(Args)]
pub struct StartupArgs {
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

pub async fn run(args: StartupArgs) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
