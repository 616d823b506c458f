//! Shard maps: a `ListShards` answer becomes the stream's routing, moving the records of
//! shards that closed and deciding the records put on shards the previous map did not know.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kinesis_proto::model::Shard as WireShard;

use super::schedule::{Schedule, Target, UNROUTED};
use super::{Pipeline, ShardState};
use crate::config::Ordering;
use crate::handle::PutResult;
use crate::limiter::ShardLimiter;
use crate::record::UserRecord;
use crate::retrier::{Decision, confirm_aggregates};
use crate::shard_map::ShardMap;

impl Pipeline {
    /// A `ListShards` for stream `stream` answered (`Err`: it failed).
    pub(crate) fn on_map(
        &mut self,
        stream: usize,
        shards: Result<Vec<WireShard>, String>,
        now: Instant,
    ) {
        self.next_map_version += 1;
        let version = self.next_map_version;
        let map = shards.and_then(|s| ShardMap::from_shards(version, &s));
        let st = &mut self.streams[stream];
        match map {
            Ok(map) => {
                let map = Arc::new(map);
                st.map.refreshed(Arc::clone(&map));
                // Under per-key ordering even the first map waits: records sent unrouted
                // before it may still be retried.
                if self.config.ordering == Ordering::PerPartitionKey {
                    st.pending_map = Some(map);
                    self.try_apply_pending(stream, now);
                } else {
                    self.apply_map(stream, map, now);
                }
            }
            Err(e) => {
                tracing::warn!(stream = %st.name, error = %e, "ListShards failed");
                st.map.refresh_failed(now);
                // Without a newer map, landings on unknown shards cannot be confirmed.
                let undecided = std::mem::take(&mut st.undecided);
                self.decide(stream, undecided, None, now);
                self.mark_shard(stream, UNROUTED);
            }
        }
        self.mark(Target::Refresh(stream as u32));
    }

    /// Confirms undecided records with `map`, retrying those on the wrong shard.
    pub(super) fn decide(
        &mut self,
        stream: usize,
        undecided: Vec<(UserRecord, PutResult)>,
        map: Option<&ShardMap>,
        now: Instant,
    ) {
        let mut retries = Vec::new();
        for decision in confirm_aggregates(undecided, map) {
            match decision {
                Decision::Put(rec, result) => self.confirmed.push((rec, result)),
                Decision::WrongShard(rec, shard) => {
                    self.wrong_shard.push((Arc::clone(&rec.stream), shard));
                    retries.push(rec);
                }
            }
        }
        self.schedule_retries(stream, retries, now);
    }

    pub(super) fn try_apply_pending(&mut self, stream: usize, now: Instant) {
        let st = &self.streams[stream];
        if st.in_flight == 0
            && st.collector.is_empty()
            && let Some(map) = self.streams[stream].pending_map.take()
        {
            self.apply_map(stream, map, now);
        }
    }

    /// Routes with `map` from now on, moving the records of shards that closed.
    fn apply_map(&mut self, stream: usize, map: Arc<ShardMap>, now: Instant) {
        let rate_limit = self.config.rate_limit;
        let st = &mut self.streams[stream];
        let previous = st.routing.take();
        let mut old: HashMap<Arc<str>, ShardState> = st
            .shards
            .drain(..)
            .filter_map(|s| Some((s.id.clone()?, s)))
            .collect();
        let mut displaced = st.unrouted.buffer.drain();
        let mut shards = Vec::with_capacity(map.shards().len());
        for m in map.shards() {
            // A shard is kept only if it still owns the same keys (ids are never reused, but
            // an emulator might).
            let same = previous.as_ref().and_then(|p| p.range_of(&m.id)) == Some(m.range);
            match old.remove(&m.id) {
                Some(mut kept) if same => {
                    kept.schedule = Schedule::default();
                    shards.push(kept);
                    continue;
                }
                Some(mut gone) => displaced.extend(gone.buffer.drain()),
                None => {}
            }
            let limiter = if self.config.adaptive_rate {
                ShardLimiter::adaptive(rate_limit, now)
            } else {
                ShardLimiter::new(rate_limit, now)
            };
            shards.push(ShardState::new(Some(Arc::clone(&m.id)), Some(limiter)));
        }
        st.shards = shards;
        for (_, mut gone) in old {
            displaced.extend(gone.buffer.drain());
        }
        st.routing = Some(Arc::clone(&map));
        st.generation = st.generation.wrapping_add(1);
        let undecided = std::mem::take(&mut st.undecided);
        displaced.sort_by_key(|r| r.seq);
        let mut by_slot: HashMap<u32, Vec<UserRecord>> = HashMap::new();
        for rec in displaced {
            let slot = self.route(stream, rec.hash_key);
            by_slot.entry(slot).or_default().push(rec);
        }
        for (slot, recs) in by_slot {
            self.shard_mut(stream, slot).buffer.merge_front(recs);
        }
        for slot in 0..self.streams[stream].shards.len() {
            self.mark_shard(stream, slot as u32);
        }
        self.mark_shard(stream, UNROUTED);
        self.decide(stream, undecided, Some(&map), now);
    }
}
