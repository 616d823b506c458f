//! KCL 3.x leadership (docs/kcl3-coordination.md): the worker-metrics item, the leader lock,
//! and the leader's assignment of leases as graceful hand-offs.

use std::time::Duration;

use super::LeaseCoordinator;
use crate::leader_lock::{LEADER_KEY, LockStep, new_record_version_number};
use crate::lease_balance;
use crate::lease_config::duration_millis;
use crate::worker_metrics::{WorkerMetricStats, live_workers};

impl LeaseCoordinator {
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
    pub(super) async fn assign_as_leader(&self, now: u64) {
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
}

/// Seconds since the Unix epoch: the worker-metrics `lut`.
fn epoch_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
