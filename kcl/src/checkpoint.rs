//! The checkpointer's rules (KCL `ShardRecordProcessorCheckpointer`, docs/kcl-behaviour.md §3)
//! as a pure state machine.
//!
//! [`CheckpointTracker`] decides whether a checkpoint is allowed and what it
//! writes; it never writes. The caller sends the returned [`CheckpointUpdate`]
//! to the lease store (`LeaseStore::update_checkpoint`) and, only once that
//! conditional write succeeded, reports it back with
//! [`CheckpointTracker::record_written`]. A failed write (lease lost) therefore
//! leaves the tracker where it was, as KCL leaves `lastCheckpointValue`.

use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
pub use crate::lease::CheckpointUpdate;
use crate::lease::Lease;

/// A prepared checkpoint: the position to commit later and the write that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCheckpoint {
    position: ExtendedSequenceNumber,
    update: Option<CheckpointUpdate>,
}

impl PreparedCheckpoint {
    /// The position a later [`CheckpointTracker::commit`] checkpoints.
    pub fn position(&self) -> &ExtendedSequenceNumber {
        &self.position
    }

    /// The pending-checkpoint write to make now; `None` when the position is already the checkpoint.
    pub fn update(&self) -> Option<&CheckpointUpdate> {
        self.update.as_ref()
    }
}

/// Per-shard checkpoint state: the stored checkpoint and the bounds a new one must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointTracker {
    last_checkpoint: ExtendedSequenceNumber,
    largest_permitted: ExtendedSequenceNumber,
    shard_end_sequence: Option<ExtendedSequenceNumber>,
    pending_checkpoint: Option<ExtendedSequenceNumber>,
}

impl CheckpointTracker {
    /// A tracker for a shard whose stored checkpoint is `last_checkpoint`; nothing delivered yet.
    pub fn new(last_checkpoint: ExtendedSequenceNumber) -> Self {
        CheckpointTracker {
            largest_permitted: last_checkpoint.clone(),
            last_checkpoint,
            shard_end_sequence: None,
            pending_checkpoint: None,
        }
    }

    /// A tracker initialised from a lease just acquired (checkpoint and pending checkpoint).
    pub fn from_lease(lease: &Lease) -> Self {
        CheckpointTracker {
            pending_checkpoint: lease.pending_checkpoint.clone(),
            ..Self::new(lease.checkpoint.clone())
        }
    }

    /// The checkpoint known to be stored.
    pub fn last_checkpoint(&self) -> &ExtendedSequenceNumber {
        &self.last_checkpoint
    }

    /// The highest position delivered to the processor (`SHARD_END` once the shard ended).
    pub fn largest_permitted(&self) -> &ExtendedSequenceNumber {
        &self.largest_permitted
    }

    /// The shard's last position, once the shard end has been reached.
    pub fn shard_end_sequence(&self) -> Option<&ExtendedSequenceNumber> {
        self.shard_end_sequence.as_ref()
    }

    /// The prepared checkpoint known to be stored, if any.
    pub fn pending_checkpoint(&self) -> Option<&ExtendedSequenceNumber> {
        self.pending_checkpoint.as_ref()
    }

    /// Record the last position of a batch handed to the processor.
    pub fn set_largest_permitted(&mut self, position: ExtendedSequenceNumber) {
        self.largest_permitted = position;
    }

    /// Enter `shardEnded` (KCL `ShutdownTask`): the largest delivered position becomes the
    /// shard's last one, which is then stored as `SHARD_END`, and `checkpoint()` stores `SHARD_END`.
    pub fn mark_shard_ended(&mut self) {
        let last = std::mem::replace(
            &mut self.largest_permitted,
            ExtendedSequenceNumber::ShardEnd,
        );
        if !last.is_shard_end() {
            self.shard_end_sequence = Some(last);
        }
    }

    /// `checkpoint()`: checkpoint everything delivered so far.
    pub fn checkpoint(&self) -> Result<Option<CheckpointUpdate>, Error> {
        self.checkpoint_to(self.largest_permitted.clone())
    }

    /// `checkpoint(sequenceNumber, subSequenceNumber)`; negative sub-sequence numbers are rejected.
    pub fn checkpoint_at(
        &self,
        sequence_number: &str,
        sub_sequence_number: impl Into<i128>,
    ) -> Result<Option<CheckpointUpdate>, Error> {
        self.checkpoint_to(position(sequence_number, sub_sequence_number.into())?)
    }

    /// Checkpoint at `position`; `Ok(None)` when it is already the stored checkpoint.
    pub fn checkpoint_to(
        &self,
        position: ExtendedSequenceNumber,
    ) -> Result<Option<CheckpointUpdate>, Error> {
        self.validate(&position)?;
        // KCL compares the requested value, not the SHARD_END it may turn into.
        if position == self.last_checkpoint {
            return Ok(None);
        }
        Ok(Some(CheckpointUpdate::Checkpoint(
            self.stored_form(position),
        )))
    }

    /// `prepareCheckpoint(state)`: prepare everything delivered so far.
    pub fn prepare_checkpoint(&self, state: Option<Vec<u8>>) -> Result<PreparedCheckpoint, Error> {
        self.prepare_checkpoint_to(self.largest_permitted.clone(), state)
    }

    /// `prepareCheckpoint(sequenceNumber, subSequenceNumber, state)`.
    pub fn prepare_checkpoint_at(
        &self,
        sequence_number: &str,
        sub_sequence_number: impl Into<i128>,
        state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint, Error> {
        self.prepare_checkpoint_to(
            position(sequence_number, sub_sequence_number.into())?,
            state,
        )
    }

    /// Prepare a checkpoint at `position` under the same bounds as a checkpoint.
    pub fn prepare_checkpoint_to(
        &self,
        position: ExtendedSequenceNumber,
        state: Option<Vec<u8>>,
    ) -> Result<PreparedCheckpoint, Error> {
        self.validate(&position)?;
        let position = self.stored_form(position);
        // Preparing the stored checkpoint only happens before any record was
        // delivered; KCL hands back a checkpointer that does nothing.
        let update = (position != self.last_checkpoint).then(|| CheckpointUpdate::Prepare {
            pending: position.clone(),
            state,
        });
        Ok(PreparedCheckpoint { position, update })
    }

    /// Commit a prepared checkpoint; fails if the checkpoint has since moved past it.
    pub fn commit(&self, prepared: &PreparedCheckpoint) -> Result<Option<CheckpointUpdate>, Error> {
        self.checkpoint_to(prepared.position.clone())
    }

    /// Note that `update` was written to the lease store.
    pub fn record_written(&mut self, update: &CheckpointUpdate) {
        match update {
            CheckpointUpdate::Checkpoint(position) => {
                self.last_checkpoint = position.clone();
                self.pending_checkpoint = None;
            }
            CheckpointUpdate::Prepare { pending, .. } => {
                self.pending_checkpoint = Some(pending.clone());
            }
        }
    }

    fn validate(&self, position: &ExtendedSequenceNumber) -> Result<(), Error> {
        if self.last_checkpoint <= *position && *position <= self.largest_permitted {
            Ok(())
        } else {
            Err(Error::InvalidCheckpoint {
                value: position.clone(),
                last_checkpoint: self.last_checkpoint.clone(),
                largest_permitted: self.largest_permitted.clone(),
            })
        }
    }

    /// The shard's very last record is stored as `SHARD_END`, so children can start.
    fn stored_form(&self, position: ExtendedSequenceNumber) -> ExtendedSequenceNumber {
        if self.shard_end_sequence.as_ref() == Some(&position) {
            ExtendedSequenceNumber::ShardEnd
        } else {
            position
        }
    }
}

fn position(
    sequence_number: &str,
    sub_sequence_number: i128,
) -> Result<ExtendedSequenceNumber, Error> {
    let sub = u64::try_from(sub_sequence_number)
        .map_err(|_| Error::InvalidSubSequenceNumber(sub_sequence_number))?;
    Ok(ExtendedSequenceNumber::parse(sequence_number, sub)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExtendedSequenceNumber::{Latest, ShardEnd, TrimHorizon};

    const S1: &str = "49600871682957036442365024926191073437251060580128653314";
    const S2: &str = "49600871682957036442365024926191073437251060580128653315";
    const S3: &str = "49600871682957036442365024926191073437251060580128653316";

    fn pos(s: &str, sub: u64) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::parse(s, sub).expect("valid test sequence number")
    }

    fn delivered_up_to(s: &str, sub: u64) -> CheckpointTracker {
        let mut t = CheckpointTracker::new(TrimHorizon);
        t.set_largest_permitted(pos(s, sub));
        t
    }

    #[test]
    fn checkpoint_without_args_takes_largest_permitted() {
        let t = delivered_up_to(S2, 0);
        assert_eq!(
            t.checkpoint().ok(),
            Some(Some(CheckpointUpdate::Checkpoint(pos(S2, 0))))
        );
    }

    #[test]
    fn nothing_delivered_means_checkpoint_is_a_no_op() {
        let t = CheckpointTracker::new(Latest);
        assert_eq!(t.checkpoint().ok(), Some(None));
    }

    #[test]
    fn accepts_anything_between_last_and_largest() {
        let mut t = delivered_up_to(S3, 0);
        let u = t.checkpoint_at(S1, 0).ok().flatten();
        assert_eq!(u, Some(CheckpointUpdate::Checkpoint(pos(S1, 0))));
        t.record_written(&CheckpointUpdate::Checkpoint(pos(S1, 0)));
        assert_eq!(t.last_checkpoint(), &pos(S1, 0));
        assert!(t.checkpoint_at(S3, 0).is_ok());
    }

    #[test]
    fn beyond_largest_permitted_is_invalid_and_names_both_bounds() {
        let t = delivered_up_to(S2, 0);
        match t.checkpoint_at(S3, 0) {
            Err(Error::InvalidCheckpoint {
                value,
                last_checkpoint,
                largest_permitted,
            }) => {
                assert_eq!(value, pos(S3, 0));
                assert_eq!(last_checkpoint, TrimHorizon);
                assert_eq!(largest_permitted, pos(S2, 0));
            }
            other => panic!("expected InvalidCheckpoint, got {other:?}"),
        }
    }

    #[test]
    fn below_last_checkpoint_is_invalid() {
        let mut t = delivered_up_to(S3, 0);
        t.record_written(&CheckpointUpdate::Checkpoint(pos(S2, 0)));
        assert!(matches!(
            t.checkpoint_at(S1, 0),
            Err(Error::InvalidCheckpoint { .. })
        ));
        assert!(matches!(
            t.checkpoint_to(Latest),
            Err(Error::InvalidCheckpoint { .. })
        ));
    }

    #[test]
    fn negative_or_huge_sub_sequence_is_rejected() {
        let t = delivered_up_to(S2, 0);
        assert!(matches!(
            t.checkpoint_at(S1, -1),
            Err(Error::InvalidSubSequenceNumber(-1))
        ));
        assert!(matches!(
            t.checkpoint_at(S1, i128::from(u64::MAX) + 1),
            Err(Error::InvalidSubSequenceNumber(_))
        ));
        assert!(matches!(
            t.prepare_checkpoint_at(S1, -5i64, None),
            Err(Error::InvalidSubSequenceNumber(-5))
        ));
    }

    #[test]
    fn malformed_sequence_number_is_rejected() {
        let t = delivered_up_to(S2, 0);
        assert!(matches!(
            t.checkpoint_at("12x", 0),
            Err(Error::InvalidSequenceNumber(_))
        ));
    }

    #[test]
    fn checkpointing_the_stored_value_is_a_no_op() {
        let mut t = delivered_up_to(S2, 0);
        t.record_written(&CheckpointUpdate::Checkpoint(pos(S2, 0)));
        assert_eq!(t.checkpoint_at(S2, 0u64).ok(), Some(None));
        assert_eq!(t.checkpoint().ok(), Some(None));
    }

    #[test]
    fn sub_sequence_bounds_inside_an_aggregate() {
        // An aggregate at S2 with user records 0..=2 was delivered.
        let t = delivered_up_to(S2, 2);
        assert!(t.checkpoint_at(S2, 1).is_ok());
        assert!(t.checkpoint_at(S2, 2).is_ok());
        assert!(matches!(
            t.checkpoint_at(S2, 3),
            Err(Error::InvalidCheckpoint { .. })
        ));
    }

    #[test]
    fn the_shards_last_record_is_stored_as_shard_end() {
        let mut t = delivered_up_to(S2, 0);
        t.mark_shard_ended();
        assert_eq!(t.shard_end_sequence(), Some(&pos(S2, 0)));
        assert_eq!(
            t.checkpoint_at(S2, 0).ok(),
            Some(Some(CheckpointUpdate::Checkpoint(ShardEnd)))
        );
        assert_eq!(
            t.checkpoint_at(S1, 0).ok(),
            Some(Some(CheckpointUpdate::Checkpoint(pos(S1, 0))))
        );
        t.mark_shard_ended();
        assert_eq!(
            t.shard_end_sequence(),
            Some(&pos(S2, 0)),
            "marking twice keeps the last record"
        );
    }

    #[test]
    fn shard_ended_checkpoint_stores_shard_end() {
        let mut t = delivered_up_to(S2, 0);
        t.mark_shard_ended();
        let u = t.checkpoint().ok().flatten();
        assert_eq!(u, Some(CheckpointUpdate::Checkpoint(ShardEnd)));
        if let Some(u) = u {
            t.record_written(&u);
        }
        assert_eq!(t.last_checkpoint(), &ShardEnd);
        assert_eq!(t.checkpoint().ok(), Some(None));
    }

    #[test]
    fn prepare_then_commit() {
        let mut t = delivered_up_to(S2, 0);
        let p = t
            .prepare_checkpoint_at(S1, 0, Some(b"app".to_vec()))
            .expect("within bounds");
        assert_eq!(p.position(), &pos(S1, 0));
        let write = p.update().cloned().expect("a pending write");
        assert_eq!(
            write,
            CheckpointUpdate::Prepare {
                pending: pos(S1, 0),
                state: Some(b"app".to_vec())
            }
        );
        t.record_written(&write);
        assert_eq!(t.pending_checkpoint(), Some(&pos(S1, 0)));
        assert_eq!(
            t.last_checkpoint(),
            &TrimHorizon,
            "prepare does not move the checkpoint"
        );

        let commit = t.commit(&p).ok().flatten().expect("commit writes");
        assert_eq!(commit, CheckpointUpdate::Checkpoint(pos(S1, 0)));
        t.record_written(&commit);
        assert_eq!(t.last_checkpoint(), &pos(S1, 0));
        assert_eq!(t.pending_checkpoint(), None);
    }

    #[test]
    fn prepare_is_bounded_like_checkpoint() {
        let t = delivered_up_to(S1, 0);
        assert!(matches!(
            t.prepare_checkpoint_at(S2, 0, None),
            Err(Error::InvalidCheckpoint { .. })
        ));
    }

    #[test]
    fn preparing_the_stored_value_writes_nothing() {
        let t = CheckpointTracker::new(pos(S1, 0));
        let p = t.prepare_checkpoint(None).expect("valid");
        assert_eq!(p.update(), None);
        assert_eq!(t.commit(&p).ok(), Some(None));
    }

    #[test]
    fn committing_a_stale_prepare_fails() {
        let mut t = delivered_up_to(S3, 0);
        let p = t.prepare_checkpoint_at(S1, 0, None).expect("valid");
        t.record_written(&CheckpointUpdate::Checkpoint(pos(S2, 0)));
        assert!(matches!(t.commit(&p), Err(Error::InvalidCheckpoint { .. })));
    }

    #[test]
    fn preparing_the_last_record_prepares_shard_end() {
        let mut t = delivered_up_to(S2, 0);
        t.mark_shard_ended();
        let p = t.prepare_checkpoint_at(S2, 0, None).expect("valid");
        assert_eq!(p.position(), &ShardEnd);
        assert_eq!(
            t.commit(&p).ok(),
            Some(Some(CheckpointUpdate::Checkpoint(ShardEnd)))
        );
    }

    #[test]
    fn from_lease_picks_up_the_pending_checkpoint() {
        let mut lease = Lease::new("s", pos(S1, 0));
        lease.pending_checkpoint = Some(pos(S2, 0));
        let t = CheckpointTracker::from_lease(&lease);
        assert_eq!(t.last_checkpoint(), &pos(S1, 0));
        assert_eq!(t.largest_permitted(), &pos(S1, 0));
        assert_eq!(t.pending_checkpoint(), Some(&pos(S2, 0)));
        assert_eq!(t.shard_end_sequence(), None);
    }

    #[test]
    fn a_failed_write_leaves_the_tracker_unchanged() {
        let t = delivered_up_to(S2, 0);
        let before = t.clone();
        let _write = t.checkpoint();
        assert_eq!(t, before);
    }
}
