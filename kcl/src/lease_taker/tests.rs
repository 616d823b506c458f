use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease_renewer::LeaseRenewer;
use crate::lease_store::{InMemoryLeaseStore, LeaseStore};

const FAILOVER: u64 = 10_000;

fn lease(key: &str, owner: Option<&str>, counter: u64) -> Lease {
    let mut l = Lease::new(key, ExtendedSequenceNumber::TrimHorizon);
    l.lease_owner = owner.map(str::to_string);
    l.lease_counter = counter;
    l
}

/// `n` leases per `(owner, n)`, keys numbered in order, all at counter `counter`.
fn table(owners: &[(Option<&str>, usize)], counter: u64) -> Vec<Lease> {
    let mut out = Vec::new();
    for (owner, n) in owners {
        for _ in 0..*n {
            out.push(lease(&format!("shard-{:02}", out.len()), *owner, counter));
        }
    }
    out
}

fn taker(worker: &str, config: LeaseConfig) -> LeaseTaker<StdRng> {
    LeaseTaker::new(worker, config, StdRng::seed_from_u64(7))
}

fn bump(leases: &mut [Lease], owner: &str) {
    for l in leases.iter_mut().filter(|l| l.is_owned_by(owner)) {
        l.lease_counter += 1;
    }
}

fn owners(plan: &TakePlan) -> Vec<Option<String>> {
    plan.leases_to_take
        .iter()
        .map(|l| l.lease_owner.clone())
        .collect()
}

#[test]
fn empty_table_takes_nothing() {
    let plan = taker("w0", LeaseConfig::default()).plan(&[], 0);
    assert_eq!(plan, TakePlan::default());
}

#[test]
fn new_unowned_leases_are_taken_with_priority_ignoring_the_target() {
    // w1 is alive with 2 leases; 6 leases were just created.
    let scan = table(&[(Some("w1"), 2), (None, 6)], 0);
    let plan = taker("w0", LeaseConfig::default()).plan(&scan, 0);
    assert_eq!(plan.reason, TakeReason::VeryOld);
    assert_eq!(
        (plan.num_workers, plan.target, plan.very_old_leases),
        (2, 4, 6)
    );
    assert_eq!(plan.leases_to_take.len(), 6);
    assert!(owners(&plan).iter().all(Option::is_none));
}

#[test]
fn priority_take_obeys_max_leases_for_worker() {
    let config = LeaseConfig {
        max_leases_for_worker: 5,
        ..LeaseConfig::default()
    };
    let plan = taker("w0", config).plan(&table(&[(None, 8)], 0), 0);
    assert_eq!(plan.reason, TakeReason::VeryOld);
    assert_eq!(plan.leases_to_take.len(), 5);
    assert_eq!((plan.target, plan.lease_spillover), (5, 3));
}

#[test]
fn without_priority_new_leases_are_taken_up_to_the_target() {
    let config = LeaseConfig {
        enable_priority_lease_assignment: false,
        ..LeaseConfig::default()
    };
    let scan = table(&[(Some("w1"), 2), (None, 6)], 0);
    let plan = taker("w0", config).plan(&scan, 0);
    assert_eq!(plan.reason, TakeReason::Available);
    assert_eq!((plan.target, plan.needed, plan.expired_leases), (4, 4, 6));
    assert_eq!(plan.leases_to_take.len(), 4);
}

#[test]
fn a_dead_workers_leases_are_taken_after_failover_and_not_before() {
    let mut t = taker("w0", LeaseConfig::default());
    let mut scan = table(&[(Some("w0"), 4), (Some("w1"), 4)], 1);
    assert_eq!(t.plan(&scan, 0).leases_to_take, vec![], "balanced 4/4");

    // w0 keeps renewing; w1 has died and its counters stand still.
    for now in [3_308, 6_616, 9_924, FAILOVER] {
        bump(&mut scan, "w0");
        let plan = t.plan(&scan, now);
        assert!(
            plan.leases_to_take.is_empty(),
            "at {now} ms nothing of w1 is expired yet"
        );
        assert_eq!(t.is_available("shard-04", now), Some(false));
    }
    bump(&mut scan, "w0");
    let plan = t.plan(&scan, FAILOVER + 1);
    assert_eq!(plan.reason, TakeReason::Available);
    assert_eq!(
        (plan.num_workers, plan.target, plan.expired_leases),
        (1, 8, 4)
    );
    assert_eq!(plan.leases_to_take.len(), 4);
    assert!(owners(&plan).iter().all(|o| o.as_deref() == Some("w1")));
}

#[test]
fn a_renewal_seen_in_between_restarts_the_failover_clock() {
    let mut t = taker("w0", LeaseConfig::default());
    let mut scan = table(&[(Some("w0"), 1), (Some("w1"), 1)], 1);
    t.plan(&scan, 0);
    bump(&mut scan, "w1");
    bump(&mut scan, "w0");
    t.plan(&scan, 5_000);
    bump(&mut scan, "w0");
    assert!(t.plan(&scan, FAILOVER + 1).leases_to_take.is_empty());
    bump(&mut scan, "w0");
    assert_eq!(t.plan(&scan, 5_000 + FAILOVER + 1).leases_to_take.len(), 1);
}

#[test]
fn expired_leases_become_very_old_after_three_failovers() {
    let mut t = taker("w0", LeaseConfig::default());
    let mut scan = table(&[(Some("w0"), 1), (Some("w1"), 3)], 1);
    t.plan(&scan, 0);
    bump(&mut scan, "w0");
    let plan = t.plan(&scan, 3 * FAILOVER + 1);
    assert_eq!(plan.reason, TakeReason::VeryOld);
    assert_eq!((plan.very_old_leases, plan.leases_to_take.len()), (3, 3));
}

#[test]
fn stealing_takes_one_lease_per_run_by_default() {
    let scan = table(&[(Some("w0"), 8)], 1);
    let plan = taker("w1", LeaseConfig::default()).plan(&scan, 0);
    assert_eq!(plan.reason, TakeReason::Steal);
    assert_eq!((plan.num_workers, plan.target, plan.needed), (2, 4, 4));
    assert_eq!(owners(&plan), vec![Some("w0".to_string())]);
}

#[test]
fn stealing_is_bounded_by_max_leases_to_steal_at_one_time() {
    let scan = table(&[(Some("w0"), 8)], 1);
    let three = LeaseConfig {
        max_leases_to_steal_at_one_time: 3,
        ..LeaseConfig::default()
    };
    assert_eq!(taker("w1", three).plan(&scan, 0).leases_to_take.len(), 3);
    let six = LeaseConfig {
        max_leases_to_steal_at_one_time: 6,
        ..LeaseConfig::default()
    };
    assert_eq!(
        taker("w1", six).plan(&scan, 0).leases_to_take.len(),
        4,
        "never beyond the target"
    );
    let off = LeaseConfig {
        max_leases_to_steal_at_one_time: 0,
        ..LeaseConfig::default()
    };
    assert!(taker("w1", off).plan(&scan, 0).leases_to_take.is_empty());
}

#[test]
fn steals_from_the_most_loaded_worker() {
    let scan = table(&[(Some("w0"), 2), (Some("w1"), 5), (Some("w2"), 1)], 1);
    let plan = taker("w3", LeaseConfig::default()).plan(&scan, 0);
    assert_eq!(plan.target, 2);
    assert_eq!(owners(&plan), vec![Some("w1".to_string())]);
}

#[test]
fn steals_one_when_short_by_more_than_one_and_others_sit_at_target() {
    // 5 leases, 4 workers: target 2; w3 is 2 short while the busiest holds exactly 2.
    let scan = table(&[(Some("w0"), 2), (Some("w1"), 2), (Some("w2"), 1)], 1);
    let plan = taker("w3", LeaseConfig::default()).plan(&scan, 0);
    assert_eq!((plan.target, plan.needed), (2, 2));
    assert_eq!(plan.reason, TakeReason::Steal);
    assert_eq!(plan.leases_to_take.len(), 1);
}

#[test]
fn a_lease_being_handed_over_is_never_stolen_and_counts_for_its_next_owner() {
    // w0 holds 4, one of which it is handing to w2; w1 holds none.
    let mut scan = table(&[(Some("w0"), 3), (Some("w2"), 1)], 1);
    scan[3].checkpoint_owner = Some("w0".into());
    let mut t = taker("w1", LeaseConfig::default());
    let plan = t.plan(&scan, 0);
    assert_eq!(plan.reason, TakeReason::Steal);
    assert!(
        plan.leases_to_take
            .iter()
            .all(|l| l.checkpoint_owner.is_none() && l.lease_owner.as_deref() == Some("w0"))
    );
    assert_eq!(
        t.live_owners(0),
        BTreeMap::from([("w0".to_string(), 3), ("w2".to_string(), 1)])
    );
    // Only the marked lease is w0's to give: nothing left to steal from w2's side.
    let only_marked = {
        let mut l = lease("shard-00", Some("w2"), 1);
        l.checkpoint_owner = Some("w0".into());
        vec![
            l,
            lease("shard-01", Some("w2"), 1),
            lease("shard-02", Some("w2"), 1),
        ]
    };
    let plan = taker("w1", LeaseConfig::default()).plan(&only_marked, 0);
    assert!(
        plan.leases_to_take
            .iter()
            .all(|l| l.checkpoint_owner.is_none())
    );
}

#[test]
fn balanced_workers_take_nothing() {
    for (split, workers) in [
        (
            vec![(Some("w0"), 3), (Some("w1"), 3), (Some("w2"), 2)],
            ["w0", "w1", "w2"],
        ),
        (
            vec![(Some("w0"), 1), (Some("w1"), 1), (Some("w2"), 0)],
            ["w0", "w1", "w2"],
        ),
        (
            vec![(Some("w0"), 2), (Some("w1"), 1), (Some("w2"), 1)],
            ["w0", "w1", "w2"],
        ),
    ] {
        let mut scan = table(&split, 1);
        for w in workers {
            let mut t = taker(w, LeaseConfig::default());
            for round in 0..5u64 {
                for o in workers {
                    bump(&mut scan, o);
                }
                let plan = t.plan(&scan, round * 20_050);
                assert!(
                    plan.leases_to_take.is_empty(),
                    "{w} in {split:?} round {round}: {plan:?}"
                );
            }
        }
    }
}

#[test]
fn deleted_leases_are_forgotten() {
    let mut t = taker("w0", LeaseConfig::default());
    let scan = table(&[(Some("w0"), 2), (Some("w1"), 2)], 1);
    t.plan(&scan, 0);
    assert_eq!(t.plan(&scan[..3], 1).total_leases, 3);
    assert_eq!(t.is_available("shard-03", 1), None);
}

#[test]
fn a_recorded_take_counts_as_fresh_and_mine() {
    let mut t = taker("w0", LeaseConfig::default());
    let scan = table(&[(None, 2)], 0);
    let plan = t.plan(&scan, 0);
    for l in &plan.leases_to_take {
        t.record_taken(&lease(&l.lease_key, Some("w0"), 1), 0);
    }
    assert_eq!(t.is_available("shard-00", 0), Some(false));
    assert_eq!(t.worker_id(), "w0");
    assert_eq!(t.config(), &LeaseConfig::default());
}

/// A worker in the simulation: taker and renewer driven by simulated time.
struct Worker {
    id: String,
    taker: LeaseTaker<StdRng>,
    renewer: LeaseRenewer,
    next_renew: u64,
    next_take: u64,
    alive: bool,
}

/// Workers sharing one in-memory lease table, advanced event by event.
struct Sim {
    store: InMemoryLeaseStore,
    workers: Vec<Worker>,
    config: LeaseConfig,
    now: u64,
    /// `(time, worker, lease)` for every successful take.
    takes: Vec<(u64, String, String)>,
}

impl Sim {
    async fn new(workers: usize, leases: usize, seed: u64) -> Sim {
        let config = LeaseConfig::default();
        let store = InMemoryLeaseStore::new();
        for i in 0..leases {
            let l = Lease::new(
                format!("shardId-{i:012}"),
                ExtendedSequenceNumber::TrimHorizon,
            );
            assert!(store.create_if_absent(&l).await.expect("create"));
        }
        let renew = duration_millis(config.renewer_interval());
        let workers = (0..workers)
            .map(|i| {
                let id = format!("worker-{i}");
                let start = i as u64 * 997;
                Worker {
                    taker: LeaseTaker::new(
                        id.clone(),
                        config.clone(),
                        StdRng::seed_from_u64(seed + i as u64),
                    ),
                    renewer: LeaseRenewer::new(id.clone(), &config),
                    id,
                    next_renew: start + renew,
                    next_take: start,
                    alive: true,
                }
            })
            .collect();
        Sim {
            store,
            workers,
            config,
            now: 0,
            takes: Vec::new(),
        }
    }

    /// Process every renewer and taker run due up to `until`, in time order.
    async fn run_until(&mut self, until: u64) {
        let renew_every = duration_millis(self.config.renewer_interval());
        let take_every = duration_millis(self.config.taker_interval());
        loop {
            let next = self
                .workers
                .iter()
                .filter(|w| w.alive)
                .map(|w| w.next_renew.min(w.next_take))
                .min();
            let Some(t) = next.filter(|&t| t <= until) else {
                break;
            };
            self.now = t;
            for i in 0..self.workers.len() {
                if !self.workers[i].alive {
                    continue;
                }
                if self.workers[i].next_renew == t {
                    self.renew(i).await;
                    self.workers[i].next_renew += renew_every;
                }
                if self.workers[i].next_take == t {
                    self.take(i).await;
                    self.workers[i].next_take += take_every;
                }
            }
        }
        self.now = until;
    }

    async fn renew(&mut self, i: usize) {
        let now = self.now;
        let w = &mut self.workers[i];
        w.renewer.drop_expired(now);
        for l in w.renewer.leases_to_renew(now) {
            match self.store.renew(&l.lease_key, &w.id, l.lease_counter).await {
                Ok(renewed) => {
                    w.renewer.record_write(renewed, now);
                }
                Err(e) => {
                    assert!(e.is_lease_conflict(), "unexpected {e}");
                    assert!(w.renewer.record_renew_failure(&l.lease_key, &e).is_some());
                }
            }
        }
    }

    async fn take(&mut self, i: usize) {
        let now = self.now;
        let scan = self.store.list().await.expect("list");
        let w = &mut self.workers[i];
        let plan = w.taker.plan(&scan, now);
        for l in plan.leases_to_take {
            match self.store.take(&l.lease_key, &w.id, l.lease_counter).await {
                Ok(taken) => {
                    w.taker.record_taken(&taken, now);
                    w.renewer.add(taken, now);
                    self.takes.push((now, w.id.clone(), l.lease_key.clone()));
                }
                Err(Error::LeaseConflict { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }

    /// Lease keys per owner as stored.
    async fn assignment(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in self.store.list().await.expect("list") {
            let owner = l.lease_owner.unwrap_or_else(|| "<none>".into());
            out.entry(owner).or_default().push(l.lease_key);
        }
        out
    }

    async fn sorted_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self.assignment().await.values().map(Vec::len).collect();
        counts.sort_unstable();
        counts
    }

    /// Every live worker's renewer holds exactly what the table says it owns.
    async fn assert_renewers_agree_with_table(&self) {
        let assignment = self.assignment().await;
        for w in self.workers.iter().filter(|w| w.alive) {
            let held: Vec<String> = w
                .renewer
                .held_leases(self.now)
                .iter()
                .map(|l| l.lease_key.clone())
                .collect();
            assert_eq!(
                held,
                assignment.get(&w.id).cloned().unwrap_or_default(),
                "{}",
                w.id
            );
        }
    }
}

const ROUND: u64 = 20_050;

#[tokio::test]
async fn three_workers_converge_to_3_3_2_and_stay_put() {
    let mut sim = Sim::new(3, 8, 42).await;
    sim.run_until(5 * ROUND).await;
    // The first worker took every new lease with priority; the split came from stealing.
    assert_eq!(
        sim.takes
            .iter()
            .filter(|(t, w, _)| *t == 0 && w == "worker-0")
            .count(),
        8
    );
    assert_eq!(sim.sorted_counts().await, vec![2, 3, 3]);
    sim.assert_renewers_agree_with_table().await;

    let settled = sim.assignment().await;
    let takes_so_far = sim.takes.len();
    sim.run_until(20 * ROUND).await;
    assert_eq!(
        sim.takes.len(),
        takes_so_far,
        "no ping-pong once balanced: {:?}",
        &sim.takes[takes_so_far..]
    );
    assert_eq!(sim.assignment().await, settled);
    sim.assert_renewers_agree_with_table().await;
}

#[tokio::test]
async fn convergence_is_deterministic_for_a_seed() {
    let mut a = Sim::new(3, 8, 1234).await;
    let mut b = Sim::new(3, 8, 1234).await;
    a.run_until(10 * ROUND).await;
    b.run_until(10 * ROUND).await;
    assert_eq!(a.takes, b.takes);
    assert_eq!(a.assignment().await, b.assignment().await);
}

#[tokio::test]
async fn stealing_never_exceeds_one_lease_per_worker_per_run() {
    let mut sim = Sim::new(4, 13, 9).await;
    sim.run_until(15 * ROUND).await;
    let mut per_run: BTreeMap<(u64, &str), usize> = BTreeMap::new();
    // After the first (priority) run nothing is unowned, so later takes are steals.
    for (t, w, _) in sim.takes.iter().filter(|(t, _, _)| *t > 4 * 997) {
        *per_run.entry((*t, w.as_str())).or_default() += 1;
    }
    assert!(per_run.values().all(|&n| n == 1), "{per_run:?}");
    assert_eq!(sim.sorted_counts().await, vec![3, 3, 3, 4]);
}

#[tokio::test]
async fn a_dead_workers_leases_move_after_failover() {
    let mut sim = Sim::new(3, 8, 42).await;
    sim.run_until(5 * ROUND).await;
    let before = sim.assignment().await;
    let victim = sim.workers[2].id.clone();
    let orphans = before.get(&victim).cloned().unwrap_or_default();
    assert!(!orphans.is_empty());

    let died_at = sim.now;
    sim.workers[2].alive = false;
    let takes_before = sim.takes.len();
    sim.run_until(died_at + 4 * ROUND).await;

    let moved: Vec<_> = sim.takes[takes_before..]
        .iter()
        .filter(|(_, _, k)| orphans.contains(k))
        .collect();
    assert_eq!(
        moved.len(),
        orphans.len(),
        "every orphan is taken once: {moved:?}"
    );
    assert!(
        moved
            .iter()
            .all(|(t, w, _)| *t > died_at + FAILOVER && *w != victim)
    );
    assert_eq!(sim.sorted_counts().await, vec![4, 4]);
    sim.assert_renewers_agree_with_table().await;
}
