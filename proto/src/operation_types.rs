//! Which operation each input type is sent as and which output answers it,
//! so that callers and the broker's dispatch are typed by the input alone
//! (as rskafka's `RequestBody` ties a request to its response).

use crate::codec::Encoding;
use crate::model::*;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An operation's input: it names its operation and its output type.
pub trait OperationInput: Serialize + DeserializeOwned {
    /// What the operation answers with.
    type Output: OperationOutput;
    /// The operation this input is sent as.
    const OPERATION: Operation;
    /// The operation's name, as in `X-Amz-Target`.
    const NAME: &'static str = Self::OPERATION.name();

    /// The stream this input names (name, else ARN), for error messages.
    fn stream(&self) -> Option<&str>;

    /// The request body in `encoding`.
    fn body(&self, encoding: Encoding) -> Bytes {
        encoding.encode(self)
    }
}

/// An operation's output.
pub trait OperationOutput: Serialize + DeserializeOwned {
    /// Whether the output has members; one without is sent as an empty body.
    const HAS_MEMBERS: bool = true;
}

impl OperationOutput for Empty {
    const HAS_MEMBERS: bool = false;
}

impl StreamRef {
    /// The stream's name, else its ARN.
    pub fn label(&self) -> Option<&str> {
        self.stream_name.as_deref().or(self.stream_arn.as_deref())
    }
}

impl SubscribeToShardInput {
    /// The stream of the consumer subscribing: its ARN, the consumer ARN
    /// up to `/consumer/` (SubscribeToShard names no stream of its own).
    pub fn stream(&self) -> Option<&str> {
        let arn = self.consumer_arn.as_deref()?;
        arn.find("/consumer/").map(|end| &arn[..end])
    }
}

/// Implements [`OperationInput`] for each `Input => Operation -> Output`,
/// with how the input names its stream.
macro_rules! operation_inputs {
    ($( $input:ty => $op:ident -> $output:ty, |$i:ident| $stream:expr; )*) => {
        $(
            impl OperationInput for $input {
                type Output = $output;
                const OPERATION: Operation = Operation::$op;
                fn stream(&self) -> Option<&str> {
                    let $i = self;
                    $stream
                }
            }
        )*
    };
}

operation_inputs! {
    AddTagsToStreamInput => AddTagsToStream -> Empty, |i| i.stream.label();
    CreateStreamInput => CreateStream -> Empty, |i| i.stream_name.as_deref();
    DecreaseStreamRetentionPeriodInput => DecreaseStreamRetentionPeriod -> Empty, |i| i.0.stream.label();
    DeleteStreamInput => DeleteStream -> Empty, |i| i.stream.label();
    DeregisterStreamConsumerInput => DeregisterStreamConsumer -> Empty, |i| i.0.stream_arn.as_deref();
    DescribeLimitsInput => DescribeLimits -> DescribeLimitsOutput, |_i| None;
    DescribeStreamInput => DescribeStream -> DescribeStreamOutput, |i| i.stream.label();
    DescribeStreamConsumerInput => DescribeStreamConsumer -> DescribeStreamConsumerOutput, |i| i.0.stream_arn.as_deref();
    DescribeStreamSummaryInput => DescribeStreamSummary -> DescribeStreamSummaryOutput, |i| i.stream.label();
    DisableEnhancedMonitoringInput => DisableEnhancedMonitoring -> EnhancedMonitoringOutput, |i| i.0.stream.label();
    EnableEnhancedMonitoringInput => EnableEnhancedMonitoring -> EnhancedMonitoringOutput, |i| i.0.stream.label();
    GetRecordsInput => GetRecords -> GetRecordsOutput, |i| i.stream_arn.as_deref();
    GetShardIteratorInput => GetShardIterator -> GetShardIteratorOutput, |i| i.stream.label();
    IncreaseStreamRetentionPeriodInput => IncreaseStreamRetentionPeriod -> Empty, |i| i.0.stream.label();
    ListShardsInput => ListShards -> ListShardsOutput, |i| i.stream.label();
    ListStreamConsumersInput => ListStreamConsumers -> ListStreamConsumersOutput, |i| i.stream_arn.as_deref();
    ListStreamsInput => ListStreams -> ListStreamsOutput, |_i| None;
    ListTagsForStreamInput => ListTagsForStream -> ListTagsForStreamOutput, |i| i.stream.label();
    MergeShardsInput => MergeShards -> Empty, |i| i.stream.label();
    PutRecordInput => PutRecord -> PutRecordOutput, |i| i.stream.label();
    RegisterStreamConsumerInput => RegisterStreamConsumer -> RegisterStreamConsumerOutput, |i| i.stream_arn.as_deref();
    RemoveTagsFromStreamInput => RemoveTagsFromStream -> Empty, |i| i.stream.label();
    SplitShardInput => SplitShard -> Empty, |i| i.stream.label();
    StartStreamEncryptionInput => StartStreamEncryption -> Empty, |i| i.0.stream.label();
    StopStreamEncryptionInput => StopStreamEncryption -> Empty, |i| i.0.stream.label();
    UpdateShardCountInput => UpdateShardCount -> UpdateShardCountOutput, |i| i.stream.label();
    UpdateStreamModeInput => UpdateStreamMode -> Empty, |i| i.stream_arn.as_deref();
}

impl OperationInput for PutRecordsInput {
    type Output = PutRecordsOutput;
    const OPERATION: Operation = Operation::PutRecords;
    fn stream(&self) -> Option<&str> {
        self.stream.label()
    }

    /// A producer's hottest request: its JSON is written by hand, as serde would.
    fn body(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Json => Bytes::from(crate::put_records_json::to_vec(self)),
            Encoding::Cbor => encoding.encode(self),
        }
    }
}

/// Implements [`OperationOutput`] for outputs with members.
macro_rules! operation_outputs {
    ($( $output:ty ),* $(,)?) => {
        $( impl OperationOutput for $output {} )*
    };
}

operation_outputs!(
    DescribeLimitsOutput,
    DescribeStreamConsumerOutput,
    DescribeStreamOutput,
    DescribeStreamSummaryOutput,
    EnhancedMonitoringOutput,
    GetRecordsOutput,
    GetShardIteratorOutput,
    ListShardsOutput,
    ListStreamConsumersOutput,
    ListStreamsOutput,
    ListTagsForStreamOutput,
    PutRecordOutput,
    PutRecordsOutput,
    RegisterStreamConsumerOutput,
    UpdateShardCountOutput,
);
