//! The worker (KCL `Scheduler`): syncs shards into leases, takes and renews
//! leases (moving them by graceful hand-off with [`Coordination::Kcl3`], the
//! default), runs one shard consumer per held lease, and shuts down gracefully.
//!
//! ```no_run
//! use std::sync::Arc;
//! use kinesis_kcl::config::Config;
//! use kinesis_kcl::lease_store::SqliteLeaseStore;
//! use kinesis_kcl::scheduler::Scheduler;
//! use kinesis_kcl::shard_record_processor::*;
//! use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
//! use kinesis_proto::client::{Client, ClientConfig};
//!
//! struct Printer;
//!
//! impl ShardRecordProcessor for Printer {
//!     async fn initialize(&mut self, _input: InitializationInput) {}
//!     async fn process_records(&mut self, input: ProcessRecordsInput, cp: &RecordProcessorCheckpointer) {
//!         for r in &input.records {
//!             println!("{}", String::from_utf8_lossy(&r.data));
//!         }
//!         let _ = cp.checkpoint().await;
//!     }
//!     async fn lease_lost(&mut self) {}
//!     async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
//!         let _ = cp.checkpoint().await;
//!     }
//!     async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
//!         let _ = cp.checkpoint().await;
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::builder().endpoint("http://127.0.0.1:4567").build())?;
//! let store = Arc::new(SqliteLeaseStore::open("leases.db", "my-app").await?);
//! let config = Config::builder("my-stream", "my-app").build()?;
//! let scheduler = Scheduler::new(config, client, store, |_shard: &str| Printer)?;
//! let shutdown = scheduler.shutdown_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     shutdown.request();
//! });
//! scheduler.run().await?;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kinesis_proto::client::Client;
use kinesis_proto::model::{DescribeStreamSummaryInput, StreamRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[cfg(doc)]
use crate::config::Coordination;
use crate::config::{Config, Retrieval};
use crate::error::Error;
use crate::fan_out::register_stream_consumer;
use crate::lease_config::duration_millis;
use crate::lease_coordinator::LeaseCoordinator;
use crate::lease_store::{LeaseStore, StreamScopedStore, delete_stream_leases};
use crate::metrics::Metrics;
use crate::multi_stream::{FormerStreams, MultiStreamTracker};
use crate::shard_consumer::{self, ConsumerContext, Control, Exit};
use crate::shard_record_processor::ShardRecordProcessorFactory;
use crate::shard_sync::sync_shards;
use crate::stream_identifier::StreamIdentifier;

/// Asks a running [`Scheduler`] to shut down gracefully; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    requested: Arc<watch::Sender<bool>>,
    done: watch::Receiver<bool>,
}

impl ShutdownHandle {
    /// Start the graceful shutdown: `shutdown_requested` on every processor, then
    /// every lease released. Returns at once; [`Scheduler::run`] returns when done.
    pub fn request(&self) {
        self.requested.send_replace(true);
    }

    /// Request the shutdown and wait until the scheduler has released its leases.
    pub async fn graceful_shutdown(&self) {
        self.request();
        let mut done = self.done.clone();
        // An error means the scheduler is gone, which is just as done.
        let _ = done.wait_for(|d| *d).await;
    }
}

/// Aborts a background task when dropped.
struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One worker of a consumer application.
pub struct Scheduler<F: ShardRecordProcessorFactory> {
    config: Arc<Config>,
    client: Client,
    factory: Arc<F>,
    coordinator: Arc<LeaseCoordinator>,
    metrics: Metrics,
    requested: Arc<watch::Sender<bool>>,
    done: Arc<watch::Sender<bool>>,
    /// Several streams instead of `config.stream_name`.
    tracker: Option<MultiStreamTracker>,
}

/// The consumer context of each stream, by lease-key prefix ("" for a single stream).
type Contexts = Arc<parking_lot::Mutex<BTreeMap<String, Arc<ConsumerContext>>>>;

impl<F: ShardRecordProcessorFactory> std::fmt::Debug for Scheduler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct RunningConsumer {
    control: watch::Sender<Control>,
    task: JoinHandle<Exit>,
}

impl<F: ShardRecordProcessorFactory> Scheduler<F> {
    /// A worker consuming `config.stream_name` with leases in `lease_store`.
    pub fn new(
        config: Config,
        client: Client,
        lease_store: Arc<dyn LeaseStore>,
        factory: F,
    ) -> Result<Self, Error> {
        config.validate()?;
        let metrics = Metrics::new(&config.worker_identifier)?;
        let coordinator = Arc::new(LeaseCoordinator::new(
            lease_store,
            &config.worker_identifier,
            config.lease.clone(),
            config.coordination,
            metrics.clone(),
        ));
        Ok(Scheduler {
            config: Arc::new(config),
            client,
            factory: Arc::new(factory),
            coordinator,
            metrics,
            requested: Arc::new(watch::channel(false).0),
            done: Arc::new(watch::channel(false).0),
            tracker: None,
        })
    }

    /// A worker consuming every stream `tracker` lists (KCL multi-stream mode), with
    /// leases keyed `account:stream:creationEpoch:shardId` in `lease_store`;
    /// `config.stream_name` is not used. The factory is given each lease key, which
    /// names the stream. Polling only: enhanced fan-out is refused.
    pub fn new_multi_stream(
        config: Config,
        client: Client,
        lease_store: Arc<dyn LeaseStore>,
        tracker: MultiStreamTracker,
        factory: F,
    ) -> Result<Self, Error> {
        if config.retrieval != Retrieval::Polling {
            return Err(Error::InvalidConfig(
                "a multi-stream scheduler reads by polling only".into(),
            ));
        }
        if tracker.refresh_interval.is_zero() {
            return Err(Error::InvalidConfig(
                "the stream list refresh interval must be positive".into(),
            ));
        }
        let mut scheduler = Self::new(config, client, lease_store, factory)?;
        scheduler.tracker = Some(tracker);
        Ok(scheduler)
    }

    /// This worker's identifier.
    pub fn worker_identifier(&self) -> &str {
        &self.config.worker_identifier
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// This worker's Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A handle to shut the worker down gracefully from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            requested: Arc::clone(&self.requested),
            done: self.done.subscribe(),
        }
    }

    /// Run until a graceful shutdown completes (or the first shard sync fails).
    ///
    /// Dropping the future instead stops the worker abruptly: its leases then
    /// expire after the failover time, as if the process had died.
    pub async fn run(self) -> Result<(), Error> {
        let result = self.run_inner().await;
        self.done.send_replace(true);
        result
    }

    async fn run_inner(&self) -> Result<(), Error> {
        let mut requested = self.requested.subscribe();
        let contexts: Contexts = Arc::default();
        let (syncer, renewer, taker) = if let Some(tracker) = &self.tracker {
            let mut streams = StreamSet::default();
            self.sync_handle()
                .refresh(tracker, &mut streams, &contexts, None)
                .await;
            if *requested.borrow() {
                return Ok(());
            }
            (
                self.spawn_multi_stream_sync(tracker.clone(), streams, Arc::clone(&contexts)),
                self.spawn_renewer(),
                (self.spawn_taker(), self.spawn_leader()),
            )
        } else {
            let stream = StreamRef::name(self.config.stream_name.clone());
            self.initial_shard_sync(&stream, &mut requested).await?;
            if *requested.borrow() {
                return Ok(());
            }
            // Registered before any lease is taken, so a failure leaves nothing held.
            let consumer_arn = match &self.config.retrieval {
                Retrieval::FanOut { consumer_name } => {
                    Some(register_stream_consumer(&self.client, &stream, consumer_name).await?)
                }
                _ => None,
            };
            let renewer = self.spawn_renewer();
            let taker = (self.spawn_taker(), self.spawn_leader());
            let syncer = self.spawn_shard_sync(stream.clone());
            contexts.lock().insert(
                String::new(),
                Arc::new(ConsumerContext {
                    client: self.client.clone(),
                    stream,
                    config: Arc::clone(&self.config),
                    coordinator: Arc::clone(&self.coordinator),
                    metrics: self.metrics.clone(),
                    consumer_arn,
                    leases: Arc::clone(self.coordinator.store()),
                    key_prefix: String::new(),
                }),
            );
            (syncer, renewer, taker)
        };

        let mut consumers: BTreeMap<String, RunningConsumer> = BTreeMap::new();
        // Leases whose shard is finished: held (and renewed) but needing no consumer.
        let mut finished: BTreeSet<String> = BTreeSet::new();
        loop {
            if *requested.borrow() {
                break;
            }
            self.dispatch(&contexts, &mut consumers, &mut finished)
                .await;
            tokio::select! {
                _ = tokio::time::sleep(self.config.shard_consumer_dispatch_poll_interval) => {}
                _ = self.coordinator.changed() => {}
                _ = requested.changed() => {}
            }
        }

        // Graceful shutdown: no new leases, final checkpoints, then release everything.
        tracing::info!(worker = %self.config.worker_identifier, "graceful shutdown");
        drop(taker);
        drop(syncer);
        self.coordinator.resign().await;
        // Hand-offs asked of this worker go back to their owners before it goes.
        self.coordinator.disown_unheld().await;
        for c in consumers.values() {
            c.control.send_replace(Control::Shutdown);
        }
        for (key, c) in std::mem::take(&mut consumers) {
            if let Err(e) = c.task.await {
                tracing::error!(shard = %key, error = %e, "shard consumer panicked");
            }
        }
        for key in self.coordinator.held_lease_keys() {
            if let Err(e) = self.coordinator.release(&key).await {
                tracing::warn!(lease = %key, error = %e, "releasing the lease failed; it will expire");
            }
        }
        // Leases passed on to this worker while it was stopping.
        self.coordinator.disown_unheld().await;
        drop(renewer);
        Ok(())
    }

    /// Match consumers with the held leases: start new ones, stop lost ones, reap ended ones.
    async fn dispatch(
        &self,
        contexts: &Contexts,
        consumers: &mut BTreeMap<String, RunningConsumer>,
        finished: &mut BTreeSet<String>,
    ) {
        let held: BTreeSet<String> = self.coordinator.held_lease_keys().into_iter().collect();
        finished.retain(|k| held.contains(k));

        let ended: Vec<String> = consumers
            .iter()
            .filter(|(_, c)| c.task.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for key in ended {
            let Some(c) = consumers.remove(&key) else {
                continue;
            };
            match c.task.await {
                Ok(Exit::ShardEnded) if held.contains(&key) => {
                    finished.insert(key);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(shard = %key, error = %e, "shard consumer panicked"),
            }
        }

        // Leases to hand off: their consumers finish and checkpoint first; a lease
        // without a running consumer has nothing to finish and is passed on at once.
        let handoffs = self.coordinator.handoff_keys();
        for key in &handoffs {
            match consumers.get(key) {
                Some(c) => {
                    c.control.send_if_modified(|v| {
                        let changed = *v == Control::Run;
                        if changed {
                            *v = Control::Handoff;
                        }
                        changed
                    });
                }
                None => {
                    finished.remove(key);
                    let _ = self.coordinator.complete_handoff(key).await;
                }
            }
        }

        for (key, c) in consumers.iter() {
            if !held.contains(key) {
                c.control.send_if_modified(|v| {
                    let changed = *v == Control::Run;
                    if changed {
                        *v = Control::LeaseLost;
                    }
                    changed
                });
            }
        }

        for key in held {
            if consumers.contains_key(&key) || finished.contains(&key) || handoffs.contains(&key) {
                continue;
            }
            let ctx = {
                let contexts = contexts.lock();
                match (&self.tracker, StreamIdentifier::split_lease_key(&key)) {
                    (None, _) => contexts.get("").cloned(),
                    (Some(_), Some((stream, _))) => {
                        contexts.get(&stream.lease_key_prefix()).cloned()
                    }
                    (Some(_), None) => None,
                }
            };
            // A lease of a stream this worker does not consume (yet): leave it be.
            let Some(ctx) = ctx else {
                continue;
            };
            let (control, rx) = watch::channel(Control::Run);
            let task = tokio::spawn(shard_consumer::run(
                ctx,
                Arc::clone(&self.factory),
                key.clone(),
                rx,
            ));
            consumers.insert(key, RunningConsumer { control, task });
        }
    }

    async fn initial_shard_sync(
        &self,
        stream: &StreamRef,
        requested: &mut watch::Receiver<bool>,
    ) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.shard_sync(stream).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= self.config.max_list_shards_retry_attempts => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "shard sync failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.list_shards_backoff_time) => {}
                        _ = requested.wait_for(|r| *r) => return Ok(()),
                    }
                }
            }
        }
    }

    async fn shard_sync(&self, stream: &StreamRef) -> Result<(), Error> {
        let outcome = sync_shards(
            &self.client,
            stream,
            self.coordinator.store().as_ref(),
            &self.config.initial_position_in_stream,
            self.config.cleanup_leases_upon_shard_completion,
        )
        .await?;
        if !outcome.created.is_empty() || !outcome.deleted.is_empty() {
            tracing::info!(created = ?outcome.created, deleted = ?outcome.deleted, "shard sync");
        }
        Ok(())
    }

    fn sync_handle(&self) -> SyncHandle {
        SyncHandle {
            config: Arc::clone(&self.config),
            client: self.client.clone(),
            coordinator: Arc::clone(&self.coordinator),
            metrics: self.metrics.clone(),
        }
    }

    fn spawn_multi_stream_sync(
        &self,
        tracker: MultiStreamTracker,
        mut streams: StreamSet,
        contexts: Contexts,
    ) -> TaskGuard {
        let handle = self.sync_handle();
        let interval = tracker
            .refresh_interval
            .min(self.config.shard_sync_interval);
        TaskGuard(tokio::spawn(async move {
            let origin = std::time::Instant::now();
            loop {
                tokio::time::sleep(interval).await;
                let now_ms = duration_millis(origin.elapsed());
                handle
                    .refresh(&tracker, &mut streams, &contexts, Some(now_ms))
                    .await;
            }
        }))
    }

    fn spawn_renewer(&self) -> TaskGuard {
        let coordinator = Arc::clone(&self.coordinator);
        let interval = coordinator.renewer_interval();
        TaskGuard(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                coordinator.renew_leases().await;
            }
        }))
    }

    fn spawn_taker(&self) -> TaskGuard {
        let coordinator = Arc::clone(&self.coordinator);
        let interval = self.config.effective_lease_taker_interval();
        TaskGuard(tokio::spawn(async move {
            loop {
                if let Err(e) = coordinator.take_leases().await {
                    tracing::warn!(error = %e, "lease taker run failed");
                }
                tokio::time::sleep(interval).await;
            }
        }))
    }

    /// The KCL 3.x worker-metrics reporter and leader election (a no-op otherwise).
    fn spawn_leader(&self) -> TaskGuard {
        let coordinator = Arc::clone(&self.coordinator);
        let interval = coordinator.leader_interval();
        TaskGuard(tokio::spawn(async move {
            loop {
                coordinator.lead().await;
                tokio::time::sleep(interval).await;
            }
        }))
    }

    fn spawn_shard_sync(&self, stream: StreamRef) -> TaskGuard {
        let interval = self.config.shard_sync_interval;
        let client = self.client.clone();
        let coordinator = Arc::clone(&self.coordinator);
        let initial = self.config.initial_position_in_stream;
        let cleanup = self.config.cleanup_leases_upon_shard_completion;
        TaskGuard(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let result = sync_shards(
                    &client,
                    &stream,
                    coordinator.store().as_ref(),
                    &initial,
                    cleanup,
                )
                .await;
                match result {
                    Ok(o) if !o.created.is_empty() || !o.deleted.is_empty() => {
                        tracing::info!(created = ?o.created, deleted = ?o.deleted, "shard sync");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "shard sync failed"),
                }
            }
        }))
    }
}

/// The streams a multi-stream worker knows, by name, and those dropped from its list.
#[derive(Debug, Default)]
struct StreamSet {
    by_name: BTreeMap<String, StreamIdentifier>,
    former: FormerStreams,
}

/// What the multi-stream sync task needs of its scheduler.
struct SyncHandle {
    config: Arc<Config>,
    client: Client,
    coordinator: Arc<LeaseCoordinator>,
    metrics: Metrics,
}

/// A stream's identifier: its ARN's account and its creation time.
async fn resolve_stream(client: &Client, name: &str) -> Result<StreamIdentifier, Error> {
    let summary = client
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name(name),
        })
        .await
        .map_err(|e| Error::kinesis("DescribeStreamSummary", e))?
        .stream_description_summary;
    let epoch = u64::try_from(summary.stream_creation_timestamp.millis() / 1_000).unwrap_or(0);
    StreamIdentifier::from_arn(&summary.stream_arn, epoch)
}

impl SyncHandle {
    /// Re-read the stream list: resolve new streams, sync every stream's shards into
    /// leases, and (given the time) delete the leases of streams gone for the deletion wait.
    async fn refresh(
        &self,
        tracker: &MultiStreamTracker,
        streams: &mut StreamSet,
        contexts: &Contexts,
        now_ms: Option<u64>,
    ) {
        let names = tracker.stream_names();
        streams.by_name.retain(|name, _| names.contains(name));
        for name in &names {
            if streams.by_name.contains_key(name) {
                continue;
            }
            match resolve_stream(&self.client, name).await {
                Ok(id) => {
                    tracing::info!(stream = %id, "consuming stream");
                    streams.by_name.insert(name.clone(), id);
                }
                Err(e) => tracing::warn!(stream = %name, error = %e, "cannot resolve stream"),
            }
        }
        let store = self.coordinator.store();
        {
            let mut contexts = contexts.lock();
            let listed: BTreeSet<String> = streams
                .by_name
                .values()
                .map(StreamIdentifier::lease_key_prefix)
                .collect();
            contexts.retain(|prefix, _| listed.contains(prefix));
            for (name, id) in &streams.by_name {
                contexts.entry(id.lease_key_prefix()).or_insert_with(|| {
                    Arc::new(ConsumerContext {
                        client: self.client.clone(),
                        stream: StreamRef::name(name.clone()),
                        config: Arc::clone(&self.config),
                        coordinator: Arc::clone(&self.coordinator),
                        metrics: self.metrics.clone(),
                        consumer_arn: None,
                        leases: Arc::new(StreamScopedStore::new(Arc::clone(store), id.clone())),
                        key_prefix: id.lease_key_prefix(),
                    })
                });
            }
        }
        for (name, id) in &streams.by_name {
            let scoped = StreamScopedStore::new(Arc::clone(store), id.clone());
            let result = sync_shards(
                &self.client,
                &StreamRef::name(name.clone()),
                &scoped,
                &self.config.initial_position_in_stream,
                self.config.cleanup_leases_upon_shard_completion,
            )
            .await;
            match result {
                Ok(o) if !o.created.is_empty() || !o.deleted.is_empty() => {
                    tracing::info!(stream = %id, created = ?o.created, deleted = ?o.deleted, "shard sync");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(stream = %id, error = %e, "shard sync failed"),
            }
        }
        let (Some(now_ms), Some(wait)) = (now_ms, tracker.former_streams_deletion_wait) else {
            return;
        };
        let leased: BTreeSet<StreamIdentifier> = match store.list().await {
            Ok(leases) => leases
                .iter()
                .filter_map(|l| StreamIdentifier::split_lease_key(&l.lease_key).map(|(s, _)| s))
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot scan for former streams");
                return;
            }
        };
        let listed: BTreeSet<StreamIdentifier> = streams.by_name.values().cloned().collect();
        for stream in streams
            .former
            .due(&listed, &leased, now_ms, duration_millis(wait))
        {
            match delete_stream_leases(store.as_ref(), &stream).await {
                Ok(deleted) => {
                    tracing::info!(stream = %stream, deleted = deleted.len(), "former stream's leases deleted")
                }
                Err(e) => {
                    tracing::warn!(stream = %stream, error = %e, "deleting a former stream's leases failed")
                }
            }
        }
    }
}
