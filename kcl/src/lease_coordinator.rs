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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::rngs::StdRng;
use tokio::sync::Notify;

use crate::checkpoint::CheckpointUpdate;
use crate::config::Coordination;
use crate::error::Error;
use crate::leader_lock::{LEADER_KEY, LeaderLock, LockStep, new_record_version_number};
use crate::lease::Lease;
use crate::lease_balance;
use crate::lease_config::{LeaseConfig, duration_millis};
use crate::lease_handoff::{IncomingStep, LeaseHandoff};
use crate::lease_renewer::LeaseRenewer;
use crate::lease_store::LeaseStore;
use crate::lease_taker::{LeaseTaker, TakePlan, TakeReason};
use crate::lease_throughput::LeaseThroughput;
use crate::metrics::Metrics;
use crate::worker_metrics::{WorkerMetricStats, live_workers};

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

    /// Record a lost lease (refused write or expiry) and wake the dispatcher.
    fn lose(&self, key: &str) {
        self.handoff.lock().finished(key);
        self.throughput.lock().forget(key);
        let removed = self.renewer.lock().remove(key);
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

    /// Pass a lease being handed off on to its next owner; called once its processor
    /// has had its final checkpoint (or the hand-off timed out).
    pub(crate) async fn complete_handoff(&self, key: &str) -> Result<(), Error> {
        let store = Arc::clone(&self.store);
        let worker = self.worker_id.clone();
        let result = self
            .owner_write(key, |counter| async move {
                store.complete_handoff(key, &worker, counter).await
            })
            .await;
        self.handoff.lock().finished(key);
        self.throughput.lock().forget(key);
        // The stored lease names another worker, so record_write already dropped it.
        if self.renewer.lock().remove(key).is_some() {
            self.signal_change();
        }
        match &result {
            Ok(_) => {
                tracing::info!(worker = %self.worker_id, lease = key, "lease handed off");
                self.metrics.leases_released.inc();
            }
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "passing the lease on failed")
            }
        }
        result.map(|_| ())
    }

    /// Give a held lease up (graceful shutdown) so another worker takes it at once. The
    /// processor checkpointed first, so whoever takes it starts right after that.
    pub(crate) async fn release(&self, key: &str) -> Result<(), Error> {
        // During a hand-off a release passes the lease on to its next owner.
        let store = Arc::clone(&self.store);
        let worker = self.worker_id.clone();
        let result = self
            .owner_write(key, |counter| async move {
                store.evict(key, &worker, counter).await
            })
            .await;
        // The evicted lease names no owner (or the next one), so record_write already
        // dropped it; remove it anyway in case the write failed for another reason.
        self.handoff.lock().finished(key);
        self.throughput.lock().forget(key);
        if self.renewer.lock().remove(key).is_some() {
            self.signal_change();
        }
        if result.is_ok() {
            self.metrics.leases_released.inc();
        }
        result.map(|_| ())
    }

    /// At shutdown ([`Coordination::Kcl3`]): decline the hand-offs asked of this worker,
    /// so their owners keep the leases, and release leases recorded as this worker's
    /// that it does not hold (passed on to it but never claimed).
    pub(crate) async fn disown_unheld(&self) {
        if self.coordination != Coordination::Kcl3 {
            return;
        }
        let scanned = match self.store.list().await {
            Ok(scanned) => scanned,
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, error = %e, "cannot scan the lease table at shutdown");
                return;
            }
        };
        let held = self.renewer.lock().held_keys();
        for lease in scanned {
            let key = lease.lease_key.as_str();
            if lease.lease_owner.as_deref() != Some(self.worker_id.as_str()) || held.contains(key) {
                continue;
            }
            let result = match lease.checkpoint_owner.as_deref() {
                Some(from) if from != self.worker_id => {
                    self.store.decline_handoff(key, &self.worker_id).await
                }
                _ => {
                    self.store
                        .evict(key, &self.worker_id, lease.lease_counter)
                        .await
                }
            };
            match result {
                Ok(_) => {
                    tracing::info!(worker = %self.worker_id, lease = key, "unclaimed lease given back")
                }
                Err(e) if e.is_lease_conflict() => {}
                Err(e) => {
                    tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "giving back an unclaimed lease failed")
                }
            }
        }
    }

    /// One renewer run: renew every held lease, drop the expired ones.
    pub(crate) async fn renew_leases(&self) {
        let now = self.now_ms();
        let to_renew = self.renewer.lock().leases_to_renew(now);
        let renewals = to_renew.iter().map(|lease| {
            let key = lease.lease_key.as_str();
            let store = Arc::clone(&self.store);
            let worker = self.worker_id.clone();
            // The KCL 3.x reports each lease's rate with its renewals.
            let kbps = match self.coordination {
                Coordination::Kcl3 => self.throughput.lock().kbps(key, now),
                Coordination::Kcl2 => None,
            };
            async move {
                let result = self
                    .owner_write(key, |counter| async move {
                        match kbps {
                            Some(kbps) => {
                                store
                                    .renew_with_throughput(key, &worker, counter, kbps)
                                    .await
                            }
                            None => store.renew(key, &worker, counter).await,
                        }
                    })
                    .await;
                if let Err(e) = result
                    && !e.is_lease_conflict()
                {
                    // Kept until failover; drop_expired below gives it up then.
                    tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "lease renewal failed");
                }
            }
        });
        futures::future::join_all(renewals).await;
        let overdue = self.handoff.lock().overdue(self.now_ms());
        for key in overdue {
            tracing::warn!(worker = %self.worker_id, lease = %key, "graceful hand-off timed out; passing the lease on");
            let _ = self.complete_handoff(&key).await;
        }
        let expired = self.renewer.lock().drop_expired(self.now_ms());
        if !expired.is_empty() {
            for lease in &expired {
                tracing::warn!(worker = %self.worker_id, lease = %lease.lease_key, "lease expired unrenewed");
            }
            self.metrics
                .leases_lost
                .inc_by(u64::try_from(expired.len()).unwrap_or(u64::MAX));
            self.signal_change();
        }
    }

    /// Start holding a lease handed to this worker (`Claim`: a renewal, as the KCL's
    /// lease discovery does) or taken after a timed-out hand-off (`Take`).
    async fn acquire(&self, step: IncomingStep) -> bool {
        let (lease, claim) = match step {
            IncomingStep::Claim(lease) => (lease, true),
            IncomingStep::Take(lease) => (lease, false),
        };
        let key = lease.lease_key.as_str();
        let lock = self.write_lock(key);
        let _guard = lock.lock().await;
        let sent_ms = self.now_ms();
        let result = if claim {
            self.store
                .renew(key, &self.worker_id, lease.lease_counter)
                .await
        } else {
            self.store
                .take(key, &self.worker_id, lease.lease_counter)
                .await
        };
        match result {
            Ok(acquired) => {
                if claim {
                    tracing::info!(worker = %self.worker_id, lease = key, "handed-off lease claimed");
                    if self.elects_leader() {
                        // The leader asked for the move; the receiver counts it as
                        // its steal, as a 2.x worker counts the leases it steals.
                        self.metrics.leases_stolen.inc();
                    }
                } else {
                    tracing::warn!(worker = %self.worker_id, lease = key, "graceful hand-off timed out; lease taken");
                }
                self.taker.lock().record_taken(&acquired, sent_ms);
                self.renewer.lock().add(acquired, sent_ms);
                self.metrics.leases_taken.inc();
                true
            }
            // Moved on since the scan: the next scan tells.
            Err(e) if e.is_lease_conflict() => false,
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "acquiring a handed-off lease failed");
                false
            }
        }
    }

    /// Replace a count-based steal with the load-based one once the table carries
    /// throughput measurements: this worker asks for the leases the balancing plan
    /// (the same on every worker for the same table) gives it.
    fn balance_by_load(&self, plan: &mut TakePlan, now: u64) {
        let (live, others) = {
            let taker = self.taker.lock();
            (taker.live_leases(now), taker.live_owners(now))
        };
        if !lease_balance::has_measurements(&live) {
            return;
        }
        let mut workers: BTreeSet<String> = others.into_keys().collect();
        workers.insert(self.worker_id.clone());
        plan.leases_to_take = lease_balance::plan(&live, &workers, &self.config.balance)
            .into_iter()
            .filter(|m| m.to == self.worker_id)
            .map(|m| m.lease)
            .collect();
        plan.reason = if plan.leases_to_take.is_empty() {
            TakeReason::Nothing
        } else {
            TakeReason::Steal
        };
    }

    /// Whether this worker takes part in a leader election: KCL 3.x coordination with a
    /// store that keeps the coordinator-state table. Otherwise every worker balances
    /// on its own (the same plan everywhere).
    fn elects_leader(&self) -> bool {
        self.coordination == Coordination::Kcl3 && self.store.coordinator_store().is_some()
    }

    /// Whether this worker is the leader now.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader.lock().is_leader(self.now_ms())
    }

    /// How often [`lead`](Self::lead) should run: the shorter of the leader heartbeat
    /// and the worker-metrics interval.
    pub(crate) fn leader_interval(&self) -> Duration {
        self.config
            .leader_heartbeat_period
            .min(self.config.worker_metrics_reporter_interval)
    }

    /// One run of the KCL 3.x background duties: write this worker's metrics item when
    /// due, then read the leader lock and take, renew or leave it.
    pub(crate) async fn lead(&self) {
        if !self.elects_leader() {
            return;
        }
        let Some(coordinator) = self.store.coordinator_store() else {
            return;
        };
        let now = self.now_ms();
        let due = self.metrics_reported_ms.lock().is_none_or(|t| {
            now.saturating_sub(t) >= duration_millis(self.config.worker_metrics_reporter_interval)
        });
        if due {
            let stats = WorkerMetricStats::throughput_only(&self.worker_id, epoch_seconds());
            match coordinator.put_worker_metrics(&stats).await {
                Ok(()) => *self.metrics_reported_ms.lock() = Some(now),
                Err(e) => {
                    tracing::warn!(worker = %self.worker_id, error = %e, "writing worker metrics failed")
                }
            }
        }
        let stored = match coordinator.get_lock(LEADER_KEY).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, error = %e, "reading the leader lock failed");
                return;
            }
        };
        let now = self.now_ms();
        let version = new_record_version_number(&mut rand::rng());
        let step = self.leader.lock().step(stored.as_ref(), now, version);
        let LockStep::Write { expected, item } = step else {
            return;
        };
        let was_leader = self.is_leader();
        match coordinator
            .put_lock(LEADER_KEY, &item, expected.as_deref())
            .await
        {
            Ok(true) => {
                self.leader.lock().record_written(&item, now);
                if !was_leader {
                    tracing::info!(worker = %self.worker_id, "became the leader");
                }
            }
            Ok(false) => self.leader.lock().record_lost(),
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, error = %e, "writing the leader lock failed")
            }
        }
    }

    /// At shutdown: give the leader lock up (delete it) so another worker leads at once.
    pub(crate) async fn resign(&self) {
        let Some(coordinator) = self.store.coordinator_store() else {
            return;
        };
        let version = self.leader.lock().held_version().map(str::to_string);
        self.leader.lock().record_lost();
        if let Some(version) = version
            && let Err(e) = coordinator.delete_lock(LEADER_KEY, &version).await
        {
            tracing::warn!(worker = %self.worker_id, error = %e, "releasing the leader lock failed");
        }
    }

    /// The leader's assignment run: the live workers are those with a fresh
    /// worker-metrics item (so a worker holding no lease yet counts) and the owners of
    /// live leases; the balancing plan (by load once leases carry throughput, else by
    /// count) is carried out as graceful hand-offs, whoever the two workers are.
    async fn assign_as_leader(&self, now: u64) {
        let Some(coordinator) = self.store.coordinator_store() else {
            return;
        };
        let stats = match coordinator.list_worker_metrics().await {
            Ok(stats) => stats,
            Err(e) => {
                tracing::warn!(worker = %self.worker_id, error = %e, "reading worker metrics failed");
                return;
            }
        };
        let expiry_s = (2 * self.config.worker_metrics_reporter_interval.as_secs()).max(1);
        let (live, owners, expired_owners) = {
            let taker = self.taker.lock();
            (
                taker.live_leases(now),
                taker.live_owners(now),
                taker.expired_owners(now),
            )
        };
        let mut workers = live_workers(&stats, epoch_seconds(), expiry_s);
        workers.extend(owners.into_keys());
        {
            // A worker that let a lease expire is dead (killed, say) even though its
            // metrics item is still fresh: nothing goes to it until it writes a newer one.
            let lut_of = |w: &str| {
                stats
                    .iter()
                    .find(|s| s.worker_id == w)
                    .map_or(0, |s| s.last_update_time)
            };
            let mut dead = self.presumed_dead.lock();
            for w in expired_owners {
                if w != self.worker_id {
                    dead.entry(w.clone()).or_insert_with(|| lut_of(&w));
                }
            }
            dead.retain(|w, lut| lut_of(w) <= *lut);
            workers.retain(|w| !dead.contains_key(w));
        }
        workers.insert(self.worker_id.clone());
        let moves = if lease_balance::has_measurements(&live) {
            lease_balance::plan(&live, &workers, &self.config.balance)
        } else {
            lease_balance::plan_by_count(&live, &workers)
        };
        for m in moves {
            let key = m.lease.lease_key.as_str();
            let Some(from) = m.lease.lease_owner.as_deref() else {
                continue;
            };
            match self.store.initiate_handoff(key, from, &m.to).await {
                Ok(_) => {
                    tracing::info!(worker = %self.worker_id, lease = key, from, to = %m.to, "leader moves a lease");
                }
                Err(e) if e.is_lease_conflict() => {}
                Err(e) => {
                    tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "hand-off request failed");
                }
            }
        }
    }

    /// One taker run: scan the table, claim leases handed to this worker, then take or
    /// steal what the KCL algorithm says (a steal being a hand-off request with
    /// [`Coordination::Kcl3`]).
    pub(crate) async fn take_leases(&self) -> Result<(), Error> {
        let scanned = self.store.list().await?;
        let now = self.now_ms();
        let mut taken_any = false;
        if self.coordination == Coordination::Kcl3 {
            let held: BTreeSet<String> = self.renewer.lock().held_keys();
            let steps = self.handoff.lock().plan_incoming(&scanned, &held, now);
            for step in steps {
                taken_any |= self.acquire(step).await;
            }
        }
        let mut plan = self.taker.lock().plan(&scanned, now);
        if self.coordination == Coordination::Kcl3 && self.elects_leader() {
            // The leader moves leases; every worker still takes unowned and expired ones.
            if plan.reason == TakeReason::Steal {
                plan.leases_to_take.clear();
                plan.reason = TakeReason::Nothing;
            }
            if plan.expired_leases == 0 && self.leader.lock().is_leader(self.now_ms()) {
                self.assign_as_leader(now).await;
            }
        } else if self.coordination == Coordination::Kcl3
            && matches!(plan.reason, TakeReason::Steal | TakeReason::Nothing)
        {
            self.balance_by_load(&mut plan, now);
        }
        if plan.leases_to_take.is_empty() {
            if taken_any {
                self.signal_change();
            }
            return Ok(());
        }
        tracing::debug!(
            worker = %self.worker_id,
            reason = ?plan.reason,
            total = plan.total_leases,
            workers = plan.num_workers,
            target = plan.target,
            mine = plan.my_leases,
            taking = plan.leases_to_take.len(),
            "taking leases"
        );
        for lease in &plan.leases_to_take {
            let key = lease.lease_key.as_str();
            if plan.reason == TakeReason::Steal
                && self.coordination == Coordination::Kcl3
                && let Some(victim) = lease.lease_owner.as_deref()
            {
                // The owner finishes its batch, checkpoints and passes the lease on;
                // a later run claims it (docs/kcl3-coordination.md).
                match self
                    .store
                    .initiate_handoff(key, victim, &self.worker_id)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(worker = %self.worker_id, lease = key, from = victim, "graceful hand-off requested");
                        self.metrics.leases_stolen.inc();
                    }
                    Err(e) if e.is_lease_conflict() => {}
                    Err(e) => {
                        tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "hand-off request failed");
                    }
                }
                continue;
            }
            let lock = self.write_lock(key);
            let _guard = lock.lock().await;
            let sent_ms = self.now_ms();
            match self
                .store
                .take(key, &self.worker_id, lease.lease_counter)
                .await
            {
                Ok(taken) => {
                    let stolen = plan.reason == TakeReason::Steal;
                    tracing::info!(worker = %self.worker_id, lease = key, stolen, "lease taken");
                    self.taker.lock().record_taken(&taken, sent_ms);
                    self.renewer.lock().add(taken, sent_ms);
                    self.metrics.leases_taken.inc();
                    if stolen {
                        self.metrics.leases_stolen.inc();
                    }
                    taken_any = true;
                }
                // Another worker won the race: not ours, nothing to do.
                Err(e) if e.is_lease_conflict() => {}
                Err(e) => {
                    tracing::warn!(worker = %self.worker_id, lease = key, error = %e, "lease take failed");
                }
            }
        }
        if taken_any {
            self.signal_change();
        }
        Ok(())
    }

    /// The renewer's period (`failover / 3 − epsilon`).
    pub(crate) fn renewer_interval(&self) -> Duration {
        self.config.renewer_interval()
    }
}

/// Seconds since the Unix epoch: the worker-metrics `lut`.
fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
