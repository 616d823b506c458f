//! The KCL 3.x side tables next to the lease table: the coordinator state
//! (`<application>-CoordinatorState`, key `key`, holding the leader lock) and the
//! worker metrics (`<application>-WorkerMetricStats`, key `wid`);
//! docs/kcl3-coordination.md. A [`LeaseStore`](crate::lease_store::LeaseStore) that
//! keeps them hands this out from `coordinator_store`.

use crate::leader_lock::LockItem;
use crate::store_future::StoreFuture;
use crate::worker_metrics::WorkerMetricStats;

/// Conditional access to the coordinator-state and worker-metrics tables.
pub trait CoordinatorStore: Send + Sync {
    /// The lock item `key`, `None` if absent.
    fn get_lock<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<LockItem>>;

    /// Store `item` as lock `key` iff the stored lock's `recordVersionNumber` is
    /// `expected` (`None`: iff there is no such item); `false` when refused.
    fn put_lock<'a>(
        &'a self,
        key: &'a str,
        item: &'a LockItem,
        expected: Option<&'a str>,
    ) -> StoreFuture<'a, bool>;

    /// Delete lock `key` iff its `recordVersionNumber` is `version`; `false` when refused.
    fn delete_lock<'a>(&'a self, key: &'a str, version: &'a str) -> StoreFuture<'a, bool>;

    /// Write (replace) a worker's metrics item.
    fn put_worker_metrics<'a>(&'a self, stats: &'a WorkerMetricStats) -> StoreFuture<'a, ()>;

    /// Every worker's metrics item.
    fn list_worker_metrics(&self) -> StoreFuture<'_, Vec<WorkerMetricStats>>;
}
