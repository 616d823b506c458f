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
//! Per-key ordering ([`Ordering::PerPartitionKey`](crate::config::Ordering::PerPartitionKey)):
//! each shard has at most one Kinesis record between its buffer and the answer (in the
//! collector or in flight); a failed one goes back to the front of its shard's buffer, which
//! waits for its retry delay; and a new shard map is applied only when the stream has nothing
//! in flight, so that records of one key never travel to two shards at once.

mod answers;
mod maps;
mod poll;
mod retries;
mod schedule;

use crate::aggregator::{KinesisRecord, ShardBuffer};
use crate::collector::Collector;
use crate::config::Config;
use crate::error::RecordFailure;
use crate::handle::PutResult;
use crate::limiter::ShardLimiter;
use crate::record::UserRecord;
use crate::retrier::Backoff;
use crate::shard_map::{ShardMap, ShardMapState};
use schedule::{Schedule, Target, UNROUTED};
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
    /// Emptied vectors of answered Kinesis records, for the next ones to reuse.
    pub(crate) spare: Vec<Vec<UserRecord>>,
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
    /// Emptied record vectors answered requests gave back, at most [`SPARE_VECTORS`].
    spare: Vec<Vec<UserRecord>>,
}

/// Most emptied record vectors kept for reuse: about one large request's Kinesis records.
const SPARE_VECTORS: usize = 128;

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
            spare: Vec::new(),
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
        let stream = self.stream_index(&rec.stream, now);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ordering;
    use crate::handle::PutHandle;
    use crate::record::test_support::user_record;
    use kinesis_proto::hash_key::{HashRange, even_split, hash_key_for_partition_key};
    use kinesis_proto::model::SequenceNumberRange;
    use kinesis_proto::model::Shard as WireShard;
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
                    spare: Vec::new(),
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
        retries[0]
            .retry_mut()
            .attempts
            .push(crate::handle::Attempt {
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
                spare: Vec::new(),
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
                        spare: Vec::new(),
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
            r.retry_mut().attempts.push(crate::handle::Attempt {
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
                spare: Vec::new(),
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
                }]
                .into(),
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
                spare: Vec::new(),
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
                attempts: Vec::new().into(),
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
                spare: Vec::new(),
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
