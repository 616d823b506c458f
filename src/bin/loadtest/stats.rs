//! What a run measures: shared counters, latency histograms and the broker's CPU and memory.

use hdrhistogram::Histogram;
use serde_json::json;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

/// A latency histogram in microseconds, overall and for the current second.
pub(crate) struct Latency {
    pub(crate) total: Histogram<u64>,
    pub(crate) interval: Histogram<u64>,
}

impl Latency {
    /// Empty histograms (1 µs to 10 minutes, 3 significant digits).
    pub(crate) fn new() -> Latency {
        Latency {
            total: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            interval: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        }
    }

    /// Adds a task's local histogram to both the overall and the current second's.
    pub(crate) fn merge(&mut self, h: &Histogram<u64>) {
        // Values beyond 10 minutes are clamped by saturating add; ignore the error.
        let _ = self.total.add(h);
        let _ = self.interval.add(h);
    }
}

/// A task-local latency histogram, merged into a [`Latency`] now and then.
pub(crate) fn local_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Shared counters of one run.
pub(crate) struct Stats {
    pub(crate) epoch: Instant,
    pub(crate) put_records: AtomicU64,
    pub(crate) put_bytes: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) delivered_bytes: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// kpl only: Kinesis records the shards accepted and throttled (retried inside kpl).
    pub(crate) kpl_entries_put: AtomicU64,
    pub(crate) kpl_entries_throttled: AtomicU64,
    /// kpl only: bytes of the Kinesis records accepted (data and partition keys).
    pub(crate) kpl_kinesis_bytes: AtomicU64,
    /// kpl only: user records each producer put, to compare producers sharing shards.
    pub(crate) kpl_per_producer: Mutex<Vec<u64>>,
    /// kpl only: bytes of the Kinesis records accepted per shard, for per-shard utilisation.
    pub(crate) kpl_shard_bytes: Mutex<std::collections::BTreeMap<String, u64>>,
    /// kpl only: each producer's metrics, read when the load window ends (before the
    /// producers drain what they still buffer).
    pub(crate) kpl_metrics: Mutex<Vec<kinesis_kpl::Metrics>>,
    pub(crate) put_latency: Mutex<Latency>,
    pub(crate) delivery_latency: Mutex<Latency>,
    pub(crate) stop_producing: AtomicBool,
    pub(crate) stop_consuming: AtomicBool,
}

impl Stats {
    /// Microseconds since the run started (the send time records carry).
    pub(crate) fn micros_since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// CPU seconds (user + system) and peak resident bytes of a process.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProcUsage {
    pub(crate) cpu_secs: f64,
    pub(crate) peak_rss_bytes: u64,
    pub(crate) rss_bytes: u64,
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status ("self" for this process).
pub(crate) fn proc_usage(pid: &str) -> Option<ProcUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line (11 and 12 after the name).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // /proc reports in USER_HZ, which the Linux ABI fixes at 100.
    let cpu_secs = (utime + stime) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    Some(ProcUsage {
        cpu_secs,
        peak_rss_bytes: kib("VmHWM:"),
        rss_bytes: kib("VmRSS:"),
    })
}

/// The summary percentiles of a histogram in ms (`null` when empty).
pub(crate) fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    if h.is_empty() {
        return serde_json::Value::Null;
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
        "max_ms": h.max() as f64 / 1000.0, "mean_ms": h.mean() / 1000.0,
    })
}

/// One quantile of a histogram in ms (NaN when empty).
pub(crate) fn q_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}
