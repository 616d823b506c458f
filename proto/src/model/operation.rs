//! The operations and their `X-Amz-Target` names.

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
