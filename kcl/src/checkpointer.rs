//! The checkpointer handed to a record processor (KCL
//! `ShardRecordProcessorCheckpointer`, docs/kcl-behaviour.md §3): checks a checkpoint with
//! [`CheckpointTracker`] and writes it to the lease through the lease coordinator.
//!
//! A checkpoint beyond the last record delivered, or before the stored one, is
//! refused with [`Error::InvalidCheckpoint`]; a write refused by the lease table
//! means the lease was lost ([`Error::LeaseConflict`], KCL's `ShutdownException`).

use std::sync::Arc;

use parking_lot::Mutex;

use crate::checkpoint::{CheckpointTracker, CheckpointUpdate, PreparedCheckpoint};
use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease_coordinator::LeaseCoordinator;
use crate::record::KinesisClientRecord;

/// Checkpoints one shard's progress; cheap to clone (clones share state).
#[derive(Clone)]
pub struct RecordProcessorCheckpointer {
    inner: Arc<Inner>,
}

struct Inner {
    shard_id: String,
    tracker: Arc<Mutex<CheckpointTracker>>,
    coordinator: Arc<LeaseCoordinator>,
    /// Serialises this shard's checkpoint writes so they reach the tracker in order.
    writing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RecordProcessorCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProcessorCheckpointer")
            .field("shard_id", &self.inner.shard_id)
            .field("tracker", &*self.inner.tracker.lock())
            .finish()
    }
}

impl RecordProcessorCheckpointer {
    pub(crate) fn new(
        shard_id: &str,
        tracker: Arc<Mutex<CheckpointTracker>>,
        coordinator: Arc<LeaseCoordinator>,
    ) -> Self {
        RecordProcessorCheckpointer {
            inner: Arc::new(Inner {
                shard_id: shard_id.to_string(),
                tracker,
                coordinator,
                writing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The shard (lease key) this checkpointer writes to.
    pub fn shard_id(&self) -> &str {
        &self.inner.shard_id
    }

    /// The checkpoint known to be stored.
    pub fn last_checkpoint(&self) -> ExtendedSequenceNumber {
        self.inner.tracker.lock().last_checkpoint().clone()
    }

    /// The last position delivered to the processor (`SHARD_END` in `shard_ended`).
    pub fn largest_permitted_checkpoint(&self) -> ExtendedSequenceNumber {
        self.inner.tracker.lock().largest_permitted().clone()
    }

    /// The prepared checkpoint known to be stored, if any.
    pub fn pending_checkpoint(&self) -> Option<ExtendedSequenceNumber> {
        self.inner.tracker.lock().pending_checkpoint().cloned()
    }

    /// Checkpoint everything delivered so far (in `shard_ended`: `SHARD_END`).
    pub async fn checkpoint(&self) -> Result<(), Error> {
        self.write(|t| t.checkpoint()).await
    }

    /// Checkpoint at a delivered record, sub-sequence number included.
    pub async fn checkpoint_record(&self, record: &KinesisClientRecord) -> Result<(), Error> {
        let position = record.extended_sequence_number();
        self.write(move |t| t.checkpoint_to(position)).await
    }

    /// Checkpoint at `(sequence_number, sub_sequence_number)`; negative sub-sequence
    /// numbers and positions outside `last checkpoint ..= last delivered` are refused.
    pub async fn checkpoint_at(
        &self,
        sequence_number: &str,
        sub_sequence_number: impl Into<i128>,
    ) -> Result<(), Error> {
        let sub = sub_sequence_number.into();
        self.write(move |t| t.checkpoint_at(sequence_number, sub))
            .await
    }

    /// Prepare a checkpoint of everything delivered so far, with optional application state.
    pub async fn prepare_checkpoint(
        &self,
        state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpointer, Error> {
        self.prepare(move |t| t.prepare_checkpoint(state)).await
    }

    /// Prepare a checkpoint at a delivered record.
    pub async fn prepare_checkpoint_record(
        &self,
        record: &KinesisClientRecord,
        state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpointer, Error> {
        let position = record.extended_sequence_number();
        self.prepare(move |t| t.prepare_checkpoint_to(position, state))
            .await
    }

    /// Prepare a checkpoint at `(sequence_number, sub_sequence_number)`.
    pub async fn prepare_checkpoint_at(
        &self,
        sequence_number: &str,
        sub_sequence_number: impl Into<i128>,
        state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpointer, Error> {
        let sub = sub_sequence_number.into();
        self.prepare(move |t| t.prepare_checkpoint_at(sequence_number, sub, state))
            .await
    }

    async fn write(
        &self,
        decide: impl FnOnce(&CheckpointTracker) -> Result<Option<CheckpointUpdate>, Error>,
    ) -> Result<(), Error> {
        let _serial = self.inner.writing.lock().await;
        let update = decide(&self.inner.tracker.lock())?;
        match update {
            Some(update) => self.store(&update).await,
            None => Ok(()),
        }
    }

    async fn prepare(
        &self,
        decide: impl FnOnce(&CheckpointTracker) -> Result<PreparedCheckpoint, Error>,
    ) -> Result<PreparedCheckpointer, Error> {
        let _serial = self.inner.writing.lock().await;
        let prepared = decide(&self.inner.tracker.lock())?;
        if let Some(update) = prepared.update() {
            self.store(update).await?;
        }
        Ok(PreparedCheckpointer {
            prepared,
            checkpointer: self.clone(),
        })
    }

    async fn store(&self, update: &CheckpointUpdate) -> Result<(), Error> {
        self.inner
            .coordinator
            .update_checkpoint(&self.inner.shard_id, update)
            .await?;
        self.inner.tracker.lock().record_written(update);
        Ok(())
    }
}

/// A prepared (two-phase) checkpoint: stored as `pendingCheckpoint`, committed by
/// [`PreparedCheckpointer::checkpoint`].
#[derive(Debug, Clone)]
pub struct PreparedCheckpointer {
    prepared: PreparedCheckpoint,
    checkpointer: RecordProcessorCheckpointer,
}

impl PreparedCheckpointer {
    /// The position the commit will checkpoint.
    pub fn pending_checkpoint(&self) -> &ExtendedSequenceNumber {
        self.prepared.position()
    }

    /// Commit: move the checkpoint to the prepared position; fails if it moved past it.
    pub async fn checkpoint(&self) -> Result<(), Error> {
        let prepared = &self.prepared;
        self.checkpointer.write(|t| t.commit(prepared)).await
    }
}
