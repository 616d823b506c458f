//! A stream: its status, settings, shards and the routing table of its open shards.

use crate::counter::StreamCounter;
use crate::pending_reshard::PendingReshard;
use crate::shard::Shard;
use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model;
pub use kinesis_proto::model::{ConsumerStatus, StreamStatus};
use parking_lot::RwLock;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// PROVISIONED or ON_DEMAND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamMode {
    /// Shards chosen by the user.
    Provisioned,
    /// Shards managed by the service.
    OnDemand,
}

impl StreamMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }

    /// The wire details.
    pub fn details(self) -> model::StreamModeDetails {
        model::StreamModeDetails {
            stream_mode: self.as_str().to_string(),
        }
    }
}

/// An enhanced fan-out consumer registered on a stream.
#[derive(Debug, Clone)]
pub struct ConsumerEntry {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// CREATING, ACTIVE or DELETING.
    pub status: ConsumerStatus,
    /// Registration time, epoch ms.
    pub created_ms: i64,
}

/// A stream's mutable settings and shard set. A clone shares the shards (an
/// `Arc` each): it is a snapshot to restore if saving a change fails.
#[derive(Clone)]
pub struct StreamMeta {
    /// Status.
    pub status: StreamStatus,
    /// Bumped on every status change so a delayed transition can tell it is stale.
    pub status_epoch: u64,
    /// Capacity mode.
    pub mode: StreamMode,
    /// Retention in hours.
    pub retention_hours: u32,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Every shard, closed ones included, by index.
    pub shards: Vec<Arc<Shard>>,
    /// Open shards sorted by their hash range: the routing table.
    pub open: Vec<Arc<Shard>>,
    /// The KMS key when encryption is on.
    pub kms_key: Option<String>,
    /// Encryption switches: from record counter `.0` on, records are written
    /// encrypted iff `.1`. A record keeps the encryption it was written with;
    /// one entry per switch, not a flag per record, saved with the stream.
    pub encryption_switches: Vec<(u64, bool)>,
    /// A reshard accepted while UPDATING and not yet carried out; saved with
    /// the stream so a restart completes it.
    pub pending_reshard: Option<PendingReshard>,
    /// Enhanced shard-level metrics enabled.
    pub shard_level_metrics: BTreeSet<String>,
    /// Enhanced fan-out consumers by name.
    pub consumers: BTreeMap<String, ConsumerEntry>,
}

/// The `EncryptionType` of the record with this counter, given a stream's
/// encryption switches: the setting when it was written (`current` for
/// records older than every switch this process saw).
pub fn encryption_at<'a>(switches: &[(u64, bool)], current: &'a str, counter: u64) -> &'a str {
    let i = switches.partition_point(|(c, _)| *c <= counter);
    match i.checked_sub(1).map(|i| switches[i].1) {
        Some(true) => "KMS",
        Some(false) => "NONE",
        None => current,
    }
}

impl StreamMeta {
    /// Rebuild the routing table after shards opened or closed.
    pub fn rebuild_routing(&mut self) {
        let mut open: Vec<Arc<Shard>> = self
            .shards
            .iter()
            .filter(|s| s.is_open())
            .cloned()
            .collect();
        open.sort_by_key(|s| s.range.start);
        self.open = open;
    }

    /// The open shard that owns `hash_key`.
    pub fn route(&self, hash_key: u128) -> Option<&Arc<Shard>> {
        let i = self.open.partition_point(|s| s.range.end < hash_key);
        self.open.get(i).filter(|s| s.range.contains(hash_key))
    }

    /// A shard by index.
    pub fn shard(&self, index: u32) -> Option<&Arc<Shard>> {
        self.shards.get(index as usize)
    }

    /// The next shard index to allocate.
    pub fn next_index(&self) -> u32 {
        self.shards.len() as u32
    }

    /// The `EncryptionType` of the record with this counter; see [`encryption_at`].
    pub fn encryption_of(&self, counter: u64) -> &'static str {
        encryption_at(&self.encryption_switches, self.encryption_type(), counter)
    }

    /// Note that records from counter `next` on are written with
    /// encryption `on`.
    pub fn switch_encryption(&mut self, next: u64, on: bool) {
        if self.encryption_switches.is_empty() {
            let before = self.kms_key.is_some();
            self.encryption_switches.push((0, before));
        }
        self.encryption_switches.push((next, on));
    }

    /// `EncryptionType` on the wire.
    pub fn encryption_type(&self) -> &'static str {
        if self.kms_key.is_some() {
            "KMS"
        } else {
            "NONE"
        }
    }

    /// Open hash ranges, sorted.
    pub fn open_ranges(&self) -> Vec<HashRange> {
        self.open.iter().map(|s| s.range).collect()
    }
}

/// A stream.
pub struct Stream {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Creation time, epoch ms.
    pub created_ms: i64,
    /// Source of every sequence number in the stream: unique per stream and
    /// increasing, so a child shard's numbers are above its parents'.
    pub counter: StreamCounter,
    /// Settings and shards.
    pub meta: RwLock<StreamMeta>,
}
