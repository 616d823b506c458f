//! Test-only: producers' shard limiters against a simulated shard, in simulated time.
//!
//! The shard admits a Kinesis record only when its byte bucket (1 MiB/s, one second of
//! burst) holds the whole record and its record bucket (1,000/s) holds one, as the service
//! and the broker do (docs/limits.md). Each producer always has records waiting (a
//! saturated shard), sends what its [`ShardLimiter`] lets through, batches it for up to
//! `record_max_buffered_time` as the collector does, and feeds each record's outcome back
//! a round trip later. Everything is driven by a seeded generator: a run is a function of
//! its parameters.

use crate::config::{SHARD_BYTES_PER_SEC, SHARD_RECORDS_PER_SEC};
use crate::limiter::{ShardLimiter, TokenBucket};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A shard as the service limits it.
struct Shard {
    bytes: TokenBucket,
    records: TokenBucket,
}

impl Shard {
    fn new(scale: f64, now: Instant) -> Self {
        Shard {
            bytes: TokenBucket::new(SHARD_BYTES_PER_SEC * scale, now),
            records: TokenBucket::new(SHARD_RECORDS_PER_SEC * scale, now),
        }
    }

    fn admit(&mut self, size: usize, now: Instant) -> bool {
        if self.bytes.level(now) < size as f64 || self.records.level(now) < 1.0 {
            return false;
        }
        self.bytes.take(size as f64, now);
        self.records.take(1.0, now);
        true
    }
}

/// SplitMix64, for reproducible jitter.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One simulated producer writing one shard.
struct Producer {
    limiter: ShardLimiter,
    starts: Instant,
    /// Records collected for the next PutRecords, and when the first was collected.
    batch: Vec<usize>,
    batch_since: Option<Instant>,
    /// Sent records: when they reach the shard and their size.
    wire: VecDeque<(Instant, usize)>,
    /// Outcomes on their way back: when they arrive and whether throttled.
    answers: VecDeque<(Instant, bool)>,
    accepted_bytes: u64,
    accepted: u64,
    throttled: u64,
}

/// What a run measured, after its warm-up.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Accepted bytes per second of each producer, as a share of the shard's limit.
    pub(crate) shares: Vec<f64>,
    /// Accepted records per second of all producers, as a share of the shard's limit.
    pub(crate) records: f64,
    /// Throttled Kinesis records per record sent, over all producers.
    pub(crate) throttled: f64,
}

impl Outcome {
    /// All producers together, as a share of the shard's limit.
    pub(crate) fn total(&self) -> f64 {
        self.shares.iter().sum()
    }
}

/// A run's parameters.
pub(crate) struct Run {
    /// When each producer starts, after the run does.
    pub(crate) starts: Vec<Duration>,
    /// Size of each Kinesis record (an aggregate of user records).
    pub(crate) record_size: usize,
    /// The shard's limits as a factor of the service's.
    pub(crate) shard_scale: f64,
    /// Producers' `RateLimit`.
    pub(crate) rate_limit: u64,
    /// Measured from here to the end.
    pub(crate) warm_up: Duration,
    pub(crate) length: Duration,
    pub(crate) seed: u64,
}

impl Run {
    /// One producer, one Kinesis record per 100-byte user record (aggregation off, a key
    /// of about ten bytes): the shard's 1,000 records/s bind long before its 1 MiB/s.
    pub(crate) fn unaggregated(seed: u64) -> Self {
        Run {
            record_size: 110,
            ..Run::producers(1, seed)
        }
    }

    /// `n` producers starting together on one shard, 50 KB aggregates, 60 s, AWS limits.
    pub(crate) fn producers(n: usize, seed: u64) -> Self {
        Run {
            starts: vec![Duration::ZERO; n],
            record_size: 51_200,
            shard_scale: 1.0,
            rate_limit: 150,
            warm_up: Duration::from_secs(5),
            length: Duration::from_secs(60),
            seed,
        }
    }

    /// Simulate in 1 ms steps.
    pub(crate) fn simulate(&self) -> Outcome {
        let step = Duration::from_millis(1);
        let buffered = Duration::from_millis(100);
        let t0 = Instant::now();
        let mut rng = Rng(self.seed);
        let mut shard = Shard::new(self.shard_scale, t0);
        let mut producers: Vec<Producer> = self
            .starts
            .iter()
            .map(|s| Producer {
                limiter: ShardLimiter::adaptive(self.rate_limit, t0 + *s),
                starts: t0 + *s,
                batch: Vec::new(),
                batch_since: None,
                wire: VecDeque::new(),
                answers: VecDeque::new(),
                accepted_bytes: 0,
                accepted: 0,
                throttled: 0,
            })
            .collect();
        let measured_from = t0 + self.warm_up;
        let mut now = t0;
        let end = t0 + self.length;
        // Producers take turns first, so no one is always ahead at the shard.
        let mut order: Vec<usize> = (0..producers.len()).collect();
        while now < end {
            now += step;
            let first = (rng.next() % order.len() as u64) as usize;
            order.rotate_left(first);
            for &i in &order {
                let p = &mut producers[i];
                if now < p.starts {
                    continue;
                }
                while p.answers.front().is_some_and(|a| a.0 <= now) {
                    let Some((_, throttled)) = p.answers.pop_front() else {
                        break;
                    };
                    p.limiter.observe(throttled, now);
                }
                while p.wire.front().is_some_and(|w| w.0 <= now) {
                    let Some((_, size)) = p.wire.pop_front() else {
                        break;
                    };
                    let ok = shard.admit(size, now);
                    if now >= measured_from {
                        if ok {
                            p.accepted += 1;
                            p.accepted_bytes += size as u64;
                        } else {
                            p.throttled += 1;
                        }
                    }
                    // A local round trip: 1-3 ms back.
                    let back = Duration::from_micros(1_000 + rng.next() % 2_000);
                    p.answers.push_back((now + back, !ok));
                }
                while p.limiter.wait(now).is_zero() {
                    let size = self.record_size - (rng.next() % 64) as usize;
                    p.limiter.take(size, now);
                    p.batch.push(size);
                    if p.batch_since.is_none() {
                        // Timers and scheduling make each flush a few milliseconds late.
                        p.batch_since = Some(now + Duration::from_micros(rng.next() % 5_000));
                    }
                }
                if p.batch_since.is_some_and(|t| now >= t + buffered) {
                    p.batch_since = None;
                    let arrive = now + Duration::from_micros(500 + rng.next() % 1_500);
                    for size in p.batch.drain(..) {
                        p.wire.push_back((arrive, size));
                    }
                }
            }
        }
        let secs = (end - measured_from).as_secs_f64();
        let limit = SHARD_BYTES_PER_SEC * self.shard_scale;
        let sent: u64 = producers.iter().map(|p| p.accepted + p.throttled).sum();
        let throttled: u64 = producers.iter().map(|p| p.throttled).sum();
        let accepted: u64 = producers.iter().map(|p| p.accepted).sum();
        Outcome {
            records: accepted as f64 / secs / (SHARD_RECORDS_PER_SEC * self.shard_scale),
            shares: producers
                .iter()
                .map(|p| p.accepted_bytes as f64 / secs / limit)
                .collect(),
            throttled: throttled as f64 / sent.max(1) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_producer_uses_the_shard_with_few_throttles() {
        for seed in 0..4 {
            let mut run = Run::producers(1, seed);
            run.length = Duration::from_secs(20);
            run.warm_up = Duration::ZERO;
            let o = run.simulate();
            assert!(o.total() >= 0.97, "seed {seed}: {o:?}");
            assert!(o.throttled < 0.02, "seed {seed}: {o:?}");
        }
    }

    #[test]
    fn a_hundred_record_limited_shards_each_use_their_limit_with_few_throttles() {
        // Shards do not share a limit, and each has its own controller: a hundred shards
        // under a uniform key spread are a hundred independent runs, each with its own
        // luck (seed).
        let mut least = f64::MAX;
        let (mut throttled, mut n) = (0.0, 0.0);
        for seed in 0..100 {
            let mut run = Run::unaggregated(seed);
            run.length = Duration::from_secs(20);
            run.warm_up = Duration::ZERO;
            let o = run.simulate();
            assert!(o.total() < 0.2, "the bytes do not bind: {o:?}");
            least = least.min(o.records);
            throttled += o.throttled;
            n += 1.0;
            assert!(o.throttled < 0.02, "seed {seed}: {o:?}");
        }
        assert!(least >= 0.97, "the least used shard: {least}");
        assert!(throttled / n < 0.01, "{}", throttled / n);
    }

    #[test]
    fn two_producers_split_a_shard_without_a_storm() {
        let mut shares = [0.0, 0.0];
        let seeds = 0..8;
        for seed in seeds.clone() {
            let mut run = Run::producers(2, seed);
            run.length = Duration::from_secs(120);
            run.warm_up = Duration::from_secs(20);
            let o = run.simulate();
            assert!(o.total() >= 0.95, "seed {seed}: {o:?}");
            assert!(o.throttled < 0.05, "seed {seed}: {o:?}");
            for (sum, share) in shares.iter_mut().zip(&o.shares) {
                assert!(*share > 0.3, "seed {seed}: neither starves: {o:?}");
                *sum += share / 8.0;
            }
        }
        assert!((shares[0] - shares[1]).abs() < 0.05, "{shares:?}");
    }

    #[test]
    fn a_producer_joining_a_busy_shard_gets_its_share() {
        let mut run = Run::producers(2, 9);
        run.starts[1] = Duration::from_secs(10);
        run.warm_up = Duration::from_secs(20);
        let o = run.simulate();
        assert!(o.total() >= 0.95, "{o:?}");
        assert!(o.throttled < 0.03, "{o:?}");
        assert!(o.shares.iter().all(|s| *s > 0.4), "{o:?}");
    }
}
