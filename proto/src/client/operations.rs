//! The named method of each operation, over [`Client::call`].

use super::{Client, ClientError};
use crate::model::*;
use crate::operation_types::OperationOutput;

/// The named method of each operation: a thin wrapper over [`Client::call`],
/// for inputs shared by two operations wrapping them into the operation's own.
macro_rules! operations {
    ($( $(#[$doc:meta])* $method:ident($input:ty) -> $output:ty = |$i:ident| $typed:expr; )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, input: &$input) -> Result<$output, ClientError> {
                    let $i = input;
                    let output = self.call($typed).await?;
                    Ok(output.into_return())
                }
            )*
        }
    };
}

/// Converts an operation's output into what its named method returns: `()`
/// for operations without output members, the output itself otherwise.
trait IntoReturn<R> {
    /// The value the named method returns.
    fn into_return(self) -> R;
}

impl<O: OperationOutput> IntoReturn<O> for O {
    fn into_return(self) -> O {
        self
    }
}

impl IntoReturn<()> for Empty {
    fn into_return(self) {}
}

operations! {
    /// AddTagsToStream.
    add_tags_to_stream(AddTagsToStreamInput) -> () = |i| i;
    /// CreateStream.
    create_stream(CreateStreamInput) -> () = |i| i;
    /// DecreaseStreamRetentionPeriod.
    decrease_stream_retention_period(RetentionPeriodInput) -> () = |i| &DecreaseStreamRetentionPeriodInput(i.clone());
    /// DeleteStream.
    delete_stream(DeleteStreamInput) -> () = |i| i;
    /// DeregisterStreamConsumer.
    deregister_stream_consumer(ConsumerRef) -> () = |i| &DeregisterStreamConsumerInput(i.clone());
    /// DescribeStream (legacy; prefer ListShards and DescribeStreamSummary).
    describe_stream(DescribeStreamInput) -> DescribeStreamOutput = |i| i;
    /// DescribeStreamConsumer.
    describe_stream_consumer(ConsumerRef) -> DescribeStreamConsumerOutput = |i| &DescribeStreamConsumerInput(i.clone());
    /// DescribeStreamSummary.
    describe_stream_summary(DescribeStreamSummaryInput) -> DescribeStreamSummaryOutput = |i| i;
    /// DisableEnhancedMonitoring.
    disable_enhanced_monitoring(EnhancedMonitoringInput) -> EnhancedMonitoringOutput = |i| &DisableEnhancedMonitoringInput(i.clone());
    /// EnableEnhancedMonitoring.
    enable_enhanced_monitoring(EnhancedMonitoringInput) -> EnhancedMonitoringOutput = |i| &EnableEnhancedMonitoringInput(i.clone());
    /// GetRecords.
    get_records(GetRecordsInput) -> GetRecordsOutput = |i| i;
    /// GetShardIterator.
    get_shard_iterator(GetShardIteratorInput) -> GetShardIteratorOutput = |i| i;
    /// IncreaseStreamRetentionPeriod.
    increase_stream_retention_period(RetentionPeriodInput) -> () = |i| &IncreaseStreamRetentionPeriodInput(i.clone());
    /// ListShards (one page).
    list_shards(ListShardsInput) -> ListShardsOutput = |i| i;
    /// ListStreamConsumers (one page).
    list_stream_consumers(ListStreamConsumersInput) -> ListStreamConsumersOutput = |i| i;
    /// ListStreams (one page).
    list_streams(ListStreamsInput) -> ListStreamsOutput = |i| i;
    /// ListTagsForStream (one page).
    list_tags_for_stream(ListTagsForStreamInput) -> ListTagsForStreamOutput = |i| i;
    /// MergeShards.
    merge_shards(MergeShardsInput) -> () = |i| i;
    /// PutRecord; see [`RetryPolicy`] on duplicates.
    put_record(PutRecordInput) -> PutRecordOutput = |i| i;
    /// PutRecords; per-record failures are in the output, not an error. See [`RetryPolicy`] on duplicates.
    put_records(PutRecordsInput) -> PutRecordsOutput = |i| i;
    /// RegisterStreamConsumer.
    register_stream_consumer(RegisterStreamConsumerInput) -> RegisterStreamConsumerOutput = |i| i;
    /// RemoveTagsFromStream.
    remove_tags_from_stream(RemoveTagsFromStreamInput) -> () = |i| i;
    /// SplitShard.
    split_shard(SplitShardInput) -> () = |i| i;
    /// StartStreamEncryption.
    start_stream_encryption(StreamEncryptionInput) -> () = |i| &StartStreamEncryptionInput(i.clone());
    /// StopStreamEncryption.
    stop_stream_encryption(StreamEncryptionInput) -> () = |i| &StopStreamEncryptionInput(i.clone());
    /// UpdateShardCount.
    update_shard_count(UpdateShardCountInput) -> UpdateShardCountOutput = |i| i;
    /// UpdateStreamMode.
    update_stream_mode(UpdateStreamModeInput) -> () = |i| i;
}

impl Client {
    /// DescribeLimits (no input members; sends `{}`).
    pub async fn describe_limits(&self) -> Result<DescribeLimitsOutput, ClientError> {
        self.call(&DescribeLimitsInput {}).await
    }
}
