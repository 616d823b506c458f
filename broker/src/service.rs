//! The Kinesis service state: every stream, and what all operations share
//! (stream lookup, status transitions, retention, tokens).

use crate::catalog::StreamRecord;
use crate::config::BrokerConfig;
use crate::deadline::{Deadlines, Due};
use crate::fault::FaultInjector;
use crate::limiter::{ControlPlaneLimiter, Nanos, ShardLimits};
use crate::metrics::{Metrics, ShardMetrics};
use crate::shard::Shard;
use crate::store::commit::CommitTicket;
use crate::store::durable::DurableStorage;
use crate::store::{MemoryStorage, Storage, StoreError};
use crate::stream::{Stream, StreamMeta, StreamStatus};
use crate::token::TokenSealer;
use kinesis_proto::KinesisError;
use kinesis_proto::model::StreamRef;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The broker's state and operations, independent of HTTP.
pub struct Service {
    /// Settings.
    config: BrokerConfig,
    /// Makes shard logs.
    storage: Arc<dyn Storage>,
    /// Streams by name.
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    /// Names of streams whose CreateStream is making their shard logs.
    creating: Mutex<std::collections::BTreeSet<String>>,
    /// Seals iterators and pagination tokens.
    sealer: TokenSealer,
    /// Prometheus metrics served at `GET /metrics`.
    metrics: Metrics,
    /// Control-plane TPS budgets.
    control_plane: Mutex<ControlPlaneLimiter>,
    /// Faults injected before dispatch.
    faults: FaultInjector,
    /// Origin of the limiters' monotonic clock.
    started: Instant,
    /// Delayed status changes, applied by the background tick.
    deadlines: Deadlines,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    kinesis_proto::codec::Timestamp::now().millis()
}

impl Service {
    /// A service with in-memory storage (whatever `config.durable` says).
    pub fn new(config: BrokerConfig) -> Arc<Self> {
        Self::with_storage(config, Arc::new(MemoryStorage), TokenSealer::random())
    }

    /// The service `config` asks for: on the durable store in `config.durable`,
    /// with every stream recovered from it, or in memory without one.
    pub fn open(config: BrokerConfig) -> Result<Arc<Self>, StoreError> {
        let Some(durable) = config.durable.clone() else {
            return Ok(Self::new(config));
        };
        let storage = DurableStorage::open(durable)?;
        let sealer = TokenSealer::new(storage.token_key()?);
        let storage: Arc<dyn Storage> = Arc::new(storage);
        let loaded = storage.load_streams()?;
        let svc = Self::with_storage(config, Arc::clone(&storage), sealer);
        {
            let mut all = svc.streams.write();
            for l in loaded {
                let stream = l.record.restore(l.logs, l.counter_ceiling, &storage)?;
                tracing::info!(
                    stream = %stream.name,
                    shards = stream.meta.read().shards.len(),
                    "recovered stream"
                );
                all.insert(stream.name.clone(), Arc::new(stream));
            }
        }
        // Statuses that were waiting on a delay came back settled: save that.
        for stream in svc.streams.read().values() {
            let m = stream.meta.read();
            svc.storage
                .save_stream(&StreamRecord::capture(stream, &m))?;
        }
        // A reshard the broker accepted before it stopped is carried out now.
        svc.complete_pending_reshards();
        Ok(svc)
    }

    /// Save a stream's description (a no-op unless the store persists them).
    /// Call it with the stream's meta lock held, right after changing it, so
    /// saves happen in the order of the changes and nothing can use a change
    /// (say, write to a new shard) before it is saved.
    pub fn persist(&self, stream: &Stream, m: &StreamMeta) -> Result<(), KinesisError> {
        if !self.storage.persists() {
            return Ok(());
        }
        self.persist_record(stream, &StreamRecord::capture(stream, m))
    }

    /// Change a stream's description and save it, both under its meta write
    /// lock, so the rule [`persist`](Self::persist) states holds by
    /// construction. `change` checks first and fails before changing anything;
    /// if the save fails, the description is put back as it was.
    pub fn mutate_and_persist<R>(
        &self,
        stream: &Stream,
        change: impl FnOnce(&mut StreamMeta) -> Result<R, KinesisError>,
    ) -> Result<R, KinesisError> {
        let mut m = stream.meta.write();
        self.mutate_locked(stream, &mut m, change)
    }

    /// [`mutate_and_persist`](Self::mutate_and_persist) with the stream's
    /// meta write lock already held (`m`), for a caller that planned the
    /// change under it.
    pub fn mutate_locked<R>(
        &self,
        stream: &Stream,
        m: &mut StreamMeta,
        change: impl FnOnce(&mut StreamMeta) -> Result<R, KinesisError>,
    ) -> Result<R, KinesisError> {
        if !self.storage.persists() {
            return change(m);
        }
        let before = m.clone();
        let out = change(m)?;
        if let Err(e) = self.persist(stream, m) {
            *m = before;
            return Err(e);
        }
        Ok(out)
    }

    /// Save `record` as `stream`'s description (a no-op unless the store
    /// persists them); the same ordering rules as [`persist`](Self::persist).
    pub fn persist_record(
        &self,
        stream: &Stream,
        record: &StreamRecord,
    ) -> Result<(), KinesisError> {
        if !self.storage.persists() {
            return Ok(());
        }
        self.storage.save_stream(record).map_err(|e| {
            tracing::error!(stream = %stream.name, error = %e, "cannot save the stream");
            KinesisError::internal(format!("Cannot save stream {}: {e}", stream.name))
        })
    }

    /// A ticket for the writes made so far, to await before answering a
    /// PutRecord/PutRecords; `None` when nothing needs awaiting.
    pub fn commit_ticket(&self) -> Option<CommitTicket> {
        self.storage.commit_ticket()
    }

    /// A service on the given storage.
    pub fn with_storage(
        config: BrokerConfig,
        storage: Arc<dyn Storage>,
        sealer: TokenSealer,
    ) -> Arc<Self> {
        let control_plane = Mutex::new(ControlPlaneLimiter::new(config.limits.clone()));
        let faults = FaultInjector::new(config.faults.clone().unwrap_or_default());
        Arc::new(Service {
            config,
            storage,
            streams: RwLock::new(BTreeMap::new()),
            creating: Mutex::new(std::collections::BTreeSet::new()),
            sealer,
            metrics: Metrics::new(),
            control_plane,
            faults,
            started: Instant::now(),
            deadlines: Deadlines::new(),
        })
    }

    /// Settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The store that makes shard logs and keeps stream descriptions.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Streams by name.
    pub fn streams(&self) -> &RwLock<BTreeMap<String, Arc<Stream>>> {
        &self.streams
    }

    /// Names of streams whose CreateStream is making their shard logs.
    pub fn creating(&self) -> &Mutex<std::collections::BTreeSet<String>> {
        &self.creating
    }

    /// Seals iterators and pagination tokens.
    pub fn sealer(&self) -> &TokenSealer {
        &self.sealer
    }

    /// Prometheus metrics served at `GET /metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Control-plane TPS budgets.
    pub fn control_plane(&self) -> &Mutex<ControlPlaneLimiter> {
        &self.control_plane
    }

    /// Faults injected before dispatch.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Now on the limiters' monotonic clock (time since the service started).
    pub fn limiter_now(&self) -> Nanos {
        Nanos::since(self.started, Instant::now())
    }

    /// A shard's throughput budgets, made from its stream's limit profile on first use.
    pub fn shard_limits<'a>(&self, stream: &Stream, shard: &'a Shard) -> &'a Mutex<ShardLimits> {
        shard.limits(|| {
            ShardLimits::new(
                &self.config.limits.for_stream(&stream.name),
                self.limiter_now(),
            )
        })
    }

    /// A shard's metric handles, or `None` when metrics are off.
    pub fn shard_metrics<'a>(&self, stream: &Stream, shard: &'a Shard) -> Option<&'a ShardMetrics> {
        self.config
            .metrics
            .then(|| shard.metrics(|| self.metrics.shard(&stream.name, &shard.id)))
    }

    /// This broker's ARN for a stream name.
    pub fn stream_arn(&self, name: &str) -> String {
        crate::arn::stream_arn(&self.config.region, &self.config.account_id, name)
    }

    /// "Stream X under account N not found."
    pub fn not_found(&self, name: &str) -> KinesisError {
        KinesisError::not_found(format!(
            "Stream {name} under account {} not found.",
            self.config.account_id
        ))
    }

    /// Resolve a StreamName/StreamARN pair to its name, checking they agree.
    pub fn stream_name_of(&self, r: &StreamRef) -> Result<String, KinesisError> {
        let mut v = crate::validation::Violations::new();
        if let Some(n) = &r.stream_name {
            v.name("streamName", n);
        }
        if let Some(a) = &r.stream_arn {
            v.stream_arn("streamARN", a);
        }
        v.finish()?;
        let from_arn = match r
            .stream_arn
            .as_deref()
            .and_then(crate::arn::parse_stream_arn)
        {
            Some((region, account, name)) => Some(self.local_stream(region, account, name)?),
            None => None,
        };
        match (&r.stream_name, from_arn) {
            (None, None) => Err(KinesisError::invalid(
                "Neither StreamName nor StreamARN was provided.",
            )),
            (Some(n), None) => Ok(n.clone()),
            (None, Some(a)) => Ok(a),
            (Some(n), Some(a)) if *n == a => Ok(a),
            (Some(n), Some(a)) => Err(KinesisError::invalid(format!(
                "StreamARN stream {a} and StreamName {n} do not refer to the same stream."
            ))),
        }
    }

    /// The name of a stream an ARN names, if the ARN is this broker's: a
    /// stream of another account is refused as Kinesis refuses a caller no
    /// resource policy lets in, and another region has no such stream here
    /// (docs/broker-security.md).
    pub(crate) fn local_stream(
        &self,
        region: &str,
        account: &str,
        name: &str,
    ) -> Result<String, KinesisError> {
        if account != self.config.account_id {
            return Err(KinesisError::new(
                kinesis_proto::ErrorCode::AccessDenied,
                format!(
                    "User: arn:aws:iam::{}:root is not authorized to access resource {} because no resource-based policy allows it.",
                    self.config.account_id,
                    crate::arn::stream_arn(region, account, name)
                ),
            ));
        }
        if region != self.config.region {
            return Err(self.not_found(name));
        }
        Ok(name.to_string())
    }

    /// The stream a request names, whatever its status.
    pub fn stream(&self, r: &StreamRef) -> Result<Arc<Stream>, KinesisError> {
        let name = self.stream_name_of(r)?;
        self.stream_by_name(&name)
    }

    /// The stream called `name`.
    pub fn stream_by_name(&self, name: &str) -> Result<Arc<Stream>, KinesisError> {
        self.streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// The stream, refusing data-plane calls while it is CREATING.
    pub fn readable_stream(&self, r: &StreamRef) -> Result<Arc<Stream>, KinesisError> {
        let s = self.stream(r)?;
        if s.meta.read().status == StreamStatus::Creating {
            return Err(self.not_found(&s.name));
        }
        Ok(s)
    }

    /// "Stream X under account N not ACTIVE, instead in state S".
    pub fn not_active(&self, s: &Stream, status: &StreamStatus) -> KinesisError {
        KinesisError::in_use(format!(
            "Stream {} under account {} not ACTIVE, instead in state {}",
            s.name,
            self.config.account_id,
            status.as_str()
        ))
    }

    /// Retention cut-off for a stream: records that arrived before it are gone.
    pub fn min_arrival_ms(&self, retention_hours: u32, now: i64) -> i64 {
        let hour_ms = self.config.retention_hour.as_millis() as i64;
        now.saturating_sub(hour_ms.saturating_mul(i64::from(retention_hours)))
    }

    /// Move a stream to `status` now, and to `then` after `delay` unless
    /// something else changed its status first.
    pub fn transition(
        &self,
        stream: &Arc<Stream>,
        status: StreamStatus,
        then: StreamStatus,
        delay: Duration,
    ) {
        let mut m = stream.meta.write();
        m.status = status;
        m.status_epoch += 1;
        if delay.is_zero() {
            m.status = then;
            m.status_epoch += 1;
            return;
        }
        let epoch = m.status_epoch;
        drop(m);
        self.deadlines.schedule(
            delay,
            Due::Status {
                stream: Arc::clone(stream),
                epoch,
                then,
            },
        );
    }

    /// Remove a DELETING stream after `delay`.
    pub fn remove_after(&self, stream: &Arc<Stream>, delay: Duration) {
        if delay.is_zero() {
            self.remove(stream);
        } else {
            self.deadlines.schedule(
                delay,
                Due::Remove {
                    stream: Arc::clone(stream),
                },
            );
        }
    }

    /// Apply `due` after `delay`, or now when `delay` is zero.
    pub fn schedule(self: &Arc<Self>, delay: Duration, due: Due) {
        if delay.is_zero() {
            self.apply(due);
        } else {
            self.deadlines.schedule(delay, due);
        }
    }

    /// Whether some delayed status change is due by `now`.
    pub fn any_due(&self, now: Instant) -> bool {
        self.deadlines.any_due(now)
    }

    /// Apply every delayed status change due by `now`. Removing a stream and
    /// carrying out a reshard block on the disk: call it off the async runtime.
    pub fn apply_due(self: &Arc<Self>, now: Instant) {
        for due in self.deadlines.take_due(now) {
            self.apply(due);
        }
    }

    /// Apply one delayed status change.
    fn apply(self: &Arc<Self>, due: Due) {
        match due {
            Due::Status {
                stream,
                epoch,
                then,
            } => {
                let mut m = stream.meta.write();
                if m.status_epoch == epoch {
                    m.status = then;
                    m.status_epoch += 1;
                }
            }
            Due::Remove { stream } => self.remove(&stream),
            Due::Consumer {
                stream,
                name,
                arn,
                to,
            } => {
                let mut m = stream.meta.write();
                match to {
                    Some(status) => {
                        if let Some(c) = m.consumers.get_mut(&name).filter(|c| c.arn == arn) {
                            c.status = status;
                        }
                    }
                    None => {
                        if m.consumers.get(&name).is_some_and(|c| c.arn == arn) {
                            m.consumers.remove(&name);
                        }
                    }
                }
            }
            Due::Reshard { stream, epoch } => self.reshard_due(&stream, epoch),
        }
    }

    /// Remove a DELETING stream now, if it is still the one by its name.
    fn remove(&self, stream: &Arc<Stream>) {
        let mut all = self.streams.write();
        if all
            .get(&stream.name)
            .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            all.remove(&stream.name);
            drop(all);
            if let Err(e) = self.storage.remove_stream(&stream.name, stream.created_ms) {
                tracing::error!(stream = %stream.name, error = %e, "cannot remove the stream's data");
            }
            // A stream re-created under the same name starts from zero.
            self.control_plane.lock().forget_stream(&stream.name);
            for shard in &stream.meta.read().shards {
                self.metrics.forget_shard(&stream.name, &shard.id);
            }
        }
    }

    /// Drop records past retention from every shard, and reclaim closed shards
    /// whose records have all expired: their logs are dropped (closing their
    /// files), the description saved saying so, then their files deleted and
    /// their metrics forgotten. Blocks on the disk: call it off the async runtime.
    pub fn trim_expired(&self, now: i64) {
        let streams: Vec<Arc<Stream>> = self.streams.read().values().cloned().collect();
        for s in streams {
            let m = s.meta.read();
            let min = self.min_arrival_ms(m.retention_hours, now);
            let mut reclaimed = Vec::new();
            for shard in &m.shards {
                shard.trim(min);
                let expired = shard.status().closed_ms.is_some_and(|c| c < min);
                if expired && !shard.is_reclaimed() && shard.reclaim() {
                    reclaimed.push(Arc::clone(shard));
                }
            }
            if reclaimed.is_empty() {
                continue;
            }
            // Saved before the files go, so a restart never recreates them.
            if self.persist(&s, &m).is_err() {
                continue;
            }
            drop(m);
            for shard in reclaimed {
                if let Err(e) = self.storage.remove_log(&s.name, s.created_ms, shard.index) {
                    tracing::warn!(stream = %s.name, shard = %shard.id, error = %e, "cannot delete an expired shard's files");
                }
                self.metrics.forget_shard(&s.name, &shard.id);
                tracing::debug!(stream = %s.name, shard = %shard.id, "reclaimed an expired closed shard");
            }
        }
    }

    /// Open shards across all streams (for the quota).
    pub fn open_shard_count(&self) -> usize {
        self.streams
            .read()
            .values()
            .map(|s| s.meta.read().open.len())
            .sum()
    }
}
