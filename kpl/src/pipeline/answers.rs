//! Answers: what a PutRecords outcome changes (limiters, per-key gates, stale maps,
//! undecided records, retries).

use std::sync::Arc;
use std::time::Instant;

use super::schedule::{Target, UNROUTED};
use super::{Done, Pipeline, SPARE_VECTORS};
use crate::config::Ordering;

impl Pipeline {
    /// A request's outcome came back.
    pub(crate) fn on_done(&mut self, mut done: Done, now: Instant) {
        let stream = done.stream;
        let room = SPARE_VECTORS.saturating_sub(self.spare.len());
        done.spare.truncate(room);
        self.spare.append(&mut done.spare);
        self.in_flight -= 1;
        self.streams[stream].in_flight -= 1;
        if let Some(version) = done.invalidate {
            self.streams[stream].map.invalidate(version, now);
            self.mark(Target::Refresh(stream as u32));
        }
        self.feed_limiters(stream, &done.shards, &done.throttled, now);
        let ordered = self.config.ordering == Ordering::PerPartitionKey;
        if ordered {
            for shard in done.shards {
                self.release(stream, shard.as_deref());
            }
        }
        if !done.undecided.is_empty() {
            let st = &mut self.streams[stream];
            let current = st.routing.as_ref().map_or(0, |m| m.version());
            if done.invalidate.is_some_and(|v| current > v) {
                // A newer map arrived while the request was in flight: decide now.
                let map = st.routing.clone();
                self.decide(stream, done.undecided, map.as_deref(), now);
            } else {
                st.undecided.extend(done.undecided);
            }
        }
        self.schedule_retries(stream, done.retries, now);
        if ordered {
            self.try_apply_pending(stream, now);
        }
    }

    /// Tells each shard's limiter what its Kinesis records met.
    fn feed_limiters(
        &mut self,
        stream: usize,
        shards: &[Option<Arc<str>>],
        throttled: &[Option<bool>],
        now: Instant,
    ) {
        let st = &mut self.streams[stream];
        for (shard, throttled) in shards.iter().zip(throttled) {
            let (Some(id), Some(throttled)) = (shard, throttled) else {
                continue;
            };
            if let Some(limiter) = st
                .shards
                .iter_mut()
                .find(|s| s.id.as_deref() == Some(&**id))
                .and_then(|s| s.limiter.as_mut())
            {
                limiter.observe(*throttled, now);
            }
        }
    }

    /// Reopens the gate of the shard with this id (per-key ordering).
    pub(super) fn release(&mut self, stream: usize, shard: Option<&str>) {
        let st = &self.streams[stream];
        let slot = match shard {
            None => UNROUTED,
            Some(id) => match st.shards.iter().position(|s| s.id.as_deref() == Some(id)) {
                Some(i) => i as u32,
                None => return,
            },
        };
        self.shard_mut(stream, slot).busy = false;
        self.mark_shard(stream, slot);
    }
}
