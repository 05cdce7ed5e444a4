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

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use process::{Moto, Server};

mod burst;
mod direct;
mod expiry;
mod instant;
mod issuance;
mod leases;
mod process;
mod setup;
mod startup;
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
    Startup(startup::StartupArgs),
    /// Revocation of many leases falling due within one minute, against moto.
    Expiry(expiry::ExpiryArgs),
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match cli.command {
        Cmd::Startup(args) => runtime()?.block_on(until_signal(startup::run(args))),
        Cmd::Expiry(args) => runtime()?.block_on(until_signal(expiry::run(args))),
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
    fn counts_print_short() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(100_000), "100k");
        assert_eq!(thousands(1_000_000), "1M");
        assert_eq!(thousands(12_345), "12345");
    }
}
