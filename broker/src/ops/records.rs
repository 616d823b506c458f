//! The data plane: PutRecord, PutRecords, GetShardIterator, GetRecords.

use crate::limiter::{record_cost, shard_throughput_exceeded, shard_throughput_message};
use crate::service::{Service, now_ms};
use crate::shard::Shard;
use crate::store::PartitionKey;
use crate::stream::{Stream, StreamStatus};
use crate::token::IteratorPosition;
use crate::validation::Violations;
use bytes::Bytes;
use kinesis_proto::KinesisError;
use kinesis_proto::codec::{Blob, Timestamp};
use kinesis_proto::error::ErrorCode;
use kinesis_proto::hash_key::{hash_key_for_partition_key, parse_hash_key};
use kinesis_proto::limits::{
    MAX_GET_RECORDS_BYTES, MAX_GET_RECORDS_LIMIT, MAX_PARTITION_KEY_CHARS, MAX_PUT_RECORDS_BYTES,
    MAX_PUT_RECORDS_ENTRIES, MAX_RECORD_BYTES,
};
use kinesis_proto::model::*;
use kinesis_proto::{sequence, shard_id};
use std::sync::Arc;

fn hash_key_of(partition_key: &str, explicit: Option<&str>) -> Result<u128, KinesisError> {
    match explicit {
        None => Ok(hash_key_for_partition_key(partition_key)),
        Some(e) => parse_hash_key(e).ok_or_else(|| {
            KinesisError::invalid(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {e}"
            ))
        }),
    }
}

/// A record accepted for storage.
struct Accepted {
    hash_key: u128,
    partition_key: PartitionKey,
    data: Bytes,
}

/// One PutRecords entry that satisfies the input model, ready to route.
pub struct PutEntry<'a> {
    /// The partition key.
    pub partition_key: PartitionKey,
    /// The data.
    pub data: Bytes,
    /// Routes by this hash key instead of the partition key's MD5.
    pub explicit_hash_key: Option<&'a str>,
}

/// What became of one PutRecords entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutResult {
    /// Stored on `shards[shard]` under `counter`.
    Stored {
        /// Index into [`PutOutcome::shards`].
        shard: usize,
        /// The stream-wide counter its sequence number encodes.
        counter: u64,
    },
    /// Over `shards[shard]`'s write budget.
    Throttled {
        /// Index into [`PutOutcome::shards`].
        shard: usize,
    },
    /// Not stored: the shard closed meanwhile or its log failed.
    Internal,
}

/// What PutRecords did, before it is encoded: the JSON answer is written
/// from this directly (no strings made per record), the model from
/// [`PutOutcome::into_output`].
pub struct PutOutcome {
    /// Entries that were not stored.
    pub failed_record_count: i64,
    /// One per request entry, in order.
    pub results: Vec<PutResult>,
    /// The shards the results name.
    pub shards: Vec<Arc<Shard>>,
    /// The stream written, and its account, for throttled entries' messages.
    pub stream: Arc<Stream>,
    /// The account the stream belongs to.
    pub account_id: String,
    /// NONE or KMS.
    pub encryption_type: &'static str,
}

/// Per-record error code and message for [`PutResult::Internal`]: the bare
/// code, unlike the HTTP error's.
pub const INTERNAL_FAILURE: (&str, &str) = ("InternalFailure", "Internal Service Failure");

impl PutOutcome {
    /// The service's message for an entry throttled on `shards[shard]`.
    pub fn throttle_message(&self, shard: usize) -> String {
        shard_throughput_message(&self.shards[shard].id, &self.stream.name, &self.account_id)
    }

    /// The model of the answer.
    pub fn into_output(self) -> PutRecordsOutput {
        let records = self
            .results
            .iter()
            .map(|r| match *r {
                PutResult::Stored { shard, counter } => {
                    let shard = &self.shards[shard];
                    PutRecordsResultEntry {
                        sequence_number: Some(sequence::layout::encode(counter, shard.index)),
                        shard_id: Some(shard.id.clone()),
                        ..Default::default()
                    }
                }
                PutResult::Throttled { shard } => PutRecordsResultEntry {
                    error_code: Some(
                        ErrorCode::ProvisionedThroughputExceeded
                            .as_str()
                            .to_string(),
                    ),
                    error_message: Some(self.throttle_message(shard)),
                    ..Default::default()
                },
                PutResult::Internal => PutRecordsResultEntry {
                    error_code: Some(INTERNAL_FAILURE.0.to_string()),
                    error_message: Some(INTERNAL_FAILURE.1.to_string()),
                    ..Default::default()
                },
            })
            .collect();
        PutRecordsOutput {
            failed_record_count: self.failed_record_count,
            records,
            encryption_type: Some(self.encryption_type.to_string()),
        }
    }
}

/// Where a request wants to start reading a shard.
#[derive(Debug, Clone)]
pub enum StartAt {
    /// The oldest record within retention.
    TrimHorizon,
    /// After the newest record.
    Latest,
    /// At this sequence number.
    AtSequence(String),
    /// After this sequence number.
    AfterSequence(String),
    /// At the first record that arrived at or after this time.
    AtTimestamp(Timestamp),
}

impl StartAt {
    /// Parse a GetShardIterator/SubscribeToShard position, with the service's messages.
    pub fn parse(
        kind: &ShardIteratorType,
        seq: Option<String>,
        ts: Option<Timestamp>,
    ) -> Result<StartAt, KinesisError> {
        use ShardIteratorType as T;
        match (kind, seq, ts) {
            (T::AtSequenceNumber, Some(s), _) => Ok(StartAt::AtSequence(s)),
            (T::AfterSequenceNumber, Some(s), _) => Ok(StartAt::AfterSequence(s)),
            (T::AtSequenceNumber | T::AfterSequenceNumber, None, _) => {
                Err(KinesisError::invalid(format!(
                    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and no StartingSequenceNumber."
                )))
            }
            (T::TrimHorizon | T::Latest, Some(_), _) => Err(KinesisError::invalid(format!(
                "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and also a StartingSequenceNumber."
            ))),
            (T::TrimHorizon, None, _) => Ok(StartAt::TrimHorizon),
            (T::Latest, None, _) => Ok(StartAt::Latest),
            (T::AtTimestamp, _, Some(t)) => Ok(StartAt::AtTimestamp(t)),
            (T::AtTimestamp, _, None) => Err(KinesisError::invalid(
                "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.",
            )),
            (other, _, _) => Err(KinesisError::invalid(format!(
                "Unknown ShardIteratorType {other}."
            ))),
        }
    }
}

impl Service {
    /// Whether a record passes the model's constraints (the common case, checked
    /// without building any of the violation texts).
    fn record_is_valid(data: &Option<Blob>, pk: &Option<String>) -> bool {
        data.as_ref().is_some_and(|d| d.len() <= MAX_RECORD_BYTES)
            && pk.as_deref().is_some_and(|k| {
                !k.is_empty()
                    && (k.len() <= MAX_PARTITION_KEY_CHARS
                        || k.chars().count() <= MAX_PARTITION_KEY_CHARS)
            })
    }

    fn put_validation(v: &mut Violations, prefix: &str, data: &Option<Blob>, pk: &Option<String>) {
        if Self::record_is_valid(data, pk) {
            return;
        }
        if v.required(&format!("{prefix}data"), data)
            && let Some(d) = data
            && d.len() > MAX_RECORD_BYTES
        {
            v.push(
                Some(&format!(
                    "java.nio.HeapByteBuffer[pos=0 lim={0} cap={0}]",
                    d.len()
                )),
                &format!("{prefix}data"),
                &format!("have length less than or equal to {MAX_RECORD_BYTES}"),
            );
        }
        if v.required(&format!("{prefix}partitionKey"), pk) {
            v.length(
                &format!("{prefix}partitionKey"),
                pk.as_deref().unwrap_or_default(),
                1,
                MAX_PARTITION_KEY_CHARS,
            );
        }
    }

    fn writable_stream(&self, r: &StreamRef) -> Result<Arc<Stream>, KinesisError> {
        self.readable_stream(r)
    }

    /// Look up a shard of a stream by id, with the service's message when absent.
    pub fn shard_of(&self, stream: &Stream, id: &str) -> Result<Arc<Shard>, KinesisError> {
        let missing = || {
            KinesisError::not_found(format!(
                "Shard {id} in stream {} under account {} does not exist",
                stream.name,
                self.config().account_id
            ))
        };
        let index = shard_id::parse(id).ok_or_else(missing)?;
        let m = stream.meta.read();
        let shard = m.shard(index).cloned().ok_or_else(missing)?;
        let now = now_ms();
        let min = self.min_arrival_ms(m.retention_hours, now);
        if shard.status().closed_ms.is_some_and(|c| c < min) {
            return Err(missing());
        }
        Ok(shard)
    }

    /// PutRecord.
    pub fn put_record(&self, input: PutRecordInput) -> Result<PutRecordOutput, KinesisError> {
        let mut v = Violations::new();
        Self::put_validation(&mut v, "", &input.data, &input.partition_key);
        v.finish()?;
        let data = input.data.unwrap_or_default().0;
        let pk = input.partition_key.unwrap_or_default();
        if data.len() + pk.len() > MAX_RECORD_BYTES {
            return Err(KinesisError::invalid(format!(
                "The record size ({} bytes of data and partition key) exceeds the maximum of {MAX_RECORD_BYTES} bytes.",
                data.len() + pk.len()
            )));
        }
        let hash_key = hash_key_of(&pk, input.explicit_hash_key.as_deref())?;
        if let Some(s) = &input.sequence_number_for_ordering
            && sequence::SequenceNumber::parse(s).is_none()
        {
            return Err(KinesisError::invalid(format!(
                "ExclusiveMinimumSequenceNumber {s} used in PutRecord on stream {} under account {} is invalid.",
                input.stream.stream_name.as_deref().unwrap_or_default(),
                self.config().account_id
            )));
        }
        let stream = self.writable_stream(&input.stream)?;
        let m = stream.meta.read();
        let shard = m
            .route(hash_key)
            .cloned()
            .ok_or_else(|| KinesisError::internal("No open shard owns the hash key."))?;
        let cost = record_cost(data.len(), &pk);
        let metrics = self.shard_metrics(&stream, &shard);
        let admitted = self
            .shard_limits(&stream, &shard)
            .lock()
            .write
            .admit(cost, self.limiter_now());
        if !admitted {
            if let Some(metrics) = metrics {
                metrics.put_record_throttled();
            }
            return Err(shard_throughput_exceeded(
                &shard.id,
                &stream.name,
                &self.config().account_id,
            ));
        }
        let counters = shard
            .append(&stream.counter, now_ms(), [(PartitionKey::from(pk), data)])
            .map_err(|e| KinesisError::internal(e.to_string()))?
            .ok_or_else(|| KinesisError::internal("The shard closed while writing."))?;
        let counter = counters.first().copied().unwrap_or_default();
        if let Some(metrics) = metrics {
            metrics.put_record_succeeded(cost);
        }
        Ok(PutRecordOutput {
            shard_id: shard.id.clone(),
            sequence_number: sequence::layout::encode(counter, shard.index),
            encryption_type: Some(m.encryption_type().to_string()),
        })
    }

    /// PutRecords.
    pub fn put_records(&self, input: PutRecordsInput) -> Result<PutRecordsOutput, KinesisError> {
        let mut v = Violations::new();
        if v.required("records", &input.records) {
            let n = input.records.as_ref().map_or(0, Vec::len);
            if n == 0 {
                v.push(
                    Some("[]"),
                    "records",
                    "have length greater than or equal to 1",
                );
            } else if n > MAX_PUT_RECORDS_ENTRIES {
                v.push(
                    Some(&format!("[{n} records]")),
                    "records",
                    &format!("have length less than or equal to {MAX_PUT_RECORDS_ENTRIES}"),
                );
            }
            for (i, r) in input.records.iter().flatten().enumerate() {
                if (v.is_empty() || i < 10) && !Self::record_is_valid(&r.data, &r.partition_key) {
                    Self::put_validation(
                        &mut v,
                        &format!("records.{}.member.", i + 1),
                        &r.data,
                        &r.partition_key,
                    );
                }
            }
        }
        v.finish()?;
        let entries = input
            .records
            .iter()
            .flatten()
            .map(|e| PutEntry {
                partition_key: PartitionKey::from(e.partition_key.as_deref().unwrap_or_default()),
                data: e.data.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
                explicit_hash_key: e.explicit_hash_key.as_deref(),
            })
            .collect();
        Ok(self.put_entries(&input.stream, entries)?.into_output())
    }

    /// PutRecords on entries that already satisfy the input model: each is
    /// stored or fails on its own (throttled, or the shard closed), in order.
    pub fn put_entries(
        &self,
        stream_ref: &StreamRef,
        entries: Vec<PutEntry<'_>>,
    ) -> Result<PutOutcome, KinesisError> {
        let mut total = 0usize;
        let mut accepted = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let size = e.data.len() + e.partition_key.len();
            // The same bound as PutRecord: one entry may not be a larger record.
            if size > MAX_RECORD_BYTES {
                return Err(KinesisError::invalid(format!(
                    "The size of record {} ({size} bytes of data and partition key) exceeds the maximum of {MAX_RECORD_BYTES} bytes.",
                    i + 1,
                )));
            }
            total += size;
            let hash_key = hash_key_of(&e.partition_key, e.explicit_hash_key)?;
            accepted.push(Accepted {
                hash_key,
                partition_key: e.partition_key,
                data: e.data,
            });
        }
        if total > MAX_PUT_RECORDS_BYTES {
            return Err(KinesisError::invalid(format!(
                "Records size ({total} bytes) exceeds the maximum PutRecords request size of {MAX_PUT_RECORDS_BYTES} bytes."
            )));
        }
        let stream = self.writable_stream(stream_ref)?;
        let m = stream.meta.read();
        // Group by shard so each shard's lock is taken once per request.
        let mut shards: Vec<Arc<Shard>> = Vec::new();
        let mut by_shard: Vec<Vec<usize>> = Vec::new();
        for (i, a) in accepted.iter().enumerate() {
            let shard = m
                .route(a.hash_key)
                .ok_or_else(|| KinesisError::internal("No open shard owns the hash key."))?;
            match shards.iter().position(|s| Arc::ptr_eq(s, shard)) {
                Some(at) => by_shard[at].push(i),
                None => {
                    shards.push(Arc::clone(shard));
                    by_shard.push(vec![i]);
                }
            }
        }
        let now = now_ms();
        let mut results = vec![PutResult::Internal; accepted.len()];
        let mut failed = 0i64;
        for (at, (shard, mut idx)) in shards.iter().zip(by_shard).enumerate() {
            // Each record is admitted on its own, in request order, so only
            // the records over the shard's budget fail.
            let mut throttled = 0u64;
            {
                let mut limits = self.shard_limits(&stream, shard).lock();
                let limiter_now = self.limiter_now();
                idx.retain(|&i| {
                    let a = &accepted[i];
                    if limits
                        .write
                        .admit(record_cost(a.data.len(), &a.partition_key), limiter_now)
                    {
                        return true;
                    }
                    throttled += 1;
                    results[i] = PutResult::Throttled { shard: at };
                    false
                });
            }
            failed += throttled as i64;
            let mut stored = 0u64;
            let mut stored_bytes = 0u64;
            let mut internal = 0u64;
            let batch = idx
                .iter()
                .map(|&i| (accepted[i].partition_key.clone(), accepted[i].data.clone()));
            match shard.append(&stream.counter, now, batch) {
                Ok(Some(counters)) => {
                    for (&i, counter) in idx.iter().zip(counters) {
                        stored += 1;
                        stored_bytes +=
                            record_cost(accepted[i].data.len(), &accepted[i].partition_key);
                        results[i] = PutResult::Stored { shard: at, counter };
                    }
                }
                // Left as Internal.
                Ok(None) | Err(_) => internal += idx.len() as u64,
            }
            failed += internal as i64;
            if let Some(metrics) = self.shard_metrics(&stream, shard) {
                metrics.put_records(stored, stored_bytes, internal, throttled);
            }
        }
        Ok(PutOutcome {
            failed_record_count: failed,
            results,
            shards,
            encryption_type: m.encryption_type(),
            stream: Arc::clone(&stream),
            account_id: self.config().account_id.clone(),
        })
    }

    /// Where `start` points in `shard`, as a counter to read from.
    pub fn start_counter(
        &self,
        stream: &Stream,
        shard: &Shard,
        start: &StartAt,
    ) -> Result<u64, KinesisError> {
        let now = now_ms();
        let retention = stream.meta.read().retention_hours;
        let min = self.min_arrival_ms(retention, now);
        let status = shard.status();
        let latest = match status.end_counter {
            Some(end) => end,
            None => status
                .last_counter
                .map_or(shard.start_counter + 1, |c| c + 1),
        };
        let seq_counter = |s: &str| -> Result<u64, KinesisError> {
            let (counter, index) = sequence::layout::decode(s).ok_or_else(|| {
                KinesisError::invalid(format!("Invalid StartingSequenceNumber {s}."))
            })?;
            if index != shard.index {
                return Err(KinesisError::invalid(format!(
                    "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                    shard_id::format(index),
                    shard.id
                )));
            }
            Ok(counter)
        };
        Ok(match start {
            StartAt::TrimHorizon => 0,
            StartAt::Latest => latest,
            StartAt::AtSequence(s) => seq_counter(s)?,
            StartAt::AfterSequence(s) => seq_counter(s)?.saturating_add(1),
            StartAt::AtTimestamp(t) => {
                if t.millis() > now {
                    return Err(KinesisError::invalid(format!(
                        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {}, currentTimestampInMillis: {now}",
                        t.millis()
                    )));
                }
                shard
                    .first_at_or_after(t.millis(), min)
                    .map_err(|e| KinesisError::internal(e.to_string()))?
                    .unwrap_or(latest)
            }
        })
    }

    /// GetShardIterator.
    pub fn get_shard_iterator(
        &self,
        input: GetShardIteratorInput,
    ) -> Result<GetShardIteratorOutput, KinesisError> {
        let mut v = Violations::new();
        if v.required("shardId", &input.shard_id) {
            v.length(
                "shardId",
                input.shard_id.as_deref().unwrap_or_default(),
                1,
                128,
            );
        }
        if v.required("shardIteratorType", &input.shard_iterator_type) {
            v.one_of(
                "shardIteratorType",
                input
                    .shard_iterator_type
                    .as_ref()
                    .map(ShardIteratorType::as_str)
                    .unwrap_or_default(),
                ShardIteratorType::values(),
            );
        }
        v.finish()?;
        let stream = self.readable_stream(&input.stream)?;
        let shard = self.shard_of(&stream, input.shard_id.as_deref().unwrap_or_default())?;
        let start = StartAt::parse(
            &input.shard_iterator_type.unwrap_or_default(),
            input.starting_sequence_number,
            input.timestamp,
        )?;
        let from_counter = self.start_counter(&stream, &shard, &start)?;
        let admitted = self
            .shard_limits(&stream, &shard)
            .lock()
            .read
            .admit_get_shard_iterator(self.limiter_now());
        if admitted.is_err() {
            return Err(shard_throughput_exceeded(
                &shard.id,
                &stream.name,
                &self.config().account_id,
            ));
        }
        Ok(GetShardIteratorOutput {
            shard_iterator: self.sealer().seal_iterator(&IteratorPosition {
                stream: stream.name.clone(),
                stream_created_ms: stream.created_ms,
                shard: shard.index,
                from_counter,
                issued_ms: now_ms(),
            }),
        })
    }

    /// The children of a shard, as ChildShards lists them.
    pub fn child_shards(&self, stream: &Stream, parent: u32) -> Vec<ChildShard> {
        let m = stream.meta.read();
        m.shards
            .iter()
            .filter(|s| s.parent == Some(parent) || s.adjacent_parent == Some(parent))
            .map(|s| ChildShard {
                shard_id: s.id.clone(),
                parent_shards: s
                    .parent
                    .into_iter()
                    .chain(s.adjacent_parent)
                    .map(shard_id::format)
                    .collect(),
                hash_key_range: s.range.to_wire(),
            })
            .collect()
    }

    /// GetRecords.
    pub fn get_records(&self, input: GetRecordsInput) -> Result<GetRecordsOutput, KinesisError> {
        let mut v = Violations::new();
        if v.required("shardIterator", &input.shard_iterator) {
            v.length(
                "shardIterator",
                input.shard_iterator.as_deref().unwrap_or_default(),
                1,
                512,
            );
        }
        if let Some(l) = input.limit {
            v.range("limit", l, 1, i64::from(MAX_GET_RECORDS_LIMIT));
        }
        v.finish()?;
        let token = input.shard_iterator.unwrap_or_default();
        let pos = self
            .sealer()
            .open_iterator(&token)
            .ok_or_else(|| KinesisError::invalid("Invalid ShardIterator."))?;
        let now = now_ms();
        let ttl = self.config().iterator_ttl.as_millis() as i64;
        if now - pos.issued_ms > ttl {
            return Err(KinesisError::new(
                ErrorCode::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ttl} milliseconds.",
                    pos.issued_ms, now
                ),
            ));
        }
        let arn_stream = match input
            .stream_arn
            .as_deref()
            .map(crate::arn::parse_stream_arn)
        {
            Some(Some((region, account, name))) => {
                Some(Some(self.local_stream(region, account, name)?))
            }
            Some(None) => Some(None),
            None => None,
        };
        if let Some(named) = arn_stream
            && named.as_deref() != Some(pos.stream.as_str())
        {
            return Err(KinesisError::invalid(
                "The StreamARN does not match the shard iterator's stream.",
            ));
        }
        let stream = self
            .stream_by_name(&pos.stream)
            .ok()
            .filter(|s| s.created_ms == pos.stream_created_ms)
            .ok_or_else(|| self.not_found(&pos.stream))?;
        let shard = self.shard_of(&stream, &shard_id::format(pos.shard))?;
        let (retention, encryption) = {
            let m = stream.meta.read();
            if m.status == StreamStatus::Creating {
                return Err(self.not_found(&stream.name));
            }
            // A record's encryption is the one it was written with: keep the
            // (few, usually no) switches to look each record up unlocked.
            (
                m.retention_hours,
                (m.encryption_type(), m.encryption_switches.clone()),
            )
        };
        let metrics = self.shard_metrics(&stream, &shard);
        let limits = self.shard_limits(&stream, &shard);
        let admitted = limits.lock().read.admit_call(self.limiter_now());
        if admitted.is_err() {
            if let Some(metrics) = metrics {
                metrics.get_records_throttled();
            }
            return Err(shard_throughput_exceeded(
                &shard.id,
                &stream.name,
                &self.config().account_id,
            ));
        }
        let min = self.min_arrival_ms(retention, now);
        let limit = input.limit.unwrap_or(i64::from(MAX_GET_RECORDS_LIMIT)) as usize;
        let (batch, status) = shard
            .try_read(pos.from_counter, min, limit, MAX_GET_RECORDS_BYTES)
            .map_err(|e| KinesisError::internal(e.to_string()))?;
        let read_bytes: u64 = batch
            .records
            .iter()
            .map(|r| record_cost(r.data.len(), &r.partition_key))
            .sum();
        limits
            .lock()
            .read
            .charge_bytes(read_bytes, self.limiter_now());
        let next_from = batch
            .records
            .last()
            .map_or(pos.from_counter, |r| r.counter + 1);
        let at_end = status.end_counter.is_some() && batch.next_arrival_ms.is_none();
        let millis_behind = batch.next_arrival_ms.map_or(0, |a| (now - a).max(0));
        if let Some(metrics) = metrics {
            // IteratorAgeMilliseconds: how far the last record returned is
            // behind the tip of the shard.
            let age = batch
                .records
                .last()
                .map_or(0, |r| (now - r.arrival_ms).max(0));
            metrics.get_records_succeeded(batch.records.len() as u64, read_bytes, age);
        }
        let records = batch
            .records
            .into_iter()
            .map(|r| Record {
                sequence_number: sequence::layout::encode(r.counter, shard.index),
                approximate_arrival_timestamp: Some(Timestamp(r.arrival_ms)),
                data: Blob(r.data),
                partition_key: r.partition_key.to_string(),
                encryption_type: Some(
                    crate::stream::encryption_at(&encryption.1, encryption.0, r.counter)
                        .to_string(),
                ),
            })
            .collect();
        Ok(GetRecordsOutput {
            records,
            next_shard_iterator: (!at_end).then(|| {
                self.sealer().seal_iterator(&IteratorPosition {
                    from_counter: next_from,
                    issued_ms: now,
                    ..pos.clone()
                })
            }),
            millis_behind_latest: Some(millis_behind),
            child_shards: at_end.then(|| self.child_shards(&stream, shard.index)),
        })
    }
}
