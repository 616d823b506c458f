//! Each operation's input shape as the service's model declares it.

use super::pattern::Pattern;
use crate::limits::{MAX_PARTITION_KEY_CHARS, MAX_RECORD_BYTES};
use crate::model::Operation;

/// A member's type and constraints.
#[derive(Debug)]
pub enum Shape {
    /// Text: `min..=max` characters, a pattern, or one of `values`.
    Str {
        /// Fewest characters.
        min: Option<usize>,
        /// Most characters.
        max: Option<usize>,
        /// The pattern all of it must match.
        pattern: Option<Pattern>,
        /// The allowed values (empty: any).
        values: &'static [&'static str],
    },
    /// A 32-bit integer (larger numbers are clamped, as the service does).
    Int {
        /// Least value.
        min: Option<i64>,
        /// Greatest value.
        max: Option<i64>,
    },
    /// `true` or `false`.
    Bool,
    /// Binary data of at most `max` bytes.
    Blob {
        /// Most bytes.
        max: usize,
    },
    /// A point in time.
    Timestamp,
    /// A list.
    List {
        /// Its members' shape.
        member: &'static Shape,
        /// Fewest members.
        min: Option<usize>,
        /// Most members.
        max: Option<usize>,
        /// Each member's length bounds, checked as one constraint of the list.
        member_len: Option<(usize, usize)>,
        /// How a structure member prints in a message.
        member_text: Option<&'static str>,
    },
    /// A map of text to `value`.
    Map {
        /// Its values' shape.
        value: &'static Shape,
        /// Fewest entries.
        min: Option<usize>,
        /// Most entries.
        max: Option<usize>,
        /// Key length bounds.
        key_len: (usize, usize),
        /// Value length bounds.
        value_len: (usize, usize),
    },
    /// A structure.
    Struct(&'static [Member]),
}

/// One member of a structure.
#[derive(Debug)]
pub struct Member {
    /// The member's name on the wire.
    pub name: &'static str,
    /// Whether the model requires it.
    pub required: bool,
    /// Its type and constraints.
    pub shape: &'static Shape,
}

const fn m(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        required: false,
        shape,
    }
}

const fn req(name: &'static str, shape: &'static Shape) -> Member {
    Member {
        name,
        required: true,
        shape,
    }
}

const fn text(min: usize, max: usize, pattern: Option<Pattern>) -> Shape {
    Shape::Str {
        min: Some(min),
        max: Some(max),
        pattern,
        values: &[],
    }
}

const fn int(min: i64, max: Option<i64>) -> Shape {
    Shape::Int {
        min: Some(min),
        max,
    }
}

const fn one_of(values: &'static [&'static str]) -> Shape {
    Shape::Str {
        min: None,
        max: None,
        pattern: None,
        values,
    }
}

const fn pattern(p: Pattern) -> Shape {
    Shape::Str {
        min: None,
        max: None,
        pattern: Some(p),
        values: &[],
    }
}

static STREAM_NAME: Shape = text(1, 128, Some(Pattern::Name));
static STREAM_ARN: Shape = text(1, 2048, Some(Pattern::StreamArn));
static SHARD_ID: Shape = text(1, 128, Some(Pattern::Name));
static CONSUMER_NAME: Shape = text(1, 128, Some(Pattern::Name));
static CONSUMER_ARN: Shape = text(1, 2048, Some(Pattern::ConsumerArn));
static HASH_KEY: Shape = pattern(Pattern::HashKey);
static SEQUENCE_NUMBER: Shape = pattern(Pattern::SequenceNumber);
static PARTITION_KEY: Shape = text(1, MAX_PARTITION_KEY_CHARS, None);
static DATA: Shape = Shape::Blob {
    max: MAX_RECORD_BYTES,
};
static NEXT_TOKEN: Shape = text(1, 1_048_576, None);
static SHARD_ITERATOR: Shape = text(1, 512, None);
static TAG_KEY: Shape = text(1, 128, None);
static KEY_ID: Shape = text(1, 2048, None);
static PLAIN_TEXT: Shape = Shape::Str {
    min: None,
    max: None,
    pattern: None,
    values: &[],
};
static TIMESTAMP: Shape = Shape::Timestamp;
static BOOLEAN: Shape = Shape::Bool;
static POSITIVE: Shape = int(1, None);
static LIMIT_10000: Shape = int(1, Some(10_000));
static LIMIT_50: Shape = int(1, Some(50));
static RETENTION_HOURS: Shape = Shape::Int {
    min: None,
    max: None,
};
static ITERATOR_TYPE: Shape = one_of(&[
    "AFTER_SEQUENCE_NUMBER",
    "LATEST",
    "AT_TIMESTAMP",
    "AT_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
]);
static STREAM_MODE: Shape = one_of(&["PROVISIONED", "ON_DEMAND"]);
static STREAM_MODE_MEMBERS: [Member; 1] = [req("StreamMode", &STREAM_MODE)];
static STREAM_MODE_DETAILS: Shape = Shape::Struct(&STREAM_MODE_MEMBERS);
static ENCRYPTION_TYPE: Shape = one_of(&["NONE", "KMS"]);
static SCALING_TYPE: Shape = one_of(&["UNIFORM_SCALING"]);
static METRIC_NAME: Shape = one_of(&[
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
    "ALL",
]);
static SHARD_FILTER_TYPE: Shape = one_of(&[
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
]);
static TAG_MAP: Shape = Shape::Map {
    value: &PLAIN_TEXT,
    min: Some(1),
    max: Some(200),
    key_len: (1, 128),
    value_len: (0, 256),
};
static TAG_KEYS: Shape = Shape::List {
    member: &PLAIN_TEXT,
    min: Some(1),
    max: Some(50),
    member_len: Some((1, 128)),
    member_text: None,
};
static METRICS: Shape = Shape::List {
    member: &METRIC_NAME,
    min: Some(1),
    max: Some(7),
    member_len: None,
    member_text: None,
};
static PUT_RECORDS_ENTRY_MEMBERS: [Member; 3] = [
    req("PartitionKey", &PARTITION_KEY),
    m("ExplicitHashKey", &HASH_KEY),
    req("Data", &DATA),
];
static PUT_RECORDS_ENTRY: Shape = Shape::Struct(&PUT_RECORDS_ENTRY_MEMBERS);
static PUT_RECORDS_ENTRIES: Shape = Shape::List {
    member: &PUT_RECORDS_ENTRY,
    min: Some(1),
    max: Some(500),
    member_len: None,
    member_text: Some("com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310"),
};
static SHARD_FILTER_MEMBERS: [Member; 3] = [
    req("Type", &SHARD_FILTER_TYPE),
    m("ShardId", &SHARD_ID),
    m("Timestamp", &TIMESTAMP),
];
static SHARD_FILTER: Shape = Shape::Struct(&SHARD_FILTER_MEMBERS);
static STARTING_POSITION_MEMBERS: [Member; 3] = [
    req("Type", &ITERATOR_TYPE),
    m("SequenceNumber", &SEQUENCE_NUMBER),
    m("Timestamp", &TIMESTAMP),
];
static STARTING_POSITION: Shape = Shape::Struct(&STARTING_POSITION_MEMBERS);

static ADD_TAGS_TO_STREAM: [Member; 3] = [
    req("Tags", &TAG_MAP),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static CREATE_STREAM: [Member; 4] = [
    m("ShardCount", &POSITIVE),
    req("StreamName", &STREAM_NAME),
    m("StreamModeDetails", &STREAM_MODE_DETAILS),
    m("Tags", &TAG_MAP),
];
static DECREASE_STREAM_RETENTION_PERIOD: [Member; 3] = [
    req("RetentionPeriodHours", &RETENTION_HOURS),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static DELETE_STREAM: [Member; 3] = [
    m("StreamName", &STREAM_NAME),
    m("EnforceConsumerDeletion", &BOOLEAN),
    m("StreamARN", &STREAM_ARN),
];
static DEREGISTER_STREAM_CONSUMER: [Member; 3] = [
    m("StreamARN", &STREAM_ARN),
    m("ConsumerName", &CONSUMER_NAME),
    m("ConsumerARN", &CONSUMER_ARN),
];
static DESCRIBE_LIMITS: [Member; 0] = [];
static DESCRIBE_STREAM: [Member; 4] = [
    m("Limit", &LIMIT_10000),
    m("ExclusiveStartShardId", &SHARD_ID),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static DESCRIBE_STREAM_SUMMARY: [Member; 2] =
    [m("StreamName", &STREAM_NAME), m("StreamARN", &STREAM_ARN)];
static DISABLE_ENHANCED_MONITORING: [Member; 3] = [
    m("StreamName", &STREAM_NAME),
    req("ShardLevelMetrics", &METRICS),
    m("StreamARN", &STREAM_ARN),
];
static GET_RECORDS: [Member; 3] = [
    m("Limit", &LIMIT_10000),
    req("ShardIterator", &SHARD_ITERATOR),
    m("StreamARN", &STREAM_ARN),
];
static GET_SHARD_ITERATOR: [Member; 6] = [
    req("ShardId", &SHARD_ID),
    req("ShardIteratorType", &ITERATOR_TYPE),
    m("StartingSequenceNumber", &SEQUENCE_NUMBER),
    m("StreamName", &STREAM_NAME),
    m("Timestamp", &TIMESTAMP),
    m("StreamARN", &STREAM_ARN),
];
static LIST_SHARDS: [Member; 7] = [
    m("ExclusiveStartShardId", &SHARD_ID),
    m("MaxResults", &LIMIT_10000),
    m("NextToken", &NEXT_TOKEN),
    m("StreamCreationTimestamp", &TIMESTAMP),
    m("StreamName", &STREAM_NAME),
    m("ShardFilter", &SHARD_FILTER),
    m("StreamARN", &STREAM_ARN),
];
static LIST_STREAM_CONSUMERS: [Member; 4] = [
    req("StreamARN", &STREAM_ARN),
    m("NextToken", &NEXT_TOKEN),
    m("MaxResults", &LIMIT_10000),
    m("StreamCreationTimestamp", &TIMESTAMP),
];
static LIST_STREAMS: [Member; 3] = [
    m("Limit", &LIMIT_10000),
    m("ExclusiveStartStreamName", &STREAM_NAME),
    m("NextToken", &NEXT_TOKEN),
];
static LIST_TAGS_FOR_STREAM: [Member; 4] = [
    m("Limit", &LIMIT_50),
    m("ExclusiveStartTagKey", &TAG_KEY),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static MERGE_SHARDS: [Member; 4] = [
    req("ShardToMerge", &SHARD_ID),
    req("AdjacentShardToMerge", &SHARD_ID),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static PUT_RECORD: [Member; 6] = [
    m("SequenceNumberForOrdering", &SEQUENCE_NUMBER),
    req("PartitionKey", &PARTITION_KEY),
    m("ExplicitHashKey", &HASH_KEY),
    req("Data", &DATA),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static PUT_RECORDS: [Member; 3] = [
    req("Records", &PUT_RECORDS_ENTRIES),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static REGISTER_STREAM_CONSUMER: [Member; 2] = [
    req("StreamARN", &STREAM_ARN),
    req("ConsumerName", &CONSUMER_NAME),
];
static REMOVE_TAGS_FROM_STREAM: [Member; 3] = [
    req("TagKeys", &TAG_KEYS),
    m("StreamName", &STREAM_NAME),
    m("StreamARN", &STREAM_ARN),
];
static SPLIT_SHARD: [Member; 4] = [
    req("NewStartingHashKey", &HASH_KEY),
    m("StreamName", &STREAM_NAME),
    req("ShardToSplit", &SHARD_ID),
    m("StreamARN", &STREAM_ARN),
];
static START_STREAM_ENCRYPTION: [Member; 4] = [
    m("StreamName", &STREAM_NAME),
    req("EncryptionType", &ENCRYPTION_TYPE),
    req("KeyId", &KEY_ID),
    m("StreamARN", &STREAM_ARN),
];
static SUBSCRIBE_TO_SHARD: [Member; 3] = [
    req("ConsumerARN", &CONSUMER_ARN),
    req("ShardId", &SHARD_ID),
    req("StartingPosition", &STARTING_POSITION),
];
static UPDATE_SHARD_COUNT: [Member; 4] = [
    m("StreamName", &STREAM_NAME),
    req("TargetShardCount", &POSITIVE),
    req("ScalingType", &SCALING_TYPE),
    m("StreamARN", &STREAM_ARN),
];
static UPDATE_STREAM_MODE: [Member; 2] = [
    req("StreamARN", &STREAM_ARN),
    req("StreamModeDetails", &STREAM_MODE_DETAILS),
];

/// The members of `op`'s input, in the order the service reports their
/// violations (the recorded order where there is a record; the model's
/// otherwise). `StreamName` is optional wherever `StreamARN` may stand in
/// for it, as in today's model.
pub fn input_shape(op: Operation) -> &'static [Member] {
    use Operation as O;
    match op {
        O::AddTagsToStream => &ADD_TAGS_TO_STREAM,
        O::CreateStream => &CREATE_STREAM,
        O::DecreaseStreamRetentionPeriod | O::IncreaseStreamRetentionPeriod => {
            &DECREASE_STREAM_RETENTION_PERIOD
        }
        O::DeleteStream => &DELETE_STREAM,
        O::DeregisterStreamConsumer | O::DescribeStreamConsumer => &DEREGISTER_STREAM_CONSUMER,
        O::DescribeLimits => &DESCRIBE_LIMITS,
        O::DescribeStream => &DESCRIBE_STREAM,
        O::DescribeStreamSummary => &DESCRIBE_STREAM_SUMMARY,
        O::DisableEnhancedMonitoring | O::EnableEnhancedMonitoring => &DISABLE_ENHANCED_MONITORING,
        O::GetRecords => &GET_RECORDS,
        O::GetShardIterator => &GET_SHARD_ITERATOR,
        O::ListShards => &LIST_SHARDS,
        O::ListStreamConsumers => &LIST_STREAM_CONSUMERS,
        O::ListStreams => &LIST_STREAMS,
        O::ListTagsForStream => &LIST_TAGS_FOR_STREAM,
        O::MergeShards => &MERGE_SHARDS,
        O::PutRecord => &PUT_RECORD,
        O::PutRecords => &PUT_RECORDS,
        O::RegisterStreamConsumer => &REGISTER_STREAM_CONSUMER,
        O::RemoveTagsFromStream => &REMOVE_TAGS_FROM_STREAM,
        O::SplitShard => &SPLIT_SHARD,
        O::StartStreamEncryption | O::StopStreamEncryption => &START_STREAM_ENCRYPTION,
        O::SubscribeToShard => &SUBSCRIBE_TO_SHARD,
        O::UpdateShardCount => &UPDATE_SHARD_COUNT,
        O::UpdateStreamMode => &UPDATE_STREAM_MODE,
    }
}
