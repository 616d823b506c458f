//! One function per Kinesis operation, the dispatch from an operation name
//! and a decoded body to them, and the request pipeline ([`handle`]) every
//! Kinesis call goes through.

mod consumers;
mod get_records_json;
mod pipeline;
mod put_records_json;
mod records;
mod reshard;
mod stream_settings;
mod streams;
mod subscribe;

pub use kinesis_proto::limits::{MAX_GET_RECORDS_BYTES, MAX_PUT_RECORDS_BYTES, MAX_RECORD_BYTES};
pub use pipeline::handle;
pub use records::{PutEntry, PutOutcome, PutResult, StartAt};
pub use streams::visible_shards;
pub use subscribe::{
    EventParts, MAX_EVENT_BYTES, MAX_EVENT_RECORDS, SubscribeToShardStream, exception_message,
    write_event_json,
};

use crate::limiter::{Scope, control_plane_exceeded, control_plane_rate};
use crate::service::Service;
use crate::store::PartitionKey;
use bytes::Bytes;
use get_records_json::write_get_records_json;
use kinesis_proto::KinesisError;
use kinesis_proto::codec::Encoding;
use kinesis_proto::model::{
    DecreaseStreamRetentionPeriodInput, DeregisterStreamConsumerInput, DescribeLimitsInput,
    DescribeStreamConsumerInput, DisableEnhancedMonitoringInput, EnableEnhancedMonitoringInput,
    IncreaseStreamRetentionPeriodInput, Operation, PutRecordInput, StartStreamEncryptionInput,
    StopStreamEncryptionInput,
};
use kinesis_proto::operation_types::{OperationInput, OperationOutput};
use kinesis_proto::put_records_view::PutRecordsView;
use put_records_json::write_put_records_json;
use serde::Deserialize;
use std::sync::Arc;

/// Decode `I`, run its operation's handler and encode the output.
fn run<I: OperationInput>(
    enc: Encoding,
    body: &[u8],
    f: impl FnOnce(I) -> Result<I::Output, KinesisError>,
) -> Result<Bytes, KinesisError> {
    let input: I = enc.decode(body)?;
    let out = f(input)?;
    // Operations without output members answer with an empty body.
    if !<I::Output as OperationOutput>::HAS_MEMBERS {
        return Ok(Bytes::new());
    }
    Ok(enc.encode(&out))
}

/// The members that name a request's stream, for per-stream TPS budgets.
#[derive(Deserialize)]
struct StreamMembers {
    #[serde(rename = "StreamName")]
    stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    stream_arn: Option<String>,
    #[serde(rename = "ConsumerARN")]
    consumer_arn: Option<String>,
}

/// The existing stream a request names, if any. Unknown names are not
/// returned so that made-up names cannot grow the per-stream budgets; those
/// requests fail with ResourceNotFound anyway.
fn named_stream(svc: &Service, enc: Encoding, body: &[u8]) -> Option<String> {
    // A body that does not decode gets its SerializationException from the
    // operation itself.
    let m: StreamMembers = enc.decode(body).ok()?;
    let name = m
        .stream_name
        .or_else(|| {
            m.stream_arn
                .as_deref()
                .and_then(crate::arn::parse_stream_arn)
                .map(|(_, _, n)| n.to_string())
        })
        .or_else(|| {
            m.consumer_arn
                .as_deref()
                .and_then(crate::arn::parse_consumer_arn)
                .and_then(|(stream, _, _)| crate::arn::parse_stream_arn(stream))
                .map(|(_, _, n)| n.to_string())
        })?;
    svc.streams().read().contains_key(&name).then_some(name)
}

/// Take one call from `op`'s control-plane TPS budget (docs/limits.md), or refuse
/// it with `LimitExceededException`.
pub fn admit_control_plane(
    svc: &Service,
    op: Operation,
    enc: Encoding,
    body: &[u8],
) -> Result<(), KinesisError> {
    let Some(rate) = control_plane_rate(op) else {
        return Ok(());
    };
    let stream = match rate.scope {
        Scope::Stream => named_stream(svc, enc, body),
        Scope::Account => None,
    };
    let now = svc.limiter_now();
    svc.control_plane()
        .lock()
        .admit(op, stream.as_deref(), now)
        .map_err(|_| control_plane_exceeded(op, stream.as_deref(), &svc.config().account_id))
}

/// SubscribeToShard on a request body: the event stream to send, or the
/// error to answer before any event.
pub fn subscribe(
    svc: &Arc<Service>,
    enc: Encoding,
    body: &[u8],
) -> Result<SubscribeToShardStream, KinesisError> {
    kinesis_proto::shape::check(Operation::SubscribeToShard, enc, body)?;
    let input = enc.decode(body)?;
    svc.subscribe_to_shard(input)
}

/// [`dispatch`] on a blocking thread when the store is on disk: its reads,
/// writes, fsyncs and directory work must not occupy an async worker, where
/// they would stall every other request scheduled there.
pub async fn dispatch_off_runtime(
    svc: &Arc<Service>,
    op: Operation,
    enc: Encoding,
    body: Bytes,
    read: Option<PutRecordsView>,
) -> Result<Bytes, KinesisError> {
    if !svc.storage().persists() {
        return dispatch_read(svc, op, enc, &body, read);
    }
    let svc = Arc::clone(svc);
    tokio::task::spawn_blocking(move || dispatch_read(&svc, op, enc, &body, read))
        .await
        .unwrap_or_else(|e| Err(KinesisError::internal(format!("The request failed: {e}"))))
}

/// Run `op` on a request body; the response body on success.
pub fn dispatch(
    svc: &Arc<Service>,
    op: Operation,
    enc: Encoding,
    body: &Bytes,
) -> Result<Bytes, KinesisError> {
    dispatch_read(svc, op, enc, body, read_put_records(op, enc, body))
}

/// A PutRecords JSON body in the plain form, read in place; `None` for any
/// other operation, encoding or form.
pub fn read_put_records(op: Operation, enc: Encoding, body: &Bytes) -> Option<PutRecordsView> {
    (enc == Encoding::Json && op == Operation::PutRecords)
        .then(|| PutRecordsView::read(body))
        .flatten()
}

/// [`dispatch`], given what [`read_put_records`] made of `body` (the request
/// path reads it first, to learn that the body is a structure without a
/// second pass).
pub fn dispatch_read(
    svc: &Arc<Service>,
    op: Operation,
    enc: Encoding,
    body: &Bytes,
    read: Option<PutRecordsView>,
) -> Result<Bytes, KinesisError> {
    use Operation as O;
    // The hot writes decode once when the input is valid: the typed check
    // says yes only where the generic one would (kinesis_proto::shape::typed).
    // Anything else takes the generic path below, which words the error.
    if enc == Encoding::Json {
        match op {
            O::PutRecords => {
                if let Some(view) = read
                    && kinesis_proto::shape::put_records_view_satisfies(&view)
                    && let Some(entries) = view
                        .entries()
                        .map(|e| {
                            Some(PutEntry {
                                // Keys stay in the request body, data in one buffer.
                                partition_key: PartitionKey::from_utf8(e.partition_key_bytes()?)?,
                                data: e.data().unwrap_or_default(),
                                explicit_hash_key: e.explicit_hash_key(),
                            })
                        })
                        .collect::<Option<Vec<_>>>()
                {
                    let outcome = svc.put_entries(&view.stream_ref(), entries)?;
                    let mut json = Vec::new();
                    write_put_records_json(&mut json, &outcome);
                    return Ok(Bytes::from(json));
                }
            }
            O::PutRecord => {
                if let Ok(input) = enc.decode::<PutRecordInput>(body)
                    && kinesis_proto::shape::put_record_satisfies(&input)
                {
                    return Ok(enc.encode(&svc.put_record(input)?));
                }
            }
            _ => {}
        }
    }
    // The input model's constraints come first, as on the service
    // (docs/validation.md); handlers see only inputs that satisfy them.
    kinesis_proto::shape::check(op, enc, body)?;
    admit_control_plane(svc, op, enc, body)?;
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
        O::GetRecords if enc == Encoding::Json => {
            let out = svc.get_records(enc.decode(body)?)?;
            let mut json = Vec::new();
            write_get_records_json(&mut json, &out);
            Ok(Bytes::from(json))
        }
        O::GetRecords => run(enc, body, |i| svc.get_records(i)),
        O::SplitShard => run(enc, body, |i| svc.split_shard(i)),
        O::MergeShards => run(enc, body, |i| svc.merge_shards(i)),
        O::UpdateShardCount => run(enc, body, |i| svc.update_shard_count(i)),
        O::IncreaseStreamRetentionPeriod => {
            run(enc, body, |i: IncreaseStreamRetentionPeriodInput| {
                svc.increase_retention(i.0)
            })
        }
        O::DecreaseStreamRetentionPeriod => {
            run(enc, body, |i: DecreaseStreamRetentionPeriodInput| {
                svc.decrease_retention(i.0)
            })
        }
        O::AddTagsToStream => run(enc, body, |i| svc.add_tags(i)),
        O::RemoveTagsFromStream => run(enc, body, |i| svc.remove_tags(i)),
        O::ListTagsForStream => run(enc, body, |i| svc.list_tags(i)),
        O::DescribeLimits => run(enc, body, |_: DescribeLimitsInput| svc.describe_limits()),
        O::EnableEnhancedMonitoring => run(enc, body, |i: EnableEnhancedMonitoringInput| {
            svc.enhanced_monitoring(i.0, true)
        }),
        O::DisableEnhancedMonitoring => run(enc, body, |i: DisableEnhancedMonitoringInput| {
            svc.enhanced_monitoring(i.0, false)
        }),
        O::UpdateStreamMode => run(enc, body, |i| svc.update_stream_mode(i)),
        O::StartStreamEncryption => run(enc, body, |i: StartStreamEncryptionInput| {
            svc.stream_encryption(i.0, true)
        }),
        O::StopStreamEncryption => run(enc, body, |i: StopStreamEncryptionInput| {
            svc.stream_encryption(i.0, false)
        }),
        O::RegisterStreamConsumer => run(enc, body, |i| svc.register_consumer(i)),
        O::DeregisterStreamConsumer => run(enc, body, |i: DeregisterStreamConsumerInput| {
            svc.deregister_consumer(i.0)
        }),
        O::DescribeStreamConsumer => run(enc, body, |i: DescribeStreamConsumerInput| {
            svc.describe_consumer(i.0)
        }),
        O::ListStreamConsumers => run(enc, body, |i| svc.list_consumers(i)),
        // SubscribeToShard streams its response; the HTTP layer handles it.
        _ => Err(KinesisError::new(
            kinesis_proto::ErrorCode::UnknownOperation,
            format!("Operation {} is not supported by this broker.", op.name()),
        )),
    }
}
