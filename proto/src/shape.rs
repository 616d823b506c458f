//! Each operation's input shape as the service's model declares it — member
//! types, required members, lengths, patterns, numeric ranges, enum values —
//! and the check Kinesis runs on a request body before the operation itself:
//! a member of the wrong type is a `SerializationException`, broken
//! constraints are one `ValidationException` listing up to ten of them
//! (docs/validation.md). An operation gets its checks by declaring its shape
//! in [`input_shape`].

use crate::codec::Encoding;
use crate::error::KinesisError;
use crate::model::Operation;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A request body decoded without a target type: what the checks walk.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Str(Cow<'a, str>),
    /// A CBOR byte string.
    Bytes(Cow<'a, [u8]>),
    /// A list.
    List(Vec<Node<'a>>),
    /// A map or structure, members in the order sent.
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
}

impl<'a> Node<'a> {
    /// Decode a body in `enc`; `None` when it is not JSON or CBOR at all.
    pub fn parse(enc: Encoding, body: &'a [u8]) -> Option<Node<'a>> {
        match enc {
            Encoding::Json => serde_json::from_slice(body).ok(),
            Encoding::Cbor => ciborium::from_reader::<ciborium::Value, _>(body)
                .ok()
                .and_then(from_cbor),
        }
    }

    fn member(&self, name: &str) -> Option<&Node<'a>> {
        match self {
            Node::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
                .filter(|v| **v != Node::Null),
            _ => None,
        }
    }
}

fn from_cbor(v: ciborium::Value) -> Option<Node<'static>> {
    use ciborium::Value as V;
    Some(match v {
        V::Null => Node::Null,
        V::Bool(b) => Node::Bool(b),
        V::Integer(i) => Node::Int(i128::from(i)),
        V::Float(f) => Node::Float(f),
        V::Text(s) => Node::Str(Cow::Owned(s)),
        V::Bytes(b) => Node::Bytes(Cow::Owned(b)),
        // The Java SDK wraps timestamps in tag 1: the number underneath counts.
        V::Tag(_, inner) => from_cbor(*inner)?,
        V::Array(items) => Node::List(items.into_iter().map(from_cbor).collect::<Option<_>>()?),
        V::Map(entries) => Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| match k {
                    V::Text(k) => Some((Cow::Owned(k), from_cbor(v)?)),
                    _ => None,
                })
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Int(i128::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Int(i128::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Key<'de>, Node<'de>>()? {
            entries.push((k.0, v));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A pattern of the model, matched without a regex engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `[a-zA-Z0-9_.-]+`: stream, consumer and shard names.
    Name,
    /// `0|([1-9]\d{0,38})`: hash keys.
    HashKey,
    /// `0|([1-9]\d{0,128})`: sequence numbers.
    SequenceNumber,
    /// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`.
    StreamArn,
    /// `^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`.
    ConsumerArn,
}

impl Pattern {
    /// The pattern as the service prints it.
    pub fn text(self) -> &'static str {
        match self {
            Pattern::Name => "[a-zA-Z0-9_.-]+",
            Pattern::HashKey => "0|([1-9]\\d{0,38})",
            Pattern::SequenceNumber => "0|([1-9]\\d{0,128})",
            Pattern::StreamArn => "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
            Pattern::ConsumerArn => {
                "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+"
            }
        }
    }

    /// Whether all of `s` matches.
    pub fn matches(self, s: &str) -> bool {
        let is_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        };
        let decimal = |s: &str, max_more: usize| {
            s == "0"
                || (s.len() <= max_more + 1
                    && s.bytes().next().is_some_and(|b| (b'1'..=b'9').contains(&b))
                    && s.bytes().all(|b| b.is_ascii_digit()))
        };
        match self {
            Pattern::Name => is_name(s),
            Pattern::HashKey => decimal(s, 38),
            Pattern::SequenceNumber => decimal(s, 128),
            Pattern::StreamArn => arn_account_rest(s).is_some_and(|rest| {
                rest.strip_prefix("stream/")
                    .is_some_and(|n| !n.is_empty() && !n.chars().any(char::is_whitespace))
            }),
            Pattern::ConsumerArn => arn_account_rest(s).is_some_and(|rest| {
                // `.*stream/<name>/consumer/<name>:<digits>`, the name groups greedy.
                let Some((head, secs)) = rest.rsplit_once(':') else {
                    return false;
                };
                if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit()) {
                    return false;
                }
                let Some((before, consumer)) = head.rsplit_once("/consumer/") else {
                    return false;
                };
                let Some((_, stream)) = before.rsplit_once("stream/") else {
                    return false;
                };
                is_name(consumer) && is_name(stream)
            }),
        }
    }
}

/// For `arn:aws…:kinesis:…:<12 digits>:<rest>`, the rest.
fn arn_account_rest(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("arn:aws")?;
    let (_, after) = rest.split_once(":kinesis:")?;
    // `.*:\d{12}:`: some colon is followed by 12 digits and a colon.
    after.match_indices(':').find_map(|(i, _)| {
        let tail = &after[i + 1..];
        let digits = tail.get(..12)?;
        (digits.bytes().all(|b| b.is_ascii_digit()) && tail[12..].starts_with(':'))
            .then(|| &tail[13..])
    })
}

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
static PARTITION_KEY: Shape = text(1, 256, None);
static DATA: Shape = Shape::Blob { max: 1_048_576 };
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

/// Whether a body is a JSON or CBOR map (members unread): what the service
/// needs of a body before it looks at the operation or the signature.
pub fn is_structure(enc: Encoding, body: &[u8]) -> bool {
    struct MapOnly;
    impl<'de> Visitor<'de> for MapOnly {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a structure")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            Ok(())
        }
    }
    struct Structure;
    impl<'de> Deserialize<'de> for Structure {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(MapOnly).map(|()| Structure)
        }
    }
    match enc {
        Encoding::Json => serde_json::from_slice::<Structure>(body).is_ok(),
        Encoding::Cbor => ciborium::from_reader::<Structure, _>(body).is_ok(),
    }
}

/// At most this many violations are reported (and counted).
const MAX_VIOLATIONS: usize = 10;

/// Check a request body for `op` as the service does before running it:
/// first every member's type (`SerializationException`), then every
/// constraint (`ValidationException`).
pub fn check(op: Operation, enc: Encoding, body: &[u8]) -> Result<(), KinesisError> {
    let Some(node) = Node::parse(enc, body) else {
        return Err(KinesisError::serialization(""));
    };
    check_node(op, &node)
}

/// [`check`] on a body already decoded.
pub fn check_node(op: Operation, node: &Node<'_>) -> Result<(), KinesisError> {
    let Node::Map(_) = node else {
        return Err(KinesisError::serialization(""));
    };
    let members = input_shape(op);
    check_types(members, node).map_err(KinesisError::serialization)?;
    let mut found = Vec::new();
    validate_members(members, node, "", &mut found);
    if found.is_empty() {
        Ok(())
    } else {
        Err(KinesisError::validation(&found))
    }
}

fn check_types(members: &[Member], node: &Node<'_>) -> Result<(), String> {
    for mem in members {
        if let Some(v) = node.member(mem.name) {
            check_type(mem.shape, v)?;
        }
    }
    Ok(())
}

const NUMBER_CLASS: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";

fn container_error(v: &Node<'_>) -> Option<String> {
    match v {
        Node::List(_) => Some("Start of list found where not expected".into()),
        Node::Map(_) => Some("Start of structure or map found where not expected.".into()),
        _ => None,
    }
}

fn check_type(shape: &Shape, v: &Node<'_>) -> Result<(), String> {
    if *v == Node::Null {
        return Ok(());
    }
    let scalar_class = |v: &Node<'_>| match v {
        Node::Bool(_) => Some("class java.lang.Boolean"),
        Node::Int(_) | Node::Float(_) => Some(NUMBER_CLASS),
        Node::Str(_) => Some("class java.lang.String"),
        _ => None,
    };
    match shape {
        Shape::Str { .. } => match v {
            Node::Str(_) => Ok(()),
            Node::Bool(_) | Node::Int(_) | Node::Float(_) => Err(format!(
                "{} can not be converted to an String",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            // A CBOR byte string where text belongs reads as a structure.
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::Int { .. } => match v {
            Node::Int(_) | Node::Float(_) => Ok(()),
            Node::Bool(_) | Node::Str(_) => Err(format!(
                "{} can not be converted to an Integer",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::Bool => match v {
            Node::Bool(_) => Ok(()),
            Node::Int(_) | Node::Float(_) => {
                Err(format!("{NUMBER_CLASS} can not be converted to an Boolean"))
            }
            Node::Str(s) => Err(format!(
                "'{}' can not be converted to an Boolean",
                s.to_uppercase()
            )),
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::Blob { .. } => match v {
            Node::Bytes(_) => Ok(()),
            Node::Str(s) => base64_error(s).map_or(Ok(()), Err),
            Node::Bool(_) | Node::Int(_) | Node::Float(_) => Err(format!(
                "{} can not be converted to a Blob",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            _ => Err(container_error(v).unwrap_or_default()),
        },
        Shape::Timestamp => match v {
            Node::Int(_) | Node::Float(_) => Ok(()),
            Node::Bool(_) | Node::Str(_) => Err(format!(
                "{} can not be converted to milliseconds since epoch",
                scalar_class(v).unwrap_or(NUMBER_CLASS)
            )),
            _ => Err(container_error(v)
                .unwrap_or_else(|| "Start of structure or map found where not expected.".into())),
        },
        Shape::List { member, .. } => match v {
            Node::List(items) => items.iter().try_for_each(|i| check_type(member, i)),
            Node::Map(_) => Err("Start of structure or map found where not expected.".into()),
            _ => Err("Expected list or null".into()),
        },
        Shape::Map { value, .. } => match v {
            Node::Map(entries) => entries.iter().try_for_each(|(_, e)| check_type(value, e)),
            Node::List(_) => Err("Start of list found where not expected".into()),
            _ => Err("Expected map or null".into()),
        },
        Shape::Struct(members) => match v {
            Node::Map(_) => check_types(members, v),
            Node::List(_) => Err("Start of list found where not expected".into()),
            _ => Err("Expected null".into()),
        },
    }
}

/// Why base64 text is not a blob, in the service's words (`None`: it is one).
fn base64_error(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(4) {
        return Some(format!(
            "'{s}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: {}",
            s.len()
        ));
    }
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        let pad_ok = b == b'=' && bytes.get(i + 1).is_none_or(|&n| n == b'=');
        if !ok && !pad_ok {
            return Some(format!(
                "'{s}' can not be converted to a Blob: Invalid Base64 character: '{}'",
                char::from(b)
            ));
        }
    }
    use base64::Engine as _;
    if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
        return Some(format!(
            "'{s}' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
        ));
    }
    None
}

fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn validate_members(members: &[Member], node: &Node<'_>, parent: &str, found: &mut Vec<String>) {
    for mem in members {
        let path = format!("{parent}{}", lower_first(mem.name));
        validate(mem, node.member(mem.name), &path, found);
    }
}

fn push(found: &mut Vec<String>, value: Option<String>, path: &str, rule: &str) {
    if found.len() >= MAX_VIOLATIONS {
        return;
    }
    let value = value.map_or_else(|| "null".to_string(), |v| format!("'{v}'"));
    found.push(format!(
        "Value {value} at '{path}' failed to satisfy constraint: Member must {rule}"
    ));
}

/// A value as the service prints it in a violation.
fn show(shape: &Shape, v: &Node<'_>) -> String {
    match (shape, v) {
        (Shape::Blob { .. }, _) => {
            let n = blob_len(v);
            format!("java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]")
        }
        (
            Shape::List {
                member,
                member_text,
                ..
            },
            Node::List(items),
        ) => {
            let shown: Vec<String> = items
                .iter()
                .map(|i| member_text.map_or_else(|| show(member, i), str::to_string))
                .collect();
            format!("[{}]", shown.join(", "))
        }
        (Shape::Map { value, .. }, Node::Map(entries)) => {
            let shown: Vec<String> = entries
                .iter()
                .map(|(k, e)| format!("{k}={}", show(value, e)))
                .collect();
            format!("{{{}}}", shown.join(", "))
        }
        (Shape::Int { .. }, _) => int_value(v).to_string(),
        (_, Node::Str(s)) => s.to_string(),
        (_, Node::Int(i)) => i.to_string(),
        (_, Node::Float(f)) => f.to_string(),
        (_, Node::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// An integer member's value as the service reads it: fractions dropped,
/// clamped to 32 bits.
fn int_value(v: &Node<'_>) -> i64 {
    let n = match v {
        Node::Int(i) => *i,
        Node::Float(f) => f.floor() as i128,
        _ => 0,
    };
    n.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i64
}

fn blob_len(v: &Node<'_>) -> usize {
    match v {
        Node::Bytes(b) => b.len(),
        Node::Str(s) => {
            let pad = s.bytes().rev().take_while(|&b| b == b'=').count();
            (s.len() / 4 * 3).saturating_sub(pad)
        }
        _ => 0,
    }
}

fn length_rules(
    found: &mut Vec<String>,
    shown: &dyn Fn() -> String,
    path: &str,
    n: usize,
    min: Option<usize>,
    max: Option<usize>,
) {
    if let Some(min) = min
        && n < min
    {
        push(
            found,
            Some(shown()),
            path,
            &format!("have length greater than or equal to {min}"),
        );
    }
    if let Some(max) = max
        && n > max
    {
        push(
            found,
            Some(shown()),
            path,
            &format!("have length less than or equal to {max}"),
        );
    }
}

fn bounds_rule(what: &str, (min, max): (usize, usize)) -> String {
    format!(
        "{what} must satisfy constraint: [Member must have length less than or equal to {max}, Member must have length greater than or equal to {min}]"
    )
}

fn validate(mem: &Member, v: Option<&Node<'_>>, path: &str, found: &mut Vec<String>) {
    let Some(v) = v else {
        if mem.required {
            push(found, None, path, "not be null");
        }
        return;
    };
    let shown = || show(mem.shape, v);
    match mem.shape {
        Shape::Str {
            min,
            max,
            pattern,
            values,
        } => {
            let Node::Str(s) = v else { return };
            if let Some(p) = pattern
                && !p.matches(s)
            {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("satisfy regular expression pattern: {}", p.text()),
                );
            }
            if !values.is_empty() && !values.contains(&s.as_ref()) {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("satisfy enum value set: [{}]", values.join(", ")),
                );
            }
            length_rules(found, &shown, path, s.chars().count(), *min, *max);
        }
        Shape::Int { min, max } => {
            let n = int_value(v);
            if let Some(min) = min
                && n < *min
            {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("have value greater than or equal to {min}"),
                );
            }
            if let Some(max) = max
                && n > *max
            {
                push(
                    found,
                    Some(shown()),
                    path,
                    &format!("have value less than or equal to {max}"),
                );
            }
        }
        Shape::Blob { max } => length_rules(found, &shown, path, blob_len(v), None, Some(*max)),
        Shape::Bool | Shape::Timestamp => {}
        Shape::List {
            member,
            min,
            max,
            member_len,
            ..
        } => {
            let Node::List(items) = v else { return };
            length_rules(found, &shown, path, items.len(), *min, *max);
            if let Some((lo, hi)) = member_len {
                let bad = items.iter().any(|i| match i {
                    Node::Str(s) => !(lo..=hi).contains(&&s.chars().count()),
                    _ => false,
                });
                if bad && found.len() < MAX_VIOLATIONS {
                    found.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: {}",
                        shown(),
                        bounds_rule("Member", (*lo, *hi))
                    ));
                }
            }
            if let Shape::Struct(children) = member {
                for (i, item) in items.iter().enumerate() {
                    validate_members(children, item, &format!("{path}.{}.member.", i + 1), found);
                }
            }
        }
        Shape::Map {
            min,
            max,
            key_len,
            value_len,
            ..
        } => {
            let Node::Map(entries) = v else { return };
            length_rules(found, &shown, path, entries.len(), *min, *max);
            let within = |s: &str, (lo, hi): (usize, usize)| (lo..=hi).contains(&s.chars().count());
            let rules = [
                (
                    "Map keys",
                    *key_len,
                    entries.iter().any(|(k, _)| !within(k, *key_len)),
                ),
                (
                    "Map value",
                    *value_len,
                    entries.iter().any(|(_, e)| match e {
                        Node::Str(s) => !within(s, *value_len),
                        _ => false,
                    }),
                ),
            ];
            for (what, bounds, bad) in rules {
                if bad && found.len() < MAX_VIOLATIONS {
                    found.push(format!(
                        "Value '{}' at '{path}' failed to satisfy constraint: {}",
                        shown(),
                        bounds_rule(what, bounds)
                    ));
                }
            }
        }
        Shape::Struct(children) => validate_members(children, v, &format!("{path}."), found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn json(op: Operation, body: &str) -> Result<(), KinesisError> {
        check(op, Encoding::Json, body.as_bytes())
    }

    #[test]
    fn aggregates_in_the_recorded_order() {
        let e = json(
            Operation::CreateStream,
            r#"{"StreamName":"","ShardCount":0}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert_eq!(
            e.message,
            "3 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        let e = json(Operation::CreateStream, "{}").unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn integers_are_clamped_and_floored() {
        let e = json(Operation::ListStreams, r#"{"Limit":100000000000}"#).unwrap_err();
        assert!(
            e.message.contains("Value '2147483647' at 'limit'"),
            "{}",
            e.message
        );
        assert!(json(Operation::ListStreams, r#"{"Limit":1.9}"#).is_ok());
    }

    #[test]
    fn nested_members_have_indexed_paths_and_at_most_ten_are_listed() {
        let records: Vec<String> = (0..501)
            .map(|_| r#"{"PartitionKey":"","Data":""}"#.to_string())
            .collect();
        let body = format!(r#"{{"StreamName":"","Records":[{}]}}"#, records.join(","));
        let e = json(Operation::PutRecords, &body).unwrap_err();
        assert!(e.message.starts_with("10 validation errors detected: Value '[com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310, "));
        assert!(e.message.contains("at 'records.9.member.partitionKey'"));
        assert!(!e.message.contains("records.10."));
        let e = json(
            Operation::PutRecord,
            r#"{"StreamName":"s","PartitionKey":"k","Data":"AAAA","ExplicitHashKey":"01"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("Value '01' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})"));
    }

    #[test]
    fn wrong_types_are_serialization_errors_in_the_services_words() {
        for (body, msg) in [
            (
                r#"{"StreamName":true}"#,
                "class java.lang.Boolean can not be converted to an String",
            ),
            (
                r#"{"StreamName":12}"#,
                "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
            ),
            (
                r#"{"StreamName":[]}"#,
                "Start of list found where not expected",
            ),
            (
                r#"{"StreamName":{}}"#,
                "Start of structure or map found where not expected.",
            ),
            (
                r#"{"Limit":"1"}"#,
                "class java.lang.String can not be converted to an Integer",
            ),
            (
                r#"{"Limit":false}"#,
                "class java.lang.Boolean can not be converted to an Integer",
            ),
        ] {
            let e = json(Operation::DescribeStream, body).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (ErrorCode::Serialization, msg),
                "{body}"
            );
        }
        let e = json(Operation::AddTagsToStream, r#"{"Tags":5}"#).unwrap_err();
        assert_eq!(e.message, "Expected map or null");
        let e = json(Operation::RemoveTagsFromStream, r#"{"TagKeys":"a"}"#).unwrap_err();
        assert_eq!(e.message, "Expected list or null");
        let e = json(Operation::CreateStream, r#"{"StreamModeDetails":"x"}"#).unwrap_err();
        assert_eq!(e.message, "Expected null");
        let e = json(Operation::PutRecord, r#"{"Data":"23456"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"
        );
        let e = json(Operation::PutRecord, r#"{"Data":"=+/="}"#).unwrap_err();
        assert_eq!(
            e.message,
            "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"
        );
        let e = json(Operation::PutRecord, r#"{"Data":"+/+="}"#).unwrap_err();
        assert_eq!(
            e.message,
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
        );
        let e = json(Operation::GetShardIterator, r#"{"Timestamp":"x"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "class java.lang.String can not be converted to milliseconds since epoch"
        );
        let e = json(
            Operation::DeleteStream,
            r#"{"EnforceConsumerDeletion":"yes"}"#,
        )
        .unwrap_err();
        assert_eq!(e.message, "'YES' can not be converted to an Boolean");
        for garbage in ["", "hello", "[]", "null", "5"] {
            let e = json(Operation::ListStreams, garbage).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (ErrorCode::Serialization, ""),
                "{garbage}"
            );
        }
    }

    #[test]
    fn cbor_bodies_get_the_same_checks() {
        let body = Encoding::Cbor.encode(&serde_json::json!({"StreamName": 5}));
        let e = check(Operation::DeleteStream, Encoding::Cbor, &body).unwrap_err();
        assert_eq!(e.code, ErrorCode::Serialization);
        let value = ciborium::Value::Map(vec![(
            ciborium::Value::Text("Data".into()),
            ciborium::Value::Bytes(vec![0; 1_048_577]),
        )]);
        let body = Encoding::Cbor.encode(&value);
        let e = check(Operation::PutRecord, Encoding::Cbor, &body).unwrap_err();
        assert!(
            e.message.contains(
                "Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data'"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn tag_bounds_are_one_constraint_of_the_whole_map() {
        let long = "a".repeat(129);
        let e = json(
            Operation::AddTagsToStream,
            &format!(r#"{{"StreamName":"s","Tags":{{"a":"1","{long}":"3"}}}}"#),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "1 validation error detected: Value '{{a=1, {long}=3}}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
            )
        );
        let e = json(
            Operation::RemoveTagsFromStream,
            &format!(r#"{{"StreamName":"s","TagKeys":["a","{long}"]}}"#),
        )
        .unwrap_err();
        assert!(e.message.ends_with("Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"));
    }

    #[test]
    fn structures_are_told_from_other_bodies() {
        assert!(is_structure(Encoding::Json, br#"{"a":[1,{"b":null}]}"#));
        for bad in [&b"[]"[..], b"null", b"hello", b"{", b"5"] {
            assert!(!is_structure(Encoding::Json, bad));
        }
        assert!(is_structure(Encoding::Cbor, &[0xa0]));
        assert!(!is_structure(Encoding::Cbor, &[0x80]));
    }

    #[test]
    fn patterns() {
        assert!(Pattern::StreamArn.matches("arn:aws:kinesis:us-east-1:123456789012:stream/s"));
        assert!(!Pattern::StreamArn.matches("arn:aws:kinesis:us-east-1:12345:stream/s"));
        assert!(
            Pattern::ConsumerArn
                .matches("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000")
        );
        assert!(
            !Pattern::ConsumerArn
                .matches("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c")
        );
        assert!(Pattern::HashKey.matches("0"));
        assert!(!Pattern::HashKey.matches(""));
        assert!(!Pattern::HashKey.matches(&"9".repeat(40)));
        assert!(Pattern::SequenceNumber.matches(&"9".repeat(129)));
    }

    #[test]
    fn every_operation_accepts_an_empty_valid_shape() {
        for op in Operation::ALL {
            // Members all optional or all reported missing, never a panic.
            let _ = json(op, "{}");
        }
    }
}
