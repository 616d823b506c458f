//! When a shard may be read again: GetRecords paced by what the previous calls
//! returned, so that throttles are rare (docs/kcl-read-pace.md).
//!
//! A shard serves 2 MiB/s and 5 GetRecords calls/s to all its readers together, and a
//! call may return up to 10 MiB, which the shard then recovers over five seconds. So
//! each shard keeps two virtual clocks: when its read budget is repaid (every page adds
//! its bytes ÷ 2 MiB/s) and when its next call slot opens (every call adds 200 ms). A
//! reader calls at the latest of those and its own idle time. The clocks are shared by
//! every reader of the shard in this process ([`ReadPace::global`]); readers elsewhere (another
//! application) still show up as throttles, which the fetcher backs off from as before.
//!
//! Pure apart from the shared map: callers pass `now`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A shard's read throughput, shared by its readers.
pub const SHARD_READ_BYTES_PER_SEC: f64 = kinesis_proto::limits::SHARD_READ_BYTES_PER_SEC;
/// The shortest time between two GetRecords of one shard (5 calls a second).
pub const SHARD_CALL_INTERVAL: Duration = Duration::from_millis(200);
/// Slack on the byte budget, so that a call never arrives just before the shard's own
/// bucket has refilled (clocks and accounting differ slightly between the two sides).
const MARGIN: f64 = 1.02;

/// The two clocks of one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardClocks {
    /// When the bytes read so far are paid for.
    pub budget_repaid_at: Instant,
    /// When the next call slot opens.
    pub next_slot_at: Instant,
}

impl ShardClocks {
    /// Clocks of a shard not read yet.
    pub fn new(now: Instant) -> Self {
        ShardClocks {
            budget_repaid_at: now,
            next_slot_at: now,
        }
    }

    /// Book a call made at `called` that returned `bytes`; the earliest next call given the
    /// reader's own `idle` time between reads.
    pub fn book(&mut self, called: Instant, bytes: usize, idle: Duration) -> Instant {
        let debt = Duration::from_secs_f64(bytes as f64 / SHARD_READ_BYTES_PER_SEC * MARGIN);
        self.budget_repaid_at = self.budget_repaid_at.max(called) + debt;
        self.next_slot_at = self.next_slot_at.max(called) + SHARD_CALL_INTERVAL;
        (called + idle)
            .max(self.budget_repaid_at)
            .max(self.next_slot_at)
    }
}

/// The clocks of every shard read in this process, by endpoint, stream and shard.
#[derive(Debug, Clone, Default)]
pub struct ReadPace {
    shards: Arc<Mutex<HashMap<String, ShardClocks>>>,
}

impl ReadPace {
    /// The process-wide pace, shared by every reader.
    pub fn global() -> &'static ReadPace {
        static GLOBAL: OnceLock<ReadPace> = OnceLock::new();
        GLOBAL.get_or_init(ReadPace::default)
    }

    /// Book a call of the shard `key`; the earliest time of its next call.
    pub fn book(&self, key: &str, called: Instant, bytes: usize, idle: Duration) -> Instant {
        let mut shards = self.shards.lock();
        shards
            .entry(key.to_string())
            .or_insert_with(|| ShardClocks::new(called))
            .book(called, bytes, idle)
    }

    /// Forget the shard `key` (its reader stopped), so the map does not grow without end.
    pub fn forget(&self, key: &str) {
        self.shards.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn small_pages_are_paced_by_the_idle_time_and_the_call_rate() {
        let t0 = Instant::now();
        let mut c = ShardClocks::new(t0);
        assert_eq!(
            c.book(t0, 1_000, Duration::from_secs(1)),
            t0 + Duration::from_secs(1)
        );
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(c.book(t1, 1_000, Duration::ZERO), t1 + SHARD_CALL_INTERVAL);
    }

    #[test]
    fn a_large_page_is_paid_for_before_the_next_call() {
        let t0 = Instant::now();
        let mut c = ShardClocks::new(t0);
        let next = c.book(t0, 10 * MIB, Duration::from_millis(200));
        let wait = next - t0;
        assert!(
            wait > Duration::from_secs(5) && wait < Duration::from_millis(5_300),
            "{wait:?}"
        );
    }

    #[test]
    fn readers_of_one_shard_share_its_clocks() {
        let pace = ReadPace::default();
        let t0 = Instant::now();
        let a = pace.book("e|s|shard-0", t0, 2 * MIB, Duration::ZERO);
        let b = pace.book("e|s|shard-0", t0, 2 * MIB, Duration::ZERO);
        assert!(
            b - t0 >= (a - t0) * 2 - Duration::from_millis(1),
            "{a:?} {b:?}"
        );
        let other = pace.book("e|s|shard-1", t0, 0, Duration::ZERO);
        assert_eq!(
            other,
            t0 + SHARD_CALL_INTERVAL,
            "other shards are independent"
        );
        pace.forget("e|s|shard-0");
        assert_eq!(
            pace.book("e|s|shard-0", t0, 0, Duration::ZERO),
            t0 + SHARD_CALL_INTERVAL
        );
    }

    #[test]
    fn a_drained_shard_is_read_at_its_throughput() {
        // 1 MiB pages as fast as allowed: about 2 MiB/s, never more.
        let t0 = Instant::now();
        let mut c = ShardClocks::new(t0);
        let mut t = t0;
        for _ in 0..100 {
            t = c.book(t, MIB, Duration::ZERO);
        }
        let rate = 100.0 * MIB as f64 / (t - t0).as_secs_f64();
        assert!(
            rate <= SHARD_READ_BYTES_PER_SEC && rate > 0.94 * SHARD_READ_BYTES_PER_SEC,
            "{rate}"
        );
    }
}
