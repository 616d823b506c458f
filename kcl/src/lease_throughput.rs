//! Per-lease throughput as the KCL 3.x measures it for `throughputKBps`
//! (docs/kcl3-coordination.md, "Throughput"): the bytes delivered to the processor
//! in the last renewer interval, in KiB per second, smoothed by an exponential moving
//! average (α = 0.5) and rounded to 6 decimals, computed at each renewal.
//!
//! Pure: time is milliseconds from any monotonic origin the caller chooses.

use std::collections::{BTreeMap, VecDeque};

/// Weight of the newest interval in the moving average (KCL `LeaseStatsRecorder`).
pub const ALPHA: f64 = 0.5;

#[derive(Debug, Clone, Default)]
struct PerLease {
    /// (when, bytes) of each delivery not yet older than one window.
    deliveries: VecDeque<(u64, u64)>,
    average: Option<f64>,
}

/// The delivered bytes of every lease a worker holds, and their smoothed rates.
#[derive(Debug, Clone)]
pub struct LeaseThroughput {
    window_ms: u64,
    leases: BTreeMap<String, PerLease>,
}

impl LeaseThroughput {
    /// Rates over windows of `window_ms` (the renewer interval); a zero window counts as 1 ms.
    pub fn new(window_ms: u64) -> Self {
        LeaseThroughput {
            window_ms: window_ms.max(1),
            leases: BTreeMap::new(),
        }
    }

    /// Note `bytes` delivered for `lease_key` at `now_ms`.
    pub fn record(&mut self, lease_key: &str, bytes: u64, now_ms: u64) {
        self.leases
            .entry(lease_key.to_string())
            .or_default()
            .deliveries
            .push_back((now_ms, bytes));
    }

    /// The smoothed rate of `lease_key` in KiB/s, updated with the window ending at
    /// `now_ms`; `None` if nothing was ever delivered for it. Call once per renewal.
    pub fn kbps(&mut self, lease_key: &str, now_ms: u64) -> Option<f64> {
        let window_ms = self.window_ms;
        let per = self.leases.get_mut(lease_key)?;
        while per
            .deliveries
            .front()
            .is_some_and(|(at, _)| now_ms.saturating_sub(*at) >= window_ms)
        {
            per.deliveries.pop_front();
        }
        let bytes: u64 = per
            .deliveries
            .iter()
            .filter(|(at, _)| *at <= now_ms)
            .map(|(_, b)| *b)
            .sum();
        // Precision loss only beyond 2^53 bytes in one window.
        let rate = bytes as f64 / 1024.0 / (window_ms as f64 / 1000.0);
        let average = match per.average {
            None => rate,
            Some(previous) => ALPHA * rate + (1.0 - ALPHA) * previous,
        };
        per.average = Some(average);
        Some((average * 1e6).round() / 1e6)
    }

    /// Forget a lease that left this worker.
    pub fn forget(&mut self, lease_key: &str) {
        self.leases.remove(lease_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_the_last_windows_bytes_per_second_in_kib() {
        let mut t = LeaseThroughput::new(2_000);
        assert_eq!(t.kbps("a", 0), None, "never delivered");
        t.record("a", 4_096, 100);
        t.record("a", 4_096, 1_500);
        // 8 KiB over a 2 s window.
        assert_eq!(t.kbps("a", 2_000), Some(4.0));
    }

    #[test]
    fn the_average_halves_towards_each_new_window() {
        let mut t = LeaseThroughput::new(1_000);
        t.record("a", 10_240, 0);
        assert_eq!(t.kbps("a", 500), Some(10.0));
        // Nothing in the next window: half of the previous value.
        assert_eq!(t.kbps("a", 1_500), Some(5.0));
        assert_eq!(t.kbps("a", 2_500), Some(2.5));
        t.record("a", 1_024 * 7, 2_600);
        assert_eq!(t.kbps("a", 3_000), Some(4.75));
    }

    #[test]
    fn rates_are_rounded_to_six_decimals_and_leases_are_separate() {
        let mut t = LeaseThroughput::new(3_000);
        t.record("a", 1, 0);
        t.record("b", 3_072, 0);
        assert_eq!(t.kbps("a", 1), Some(0.000326));
        assert_eq!(t.kbps("b", 1), Some(1.0));
        t.forget("a");
        assert_eq!(t.kbps("a", 2), None);
    }
}
