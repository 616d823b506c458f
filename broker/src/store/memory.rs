//! The in-memory shard log: records packed into append-only byte blocks with a
//! compact index beside them, instead of one allocation per record. A record
//! costs its partition key and data in a block plus one 24-byte index entry;
//! trimming drops whole blocks (a partly expired block keeps its bytes until the
//! rest of it expires, but its expired records are gone from the index).

use crate::store::{LogRecord, PartitionKey, ReadBatch, ShardLog, StoreError};
use bytes::Bytes;
use std::collections::VecDeque;

/// Bytes a block grows to before a new one starts. Large enough that the
/// per-block costs vanish per record, small enough that a trimmed shard gives
/// memory back soon.
const BLOCK_BYTES: usize = 1 << 20;

/// Index entry of one record: where it ends in its block, and what readers filter on.
#[derive(Debug, Clone, Copy)]
struct Entry {
    counter: u64,
    arrival_ms: i64,
    /// End of the record (key then data) in the block's bytes; it starts where
    /// the previous entry ended (or at 0).
    end: u32,
    /// Partition key length (at most 256 bytes).
    key_len: u16,
}

/// A run of records stored back to back: partition key, then data.
#[derive(Debug, Default)]
struct Block {
    /// The open block's bytes (empty once sealed).
    bytes: Vec<u8>,
    /// A full block's bytes, shared with readers without copying.
    sealed: Option<Bytes>,
    entries: Vec<Entry>,
    /// Entries before this one were trimmed.
    first: usize,
}

impl Block {
    fn start_of(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.entries[i - 1].end as usize
        }
    }

    fn live(&self) -> &[Entry] {
        &self.entries[self.first..]
    }

    /// Key and data of entry `i` as byte ranges of `bytes`.
    fn ranges(&self, i: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let start = self.start_of(i);
        let e = self.entries[i];
        let key_end = start + e.key_len as usize;
        (start..key_end, key_end..e.end as usize)
    }

    fn billed_size(&self, i: usize) -> usize {
        self.entries[i].end as usize - self.start_of(i)
    }

    /// Give back growth slack once the block takes no more records.
    fn seal(&mut self) {
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.shrink_to_fit();
        self.sealed = Some(Bytes::from(bytes));
        self.entries.shrink_to_fit();
    }
}

/// Records kept in memory, oldest first, in byte blocks with a compact index.
#[derive(Debug, Default)]
pub struct MemoryLog {
    blocks: VecDeque<Block>,
    len: usize,
}

/// Where a record is: block, then entry within it.
type Pos = (usize, usize);

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of memory the log holds (block and index capacity), for accounting.
    pub fn heap_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| {
                b.bytes.capacity()
                    + b.sealed.as_ref().map_or(0, Bytes::len)
                    + b.entries.capacity() * std::mem::size_of::<Entry>()
            })
            .sum::<usize>()
            + self.blocks.capacity() * std::mem::size_of::<Block>()
    }

    fn push(&mut self, r: &LogRecord) -> Result<(), StoreError> {
        let key = r.partition_key.as_bytes();
        let size = key.len() + r.data.len();
        let key_len = u16::try_from(key.len())
            .map_err(|_| StoreError::Io(format!("partition key of {} bytes", key.len())))?;
        // A record larger than a block gets a block of its own.
        let fits = self
            .blocks
            .back()
            .is_some_and(|b| b.bytes.len() + size <= BLOCK_BYTES || b.entries.is_empty());
        if !fits {
            if let Some(b) = self.blocks.back_mut() {
                b.seal();
            }
            self.blocks.push_back(Block::default());
        }
        let b = self.blocks.back_mut().expect("a block was just ensured");
        let end = b.bytes.len() + size;
        let end_u32 =
            u32::try_from(end).map_err(|_| StoreError::Io(format!("record of {size} bytes")))?;
        if end > b.bytes.capacity() {
            // Double up to the block size, exactly, so the open block's slack
            // stays bounded (sealed blocks have none).
            let want = (b.bytes.capacity() * 2).clamp(4096, BLOCK_BYTES).max(end);
            b.bytes.reserve_exact(want - b.bytes.len());
        }
        b.bytes.extend_from_slice(key);
        b.bytes.extend_from_slice(&r.data);
        b.entries.push(Entry {
            counter: r.counter,
            arrival_ms: r.arrival_ms,
            end: end_u32,
            key_len,
        });
        self.len += 1;
        Ok(())
    }

    /// Position of the first record with `counter >= from`.
    fn pos_of_counter(&self, from: u64) -> Pos {
        let bi = self
            .blocks
            .partition_point(|b| b.entries.last().is_some_and(|e| e.counter < from));
        match self.blocks.get(bi) {
            Some(b) => (bi, b.first + b.live().partition_point(|e| e.counter < from)),
            None => (bi, 0),
        }
    }

    fn entry(&self, (bi, i): Pos) -> Option<&Entry> {
        self.blocks.get(bi).and_then(|b| b.entries.get(i))
    }

    fn next(&self, (bi, i): Pos) -> Pos {
        match self.blocks.get(bi) {
            Some(b) if i + 1 < b.entries.len() => (bi, i + 1),
            _ => match self.blocks.get(bi + 1) {
                Some(n) => (bi + 1, n.first),
                None => (bi + 1, 0),
            },
        }
    }

    /// Position of the first record (from the front) that arrived at or after `ms`.
    fn pos_of_arrival(&self, ms: i64) -> Pos {
        // Arrival times are non-decreasing in practice but the clock may step
        // back; a scan from the front stays correct for the trimmed prefix.
        for (bi, b) in self.blocks.iter().enumerate() {
            if let Some(i) = b.live().iter().position(|e| e.arrival_ms >= ms) {
                return (bi, b.first + i);
            }
        }
        (self.blocks.len(), 0)
    }

    /// The records in `[from, to)` of block `bi`, sliced from the block if it
    /// is sealed, else copied into one buffer (one allocation per block read,
    /// never per record).
    fn copy_out(&self, bi: usize, from: usize, to: usize, out: &mut Vec<LogRecord>) {
        let b = &self.blocks[bi];
        let base = b.start_of(from);
        let end = b.entries[to - 1].end as usize;
        let buf = match &b.sealed {
            Some(sealed) => sealed.slice(base..end),
            None => Bytes::copy_from_slice(&b.bytes[base..end]),
        };
        for i in from..to {
            let (key, data) = b.ranges(i);
            let e = b.entries[i];
            // Keys were stored from `str`s, so they are UTF-8.
            let key = PartitionKey::from_utf8(buf.slice(key.start - base..key.end - base))
                .unwrap_or_else(|| PartitionKey::from(""));
            out.push(LogRecord {
                counter: e.counter,
                arrival_ms: e.arrival_ms,
                partition_key: key,
                data: buf.slice(data.start - base..data.end - base),
            });
        }
    }
}

impl ShardLog for MemoryLog {
    fn append(&mut self, batch: Vec<LogRecord>) -> Result<(), StoreError> {
        for r in &batch {
            self.push(r)?;
        }
        Ok(())
    }

    fn read(
        &self,
        from: u64,
        min_arrival_ms: i64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<ReadBatch, StoreError> {
        let mut pos = self.pos_of_counter(from);
        // Skip what retention has hidden but the trimmer has not yet dropped.
        while self
            .entry(pos)
            .is_some_and(|e| e.arrival_ms < min_arrival_ms)
        {
            pos = self.next(pos);
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut taken = 0usize;
        // The run of entries of the current block still to copy out.
        let mut run: Option<(usize, usize, usize)> = None;
        while taken < max_records {
            let Some(b) = self.blocks.get(pos.0) else {
                break;
            };
            if pos.1 >= b.entries.len() {
                break;
            }
            let size = b.billed_size(pos.1);
            if taken > 0 && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            taken += 1;
            run = match run {
                Some((bi, s, _)) if bi == pos.0 => Some((bi, s, pos.1 + 1)),
                other => {
                    if let Some((bi, s, e)) = other {
                        self.copy_out(bi, s, e, &mut out);
                    }
                    Some((pos.0, pos.1, pos.1 + 1))
                }
            };
            pos = self.next(pos);
        }
        if let Some((bi, s, e)) = run {
            self.copy_out(bi, s, e, &mut out);
        }
        Ok(ReadBatch {
            next_arrival_ms: self.entry(pos).map(|e| e.arrival_ms),
            records: out,
        })
    }

    fn first_at_or_after(
        &self,
        ts_ms: i64,
        min_arrival_ms: i64,
    ) -> Result<Option<u64>, StoreError> {
        let floor = ts_ms.max(min_arrival_ms);
        Ok(self.entry(self.pos_of_arrival(floor)).map(|e| e.counter))
    }

    fn last_counter(&self) -> Option<u64> {
        self.blocks
            .back()
            .and_then(|b| b.live().last())
            .map(|e| e.counter)
    }

    fn last_arrival_ms(&self) -> Option<i64> {
        self.blocks
            .back()
            .and_then(|b| b.live().last())
            .map(|e| e.arrival_ms)
    }

    fn trim(&mut self, min_arrival_ms: i64) {
        let (bi, i) = self.pos_of_arrival(min_arrival_ms);
        for b in self.blocks.drain(..bi) {
            self.len -= b.entries.len() - b.first;
        }
        if let Some(b) = self.blocks.front_mut() {
            self.len -= i - b.first;
            b.first = i;
            if b.first == b.entries.len() && self.blocks.len() > 1 {
                self.blocks.pop_front();
            }
        }
        if self.len == 0 {
            self.blocks.clear();
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(counter: u64, arrival_ms: i64, key: &str, data: Vec<u8>) -> LogRecord {
        LogRecord {
            counter,
            arrival_ms,
            partition_key: key.into(),
            data: Bytes::from(data),
        }
    }

    fn counters(b: &ReadBatch) -> Vec<u64> {
        b.records.iter().map(|r| r.counter).collect()
    }

    #[test]
    fn records_spanning_blocks_read_back_exactly() {
        let mut log = MemoryLog::new();
        // ~300 KiB records: several blocks, runs that cross block boundaries.
        let recs: Vec<LogRecord> = (0..10u64)
            .map(|i| {
                rec(
                    i * 2,
                    i as i64,
                    &format!("key-{i}"),
                    vec![i as u8; 300_000 + i as usize],
                )
            })
            .collect();
        log.append(recs.clone()).unwrap();
        assert!(log.blocks.len() >= 3);
        let b = log.read(0, 0, 100, usize::MAX).unwrap();
        assert_eq!(b.records, recs);
        assert_eq!(b.next_arrival_ms, None);
        let b = log.read(5, 0, 3, usize::MAX).unwrap();
        assert_eq!(b.records, recs[3..6].to_vec());
        assert_eq!(b.next_arrival_ms, Some(6));
        // The byte cap stops before the record that would cross it.
        let b = log.read(0, 0, 100, 700_000).unwrap();
        assert_eq!(counters(&b), vec![0, 2]);
    }

    #[test]
    fn trimming_drops_whole_blocks_and_keeps_the_rest_readable() {
        let mut log = MemoryLog::new();
        for i in 0..40u64 {
            log.append(vec![rec(i, i as i64 * 10, "k", vec![1; 100_000])])
                .unwrap();
        }
        let blocks = log.blocks.len();
        log.trim(155);
        assert_eq!(log.len(), 24);
        assert!(log.blocks.len() < blocks);
        assert_eq!(
            log.read(0, 0, 1, usize::MAX).unwrap().records[0].counter,
            16
        );
        assert_eq!(log.first_at_or_after(0, 0).unwrap(), Some(16));
        assert_eq!(log.last_counter(), Some(39));
        log.trim(1_000);
        assert!(log.is_empty());
        assert_eq!(log.last_counter(), None);
        assert!(log.read(0, 0, 10, 100).unwrap().records.is_empty());
        // A log emptied by trimming takes new records.
        log.append(vec![rec(50, 2_000, "k", vec![7])]).unwrap();
        assert_eq!(counters(&log.read(0, 0, 10, 100).unwrap()), vec![50]);
    }

    #[test]
    fn small_records_cost_at_most_32_bytes_beyond_key_and_data() {
        let mut log = MemoryLog::new();
        let n = 200_000u64;
        let mut billed = 0usize;
        for chunk in 0..(n / 500) {
            let batch: Vec<LogRecord> = (0..500)
                .map(|j| {
                    let i = chunk * 500 + j;
                    rec(i, 0, &format!("pk-{i}"), vec![0; 100])
                })
                .collect();
            billed += batch.iter().map(LogRecord::billed_size).sum::<usize>();
            log.append(batch).unwrap();
        }
        let overhead = (log.heap_bytes() - billed) as f64 / n as f64;
        assert!(overhead <= 32.0, "{overhead} bytes per record");
    }
}
