//! The worker-metrics item each KCL 3.x worker writes periodically to the
//! `<application>-WorkerMetricStats` table (docs/kcl3-coordination.md, "Worker
//! metrics"), and which workers the leader counts as alive from them.
//!
//! kcl measures no CPU or memory: it writes empty `sts` and `opr` maps, which the KCL
//! reads as "balance this worker by the throughput of its leases", the rule kcl's
//! own leader applies.

use std::collections::{BTreeMap, BTreeSet};

/// One worker's metrics item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkerMetricStats {
    /// `wid` (the table's key): the worker id.
    pub worker_id: String,
    /// `lut`: when the item was written, seconds since the epoch.
    pub last_update_time: u64,
    /// `sts`: recent values of each measured resource, by short name (`C` for CPU…).
    pub metric_stats: BTreeMap<String, Vec<f64>>,
    /// `opr`: each resource's operating range (its maximum utilisation).
    pub operating_range: BTreeMap<String, Vec<u64>>,
}

impl WorkerMetricStats {
    /// The item kcl writes for `worker_id` at `now_epoch_s`: no resource metrics.
    pub fn throughput_only(worker_id: &str, now_epoch_s: u64) -> Self {
        WorkerMetricStats {
            worker_id: worker_id.to_string(),
            last_update_time: now_epoch_s,
            ..WorkerMetricStats::default()
        }
    }
}

/// The workers whose item is fresh at `now_epoch_s`: written within `expiry_s` (the
/// KCL uses twice the reporter interval), so a worker holding no lease yet counts too.
pub fn live_workers(
    stats: &[WorkerMetricStats],
    now_epoch_s: u64,
    expiry_s: u64,
) -> BTreeSet<String> {
    stats
        .iter()
        .filter(|s| s.last_update_time.saturating_add(expiry_s) >= now_epoch_s)
        .map(|s| s.worker_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_items_are_dead_workers() {
        let stats = vec![
            WorkerMetricStats::throughput_only("a", 1_000),
            WorkerMetricStats::throughput_only("b", 939),
            WorkerMetricStats::throughput_only("c", 940),
        ];
        let live: Vec<String> = live_workers(&stats, 1_000, 60).into_iter().collect();
        assert_eq!(live, vec!["a".to_string(), "c".to_string()]);
    }
}
