//! The lease record: one per shard, the unit of work a worker owns
//! (KCL's DynamoDB lease item, docs/kcl-leases.md).

use std::collections::BTreeSet;

use kinesis_proto::hash_key::HashRange;

use crate::extended_sequence::ExtendedSequenceNumber;

/// A write the checkpointer asks the lease store to make (applied by
/// [`Lease::apply_checkpoint_update`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointUpdate {
    /// Move `checkpoint`, clear the pending checkpoint and reset `ownerSwitchesSinceCheckpoint`.
    Checkpoint(ExtendedSequenceNumber),
    /// Store a prepared checkpoint (`pendingCheckpoint*`) without moving `checkpoint`.
    Prepare {
        /// The prepared position.
        pending: ExtendedSequenceNumber,
        /// Application bytes saved alongside (`pendingCheckpointState`).
        state: Option<Vec<u8>>,
    },
}

/// One lease as stored in the lease table.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// `leaseKey`: the shard id, or `account:stream:epoch:shard` for multi-stream apps.
    pub lease_key: String,
    /// `leaseOwner`: the worker holding the lease, `None` when unowned; during a
    /// graceful hand-off, the worker the lease is being handed to.
    pub lease_owner: Option<String>,
    /// `checkpointOwner` (KCL 3.x): set only during a graceful hand-off, to the worker
    /// handing the lease off, which keeps renewing and checkpointing it until it passes
    /// it on (docs/kcl3-coordination.md).
    pub checkpoint_owner: Option<String>,
    /// `leaseCounter`: bumped by every write; the optimistic-concurrency token.
    pub lease_counter: u64,
    /// `checkpoint` + `checkpointSubSequenceNumber`: where processing resumes.
    pub checkpoint: ExtendedSequenceNumber,
    /// `pendingCheckpoint` + `pendingCheckpointSubSequenceNumber`: a prepared checkpoint.
    pub pending_checkpoint: Option<ExtendedSequenceNumber>,
    /// `pendingCheckpointState`: application bytes saved with the prepared checkpoint.
    pub pending_checkpoint_state: Option<Vec<u8>>,
    /// `ownerSwitchesSinceCheckpoint`: ownership changes since the last checkpoint.
    pub owner_switches_since_checkpoint: u64,
    /// `parentShardId`: 1 parent for a split child, 2 for a merge child, none for an original shard.
    pub parent_shard_ids: BTreeSet<String>,
    /// `childShardIds`: set when the shard ends.
    pub child_shard_ids: BTreeSet<String>,
    /// `startingHashKey`/`endingHashKey`; `None` when the lease predates hash ranges.
    pub hash_key_range: Option<HashRange>,
    /// `throughputKBps` (KCL 3.x): the owner's last measured rate in KiB/s, written with
    /// its renewals (docs/kcl3-coordination.md); `None` until first measured.
    pub throughput_kbps: Option<f64>,
    /// `streamName` + `shardId`: set on the leases of a multi-stream application (the
    /// serialized stream identifier and the shard id the key is made of).
    pub multi_stream: Option<MultiStreamIds>,
}

/// The stream and shard of a multi-stream lease, as its `streamName` and `shardId` attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiStreamIds {
    /// `streamName`: `account:stream:creationEpoch`.
    pub stream_identifier: String,
    /// `shardId`.
    pub shard_id: String,
}

impl Lease {
    /// A new, unowned lease with counter 0 starting at `checkpoint`.
    pub fn new(lease_key: impl Into<String>, checkpoint: ExtendedSequenceNumber) -> Self {
        Lease {
            lease_key: lease_key.into(),
            lease_owner: None,
            checkpoint_owner: None,
            lease_counter: 0,
            checkpoint,
            pending_checkpoint: None,
            pending_checkpoint_state: None,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: BTreeSet::new(),
            child_shard_ids: BTreeSet::new(),
            hash_key_range: None,
            throughput_kbps: None,
            multi_stream: None,
        }
    }

    /// This lease with the given parent shard ids.
    pub fn with_parent_shard_ids<I, S>(mut self, parents: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.parent_shard_ids = parents.into_iter().map(Into::into).collect();
        self
    }

    /// This lease with the given hash-key range.
    pub fn with_hash_key_range(mut self, range: HashRange) -> Self {
        self.hash_key_range = Some(range);
        self
    }

    /// The worker processing the lease now (KCL `actualOwner`): the `checkpointOwner`
    /// during a hand-off, otherwise the `leaseOwner`.
    pub fn actual_owner(&self) -> Option<&str> {
        self.checkpoint_owner
            .as_deref()
            .or(self.lease_owner.as_deref())
    }

    /// Whether `worker_id` processes the lease now (its [`actual_owner`](Self::actual_owner)).
    pub fn is_owned_by(&self, worker_id: &str) -> bool {
        self.actual_owner() == Some(worker_id)
    }

    /// The worker a pending graceful hand-off passes the lease to, if one is pending.
    pub fn handoff_target(&self) -> Option<&str> {
        self.checkpoint_owner
            .as_ref()
            .and(self.lease_owner.as_deref())
    }

    /// Apply a checkpoint write's field changes (not the counter, which the store bumps).
    pub fn apply_checkpoint_update(&mut self, update: &CheckpointUpdate) {
        match update {
            CheckpointUpdate::Checkpoint(position) => {
                self.checkpoint = position.clone();
                self.pending_checkpoint = None;
                self.pending_checkpoint_state = None;
                self.owner_switches_since_checkpoint = 0;
            }
            CheckpointUpdate::Prepare { pending, state } => {
                self.pending_checkpoint = Some(pending.clone());
                self.pending_checkpoint_state = state.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(s: &str, sub: u64) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::parse(s, sub).expect("valid test sequence number")
    }

    #[test]
    fn new_lease_is_unowned_at_counter_zero() {
        let l = Lease::new("shardId-000000000002", ExtendedSequenceNumber::TrimHorizon)
            .with_parent_shard_ids(["shardId-000000000000", "shardId-000000000001"])
            .with_hash_key_range(HashRange::FULL);
        assert_eq!(l.lease_owner, None);
        assert_eq!(l.lease_counter, 0);
        assert_eq!(l.parent_shard_ids.len(), 2);
        assert_eq!(l.hash_key_range, Some(HashRange::FULL));
        assert!(!l.is_owned_by("w"));
        assert_eq!(l.handoff_target(), None);
    }

    #[test]
    fn during_a_handoff_the_checkpoint_owner_is_the_actual_owner() {
        let mut l = Lease::new("s", ExtendedSequenceNumber::TrimHorizon);
        l.lease_owner = Some("a".into());
        assert!(l.is_owned_by("a"));
        assert_eq!(l.handoff_target(), None);
        l.lease_owner = Some("b".into());
        l.checkpoint_owner = Some("a".into());
        assert!(l.is_owned_by("a"));
        assert!(!l.is_owned_by("b"));
        assert_eq!(l.actual_owner(), Some("a"));
        assert_eq!(l.handoff_target(), Some("b"));
    }

    #[test]
    fn prepare_keeps_checkpoint_and_commit_clears_pending() {
        let mut l = Lease::new("s", ExtendedSequenceNumber::TrimHorizon);
        l.owner_switches_since_checkpoint = 2;
        l.apply_checkpoint_update(&CheckpointUpdate::Prepare {
            pending: pos("5", 1),
            state: Some(b"state".to_vec()),
        });
        assert_eq!(l.checkpoint, ExtendedSequenceNumber::TrimHorizon);
        assert_eq!(l.pending_checkpoint, Some(pos("5", 1)));
        assert_eq!(l.pending_checkpoint_state.as_deref(), Some(&b"state"[..]));
        assert_eq!(l.owner_switches_since_checkpoint, 2);

        l.apply_checkpoint_update(&CheckpointUpdate::Checkpoint(pos("5", 1)));
        assert_eq!(l.checkpoint, pos("5", 1));
        assert_eq!(l.pending_checkpoint, None);
        assert_eq!(l.pending_checkpoint_state, None);
        assert_eq!(l.owner_switches_since_checkpoint, 0);
    }
}
