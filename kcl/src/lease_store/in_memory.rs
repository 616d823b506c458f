//! A lease table inside one process, for tests and single-process deployments.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{LeaseStore, StoreFuture};
use crate::checkpoint::CheckpointUpdate;
use crate::coordinator_store::CoordinatorStore;
use crate::error::Error;
use crate::leader_lock::LockItem;
use crate::lease::Lease;
use crate::worker_metrics::WorkerMetricStats;

/// A lease table in memory; clones share the same table.
#[derive(Debug, Clone, Default)]
pub struct InMemoryLeaseStore {
    leases: Arc<Mutex<BTreeMap<String, Lease>>>,
    locks: Arc<Mutex<BTreeMap<String, LockItem>>>,
    worker_metrics: Arc<Mutex<BTreeMap<String, WorkerMetricStats>>>,
}

/// Which owner a conditional write requires.
enum OwnerCondition<'a> {
    Any,
    Is(&'a str),
    HandingOff(&'a str),
}

impl InMemoryLeaseStore {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The conditional update every write shares: check, mutate, bump the counter.
    fn conditional(
        &self,
        lease_key: &str,
        expected_counter: u64,
        owner: OwnerCondition<'_>,
        mutate: impl FnOnce(&mut Lease),
    ) -> Result<Lease, Error> {
        let mut leases = self.leases.lock();
        let lease = leases
            .get_mut(lease_key)
            .ok_or_else(|| Error::conflict(lease_key))?;
        let owner_ok = match owner {
            OwnerCondition::Any => true,
            OwnerCondition::Is(o) => lease.is_owned_by(o),
            OwnerCondition::HandingOff(o) => lease.checkpoint_owner.as_deref() == Some(o),
        };
        if lease.lease_counter != expected_counter || !owner_ok {
            return Err(Error::conflict(lease_key));
        }
        let next = lease
            .lease_counter
            .checked_add(1)
            .ok_or_else(|| Error::corrupt(lease_key, "lease counter overflow"))?;
        mutate(lease);
        lease.lease_counter = next;
        Ok(lease.clone())
    }
}

impl LeaseStore for InMemoryLeaseStore {
    fn create_if_absent<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut leases = self.leases.lock();
            if leases.contains_key(&lease.lease_key) {
                return Ok(false);
            }
            leases.insert(lease.lease_key.clone(), lease.clone());
            Ok(true)
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(async move { Ok(self.leases.lock().values().cloned().collect()) })
    }

    fn get<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(async move { Ok(self.leases.lock().get(lease_key).cloned()) })
    }

    fn renew<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.conditional(
                lease_key,
                expected_counter,
                OwnerCondition::Is(owner),
                |_| {},
            )
        })
    }

    fn renew_with_throughput<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        throughput_kbps: f64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.conditional(
                lease_key,
                expected_counter,
                OwnerCondition::Is(owner),
                |lease| lease.throughput_kbps = Some(throughput_kbps),
            )
        })
    }

    fn take<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.conditional(lease_key, expected_counter, OwnerCondition::Any, |lease| {
                if lease
                    .lease_owner
                    .as_deref()
                    .is_some_and(|old| old != new_owner)
                {
                    lease.owner_switches_since_checkpoint =
                        lease.owner_switches_since_checkpoint.saturating_add(1);
                }
                lease.lease_owner = Some(new_owner.to_string());
                lease.checkpoint_owner = None;
            })
        })
    }

    fn evict<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.conditional(
                lease_key,
                expected_counter,
                OwnerCondition::Is(owner),
                |lease| {
                    // During a hand-off the lease goes on to the worker it was handed to.
                    if lease.checkpoint_owner.take().is_none() {
                        lease.lease_owner = None;
                    }
                },
            )
        })
    }

    fn update_checkpoint<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        update: &'a CheckpointUpdate,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.conditional(
                lease_key,
                expected_counter,
                OwnerCondition::Is(owner),
                |lease| {
                    lease.apply_checkpoint_update(update);
                },
            )
        })
    }

    fn set_child_shards<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        child_shard_ids: &'a [String],
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.conditional(
                lease_key,
                expected_counter,
                OwnerCondition::Is(owner),
                |lease| {
                    lease.child_shard_ids = child_shard_ids.iter().cloned().collect();
                },
            )
        })
    }

    fn delete<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { Ok(self.leases.lock().remove(lease_key).is_some()) })
    }

    fn initiate_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        current_owner: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let mut leases = self.leases.lock();
            let lease = leases
                .get_mut(lease_key)
                .filter(|l| {
                    l.lease_owner.as_deref() == Some(current_owner) && l.checkpoint_owner.is_none()
                })
                .ok_or_else(|| Error::conflict(lease_key))?;
            lease.lease_owner = Some(new_owner.to_string());
            lease.checkpoint_owner = Some(current_owner.to_string());
            Ok(lease.clone())
        })
    }

    fn complete_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        checkpoint_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            self.conditional(
                lease_key,
                expected_counter,
                OwnerCondition::HandingOff(checkpoint_owner),
                |lease| {
                    lease.checkpoint_owner = None;
                },
            )
        })
    }

    fn decline_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let mut leases = self.leases.lock();
            let lease = leases
                .get_mut(lease_key)
                .filter(|l| l.lease_owner.as_deref() == Some(new_owner))
                .ok_or_else(|| Error::conflict(lease_key))?;
            let previous = lease
                .checkpoint_owner
                .take()
                .ok_or_else(|| Error::conflict(lease_key))?;
            lease.lease_owner = Some(previous);
            Ok(lease.clone())
        })
    }

    fn coordinator_store(&self) -> Option<&dyn CoordinatorStore> {
        Some(self)
    }
}

impl CoordinatorStore for InMemoryLeaseStore {
    fn get_lock<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<LockItem>> {
        Box::pin(async move { Ok(self.locks.lock().get(key).cloned()) })
    }

    fn put_lock<'a>(
        &'a self,
        key: &'a str,
        item: &'a LockItem,
        expected: Option<&'a str>,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut locks = self.locks.lock();
            let current = locks.get(key).map(|l| l.record_version_number.as_str());
            if current != expected {
                return Ok(false);
            }
            locks.insert(key.to_string(), item.clone());
            Ok(true)
        })
    }

    fn delete_lock<'a>(&'a self, key: &'a str, version: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut locks = self.locks.lock();
            if locks.get(key).map(|l| l.record_version_number.as_str()) != Some(version) {
                return Ok(false);
            }
            locks.remove(key);
            Ok(true)
        })
    }

    fn put_worker_metrics<'a>(&'a self, stats: &'a WorkerMetricStats) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.worker_metrics
                .lock()
                .insert(stats.worker_id.clone(), stats.clone());
            Ok(())
        })
    }

    fn list_worker_metrics(&self) -> StoreFuture<'_, Vec<WorkerMetricStats>> {
        Box::pin(async move { Ok(self.worker_metrics.lock().values().cloned().collect()) })
    }
}
