//! Which leases a worker should take or steal: the KCL 2.x `DynamoDBLeaseTaker`
//! algorithm (docs/kcl-behaviour.md §4) as a pure state machine.
//!
//! Each taker run, the caller scans the lease table and passes the scan with the
//! current time to [`LeaseTaker::plan`]; it then tries `LeaseStore::take` on each
//! lease in [`TakePlan::leases_to_take`] with the counter seen in the scan (losing
//! that race just means not getting the lease), and reports successes with
//! [`LeaseTaker::record_taken`].
//!
//! Expiry is judged only from this worker's own observations: the local time at
//! which it last saw each lease's counter change. Clocks of other workers never
//! matter, so time is any monotonic millisecond count the caller chooses.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand::seq::SliceRandom;

use crate::lease::Lease;
use crate::lease_config::{LeaseConfig, duration_millis};

/// Why a [`TakePlan`] takes what it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TakeReason {
    /// Nothing to take.
    #[default]
    Nothing,
    /// Priority assignment of leases unrenewed for a very long time (or never).
    VeryOld,
    /// Unowned or expired leases, up to the target.
    Available,
    /// Leases stolen from the most loaded worker.
    Steal,
}

/// The outcome of one taker run, with the numbers KCL reports as `TakeLeases` metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TakePlan {
    /// The leases to take, as scanned: take each expecting its `lease_counter`.
    pub leases_to_take: Vec<Lease>,
    /// Which rule chose them.
    pub reason: TakeReason,
    /// `TotalLeases`: leases in the table.
    pub total_leases: usize,
    /// `NumWorkers`: distinct live owners, counting this worker.
    pub num_workers: usize,
    /// The per-worker target, `ceil(total / workers)` capped at `max_leases_for_worker`.
    pub target: usize,
    /// Unexpired leases this worker owns.
    pub my_leases: usize,
    /// `NeededLeases`: how far this worker is below the target.
    pub needed: usize,
    /// `ExpiredLeases`: leases available to take (unowned or expired).
    pub expired_leases: usize,
    /// `VeryOldLeases`: leases unrenewed for `very_old_lease_duration` (0 when priority is off).
    pub very_old_leases: usize,
    /// `LeaseSpillover`: how far the target exceeded `max_leases_for_worker`.
    pub lease_spillover: usize,
}

#[derive(Debug, Clone)]
struct Observed {
    lease: Lease,
    /// When this worker saw the counter change; `None` = never (never renewed).
    last_counter_change_ms: Option<u64>,
}

/// One worker's lease taker: its observations of the table and its random source.
#[derive(Debug, Clone)]
pub struct LeaseTaker<R> {
    worker_id: String,
    config: LeaseConfig,
    rng: R,
    observed: BTreeMap<String, Observed>,
}

impl<R: Rng> LeaseTaker<R> {
    /// A taker for `worker_id`; `rng` shuffles candidates so workers do not all contend for the same lease.
    pub fn new(worker_id: impl Into<String>, config: LeaseConfig, rng: R) -> Self {
        LeaseTaker {
            worker_id: worker_id.into(),
            config,
            rng,
            observed: BTreeMap::new(),
        }
    }

    /// The worker this taker takes for.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The configuration in use.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Whether the lease was expired (or unowned) as of the last scan, judged at `now_ms`.
    pub fn is_available(&self, lease_key: &str, now_ms: u64) -> Option<bool> {
        self.observed
            .get(lease_key)
            .map(|o| self.available(o, now_ms))
    }

    /// The other workers holding unexpired leases as of the last scan, with how many each
    /// holds (a lease being handed over counts for its next owner).
    pub fn live_owners(&self, now_ms: u64) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for o in self.observed.values() {
            if let Some(owner) = o.lease.lease_owner.as_deref()
                && owner != self.worker_id
                && !self.available(o, now_ms)
            {
                *counts.entry(owner.to_string()).or_default() += 1;
            }
        }
        counts
    }

    /// The workers named as owner of a lease that expired as of the last scan: they
    /// stopped renewing, so they are presumed dead.
    pub fn expired_owners(&self, now_ms: u64) -> BTreeSet<String> {
        self.observed
            .values()
            .filter(|o| self.available(o, now_ms))
            .filter_map(|o| o.lease.lease_owner.clone())
            .collect()
    }

    /// The unexpired, owned leases as of the last scan (this worker's included).
    pub fn live_leases(&self, now_ms: u64) -> Vec<Lease> {
        self.observed
            .values()
            .filter(|o| !self.available(o, now_ms))
            .map(|o| o.lease.clone())
            .collect()
    }

    /// One taker run: record the scan of the whole table at `now_ms`, then decide what to take.
    pub fn plan(&mut self, scanned: &[Lease], now_ms: u64) -> TakePlan {
        self.observe(scanned, now_ms);
        self.compute(now_ms)
    }

    /// Note a successful take at `now_ms`, so the lease counts as freshly renewed and ours.
    pub fn record_taken(&mut self, lease: &Lease, now_ms: u64) {
        self.observed.insert(
            lease.lease_key.clone(),
            Observed {
                lease: lease.clone(),
                last_counter_change_ms: Some(now_ms),
            },
        );
    }

    fn observe(&mut self, scanned: &[Lease], now_ms: u64) {
        let mut previous = std::mem::take(&mut self.observed);
        for lease in scanned {
            let last_counter_change_ms = match previous.remove(&lease.lease_key) {
                Some(old) if old.lease.lease_counter == lease.lease_counter => {
                    old.last_counter_change_ms
                }
                Some(_) => Some(now_ms),
                // First sight: an owned lease counts as just renewed, an unowned one as never.
                None if lease.lease_owner.is_some() => Some(now_ms),
                None => None,
            };
            self.observed.insert(
                lease.lease_key.clone(),
                Observed {
                    lease: lease.clone(),
                    last_counter_change_ms,
                },
            );
        }
        // Leases missing from the scan were deleted; `previous` drops them.
    }

    fn compute(&mut self, now_ms: u64) -> TakePlan {
        let total = self.observed.len();
        let mut plan = TakePlan {
            total_leases: total,
            ..TakePlan::default()
        };
        if total == 0 {
            return plan;
        }

        let mut available = Vec::new();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        counts.insert(self.worker_id.as_str(), 0);
        for o in self.observed.values() {
            if self.available(o, now_ms) {
                available.push(o);
            } else if let Some(owner) = o.lease.lease_owner.as_deref() {
                *counts.entry(owner).or_default() += 1;
            }
        }
        let my_count = counts.get(self.worker_id.as_str()).copied().unwrap_or(0);
        let num_workers = counts.len();
        let uncapped = if num_workers >= total {
            1
        } else {
            total.div_ceil(num_workers)
        };
        let max = self.config.max_leases_for_worker;
        let target = uncapped.min(max);
        plan.num_workers = num_workers;
        plan.target = target;
        plan.my_leases = my_count;
        plan.needed = target.saturating_sub(my_count);
        plan.expired_leases = available.len();
        plan.lease_spillover = uncapped.saturating_sub(max);

        if self.config.enable_priority_lease_assignment {
            let very_old_ms = duration_millis(self.config.very_old_lease_duration());
            let mut very_old: Vec<&Observed> = self
                .observed
                .values()
                .filter(|o| {
                    o.last_counter_change_ms
                        .is_none_or(|t| now_ms.saturating_sub(t) > very_old_ms)
                })
                .collect();
            plan.very_old_leases = very_old.len();
            if !very_old.is_empty() {
                // Very old leases are taken ignoring the target, to drain them fast.
                very_old.shuffle(&mut self.rng);
                let n = max.saturating_sub(my_count).min(very_old.len());
                plan.leases_to_take = very_old[..n].iter().map(|o| o.lease.clone()).collect();
                plan.reason = TakeReason::VeryOld;
                return plan;
            }
        }

        if plan.needed == 0 {
            return plan;
        }

        if !available.is_empty() {
            available.shuffle(&mut self.rng);
            let n = plan.needed.min(available.len());
            plan.leases_to_take = available[..n].iter().map(|o| o.lease.clone()).collect();
            plan.reason = TakeReason::Available;
            return plan;
        }

        // Steal from the most loaded worker; ties go to the first by id, so runs are reproducible.
        let mut most_loaded: Option<(&str, usize)> = None;
        for (&owner, &count) in &counts {
            if owner != self.worker_id && most_loaded.is_none_or(|(_, best)| count > best) {
                most_loaded = Some((owner, count));
            }
        }
        let Some((victim, victim_count)) = most_loaded else {
            return plan;
        };
        if victim_count < target {
            return plan;
        }
        let mut n = plan.needed.min(victim_count - target);
        if plan.needed > 1 && n == 0 {
            // Everyone else is at target but we are more than one short: the
            // target's rounding left no slack, so take one anyway to make progress.
            n = 1;
        }
        n = n.min(self.config.max_leases_to_steal_at_one_time);
        if n == 0 {
            return plan;
        }
        let mut candidates: Vec<&Observed> = self
            .observed
            .values()
            // A lease already being handed over is not the victim's to give.
            .filter(|o| o.lease.lease_owner.as_deref() == Some(victim))
            .filter(|o| o.lease.checkpoint_owner.is_none())
            .collect();
        candidates.shuffle(&mut self.rng);
        candidates.truncate(n);
        plan.leases_to_take = candidates.into_iter().map(|o| o.lease.clone()).collect();
        plan.reason = TakeReason::Steal;
        plan
    }

    fn available(&self, o: &Observed, now_ms: u64) -> bool {
        let failover_ms = self.config.failover_millis();
        o.lease.lease_owner.is_none()
            || o.last_counter_change_ms
                .is_none_or(|t| now_ms.saturating_sub(t) > failover_ms)
    }
}

#[cfg(test)]
mod tests;
