//! Collects Kinesis records of one stream, across its shards, into PutRecords requests of at
//! most `CollectionMaxCount` records and `CollectionMaxSize` bytes (KPL's collector). A request
//! is sealed when full, when its oldest record's deadline (extended by
//! `min(50 ms, RecordMaxBufferedTime / 5)` with aggregation, to fill requests) is up, or on
//! flush. Pure: the caller passes `now`.

use crate::aggregator::KinesisRecord;
use crate::config::Config;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One stream's open request and the sealed ones waiting for a connection.
#[derive(Debug)]
pub(crate) struct Collector {
    max_count: usize,
    max_size: usize,
    extension: Duration,
    pending: Vec<KinesisRecord>,
    size: usize,
    deadline: Option<Instant>,
    /// Lowest user-record `seq` in `pending`, for flushes.
    min_seq: u64,
    ready: VecDeque<Vec<KinesisRecord>>,
}

impl Collector {
    /// An empty collector with `config`'s limits.
    pub(crate) fn new(config: &Config) -> Self {
        Collector {
            max_count: config.collection_max_count,
            max_size: config.collection_max_size,
            extension: config.collection_extension(),
            pending: Vec::new(),
            size: 0,
            deadline: None,
            min_seq: u64::MAX,
            ready: VecDeque::new(),
        }
    }

    /// Adds a Kinesis record, sealing the open request first if it would not fit.
    pub(crate) fn add(&mut self, kr: KinesisRecord) {
        if !self.pending.is_empty()
            && (self.pending.len() >= self.max_count || self.size + kr.size > self.max_size)
        {
            self.seal();
        }
        let deadline = kr.deadline + self.extension;
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self.min_seq = kr
            .records
            .iter()
            .map(|r| r.seq)
            .fold(self.min_seq, u64::min);
        self.size += kr.size;
        self.pending.push(kr);
        if self.pending.len() >= self.max_count || self.size >= self.max_size {
            self.seal();
        }
    }

    /// Seals the open request if its deadline is up or it holds a record being flushed
    /// (`seq < flush_seq`).
    pub(crate) fn poll(&mut self, now: Instant, flush_seq: u64) {
        if self.deadline.is_some_and(|d| d <= now) || self.min_seq < flush_seq {
            self.seal();
        }
    }

    /// When the open request's deadline is up.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether a sealed request waits.
    #[cfg(test)]
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Whether nothing is held at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.ready.is_empty()
    }

    /// The oldest sealed request.
    pub(crate) fn pop_ready(&mut self) -> Option<Vec<KinesisRecord>> {
        self.ready.pop_front()
    }

    fn seal(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.ready.push_back(std::mem::take(&mut self.pending));
        self.size = 0;
        self.deadline = None;
        self.min_seq = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::test_support::user_record;
    use proptest::prelude::*;

    fn kr(seq: u64, len: usize, at: Instant, c: &Config) -> KinesisRecord {
        let (r, _h) = user_record(seq, "k", &vec![0u8; len], at, c);
        KinesisRecord::new(vec![r], None, c)
    }

    #[test]
    fn seals_on_count_size_deadline_and_flush() {
        let c = Config::builder()
            .collection_max_count(3)
            .collection_max_size(52_224)
            .build();
        let t0 = Instant::now();
        let mut col = Collector::new(&c);
        for i in 0..3 {
            col.add(kr(i, 10, t0, &c));
        }
        assert_eq!(col.pop_ready().map(|b| b.len()), Some(3));
        // Size: two 30 000-byte records do not fit one 52 224-byte request.
        col.add(kr(3, 30_000, t0, &c));
        assert!(!col.has_ready());
        col.add(kr(4, 30_000, t0, &c));
        assert_eq!(col.pop_ready().map(|b| b.len()), Some(1));
        // Deadline: the record's deadline plus the 20 ms extension.
        assert_eq!(
            col.next_due(),
            Some(t0 + c.record_max_buffered_time + Duration::from_millis(20))
        );
        col.poll(t0 + c.record_max_buffered_time, 0);
        assert!(!col.has_ready());
        col.poll(t0, 5);
        assert_eq!(col.pop_ready().map(|b| b.len()), Some(1));
        assert!(col.is_empty());
    }

    proptest! {
        #[test]
        fn prop_requests_respect_limits(
            sizes in proptest::collection::vec(1usize..60_000, 1..80),
            max_count in 1usize..20,
        ) {
            let c = Config::builder()
                .collection_max_count(max_count)
                .collection_max_size(100_000)
                .build();
            let t0 = Instant::now();
            let mut col = Collector::new(&c);
            for (i, s) in sizes.iter().enumerate() {
                col.add(kr(i as u64, *s, t0, &c));
            }
            col.poll(t0, u64::MAX);
            let mut seen = 0;
            let mut last = None;
            while let Some(b) = col.pop_ready() {
                prop_assert!(!b.is_empty() && b.len() <= max_count);
                let size: usize = b.iter().map(|k| k.size).sum();
                prop_assert!(b.len() == 1 || size <= 100_000);
                for k in &b {
                    let seq = k.records[0].seq;
                    prop_assert!(last.is_none_or(|l| seq > l));
                    last = Some(seq);
                }
                seen += b.len();
            }
            prop_assert_eq!(seen, sizes.len());
        }
    }
}
