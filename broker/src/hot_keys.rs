//! The hottest partition keys of one shard over a recent window, so the
//! console can show why a shard is hot.
//!
//! Records are counted in bounded memory: the window is a ring of a few time
//! buckets, and each bucket keeps at most [`KEYS_PER_BUCKET`] keys by the
//! space-saving algorithm (a new key evicts the least counted one and inherits
//! its count, remembered as the new key's possible overcount). A key that is
//! really frequent is never evicted for long, so the top of the list is right
//! and each count is off by at most its reported `overcount`. Keys are the
//! records' shared `Arc<str>`, so counting copies no string.
//!
//! The first [`EXACT_RECORDS`] records of a bucket are all counted; past that
//! a busy shard's records are sampled, one in [`SAMPLE_EVERY`] at random,
//! each sampled record counting for [`SAMPLE_EVERY`]: the keys that make a
//! shard hot stay on top, at a fraction of the cost per record
//! (`cargo bench -p kinesis-broker --bench hot_keys`). Per-bucket totals are
//! always exact and give the shard's incoming rates over the window too.
//!
//! Time is passed in (`now_ms`), so the logic is tested without a clock.

use parking_lot::Mutex;
use std::sync::Arc;

/// Keys each bucket keeps.
pub const KEYS_PER_BUCKET: usize = 64;
/// Buckets in the window.
pub const BUCKETS: usize = 6;
/// Length of one bucket, ms; the window is `BUCKETS * BUCKET_MS`.
pub const BUCKET_MS: i64 = 10_000;
/// Records of a bucket counted one by one before sampling starts.
pub const EXACT_RECORDS: u64 = 4096;
/// Past [`EXACT_RECORDS`], one record in this many is counted (with this weight).
pub const SAMPLE_EVERY: u64 = 8;

/// One key's count in a bucket.
#[derive(Debug, Clone)]
struct Slot {
    key: Arc<str>,
    records: u64,
    bytes: u64,
    /// How much of `records` may belong to keys this slot evicted.
    overcount: u64,
}

/// One time bucket: exact totals and the space-saving summary.
#[derive(Debug, Clone, Default)]
struct Bucket {
    /// `now_ms / BUCKET_MS` of the bucket's time span; buckets of other spans are stale.
    epoch: i64,
    records: u64,
    bytes: u64,
    slots: Vec<Slot>,
    /// xorshift state choosing the sampled records.
    rng: u64,
}

impl Bucket {
    fn reset(&mut self, epoch: i64) {
        self.epoch = epoch;
        self.records = 0;
        self.bytes = 0;
        self.slots.clear();
        // Any odd seed will do; fixed so runs repeat.
        self.rng = 0x9e37_79b9_7f4a_7c15 ^ (epoch as u64);
    }

    /// Whether the next record past the exact ones is sampled.
    fn sampled(&mut self) -> bool {
        let mut x = self.rng | 1;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x.is_multiple_of(SAMPLE_EVERY)
    }

    fn observe(&mut self, key: &str, bytes: u64) {
        self.records += 1;
        self.bytes += bytes;
        let weight = if self.records <= EXACT_RECORDS {
            1
        } else if self.sampled() {
            SAMPLE_EVERY
        } else {
            return;
        };
        let bytes = bytes * weight;
        if let Some(s) = self.slots.iter_mut().find(|s| *s.key == *key) {
            s.records += weight;
            s.bytes += bytes;
            return;
        }
        if self.slots.len() < KEYS_PER_BUCKET {
            self.slots.push(Slot {
                // A key is copied only when it takes a slot, so counting
                // costs no allocation per record.
                key: Arc::from(key),
                records: weight,
                bytes,
                overcount: 0,
            });
            return;
        }
        if let Some(min) = self.slots.iter_mut().min_by_key(|s| s.records) {
            let inherited = min.records;
            *min = Slot {
                key: Arc::from(key),
                records: inherited + weight,
                bytes: min.bytes + bytes,
                overcount: inherited,
            };
        }
    }
}

/// A key's counts over the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotKey {
    /// The partition key.
    pub key: String,
    /// Records counted for it (an estimate once sampling starts; may include
    /// up to `overcount` of other keys).
    pub records: u64,
    /// Bytes (data and key) counted for it.
    pub bytes: u64,
    /// Upper bound of the records in `records` that were other keys'.
    pub overcount: u64,
}

/// The window's view: exact totals and the top keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HotKeysReport {
    /// Records stored in the window.
    pub records: u64,
    /// Bytes (data and key) stored in the window.
    pub bytes: u64,
    /// Milliseconds the window covers (shorter than the full window early on).
    pub span_ms: i64,
    /// The most counted keys, most first.
    pub top: Vec<HotKey>,
}

/// A shard's partition-key sampler. Cheap to share; one lock per appended batch.
#[derive(Debug, Default)]
pub struct HotKeys {
    buckets: Mutex<Vec<Bucket>>,
}

impl HotKeys {
    /// An empty sampler.
    pub fn new() -> HotKeys {
        HotKeys::default()
    }

    /// Count records (partition key, size in bytes) stored at `now_ms`.
    pub fn observe<'a>(&self, records: impl IntoIterator<Item = (&'a str, u64)>, now_ms: i64) {
        let epoch = now_ms.div_euclid(BUCKET_MS);
        let mut buckets = self.buckets.lock();
        if buckets.is_empty() {
            buckets.resize_with(BUCKETS, Bucket::default);
        }
        let slot = epoch.rem_euclid(BUCKETS as i64) as usize;
        let bucket = &mut buckets[slot];
        if bucket.epoch != epoch {
            bucket.reset(epoch);
        }
        for (key, bytes) in records {
            bucket.observe(key, bytes);
        }
    }

    /// The window ending at `now_ms`: totals and the `n` most counted keys.
    pub fn report(&self, n: usize, now_ms: i64) -> HotKeysReport {
        let epoch = now_ms.div_euclid(BUCKET_MS);
        let oldest = epoch - BUCKETS as i64 + 1;
        let buckets = self.buckets.lock();
        let live: Vec<&Bucket> = buckets
            .iter()
            .filter(|b| b.epoch >= oldest && b.epoch <= epoch && b.records > 0)
            .collect();
        let mut report = HotKeysReport::default();
        let mut merged: Vec<HotKey> = Vec::new();
        let mut first_epoch = epoch;
        for b in &live {
            report.records += b.records;
            report.bytes += b.bytes;
            first_epoch = first_epoch.min(b.epoch);
            for s in &b.slots {
                match merged.iter_mut().find(|h| *h.key == *s.key) {
                    Some(h) => {
                        h.records += s.records;
                        h.bytes += s.bytes;
                        h.overcount += s.overcount;
                    }
                    None => merged.push(HotKey {
                        key: s.key.to_string(),
                        records: s.records,
                        bytes: s.bytes,
                        overcount: s.overcount,
                    }),
                }
            }
        }
        drop(buckets);
        // From the start of the oldest live bucket to now, at least one second.
        report.span_ms = (now_ms - first_epoch * BUCKET_MS).max(1_000);
        merged.sort_by(|a, b| b.records.cmp(&a.records).then(a.key.cmp(&b.key)));
        merged.truncate(n);
        report.top = merged;
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<Arc<str>> {
        (0..n).map(|i| Arc::from(format!("key-{i}"))).collect()
    }

    #[test]
    fn a_skewed_stream_names_its_hot_key_first() {
        let hot = keys(KEYS_PER_BUCKET * 4);
        let h = HotKeys::new();
        let t = 1_000_000;
        // 800 records of "hot", among 3,200 records spread over 256 other keys
        // (all counted: fewer than EXACT_RECORDS).
        let hot_key: Arc<str> = Arc::from("hot");
        for i in 0..3200 {
            h.observe([(&*hot[i % hot.len()], 10)], t);
            if i % 4 == 0 {
                h.observe([(&*hot_key, 100)], t);
            }
        }
        let r = h.report(3, t + 500);
        assert_eq!(r.records, 4000);
        assert_eq!(r.bytes, 3200 * 10 + 800 * 100);
        assert_eq!(r.top[0].key, "hot");
        assert!(r.top[0].records >= 800);
        assert!(r.top[0].records - r.top[0].overcount <= 800);
        assert_eq!(r.top.len(), 3);
    }

    #[test]
    fn counts_are_exact_while_keys_fit() {
        let ks = keys(3);
        let h = HotKeys::new();
        h.observe([(&*ks[0], 5), (&*ks[1], 5), (&*ks[0], 5)], 0);
        h.observe([(&*ks[2], 1)], 0);
        let r = h.report(10, 0);
        assert_eq!(
            r.top
                .iter()
                .map(|k| (k.key.as_str(), k.records, k.overcount))
                .collect::<Vec<_>>(),
            [("key-0", 2, 0), ("key-1", 1, 0), ("key-2", 1, 0)]
        );
        assert_eq!(r.span_ms, 1_000);
    }

    #[test]
    fn old_buckets_leave_the_window() {
        let ks = keys(2);
        let h = HotKeys::new();
        h.observe([(&*ks[0], 1)], 0);
        h.observe([(&*ks[1], 1)], BUCKET_MS * 3);
        let r = h.report(10, BUCKET_MS * 3);
        assert_eq!(r.records, 2);
        // Past the window the first bucket no longer counts.
        let r = h.report(10, BUCKET_MS * BUCKETS as i64 + 1);
        assert_eq!(r.records, 1);
        assert_eq!(r.top[0].key, "key-1");
        // Its slot is reused by a later bucket without leaking counts.
        h.observe([(&*ks[1], 1)], BUCKET_MS * BUCKETS as i64);
        let r = h.report(10, BUCKET_MS * BUCKETS as i64);
        assert_eq!(r.records, 2);
        assert_eq!(r.top.len(), 1);
        assert_eq!(r.top[0].records, 2);
    }

    #[test]
    fn a_busy_shard_is_sampled_and_keeps_its_hot_key_on_top() {
        let h = HotKeys::new();
        let hot: Arc<str> = Arc::from("hot");
        let others = keys(1000);
        // 40,000 records in one bucket: a quarter to "hot".
        for i in 0..40_000usize {
            let k = if i % 4 == 0 {
                &hot
            } else {
                &others[i % others.len()]
            };
            h.observe([(&**k, 10)], 0);
        }
        let r = h.report(2, 0);
        assert_eq!(r.records, 40_000, "totals stay exact");
        assert_eq!(r.bytes, 400_000);
        assert_eq!(r.top[0].key, "hot");
        // The estimate of its 10,000 records is close.
        let est = r.top[0].records - r.top[0].overcount;
        assert!((8_500..=11_500).contains(&est), "{est}");
        assert!(r.top[1].records < r.top[0].records / 2);
    }

    #[test]
    fn memory_stays_bounded() {
        let h = HotKeys::new();
        for i in 0..10_000 {
            let k: Arc<str> = Arc::from(format!("k{i}"));
            h.observe([(&*k, 1)], (i as i64) * 100);
        }
        let b = h.buckets.lock();
        assert_eq!(b.len(), BUCKETS);
        assert!(b.iter().all(|b| b.slots.len() <= KEYS_PER_BUCKET));
    }
}
