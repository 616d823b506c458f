//! The producer's pipeline, without I/O: shard map → per-shard buffer and aggregator →
//! limiter → collector → (PutRecords, done by the caller) → retrier.
//!
//! [`Pipeline`] is driven by its owner with the current time: records come in through
//! [`Pipeline::accept`], answers through [`Pipeline::on_done`], shard maps through
//! [`Pipeline::on_map`]; [`Pipeline::poll`] says what to do now (requests to send, maps to
//! fetch, records that expired) and [`Pipeline::next_wakeup`] when to poll again. Work is
//! driven by a timer heap and a dirty list, so a poll touches only the shards that changed or
//! are due, never every shard.
//!
//! Per-key ordering ([`Ordering::PerPartitionKey`]): each shard has at most one Kinesis record
//! between its buffer and the answer (in the collector or in flight); a failed one goes back to
//! the front of its shard's buffer, which waits for its retry delay; and a new shard map is
//! applied only when the stream has nothing in flight, so that records of one key never travel
//! to two shards at once.

use crate::aggregator::{KinesisRecord, ShardBuffer};
use crate::collector::Collector;
use crate::config::{Config, Ordering};
use crate::error::RecordFailure;
use crate::handle::PutResult;
use crate::limiter::ShardLimiter;
use crate::record::UserRecord;
use crate::retrier::{Backoff, Decision, confirm_aggregates, expired};
use crate::shard_map::{ShardMap, ShardMapState};
use kinesis_proto::model::Shard as WireShard;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Instant;

/// A PutRecords request ready to be sent.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Unique per pipeline.
    pub(crate) id: u64,
    /// The stream's index in the pipeline.
    pub(crate) stream: usize,
    /// The stream's name.
    pub(crate) name: Arc<str>,
    /// The Kinesis records, at least one.
    pub(crate) records: Vec<KinesisRecord>,
    /// The map the records were routed with.
    pub(crate) map: Option<Arc<ShardMap>>,
}

/// A request's outcome as the pipeline needs it.
#[derive(Debug)]
pub(crate) struct Done {
    /// The stream's index.
    pub(crate) stream: usize,
    /// The predicted shard of each Kinesis record sent (releases per-key ordering gates).
    pub(crate) shards: Vec<Option<Arc<str>>>,
    /// Per Kinesis record sent, in the order of `shards`: `Some(true)` if the shard throttled
    /// it, `Some(false)` if it was accepted, `None` if the request told nothing of it.
    pub(crate) throttled: Vec<Option<bool>>,
    /// User records to send again.
    pub(crate) retries: Vec<UserRecord>,
    /// The version of the map found stale, if any.
    pub(crate) invalidate: Option<u64>,
    /// Put on shards that map did not know; decided with the next map.
    pub(crate) undecided: Vec<(UserRecord, PutResult)>,
}

/// What the owner should do after a poll.
#[derive(Debug, Default)]
pub(crate) struct Actions {
    /// Requests to send.
    pub(crate) batches: Vec<Batch>,
    /// Streams (index, name) whose shards to list.
    pub(crate) refresh: Vec<(usize, Arc<str>)>,
    /// Records that ran out of `RecordTtl` while waiting.
    pub(crate) expired: Vec<(UserRecord, RecordFailure)>,
    /// Records put on a shard the map did not know, now confirmed by a newer map.
    pub(crate) confirmed: Vec<(UserRecord, PutResult)>,
    /// Landing shards of records a newer map showed on the wrong shard (retried).
    pub(crate) wrong_shard: Vec<(Arc<str>, Arc<str>)>,
}

/// Something with its own schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Target {
    /// A shard buffer: `slot` indexes the stream's shards, [`UNROUTED`] is the no-map buffer;
    /// `generation` ties it to one map.
    Shard {
        stream: u32,
        slot: u32,
        generation: u32,
    },
    Collector(u32),
    Retry(u32),
    Refresh(u32),
}

/// The slot of the buffer for records no map routes.
const UNROUTED: u32 = u32::MAX;

/// One target's timer and dirty flag; the heap may hold stale entries, which are skipped.
#[derive(Debug, Default)]
struct Schedule {
    at: Option<Instant>,
    dirty: bool,
}

impl Schedule {
    /// Whether a heap entry for `t` must be pushed (nothing earlier is scheduled).
    fn want(&mut self, t: Instant) -> bool {
        if self.at.is_some_and(|at| at <= t) {
            return false;
        }
        self.at = Some(t);
        true
    }

    /// Whether the heap entry for `t` is the live one; if so it is consumed.
    fn fire(&mut self, t: Instant) -> bool {
        if self.at == Some(t) {
            self.at = None;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct ShardState {
    id: Option<Arc<str>>,
    buffer: ShardBuffer,
    limiter: Option<ShardLimiter>,
    /// Per-key ordering: a Kinesis record of this shard is in the collector or in flight.
    busy: bool,
    schedule: Schedule,
}

impl ShardState {
    fn new(id: Option<Arc<str>>, limiter: Option<ShardLimiter>) -> Self {
        ShardState {
            id,
            buffer: ShardBuffer::default(),
            limiter,
            busy: false,
            schedule: Schedule::default(),
        }
    }
}

/// A retry waiting for its delay (best-effort ordering).
#[derive(Debug)]
struct Waiting(Instant, UserRecord);

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1.seq) == (other.0, other.1.seq)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0, self.1.seq).cmp(&(other.0, other.1.seq))
    }
}

#[derive(Debug)]
struct StreamState {
    name: Arc<str>,
    map: ShardMapState,
    /// The map records are routed with (may lag `map` under per-key ordering).
    routing: Option<Arc<ShardMap>>,
    /// A fetched map waiting for the stream to drain (per-key ordering).
    pending_map: Option<Arc<ShardMap>>,
    generation: u32,
    shards: Vec<ShardState>,
    unrouted: ShardState,
    collector: Collector,
    collector_schedule: Schedule,
    retries: BinaryHeap<Reverse<Waiting>>,
    retry_schedule: Schedule,
    refresh_schedule: Schedule,
    in_flight: usize,
    /// Records put on shards the routing map did not know, waiting for a newer map.
    undecided: Vec<(UserRecord, PutResult)>,
}

/// The pipeline of every stream a producer writes to.
#[derive(Debug)]
pub(crate) struct Pipeline {
    config: Arc<Config>,
    streams: Vec<StreamState>,
    by_name: HashMap<Arc<str>, usize>,
    /// The last stream looked up: callers usually share one `Arc<str>` per stream.
    last_stream: Option<(Arc<str>, usize)>,
    timers: BinaryHeap<Reverse<(Instant, Target)>>,
    dirty: Vec<Target>,
    next_seq: u64,
    epoch: u64,
    flush_seq: u64,
    next_batch: u64,
    next_map_version: u64,
    in_flight: usize,
    round_robin: usize,
    backoff: Backoff,
    /// Undecided records a newer map confirmed, handed out by the next poll.
    confirmed: Vec<(UserRecord, PutResult)>,
    /// (stream, landing shard) of undecided records found on the wrong shard.
    wrong_shard: Vec<(Arc<str>, Arc<str>)>,
}

impl Pipeline {
    /// An empty pipeline; `seed` drives the retry jitter.
    pub(crate) fn new(config: Arc<Config>, seed: u64) -> Self {
        Pipeline {
            backoff: Backoff::new(&config, seed),
            config,
            streams: Vec::new(),
            by_name: HashMap::new(),
            last_stream: None,
            timers: BinaryHeap::new(),
            dirty: Vec::new(),
            next_seq: 0,
            epoch: 0,
            flush_seq: 0,
            next_batch: 0,
            next_map_version: 0,
            in_flight: 0,
            round_robin: 0,
            confirmed: Vec::new(),
            wrong_shard: Vec::new(),
        }
    }

    /// The flush epoch records accepted now belong to.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Requests in flight.
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether no record is held anywhere and nothing is in flight.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight == 0
            && self.streams.iter().all(|s| {
                s.collector.is_empty()
                    && s.retries.is_empty()
                    && s.undecided.is_empty()
                    && s.unrouted.buffer.is_empty()
                    && s.shards.iter().all(|sh| sh.buffer.is_empty())
            })
    }

    /// When the next poll is due, if anything is scheduled. Inputs (`accept`, `on_done`,
    /// `on_map`, `flush`) always need a poll right after them.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    fn stream_index(&mut self, name: &Arc<str>, now: Instant) -> usize {
        if let Some((last, i)) = &self.last_stream
            && Arc::ptr_eq(last, name)
        {
            return *i;
        }
        if let Some(&i) = self.by_name.get(name) {
            self.last_stream = Some((Arc::clone(name), i));
            return i;
        }
        let i = self.streams.len();
        self.streams.push(StreamState {
            name: Arc::clone(name),
            map: ShardMapState::new(now),
            routing: None,
            pending_map: None,
            generation: 0,
            shards: Vec::new(),
            unrouted: ShardState::new(None, None),
            collector: Collector::new(&self.config),
            collector_schedule: Schedule::default(),
            retries: BinaryHeap::new(),
            retry_schedule: Schedule::default(),
            refresh_schedule: Schedule::default(),
            in_flight: 0,
            undecided: Vec::new(),
        });
        self.by_name.insert(Arc::clone(name), i);
        self.mark(Target::Refresh(i as u32));
        i
    }

    /// The name of the stream with index `stream`.
    pub(crate) fn stream_name(&self, stream: usize) -> &str {
        &self.streams[stream].name
    }

    /// Takes in a new user record; returns its stream's index.
    pub(crate) fn accept(&mut self, mut rec: UserRecord, now: Instant) -> usize {
        rec.seq = self.next_seq;
        rec.epoch = self.epoch;
        self.next_seq += 1;
        let stream = self.stream_index(&Arc::clone(&rec.stream), now);
        let slot = self.route(stream, rec.hash_key);
        self.shard_mut(stream, slot).buffer.push_back(rec);
        self.mark_shard(stream, slot);
        stream
    }

    /// Sends everything buffered now (rate limits still apply) and starts a new flush epoch;
    /// returns the epoch that was flushed.
    pub(crate) fn flush(&mut self) -> u64 {
        self.flush_seq = self.next_seq;
        let flushed = self.epoch;
        self.epoch += 1;
        for s in 0..self.streams.len() {
            for slot in 0..self.streams[s].shards.len() {
                self.mark_shard(s, slot as u32);
            }
            self.mark_shard(s, UNROUTED);
            self.mark(Target::Collector(s as u32));
        }
        flushed
    }

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

    /// A request's outcome came back.
    pub(crate) fn on_done(&mut self, done: Done, now: Instant) {
        let stream = done.stream;
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

    /// Confirms undecided records with `map`, retrying those on the wrong shard.
    fn decide(
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

    /// Sends `retries` again after their backoff.
    fn schedule_retries(&mut self, stream: usize, retries: Vec<UserRecord>, now: Instant) {
        let ordered = self.config.ordering == Ordering::PerPartitionKey;
        if !retries.is_empty() {
            let mut by_slot: HashMap<u32, Vec<UserRecord>> = HashMap::new();
            for mut rec in retries {
                let n = rec.attempts.len() as u32;
                let ready = (now + self.backoff.delay(n)).min(rec.expiration);
                rec.not_before = ready;
                rec.deadline = ready;
                if ordered {
                    let slot = self.route(stream, rec.hash_key);
                    by_slot.entry(slot).or_default().push(rec);
                } else {
                    self.streams[stream]
                        .retries
                        .push(Reverse(Waiting(ready, rec)));
                }
            }
            for (slot, mut recs) in by_slot {
                recs.sort_by_key(|r| r.seq);
                self.shard_mut(stream, slot).buffer.merge_front(recs);
                self.mark_shard(stream, slot);
            }
            self.mark(Target::Retry(stream as u32));
        }
    }

    /// Reopens the gate of the shard with this id (per-key ordering).
    fn release(&mut self, stream: usize, shard: Option<&str>) {
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

    fn try_apply_pending(&mut self, stream: usize, now: Instant) {
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

    fn route(&self, stream: usize, hash_key: u128) -> u32 {
        self.streams[stream]
            .routing
            .as_ref()
            .and_then(|m| m.lookup(hash_key))
            .map_or(UNROUTED, |i| i as u32)
    }

    fn shard_mut(&mut self, stream: usize, slot: u32) -> &mut ShardState {
        let st = &mut self.streams[stream];
        if slot == UNROUTED {
            &mut st.unrouted
        } else {
            &mut st.shards[slot as usize]
        }
    }

    fn mark_shard(&mut self, stream: usize, slot: u32) {
        let generation = self.streams[stream].generation;
        let sh = self.shard_mut(stream, slot);
        if !sh.schedule.dirty {
            sh.schedule.dirty = true;
            self.dirty.push(Target::Shard {
                stream: stream as u32,
                slot,
                generation,
            });
        }
    }

    fn schedule_of(&mut self, target: Target) -> Option<&mut Schedule> {
        match target {
            Target::Shard {
                stream,
                slot,
                generation,
            } => {
                let st = &mut self.streams[stream as usize];
                if slot == UNROUTED {
                    Some(&mut st.unrouted.schedule)
                } else if st.generation == generation {
                    st.shards.get_mut(slot as usize).map(|s| &mut s.schedule)
                } else {
                    None
                }
            }
            Target::Collector(s) => Some(&mut self.streams[s as usize].collector_schedule),
            Target::Retry(s) => Some(&mut self.streams[s as usize].retry_schedule),
            Target::Refresh(s) => Some(&mut self.streams[s as usize].refresh_schedule),
        }
    }

    fn mark(&mut self, target: Target) {
        if let Some(sched) = self.schedule_of(target)
            && !sched.dirty
        {
            sched.dirty = true;
            self.dirty.push(target);
        }
    }

    /// Does everything due at `now`.
    pub(crate) fn poll(&mut self, now: Instant, out: &mut Actions) {
        while let Some(Reverse((t, target))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.schedule_of(target).is_some_and(|s| s.fire(t)) {
                self.mark(target);
            }
        }
        // Retries and maps first, so that retries reach their buffers before the shards run;
        // shards feed collectors, so collectors marked while shards run are handled too.
        self.dirty.sort_by_key(|t| match t {
            Target::Refresh(_) | Target::Retry(_) => 0,
            Target::Shard { .. } => 1,
            Target::Collector(_) => 2,
        });
        let mut i = 0;
        while i < self.dirty.len() {
            let target = self.dirty[i];
            i += 1;
            let Some(sched) = self.schedule_of(target) else {
                continue;
            };
            sched.dirty = false;
            let next = match target {
                Target::Shard { stream, slot, .. } => {
                    self.poll_shard(stream as usize, slot, now, out)
                }
                Target::Collector(s) => {
                    let st = &mut self.streams[s as usize];
                    st.collector.poll(now, self.flush_seq);
                    st.collector.next_due()
                }
                Target::Retry(s) => self.poll_retries(s as usize, now),
                Target::Refresh(s) => {
                    let st = &mut self.streams[s as usize];
                    if st.map.start_refresh(now) {
                        out.refresh.push((s as usize, Arc::clone(&st.name)));
                    }
                    st.map.next_refresh()
                }
            };
            if let Some(t) = next
                && let Some(sched) = self.schedule_of(target)
                && sched.want(t)
            {
                self.timers.push(Reverse((t, target)));
            }
        }
        self.dirty.clear();
        out.confirmed.append(&mut self.confirmed);
        out.wrong_shard.append(&mut self.wrong_shard);
        self.dispatch(now, out);
    }

    fn poll_shard(
        &mut self,
        stream: usize,
        slot: u32,
        now: Instant,
        out: &mut Actions,
    ) -> Option<Instant> {
        let config = Arc::clone(&self.config);
        let ordered = config.ordering == Ordering::PerPartitionKey;
        let flush_seq = self.flush_seq;
        // Without a map records are held until their deadline (the map may arrive meanwhile)
        // and then sent unaggregated, as the KPL does.
        let unrouted = slot == UNROUTED;
        let hold = unrouted || config.aggregation_enabled;
        let aggregate = !unrouted && config.aggregation_enabled;
        let st = &mut self.streams[stream];
        let blocked = ordered && st.pending_map.is_some();
        // While the first map is being fetched, even a flush waits for it (up to the records'
        // deadline), so that the first records are aggregated too.
        let flush_seq = if unrouted && st.routing.is_none() && st.map.is_fetching() {
            0
        } else {
            flush_seq
        };
        let sh = if unrouted {
            &mut st.unrouted
        } else {
            &mut st.shards[slot as usize]
        };
        let mut expired_now = Vec::new();
        sh.buffer.expire_front(now, &mut expired_now);
        for mut rec in expired_now {
            let last = rec.attempts.last().and_then(|a| a.error_code.clone());
            let failure = expired(&mut rec, last.as_deref());
            out.expired.push((rec, failure));
        }
        let mut emitted = false;
        let mut next = None;
        loop {
            if (ordered && sh.busy) || blocked {
                break;
            }
            if !sh.buffer.is_due(now, flush_seq, hold, &config) {
                next = sh.buffer.next_due(flush_seq, hold, &config);
                break;
            }
            if let Some(limiter) = &mut sh.limiter {
                let wait = limiter.wait(now);
                if !wait.is_zero() {
                    next = sh.buffer.front().map(|f| (now + wait).min(f.expiration));
                    break;
                }
            }
            let Some(kr) = sh.buffer.take(aggregate, sh.id.clone(), now, &config) else {
                break;
            };
            if let Some(limiter) = &mut sh.limiter {
                limiter.take(kr.size, now);
            }
            sh.busy = ordered;
            st.collector.add(kr);
            emitted = true;
        }
        if emitted {
            self.mark(Target::Collector(stream as u32));
        }
        next
    }

    fn poll_retries(&mut self, stream: usize, now: Instant) -> Option<Instant> {
        let mut by_slot: HashMap<u32, Vec<UserRecord>> = HashMap::new();
        loop {
            let st = &mut self.streams[stream];
            match st.retries.peek() {
                Some(Reverse(Waiting(t, _))) if *t <= now => {}
                Some(Reverse(Waiting(t, _))) => {
                    let t = *t;
                    self.merge_retries(stream, by_slot);
                    return Some(t);
                }
                None => break,
            }
            if let Some(Reverse(Waiting(_, rec))) = st.retries.pop() {
                let slot = self.route(stream, rec.hash_key);
                by_slot.entry(slot).or_default().push(rec);
            }
        }
        self.merge_retries(stream, by_slot);
        None
    }

    fn merge_retries(&mut self, stream: usize, by_slot: HashMap<u32, Vec<UserRecord>>) {
        for (slot, mut recs) in by_slot {
            recs.sort_by_key(|r| r.seq);
            self.shard_mut(stream, slot).buffer.merge_front(recs);
            self.mark_shard(stream, slot);
        }
    }

    /// Hands out sealed requests while connections are free, streams taking turns; records
    /// that expired on the way are failed rather than sent.
    fn dispatch(&mut self, now: Instant, out: &mut Actions) {
        let n = self.streams.len();
        let mut idle_streams = 0;
        while self.in_flight < self.config.max_connections && idle_streams < n {
            let s = self.round_robin % n.max(1);
            self.round_robin = self.round_robin.wrapping_add(1);
            let Some(records) = self.streams[s].collector.pop_ready() else {
                idle_streams += 1;
                continue;
            };
            idle_streams = 0;
            let mut kept = Vec::with_capacity(records.len());
            for kr in records {
                if kr.records.iter().all(|r| r.expiration > now) {
                    kept.push(kr);
                    continue;
                }
                let predicted = kr.predicted.clone();
                let mut live = Vec::with_capacity(kr.records.len());
                for mut rec in kr.records {
                    if rec.expiration > now {
                        live.push(rec);
                    } else {
                        let last = rec.attempts.last().and_then(|a| a.error_code.clone());
                        let failure = expired(&mut rec, last.as_deref());
                        out.expired.push((rec, failure));
                    }
                }
                if live.is_empty() {
                    if self.config.ordering == Ordering::PerPartitionKey {
                        self.release(s, predicted.as_deref());
                    }
                } else {
                    kept.push(KinesisRecord::new(live, predicted));
                }
            }
            if kept.is_empty() {
                continue;
            }
            let st = &mut self.streams[s];
            st.in_flight += 1;
            self.in_flight += 1;
            self.next_batch += 1;
            out.batches.push(Batch {
                id: self.next_batch,
                stream: s,
                name: Arc::clone(&st.name),
                records: kept,
                map: st.routing.clone(),
            });
        }
        // Releases above may have made shards due again.
        if !self.dirty.is_empty() {
            self.poll(now, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::PutHandle;
    use crate::record::test_support::user_record;
    use kinesis_proto::hash_key::{HashRange, even_split, hash_key_for_partition_key};
    use kinesis_proto::model::SequenceNumberRange;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn wire(ids_ranges: &[(&str, HashRange)]) -> Vec<WireShard> {
        ids_ranges
            .iter()
            .map(|(id, r)| WireShard {
                shard_id: id.to_string(),
                hash_key_range: r.to_wire(),
                sequence_number_range: SequenceNumberRange::default(),
                ..Default::default()
            })
            .collect()
    }

    fn split(n: u32) -> Vec<WireShard> {
        let ids: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let ranges = even_split(n);
        wire(
            &ids.iter()
                .map(String::as_str)
                .zip(ranges)
                .collect::<Vec<_>>(),
        )
    }

    struct Harness {
        p: Pipeline,
        t0: Instant,
        handles: Vec<PutHandle>,
        config: Config,
    }

    impl Harness {
        fn new(config: Config) -> Self {
            Harness {
                p: Pipeline::new(Arc::new(config.clone()), 1),
                t0: Instant::now(),
                handles: Vec::new(),
                config,
            }
        }

        fn put(&mut self, key: &str, at: Instant) {
            let (r, h) = user_record(0, key, b"0123456789", at, &self.config);
            self.handles.push(h);
            self.p.accept(r, at);
        }

        fn poll(&mut self, now: Instant) -> Actions {
            let mut a = Actions::default();
            self.p.poll(now, &mut a);
            a
        }

        /// Polls with the map answer for the first refresh asked for.
        fn start(&mut self, shards: Vec<WireShard>) {
            self.p.stream_index(&Arc::from("s"), self.t0);
            let a = self.poll(self.t0);
            assert_eq!(a.refresh.len(), 1);
            self.p.on_map(0, Ok(shards), self.t0);
        }
    }

    fn user_count(b: &Batch) -> usize {
        b.records.iter().map(|k| k.records.len()).sum()
    }

    #[test]
    fn records_aggregate_per_shard_and_leave_at_the_deadline() {
        let mut h = Harness::new(Config::default());
        let t0 = h.t0;
        for i in 0..100 {
            h.put(&format!("k{i}"), t0);
        }
        h.start(split(4));
        assert!(h.poll(t0).batches.is_empty());
        // Due at the deadline; the collector adds its 20 ms extension.
        let due = t0 + h.config.record_max_buffered_time;
        assert_eq!(h.p.next_wakeup(), Some(due));
        assert!(h.poll(due).batches.is_empty());
        let a = h.poll(due + ms(20));
        assert_eq!(a.batches.len(), 1);
        let b = &a.batches[0];
        assert_eq!(b.records.len(), 4, "one aggregate per shard");
        assert!(b.records.iter().all(|k| k.aggregated));
        assert_eq!(user_count(b), 100);
        // Each aggregate's records belong to its predicted shard.
        let map = b.map.as_ref().unwrap();
        for k in &b.records {
            let shard = k.predicted.as_deref().unwrap();
            for r in &k.records {
                assert_eq!(&*map.shards()[map.lookup(r.hash_key).unwrap()].id, shard);
            }
        }
        assert_eq!(h.p.in_flight(), 1);
        assert!(!h.p.is_idle());
    }

    #[test]
    fn without_a_map_records_go_unaggregated_at_their_deadline() {
        let mut h = Harness::new(Config::default());
        let t0 = h.t0;
        h.put("a", t0);
        h.put("b", t0);
        let a = h.poll(t0);
        assert_eq!(a.refresh.len(), 1);
        assert!(h.poll(t0 + ms(100)).batches.is_empty());
        let a = h.poll(t0 + ms(120));
        assert_eq!(a.batches.len(), 1);
        assert!(
            a.batches[0]
                .records
                .iter()
                .all(|k| !k.aggregated && k.predicted.is_none())
        );
        assert_eq!(a.batches[0].records.len(), 2);
    }

    #[test]
    fn full_aggregates_and_requests_go_before_the_deadline() {
        let config = Config::builder()
            .aggregation_max_size(1000)
            .collection_max_count(2)
            .build();
        let mut h = Harness::new(config);
        let t0 = h.t0;
        h.start(split(1));
        for i in 0..100 {
            h.put(&format!("key-{i}"), t0);
        }
        let a = h.poll(t0);
        assert!(!a.batches.is_empty());
        assert!(
            a.batches
                .iter()
                .all(|b| b.records.len() == 2 && b.records.iter().all(|k| k.size <= 1001))
        );
    }

    #[test]
    fn flush_sends_now_and_bumps_the_epoch() {
        let mut h = Harness::new(Config::default());
        let t0 = h.t0;
        h.start(split(2));
        h.put("a", t0);
        assert!(h.poll(t0).batches.is_empty());
        assert_eq!(h.p.flush(), 0);
        assert_eq!(h.p.epoch(), 1);
        let a = h.poll(t0);
        assert_eq!(a.batches.len(), 1);
        // Later records are not flushed.
        h.put("b", t0);
        assert!(h.poll(t0).batches.is_empty());
    }

    #[test]
    fn connections_bound_requests_in_flight() {
        let config = Config::builder()
            .max_connections(2)
            .collection_max_count(1)
            .aggregation_enabled(false)
            .build();
        let mut h = Harness::new(config);
        let t0 = h.t0;
        h.start(split(1));
        for i in 0..5 {
            h.put(&format!("k{i}"), t0);
        }
        h.p.flush();
        let a = h.poll(t0);
        assert_eq!(a.batches.len(), 2);
        for b in a.batches {
            h.p.on_done(
                Done {
                    stream: 0,
                    shards: vec![],
                    throttled: vec![],
                    retries: vec![],
                    invalidate: None,
                    undecided: vec![],
                },
                t0,
            );
            drop(b);
        }
        let a = h.poll(t0);
        assert_eq!(a.batches.len(), 2);
    }

    #[test]
    fn retries_wait_their_backoff_and_go_first() {
        let config = Config::builder().aggregation_enabled(false).build();
        let mut h = Harness::new(config);
        let t0 = h.t0;
        h.start(split(1));
        h.put("a", t0);
        h.p.flush();
        let mut a = h.poll(t0);
        let batch = a.batches.pop().unwrap();
        let mut retries: Vec<UserRecord> =
            batch.records.into_iter().flat_map(|k| k.records).collect();
        retries[0].attempts.push(crate::handle::Attempt {
            delay: ms(0),
            duration: ms(1),
            success: false,
            error_code: Some("InternalFailure".into()),
            error_message: None,
            possibly_stored: false,
        });
        h.p.on_done(
            Done {
                stream: 0,
                shards: vec![None],
                throttled: vec![],
                retries,
                invalidate: None,
                undecided: vec![],
            },
            t0,
        );
        assert!(h.poll(t0).batches.is_empty());
        let ready = h.p.next_wakeup().unwrap();
        assert!(ready > t0 && ready <= t0 + h.config.retry_backoff_base);
        h.put("b", t0);
        let a = h.poll(ready);
        let seqs: Vec<u64> = a
            .batches
            .iter()
            .flat_map(|b| {
                b.records
                    .iter()
                    .flat_map(|k| k.records.iter().map(|r| r.seq))
            })
            .collect();
        // The retry (seq 0) is due at its retry time and goes before the newer record.
        assert_eq!(seqs, [0, 1]);
    }

    #[test]
    fn records_expire_while_throttled_by_the_limiter() {
        let config = Config::builder()
            .aggregation_enabled(false)
            .rate_limit(1)
            .adaptive_rate(false)
            .record_ttl(ms(500))
            .build();
        let mut h = Harness::new(config);
        let t0 = h.t0;
        h.start(split(1));
        // 1 %: 10 records/s, burst 10. Thirty records: ten go, the rest wait and expire.
        for i in 0..30 {
            h.put(&format!("k{i}"), t0);
        }
        let mut sent = 0;
        let mut expired = 0;
        let mut now = t0;
        for _ in 0..1000 {
            let a = h.poll(now);
            sent += a.batches.iter().map(user_count).sum::<usize>();
            expired += a.expired.len();
            for _ in &a.batches {
                h.p.on_done(
                    Done {
                        stream: 0,
                        shards: vec![],
                        throttled: vec![],
                        retries: vec![],
                        invalidate: None,
                        undecided: vec![],
                    },
                    now,
                );
            }
            match h.p.next_wakeup() {
                Some(t) => now = now.max(t),
                None => break,
            }
        }
        assert_eq!(sent + expired, 30);
        assert!((10..=16).contains(&sent), "{sent}");
        assert!(expired > 0);
        assert!(h.p.is_idle());
    }

    #[test]
    fn a_new_map_moves_records_of_closed_shards() {
        let mut h = Harness::new(Config::default());
        let t0 = h.t0;
        h.start(split(1));
        for i in 0..20 {
            h.put(&format!("k{i}"), t0);
        }
        assert!(h.poll(t0).batches.is_empty());
        // The single shard split in two; the buffered records move to the children.
        let ranges = even_split(2);
        h.p.on_map(
            0,
            Ok(wire(&[("c0", ranges[0]), ("c1", ranges[1])])),
            t0 + ms(200),
        );
        h.p.flush();
        let a = h.poll(t0 + ms(200));
        let b = &a.batches[0];
        assert_eq!(b.records.len(), 2);
        assert_eq!(user_count(b), 20);
        for k in &b.records {
            let id = k.predicted.as_deref().unwrap();
            assert!(id == "c0" || id == "c1");
            let range = b.map.as_ref().unwrap().range_of(id).unwrap();
            assert!(k.records.iter().all(|r| range.contains(r.hash_key)));
        }
    }

    #[test]
    fn per_key_ordering_keeps_one_record_per_shard_in_flight() {
        let config = Config::builder()
            .ordering(Ordering::PerPartitionKey)
            .aggregation_max_size(300)
            .build();
        let mut h = Harness::new(config);
        let t0 = h.t0;
        h.start(split(1));
        for _ in 0..30 {
            h.put("key", t0);
        }
        h.p.flush();
        let mut a = h.poll(t0);
        assert_eq!(a.batches.len(), 1);
        assert_eq!(
            a.batches[0].records.len(),
            1,
            "one Kinesis record per shard"
        );
        let first = a.batches.pop().unwrap();
        let first_seqs: Vec<u64> = first.records[0].records.iter().map(|r| r.seq).collect();
        assert!(
            h.poll(t0).batches.is_empty(),
            "the shard waits for the answer"
        );
        // It failed: the same records go again, before anything later, after their delay.
        let mut retries: Vec<UserRecord> =
            first.records.into_iter().flat_map(|k| k.records).collect();
        for r in &mut retries {
            r.attempts.push(crate::handle::Attempt {
                delay: ms(0),
                duration: ms(1),
                success: false,
                error_code: Some("ProvisionedThroughputExceededException".into()),
                error_message: None,
                possibly_stored: false,
            });
        }
        h.p.on_done(
            Done {
                stream: 0,
                shards: vec![Some("s0".into())],
                throttled: vec![],
                retries,
                invalidate: None,
                undecided: vec![],
            },
            t0,
        );
        assert!(h.poll(t0).batches.is_empty());
        let later = t0 + h.config.retry_backoff_base;
        let a = h.poll(later);
        let again: Vec<u64> = a.batches[0].records[0]
            .records
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(again, first_seqs);
    }

    #[test]
    fn landings_on_unknown_shards_are_decided_by_the_next_map() {
        let mut h = Harness::new(Config::default());
        let t0 = h.t0;
        h.start(split(1));
        let ranges = even_split(2);
        // Two records, one per future child, reported as put on child c1.
        let mut undecided = Vec::new();
        for key in ["a", "b", "c", "d", "e"] {
            let (r, handle) = user_record(0, key, b"x", t0, &h.config);
            h.handles.push(handle);
            let shard = if ranges[1].contains(r.hash_key) {
                "c1"
            } else {
                "c0"
            };
            let result = PutResult {
                shard_id: "c1".into(),
                sequence_number: "1".into(),
                sub_sequence_number: 0,
                attempts: vec![crate::handle::Attempt {
                    delay: ms(0),
                    duration: ms(1),
                    success: true,
                    error_code: None,
                    error_message: None,
                    possibly_stored: false,
                }],
            };
            undecided.push(((r, result), shard == "c1"));
        }
        let owned = undecided.iter().filter(|(_, o)| *o).count();
        assert!(owned > 0 && owned < 5);
        h.p.in_flight += 1;
        h.p.streams[0].in_flight += 1;
        let version = h.p.streams[0].routing.as_ref().unwrap().version();
        h.p.on_done(
            Done {
                stream: 0,
                shards: vec![],
                throttled: vec![],
                retries: vec![],
                invalidate: Some(version),
                undecided: undecided.into_iter().map(|(u, _)| u).collect(),
            },
            t0,
        );
        let a = h.poll(t0 + ms(300));
        assert!(a.confirmed.is_empty());
        assert_eq!(a.refresh.len(), 1, "one refresh for the stale map");
        h.p.on_map(
            0,
            Ok(wire(&[("c0", ranges[0]), ("c1", ranges[1])])),
            t0 + ms(300),
        );
        let a = h.poll(t0 + ms(300));
        // One aggregate (shard c1, sequence 1) that c1 does not own whole: a consumer drops
        // all of it, so all of it is retried, each on its own shard.
        assert!(a.confirmed.is_empty());
        assert!(!h.p.is_idle());
        h.p.flush();
        let a = h.poll(t0 + Duration::from_secs(10));
        let retried: usize = a.batches.iter().map(user_count).sum();
        assert_eq!(retried, 5);
    }

    #[test]
    fn an_aggregate_an_unknown_shard_owns_whole_is_confirmed() {
        let mut h = Harness::new(Config::default());
        let t0 = h.t0;
        h.start(split(1));
        let ranges = even_split(2);
        let mut undecided = Vec::new();
        for i in 0..40 {
            let (r, handle) = user_record(0, &format!("k{i}"), b"x", t0, &h.config);
            if !ranges[1].contains(r.hash_key) {
                continue;
            }
            h.handles.push(handle);
            let result = PutResult {
                shard_id: "c1".into(),
                sequence_number: "1".into(),
                sub_sequence_number: 0,
                attempts: vec![],
            };
            undecided.push((r, result));
        }
        let n = undecided.len();
        assert!(n > 1);
        h.p.in_flight += 1;
        h.p.streams[0].in_flight += 1;
        let version = h.p.streams[0].routing.as_ref().unwrap().version();
        h.p.on_done(
            Done {
                stream: 0,
                shards: vec![],
                throttled: vec![],
                retries: vec![],
                invalidate: Some(version),
                undecided,
            },
            t0,
        );
        let _ = h.poll(t0 + ms(300));
        h.p.on_map(
            0,
            Ok(wire(&[("c0", ranges[0]), ("c1", ranges[1])])),
            t0 + ms(300),
        );
        let a = h.poll(t0 + ms(300));
        assert_eq!(a.confirmed.len(), n);
    }

    #[test]
    fn hash_gaps_fall_back_to_unrouted() {
        let mut h = Harness::new(Config::default());
        let t0 = h.t0;
        let k = hash_key_for_partition_key("x");
        h.start(wire(&[("only", HashRange::new(k + 1, u128::MAX))]));
        h.put("x", t0);
        h.p.flush();
        let a = h.poll(t0);
        assert_eq!(a.batches[0].records[0].predicted, None);
    }
}
