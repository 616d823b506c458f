//! The deterministic token bucket every limit is built from, and the
//! [`Nanos`] clock callers pass it.

use std::ops::Add;
use std::time::{Duration, Instant};

/// Pico-tokens per token: the bucket's fixed-point scale.
const PICO: i128 = 1_000_000_000_000;

/// Rates at or above this many tokens/s are treated as unlimited; it keeps the
/// fixed-point arithmetic far from overflow.
const UNLIMITED_RATE: f64 = 1e15;

/// A point in time: nanoseconds since an origin the caller fixes (broker start in
/// production, zero in simulations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Nanos(pub u64);

impl Nanos {
    /// The origin.
    pub const ZERO: Nanos = Nanos(0);

    /// `secs` seconds after the origin.
    pub const fn from_secs(secs: u64) -> Nanos {
        Nanos(secs.saturating_mul(1_000_000_000))
    }

    /// `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Nanos {
        Nanos(millis.saturating_mul(1_000_000))
    }

    /// `d` after the origin, saturating at `u64::MAX` nanoseconds (~584 years).
    pub fn from_duration(d: Duration) -> Nanos {
        Nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The time of `at` measured from `origin` (zero if `at` is earlier).
    pub fn since(origin: Instant, at: Instant) -> Nanos {
        Nanos::from_duration(at.saturating_duration_since(origin))
    }

    /// The time since the origin as a `Duration`.
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_since(self, earlier: Nanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Nanos {
    type Output = Nanos;

    fn add(self, rhs: Duration) -> Nanos {
        Nanos(self.0.saturating_add(Nanos::from_duration(rhs).0))
    }
}

fn duration_nanos(d: Duration) -> i128 {
    // Duration::as_nanos is u128 but never exceeds ~1.8e28, which fits i128.
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// A token bucket that may also run into bounded debt.
///
/// It starts full. Tokens refill continuously at `refill_per_sec` up to
/// `capacity` (= rate × burst). [`try_take`](Self::try_take) takes only what is
/// there; [`take_or_debt`](Self::take_or_debt) always takes and may leave the
/// level negative, down to −(rate × max debt), so later callers wait until the
/// debt is repaid. Time running backwards is treated as no time passing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Refill rate in milli-tokens per second, i.e. pico-tokens per nanosecond.
    rate: i128,
    /// Largest level, in pico-tokens.
    capacity: i128,
    /// Lowest level `take_or_debt` may leave, in pico-tokens (≤ 0).
    floor: i128,
    /// Level at `last`, in pico-tokens.
    tokens: i128,
    /// When `tokens` was last brought up to date.
    last: Nanos,
    /// Admits everything; the `off` profile.
    unlimited: bool,
}

impl TokenBucket {
    /// A full bucket refilling at `refill_per_sec` that holds `burst` worth of refill.
    ///
    /// An infinite (or ≥ 1e15) rate gives an unlimited bucket; zero, negative
    /// or NaN gives one that never refills.
    pub fn new(refill_per_sec: f64, burst: Duration, now: Nanos) -> TokenBucket {
        if refill_per_sec >= UNLIMITED_RATE {
            return TokenBucket::unlimited(now);
        }
        let rate = if refill_per_sec > 0.0 {
            // Rounded to a thousandth of a token per second; exact for every
            // profile the CLI can express with up to three decimals.
            (refill_per_sec * 1000.0).round() as i128
        } else {
            0
        };
        let capacity = rate.saturating_mul(duration_nanos(burst));
        TokenBucket {
            rate,
            capacity,
            floor: 0,
            tokens: capacity,
            last: now,
            unlimited: false,
        }
    }

    /// A bucket that admits everything.
    pub fn unlimited(now: Nanos) -> TokenBucket {
        TokenBucket {
            rate: 0,
            capacity: 0,
            floor: 0,
            tokens: 0,
            last: now,
            unlimited: true,
        }
    }

    /// Allow [`take_or_debt`](Self::take_or_debt) to borrow up to `max_debt` of future refill.
    pub fn with_max_debt(mut self, max_debt: Duration) -> TokenBucket {
        self.floor = -self.rate.saturating_mul(duration_nanos(max_debt));
        self
    }

    /// Whether this bucket admits everything.
    pub fn is_unlimited(&self) -> bool {
        self.unlimited
    }

    /// Largest number of tokens the bucket holds (infinite when unlimited).
    pub fn capacity(&self) -> f64 {
        if self.unlimited {
            f64::INFINITY
        } else {
            self.capacity as f64 / PICO as f64
        }
    }

    /// Tokens added per second (infinite when unlimited).
    pub fn refill_per_sec(&self) -> f64 {
        if self.unlimited {
            f64::INFINITY
        } else {
            self.rate as f64 / 1000.0
        }
    }

    /// When the level was last brought up to date.
    pub fn last(&self) -> Nanos {
        self.last
    }

    /// Tokens available at `now`; negative while in debt, infinite when unlimited.
    pub fn tokens(&self, now: Nanos) -> f64 {
        if self.unlimited {
            f64::INFINITY
        } else {
            self.level_at(now) as f64 / PICO as f64
        }
    }

    /// Whole tokens available at `now` (0 while in debt, `u64::MAX` when unlimited).
    pub fn available(&self, now: Nanos) -> u64 {
        if self.unlimited {
            return u64::MAX;
        }
        u64::try_from(self.level_at(now).max(0) / PICO).unwrap_or(u64::MAX)
    }

    /// Whether the bucket is full at `now` (always true when unlimited).
    pub fn is_full(&self, now: Nanos) -> bool {
        self.unlimited || self.level_at(now) >= self.capacity
    }

    /// Take `amount` tokens if they are all there; otherwise take nothing.
    ///
    /// An amount above the capacity is never admitted; see [`take_or_debt`](Self::take_or_debt).
    pub fn try_take(&mut self, amount: u64, now: Nanos) -> bool {
        if self.unlimited {
            return true;
        }
        self.refill(now);
        let need = i128::from(amount) * PICO;
        if self.tokens >= need {
            self.tokens -= need;
            true
        } else {
            false
        }
    }

    /// Take `amount` tokens even if that leaves the bucket in debt (down to the
    /// floor set by [`with_max_debt`](Self::with_max_debt)); returns whether the
    /// amount was covered without debt.
    pub fn take_or_debt(&mut self, amount: u64, now: Nanos) -> bool {
        if self.unlimited {
            return true;
        }
        self.refill(now);
        let need = i128::from(amount) * PICO;
        let covered = self.tokens >= need;
        self.tokens = (self.tokens - need).max(self.floor.min(self.tokens));
        covered
    }

    /// How long from `now` until `amount` tokens are there (zero if they are).
    ///
    /// For an amount above the capacity this is the time until the bucket is
    /// full; `time_until(0, now)` is the time until any debt is repaid. A bucket
    /// that never refills answers `Duration::MAX`.
    pub fn time_until(&self, amount: u64, now: Nanos) -> Duration {
        if self.unlimited {
            return Duration::ZERO;
        }
        let need = i128::from(amount) * PICO;
        let level = self.level_at(now);
        if level >= need {
            return Duration::ZERO;
        }
        if self.rate == 0 {
            return Duration::MAX;
        }
        let deficit = need.min(self.capacity) - level;
        if deficit <= 0 {
            return Duration::ZERO;
        }
        // Round up so that waiting exactly this long is always enough.
        let nanos = (deficit + self.rate - 1) / self.rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn level_at(&self, now: Nanos) -> i128 {
        let elapsed = i128::from(now.0.saturating_sub(self.last.0));
        let refilled = self
            .tokens
            .saturating_add(self.rate.saturating_mul(elapsed));
        refilled.min(self.capacity.max(self.tokens))
    }

    fn refill(&mut self, now: Nanos) {
        self.tokens = self.level_at(now);
        self.last = self.last.max(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Nanos {
        Nanos::from_millis(n)
    }

    #[test]
    fn bucket_starts_full_refills_and_caps() {
        let mut b = TokenBucket::new(10.0, Duration::from_secs(1), Nanos::ZERO);
        assert_eq!(b.capacity(), 10.0);
        assert!(b.try_take(10, Nanos::ZERO));
        assert!(!b.try_take(1, Nanos::ZERO));
        assert_eq!(b.time_until(1, Nanos::ZERO), Duration::from_millis(100));
        assert!(b.try_take(1, ms(100)));
        assert_eq!(b.tokens(Nanos::from_secs(100)), 10.0);
        assert!(!b.try_take(11, Nanos::from_secs(100)));
    }

    #[test]
    fn bucket_debt_is_floored_and_repaid() {
        let mut b = TokenBucket::new(100.0, Duration::from_secs(1), Nanos::ZERO)
            .with_max_debt(Duration::from_secs(2));
        assert!(!b.take_or_debt(1000, Nanos::ZERO));
        assert_eq!(b.tokens(Nanos::ZERO), -200.0);
        assert_eq!(b.time_until(0, Nanos::ZERO), Duration::from_secs(2));
        assert!(!b.try_take(0, ms(1999)));
        assert!(b.try_take(0, ms(2000)));
    }

    #[test]
    fn bucket_ignores_time_going_backwards() {
        let mut b = TokenBucket::new(1.0, Duration::from_secs(1), Nanos::from_secs(10));
        assert!(b.try_take(1, Nanos::from_secs(10)));
        assert!(!b.try_take(1, Nanos::from_secs(5)));
        assert_eq!(b.last(), Nanos::from_secs(10));
        assert!(b.try_take(1, Nanos::from_secs(11)));
    }

    #[test]
    fn zero_rate_never_refills() {
        let mut b = TokenBucket::new(0.0, Duration::from_secs(1), Nanos::ZERO);
        assert!(!b.try_take(1, Nanos::from_secs(1000)));
        assert_eq!(b.time_until(1, Nanos::ZERO), Duration::MAX);
    }

    #[test]
    fn nanos_helpers() {
        let origin = Instant::now();
        assert_eq!(
            Nanos::since(origin, origin + Duration::from_millis(3)),
            ms(3)
        );
        assert_eq!(
            Nanos::since(origin + Duration::from_secs(1), origin),
            Nanos::ZERO
        );
        assert_eq!(
            ms(1500).saturating_since(Nanos::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(Nanos::ZERO + Duration::from_secs(2), Nanos::from_secs(2));
    }
}
