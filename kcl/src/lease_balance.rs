//! Load-aware balancing (KCL 3.x's variance-based lease assignment, with each
//! worker's load taken as the sum of its leases' `throughputKBps`;
//! docs/kcl3-coordination.md, "Balancing"): which held leases should move, and to whom.
//!
//! A rebalance happens only when some worker's load lies outside ± the threshold
//! (10 %) of the fleet average. Each worker at or above the upper limit (or else the
//! most loaded one) gives up leases worth 60 % (the dampening) of its excess over the
//! average, chosen so as not to exceed that amount; if none fits, its lightest lease.
//! Receivers are taken least loaded first, and a move that would lift its receiver
//! above the average is not made. Moves therefore never overshoot, and repeated runs
//! converge. Pure and deterministic: the same table gives the same plan on every worker.

use std::collections::{BTreeMap, BTreeSet};

use crate::lease::Lease;

/// The KCL 3.x balancing knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceConfig {
    /// `reBalanceThresholdPercentage` (default 10): how far from the average a worker's
    /// load may be before leases move.
    pub rebalance_threshold_percentage: u32,
    /// `dampeningPercentage` (default 60): the share of a worker's excess moved in one run.
    pub dampening_percentage: u32,
    /// `allowThroughputOvershoot` (default true): move a worker's lightest lease when no
    /// set of leases fits within the amount to move.
    pub allow_throughput_overshoot: bool,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            rebalance_threshold_percentage: 10,
            dampening_percentage: 60,
            allow_throughput_overshoot: true,
        }
    }
}

/// One lease to move from its owner to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// The lease as seen, owned by the worker giving it up.
    pub lease: Lease,
    /// The worker to receive it.
    pub to: String,
}

fn load_of(lease: &Lease) -> f64 {
    lease.throughput_kbps.unwrap_or(0.0).max(0.0)
}

/// Whether any lease in `leases` has a measured, positive throughput: without one the
/// loads say nothing and balancing falls back to lease counts.
pub fn has_measurements(leases: &[Lease]) -> bool {
    leases.iter().any(|l| load_of(l) > 0.0)
}

/// The moves that balance load among `workers`, given the live, owned leases of the
/// table. Leases being handed off and finished leases never move; leases owned by a
/// worker outside `workers` are ignored.
pub fn plan(leases: &[Lease], workers: &BTreeSet<String>, config: &BalanceConfig) -> Vec<Move> {
    if workers.len() < 2 {
        return Vec::new();
    }
    let mut held: BTreeMap<&str, Vec<&Lease>> =
        workers.iter().map(|w| (w.as_str(), Vec::new())).collect();
    for lease in leases {
        if let Some(owner) = lease.lease_owner.as_deref()
            && let Some(list) = held.get_mut(owner)
        {
            list.push(lease);
        }
    }
    let mut load: BTreeMap<&str, f64> = held
        .iter()
        .map(|(w, ls)| (*w, ls.iter().map(|l| load_of(l)).sum()))
        .collect();
    let total: f64 = load.values().sum();
    if total <= 0.0 {
        return Vec::new();
    }
    let average = total / workers.len() as f64;
    let threshold = f64::from(config.rebalance_threshold_percentage) / 100.0;
    let (upper, lower) = (average * (1.0 + threshold), average * (1.0 - threshold));
    if load.values().all(|&l| l <= upper && l >= lower) {
        return Vec::new();
    }
    let mut donors: Vec<&str> = load
        .iter()
        .filter(|(_, l)| **l >= upper)
        .map(|(w, _)| *w)
        .collect();
    if donors.is_empty() {
        // Someone is below the band while nobody is above it: the busiest gives.
        donors.extend(
            load.iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(w, _)| *w),
        );
    }
    // Largest excess first, as the KCL orders its donors.
    donors.sort_by(|a, b| load[b].total_cmp(&load[a]).then_with(|| a.cmp(b)));

    let dampening = f64::from(config.dampening_percentage) / 100.0;
    let mut moves = Vec::new();
    for donor in donors {
        let to_take = (load[donor] - average).max(0.0) * dampening;
        let mut movable: Vec<&Lease> = held[donor]
            .iter()
            .copied()
            .filter(|l| l.checkpoint_owner.is_none() && !l.checkpoint.is_shard_end())
            .collect();
        // Heaviest first among those that fit, so few leases move; ties by key.
        movable.sort_by(|a, b| {
            load_of(b)
                .total_cmp(&load_of(a))
                .then_with(|| a.lease_key.cmp(&b.lease_key))
        });
        let mut chosen = Vec::new();
        let mut remaining = to_take;
        for lease in &movable {
            if remaining - load_of(lease) > 0.0 {
                remaining -= load_of(lease);
                chosen.push(*lease);
            }
        }
        if chosen.is_empty()
            && config.allow_throughput_overshoot
            && let Some(lightest) = movable.last()
        {
            chosen.push(lightest);
        }
        for lease in chosen {
            let receiver = load
                .iter()
                .filter(|(w, _)| **w != donor)
                .min_by(|a, b| a.1.total_cmp(b.1).then_with(|| a.0.cmp(b.0)))
                .map(|(w, l)| (*w, *l));
            let Some((receiver, receiver_load)) = receiver else {
                break;
            };
            if receiver_load + load_of(lease) > average {
                // The least loaded cannot take it without going above the average.
                break;
            }
            *load.entry(receiver).or_default() += load_of(lease);
            *load.entry(donor).or_default() -= load_of(lease);
            moves.push(Move {
                lease: lease.clone(),
                to: receiver.to_string(),
            });
        }
    }
    moves
}

/// The moves that even out lease counts among `workers`, the rule while no lease carries
/// a measured throughput: the worker holding the most gives one lease (the first by key)
/// to the one holding the fewest, until no two differ by more than one. A lease being
/// handed off counts for its next owner and, like a finished one, never moves.
pub fn plan_by_count(leases: &[Lease], workers: &BTreeSet<String>) -> Vec<Move> {
    let mut held: BTreeMap<&str, (usize, Vec<&Lease>)> = workers
        .iter()
        .map(|w| (w.as_str(), (0, Vec::new())))
        .collect();
    for lease in leases {
        if let Some(owner) = lease.lease_owner.as_deref()
            && let Some((count, movable)) = held.get_mut(owner)
        {
            *count += 1;
            if lease.checkpoint_owner.is_none() && !lease.checkpoint.is_shard_end() {
                movable.push(lease);
            }
        }
    }
    for (_, movable) in held.values_mut() {
        // Last by key first, so pop() gives the first.
        movable.sort_by(|a, b| b.lease_key.cmp(&a.lease_key));
    }
    let mut moves = Vec::new();
    loop {
        let donor = held
            .iter()
            .filter(|(_, (_, movable))| !movable.is_empty())
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| b.0.cmp(a.0)))
            .map(|(w, (count, _))| (*w, *count));
        let receiver = held
            .iter()
            .min_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| a.0.cmp(b.0)))
            .map(|(w, (count, _))| (*w, *count));
        let (Some((donor, most)), Some((receiver, fewest))) = (donor, receiver) else {
            break;
        };
        if donor == receiver || most <= fewest + 1 {
            break;
        }
        let Some(lease) = held.get_mut(donor).and_then(|(count, movable)| {
            *count -= 1;
            movable.pop()
        }) else {
            break;
        };
        if let Some((count, _)) = held.get_mut(receiver) {
            *count += 1;
        }
        moves.push(Move {
            lease: lease.clone(),
            to: receiver.to_string(),
        });
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended_sequence::ExtendedSequenceNumber;

    fn lease(key: &str, owner: &str, kbps: f64) -> Lease {
        let mut l = Lease::new(key, ExtendedSequenceNumber::TrimHorizon);
        l.lease_owner = Some(owner.into());
        l.throughput_kbps = Some(kbps);
        l
    }

    fn workers(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    /// Apply `moves` to `table` as completed hand-offs would.
    fn apply(table: &mut [Lease], moves: &[Move]) {
        for m in moves {
            if let Some(l) = table.iter_mut().find(|l| l.lease_key == m.lease.lease_key) {
                l.lease_owner = Some(m.to.clone());
            }
        }
    }

    fn count(table: &[Lease], worker: &str) -> usize {
        table.iter().filter(|l| l.is_owned_by(worker)).count()
    }

    #[test]
    fn a_hot_shards_holder_ends_up_with_fewer_leases() {
        // 8 shards, shard 0 with ten times the others' traffic, all on w1; w2 joins.
        let mut table: Vec<Lease> = (0..8)
            .map(|i| lease(&format!("s{i}"), "w1", if i == 0 { 100.0 } else { 10.0 }))
            .collect();
        let ws = workers(&["w1", "w2"]);
        let mut runs = 0;
        loop {
            let moves = plan(&table, &ws, &BalanceConfig::default());
            if moves.is_empty() {
                break;
            }
            assert!(
                moves
                    .iter()
                    .all(|m| m.to == "w2" && m.lease.lease_key != "s0")
            );
            apply(&mut table, &moves);
            runs += 1;
            assert!(runs < 10, "converges");
        }
        assert_eq!(runs, 2, "5 leases, then 2");
        assert_eq!((count(&table, "w1"), count(&table, "w2")), (1, 7));
    }

    #[test]
    fn without_measurements_counts_are_evened_out() {
        let mut table: Vec<Lease> = (0..7).map(|i| lease(&format!("s{i}"), "w1", 0.0)).collect();
        table[6].checkpoint_owner = Some("w1".into());
        table[6].lease_owner = Some("w3".into());
        let ws = workers(&["w1", "w2", "w3"]);
        let moves = plan_by_count(&table, &ws);
        apply(&mut table, &moves);
        let counts: Vec<usize> = ["w1", "w2", "w3"]
            .iter()
            .map(|w| {
                table
                    .iter()
                    .filter(|l| l.lease_owner.as_deref() == Some(*w))
                    .count()
            })
            .collect();
        assert_eq!(counts, vec![3, 2, 2], "s6 counts for w3, its next owner");
        assert!(moves.iter().all(|m| m.lease.lease_key != "s6"));
        assert!(
            plan_by_count(&table, &ws).is_empty(),
            "a balanced table stays"
        );
    }

    #[test]
    fn loads_within_the_band_move_nothing() {
        let table = vec![
            lease("a", "w1", 10.0),
            lease("b", "w1", 10.0),
            lease("c", "w2", 10.5),
            lease("d", "w2", 10.0),
        ];
        assert!(plan(&table, &workers(&["w1", "w2"]), &BalanceConfig::default()).is_empty());
        assert!(plan(&table, &workers(&["w1"]), &BalanceConfig::default()).is_empty());
    }

    #[test]
    fn no_measurement_means_no_load_based_move() {
        let mut table = vec![lease("a", "w1", 0.0), lease("b", "w1", 0.0)];
        table[1].throughput_kbps = None;
        assert!(!has_measurements(&table));
        assert!(plan(&table, &workers(&["w1", "w2"]), &BalanceConfig::default()).is_empty());
        table[0].throughput_kbps = Some(0.5);
        assert!(has_measurements(&table));
    }

    #[test]
    fn with_nothing_fitting_the_lightest_lease_moves_unless_it_overshoots() {
        // w1: 12, w2: 6; average 9: 1.8 to move, no lease fits; the lightest (3) does not
        // lift w2 above the average, so it moves.
        let table = vec![
            lease("a", "w1", 4.0),
            lease("b", "w1", 5.0),
            lease("c", "w1", 3.0),
            lease("d", "w2", 6.0),
        ];
        let moves = plan(&table, &workers(&["w1", "w2"]), &BalanceConfig::default());
        assert_eq!(moves.len(), 1);
        assert_eq!(
            (moves[0].lease.lease_key.as_str(), moves[0].to.as_str()),
            ("c", "w2")
        );
        let strict = BalanceConfig {
            allow_throughput_overshoot: false,
            ..BalanceConfig::default()
        };
        assert!(plan(&table, &workers(&["w1", "w2"]), &strict).is_empty());
    }

    #[test]
    fn leases_being_handed_off_or_finished_stay_put() {
        let mut table = vec![
            lease("a", "w1", 50.0),
            lease("b", "w1", 5.0),
            lease("c", "w1", 5.0),
        ];
        table[1].checkpoint_owner = Some("w0".into());
        table[2].checkpoint = ExtendedSequenceNumber::ShardEnd;
        let moves = plan(&table, &workers(&["w1", "w2"]), &BalanceConfig::default());
        assert!(moves.iter().all(|m| m.lease.lease_key == "a"));
    }
}
