//! Latency summaries, CPU time of processes, and the number formats of the tables.

use std::time::Duration;

use anyhow::{Context, Result};

/// Quantiles of a set of latencies.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Sorts `samples` and summarises them.
pub fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    Summary {
        p50: quantile(samples, 0.5),
        p95: quantile(samples, 0.95),
        p99: quantile(samples, 0.99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

/// The nearest-rank `q` quantile of sorted samples (zero when there are none).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (sorted.len() as f64 * q).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or_default()
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Milliseconds with the precision that matters at that size: `0.412 ms`, `3.41 ms`, `41.2 ms`,
/// `412 ms`.
pub fn fmt_ms(d: Duration) -> String {
    let v = ms(d);
    match v {
        v if v < 1.0 => format!("{v:.3} ms"),
        v if v < 10.0 => format!("{v:.2} ms"),
        v if v < 100.0 => format!("{v:.1} ms"),
        v => format!("{v:.0} ms"),
    }
}

/// `a` relative to `b`: `+0.41 ms`, `-3.2 ms`.
pub fn fmt_delta_ms(a: Duration, b: Duration) -> String {
    let d = ms(a) - ms(b);
    let sign = if d < 0.0 { "-" } else { "+" };
    let mag = fmt_ms(Duration::from_secs_f64(d.abs() / 1000.0));
    format!("{sign}{mag}")
}

/// Linux reports process CPU time in ticks of 1/USER_HZ s, and USER_HZ is 100 on every
/// architecture Linux supports today.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user + system) a process has used so far, summed over its threads.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_secs_f64(ticks as f64 / TICKS_PER_SEC))
}

/// CPU time the hypervisor gave to other machines (steal), summed over this machine's CPUs:
/// time the benchmark wanted the CPU and did not get it.
pub fn stolen_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_steal_ticks(&stat).map(|ticks| Duration::from_secs_f64(ticks as f64 / TICKS_PER_SEC))
}

/// The steal column (the 8th number) of `/proc/stat`'s `cpu` line.
fn parse_steal_ticks(stat: &str) -> Result<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu ")).context("no cpu line in /proc/stat")?;
    let steal = line.split_whitespace().nth(8).context("no steal column in /proc/stat")?;
    steal.parse().context("a non-numeric steal time")
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name in field 2
/// may hold spaces and parentheses, so fields are counted after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    let rest = stat.rsplit_once(')').context("no ')' in /proc/PID/stat")?.1;
    // `rest` starts at field 3 (state): utime is the 12th field from there, stime the 13th.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields.get(i).context("short /proc/PID/stat")?.parse().context("a non-numeric CPU time")
    };
    Ok(field(11)? + field(12)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_list(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut s = ms_list(&[5, 1, 4, 2, 3, 6, 7, 8, 9, 10]);
        let sum = summarize(&mut s);
        assert_eq!(sum.p50, Duration::from_millis(5));
        assert_eq!(sum.p95, Duration::from_millis(10));
        assert_eq!(sum.max, Duration::from_millis(10));
        assert_eq!(quantile(&ms_list(&[7]), 0.99), Duration::from_millis(7));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn milliseconds_print_with_useful_precision() {
        assert_eq!(fmt_ms(Duration::from_micros(412)), "0.412 ms");
        assert_eq!(fmt_ms(Duration::from_micros(3414)), "3.41 ms");
        assert_eq!(fmt_ms(Duration::from_micros(41_240)), "41.2 ms");
        assert_eq!(fmt_delta_ms(Duration::from_millis(3), Duration::from_millis(5)), "-2.00 ms");
        assert_eq!(fmt_delta_ms(Duration::from_micros(5400), Duration::from_millis(5)), "+0.400 ms");
    }

    #[test]
    fn cpu_ticks_are_read_past_an_odd_command_name() {
        let stat = "1234 (tokio (x) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat).unwrap(), 325);
        assert!(cpu_time(std::process::id()).is_ok());
    }

    #[test]
    fn steal_is_the_eighth_number_of_the_cpu_line() {
        let stat = "cpu  4597598 186882 763596 2145470 69259 0 27989 117534 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_steal_ticks(stat).unwrap(), 117_534);
        assert!(stolen_time().is_ok());
    }
}
