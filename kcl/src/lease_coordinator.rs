//! The running side of lease management (KCL `DynamoDBLeaseCoordinator`): drives
//! the pure [`LeaseTaker`], [`LeaseRenewer`] and [`LeaseHandoff`] against a
//! [`LeaseStore`] and is the single path for this worker's fenced writes.
//!
//! With [`Coordination::Kcl3`] a steal is a graceful hand-off request instead of a
//! take, and once leases carry throughput measurements it balances load, not lease
//! counts (docs/kcl3-coordination.md).
//!
//! Every write to a lease is conditional on the counter of the last write, so a
//! worker's own writes to one lease (renewal, checkpoint, child shards, release)
//! must not overlap or they would fence each other out: each lease has an async
//! write lock, and the counter to expect is read from the renewer inside it.

mod leadership;
mod release;
mod renewal;
mod taking;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use tokio::sync::Notify;

use crate::checkpoint::CheckpointUpdate;
use crate::config::Coordination;
use crate::error::Error;
use crate::leader_lock::LeaderLock;
use crate::lease::Lease;
use crate::lease_config::{LeaseConfig, duration_millis};
use crate::lease_handoff::LeaseHandoff;
use crate::lease_renewer::LeaseRenewer;
use crate::lease_store::LeaseStore;
use crate::lease_taker::LeaseTaker;
use crate::lease_throughput::LeaseThroughput;
use crate::metrics::Metrics;

/// This worker's leases and the lease-table writes it makes.
pub(crate) struct LeaseCoordinator {
    store: Arc<dyn LeaseStore>,
    worker_id: String,
    config: LeaseConfig,
    origin: Instant,
    renewer: Mutex<LeaseRenewer>,
    taker: Mutex<LeaseTaker<StdRng>>,
    handoff: Mutex<LeaseHandoff>,
    throughput: Mutex<LeaseThroughput>,
    leader: Mutex<LeaderLock>,
    /// When this worker last wrote its worker-metrics item.
    metrics_reported_ms: Mutex<Option<u64>>,
    /// As leader: workers seen letting a lease expire, with their metrics item's `lut`
    /// then; they count as dead until they write a newer item.
    presumed_dead: Mutex<BTreeMap<String, u64>>,
    coordination: Coordination,
    write_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Signalled whenever the set of held leases changes.
    changed: Notify,
    metrics: Metrics,
}

impl LeaseCoordinator {
    /// A coordinator for `worker_id` holding no leases yet.
    pub(crate) fn new(
        store: Arc<dyn LeaseStore>,
        worker_id: &str,
        config: LeaseConfig,
        coordination: Coordination,
        metrics: Metrics,
    ) -> Self {
        LeaseCoordinator {
            store,
            worker_id: worker_id.to_string(),
            renewer: Mutex::new(LeaseRenewer::new(worker_id, &config)),
            taker: Mutex::new(LeaseTaker::new(worker_id, config.clone(), rand::make_rng())),
            handoff: Mutex::new(LeaseHandoff::new(
                worker_id,
                duration_millis(config.effective_handoff_timeout()),
            )),
            throughput: Mutex::new(LeaseThroughput::new(duration_millis(
                config.renewer_interval(),
            ))),
            leader: Mutex::new(LeaderLock::new(
                worker_id,
                duration_millis(config.leader_lease_duration),
                duration_millis(config.leader_heartbeat_period),
            )),
            metrics_reported_ms: Mutex::new(None),
            presumed_dead: Mutex::new(BTreeMap::new()),
            coordination,
            config,
            origin: Instant::now(),
            write_locks: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            metrics,
        }
    }

    /// The lease table.
    pub(crate) fn store(&self) -> &Arc<dyn LeaseStore> {
        &self.store
    }

    /// Milliseconds since the coordinator started: the clock of the pure lease logic.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Resolves the next time the held set changes (taken, lost, released).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    fn signal_change(&self) {
        self.metrics.leases_held.set(
            i64::try_from(self.renewer.lock().held_leases(self.now_ms()).len()).unwrap_or(i64::MAX),
        );
        // One waiter (the dispatcher); a stored permit covers a change made while it was busy.
        self.changed.notify_one();
    }

    /// The keys of the leases this worker may process now.
    pub(crate) fn held_lease_keys(&self) -> Vec<String> {
        let now = self.now_ms();
        self.renewer
            .lock()
            .held_leases(now)
            .into_iter()
            .map(|l| l.lease_key.clone())
            .collect()
    }

    /// The held lease `key` as last written, if this worker still holds it.
    pub(crate) fn held_lease(&self, key: &str) -> Option<Lease> {
        let now = self.now_ms();
        self.renewer.lock().get(key, now).cloned()
    }

    fn write_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(
            self.write_locks
                .lock()
                .entry(key.to_string())
                .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(()))),
        )
    }

    /// The held leases this worker is asked to hand off.
    pub(crate) fn handoff_keys(&self) -> BTreeSet<String> {
        self.handoff
            .lock()
            .outgoing()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// Note `bytes` of records delivered to the processor of lease `key`.
    pub(crate) fn record_delivery(&self, key: &str, bytes: u64) {
        let now = self.now_ms();
        self.throughput.lock().record(key, bytes, now);
    }

    /// Start measuring a lease this worker has just come to hold (taken, claimed) from the
    /// `throughputKBps` last written for it, as the KCL's renewer does when it adds a lease
    /// (`DynamoDBLeaseRenewer.addLeasesToRenew` records the stored rate × 1 024 as bytes
    /// delivered now). The next renewal writes that over the window, and with nothing
    /// delivered later ones halve it until it rounds to 0. Without the seed an idle lease
    /// would keep its previous owner's last value for good: the leader would balance by a
    /// load that no longer exists, and never fall back to lease counts.
    fn seed_throughput(&self, lease: &Lease, now_ms: u64) {
        if self.coordination != Coordination::Kcl3 {
            return;
        }
        let Some(kbps) = lease
            .throughput_kbps
            .filter(|kbps| kbps.is_finite() && *kbps >= 0.0)
        else {
            return;
        };
        let mut throughput = self.throughput.lock();
        throughput.forget(&lease.lease_key);
        // `as` saturates, far beyond any real rate (2^64 bytes in one window).
        throughput.record(&lease.lease_key, (kbps * 1024.0).round() as u64, now_ms);
    }

    /// Drop every local trace of a lease this worker no longer holds (its
    /// hand-off, its throughput, its renewal); the lease it was renewing, if any.
    fn forget_lease(&self, key: &str) -> Option<Lease> {
        self.handoff.lock().finished(key);
        self.throughput.lock().forget(key);
        self.renewer.lock().remove(key)
    }

    /// Record a lost lease (refused write or expiry) and wake the dispatcher.
    fn lose(&self, key: &str) {
        let removed = self.forget_lease(key);
        if removed
            .as_ref()
            .is_some_and(|l| l.checkpoint.is_shard_end())
        {
            // A finished shard's lease is deleted by the clean-up (or taken to no
            // effect): nothing was being processed, so nothing is lost.
            tracing::debug!(worker = %self.worker_id, lease = key, "finished lease gone");
            self.signal_change();
        } else if removed.is_some() {
            self.metrics.leases_lost.inc();
            tracing::info!(worker = %self.worker_id, lease = key, "lease lost");
            self.signal_change();
        }
    }

    /// A fenced write by the owner: run `write` with the held lease's counter under
    /// the lease's write lock, record the result, and lose the lease on a conflict.
    async fn owner_write<'a, F, Fut>(&'a self, key: &'a str, write: F) -> Result<Lease, Error>
    where
        F: FnOnce(u64) -> Fut,
        Fut: std::future::Future<Output = Result<Lease, Error>> + 'a,
    {
        let lock = self.write_lock(key);
        let _guard = lock.lock().await;
        let Some(counter) = self.held_lease(key).map(|l| l.lease_counter) else {
            return Err(Error::LeaseConflict {
                lease_key: key.to_string(),
            });
        };
        let sent_ms = self.now_ms();
        match write(counter).await {
            Ok(lease) => {
                let still_held = self.renewer.lock().record_write(lease.clone(), sent_ms);
                if !still_held {
                    self.handoff.lock().finished(key);
                    self.signal_change();
                } else if self.handoff.lock().observe_held(&lease, sent_ms) {
                    tracing::info!(
                        worker = %self.worker_id,
                        lease = key,
                        to = lease.lease_owner.as_deref().unwrap_or_default(),
                        "graceful hand-off requested"
                    );
                    self.signal_change();
                }
                Ok(lease)
            }
            Err(e) => {
                if e.is_lease_conflict() {
                    self.lose(key);
                }
                Err(e)
            }
        }
    }

    /// Write a checkpoint or prepared checkpoint to a held lease.
    pub(crate) async fn update_checkpoint(
        &self,
        key: &str,
        update: &CheckpointUpdate,
    ) -> Result<Lease, Error> {
        let store = Arc::clone(&self.store);
        let worker = self.worker_id.clone();
        self.owner_write(key, |counter| async move {
            store.update_checkpoint(key, &worker, counter, update).await
        })
        .await
    }

    /// Record a held lease's child shards at shard end.
    pub(crate) async fn set_child_shards(
        &self,
        key: &str,
        children: &[String],
    ) -> Result<Lease, Error> {
        let store = Arc::clone(&self.store);
        let worker = self.worker_id.clone();
        self.owner_write(key, |counter| async move {
            store
                .set_child_shards(key, &worker, counter, children)
                .await
        })
        .await
    }

    /// Whether this worker takes part in a leader election: KCL 3.x coordination with a
    /// store that keeps the coordinator-state table. Otherwise every worker balances
    /// on its own (the same plan everywhere).
    fn elects_leader(&self) -> bool {
        self.coordination == Coordination::Kcl3 && self.store.coordinator_store().is_some()
    }

    /// The renewer's period (`failover / 3 − epsilon`).
    pub(crate) fn renewer_interval(&self) -> Duration {
        self.config.renewer_interval()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extended_sequence::ExtendedSequenceNumber;
    use crate::lease_store::InMemoryLeaseStore;

    async fn stored_kbps(store: &dyn LeaseStore, key: &str) -> Option<f64> {
        store
            .list()
            .await
            .expect("list")
            .into_iter()
            .find(|l| l.lease_key == key)
            .and_then(|l| l.throughput_kbps)
    }

    #[tokio::test]
    async fn an_idle_lease_taken_starts_from_its_stored_throughput_and_decays() {
        let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
        let mut lease = Lease::new("s0", ExtendedSequenceNumber::TrimHorizon);
        // As its previous owner last wrote it.
        lease.throughput_kbps = Some(8.0);
        assert!(store.create_if_absent(&lease).await.expect("create"));
        // A renewer window of exactly one second.
        let config = LeaseConfig {
            failover_time: Duration::from_millis(3_000),
            epsilon: Duration::ZERO,
            ..LeaseConfig::default()
        };
        let coordinator = LeaseCoordinator::new(
            Arc::clone(&store),
            "w1",
            config,
            Coordination::Kcl3,
            Metrics::new("w1").expect("metrics"),
        );
        coordinator.take_leases().await.expect("take");
        assert_eq!(coordinator.held_lease_keys(), ["s0"]);
        // Within the first window the seed counts as that window's bytes: 8 KiB in 1 s.
        coordinator.renew_leases().await;
        assert_eq!(stored_kbps(store.as_ref(), "s0").await, Some(8.0));
        // Nothing delivered since: each window halves it, as under its measuring owner.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        coordinator.renew_leases().await;
        assert_eq!(stored_kbps(store.as_ref(), "s0").await, Some(4.0));
    }
}
