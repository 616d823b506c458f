//! Shards, their ranges and lineage, listing them and resharding.

use super::stream_ref::StreamRef;
use crate::codec::Timestamp;
use serde::{Deserialize, Serialize};

/// A stream's hash-key range on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRange {
    /// Lowest hash key, decimal.
    pub starting_hash_key: String,
    /// Highest hash key (inclusive), decimal.
    pub ending_hash_key: String,
}

/// A shard's sequence-number range; `ending_sequence_number` is set once it is closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRange {
    /// The first sequence number the shard can hold.
    pub starting_sequence_number: String,
    /// The last sequence number, once the shard is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<String>,
}

/// One shard as DescribeStream and ListShards describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Shard {
    /// The shard id.
    pub shard_id: String,
    /// The shard this one was split from (or the first of two merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<String>,
    /// The second parent of a merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<String>,
    /// The hash keys this shard owns.
    pub hash_key_range: HashKeyRange,
    /// The sequence numbers this shard spans.
    pub sequence_number_range: SequenceNumberRange,
}

/// A child shard named at the end of a closed parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShard {
    /// The child's id.
    pub shard_id: String,
    /// Its parents (one for a split, two for a merge).
    pub parent_shards: Vec<String>,
    /// The hash keys it owns.
    pub hash_key_range: HashKeyRange,
}

/// ListShards' `ShardFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilter {
    /// AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP or FROM_TIMESTAMP.
    #[serde(rename = "Type", default)]
    pub filter_type: String,
    /// For AFTER_SHARD_ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// For AT_TIMESTAMP and FROM_TIMESTAMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// ListShards input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    /// Which stream (not with NextToken).
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// List shards after this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_shard_id: Option<String>,
    /// Page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
    /// Disambiguates re-created streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_creation_timestamp: Option<Timestamp>,
    /// Which shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_filter: Option<ShardFilter>,
}

/// ListShards output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsOutput {
    /// Shards on this page.
    pub shards: Vec<Shard>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// SplitShard input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SplitShardInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// The shard to split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_to_split: Option<String>,
    /// The first hash key of the upper child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_starting_hash_key: Option<String>,
}

/// MergeShards input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct MergeShardsInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// First shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_to_merge: Option<String>,
    /// Its neighbour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacent_shard_to_merge: Option<String>,
}

/// UpdateShardCount input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// New number of open shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_shard_count: Option<i64>,
    /// `UNIFORM_SCALING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_type: Option<String>,
}

/// UpdateShardCount output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountOutput {
    /// Stream name.
    pub stream_name: String,
    /// Open shards before.
    pub current_shard_count: i64,
    /// Open shards after.
    pub target_shard_count: i64,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}
