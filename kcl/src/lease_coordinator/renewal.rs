//! The renewer run: renew every held lease (with its throughput under KCL 3.x coordination),
//! pass on hand-offs that timed out, and drop the leases that expired unrenewed.

use std::sync::Arc;

use super::LeaseCoordinator;
use crate::config::Coordination;

impl LeaseCoordinator {
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
}
