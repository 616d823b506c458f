//! One function per Kinesis operation, and the dispatch from an operation name
//! and a decoded body to them.

mod consumers;
mod records;
mod reshard;
mod streams;

pub use records::{MAX_GET_RECORDS_BYTES, MAX_PUT_RECORDS_BYTES, MAX_RECORD_BYTES, StartAt};
pub use streams::visible_shards;

use crate::service::Service;
use bytes::Bytes;
use kinesis_proto::KinesisError;
use kinesis_proto::codec::Encoding;
use kinesis_proto::model::{Empty, Operation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

fn run<I, O>(
    enc: Encoding,
    body: &[u8],
    f: impl FnOnce(I) -> Result<O, KinesisError>,
) -> Result<Bytes, KinesisError>
where
    I: DeserializeOwned,
    O: Serialize + 'static,
{
    let input: I = enc.decode(body)?;
    let out = f(input)?;
    // Operations without output members answer with an empty body.
    if std::any::TypeId::of::<O>() == std::any::TypeId::of::<Empty>() {
        return Ok(Bytes::new());
    }
    Ok(enc.encode(&out))
}

/// Run `op` on a request body; the response body on success.
pub fn dispatch(
    svc: &Arc<Service>,
    op: Operation,
    enc: Encoding,
    body: &[u8],
) -> Result<Bytes, KinesisError> {
    use Operation as O;
    match op {
        O::CreateStream => run(enc, body, |i| svc.create_stream(i)),
        O::DeleteStream => run(enc, body, |i| svc.delete_stream(i)),
        O::DescribeStream => run(enc, body, |i| svc.describe_stream(i)),
        O::DescribeStreamSummary => run(enc, body, |i| svc.describe_stream_summary(i)),
        O::ListStreams => run(enc, body, |i| svc.list_streams(i)),
        O::ListShards => run(enc, body, |i| svc.list_shards(i)),
        O::PutRecord => run(enc, body, |i| svc.put_record(i)),
        O::PutRecords => run(enc, body, |i| svc.put_records(i)),
        O::GetShardIterator => run(enc, body, |i| svc.get_shard_iterator(i)),
        O::GetRecords => run(enc, body, |i| svc.get_records(i)),
        O::SplitShard => run(enc, body, |i| svc.split_shard(i)),
        O::MergeShards => run(enc, body, |i| svc.merge_shards(i)),
        O::UpdateShardCount => run(enc, body, |i| svc.update_shard_count(i)),
        O::IncreaseStreamRetentionPeriod => run(enc, body, |i| svc.increase_retention(i)),
        O::DecreaseStreamRetentionPeriod => run(enc, body, |i| svc.decrease_retention(i)),
        O::AddTagsToStream => run(enc, body, |i| svc.add_tags(i)),
        O::RemoveTagsFromStream => run(enc, body, |i| svc.remove_tags(i)),
        O::ListTagsForStream => run(enc, body, |i| svc.list_tags(i)),
        O::DescribeLimits => run(enc, body, |_: Empty| svc.describe_limits()),
        O::EnableEnhancedMonitoring => run(enc, body, |i| svc.enhanced_monitoring(i, true)),
        O::DisableEnhancedMonitoring => run(enc, body, |i| svc.enhanced_monitoring(i, false)),
        O::UpdateStreamMode => run(enc, body, |i| svc.update_stream_mode(i)),
        O::StartStreamEncryption => run(enc, body, |i| svc.stream_encryption(i, true)),
        O::StopStreamEncryption => run(enc, body, |i| svc.stream_encryption(i, false)),
        O::RegisterStreamConsumer => run(enc, body, |i| svc.register_consumer(i)),
        O::DeregisterStreamConsumer => run(enc, body, |i| svc.deregister_consumer(i)),
        O::DescribeStreamConsumer => run(enc, body, |i| svc.describe_consumer(i)),
        O::ListStreamConsumers => run(enc, body, |i| svc.list_consumers(i)),
        // SubscribeToShard streams its response; the HTTP layer handles it.
        _ => Err(KinesisError::new(
            kinesis_proto::ErrorCode::UnknownOperation,
            format!("Operation {} is not supported by this broker.", op.name()),
        )),
    }
}
