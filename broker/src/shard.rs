//! One shard: its hash range, lineage, and the log of its records.

use crate::counter::StreamCounter;
use crate::hot_keys::HotKeys;
use crate::limiter::ShardLimits;
use crate::metrics::ShardMetrics;
use crate::store::{LogRecord, MemoryLog, PartitionKey, ReadBatch, ShardLog, StoreError};
use crate::subscription::ShardSubscriptions;
use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model;
use kinesis_proto::{sequence, shard_id};
use parking_lot::{Mutex, RwLock};
use std::sync::OnceLock;

/// A shard of a stream.
pub struct Shard {
    /// Index in the stream (`shardId-<index>`).
    pub index: u32,
    /// The wire id.
    pub id: String,
    /// Parent (split parent, or first merge parent).
    pub parent: Option<u32>,
    /// Second merge parent.
    pub adjacent_parent: Option<u32>,
    /// Hash keys owned.
    pub range: HashRange,
    /// Counter reserved when the shard was created: below all its records.
    pub start_counter: u64,
    /// When the shard was created, epoch ms.
    pub created_ms: i64,
    inner: RwLock<ShardInner>,
    /// Throughput budgets, made on first use: they depend on the broker's
    /// `--limits`, which the constructors' callers need not know about.
    limits: OnceLock<Mutex<ShardLimits>>,
    /// Metric handles, made on first use for the same reason.
    metrics: OnceLock<ShardMetrics>,
    /// Enhanced fan-out subscribers, woken by every append and by close.
    subscriptions: ShardSubscriptions,
    /// The partition keys written lately, for the console.
    hot_keys: HotKeys,
}

struct ShardInner {
    log: Box<dyn ShardLog>,
    /// Counter reserved at close: above all its records.
    end_counter: Option<u64>,
    closed_ms: Option<i64>,
    /// Highest retention cut-off applied so far: records that arrived before it
    /// stay unreadable even when retention grows (a log may trim lazily, or by
    /// whole segments, and still hold them).
    floor_ms: i64,
    /// Closed and every record expired: the log was dropped and its files deleted.
    reclaimed: bool,
}

/// A shard's state as seen at one moment.
#[derive(Debug, Clone, Copy)]
pub struct ShardStatus {
    /// Counter reserved at close, if closed.
    pub end_counter: Option<u64>,
    /// When it closed.
    pub closed_ms: Option<i64>,
    /// Counter of the newest record.
    pub last_counter: Option<u64>,
    /// Arrival of the newest record.
    pub last_arrival_ms: Option<i64>,
}

impl Shard {
    /// A new open shard.
    pub fn new(
        index: u32,
        parent: Option<u32>,
        adjacent_parent: Option<u32>,
        range: HashRange,
        start_counter: u64,
        created_ms: i64,
        log: Box<dyn ShardLog>,
    ) -> Self {
        let subscriptions = ShardSubscriptions::default();
        // Records held back until durable become readable without an append.
        let waker = subscriptions.clone();
        log.on_durable(Box::new(move || waker.notify_appended()));
        Shard {
            index,
            id: shard_id::format(index),
            parent,
            adjacent_parent,
            range,
            start_counter,
            created_ms,
            inner: RwLock::new(ShardInner {
                log,
                end_counter: None,
                closed_ms: None,
                floor_ms: i64::MIN,
                reclaimed: false,
            }),
            limits: OnceLock::new(),
            metrics: OnceLock::new(),
            subscriptions,
            hot_keys: HotKeys::new(),
        }
    }

    /// The shard's enhanced fan-out subscriptions.
    pub fn subscriptions(&self) -> &ShardSubscriptions {
        &self.subscriptions
    }

    /// The partition keys written to the shard over the recent window.
    pub fn hot_keys(&self) -> &HotKeys {
        &self.hot_keys
    }

    /// The shard's throughput budgets, made by `init` on first use.
    pub fn limits(&self, init: impl FnOnce() -> ShardLimits) -> &Mutex<ShardLimits> {
        self.limits.get_or_init(|| Mutex::new(init()))
    }

    /// The shard's metric handles, made by `init` on first use.
    pub fn metrics(&self, init: impl FnOnce() -> ShardMetrics) -> &ShardMetrics {
        self.metrics.get_or_init(init)
    }

    /// Restore a shard that was closed before.
    pub fn set_closed(&self, end_counter: u64, closed_ms: i64) {
        let mut inner = self.inner.write();
        inner.end_counter = Some(end_counter);
        inner.closed_ms = Some(closed_ms);
    }

    /// Current status.
    pub fn status(&self) -> ShardStatus {
        let inner = self.inner.read();
        ShardStatus {
            end_counter: inner.end_counter,
            closed_ms: inner.closed_ms,
            last_counter: inner.log.last_counter(),
            last_arrival_ms: inner.log.last_arrival_ms(),
        }
    }

    /// Whether the shard takes writes.
    pub fn is_open(&self) -> bool {
        self.inner.read().end_counter.is_none()
    }

    /// Append records, numbering them from the stream's counter while holding the
    /// shard's lock so storage order and sequence order agree. Returns each record's
    /// counter, or `None` if the shard closed meanwhile.
    pub fn append<I>(
        &self,
        counter: &StreamCounter,
        now_ms: i64,
        records: I,
    ) -> Result<Option<Vec<u64>>, StoreError>
    where
        I: IntoIterator<Item = (PartitionKey, bytes::Bytes)>,
    {
        let mut inner = self.inner.write();
        if inner.end_counter.is_some() {
            return Ok(None);
        }
        let records: Vec<_> = records.into_iter().collect();
        let first = counter.take(records.len() as u64)?;
        self.hot_keys.observe(
            records
                .iter()
                .map(|(key, data)| (&**key, (key.len() + data.len()) as u64)),
            now_ms,
        );
        let batch: Vec<LogRecord> = records
            .into_iter()
            .zip(first..)
            .map(|((partition_key, data), counter)| LogRecord {
                counter,
                arrival_ms: now_ms,
                partition_key,
                data,
            })
            .collect();
        let out: Vec<u64> = batch.iter().map(|r| r.counter).collect();
        // One call per request: a durable log writes the whole batch at once.
        let result = inner.log.append(batch);
        drop(inner);
        // Wake fan-out subscribers for whatever landed, even before a failure.
        if !out.is_empty() {
            self.subscriptions.notify_appended();
        }
        result.map(|()| Some(out))
    }

    /// Close the shard: reserve its end counter so nothing can land after it.
    pub fn close(&self, counter: &StreamCounter, now_ms: i64) -> Result<u64, StoreError> {
        let mut inner = self.inner.write();
        if let Some(end) = inner.end_counter {
            return Ok(end);
        }
        let end = counter.take(1)?;
        inner.end_counter = Some(end);
        inner.closed_ms = Some(now_ms);
        drop(inner);
        // Subscribers send the end-of-shard event once they have caught up.
        self.subscriptions.notify_appended();
        Ok(end)
    }

    /// Close the shard at an end counter reserved before (a reshard staged
    /// and saved it); a shard already closed keeps its end.
    pub fn close_at(&self, end_counter: u64, now_ms: i64) {
        let mut inner = self.inner.write();
        if inner.end_counter.is_some() {
            return;
        }
        inner.end_counter = Some(end_counter);
        inner.closed_ms = Some(now_ms);
        drop(inner);
        self.subscriptions.notify_appended();
    }

    /// Read from counter `from`; a storage failure is an error (never "no
    /// records yet": a reader would wait at a damaged record for good).
    pub fn try_read(
        &self,
        from: u64,
        min_arrival_ms: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<(ReadBatch, ShardStatus), StoreError> {
        let inner = self.inner.read();
        let min_arrival_ms = min_arrival_ms.max(inner.floor_ms);
        let batch = inner
            .log
            .read(from, min_arrival_ms, max_records, max_bytes)?;
        let status = ShardStatus {
            end_counter: inner.end_counter,
            closed_ms: inner.closed_ms,
            last_counter: inner.log.last_counter(),
            last_arrival_ms: inner.log.last_arrival_ms(),
        };
        Ok((batch, status))
    }

    /// Counter of the first record at or after `ts_ms`.
    pub fn first_at_or_after(
        &self,
        ts_ms: i64,
        min_arrival_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let inner = self.inner.read();
        inner
            .log
            .first_at_or_after(ts_ms, min_arrival_ms.max(inner.floor_ms))
    }

    /// Drop records past retention; they stay gone if retention grows later.
    pub fn trim(&self, min_arrival_ms: i64) {
        let mut inner = self.inner.write();
        inner.floor_ms = inner.floor_ms.max(min_arrival_ms);
        inner.log.trim(min_arrival_ms);
    }

    /// The highest retention cut-off applied so far (`i64::MIN` if none).
    pub fn floor_ms(&self) -> i64 {
        self.inner.read().floor_ms
    }

    /// Whether the shard was reclaimed (see [`reclaim`](Self::reclaim)).
    pub fn is_reclaimed(&self) -> bool {
        self.inner.read().reclaimed
    }

    /// Drop the log of a closed shard whose records have all expired, closing
    /// its files; the caller deletes them once the description says so.
    /// Returns false (and changes nothing) if the shard is open.
    pub fn reclaim(&self) -> bool {
        let mut inner = self.inner.write();
        if inner.end_counter.is_none() {
            return false;
        }
        inner.reclaimed = true;
        inner.log = Box::new(MemoryLog::new());
        true
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.inner.read().log.len()
    }

    /// Whether no records are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first sequence number this shard can hold.
    pub fn starting_sequence_number(&self) -> String {
        sequence::layout::encode(self.start_counter, self.index)
    }

    /// The wire description.
    pub fn describe(&self) -> model::Shard {
        let end = self.inner.read().end_counter;
        model::Shard {
            shard_id: self.id.clone(),
            parent_shard_id: self.parent.map(shard_id::format),
            adjacent_parent_shard_id: self.adjacent_parent.map(shard_id::format),
            hash_key_range: self.range.to_wire(),
            sequence_number_range: model::SequenceNumberRange {
                starting_sequence_number: self.starting_sequence_number(),
                ending_sequence_number: end.map(|c| sequence::layout::encode(c, self.index)),
            },
        }
    }
}
