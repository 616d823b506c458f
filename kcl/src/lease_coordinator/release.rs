//! Giving leases up: passing a handed-off lease on to its next owner, releasing leases at
//! shutdown, and disowning leases passed to this worker that it never claimed.

use std::sync::Arc;

use super::LeaseCoordinator;
use crate::config::Coordination;
use crate::error::Error;

impl LeaseCoordinator {
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
        // The stored lease names another worker, so record_write already dropped it.
        if self.forget_lease(key).is_some() {
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
        if self.forget_lease(key).is_some() {
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
}
