//! Where a shard's records live. The broker talks to a [`ShardLog`] per shard,
//! so the in-memory log here and the durable segment log ([`durable`]) share one
//! contract, and to a [`Storage`] that makes logs and keeps stream descriptions.

pub mod commit;
pub mod disk_faults;
pub mod durable;
pub mod memory;
pub mod sealed_index;
pub mod segment;

pub use memory::MemoryLog;

use crate::stream_record::StreamRecord;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One stored record. `counter` is the stream-wide counter its sequence number encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The stream-wide counter (see `kinesis_proto::sequence::layout`).
    pub counter: u64,
    /// Arrival time, epoch milliseconds.
    pub arrival_ms: i64,
    /// The partition key as the producer sent it.
    pub partition_key: PartitionKey,
    /// The record's data.
    pub data: Bytes,
}

/// A stored record's partition key: shared with the request that brought it,
/// or a slice of the buffer a read copied its records into (so a read costs no
/// allocation per key).
#[derive(Clone)]
pub struct PartitionKey(KeyBytes);

#[derive(Clone)]
enum KeyBytes {
    Shared(Arc<str>),
    /// Checked to be UTF-8 when made.
    Slice(Bytes),
}

impl PartitionKey {
    /// A key over `bytes`, if they are UTF-8.
    pub fn from_utf8(bytes: Bytes) -> Option<Self> {
        std::str::from_utf8(&bytes).ok()?;
        Some(PartitionKey(KeyBytes::Slice(bytes)))
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        match &self.0 {
            KeyBytes::Shared(s) => s.len(),
            KeyBytes::Slice(b) => b.len(),
        }
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::ops::Deref for PartitionKey {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.0 {
            KeyBytes::Shared(s) => s,
            // Checked when made, so this never falls back.
            KeyBytes::Slice(b) => std::str::from_utf8(b).unwrap_or_default(),
        }
    }
}

impl From<Arc<str>> for PartitionKey {
    fn from(s: Arc<str>) -> Self {
        PartitionKey(KeyBytes::Shared(s))
    }
}

impl From<&str> for PartitionKey {
    fn from(s: &str) -> Self {
        PartitionKey(KeyBytes::Shared(Arc::from(s)))
    }
}

impl From<String> for PartitionKey {
    fn from(s: String) -> Self {
        PartitionKey(KeyBytes::Shared(Arc::from(s)))
    }
}

impl PartialEq for PartitionKey {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for PartitionKey {}

impl std::fmt::Debug for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

impl LogRecord {
    /// Bytes the service counts for limits: data plus partition key.
    pub fn billed_size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// What a read found.
#[derive(Debug, Default)]
pub struct ReadBatch {
    /// Records, in sequence order.
    pub records: Vec<LogRecord>,
    /// Arrival time of the first record not returned (the reader is behind by it), if any remain.
    pub next_arrival_ms: Option<i64>,
}

/// A shard's append-only record log. Implementations are used behind the shard's own lock.
pub trait ShardLog: Send + Sync {
    /// Append records in order; their counters increase and are above every
    /// counter already stored. On error, a prefix of the batch may be stored.
    fn append(&mut self, batch: Vec<LogRecord>) -> Result<(), StoreError>;

    /// Up to `max_records` records (and about `max_bytes`, always at least one
    /// record if any) with `counter >= from` and `arrival_ms >= min_arrival_ms`.
    fn read(
        &self,
        from: u64,
        min_arrival_ms: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<ReadBatch, StoreError>;

    /// Counter of the first record that arrived at or after `ts_ms` (and not before `min_arrival_ms`).
    fn first_at_or_after(&self, ts_ms: i64, min_arrival_ms: i64)
    -> Result<Option<u64>, StoreError>;

    /// Counter of the newest record.
    fn last_counter(&self) -> Option<u64>;

    /// Arrival time of the newest record.
    fn last_arrival_ms(&self) -> Option<i64>;

    /// Drop records that arrived before `min_arrival_ms` (a store may keep some
    /// of them a while longer, hidden from reads; the memory log drops exactly).
    fn trim(&mut self, min_arrival_ms: i64);

    /// Number of records held.
    fn len(&self) -> usize;

    /// Whether the log holds nothing.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `wake` whenever records held back from readers until durable
    /// become readable (a log that holds nothing back never calls it).
    fn on_durable(&self, _wake: Box<dyn Fn() + Send + Sync>) {}
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The disk (or whatever backs the log) failed.
    #[error("storage I/O failed: {0}")]
    Io(String),
}

/// A stream found in storage at start-up, with the logs of its shards by index.
pub struct LoadedStream {
    /// The stream's description as last saved.
    pub record: StreamRecord,
    /// Opened logs; a shard without one gets a fresh log.
    pub logs: BTreeMap<u32, Box<dyn ShardLog>>,
    /// The last saved counter ceiling: counters below it may have been handed out.
    pub counter_ceiling: u64,
}

/// Makes shard logs, and keeps stream descriptions where the store persists them.
pub trait Storage: Send + Sync {
    /// A fresh, empty log for shard `shard_index` of `stream`.
    fn create_log(
        &self,
        stream: &str,
        created_ms: i64,
        shard_index: u32,
    ) -> Result<Box<dyn ShardLog>, StoreError>;

    /// Whether stream descriptions survive a restart (callers skip building them otherwise).
    fn persists(&self) -> bool {
        false
    }

    /// Save a stream's description, replacing the previous one atomically.
    fn save_stream(&self, _record: &StreamRecord) -> Result<(), StoreError> {
        Ok(())
    }

    /// Save the counter ceiling of a stream durably: after a restart its
    /// counter continues at or above it. Blocks on the disk.
    fn save_counter_ceiling(
        &self,
        _name: &str,
        _created_ms: i64,
        _ceiling: u64,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Delete the files of a reclaimed shard's log (its description already
    /// says it is reclaimed). Blocks on the disk.
    fn remove_log(
        &self,
        _stream: &str,
        _created_ms: i64,
        _shard_index: u32,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Forget a deleted stream and its records.
    fn remove_stream(&self, _name: &str, _created_ms: i64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Every stream saved before, with its shards' logs opened (and recovered).
    fn load_streams(&self) -> Result<Vec<LoadedStream>, StoreError> {
        Ok(Vec::new())
    }

    /// A ticket to wait on before answering a write, if writes are answered
    /// only once durable; `None` when there is nothing to wait for.
    fn commit_ticket(&self) -> Option<commit::CommitTicket> {
        None
    }

    /// Put every write on disk now (at an orderly stop). Blocks: call it off
    /// the async runtime.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The default store: everything in memory, gone on restart.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryStorage;

impl Storage for MemoryStorage {
    fn create_log(
        &self,
        _stream: &str,
        _created_ms: i64,
        _shard_index: u32,
    ) -> Result<Box<dyn ShardLog>, StoreError> {
        Ok(Box::new(MemoryLog::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(counter: u64, arrival_ms: i64, data: &'static [u8]) -> LogRecord {
        LogRecord {
            counter,
            arrival_ms,
            partition_key: PartitionKey::from("k"),
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn reads_from_a_counter_with_limits() {
        let mut log = MemoryLog::new();
        for (i, c) in [3u64, 5, 9, 12].iter().enumerate() {
            log.append(vec![rec(*c, 100 + i as i64, b"abcd")]).unwrap();
        }
        let b = log.read(4, 0, 2, usize::MAX).unwrap();
        assert_eq!(
            b.records.iter().map(|r| r.counter).collect::<Vec<_>>(),
            vec![5, 9]
        );
        assert_eq!(b.next_arrival_ms, Some(103));
        // Byte cap: each record bills 5 bytes; at least one record is always returned.
        let b = log.read(0, 0, 100, 1).unwrap();
        assert_eq!(b.records.len(), 1);
        let b = log.read(0, 0, 100, 10).unwrap();
        assert_eq!(b.records.len(), 2);
        assert!(log.read(13, 0, 10, 100).unwrap().records.is_empty());
    }

    #[test]
    fn retention_hides_then_trims() {
        let mut log = MemoryLog::new();
        log.append(vec![rec(1, 10, b"a"), rec(2, 20, b"b")])
            .unwrap();
        log.append(vec![rec(3, 30, b"c")]).unwrap();
        assert_eq!(log.read(0, 15, 10, 100).unwrap().records[0].counter, 2);
        assert_eq!(log.first_at_or_after(0, 25).unwrap(), Some(3));
        assert_eq!(log.first_at_or_after(31, 0).unwrap(), None);
        log.trim(25);
        assert_eq!(log.len(), 1);
        assert_eq!(log.last_counter(), Some(3));
    }
}
