//! How fast one shard may be written: a controller that converges on the rate the shard
//! actually accepts, instead of the KPL's fixed 150 % of the shard limit
//! (docs/kpl-rate.md).
//!
//! The rate is a factor of the shard's nominal limit (1,000 records/s and 1 MiB/s). It
//! starts at 1.0, since the producer knows the limit, and moves as AIMD flows do, which is
//! what makes producers sharing a shard converge to even shares:
//!
//! * **Throttle episodes.** The first throttle after a quiet spell cuts the rate at once,
//!   by `LIMIT_CUT` at or above the limit (a lone producer's shard refills its burst while
//!   the rate climbs back) or `SHARED_CUT` below it (the shard is shared), and opens an
//!   episode: the throttles that follow within it, until `EPISODE_ANSWERS` records were
//!   answered or `EPISODE_TIME` passed, and for `CUT_SETTLING` after, are about the same
//!   overload and cut no further. The cut does not depend on how many records were
//!   refused: producers sharing a shard see that share differ by luck (whose record meets
//!   the empty budget), and a fixed step keeps the luck out of their rates. No growth
//!   during an episode.
//! * **Additive growth** while saturated (records wait for the limiter): `STEADY_GROWTH` of
//!   the limit a second below it, equal for every producer, so the smaller catch up.
//! * **Above the limit** it grows by `ABOVE_LIMIT_GROWTH` a second, and keeps account of
//!   how much it sent beyond the limit since the last throttle: once that exceeds the
//!   shard's one second of burst (`PROBE_AFTER`), the shard evidently takes more (limits
//!   off, an emulator) and the rate grows e-fold a second, up to `RateLimit`.
//!
//! Pure: every call takes `now`.

use std::time::{Duration, Instant};

/// The lowest factor: a shard throttled by a crowd still gets some traffic through.
pub const FLOOR: f64 = 0.05;
/// Answers that close a throttle episode.
pub const EPISODE_ANSWERS: u64 = 10;
/// The longest a throttle episode lasts, however few answers came.
pub const EPISODE_TIME: Duration = Duration::from_millis(500);
/// After a cut, answers to records sent before it took effect say nothing new: no episode
/// opens within this time (a batch's buffering and round trip).
pub const CUT_SETTLING: Duration = Duration::from_millis(300);
/// The cut of an episode at or above the limit: the burst of a lone producer's shard
/// refills while the rate climbs back.
pub const LIMIT_CUT: f64 = 0.75;
/// The cut of an episode below the limit, where the shard is shared.
pub const SHARED_CUT: f64 = 0.9;
/// Growth per second of saturation below the limit: +2 % of the limit.
pub const STEADY_GROWTH: f64 = 0.02;
/// Growth per second of saturation at or above the limit until the shard proved it takes
/// more: +2 %, so a lone producer spends a shard's one-second burst in about ten seconds.
pub const ABOVE_LIMIT_GROWTH: f64 = 0.02;
/// Seconds of the limit sent beyond it, unthrottled, that prove the shard takes more: more
/// than the one second of burst a shard at the service's limits has.
pub const PROBE_AFTER: f64 = 1.5;
/// Growth per second once the shard proved it takes more (e-fold a second).
pub const PROBE_GROWTH: f64 = 1.0;
/// Saturation is judged over this window: the limiter made records wait within it.
pub const SATURATION_WINDOW: Duration = Duration::from_millis(250);

/// An open throttle episode: when it began, and records answered since.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Episode {
    began: Instant,
    answered: u64,
}

/// The rate controller of one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct RateController {
    factor: f64,
    ceiling: f64,
    episode: Option<Episode>,
    last_cut: Option<Instant>,
    /// Seconds of the shard limit sent beyond it since the last throttle, net of idle time.
    beyond: f64,
    last_wait: Option<Instant>,
    last_update: Instant,
    throttles: u64,
    accepted: u64,
}

impl RateController {
    /// A controller whose factor never exceeds `ceiling` (`RateLimit` / 100).
    pub fn new(ceiling: f64, now: Instant) -> Self {
        // A RateLimit below the floor is the user's to set: it wins.
        let ceiling = if ceiling > 0.0 { ceiling } else { FLOOR };
        RateController {
            factor: ceiling.min(1.0),
            ceiling,
            episode: None,
            last_cut: None,
            beyond: 0.0,
            last_wait: None,
            last_update: now,
            throttles: 0,
            accepted: 0,
        }
    }

    /// The factor of the shard limit to send at now.
    pub fn factor(&mut self, now: Instant) -> f64 {
        self.grow(now);
        self.close_episode(now);
        self.factor
    }

    /// The limiter made a record wait at `now`: the shard is saturated.
    pub fn saturated(&mut self, now: Instant) {
        self.grow(now);
        self.last_wait = Some(now);
    }

    /// One Kinesis record of this shard was accepted (`throttled` false) or refused with
    /// `ProvisionedThroughputExceededException`.
    pub fn observe(&mut self, throttled: bool, now: Instant) {
        self.grow(now);
        if throttled {
            self.throttles += 1;
            // The shard's burst is spent: what went beyond the limit did not go unnoticed.
            self.beyond = 0.0;
        } else {
            self.accepted += 1;
        }
        let settling = self
            .last_cut
            .is_some_and(|t| now.saturating_duration_since(t) < CUT_SETTLING);
        match &mut self.episode {
            _ if settling => {}
            Some(e) => {
                e.answered += 1;
            }
            None if throttled => {
                // Cut at once, so a storm is answered within a round trip; the answers
                // that follow within the episode are about the same overload.
                let mild = self.mildest_cut();
                self.episode = Some(Episode {
                    began: now,
                    answered: 1,
                });
                self.factor = (self.factor * mild).max(FLOOR.min(self.ceiling));
            }
            None => {}
        }
        self.close_episode(now);
    }

    /// Throttled and accepted Kinesis records seen so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.throttles, self.accepted)
    }

    /// End the episode once it has enough answers or time.
    fn close_episode(&mut self, now: Instant) {
        let Some(e) = self.episode else {
            return;
        };
        if e.answered < EPISODE_ANSWERS && now.saturating_duration_since(e.began) < EPISODE_TIME {
            return;
        }
        self.episode = None;
        let ended = if e.answered >= EPISODE_ANSWERS {
            now
        } else {
            e.began + EPISODE_TIME
        };
        self.last_cut = Some(ended);
    }

    /// The cut of a throttle episode: deeper at or above the limit, where the shard's burst
    /// should refill while the rate climbs back.
    fn mildest_cut(&self) -> f64 {
        if self.factor >= 1.0 {
            LIMIT_CUT
        } else {
            SHARED_CUT
        }
    }

    /// Grow for the saturated time since the last update.
    fn grow(&mut self, now: Instant) {
        self.close_episode(now);
        let since = now.saturating_duration_since(self.last_update);
        self.last_update = self.last_update.max(now);
        if since.is_zero() {
            return;
        }
        let saturated = self
            .last_wait
            .is_some_and(|t| now.saturating_duration_since(t) <= SATURATION_WINDOW);
        let dt = since.as_secs_f64().min(SATURATION_WINDOW.as_secs_f64());
        // Seconds of the shard's limit sent beyond it: what the shard's burst had to cover.
        // Time not saturated lets the burst refill at the limit at least.
        let over = if saturated { self.factor - 1.0 } else { -1.0 };
        self.beyond = (self.beyond + over * dt).max(0.0);
        if !saturated || self.episode.is_some() {
            return;
        }
        self.factor = if self.factor < 1.0 {
            (self.factor + STEADY_GROWTH * dt).min(1.0)
        } else if self.beyond < PROBE_AFTER {
            self.factor + ABOVE_LIMIT_GROWTH * dt
        } else {
            // More than the shard's burst went beyond its limit unthrottled: this shard
            // takes more than the service's limit.
            self.factor * (1.0 + PROBE_GROWTH * dt)
        }
        .min(self.ceiling);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drive a controller saturated for `secs`, every 10 ms.
    fn saturate(c: &mut RateController, from: Instant, secs: u64) -> Instant {
        let mut t = from;
        for _ in 0..secs * 100 {
            t += ms(10);
            c.saturated(t);
        }
        t
    }

    /// `refused` throttled then `accepted` accepted answers at `t`.
    fn answers(c: &mut RateController, t: Instant, refused: u64, accepted: u64) {
        for _ in 0..refused {
            c.observe(true, t);
        }
        for _ in 0..accepted {
            c.observe(false, t);
        }
    }

    #[test]
    fn starts_at_the_shard_limit_below_a_higher_ceiling() {
        let t0 = Instant::now();
        assert_eq!(RateController::new(1.5, t0).factor(t0), 1.0);
        assert_eq!(RateController::new(0.5, t0).factor(t0), 0.5);
        assert_eq!(RateController::new(0.01, t0).factor(t0), 0.01);
        assert_eq!(RateController::new(0.0, t0).factor(t0), FLOOR);
    }

    #[test]
    fn an_idle_shard_does_not_grow() {
        let t0 = Instant::now();
        let mut c = RateController::new(10.0, t0);
        assert_eq!(c.factor(t0 + Duration::from_secs(60)), 1.0);
    }

    #[test]
    fn above_the_limit_it_grows_slowly_until_more_than_the_burst_went_through() {
        let t0 = Instant::now();
        let mut c = RateController::new(100.0, t0);
        let t = saturate(&mut c, t0, 5);
        let f = c.factor(t);
        assert!(f > 1.09 && f < 1.11, "2 % a second: {f}");
        // 1.5 s beyond the limit after about 12 s: then e-fold a second, up to RateLimit.
        let t = saturate(&mut c, t, 15);
        assert_eq!(c.factor(t), 100.0);
    }

    #[test]
    fn an_episode_is_one_cut_however_many_records_were_refused() {
        let t0 = Instant::now();
        let mut c = RateController::new(1.5, t0);
        answers(&mut c, t0, 9, 30);
        assert_eq!(c.factor(t0), LIMIT_CUT, "at the limit");
        assert_eq!(c.counts(), (9, 30));
        // Answers just after a cut are about records sent before it.
        answers(&mut c, t0 + ms(100), 5, 5);
        assert_eq!(c.factor(t0 + ms(100)), LIMIT_CUT, "settling");
        let t1 = t0 + CUT_SETTLING;
        answers(&mut c, t1, 1, 0);
        let below = LIMIT_CUT * SHARED_CUT;
        assert!(
            (c.factor(t1) - below).abs() < 1e-9,
            "below the limit, milder"
        );
        // An episode with few answers ends after its time, then settles.
        answers(&mut c, t1 + ms(499), 3, 0);
        assert!(
            (c.factor(t1 + ms(499)) - below).abs() < 1e-9,
            "still the same episode"
        );
        assert!(
            (c.factor(t1 + EPISODE_TIME) - below).abs() < 1e-9,
            "ended, no cut"
        );
        let t2 = t1 + EPISODE_TIME + CUT_SETTLING;
        answers(&mut c, t2, 1, 0);
        assert!(
            (c.factor(t2) - below * SHARED_CUT).abs() < 1e-9,
            "a new episode"
        );
    }

    #[test]
    fn it_grows_additively_but_not_while_throttled() {
        let t0 = Instant::now();
        let mut c = RateController::new(1.5, t0);
        c.observe(true, t0);
        let t = saturate(&mut c, t0, 10);
        let f = c.factor(t);
        // Held for the episode's half second, then 2 % of the limit a second.
        let expected = LIMIT_CUT + 9.5 * STEADY_GROWTH;
        assert!((f - expected).abs() < 0.005, "{f}");
        c.observe(true, t);
        let open = f * SHARED_CUT;
        let t1 = t + ms(400);
        let mut now = t;
        while now < t1 {
            now += ms(10);
            c.saturated(now);
        }
        assert!(
            (c.factor(t1) - open).abs() < 1e-9,
            "held while the episode is open"
        );
        let t2 = saturate(&mut c, t1, 1);
        assert!(c.factor(t2) > open, "growing again");
    }

    #[test]
    fn never_below_the_floor() {
        let t0 = Instant::now();
        let mut c = RateController::new(1.0, t0);
        for i in 0..200 {
            answers(&mut c, t0 + CUT_SETTLING * i, EPISODE_ANSWERS, 0);
        }
        assert_eq!(c.factor(t0 + CUT_SETTLING * 200), FLOOR);
    }
}
