//! The persisted form of a stream's description: plain data the store reads
//! and writes. Capturing one from a live stream and restoring a stream from it
//! is [`crate::catalog`]'s work; keeping the data apart lets the store name it
//! without depending on streams and shards, which depend on the store.

use crate::pending_reshard::PendingReshard;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The format version written; readers refuse newer ones.
pub const FORMAT: u32 = 1;

/// A stream's persisted description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// Format version ([`FORMAT`]).
    pub format: u32,
    /// Name.
    pub name: String,
    /// ARN, kept as issued (consumer ARNs embed it).
    pub arn: String,
    /// Creation time, epoch ms.
    pub created_ms: i64,
    /// Status on the wire (`CREATING`, `ACTIVE`, `UPDATING`, `DELETING`).
    pub status: String,
    /// `PROVISIONED` or `ON_DEMAND`.
    pub mode: String,
    /// Retention in hours.
    pub retention_hours: u32,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// KMS key when encrypted.
    pub kms_key: Option<String>,
    /// Enabled shard-level metrics.
    pub shard_level_metrics: BTreeSet<String>,
    /// Enhanced fan-out consumers.
    pub consumers: Vec<ConsumerRecord>,
    /// Every shard, closed ones included, by index.
    pub shards: Vec<ShardRecord>,
    /// The stream's counter when saved: a floor for the counter after a restart.
    pub counter: u64,
    /// Encryption switches by record counter (see `StreamMeta`); absent in
    /// descriptions saved before they were kept.
    #[serde(default)]
    pub encryption_switches: Vec<(u64, bool)>,
    /// A reshard accepted and not yet carried out when saved.
    #[serde(default)]
    pub pending_reshard: Option<PendingReshard>,
}

/// A shard's persisted description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// Index.
    pub index: u32,
    /// Parent.
    pub parent: Option<u32>,
    /// Second merge parent.
    pub adjacent_parent: Option<u32>,
    /// First hash key, decimal.
    pub hash_start: String,
    /// Last hash key, decimal.
    pub hash_end: String,
    /// Counter reserved at creation.
    pub start_counter: u64,
    /// Creation time, epoch ms.
    pub created_ms: i64,
    /// Counter reserved at close.
    pub end_counter: Option<u64>,
    /// Close time, epoch ms.
    pub closed_ms: Option<i64>,
    /// The highest retention cut-off applied: records before it stay expired
    /// even if retention grows (absent in descriptions of older brokers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_ms: Option<i64>,
    /// Closed with every record expired: its log is gone for good.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reclaimed: bool,
}

/// A consumer's persisted description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerRecord {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Status on the wire.
    pub status: String,
    /// Registration time, epoch ms.
    pub created_ms: i64,
}
