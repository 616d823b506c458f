//! Per-shard buffering and aggregation: user records wait in their predicted shard's buffer
//! until a full aggregate's worth is there or the oldest one's `RecordMaxBufferedTime` is up;
//! then they leave as one Kinesis record.
//!
//! The buffer decides *which* user records form a Kinesis record using an upper bound of the
//! aggregate's size (every key counted as new, indices at their largest); the bytes themselves
//! (the KPL format, `kinesis_proto::aggregation::Aggregator`, whose key de-duplication only
//! makes them smaller, and the MD5 trailer) are produced by `KinesisRecord::to_entry` off the
//! pipeline's thread. A Kinesis record holding one user record is sent as that record, not
//! aggregated (KPL). Pure: the caller passes `now`.

use crate::config::Config;
use crate::record::UserRecord;
use kinesis_proto::aggregation::{Aggregator, FIXED_OVERHEAD, Unsealed};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::PutRecordsRequestEntry;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// The outer partition key of an aggregate: one byte, since its explicit hash key routes it.
pub const AGGREGATE_PARTITION_KEY: &str = "a";

/// What an aggregate costs beyond its entries as Kinesis counts it against the
/// limit: magic, digest and the outer partition key.
const AGGREGATE_OVERHEAD: usize = FIXED_OVERHEAD + AGGREGATE_PARTITION_KEY.len();

/// One record of a PutRecords request: one user record, or several aggregated.
#[derive(Debug)]
pub(crate) struct KinesisRecord {
    /// Its user records, in order (their sub-sequence numbers when aggregated).
    pub(crate) records: Vec<UserRecord>,
    /// Whether it is a KPL aggregate (two or more user records).
    pub(crate) aggregated: bool,
    /// Upper bound of its size as Kinesis counts it (data plus partition key).
    pub(crate) size: usize,
    /// The shard the map predicted, if a map was known.
    pub(crate) predicted: Option<Arc<str>>,
    /// When it should leave the collector (its oldest user record's deadline).
    pub(crate) deadline: Instant,
}

impl KinesisRecord {
    /// A Kinesis record of exactly these user records.
    pub(crate) fn new(
        records: Vec<UserRecord>,
        predicted: Option<Arc<str>>,
        config: &Config,
    ) -> Self {
        let aggregated = records.len() > 1;
        let size = if aggregated {
            AGGREGATE_OVERHEAD
                + records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| entry_bound(r, i))
                    .sum::<usize>()
        } else {
            records.iter().map(UserRecord::kinesis_size).sum()
        };
        let deadline = records
            .iter()
            .map(|r| r.deadline(config))
            .min()
            .unwrap_or_else(Instant::now);
        KinesisRecord {
            records,
            aggregated,
            size,
            predicted,
            deadline,
        }
    }

    /// The PutRecords entry: the user record as-is, or the KPL aggregate with partition key
    /// `"a"` and the first user record's hash key as explicit hash key (KPL). `scratch` is
    /// reused between calls to keep its buffers.
    #[cfg(test)]
    pub(crate) fn to_entry(&self, scratch: &mut Aggregator) -> PutRecordsRequestEntry {
        let (mut entry, unsealed) = self.to_entry_unsealed(scratch);
        if let Some(u) = unsealed {
            entry.data = Some(Blob(u.seal()));
        }
        entry
    }

    /// The PutRecords entry, and for an aggregate its data still to be sealed with
    /// [`kinesis_proto::aggregation::seal_all`] (the entry's data is then empty): a request seals all of its aggregates at
    /// once, which takes their MD5s several side by side.
    pub(crate) fn to_entry_unsealed(
        &self,
        scratch: &mut Aggregator,
    ) -> (PutRecordsRequestEntry, Option<Unsealed>) {
        if !self.aggregated {
            let r = &self.records[0];
            let entry = PutRecordsRequestEntry {
                data: Some(Blob(r.data.clone())),
                explicit_hash_key: r.explicit_hash_key.clone(),
                partition_key: Some(r.partition_key.as_str().to_owned()),
            };
            return (entry, None);
        }
        scratch.clear();
        for r in &self.records {
            scratch.push_parts(
                r.partition_key.as_str(),
                r.explicit_hash_key.as_deref(),
                &r.data,
            );
        }
        let entry = PutRecordsRequestEntry {
            data: None,
            explicit_hash_key: Some(self.records[0].hash_key.to_string()),
            partition_key: Some(AGGREGATE_PARTITION_KEY.to_string()),
        };
        (entry, scratch.finish_unsealed())
    }
}

/// Bytes of `v` as a protobuf varint.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Upper bound of the bytes user record `r` adds as the `i`-th record of an aggregate: its
/// keys counted as new table entries at index `i` (the KPL format's exact formulas otherwise).
fn entry_bound(r: &UserRecord, i: usize) -> usize {
    let key = |len: usize| 1 + varint_len(len as u64) + len;
    let pk = key(r.partition_key.len());
    let idx = 1 + varint_len(i as u64);
    let (ehk, ehk_idx) = match &r.explicit_hash_key {
        Some(e) => (key(e.len()), idx),
        None => (0, 0),
    };
    let data = r.data.len();
    let body = idx + ehk_idx + 1 + varint_len(data as u64) + data;
    pk + ehk + 1 + varint_len(body as u64) + body
}

/// The user records waiting for one predicted shard, oldest (lowest `seq`) first.
#[derive(Debug, Default)]
pub(crate) struct ShardBuffer {
    queue: VecDeque<UserRecord>,
    /// Sum of the records' single-record aggregate entry sizes, to spot a full aggregate.
    bytes: usize,
}

impl ShardBuffer {
    /// Number of user records waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The oldest waiting record.
    pub(crate) fn front(&self) -> Option<&UserRecord> {
        self.queue.front()
    }

    /// Appends a new record (its `seq` is above every waiting one's).
    pub(crate) fn push_back(&mut self, rec: UserRecord) {
        self.bytes += entry_bound(&rec, 0);
        self.queue.push_back(rec);
    }

    /// Puts `recs` (sorted by `seq`, typically retries) back, keeping the buffer sorted.
    pub(crate) fn merge_front(&mut self, mut recs: Vec<UserRecord>) {
        if recs.is_empty() {
            return;
        }
        self.bytes += recs.iter().map(|r| entry_bound(r, 0)).sum::<usize>();
        let last = recs.last().map_or(0, |r| r.seq);
        if self.queue.front().is_none_or(|f| last < f.seq) {
            for r in recs.into_iter().rev() {
                self.queue.push_front(r);
            }
            return;
        }
        // Overlapping ranges (several batches in flight failed out of order): rare, so sort.
        recs.extend(self.queue.drain(..));
        recs.sort_by_key(|r| r.seq);
        self.queue = recs.into();
    }

    /// Removes every record, oldest first.
    pub(crate) fn drain(&mut self) -> Vec<UserRecord> {
        self.bytes = 0;
        self.queue.drain(..).collect()
    }

    fn pop_front(&mut self) -> Option<UserRecord> {
        let r = self.queue.pop_front()?;
        self.bytes -= entry_bound(&r, 0);
        Some(r)
    }

    /// Moves the records at the front whose `RecordTtl` is up to `expired`. Fresh records
    /// expire in arrival order and retries go back to the front, so only the front can expire
    /// first.
    pub(crate) fn expire_front(
        &mut self,
        now: Instant,
        config: &Config,
        expired: &mut Vec<UserRecord>,
    ) {
        while self
            .queue
            .front()
            .is_some_and(|r| r.expiration(config) <= now)
        {
            expired.extend(self.pop_front());
        }
    }

    /// Whether a Kinesis record should be built now: the front may be sent (`not_before`) and
    /// either a full aggregate's worth waits, the front's deadline is up, it is being flushed
    /// (`seq < flush_seq`), or `hold` is false (no aggregation: the collector does the waiting).
    pub(crate) fn is_due(&self, now: Instant, flush_seq: u64, hold: bool, config: &Config) -> bool {
        let Some(front) = self.queue.front() else {
            return false;
        };
        if front.not_before() > now {
            return false;
        }
        !hold
            || front.seq < flush_seq
            || front.deadline(config) <= now
            || self.bytes + AGGREGATE_OVERHEAD >= config.aggregation_max_size
            || self.queue.len() as u64 >= config.aggregation_max_count
    }

    /// When the buffer next needs attention if nothing arrives: when the front may be sent
    /// (its retry time, and its deadline unless already due otherwise) or expires.
    pub(crate) fn next_due(&self, flush_seq: u64, hold: bool, config: &Config) -> Option<Instant> {
        let f = self.queue.front()?;
        let due_now = !hold
            || f.seq < flush_seq
            || self.bytes + AGGREGATE_OVERHEAD >= config.aggregation_max_size
            || self.queue.len() as u64 >= config.aggregation_max_count;
        let due = if due_now {
            f.not_before()
        } else {
            f.deadline(config).max(f.not_before())
        };
        Some(due.min(f.expiration(config)))
    }

    /// Takes the next Kinesis record from the front: as many user records as fit one
    /// aggregate (`aggregate` true), or just the front one.
    pub(crate) fn take(
        &mut self,
        aggregate: bool,
        predicted: Option<Arc<str>>,
        now: Instant,
        config: &Config,
        spare: &mut Vec<Vec<UserRecord>>,
    ) -> Option<KinesisRecord> {
        let first = self.queue.front()?;
        // Count first, then move them all at once into a vector of that size: grown record by
        // record, it was reallocated and copied eight times per full aggregate.
        let mut n = 1;
        // What the taken records count for in `bytes` (each one's bound at index 0).
        let mut taken = entry_bound(first, 0);
        if aggregate {
            let mut size = AGGREGATE_OVERHEAD + taken;
            // A record too large to share an aggregate goes alone.
            if size <= config.aggregation_max_size {
                for next in self.queue.iter().skip(1) {
                    let add = entry_bound(next, n);
                    let alone = entry_bound(next, 0);
                    if size + add > config.aggregation_max_size
                        || n as u64 >= config.aggregation_max_count
                        || next.not_before() > now
                        || AGGREGATE_OVERHEAD + alone > config.aggregation_max_size
                    {
                        break;
                    }
                    size += add;
                    taken += alone;
                    n += 1;
                }
            }
        }
        // A vector an answered request gave back, when one of about that size is at hand: it
        // is in memory already, where a fresh one is memory the allocator may have to take
        // from the kernel again (a fifth of the producer's page faults).
        let mut records = match spare.last() {
            Some(v) if (n..=2 * n).contains(&v.capacity()) => spare.pop().unwrap_or_default(),
            _ => Vec::with_capacity(n),
        };
        records.extend(self.queue.drain(..n));
        self.bytes -= taken;
        Some(KinesisRecord::new(records, predicted, config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::PutHandle;
    use crate::record::test_support::user_record;
    use kinesis_proto::aggregation::deaggregate;
    use std::time::Duration;

    fn cfg() -> Config {
        Config::default()
    }

    /// A buffer of `n` records with keys `k0`, `k1`, … all arriving at `t0`, and their handles.
    fn filled(n: u64, data: &[u8], t0: Instant, c: &Config) -> (ShardBuffer, Vec<PutHandle>) {
        let mut buf = ShardBuffer::default();
        let mut handles = Vec::new();
        for i in 0..n {
            let (r, h) = user_record(i, &format!("k{i}"), data, t0, c);
            buf.push_back(r);
            handles.push(h);
        }
        (buf, handles)
    }

    #[test]
    fn waits_for_the_deadline_then_sends_all_it_has() {
        let c = cfg();
        let t0 = Instant::now();
        let (mut buf, _handles) = filled(3, b"hello", t0, &c);
        assert!(!buf.is_due(t0, 0, true, &c));
        assert_eq!(
            buf.next_due(0, true, &c),
            Some(t0 + c.record_max_buffered_time)
        );
        // Flushing or the deadline make it due; without aggregation it always is.
        assert!(buf.is_due(t0, 1, true, &c));
        assert!(buf.is_due(t0 + c.record_max_buffered_time, 0, true, &c));
        assert!(buf.is_due(t0, 0, false, &c));
        let kr = buf
            .take(true, Some("s0".into()), t0, &c, &mut Vec::new())
            .unwrap();
        assert!(buf.is_empty());
        assert!(kr.aggregated);
        assert_eq!(kr.records.len(), 3);
        let entry = kr.to_entry(&mut Aggregator::default());
        let data = entry.data.unwrap().0;
        assert!(data.len() < kr.size, "{} vs bound {}", data.len(), kr.size);
        assert_eq!(entry.partition_key.as_deref(), Some("a"));
        assert_eq!(
            entry.explicit_hash_key,
            Some(kr.records[0].hash_key.to_string())
        );
        let out = deaggregate("a", None, data);
        let keys: Vec<_> = out.iter().map(|r| &*r.partition_key).collect();
        assert_eq!(keys, ["k0", "k1", "k2"]);
    }

    #[test]
    fn a_full_aggregate_is_due_at_once_and_respects_the_limit() {
        let c = Config::builder().aggregation_max_size(1000).build();
        let t0 = Instant::now();
        let mut buf = ShardBuffer::default();
        let mut hs = Vec::new();
        for i in 0..30 {
            let (r, h) = user_record(i, "same-key", &[7u8; 100], t0, &c);
            hs.push(h);
            buf.push_back(r);
        }
        assert!(buf.is_due(t0, 0, true, &c));
        let mut total = 0;
        let mut scratch = Aggregator::default();
        while let Some(kr) = buf.take(true, None, t0, &c, &mut Vec::new()) {
            let entry = kr.to_entry(&mut scratch);
            let len = entry.data.as_ref().unwrap().len() + entry.partition_key.unwrap().len();
            assert!(len <= kr.size && kr.size <= 1000, "{len} {}", kr.size);
            total += kr.records.len();
        }
        assert_eq!(total, 30);
    }

    #[test]
    fn single_and_oversized_records_go_unaggregated() {
        let c = Config::builder().aggregation_max_size(200).build();
        let t0 = Instant::now();
        let mut buf = ShardBuffer::default();
        let (small, _h1) = user_record(0, "k", b"x", t0, &c);
        let (big, _h2) = user_record(1, "k", &[1u8; 300], t0, &c);
        let (small2, _h3) = user_record(2, "k", b"y", t0, &c);
        buf.push_back(small);
        buf.push_back(big);
        buf.push_back(small2);
        let a = buf.take(true, None, t0, &c, &mut Vec::new()).unwrap();
        assert_eq!((a.records.len(), a.aggregated), (1, false));
        let entry = a.to_entry(&mut Aggregator::default());
        assert_eq!(entry.data.unwrap().0, "x");
        assert_eq!(entry.partition_key.as_deref(), Some("k"));
        assert_eq!(entry.explicit_hash_key, None);
        let b = buf.take(true, None, t0, &c, &mut Vec::new()).unwrap();
        assert_eq!((b.records.len(), b.size), (1, 301));
        assert_eq!(buf.len(), 1);
    }

    #[test]
    fn retries_merge_in_front_in_seq_order() {
        let c = cfg();
        let t0 = Instant::now();
        let mut buf = ShardBuffer::default();
        let mut hs = Vec::new();
        let mut mk = |seq| {
            let (r, h) = user_record(seq, "k", b"d", t0, &c);
            hs.push(h);
            r
        };
        buf.push_back(mk(5));
        buf.push_back(mk(6));
        buf.merge_front(vec![mk(1), mk(2)]);
        buf.merge_front(vec![mk(3), mk(4), mk(7)]);
        let seqs: Vec<_> = buf.drain().iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_given_back_vector_of_about_the_size_is_reused() {
        let c = cfg();
        let t0 = Instant::now();
        let (mut buf, _handles) = filled(20, b"d", t0, &c);
        // Far too large for one record alone: left for a larger Kinesis record.
        let mut spare = vec![Vec::with_capacity(1000)];
        let alone = buf.take(false, None, t0, &c, &mut spare).unwrap();
        assert_eq!((alone.records.capacity(), spare.len()), (1, 1));
        let fits = Vec::with_capacity(30);
        let ptr = fits.as_ptr();
        spare.push(fits);
        let kr = buf.take(true, None, t0, &c, &mut spare).unwrap();
        assert_eq!(kr.records.len(), 19);
        assert_eq!(kr.records.as_ptr(), ptr, "the spare vector holds them");
        assert_eq!(spare.len(), 1);
    }

    #[test]
    fn expiry_and_backoff_at_the_front() {
        let c = cfg();
        let t0 = Instant::now();
        let mut buf = ShardBuffer::default();
        let (mut r0, _h0) = user_record(0, "k", b"d", t0, &c);
        let (r1, _h1) = user_record(1, "k", b"d", t0 + Duration::from_secs(1), &c);
        let retry_at = t0 + Duration::from_millis(300);
        r0.retry_mut().not_before = retry_at;
        buf.push_back(r0);
        buf.push_back(r1);
        assert!(!buf.is_due(t0 + Duration::from_millis(200), 1, true, &c));
        assert_eq!(buf.next_due(0, false, &c), Some(retry_at));
        let mut expired = Vec::new();
        buf.expire_front(t0 + c.record_ttl, &c, &mut expired);
        assert_eq!(expired.len(), 1);
        assert_eq!(buf.len(), 1);
    }

    /// Kinesis counts an aggregate's outer partition key with its data: at every
    /// boundary the pair stays within `aggregation_max_size`.
    #[test]
    fn the_outer_partition_key_counts_against_the_aggregate_limit() {
        for max in [200, 1000, crate::config::MAX_RECORD_SIZE] {
            let c = Config::builder().aggregation_max_size(max).build();
            let t0 = Instant::now();
            // Two records whose aggregate lands on every size around the limit; distinct
            // keys make the bound exact, so the bytes sent reach it too.
            let half = (max - FIXED_OVERHEAD) / 2;
            let mut filled_exactly = false;
            for data in half.saturating_sub(24)..half + 2 {
                let mut buf = ShardBuffer::default();
                let (a, _ha) = user_record(0, "k", &vec![1u8; half - 12], t0, &c);
                let (b, _hb) = user_record(1, "j", &vec![2u8; data], t0, &c);
                buf.push_back(a);
                buf.push_back(b);
                let kr = buf.take(true, None, t0, &c, &mut Vec::new()).unwrap();
                if !kr.aggregated {
                    continue;
                }
                let entry = kr.to_entry(&mut Aggregator::default());
                let sent = entry.data.as_ref().unwrap().len() + entry.partition_key.unwrap().len();
                assert!(
                    kr.size <= max && sent <= max,
                    "max {max}, data {data}: bound {} and {sent} bytes sent",
                    kr.size
                );
                filled_exactly |= kr.size == max;
            }
            assert!(
                filled_exactly,
                "max {max}: no aggregate reached the limit exactly"
            );
        }
    }
}
