//! The shard map: which open shard owns a hash key, from `ListShards`, cached and refreshed.
//!
//! Like the KPL, the map is sorted by ending hash key and a lookup is a lower bound on it. It is
//! refreshed when a record lands on a shard other than predicted (after a split or merge). To
//! avoid a refresh storm: invalidations are tied to the map version they saw, so the many
//! records of one stale map trigger a single `ListShards`; at most one refresh per stream is in
//! flight; refreshes are at least [`MIN_REFRESH_INTERVAL`] apart; failures back off from 1 s by
//! ×1.5 up to 30 s (the KPL's schedule).

use kinesis_proto::hash_key::HashRange;
use kinesis_proto::model::Shard;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shortest time between two refreshes of one stream's map.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(200);
/// First delay after a failed refresh.
pub const REFRESH_BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest delay after failed refreshes.
pub const REFRESH_BACKOFF_CAP: Duration = Duration::from_secs(30);

/// One open shard of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapShard {
    /// Its id.
    pub id: Arc<str>,
    /// The hash keys it owns.
    pub range: HashRange,
}

/// The open shards of a stream, sorted by ending hash key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    version: u64,
    shards: Vec<MapShard>,
}

impl ShardMap {
    /// The map of the open shards among `shards` (closed ones, with an ending sequence number,
    /// are left out). Fails on an unparseable hash range or when no shard is open.
    pub fn from_shards(version: u64, shards: &[Shard]) -> Result<ShardMap, String> {
        let mut open = Vec::with_capacity(shards.len());
        for s in shards {
            if s.sequence_number_range.ending_sequence_number.is_some() {
                continue;
            }
            let range = HashRange::from_wire(&s.hash_key_range)
                .ok_or_else(|| format!("shard {} has an invalid hash key range", s.shard_id))?;
            open.push(MapShard {
                id: Arc::from(s.shard_id.as_str()),
                range,
            });
        }
        if open.is_empty() {
            return Err("the stream has no open shard".into());
        }
        Ok(Self::new(version, open))
    }

    /// A map of these shards.
    pub fn new(version: u64, mut shards: Vec<MapShard>) -> ShardMap {
        shards.sort_by_key(|s| s.range.end);
        ShardMap { version, shards }
    }

    /// Which refresh produced this map (higher is newer).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The shards, sorted by ending hash key.
    pub fn shards(&self) -> &[MapShard] {
        &self.shards
    }

    /// The index of the shard owning `hash_key`, if any (a gap means the map is stale).
    pub fn lookup(&self, hash_key: u128) -> Option<usize> {
        let i = self.shards.partition_point(|s| s.range.end < hash_key);
        self.shards
            .get(i)
            .filter(|s| s.range.start <= hash_key)
            .map(|_| i)
    }

    /// The index of the shard with this id.
    pub fn index_of(&self, shard_id: &str) -> Option<usize> {
        self.shards.iter().position(|s| &*s.id == shard_id)
    }

    /// The hash range of the shard with this id.
    pub fn range_of(&self, shard_id: &str) -> Option<HashRange> {
        self.index_of(shard_id).map(|i| self.shards[i].range)
    }
}

/// A stream's cached map and its refresh schedule (pure: the caller passes `now`).
#[derive(Debug, Clone)]
pub struct ShardMapState {
    map: Option<Arc<ShardMap>>,
    /// A refresh is wanted no earlier than this.
    wanted_at: Option<Instant>,
    in_flight: bool,
    last_started: Option<Instant>,
    failures: u32,
}

impl ShardMapState {
    /// No map yet; the first refresh is wanted at `now`.
    pub fn new(now: Instant) -> Self {
        ShardMapState {
            map: None,
            wanted_at: Some(now),
            in_flight: false,
            last_started: None,
            failures: 0,
        }
    }

    /// The current map, if one was fetched.
    pub fn map(&self) -> Option<&Arc<ShardMap>> {
        self.map.as_ref()
    }

    /// A record saw a shard that the map with `version` did not predict; asks for one refresh
    /// per map version.
    pub fn invalidate(&mut self, version: u64, now: Instant) {
        let current = self.map.as_ref().map_or(0, |m| m.version());
        if version < current || self.in_flight || self.wanted_at.is_some() {
            return;
        }
        let earliest = self
            .last_started
            .map_or(now, |t| (t + MIN_REFRESH_INTERVAL).max(now));
        self.wanted_at = Some(earliest);
    }

    /// Whether a refresh is running.
    pub fn is_fetching(&self) -> bool {
        self.in_flight
    }

    /// When the next refresh should start, if one is wanted and none is running.
    pub fn next_refresh(&self) -> Option<Instant> {
        if self.in_flight { None } else { self.wanted_at }
    }

    /// Whether a refresh should start now; if so it is marked as running.
    pub fn start_refresh(&mut self, now: Instant) -> bool {
        match self.next_refresh() {
            Some(t) if t <= now => {
                self.in_flight = true;
                self.wanted_at = None;
                self.last_started = Some(now);
                true
            }
            _ => false,
        }
    }

    /// A refresh produced `map`.
    pub fn refreshed(&mut self, map: Arc<ShardMap>) {
        self.in_flight = false;
        self.failures = 0;
        self.map = Some(map);
    }

    /// A refresh failed; the next one backs off.
    pub fn refresh_failed(&mut self, now: Instant) {
        self.in_flight = false;
        let backoff = REFRESH_BACKOFF_START.mul_f64(1.5f64.powi(self.failures.min(20) as i32));
        self.failures += 1;
        self.wanted_at = Some(now + backoff.min(REFRESH_BACKOFF_CAP));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis_proto::hash_key::even_split;
    use kinesis_proto::model::{HashKeyRange, SequenceNumberRange};

    fn wire(id: &str, range: HashRange, closed: bool) -> Shard {
        Shard {
            shard_id: id.into(),
            hash_key_range: range.to_wire(),
            sequence_number_range: SequenceNumberRange {
                starting_sequence_number: "0".into(),
                ending_sequence_number: closed.then(|| "1".into()),
            },
            ..Default::default()
        }
    }

    #[test]
    fn lookup_is_a_lower_bound_on_the_end_key() {
        let ranges = even_split(4);
        // Listed out of order, with a closed parent: only open shards count.
        let shards = vec![
            wire("s3", ranges[3], false),
            wire("s0", ranges[0], false),
            wire("parent", HashRange::FULL, true),
            wire("s2", ranges[2], false),
            wire("s1", ranges[1], false),
        ];
        let map = ShardMap::from_shards(1, &shards).unwrap();
        let ids: Vec<_> = map.shards().iter().map(|s| &*s.id).collect();
        assert_eq!(ids, ["s0", "s1", "s2", "s3"]);
        for (i, r) in ranges.iter().enumerate() {
            assert_eq!(map.lookup(r.start), Some(i));
            assert_eq!(map.lookup(r.end), Some(i));
            assert_eq!(map.lookup(r.start + (r.end - r.start) / 2), Some(i));
        }
        assert_eq!(map.lookup(u128::MAX), Some(3));
        assert_eq!(map.range_of("s2"), Some(ranges[2]));
        assert_eq!(map.index_of("parent"), None);
    }

    #[test]
    fn gaps_and_bad_input() {
        let map = ShardMap::new(
            1,
            vec![MapShard {
                id: "a".into(),
                range: HashRange::new(10, 20),
            }],
        );
        assert_eq!(map.lookup(5), None);
        assert_eq!(map.lookup(21), None);
        assert_eq!(map.lookup(10), Some(0));
        let mut bad = wire("x", HashRange::FULL, false);
        bad.hash_key_range = HashKeyRange {
            starting_hash_key: "-1".into(),
            ending_hash_key: "5".into(),
        };
        assert!(ShardMap::from_shards(1, &[bad]).is_err());
        assert!(ShardMap::from_shards(1, &[wire("p", HashRange::FULL, true)]).is_err());
    }

    #[test]
    fn invalidations_coalesce_per_version() {
        let t0 = Instant::now();
        let mut st = ShardMapState::new(t0);
        assert!(st.start_refresh(t0));
        // While the first fetch runs nothing else starts.
        st.invalidate(0, t0);
        assert!(!st.start_refresh(t0));
        st.refreshed(Arc::new(ShardMap::new(
            1,
            vec![MapShard {
                id: "a".into(),
                range: HashRange::FULL,
            }],
        )));
        assert_eq!(st.next_refresh(), None);
        // Many records of the stale version 0 ask nothing; version 1 asks once, but not sooner
        // than the minimum interval after the last start.
        st.invalidate(0, t0);
        assert_eq!(st.next_refresh(), None);
        let t1 = t0 + Duration::from_millis(10);
        st.invalidate(1, t1);
        st.invalidate(1, t1);
        assert_eq!(st.next_refresh(), Some(t0 + MIN_REFRESH_INTERVAL));
        assert!(!st.start_refresh(t1));
        assert!(st.start_refresh(t0 + MIN_REFRESH_INTERVAL));
    }

    #[test]
    fn failures_back_off_like_the_kpl() {
        let t0 = Instant::now();
        let mut st = ShardMapState::new(t0);
        let mut delays = Vec::new();
        let mut now = t0;
        for _ in 0..12 {
            assert!(st.start_refresh(now));
            st.refresh_failed(now);
            let next = st.next_refresh().unwrap();
            delays.push((next - now).as_millis());
            now = next;
        }
        assert_eq!(&delays[..4], &[1000, 1500, 2250, 3375]);
        assert_eq!(*delays.last().unwrap(), 30_000);
    }
}
