//! The lease table: DynamoDB-style conditional writes fenced by the lease counter
//! (docs/kcl-leases.md).
//!
//! Every write that changes a lease is conditional on the `lease_counter` the
//! caller last saw (and, for the owner's own writes, on the owner: `checkpointOwner`
//! during a graceful hand-off, `leaseOwner` otherwise, see [`Lease::actual_owner`]), and bumps
//! the counter, so two workers can never both believe a write of theirs won.
//! A refused write is [`Error::LeaseConflict`](crate::error::Error::LeaseConflict). Every
//! successful write returns the lease as now stored, whose counter the caller must use for its next write: a
//! worker should therefore serialise its own writes to one lease (renewal,
//! checkpoint, child shards), or they will fence each other out.
//!
//! The trait returns boxed futures so that `Arc<dyn LeaseStore>` works and the
//! futures are `Send` for `tokio::spawn`.

use std::sync::Arc;

use crate::checkpoint::CheckpointUpdate;
use crate::coordinator_store::CoordinatorStore;
use crate::lease::Lease;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
mod in_memory;
mod migrate;
mod sqlite;
mod stream_scoped;
#[cfg(any(test, feature = "test-suite"))]
#[doc(hidden)]
pub mod suite;

#[cfg(feature = "dynamodb")]
pub use dynamodb::{DynamoDbConfig, DynamoDbLeaseStore};
pub use in_memory::InMemoryLeaseStore;
pub use migrate::{MigrationReport, copy_leases};
pub use sqlite::SqliteLeaseStore;
pub use stream_scoped::{StreamScopedStore, delete_stream_leases};

pub use crate::store_future::StoreFuture;

/// A lease table with conditional, counter-fenced writes.
pub trait LeaseStore: Send + Sync {
    /// Insert `lease` unless its key exists; `true` if it was inserted.
    fn create_if_absent<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool>;

    /// Every lease, ordered by key.
    fn list(&self) -> StoreFuture<'_, Vec<Lease>>;

    /// One lease, `None` if absent.
    fn get<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, Option<Lease>>;

    /// Renew: counter + 1, iff the counter is `expected_counter` and the actual owner is `owner`.
    fn renew<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease>;

    /// [`renew`](Self::renew), also setting `throughputKBps` to `throughput_kbps` (KCL 3.x).
    fn renew_with_throughput<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        throughput_kbps: f64,
    ) -> StoreFuture<'a, Lease>;

    /// Take: owner := `new_owner`, counter + 1, owner switches + 1 if a different
    /// owner held it, any pending hand-off cancelled (`checkpointOwner` removed), iff
    /// the counter is `expected_counter` (whoever owns it).
    fn take<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease>;

    /// Evict/release, iff the counter and actual owner match: counter + 1 and owner :=
    /// none, or, during a hand-off, only `checkpointOwner` removed so the lease goes to
    /// the worker it was being handed to (as the KCL 3.x does).
    fn evict<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease>;

    /// Write a checkpoint or prepared checkpoint, counter + 1, iff the counter and owner match.
    fn update_checkpoint<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        update: &'a CheckpointUpdate,
    ) -> StoreFuture<'a, Lease>;

    /// Record the shard's children at shard end, counter + 1, iff the counter and owner match.
    fn set_child_shards<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        child_shard_ids: &'a [String],
    ) -> StoreFuture<'a, Lease>;

    /// Delete unconditionally (completed-shard cleanup); `true` if it existed.
    fn delete<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, bool>;

    /// Start a graceful hand-off (KCL 3.x): `leaseOwner` := `new_owner` and
    /// `checkpointOwner` := `current_owner`, iff `leaseOwner` is `current_owner` and no
    /// hand-off is pending. The counter is neither checked nor bumped, so the current
    /// owner's renewals and checkpoints go on undisturbed until it passes the lease on.
    fn initiate_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        current_owner: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease>;

    /// Finish a graceful hand-off: `checkpointOwner` removed, counter + 1, iff the
    /// counter is `expected_counter` and `checkpointOwner` is `checkpoint_owner`; the
    /// `leaseOwner` (the new owner) may then start from the stored checkpoint.
    fn complete_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        checkpoint_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease>;

    /// Decline a hand-off to `new_owner` (it is shutting down): the lease goes back to
    /// its `checkpointOwner` as if no hand-off had been asked for, iff `leaseOwner` is
    /// `new_owner` and a hand-off is pending. The counter is neither checked nor bumped.
    fn decline_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease>;

    /// The coordinator-state and worker-metrics tables kept with this lease table
    /// (KCL 3.x), if this store keeps them; without them a `Kcl3` worker elects no leader.
    fn coordinator_store(&self) -> Option<&dyn CoordinatorStore> {
        None
    }
}

impl<S: LeaseStore + ?Sized> LeaseStore for Arc<S> {
    fn coordinator_store(&self) -> Option<&dyn CoordinatorStore> {
        (**self).coordinator_store()
    }

    fn create_if_absent<'a>(&'a self, lease: &'a Lease) -> StoreFuture<'a, bool> {
        (**self).create_if_absent(lease)
    }

    fn list(&self) -> StoreFuture<'_, Vec<Lease>> {
        (**self).list()
    }

    fn get<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, Option<Lease>> {
        (**self).get(lease_key)
    }

    fn renew<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        (**self).renew(lease_key, owner, expected_counter)
    }

    fn renew_with_throughput<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        throughput_kbps: f64,
    ) -> StoreFuture<'a, Lease> {
        (**self).renew_with_throughput(lease_key, owner, expected_counter, throughput_kbps)
    }

    fn take<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        (**self).take(lease_key, new_owner, expected_counter)
    }

    fn evict<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        (**self).evict(lease_key, owner, expected_counter)
    }

    fn update_checkpoint<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        update: &'a CheckpointUpdate,
    ) -> StoreFuture<'a, Lease> {
        (**self).update_checkpoint(lease_key, owner, expected_counter, update)
    }

    fn set_child_shards<'a>(
        &'a self,
        lease_key: &'a str,
        owner: &'a str,
        expected_counter: u64,
        child_shard_ids: &'a [String],
    ) -> StoreFuture<'a, Lease> {
        (**self).set_child_shards(lease_key, owner, expected_counter, child_shard_ids)
    }

    fn delete<'a>(&'a self, lease_key: &'a str) -> StoreFuture<'a, bool> {
        (**self).delete(lease_key)
    }

    fn initiate_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        current_owner: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        (**self).initiate_handoff(lease_key, current_owner, new_owner)
    }

    fn complete_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        checkpoint_owner: &'a str,
        expected_counter: u64,
    ) -> StoreFuture<'a, Lease> {
        (**self).complete_handoff(lease_key, checkpoint_owner, expected_counter)
    }

    fn decline_handoff<'a>(
        &'a self,
        lease_key: &'a str,
        new_owner: &'a str,
    ) -> StoreFuture<'a, Lease> {
        (**self).decline_handoff(lease_key, new_owner)
    }
}
