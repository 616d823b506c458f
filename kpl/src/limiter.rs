//! Per-shard client-side rate limit: token buckets for records and bytes at `RateLimit` % of
//! Kinesis's 1000 records/s and 1 MiB/s, with a one-second burst (the KPL's limiter).
//!
//! A Kinesis record may be sent when both buckets hold a positive level; sending takes its
//! count and size even into debt, so an aggregate larger than what is left (or than the whole
//! burst, at a low `RateLimit`) still goes, and the shard then waits until the debt is repaid.
//!
//! With an adaptive rate the buckets follow a [`RateController`]: their rate is the shard
//! limit times its factor, and the limiter tells it when records wait (saturation) and
//! what each sent record met (accepted or throttled).
//!
//! Pure: the caller passes `now`.

use crate::config::{SHARD_BYTES_PER_SEC, SHARD_RECORDS_PER_SEC};
use crate::rate_controller::RateController;
use std::time::{Duration, Instant};

/// A token bucket: refills at `rate` per second up to `capacity`, may run into debt.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    rate: f64,
    /// Seconds of `rate` the bucket holds when full.
    burst: f64,
    capacity: f64,
    level: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` per second, holding at most one second's worth.
    pub fn new(rate: f64, now: Instant) -> Self {
        Self::with_burst(rate, 1.0, now)
    }

    /// A full bucket refilling at `rate` per second, holding `burst` seconds' worth.
    pub fn with_burst(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            capacity: rate * burst,
            level: rate * burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // Time running backwards counts as no time passing.
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + dt * self.rate).min(self.capacity);
        self.last = self.last.max(now);
    }

    /// The level at `now`.
    pub fn level(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.level
    }

    /// How long until the level is at least `need` (zero if it already is).
    pub fn wait(&mut self, need: f64, now: Instant) -> Duration {
        self.refill(now);
        if self.level >= need {
            Duration::ZERO
        } else {
            // Rounded up so that waking at `now + wait` finds the level reached.
            Duration::from_secs_f64((need - self.level) / self.rate) + Duration::from_micros(1)
        }
    }

    /// Takes `n` tokens, possibly leaving the level negative.
    pub fn take(&mut self, n: f64, now: Instant) {
        self.refill(now);
        self.level -= n;
    }

    /// Refill at `rate` from `now` on (the same seconds of burst), keeping the level.
    pub fn set_rate(&mut self, rate: f64, now: Instant) {
        self.refill(now);
        self.rate = rate;
        self.capacity = rate * self.burst;
        self.level = self.level.min(self.capacity);
    }
}

/// Seconds of burst of an adaptive shard's buckets.
pub const ADAPTIVE_BURST: f64 = 0.25;

/// The two buckets of one shard, and its rate controller when the rate adapts.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardLimiter {
    records: TokenBucket,
    bytes: TokenBucket,
    controller: Option<RateController>,
    factor: f64,
}

impl ShardLimiter {
    /// A limiter at a fixed `rate_limit` percent of a shard's write capacity, full at `now`.
    pub fn new(rate_limit: u64, now: Instant) -> Self {
        Self::with_factor(rate_limit as f64 / 100.0, None, now)
    }

    /// A limiter whose rate adapts, never above `rate_limit` percent.
    pub fn adaptive(rate_limit: u64, now: Instant) -> Self {
        let mut controller = RateController::new(rate_limit as f64 / 100.0, now);
        let factor = controller.factor(now);
        Self::with_factor(factor, Some(controller), now)
    }

    fn with_factor(factor: f64, controller: Option<RateController>, now: Instant) -> Self {
        // An adaptive shard sends smoothly: a second's burst from each of several
        // producers sharing a shard would arrive at once and be throttled together.
        let burst = if controller.is_some() {
            ADAPTIVE_BURST
        } else {
            1.0
        };
        ShardLimiter {
            records: TokenBucket::with_burst(SHARD_RECORDS_PER_SEC * factor, burst, now),
            bytes: TokenBucket::with_burst(SHARD_BYTES_PER_SEC * factor, burst, now),
            controller,
            factor,
        }
    }

    /// The rate in force, as a factor of the shard limit.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Follow the controller's factor, if it moved.
    fn follow(&mut self, now: Instant) {
        if let Some(c) = &mut self.controller {
            let factor = c.factor(now);
            if factor != self.factor {
                self.factor = factor;
                self.records.set_rate(SHARD_RECORDS_PER_SEC * factor, now);
                self.bytes.set_rate(SHARD_BYTES_PER_SEC * factor, now);
            }
        }
    }

    /// How long until a Kinesis record may be sent: zero when one record's worth of record
    /// tokens and any byte tokens are there.
    pub fn wait(&mut self, now: Instant) -> Duration {
        self.follow(now);
        // A tiny positive byte level is enough: the record itself may borrow the rest.
        let wait = self
            .records
            .wait(1.0, now)
            .max(self.bytes.wait(f64::MIN_POSITIVE, now));
        if !wait.is_zero()
            && let Some(c) = &mut self.controller
        {
            c.saturated(now);
        }
        wait
    }

    /// What a Kinesis record sent through this limiter met.
    pub fn observe(&mut self, throttled: bool, now: Instant) {
        if let Some(c) = &mut self.controller {
            c.observe(throttled, now);
        }
        self.follow(now);
    }

    /// Charges one Kinesis record of `size` bytes.
    pub fn take(&mut self, size: usize, now: Instant) {
        self.records.take(1.0, now);
        self.bytes.take(size as f64, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_refills_and_caps() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, t0);
        assert_eq!(b.level(t0), 100.0);
        b.take(150.0, t0);
        assert_eq!(b.level(t0), -50.0);
        assert_eq!(
            b.wait(0.0, t0),
            Duration::from_millis(500) + Duration::from_micros(1)
        );
        assert!((b.level(t0 + ms(600)) - 10.0).abs() < 1e-6);
        assert_eq!(b.level(t0 + ms(10_000)), 100.0);
        // A clock going backwards changes nothing.
        assert_eq!(b.level(t0), 100.0);
    }

    #[test]
    fn shard_limiter_paces_records_at_the_rate_limit() {
        let t0 = Instant::now();
        // 150 %: 1500 records/s. A full burst goes at once, then one per 2/3 ms.
        let mut l = ShardLimiter::new(150, t0);
        let mut now = t0;
        let mut sent = 0u32;
        while now < t0 + Duration::from_secs(2) {
            let w = l.wait(now);
            if w.is_zero() {
                l.take(10, now);
                sent += 1;
            } else {
                now += w;
            }
        }
        // 1500 burst + 2 s × 1500/s, give or take one.
        assert!((4499..=4501).contains(&sent), "{sent}");
    }

    #[test]
    fn bytes_bind_for_large_records_and_debt_is_repaid() {
        let t0 = Instant::now();
        let mut l = ShardLimiter::new(100, t0);
        // 1 MiB/s: a 600 KiB aggregate, then another goes into debt, then the shard waits.
        l.take(600 * 1024, t0);
        assert!(l.wait(t0).is_zero());
        l.take(600 * 1024, t0);
        let w = l.wait(t0);
        assert!(w > ms(170) && w < ms(180), "{w:?}");
        assert!(l.wait(t0 + w).is_zero());
        // At 1 % the burst (10 KiB) is smaller than one record: it still goes, then waits.
        let mut tiny = ShardLimiter::new(1, t0);
        tiny.take(1024 * 1024, t0);
        assert!(tiny.wait(t0) > Duration::from_secs(90));
    }
}
