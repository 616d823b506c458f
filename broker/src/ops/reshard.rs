//! Resharding: SplitShard, MergeShards and UpdateShardCount (uniform scaling
//! done as real splits and merges, so every child names its parents).

use crate::catalog::{ShardRecord, StreamRecord};
use crate::deadline::Due;
use crate::pending_reshard::PendingReshard;
use crate::service::{Service, now_ms};
use crate::shard::Shard;
use crate::store::ShardLog;
use crate::stream::{Stream, StreamMeta, StreamMode, StreamStatus};
use crate::validation::Violations;
use kinesis_proto::KinesisError;
use kinesis_proto::hash_key::{HashRange, even_split, parse_hash_key};
use kinesis_proto::model::*;
use parking_lot::RwLockWriteGuard;
use std::sync::Arc;

impl Service {
    fn reshardable(&self, r: &StreamRef) -> Result<Arc<Stream>, KinesisError> {
        let stream = self.stream(r)?;
        let m = stream.meta.read();
        if m.status != StreamStatus::Active {
            return Err(self.not_active(&stream, &m.status));
        }
        if m.mode == StreamMode::OnDemand {
            return Err(KinesisError::new(
                kinesis_proto::ErrorCode::Validation,
                format!(
                    "Stream {} under account {} is in ON_DEMAND mode; its shards are managed by the service.",
                    stream.name,
                    self.config().account_id
                ),
            ));
        }
        drop(m);
        Ok(stream)
    }

    fn open_shard(
        &self,
        stream: &Stream,
        m: &StreamMeta,
        id: &str,
    ) -> Result<Arc<Shard>, KinesisError> {
        let missing = || {
            KinesisError::not_found(format!(
                "Could not find shard {id} in stream {} under account {}.",
                stream.name,
                self.config().account_id
            ))
        };
        let idx = kinesis_proto::shard_id::parse(id).ok_or_else(missing)?;
        let shard = m.shard(idx).cloned().ok_or_else(missing)?;
        if !shard.is_open() {
            return Err(KinesisError::invalid(format!(
                "Shard {} in stream {} under account {} has already been merged or split, and thus is not eligible for merging or splitting.",
                shard.id,
                stream.name,
                self.config().account_id
            )));
        }
        Ok(shard)
    }

    fn check_quota(&self, extra: usize) -> Result<(), KinesisError> {
        let open = self.open_shard_count();
        let limit = self.config().shard_limit as usize;
        if open + extra > limit {
            return Err(KinesisError::limit_exceeded(format!(
                "This request would exceed the shard limit for the account {} in {}. Current shard count for the account: {open}. Limit: {limit}. Number of additional shards that would have resulted from this request: {extra}.",
                self.config().account_id,
                self.config().region
            )));
        }
        Ok(())
    }

    /// Carry out the reshard `op`, checked and planned under the meta lock
    /// `m`: mark the stream UPDATING (so no other reshard starts), make the
    /// children's logs with no lock held (directories and fsyncs: writes to
    /// the parents go on), then, under the lock again, number the shards, save
    /// the description and switch to it. On any failure nothing changes and
    /// the stream is ACTIVE again. While the update waits out its delay, `op`
    /// is saved with the stream: an accepted reshard survives a restart.
    fn reshard(
        self: &Arc<Self>,
        stream: &Arc<Stream>,
        mut m: RwLockWriteGuard<'_, StreamMeta>,
        plan: Plan,
        op: PendingReshard,
    ) -> Result<(), KinesisError> {
        if plan.steps.is_empty() {
            drop(m);
            self.transition(
                stream,
                StreamStatus::Updating,
                StreamStatus::Active,
                self.config().update_delay,
            );
            return Ok(());
        }
        let delay = self.config().update_delay;
        if !delay.is_zero() {
            self.mutate_locked(stream, &mut m, |m| {
                m.pending_reshard = Some(op);
                Ok(())
            })?;
        }
        m.status = StreamStatus::Updating;
        m.status_epoch += 1;
        let epoch = m.status_epoch;
        drop(m);
        if delay.is_zero() {
            return self.apply_reshard(stream, plan, epoch);
        }
        // As on the service, the shards stay as they were while the stream is
        // UPDATING; the parents close and the children appear when the update
        // completes (docs/validation.md). Then the saved `op` is planned again:
        // nothing changes the shards while the stream is UPDATING.
        drop(plan);
        self.schedule(
            delay,
            Due::Reshard {
                stream: Arc::clone(stream),
                epoch,
            },
        );
        Ok(())
    }

    /// Carry out `stream`'s saved pending reshard once its delay has passed,
    /// unless its status changed since `epoch` (it was deleted meanwhile).
    pub(crate) fn reshard_due(self: &Arc<Self>, stream: &Arc<Stream>, epoch: u64) {
        let plan = {
            let mut m = stream.meta.write();
            if m.status_epoch != epoch {
                return;
            }
            match m.pending_reshard.clone().and_then(|op| plan_of(&m, &op)) {
                Some(plan) => plan,
                None => {
                    // Only a description edited meanwhile gets here.
                    tracing::error!(stream = %stream.name, "a pending reshard no longer fits the stream's shards; dropped");
                    m.status = StreamStatus::Active;
                    m.status_epoch += 1;
                    if m.pending_reshard.take().is_some()
                        && let Err(e) = self.persist(stream, &m)
                    {
                        tracing::warn!(stream = %stream.name, error = %e, "cannot save the stream");
                    }
                    return;
                }
            }
        };
        if let Err(e) = self.apply_reshard(stream, plan, epoch) {
            tracing::warn!(stream = %stream.name, error = %e, "a reshard did not complete");
        }
    }

    /// Make the children of `plan`, switch the stream to them and end its
    /// UPDATING; or, on failure, leave the shards as they were and the stream
    /// ACTIVE. A stream whose status changed since `epoch` is left alone.
    fn apply_reshard(
        self: &Arc<Self>,
        stream: &Arc<Stream>,
        plan: Plan,
        epoch: u64,
    ) -> Result<(), KinesisError> {
        let made: Result<Vec<Box<dyn ShardLog>>, KinesisError> = (0..plan.children.len())
            .map(|i| {
                self.storage()
                    .create_log(&stream.name, stream.created_ms, plan.first_index + i as u32)
                    .map_err(storage_failure)
            })
            .collect();
        let result = made.and_then(|logs| {
            let mut m = stream.meta.write();
            if m.status_epoch != epoch {
                // Deleted meanwhile: the stream is not ours to change any more.
                return Err(self.not_active(stream, &m.status));
            }
            let stage = plan.apply(stream, logs, now_ms())?;
            // Saved before the lock is released: no write reaches a new shard
            // that a restart would not know. The saved description no longer
            // holds the pending reshard; if the save fails, it still does.
            let pending = m.pending_reshard.take();
            if let Err(e) = self.switch_to(stream, &mut m, stage) {
                m.pending_reshard = pending;
                return Err(e);
            }
            m.status = StreamStatus::Active;
            m.status_epoch += 1;
            Ok(())
        });
        if result.is_err() {
            let mut m = stream.meta.write();
            if m.status_epoch == epoch {
                m.status = StreamStatus::Active;
                m.status_epoch += 1;
                // The update is abandoned here; a restart must not redo it.
                if m.pending_reshard.take().is_some()
                    && let Err(e) = self.persist(stream, &m)
                {
                    tracing::warn!(stream = %stream.name, error = %e, "an abandoned reshard stays saved; a restart carries it out");
                }
            }
        }
        result
    }

    /// Carry out every reshard that was accepted and saved but not carried out
    /// before the broker stopped. Called once at start-up, when the streams
    /// came back ACTIVE with their pending reshard.
    pub(crate) fn complete_pending_reshards(self: &Arc<Self>) {
        let streams: Vec<Arc<Stream>> = self.streams().read().values().cloned().collect();
        for stream in streams {
            let (plan, epoch) = {
                let mut m = stream.meta.write();
                let Some(op) = m.pending_reshard.clone() else {
                    continue;
                };
                match plan_of(&m, &op) {
                    Some(plan) => {
                        m.status_epoch += 1;
                        (plan, m.status_epoch)
                    }
                    None => {
                        // Only a description edited by hand gets here.
                        tracing::error!(stream = %stream.name, ?op, "a saved reshard no longer fits the stream's shards; dropped");
                        m.pending_reshard = None;
                        if let Err(e) = self.persist(&stream, &m) {
                            tracing::warn!(stream = %stream.name, error = %e, "cannot save the stream");
                        }
                        continue;
                    }
                }
            };
            match self.apply_reshard(&stream, plan, epoch) {
                Ok(()) => {
                    tracing::info!(stream = %stream.name, "completed a reshard accepted before the restart")
                }
                Err(e) => {
                    tracing::error!(stream = %stream.name, error = %e, "a reshard accepted before the restart did not complete")
                }
            }
        }
    }

    /// Save the stream as `stage` leaves it, then switch to it: close the
    /// parents, add the children, route to them. If the save fails nothing
    /// changes (the staged logs are dropped; a restart clears their dirs).
    fn switch_to(
        &self,
        stream: &Stream,
        m: &mut StreamMeta,
        stage: Staging,
    ) -> Result<(), KinesisError> {
        if self.storage().persists() {
            let mut record = StreamRecord::capture(stream, m);
            for (shard, end) in &stage.closes {
                if let Some(r) = record.shards.iter_mut().find(|r| r.index == shard.index) {
                    r.end_counter = Some(*end);
                    r.closed_ms = Some(stage.now);
                }
            }
            record
                .shards
                .extend(stage.children.iter().map(|s| ShardRecord::of(s)));
            self.persist_record(stream, &record)?;
        }
        for (shard, end) in stage.closes {
            shard.close_at(end, stage.now);
        }
        m.shards.extend(stage.children);
        m.rebuild_routing();
        Ok(())
    }

    /// SplitShard.
    pub fn split_shard(self: &Arc<Self>, input: SplitShardInput) -> Result<Empty, KinesisError> {
        let mut v = Violations::new();
        if v.required("shardToSplit", &input.shard_to_split) {
            v.length(
                "shardToSplit",
                input.shard_to_split.as_deref().unwrap_or_default(),
                1,
                128,
            );
        }
        v.required("newStartingHashKey", &input.new_starting_hash_key);
        v.finish()?;
        let key_text = input.new_starting_hash_key.unwrap_or_default();
        let key = parse_hash_key(&key_text).ok_or_else(|| {
            KinesisError::invalid(format!(
                "NewStartingHashKey {key_text} is not a valid hash key."
            ))
        })?;
        let stream = self.reshardable(&input.stream)?;
        self.check_quota(1)?;
        let m = stream.meta.write();
        if m.status != StreamStatus::Active {
            return Err(self.not_active(&stream, &m.status));
        }
        {
            let id = input.shard_to_split.unwrap_or_default();
            let parent = self.open_shard(&stream, &m, &id)?;
            let (s, e) = (parent.range.start, parent.range.end);
            if key <= s.saturating_add(1) || key >= e {
                return Err(KinesisError::invalid(format!(
                    "NewStartingHashKey {key} used in SplitShard() on shard {} in stream {} under account {} is not both greater than one plus the shard's StartingHashKey {s} and less than the shard's EndingHashKey {e}.",
                    parent.id,
                    stream.name,
                    self.config().account_id
                )));
            }
            let op = PendingReshard::Split {
                shard: parent.index,
                key: key.to_string(),
            };
            let mut plan = Plan::new(&m);
            plan.split(&Piece::Live(parent), key);
            self.reshard(&stream, m, plan, op)?;
        }
        Ok(Empty {})
    }

    /// MergeShards.
    pub fn merge_shards(self: &Arc<Self>, input: MergeShardsInput) -> Result<Empty, KinesisError> {
        let mut v = Violations::new();
        v.required("shardToMerge", &input.shard_to_merge);
        v.required("adjacentShardToMerge", &input.adjacent_shard_to_merge);
        v.finish()?;
        let stream = self.reshardable(&input.stream)?;
        let m = stream.meta.write();
        if m.status != StreamStatus::Active {
            return Err(self.not_active(&stream, &m.status));
        }
        {
            let a_id = input.shard_to_merge.unwrap_or_default();
            let b_id = input.adjacent_shard_to_merge.unwrap_or_default();
            let a = self.open_shard(&stream, &m, &a_id)?;
            let b = self.open_shard(&stream, &m, &b_id)?;
            // The service merges only a shard with the one just above it.
            if !a.range.is_adjacent_below(&b.range) {
                return Err(KinesisError::invalid(format!(
                    "Shards {} and {} in stream {} under account {} are not an adjacent pair of shards eligible for merging",
                    a.id,
                    b.id,
                    stream.name,
                    self.config().account_id
                )));
            }
            let op = PendingReshard::Merge {
                shard: a.index,
                adjacent: b.index,
            };
            let mut plan = Plan::new(&m);
            plan.merge(&Piece::Live(a), &Piece::Live(b));
            self.reshard(&stream, m, plan, op)?;
        }
        Ok(Empty {})
    }

    /// UpdateShardCount with UNIFORM_SCALING.
    pub fn update_shard_count(
        self: &Arc<Self>,
        input: UpdateShardCountInput,
    ) -> Result<UpdateShardCountOutput, KinesisError> {
        let mut v = Violations::new();
        if v.required("targetShardCount", &input.target_shard_count) {
            v.range(
                "targetShardCount",
                input.target_shard_count.unwrap_or(0),
                1,
                100_000,
            );
        }
        if v.required("scalingType", &input.scaling_type) {
            v.one_of(
                "scalingType",
                input.scaling_type.as_deref().unwrap_or_default(),
                &["UNIFORM_SCALING"],
            );
        }
        v.finish()?;
        let target = input.target_shard_count.unwrap_or(1) as usize;
        let stream = self.reshardable(&input.stream)?;
        // The quota reads every stream's shards: check it before taking this
        // stream's write lock (lock order is streams, then one stream's meta).
        let seen = stream.meta.read().open.len();
        if target > seen {
            self.check_quota(target - seen)?;
        }
        let current = {
            let m = stream.meta.write();
            if m.status != StreamStatus::Active {
                return Err(self.not_active(&stream, &m.status));
            }
            let current = m.open.len();
            if target > current * 2 {
                return Err(KinesisError::invalid(format!(
                    "UpdateShardCount cannot scale up to more than double the current shard count ({current}) of stream {}; requested {target}.",
                    stream.name
                )));
            }
            if target * 2 < current {
                return Err(KinesisError::invalid(format!(
                    "UpdateShardCount cannot scale down below half the current shard count ({current}) of stream {}; requested {target}.",
                    stream.name
                )));
            }
            if target > 10_000 {
                return Err(KinesisError::limit_exceeded(
                    "A stream can have at most 10000 shards.",
                ));
            }
            let op = PendingReshard::Rescale {
                target: target as u32,
            };
            let plan = plan_of(&m, &op).unwrap_or_else(|| Plan::new(&m));
            self.reshard(&stream, m, plan, op)?;
            current
        };
        Ok(UpdateShardCountOutput {
            stream_name: stream.name.clone(),
            current_shard_count: current as i64,
            target_shard_count: target as i64,
            stream_arn: Some(stream.arn.clone()),
        })
    }
}

/// The plan for `op` on the shards `m` has now, if they still allow it (they
/// do for a reshard saved while its stream was UPDATING, since nothing else
/// changes the shards then).
fn plan_of(m: &StreamMeta, op: &PendingReshard) -> Option<Plan> {
    let open = |i: u32| m.shard(i).filter(|s| s.is_open()).cloned();
    let mut plan = Plan::new(m);
    match op {
        PendingReshard::Split { shard, key } => {
            let parent = open(*shard)?;
            let key = parse_hash_key(key)?;
            if key <= parent.range.start.saturating_add(1) || key >= parent.range.end {
                return None;
            }
            plan.split(&Piece::Live(parent), key);
        }
        PendingReshard::Merge { shard, adjacent } => {
            let (a, b) = (open(*shard)?, open(*adjacent)?);
            if !a.range.is_adjacent_below(&b.range) {
                return None;
            }
            plan.merge(&Piece::Live(a), &Piece::Live(b));
        }
        PendingReshard::Rescale { target } => {
            let target = (*target).max(1);
            if target as usize != m.open.len() || !is_even(&m.open_ranges(), target as usize) {
                rescale_plan(m, &mut plan, target);
            }
        }
    }
    Some(plan)
}

/// Plan UNIFORM_SCALING to `target` shards as splits, then merges.
fn rescale_plan(m: &StreamMeta, plan: &mut Plan, target: u32) {
    let goal = even_split(target);
    let existing: Vec<u128> = m.open.iter().map(|s| s.range.start).collect();
    // Snap each target boundary to an existing one when they are nearly equal,
    // so doubling or halving does not leave one-key slivers to merge away.
    let tolerance = goal.first().map_or(0, |r| (r.end - r.start) / 1000);
    let goal: Vec<HashRange> = {
        let starts: Vec<u128> = goal
            .iter()
            .map(|r| {
                existing
                    .iter()
                    .copied()
                    .find(|&e| e.abs_diff(r.start) <= tolerance)
                    .unwrap_or(r.start)
            })
            .collect();
        starts
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let end = starts.get(i + 1).map_or(u128::MAX, |n| n - 1);
                HashRange::new(s, end)
            })
            .collect()
    };
    // Phase 1: split every open shard at each goal boundary inside it.
    let mut pieces: Vec<Piece> = Vec::new();
    for shard in &m.open {
        let mut current = Piece::Live(Arc::clone(shard));
        for g in &goal {
            let b = g.start;
            let range = plan.range(&current);
            if b > range.start && b <= range.end {
                let (low, high) = plan.split(&current, b);
                pieces.push(low);
                current = high;
            }
        }
        pieces.push(current);
    }
    pieces.sort_by_key(|p| plan.range(p).start);
    // Phase 2: merge the pieces inside each goal range into one shard.
    for g in &goal {
        let mut inside: Vec<Piece> = pieces
            .iter()
            .filter(|p| {
                let r = plan.range(p);
                r.start >= g.start && r.end <= g.end
            })
            .cloned()
            .collect();
        while inside.len() > 1 {
            let first = inside.remove(0);
            let second = inside.remove(0);
            let merged = plan.merge(&first, &second);
            inside.insert(0, merged);
        }
    }
}

/// A shard a planned step acts on: one that exists, or the i-th planned child.
#[derive(Clone)]
enum Piece {
    Live(Arc<Shard>),
    New(usize),
}

/// A planned child shard.
struct ChildSpec {
    parent: u32,
    adjacent: Option<u32>,
    range: HashRange,
}

/// One step of a reshard, in the order counters are reserved.
enum Step {
    Close(Piece),
    Create(usize),
}

/// A reshard worked out under the meta lock, before any disk work: which
/// shards close and which children appear, in order.
struct Plan {
    first_index: u32,
    children: Vec<ChildSpec>,
    steps: Vec<Step>,
}

impl Plan {
    fn new(m: &StreamMeta) -> Plan {
        Plan {
            first_index: m.next_index(),
            children: Vec::new(),
            steps: Vec::new(),
        }
    }

    fn range(&self, p: &Piece) -> HashRange {
        match p {
            Piece::Live(s) => s.range,
            Piece::New(i) => self.children[*i].range,
        }
    }

    fn index(&self, p: &Piece) -> u32 {
        match p {
            Piece::Live(s) => s.index,
            Piece::New(i) => self.first_index + *i as u32,
        }
    }

    fn create(&mut self, parent: u32, adjacent: Option<u32>, range: HashRange) -> Piece {
        let i = self.children.len();
        self.children.push(ChildSpec {
            parent,
            adjacent,
            range,
        });
        self.steps.push(Step::Create(i));
        Piece::New(i)
    }

    /// Split `parent` at `key`; the two children.
    fn split(&mut self, parent: &Piece, key: u128) -> (Piece, Piece) {
        let (index, range) = (self.index(parent), self.range(parent));
        self.steps.push(Step::Close(parent.clone()));
        let low = self.create(index, None, HashRange::new(range.start, key - 1));
        let high = self.create(index, None, HashRange::new(key, range.end));
        (low, high)
    }

    /// Merge two adjacent shards; the child.
    fn merge(&mut self, first: &Piece, second: &Piece) -> Piece {
        let (a, b) = (self.range(first), self.range(second));
        let parents = (self.index(first), self.index(second));
        self.steps.push(Step::Close(first.clone()));
        self.steps.push(Step::Close(second.clone()));
        let range = HashRange::new(a.start.min(b.start), a.end.max(b.end));
        self.create(parents.0, Some(parents.1), range)
    }

    /// Reserve the counters step by step and build the children over `logs`
    /// (one per child, in order). Nothing is visible until [`Service::switch_to`].
    fn apply(
        self,
        stream: &Stream,
        logs: Vec<Box<dyn ShardLog>>,
        now: i64,
    ) -> Result<Staging, KinesisError> {
        let mut logs: Vec<Option<Box<dyn ShardLog>>> = logs.into_iter().map(Some).collect();
        let mut made: Vec<Option<Arc<Shard>>> = vec![None; self.children.len()];
        let mut closes = Vec::new();
        for step in self.steps {
            match step {
                Step::Close(Piece::Live(shard)) => {
                    let end = stream.counter.take(1).map_err(storage_failure)?;
                    closes.push((shard, end));
                }
                Step::Close(Piece::New(i)) => {
                    // A child of this very reshard, closed before anyone sees it.
                    if let Some(child) = &made[i] {
                        child.close(&stream.counter, now).map_err(storage_failure)?;
                    }
                }
                Step::Create(i) => {
                    let spec = &self.children[i];
                    let log = logs[i]
                        .take()
                        .ok_or_else(|| KinesisError::internal("A planned shard has no log."))?;
                    let start = stream.counter.take(1).map_err(storage_failure)?;
                    made[i] = Some(Arc::new(Shard::new(
                        self.first_index + i as u32,
                        Some(spec.parent),
                        spec.adjacent,
                        spec.range,
                        start,
                        now,
                        log,
                    )));
                }
            }
        }
        Ok(Staging {
            closes,
            children: made.into_iter().flatten().collect(),
            now,
        })
    }
}

/// A reshard ready to switch to: nothing in it is visible to readers or
/// writers until [`Service::switch_to`] applies it.
struct Staging {
    /// Shards that exist now, with the end counters they get at the switch.
    closes: Vec<(Arc<Shard>, u64)>,
    /// New shards in index order; one may already be closed again by a later
    /// step of the same reshard.
    children: Vec<Arc<Shard>>,
    now: i64,
}

fn storage_failure(e: crate::store::StoreError) -> KinesisError {
    KinesisError::internal(e.to_string())
}

fn is_even(open: &[HashRange], target: usize) -> bool {
    open.len() == target
        && open
            .iter()
            .zip(even_split(target as u32))
            .all(|(a, b)| *a == b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use std::time::Duration;

    fn svc() -> Arc<Service> {
        Service::new(BrokerConfig::builder().state_delays(Duration::ZERO).build())
    }

    fn create(svc: &Arc<Service>, n: i64) -> Arc<Stream> {
        svc.create_stream(CreateStreamInput {
            stream_name: Some("s".into()),
            shard_count: Some(n),
            ..Default::default()
        })
        .unwrap();
        svc.stream_by_name("s").unwrap()
    }

    fn check_tiling(m: &StreamMeta) {
        assert_eq!(m.open[0].range.start, 0);
        assert_eq!(m.open.last().unwrap().range.end, u128::MAX);
        for w in m.open.windows(2) {
            assert!(w[0].range.is_adjacent_below(&w[1].range));
        }
    }

    #[test]
    fn uniform_scaling_reaches_every_target_with_real_lineage() {
        for (from, to) in [
            (1, 2),
            (2, 4),
            (3, 2),
            (4, 2),
            (3, 5),
            (5, 3),
            (4, 7),
            (8, 4),
            (6, 6),
        ] {
            let svc = svc();
            let s = create(&svc, from);
            svc.update_shard_count(UpdateShardCountInput {
                stream: StreamRef::name("s"),
                target_shard_count: Some(to),
                scaling_type: Some("UNIFORM_SCALING".into()),
            })
            .unwrap();
            let m = s.meta.read();
            assert_eq!(m.open.len(), to as usize, "{from}->{to}");
            check_tiling(&m);
            for shard in &m.shards {
                if shard.index >= from as u32 {
                    assert!(
                        shard.parent.is_some(),
                        "{from}->{to}: shard {} has no parent",
                        shard.index
                    );
                }
                // A closed shard's range is covered by its children.
                if !shard.is_open() {
                    let kids: Vec<_> = m
                        .shards
                        .iter()
                        .filter(|c| {
                            c.parent == Some(shard.index) || c.adjacent_parent == Some(shard.index)
                        })
                        .collect();
                    assert!(!kids.is_empty());
                }
            }
            // Doubling an even split splits each shard exactly once: no slivers.
            if to == 2 * from {
                assert_eq!(m.shards.len() as i64, from + to, "{from}->{to}");
            }
        }
    }
}
