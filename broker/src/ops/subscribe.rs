//! SubscribeToShard: the request's checks, the subscription rules, and the
//! event stream pushed to the consumer (`docs/event-stream.md` §3–§4).
//!
//! The response body is pulled, not pushed: hyper asks for the next chunk only
//! when the connection can take it (HTTP/2 flow control, or TCP back-pressure
//! on HTTP/1.1), so a slow consumer holds at most one chunk in the broker.
//! Each chunk is one or more whole event frames, batched so that a consumer
//! catching up gets few large DATA frames rather than many tiny ones.

use crate::metrics::ConsumerShardMetrics;
use crate::ops::StartAt;
use crate::service::{Service, now_ms};
use crate::shard::Shard;
use crate::store::LogRecord;
use crate::stream::{ConsumerStatus, Stream, StreamStatus};
use crate::subscription::Lease;
use crate::validation::Violations;
use bytes::{Bytes, BytesMut};
use kinesis_proto::codec::Timestamp;
use kinesis_proto::event_stream::{self, Message};
use kinesis_proto::json_out::{append_base64, append_member};
use kinesis_proto::model::{ChildShard, ConsumerRef, ShardIteratorType, SubscribeToShardInput};
use kinesis_proto::{ErrorCode, KinesisError, sequence};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Most records in one SubscribeToShardEvent.
pub const MAX_EVENT_RECORDS: usize = 10_000;
/// Most record bytes (data + partition key) in one SubscribeToShardEvent; a
/// single larger record still travels alone.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// Frames are batched into one body chunk up to about this size.
const CHUNK_TARGET: usize = 1024 * 1024;
/// A paced subscription waits until this much budget has refilled (or the
/// bucket is full, if smaller) so events stay reasonably large.
const PACE_QUANTUM: u64 = 64 * 1024;

/// Where the event stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The initial-response is still to be sent.
    Start,
    /// Pushing events.
    Streaming,
    /// The last frame was sent.
    Done,
}

/// What one pass over the shard found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Records may remain; the chunk is full.
    Full,
    /// Everything readable was sent; wait for appends.
    CaughtUp,
    /// Records remain but the budget is spent; wait for it to refill.
    Paced,
    /// The shard ended and the final event was written.
    Ended,
}

/// One running SubscribeToShard response: call [`next_chunk`](Self::next_chunk)
/// until it returns `None`, or turn it into a response body with
/// [`into_body`](Self::into_body). Dropping it ends the subscription.
pub struct SubscribeToShardStream {
    svc: Arc<Service>,
    stream: Arc<Stream>,
    shard: Arc<Shard>,
    consumer_name: String,
    lease: Lease,
    metrics: Option<ConsumerShardMetrics>,
    /// Counter of the next record to send.
    next: u64,
    phase: Phase,
    deadline: Instant,
    last_event: Instant,
}

impl std::fmt::Debug for SubscribeToShardStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeToShardStream")
            .field("stream", &self.stream.name)
            .field("shard", &self.shard.id)
            .field("consumer", &self.consumer_name)
            .field("next", &self.next)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// SubscribeToShard: check the request and the subscription rules, and
    /// return the event stream to send. Errors here are ordinary HTTP errors.
    pub fn subscribe_to_shard(
        self: &Arc<Self>,
        input: SubscribeToShardInput,
    ) -> Result<SubscribeToShardStream, KinesisError> {
        let mut v = Violations::new();
        if v.required("consumerARN", &input.consumer_arn) {
            v.length(
                "consumerARN",
                input.consumer_arn.as_deref().unwrap_or_default(),
                1,
                2048,
            );
        }
        if v.required("shardId", &input.shard_id) {
            v.length(
                "shardId",
                input.shard_id.as_deref().unwrap_or_default(),
                1,
                128,
            );
        }
        if v.required("startingPosition", &input.starting_position)
            && let Some(p) = &input.starting_position
        {
            v.one_of(
                "startingPosition.type",
                p.position_type.as_str(),
                ShardIteratorType::values(),
            );
        }
        v.finish()?;
        let consumer_arn = input.consumer_arn.unwrap_or_default();
        let shard_id = input.shard_id.unwrap_or_default();
        let position = input.starting_position.unwrap_or_default();
        let (stream, consumer) = self.resolve_consumer(&ConsumerRef {
            consumer_arn: Some(consumer_arn.clone()),
            ..Default::default()
        })?;
        if stream.meta.read().status == StreamStatus::Creating {
            return Err(self.not_found(&stream.name));
        }
        if consumer.status != ConsumerStatus::Active {
            return Err(KinesisError::in_use(format!(
                "Consumer {consumer_arn} is not ACTIVE, instead in state {}.",
                consumer.status.as_str()
            )));
        }
        let shard = self.shard_of(&stream, &shard_id)?;
        let start = StartAt::parse(
            &position.position_type,
            position.sequence_number,
            position.timestamp,
        )?;
        let next = self.start_counter(&stream, &shard, &start)?;
        let limits = self.config().limits.for_stream(&stream.name);
        let lease = shard
            .subscriptions()
            .subscribe(
                &consumer_arn,
                &limits,
                self.config().subscription_takeover,
                self.limiter_now(),
            )
            .map_err(|r| r.to_error(&consumer_arn, &shard_id))?;
        let metrics = self.config().metrics.then(|| {
            self.metrics()
                .consumer_shard(&stream.name, &shard.id, &consumer.name)
        });
        if let Some(m) = &metrics {
            m.subscribed();
        }
        let now = Instant::now();
        Ok(SubscribeToShardStream {
            svc: Arc::clone(self),
            stream,
            shard,
            consumer_name: consumer.name,
            lease,
            metrics,
            next,
            phase: Phase::Start,
            deadline: now + self.config().subscription_lifetime,
            last_event: now,
        })
    }
}

impl SubscribeToShardStream {
    /// The next chunk of whole event frames, or `None` once the response is complete
    /// (lifetime over, shard ended, taken over, or the consumer went away).
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Start => {
                    self.phase = Phase::Streaming;
                    let mut chunk = BytesMut::new();
                    push_frame(&mut chunk, &Message::event("initial-response", "{}"));
                    // Whatever is already there travels with it.
                    self.lease.mark_appends_seen();
                    self.fill_off_runtime(&mut chunk);
                    self.last_event = Instant::now();
                    return Some(chunk.freeze());
                }
                Phase::Streaming => {}
            }
            if self.lease.is_taken_over() {
                return Some(self.finish_with_exception(KinesisError::in_use(format!(
                    "Another subscription for consumer {} and shard {} took over this one.",
                    self.consumer_name, self.shard.id
                ))));
            }
            if Instant::now() >= self.deadline {
                self.phase = Phase::Done;
                return None;
            }
            if let Some(e) = self.consumer_gone() {
                return Some(self.finish_with_exception(e));
            }
            self.lease.mark_appends_seen();
            let mut chunk = BytesMut::new();
            let fill = self.fill_off_runtime(&mut chunk);
            if !chunk.is_empty() {
                self.last_event = Instant::now();
                return Some(chunk.freeze());
            }
            let heartbeat_at = self.last_event + self.svc.config().subscription_heartbeat;
            let timer = heartbeat_at.min(self.deadline);
            let pace = (fill == Fill::Paced).then(|| {
                self.lease
                    .time_until(PACE_QUANTUM, self.svc.limiter_now())
                    .max(Duration::from_millis(1))
            });
            let timer = match pace {
                Some(p) => timer.min(Instant::now() + p),
                None => timer,
            };
            tokio::select! {
                _ = self.lease.wait(pace.is_none()) => {}
                _ = tokio::time::sleep_until(timer) => {
                    let now = Instant::now();
                    if now >= heartbeat_at && now < self.deadline {
                        self.last_event = now;
                        return Some(self.heartbeat());
                    }
                }
            }
        }
    }

    /// The response body: the chunks as HTTP body frames.
    pub fn into_body(self) -> crate::response::Body {
        use http_body_util::BodyExt;
        let chunks = futures::stream::unfold(self, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok(hyper::body::Frame::data(chunk)), s))
        });
        http_body_util::StreamBody::new(chunks).boxed()
    }

    /// [`fill`](Self::fill), on a durable store without occupying an async
    /// worker while it reads segment files: the worker's other tasks move to
    /// another thread meanwhile (possible on a multi-threaded runtime only).
    fn fill_off_runtime(&mut self, chunk: &mut BytesMut) -> Fill {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread && self.svc.storage().persists() {
            tokio::task::block_in_place(|| self.fill(chunk))
        } else {
            self.fill(chunk)
        }
    }

    /// Append events for what can be sent now, up to the chunk target.
    fn fill(&mut self, chunk: &mut BytesMut) -> Fill {
        let now = now_ms();
        let (retention, encryption, switches) = {
            let m = self.stream.meta.read();
            // Each record's EncryptionType is the one it was written with.
            (
                m.retention_hours,
                m.encryption_type(),
                m.encryption_switches.clone(),
            )
        };
        let min_arrival = self.svc.min_arrival_ms(retention, now);
        loop {
            let clock = self.svc.limiter_now();
            let available = self.lease.bytes_available(clock);
            if available == 0 {
                let status = self.shard.status();
                if status.last_counter.is_some_and(|l| l >= self.next) {
                    return Fill::Paced;
                }
                if status.end_counter.is_some() {
                    // The final event carries no records and needs no budget.
                    self.end_of_shard(chunk);
                    return Fill::Ended;
                }
                return Fill::CaughtUp;
            }
            let max_bytes = usize::try_from(available)
                .unwrap_or(usize::MAX)
                .min(MAX_EVENT_BYTES);
            let read = self
                .shard
                .try_read(self.next, min_arrival, MAX_EVENT_RECORDS, max_bytes);
            let (batch, status) = match read {
                Ok(r) => r,
                Err(e) => {
                    // Heartbeats would tell the consumer it is caught up while
                    // it is stuck: end the stream with the error instead.
                    tracing::error!(shard = %self.shard.id, error = %e, "reading the shard failed");
                    self.phase = Phase::Done;
                    push_frame(
                        chunk,
                        &exception_message(&KinesisError::internal(e.to_string())),
                    );
                    return Fill::Ended;
                }
            };
            let Some(last) = batch.records.last() else {
                // Records held back until durable are still to come.
                if status.end_counter.is_some() && batch.next_arrival_ms.is_none() {
                    self.end_of_shard(chunk);
                    return Fill::Ended;
                }
                return Fill::CaughtUp;
            };
            let last_counter = last.counter;
            let billed: u64 = batch.records.iter().map(|r| r.billed_size() as u64).sum();
            self.lease.consume(billed, clock);
            self.next = last_counter + 1;
            let millis_behind = batch.next_arrival_ms.map_or(0, |a| (now - a).max(0));
            let continuation = sequence::layout::encode(last_counter, self.shard.index);
            let mut payload = Vec::with_capacity(billed as usize * 4 / 3 + 256);
            write_event_json(
                &mut payload,
                &EventParts {
                    shard_index: self.shard.index,
                    records: &batch.records,
                    encryption,
                    switches: &switches,
                    continuation: Some(&continuation),
                    millis_behind,
                    child_shards: None,
                },
            );
            push_frame(chunk, &Message::event("SubscribeToShardEvent", payload));
            if let Some(m) = &self.metrics {
                m.event_pushed(batch.records.len() as u64, billed, millis_behind);
            }
            if chunk.len() >= CHUNK_TARGET {
                return Fill::Full;
            }
        }
    }

    /// The final event of a closed shard: no continuation, its children.
    fn end_of_shard(&mut self, chunk: &mut BytesMut) {
        let children = self.svc.child_shards(&self.stream, self.shard.index);
        let mut payload = Vec::new();
        write_event_json(
            &mut payload,
            &EventParts {
                shard_index: self.shard.index,
                records: &[],
                encryption: "NONE",
                switches: &[],
                continuation: None,
                millis_behind: 0,
                child_shards: Some(&children),
            },
        );
        push_frame(chunk, &Message::event("SubscribeToShardEvent", payload));
        if let Some(m) = &self.metrics {
            m.event_pushed(0, 0, 0);
        }
        self.phase = Phase::Done;
    }

    /// An event without records that lets the consumer checkpoint its position.
    fn heartbeat(&mut self) -> Bytes {
        // The sequence number just below the next record: resuming AFTER it
        // continues exactly here, and it is never below the shard's start.
        let below_next = self.next.max(self.shard.start_counter + 1) - 1;
        let continuation = sequence::layout::encode(below_next, self.shard.index);
        let mut payload = Vec::new();
        write_event_json(
            &mut payload,
            &EventParts {
                shard_index: self.shard.index,
                records: &[],
                encryption: "NONE",
                switches: &[],
                continuation: Some(&continuation),
                millis_behind: 0,
                child_shards: None,
            },
        );
        let mut chunk = BytesMut::new();
        push_frame(
            &mut chunk,
            &Message::event("SubscribeToShardEvent", payload),
        );
        if let Some(m) = &self.metrics {
            m.event_pushed(0, 0, 0);
        }
        chunk.freeze()
    }

    /// The error that ends the stream when its consumer or stream went away.
    fn consumer_gone(&self) -> Option<KinesisError> {
        let m = self.stream.meta.read();
        let registered = m.consumers.get(&self.consumer_name).is_some_and(|c| {
            c.status == ConsumerStatus::Active && self.lease.consumer_arn() == c.arn
        });
        let stream_alive = m.status != StreamStatus::Deleting;
        (!registered || !stream_alive).then(|| {
            KinesisError::not_found(format!(
                "Consumer {} of stream {} is no longer registered.",
                self.consumer_name, self.stream.name
            ))
        })
    }

    fn finish_with_exception(&mut self, err: KinesisError) -> Bytes {
        self.phase = Phase::Done;
        let mut chunk = BytesMut::new();
        push_frame(&mut chunk, &exception_message(&err));
        chunk.freeze()
    }
}

/// A modelled exception event for `err`.
pub fn exception_message(err: &KinesisError) -> Message {
    let payload = serde_json::json!({ "message": err.message }).to_string();
    let kind = match err.code {
        ErrorCode::ResourceNotFound | ErrorCode::ResourceInUse => err.code.as_str(),
        // The event stream's modelled shape; `InternalFailure` is the HTTP error code.
        _ => "InternalFailureException",
    };
    Message::exception(kind, payload)
}

fn push_frame(chunk: &mut BytesMut, message: &Message) {
    // Our frames are far inside the codec's limits; a failure appends nothing
    // and the consumer sees the stream end, never a broken frame.
    if let Err(e) = event_stream::encode(message, chunk) {
        tracing::error!(error = %e, "could not encode an event frame");
    }
}

/// The members of one SubscribeToShardEvent.
#[derive(Debug, Clone, Copy)]
pub struct EventParts<'a> {
    /// The shard the records belong to (their sequence numbers encode it).
    pub shard_index: u32,
    /// The records, in order.
    pub records: &'a [LogRecord],
    /// `NONE` or `KMS`: the stream's setting, each record's `EncryptionType`
    /// unless `switches` says otherwise.
    pub encryption: &'a str,
    /// The stream's encryption switches by record counter
    /// ([`crate::stream::encryption_at`]); empty when it never switched.
    pub switches: &'a [(u64, bool)],
    /// `ContinuationSequenceNumber`; `None` only at shard end.
    pub continuation: Option<&'a str>,
    /// `MillisBehindLatest`.
    pub millis_behind: i64,
    /// `ChildShards`, only at shard end.
    pub child_shards: Option<&'a [ChildShard]>,
}

/// Write a SubscribeToShardEvent's JSON, byte for byte what serializing
/// `model::SubscribeToShardEvent` gives. Record data is base64-encoded
/// straight into `out`: the generic serializer escapes it byte by byte, which
/// dominates the cost of pushing 2 MiB/s to every consumer.
pub fn write_event_json(out: &mut Vec<u8>, e: &EventParts<'_>) {
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in e.records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"SequenceNumber\":\"");
        out.extend_from_slice(sequence::layout::encode(r.counter, e.shard_index).as_bytes());
        append_member(
            out,
            b"\",\"ApproximateArrivalTimestamp\":",
            &Timestamp(r.arrival_ms),
        );
        out.extend_from_slice(b",\"Data\":\"");
        append_base64(out, &r.data);
        append_member(out, b"\",\"PartitionKey\":", &*r.partition_key);
        append_member(
            out,
            b",\"EncryptionType\":",
            crate::stream::encryption_at(e.switches, e.encryption, r.counter),
        );
        out.push(b'}');
    }
    out.push(b']');
    if let Some(c) = e.continuation {
        append_member(out, b",\"ContinuationSequenceNumber\":", c);
    }
    append_member(out, b",\"MillisBehindLatest\":", &e.millis_behind);
    if let Some(children) = e.child_shards {
        append_member(out, b",\"ChildShards\":", children);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis_proto::codec::{Blob, Encoding};
    use kinesis_proto::model::{HashKeyRange, Record, SubscribeToShardEvent};
    use proptest::prelude::*;

    fn model_event(e: &EventParts<'_>) -> SubscribeToShardEvent {
        SubscribeToShardEvent {
            records: e
                .records
                .iter()
                .map(|r| Record {
                    sequence_number: sequence::layout::encode(r.counter, e.shard_index),
                    approximate_arrival_timestamp: Some(Timestamp(r.arrival_ms)),
                    data: Blob(r.data.clone()),
                    partition_key: r.partition_key.to_string(),
                    encryption_type: Some(
                        crate::stream::encryption_at(e.switches, e.encryption, r.counter)
                            .to_string(),
                    ),
                })
                .collect(),
            continuation_sequence_number: e.continuation.map(str::to_string),
            millis_behind_latest: e.millis_behind,
            child_shards: e.child_shards.map(<[ChildShard]>::to_vec),
        }
    }

    #[test]
    fn vector_d_values_encode_as_the_model_does() {
        let records = [LogRecord {
            counter: 0,
            arrival_ms: 1_700_000_000_123,
            partition_key: "pk-1".into(),
            data: Bytes::from_static(b"hello"),
        }];
        let mut out = Vec::new();
        let parts = EventParts {
            shard_index: 0,
            records: &records,
            encryption: "NONE",
            switches: &[],
            continuation: Some("49600871682957036442365024926191073437251060580128653314"),
            millis_behind: 0,
            child_shards: None,
        };
        write_event_json(&mut out, &parts);
        assert_eq!(out, Encoding::Json.encode(&model_event(&parts)).to_vec());
        let parsed: SubscribeToShardEvent = Encoding::Json.decode(&out).unwrap();
        assert_eq!(parsed.records[0].data.as_bytes(), b"hello");
    }

    #[test]
    fn end_of_shard_payload_has_children_and_no_continuation() {
        let children = [ChildShard {
            shard_id: "shardId-000000000001".into(),
            parent_shards: vec!["shardId-000000000000".into()],
            hash_key_range: HashKeyRange {
                starting_hash_key: "0".into(),
                ending_hash_key: "170141183460469231731687303715884105727".into(),
            },
        }];
        let parts = EventParts {
            shard_index: 0,
            records: &[],
            encryption: "NONE",
            switches: &[],
            continuation: None,
            millis_behind: 0,
            child_shards: Some(&children),
        };
        let mut out = Vec::new();
        write_event_json(&mut out, &parts);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(!text.contains("ContinuationSequenceNumber"), "{text}");
        assert_eq!(out, Encoding::Json.encode(&model_event(&parts)).to_vec());
    }

    #[test]
    fn exceptions_keep_modelled_types_only() {
        let m = exception_message(&KinesisError::in_use("taken over"));
        assert_eq!(m.exception_type(), Some("ResourceInUseException"));
        assert_eq!(&m.payload[..], br#"{"message":"taken over"}"#);
        let m = exception_message(&KinesisError::invalid("odd"));
        assert_eq!(m.exception_type(), Some("InternalFailureException"));
    }

    fn events_of(chunk: &Bytes) -> Vec<Message> {
        let mut d = event_stream::Decoder::default();
        d.push(chunk);
        let mut out = Vec::new();
        while let Some(m) = d.next_message().unwrap() {
            out.push(m);
        }
        out
    }

    fn event_of(m: &Message) -> SubscribeToShardEvent {
        assert_eq!(m.event_type(), Some("SubscribeToShardEvent"));
        Encoding::Json.decode(&m.payload).unwrap()
    }

    #[tokio::test]
    async fn records_then_heartbeat_then_shard_end_without_sockets() {
        use crate::limiter::LimitProfile;
        use kinesis_proto::model::{
            CreateStreamInput, RegisterStreamConsumerInput, SplitShardInput, StartingPosition,
            StreamRef,
        };
        let svc = Service::new(
            crate::BrokerConfig::builder()
                .state_delays(Duration::ZERO)
                .limit_profile(LimitProfile::Off)
                .subscription_heartbeat(Duration::from_millis(20))
                .build(),
        );
        svc.create_stream(CreateStreamInput {
            stream_name: Some("s".into()),
            shard_count: Some(1),
            ..Default::default()
        })
        .unwrap();
        let arn = svc
            .register_consumer(RegisterStreamConsumerInput {
                stream_arn: Some(svc.stream_arn("s")),
                consumer_name: Some("c".into()),
            })
            .unwrap()
            .consumer
            .consumer_arn;
        let stream = svc.stream_by_name("s").unwrap();
        let shard = Arc::clone(&stream.meta.read().shards[0]);
        let counters = shard
            .append(
                &stream.counter,
                now_ms(),
                [
                    ("k".into(), Bytes::from_static(b"a")),
                    ("k".into(), Bytes::from_static(b"b")),
                ],
            )
            .unwrap()
            .unwrap();
        let mut events = svc
            .subscribe_to_shard(SubscribeToShardInput {
                consumer_arn: Some(arn.clone()),
                shard_id: Some(shard.id.clone()),
                starting_position: Some(StartingPosition {
                    position_type: "TRIM_HORIZON".into(),
                    ..Default::default()
                }),
            })
            .unwrap();
        // The initial-response travels with the backlog.
        let first = events_of(&events.next_chunk().await.unwrap());
        assert_eq!(first[0].event_type(), Some("initial-response"));
        let e = event_of(&first[1]);
        assert_eq!(e.records.len(), 2);
        let last_seq = sequence::layout::encode(counters[1], 0);
        assert_eq!(
            e.continuation_sequence_number.as_deref(),
            Some(last_seq.as_str())
        );
        // Idle: a heartbeat keeps the position.
        let beat = event_of(&events_of(&events.next_chunk().await.unwrap())[0]);
        assert!(beat.records.is_empty());
        assert_eq!(
            beat.continuation_sequence_number.as_deref(),
            Some(last_seq.as_str())
        );
        // A split closes the shard: the final event names the children, then the end.
        svc.split_shard(SplitShardInput {
            stream: StreamRef::name("s"),
            shard_to_split: Some(shard.id.clone()),
            new_starting_hash_key: Some("170141183460469231731687303715884105728".into()),
        })
        .unwrap();
        let end = event_of(&events_of(&events.next_chunk().await.unwrap())[0]);
        assert_eq!(end.continuation_sequence_number, None);
        let children = end.child_shards.unwrap();
        assert_eq!(children.len(), 2);
        assert!(
            children
                .iter()
                .all(|c| c.parent_shards == [shard.id.clone()])
        );
        assert!(events.next_chunk().await.is_none());
        drop(events);
        assert!(shard.subscriptions().active_consumers().is_empty());
    }

    proptest! {
        /// The hand-written JSON is exactly what the model's serializer writes.
        #[test]
        fn event_json_matches_the_model_serializer(
            records in prop::collection::vec(
                (any::<u64>(), 0i64..4_000_000_000_000, "\\PC{0,8}", prop::collection::vec(any::<u8>(), 0..64)),
                0..6,
            ),
            shard_index in 0u32..100_000,
            kms in any::<bool>(),
            continuation in prop::option::of("[0-9]{1,56}"),
            millis_behind in 0i64..1_000_000_000,
        ) {
            let records: Vec<LogRecord> = records
                .into_iter()
                .map(|(counter, arrival_ms, pk, data)| LogRecord {
                    counter: counter >> 8,
                    arrival_ms,
                    partition_key: pk.into(),
                    data: Bytes::from(data),
                })
                .collect();
            let parts = EventParts {
                shard_index,
                records: &records,
                encryption: if kms { "KMS" } else { "NONE" },
                switches: &[],
                continuation: continuation.as_deref(),
                millis_behind,
                child_shards: None,
            };
            let mut out = Vec::new();
            write_event_json(&mut out, &parts);
            prop_assert_eq!(out, Encoding::Json.encode(&model_event(&parts)).to_vec());
        }
    }
}
