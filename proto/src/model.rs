//! Request and response shapes of the Kinesis Data Streams API (2013-12-02),
//! with member names exactly as AWS spells them.
//!
//! Members the service requires are still `Option` (or defaulted) on requests,
//! so that a missing one reaches the broker's validation and is answered with
//! `ValidationException`, as the service does, instead of a parse failure.

use crate::codec::{Blob, Timestamp};
use serde::{Deserialize, Serialize};

/// Every operation, by its `X-Amz-Target` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// AddTagsToStream.
    AddTagsToStream,
    /// CreateStream.
    CreateStream,
    /// DecreaseStreamRetentionPeriod.
    DecreaseStreamRetentionPeriod,
    /// DeleteStream.
    DeleteStream,
    /// DeregisterStreamConsumer.
    DeregisterStreamConsumer,
    /// DescribeLimits.
    DescribeLimits,
    /// DescribeStream.
    DescribeStream,
    /// DescribeStreamConsumer.
    DescribeStreamConsumer,
    /// DescribeStreamSummary.
    DescribeStreamSummary,
    /// DisableEnhancedMonitoring.
    DisableEnhancedMonitoring,
    /// EnableEnhancedMonitoring.
    EnableEnhancedMonitoring,
    /// GetRecords.
    GetRecords,
    /// GetShardIterator.
    GetShardIterator,
    /// IncreaseStreamRetentionPeriod.
    IncreaseStreamRetentionPeriod,
    /// ListShards.
    ListShards,
    /// ListStreamConsumers.
    ListStreamConsumers,
    /// ListStreams.
    ListStreams,
    /// ListTagsForStream.
    ListTagsForStream,
    /// MergeShards.
    MergeShards,
    /// PutRecord.
    PutRecord,
    /// PutRecords.
    PutRecords,
    /// RegisterStreamConsumer.
    RegisterStreamConsumer,
    /// RemoveTagsFromStream.
    RemoveTagsFromStream,
    /// SplitShard.
    SplitShard,
    /// StartStreamEncryption.
    StartStreamEncryption,
    /// StopStreamEncryption.
    StopStreamEncryption,
    /// SubscribeToShard.
    SubscribeToShard,
    /// UpdateShardCount.
    UpdateShardCount,
    /// UpdateStreamMode.
    UpdateStreamMode,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 29] = [
        Operation::AddTagsToStream,
        Operation::CreateStream,
        Operation::DecreaseStreamRetentionPeriod,
        Operation::DeleteStream,
        Operation::DeregisterStreamConsumer,
        Operation::DescribeLimits,
        Operation::DescribeStream,
        Operation::DescribeStreamConsumer,
        Operation::DescribeStreamSummary,
        Operation::DisableEnhancedMonitoring,
        Operation::EnableEnhancedMonitoring,
        Operation::GetRecords,
        Operation::GetShardIterator,
        Operation::IncreaseStreamRetentionPeriod,
        Operation::ListShards,
        Operation::ListStreamConsumers,
        Operation::ListStreams,
        Operation::ListTagsForStream,
        Operation::MergeShards,
        Operation::PutRecord,
        Operation::PutRecords,
        Operation::RegisterStreamConsumer,
        Operation::RemoveTagsFromStream,
        Operation::SplitShard,
        Operation::StartStreamEncryption,
        Operation::StopStreamEncryption,
        Operation::SubscribeToShard,
        Operation::UpdateShardCount,
        Operation::UpdateStreamMode,
    ];

    /// The operation's name, as in `X-Amz-Target: Kinesis_20131202.<name>`.
    pub const fn name(self) -> &'static str {
        match self {
            Operation::AddTagsToStream => "AddTagsToStream",
            Operation::CreateStream => "CreateStream",
            Operation::DecreaseStreamRetentionPeriod => "DecreaseStreamRetentionPeriod",
            Operation::DeleteStream => "DeleteStream",
            Operation::DeregisterStreamConsumer => "DeregisterStreamConsumer",
            Operation::DescribeLimits => "DescribeLimits",
            Operation::DescribeStream => "DescribeStream",
            Operation::DescribeStreamConsumer => "DescribeStreamConsumer",
            Operation::DescribeStreamSummary => "DescribeStreamSummary",
            Operation::DisableEnhancedMonitoring => "DisableEnhancedMonitoring",
            Operation::EnableEnhancedMonitoring => "EnableEnhancedMonitoring",
            Operation::GetRecords => "GetRecords",
            Operation::GetShardIterator => "GetShardIterator",
            Operation::IncreaseStreamRetentionPeriod => "IncreaseStreamRetentionPeriod",
            Operation::ListShards => "ListShards",
            Operation::ListStreamConsumers => "ListStreamConsumers",
            Operation::ListStreams => "ListStreams",
            Operation::ListTagsForStream => "ListTagsForStream",
            Operation::MergeShards => "MergeShards",
            Operation::PutRecord => "PutRecord",
            Operation::PutRecords => "PutRecords",
            Operation::RegisterStreamConsumer => "RegisterStreamConsumer",
            Operation::RemoveTagsFromStream => "RemoveTagsFromStream",
            Operation::SplitShard => "SplitShard",
            Operation::StartStreamEncryption => "StartStreamEncryption",
            Operation::StopStreamEncryption => "StopStreamEncryption",
            Operation::SubscribeToShard => "SubscribeToShard",
            Operation::UpdateShardCount => "UpdateShardCount",
            Operation::UpdateStreamMode => "UpdateStreamMode",
        }
    }

    /// The operation an `X-Amz-Target` header names, if any.
    pub fn from_target(target: &str) -> Option<Operation> {
        let name = target.strip_prefix(crate::codec::TARGET_PREFIX)?;
        Operation::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The full `X-Amz-Target` value.
    pub fn target(self) -> String {
        format!("{}{}", crate::codec::TARGET_PREFIX, self.name())
    }
}

/// A value of a wire enumeration that this crate does not know, kept as
/// sent so that it round-trips and the broker can name it in its answer
/// (as the AWS SDKs' `UnknownVariantValue`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownValue(String);

impl UnknownValue {
    /// The value as it was sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Defines a wire enumeration: its known values, an `Unknown` catch-all, and
/// the conversions to and from its wire string.
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident { $( $(#[$vdoc:meta])* $variant:ident = $wire:literal, )* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
            /// A value this crate does not know, kept as sent.
            Unknown(UnknownValue),
        }

        impl $name {
            /// The known wire values, in the order the service lists them.
            pub const fn values() -> &'static [&'static str] {
                &[$( $wire, )*]
            }

            /// The wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Unknown(v) => v.as_str(),
                }
            }

            /// Whether the value is one this crate knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $wire => $name::$variant, )*
                    other => $name::Unknown(UnknownValue(other.to_string())),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $wire => $name::$variant, )*
                    _ => $name::Unknown(UnknownValue(s)),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::from(s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($name::from)
            }
        }
    };
}

wire_enum! {
    /// Where a shard iterator or a subscription starts (`ShardIteratorType`,
    /// also SubscribeToShard's `StartingPosition.Type`).
    ShardIteratorType {
        /// At the given sequence number.
        AtSequenceNumber = "AT_SEQUENCE_NUMBER",
        /// Just after the given sequence number.
        AfterSequenceNumber = "AFTER_SEQUENCE_NUMBER",
        /// At the oldest record kept.
        TrimHorizon = "TRIM_HORIZON",
        /// After the newest record.
        Latest = "LATEST",
        /// At the first record at or after the given time.
        AtTimestamp = "AT_TIMESTAMP",
    }
}

/// An absent type reads as the empty string, which the broker rejects by
/// name like any unknown value.
impl Default for ShardIteratorType {
    fn default() -> Self {
        ShardIteratorType::Unknown(UnknownValue(String::new()))
    }
}

wire_enum! {
    /// An enhanced fan-out consumer's status (`ConsumerStatus`).
    ConsumerStatus {
        /// Just registered.
        Creating = "CREATING",
        /// Being deregistered.
        Deleting = "DELETING",
        /// Ready for SubscribeToShard.
        Active = "ACTIVE",
    }
}

/// Needed by the outputs' `Default`; a consumer starts out CREATING.
impl Default for ConsumerStatus {
    fn default() -> Self {
        ConsumerStatus::Creating
    }
}

wire_enum! {
    /// A stream's status (`StreamStatus`).
    StreamStatus {
        /// Just created.
        Creating = "CREATING",
        /// Being deleted.
        Deleting = "DELETING",
        /// Ready.
        Active = "ACTIVE",
        /// Resharding or changing settings.
        Updating = "UPDATING",
    }
}

/// Needed by the outputs' `Default`; a stream starts out CREATING.
impl Default for StreamStatus {
    fn default() -> Self {
        StreamStatus::Creating
    }
}

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

/// `StreamModeDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    /// `PROVISIONED` or `ON_DEMAND`.
    #[serde(default)]
    pub stream_mode: String,
}

/// `EnhancedMetrics` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMetrics {
    /// Shard-level metrics enabled.
    #[serde(default)]
    pub shard_level_metrics: Vec<String>,
}

/// A tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A record as GetRecords and SubscribeToShard return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// Its sequence number.
    pub sequence_number: String,
    /// When the service stored it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approximate_arrival_timestamp: Option<Timestamp>,
    /// Its data.
    pub data: Blob,
    /// Its partition key.
    #[serde(default)]
    pub partition_key: String,
    /// `NONE` or `KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
}

/// Either a stream name or a stream ARN (or both) identify a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StreamRef {
    /// The stream name.
    #[serde(
        rename = "StreamName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub stream_name: Option<String>,
    /// The stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

impl StreamRef {
    /// Refer to a stream by name.
    pub fn name(name: impl Into<String>) -> Self {
        StreamRef {
            stream_name: Some(name.into()),
            stream_arn: None,
        }
    }

    /// Refer to a stream by ARN.
    pub fn arn(arn: impl Into<String>) -> Self {
        StreamRef {
            stream_name: None,
            stream_arn: Some(arn.into()),
        }
    }
}

/// CreateStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    /// Name of the new stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_name: Option<String>,
    /// Number of shards (provisioned streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_count: Option<i64>,
    /// Capacity mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// Tags to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

/// DeleteStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Deregister consumers too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_consumer_deletion: Option<bool>,
}

/// DescribeStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Page size (1–10000; at most 100 are returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Continue after this shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_shard_id: Option<String>,
}

/// The stream description DescribeStream returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescription {
    /// Name.
    pub stream_name: String,
    /// ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Its status.
    pub stream_status: StreamStatus,
    /// Capacity mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// This page of shards.
    pub shards: Vec<Shard>,
    /// Whether more shards follow.
    pub has_more_shards: bool,
    /// Retention in hours.
    pub retention_period_hours: i64,
    /// When the stream was created.
    pub stream_creation_timestamp: Timestamp,
    /// Enhanced monitoring.
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    /// NONE or KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
    /// The KMS key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// DescribeStream output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamOutput {
    /// The description.
    pub stream_description: StreamDescription,
}

/// DescribeStreamSummary input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
}

/// The summary DescribeStreamSummary returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDescriptionSummary {
    /// Name.
    pub stream_name: String,
    /// ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Status.
    pub stream_status: StreamStatus,
    /// Capacity mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// Retention in hours.
    pub retention_period_hours: i64,
    /// Creation time.
    pub stream_creation_timestamp: Timestamp,
    /// Enhanced monitoring.
    pub enhanced_monitoring: Vec<EnhancedMetrics>,
    /// NONE or KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
    /// KMS key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Open shards.
    pub open_shard_count: i64,
    /// Registered enhanced fan-out consumers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_count: Option<i64>,
}

/// DescribeStreamSummary output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamSummaryOutput {
    /// The summary.
    pub stream_description_summary: StreamDescriptionSummary,
}

/// ListStreams input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    /// Page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Continue after this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_stream_name: Option<String>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One entry of ListStreams' StreamSummaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSummary {
    /// Name.
    pub stream_name: String,
    /// ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
    /// Status.
    pub stream_status: StreamStatus,
    /// Capacity mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_creation_timestamp: Option<Timestamp>,
}

/// ListStreams output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsOutput {
    /// Names on this page.
    pub stream_names: Vec<String>,
    /// Whether more follow.
    pub has_more_streams: bool,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// Summaries on this page.
    #[serde(default)]
    pub stream_summaries: Vec<StreamSummary>,
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

/// PutRecord input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// The data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Blob>,
    /// The partition key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// Routes by this hash key instead of the partition key's MD5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    /// The previous record's sequence number, for strict ordering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number_for_ordering: Option<String>,
}

/// PutRecord output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordOutput {
    /// Where the record went.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// NONE or KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
}

/// One entry of a PutRecords request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsRequestEntry {
    /// The data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Blob>,
    /// Routes by this hash key instead of the partition key's MD5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_hash_key: Option<String>,
    /// The partition key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
}

/// PutRecords input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput {
    /// The records (1–500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<PutRecordsRequestEntry>>,
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
}

/// One entry of a PutRecords response: a sequence number or an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResultEntry {
    /// Set on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// Set on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// Set on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Set on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// PutRecords output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput {
    /// How many entries failed.
    #[serde(default)]
    pub failed_record_count: i64,
    /// One result per request entry, in order.
    pub records: Vec<PutRecordsResultEntry>,
    /// NONE or KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
}

/// GetShardIterator input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Which shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// Where to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_iterator_type: Option<ShardIteratorType>,
    /// For AT_/AFTER_SEQUENCE_NUMBER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_sequence_number: Option<String>,
    /// For AT_TIMESTAMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// GetShardIterator output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorOutput {
    /// The iterator.
    pub shard_iterator: String,
}

/// GetRecords input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    /// The iterator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_iterator: Option<String>,
    /// At most this many records (1–10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// The stream's ARN (newer SDKs send it).
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// GetRecords output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    /// The records.
    pub records: Vec<Record>,
    /// Absent at the end of a closed shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_shard_iterator: Option<String>,
    /// How far behind the tip the reader is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millis_behind_latest: Option<i64>,
    /// At the end of a closed shard: its children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
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

/// Increase/DecreaseStreamRetentionPeriod input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionPeriodInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// New retention in hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_period_hours: Option<i64>,
}

/// AddTagsToStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AddTagsToStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Tags to set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

/// RemoveTagsFromStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RemoveTagsFromStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Keys to remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_keys: Option<Vec<String>>,
}

/// ListTagsForStream input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Continue after this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_start_tag_key: Option<String>,
    /// Page size (1–50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// ListTagsForStream output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagsForStreamOutput {
    /// Tags, keys ascending.
    pub tags: Vec<Tag>,
    /// Whether more follow.
    pub has_more_tags: bool,
}

/// DescribeLimits output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeLimitsOutput {
    /// Shard quota.
    pub shard_limit: i64,
    /// Open shards in the account.
    pub open_shard_count: i64,
    /// On-demand streams in the account.
    pub on_demand_stream_count: i64,
    /// On-demand stream quota.
    pub on_demand_stream_count_limit: i64,
}

/// Enable/DisableEnhancedMonitoring input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMonitoringInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// Metrics to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_level_metrics: Option<Vec<String>>,
}

/// Enable/DisableEnhancedMonitoring output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnhancedMonitoringOutput {
    /// Stream name.
    pub stream_name: String,
    /// Before.
    pub current_shard_level_metrics: Vec<String>,
    /// After.
    pub desired_shard_level_metrics: Vec<String>,
    /// Stream ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// UpdateStreamMode input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStreamModeInput {
    /// The stream's ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// New mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode_details: Option<StreamModeDetails>,
}

/// Start/StopStreamEncryption input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StreamEncryptionInput {
    /// Which stream.
    #[serde(flatten)]
    pub stream: StreamRef,
    /// `KMS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_type: Option<String>,
    /// The key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// An enhanced fan-out consumer, as Register/ListStreamConsumers return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Consumer {
    /// Name.
    pub consumer_name: String,
    /// ARN.
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// Its status.
    pub consumer_status: ConsumerStatus,
    /// Registration time.
    pub consumer_creation_timestamp: Timestamp,
}

/// A consumer as DescribeStreamConsumer returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerDescription {
    /// Name.
    pub consumer_name: String,
    /// ARN.
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    /// Status.
    pub consumer_status: ConsumerStatus,
    /// Registration time.
    pub consumer_creation_timestamp: Timestamp,
    /// The stream's ARN.
    #[serde(rename = "StreamARN")]
    pub stream_arn: String,
}

/// RegisterStreamConsumer input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerInput {
    /// The stream's ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// The consumer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
}

/// RegisterStreamConsumer output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerOutput {
    /// The new consumer.
    pub consumer: Consumer,
}

/// Deregister/DescribeStreamConsumer input: a consumer ARN, or stream ARN and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerRef {
    /// The stream's ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// The consumer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_name: Option<String>,
    /// The consumer's ARN.
    #[serde(
        rename = "ConsumerARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consumer_arn: Option<String>,
}

/// DescribeStreamConsumer output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamConsumerOutput {
    /// The consumer.
    pub consumer_description: ConsumerDescription,
}

/// ListStreamConsumers input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersInput {
    /// The stream's ARN.
    #[serde(rename = "StreamARN", default, skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// Page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
    /// Disambiguates re-created streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_creation_timestamp: Option<Timestamp>,
}

/// ListStreamConsumers output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersOutput {
    /// Consumers on this page.
    pub consumers: Vec<Consumer>,
    /// Continuation token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// SubscribeToShard's `StartingPosition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPosition {
    /// The position type, as for GetShardIterator.
    #[serde(rename = "Type", default)]
    pub position_type: ShardIteratorType,
    /// For AT_/AFTER_SEQUENCE_NUMBER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<String>,
    /// For AT_TIMESTAMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// SubscribeToShard input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardInput {
    /// The consumer.
    #[serde(
        rename = "ConsumerARN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub consumer_arn: Option<String>,
    /// The shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_id: Option<String>,
    /// Where to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_position: Option<StartingPosition>,
}

/// One `SubscribeToShardEvent` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEvent {
    /// Records (possibly none).
    pub records: Vec<Record>,
    /// Resume after this; absent at shard end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation_sequence_number: Option<String>,
    /// How far behind the tip.
    pub millis_behind_latest: i64,
    /// At shard end: the children.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShard>>,
}

/// Wraps an input shared by two operations into a type of its own, so that
/// each operation's input names it (see [`crate::operation_types`]).
macro_rules! operation_specific_inputs {
    ($( $(#[$doc:meta])* $name:ident($shared:ty); )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
            #[serde(transparent)]
            pub struct $name(pub $shared);

            impl From<$shared> for $name {
                fn from(input: $shared) -> Self {
                    $name(input)
                }
            }
        )*
    };
}

operation_specific_inputs! {
    /// IncreaseStreamRetentionPeriod input.
    IncreaseStreamRetentionPeriodInput(RetentionPeriodInput);
    /// DecreaseStreamRetentionPeriod input.
    DecreaseStreamRetentionPeriodInput(RetentionPeriodInput);
    /// EnableEnhancedMonitoring input.
    EnableEnhancedMonitoringInput(EnhancedMonitoringInput);
    /// DisableEnhancedMonitoring input.
    DisableEnhancedMonitoringInput(EnhancedMonitoringInput);
    /// StartStreamEncryption input.
    StartStreamEncryptionInput(StreamEncryptionInput);
    /// StopStreamEncryption input.
    StopStreamEncryptionInput(StreamEncryptionInput);
    /// DeregisterStreamConsumer input.
    DeregisterStreamConsumerInput(ConsumerRef);
    /// DescribeStreamConsumer input.
    DescribeStreamConsumerInput(ConsumerRef);
}

/// DescribeLimits input (no members; sent as `{}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DescribeLimitsInput {}

/// An output with no members (answered as an empty body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Encoding;

    #[test]
    fn every_target_resolves() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_target(&op.target()), Some(op));
        }
        assert_eq!(Operation::from_target("Kinesis_20131202.Nope"), None);
        assert_eq!(Operation::from_target("PutRecord"), None);
    }

    #[test]
    fn arn_members_are_spelled_as_aws_does() {
        let json = String::from_utf8(
            Encoding::Json
                .encode(&GetShardIteratorInput {
                    stream: StreamRef::arn("arn:aws:kinesis:us-east-1:123456789012:stream/s"),
                    shard_id: Some("shardId-000000000000".into()),
                    shard_iterator_type: Some("LATEST".into()),
                    ..Default::default()
                })
                .to_vec(),
        )
        .unwrap();
        assert_eq!(
            json,
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","ShardId":"shardId-000000000000","ShardIteratorType":"LATEST"}"#
        );
    }

    #[test]
    fn wire_enums_keep_unknown_values_as_sent() {
        let p: StartingPosition = Encoding::Json
            .decode(br#"{"Type":"AT_TIMESTAMP","Timestamp":1700000000}"#)
            .unwrap();
        assert_eq!(p.position_type, ShardIteratorType::AtTimestamp);
        let p: StartingPosition = Encoding::Json.decode(br#"{"Type":"NOPE"}"#).unwrap();
        assert!(!p.position_type.is_known());
        assert_eq!(p.position_type.as_str(), "NOPE");
        assert_eq!(
            Encoding::Json.encode(&p).to_vec(),
            br#"{"Type":"NOPE"}"#.to_vec()
        );
        let p: StartingPosition = Encoding::Json.decode(b"{}").unwrap();
        assert_eq!(p.position_type.as_str(), "");
        for v in ShardIteratorType::values() {
            assert_eq!(v.parse::<ShardIteratorType>().unwrap().as_str(), *v);
        }
        assert_eq!(ConsumerStatus::from("ACTIVE"), ConsumerStatus::Active);
        assert_eq!(StreamStatus::Updating.to_string(), "UPDATING");
    }

    #[test]
    fn put_records_output_matches_the_spec_example() {
        let out: PutRecordsOutput = Encoding::Json
            .decode(
                br#"{"FailedRecordCount":1,"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"},{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"}],"EncryptionType":"NONE"}"#,
            )
            .unwrap();
        assert_eq!(out.failed_record_count, 1);
        assert_eq!(out.records.len(), 2);
        assert_eq!(
            out.records[1].error_code.as_deref(),
            Some("ProvisionedThroughputExceededException")
        );
    }

    #[test]
    fn subscribe_event_vector_payload_parses() {
        let payload = r#"{"ContinuationSequenceNumber":"49600871682957036442365024926191073437251060580128653314","MillisBehindLatest":0,"Records":[{"ApproximateArrivalTimestamp":1700000000.123,"Data":"aGVsbG8=","PartitionKey":"pk-1","SequenceNumber":"49600871682957036442365024926191073437251060580128653314"}]}"#;
        let ev: SubscribeToShardEvent = Encoding::Json.decode(payload.as_bytes()).unwrap();
        assert_eq!(ev.records[0].data.as_bytes(), b"hello");
        assert_eq!(
            ev.records[0].approximate_arrival_timestamp,
            Some(Timestamp(1_700_000_000_123))
        );
    }
}
