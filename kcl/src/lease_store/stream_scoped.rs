//! One stream's view of a multi-stream lease table: keys without the
//! `account:stream:creationEpoch:` prefix, so the single-stream shard sync and the
//! parent checks work unchanged on it (docs/kcl3-coordination.md, "Multi-stream").

use std::sync::Arc;

use super::{LeaseStore, StoreFuture};
use crate::checkpoint::CheckpointUpdate;
use crate::error::Error;
use crate::lease::{Lease, MultiStreamIds};
use crate::stream_identifier::StreamIdentifier;

/// The leases of one stream in a shared table, keyed by shard id.
#[derive(Clone)]
pub struct StreamScopedStore {
    inner: Arc<dyn LeaseStore>,
    stream: StreamIdentifier,
    prefix: String,
}

impl std::fmt::Debug for StreamScopedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamScopedStore")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl StreamScopedStore {
    /// `stream`'s leases in `inner`.
    pub fn new(inner: Arc<dyn LeaseStore>, stream: StreamIdentifier) -> Self {
        let prefix = stream.lease_key_prefix();
        StreamScopedStore {
            inner,
            stream,
            prefix,
        }
    }

    /// The stream this view shows.
    pub fn stream(&self) -> &StreamIdentifier {
        &self.stream
    }

    fn key(&self, shard_id: &str) -> String {
        format!("{}{shard_id}", self.prefix)
    }

    fn strip(&self, mut lease: Lease) -> Lease {
        if let Some(shard) = lease.lease_key.strip_prefix(&self.prefix) {
            lease.lease_key = shard.to_string();
        }
        lease
    }

    fn scoped<'a>(&'a self, write: StoreFuture<'a, Lease>) -> StoreFuture<'a, Lease> {
        Box::pin(async move { write.await.map(|l| self.strip(l)) })
    }
}

impl LeaseStore for StreamScopedStore {
    fn create_if_absent<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut full = lease.clone();
            full.lease_key = self.key(&lease.lease_key);
            full.multi_stream = Some(MultiStreamIds {
                stream_identifier: self.stream.to_string(),
                shard_id: lease.lease_key.clone(),
            });
            self.inner.create_if_absent(&full).await
        })
    }

    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        Box::pin(async move {
            Ok(self
                .inner
                .list()
                .await?
                .into_iter()
                .filter(|l| l.lease_key.starts_with(&self.prefix))
                .map(|l| self.strip(l))
                .collect())
        })
    }

    fn get<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, Option<Lease>> {
        Box::pin(async move {
            Ok(self
                .inner
                .get(&self.key(lease_key))
                .await?
                .map(|l| self.strip(l)))
        })
    }

    fn renew<'a>(&'a self, key: &'a str, owner: &'a str, counter: u64) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(self.inner.renew(&full, owner, counter)).await
        })
    }

    fn renew_with_throughput<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        counter: u64,
        throughput_kbps: f64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(
                self.inner
                    .renew_with_throughput(&full, owner, counter, throughput_kbps),
            )
            .await
        })
    }

    fn take<'a>(&'a self, key: &'a str, owner: &'a str, counter: u64) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(self.inner.take(&full, owner, counter)).await
        })
    }

    fn evict<'a>(&'a self, key: &'a str, owner: &'a str, counter: u64) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(self.inner.evict(&full, owner, counter)).await
        })
    }

    fn update_checkpoint<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        counter: u64,
        update: &'a CheckpointUpdate,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(self.inner.update_checkpoint(&full, owner, counter, update))
                .await
        })
    }

    fn set_child_shards<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        counter: u64,
        children: &'a [String],
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(self.inner.set_child_shards(&full, owner, counter, children))
                .await
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move { self.inner.delete(&self.key(key)).await })
    }

    fn initiate_handoff<'a>(
        &'a self,
        key: &'a str,
        current_owner: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(self.inner.initiate_handoff(&full, current_owner, new_owner))
                .await
        })
    }

    fn complete_handoff<'a>(
        &'a self,
        key: &'a str,
        checkpoint_owner: &'a str,
        counter: u64,
    ) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(
                self.inner
                    .complete_handoff(&full, checkpoint_owner, counter),
            )
            .await
        })
    }

    fn decline_handoff<'a>(&'a self, key: &'a str, new_owner: &'a str) -> StoreFuture<'a, Lease> {
        Box::pin(async move {
            let full = self.key(key);
            self.scoped(self.inner.decline_handoff(&full, new_owner))
                .await
        })
    }

    fn coordinator_store(&self) -> Option<&dyn crate::coordinator_store::CoordinatorStore> {
        self.inner.coordinator_store()
    }
}

/// Every lease of `stream` in `store` deleted (a stream no longer consumed); the keys removed.
pub async fn delete_stream_leases(
    store: &dyn LeaseStore,
    stream: &StreamIdentifier,
) -> Result<Vec<String>, Error> {
    let prefix = stream.lease_key_prefix();
    let mut deleted = Vec::new();
    for lease in store.list().await? {
        if lease.lease_key.starts_with(&prefix) && store.delete(&lease.lease_key).await? {
            deleted.push(lease.lease_key);
        }
    }
    Ok(deleted)
}
