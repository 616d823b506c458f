//! The async layer: [`Producer`], the task that drives the [`Pipeline`], and one task per
//! PutRecords request. The pipeline task only routes and schedules; requests encode their
//! aggregates, call Kinesis, sort the answers and resolve handles on their own tasks, so the
//! expensive per-record work (MD5, base64, completion) spreads over the runtime's threads.

use crate::budget::{Budget, Refused};
use crate::config::Config;
use crate::error::{Error, RecordFailure};
use crate::handle::{Completion, Completions, PutHandle, PutOutcome, PutResult};
use crate::metrics::{Metrics, ReceivedCounts, RetriesPerRecord};
use crate::outstanding::Outstanding;
use crate::pipeline::{Actions, Batch, Done, Pipeline};
use crate::record::{Record, Rejected, UserRecord};
use crate::retrier::{self, Landed, Verdicts};
use kinesis_proto::aggregation::{Aggregator, seal_all};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::codec::Blob;
use kinesis_proto::hash_key::hash_keys_for_partition_keys;
use kinesis_proto::model::{PutRecordsInput, Shard, StreamRef};
use parking_lot::Mutex;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// User records resolved together after a PutRecords answer: enough that settling the budget,
/// counters and flush epochs is rare per record, few enough that their results stay in cache.
const RESOLVE_RUN: usize = 256;

/// Most messages the pipeline task takes per wake-up.
const INTAKE_BATCH: usize = 4096;

/// A Kinesis producer: aggregation, per-shard batching and rate limiting, retries until
/// `RecordTtl`, bounded memory, and a future per record. Cheap to clone; all clones share one
/// pipeline.
///
/// ```no_run
/// use kinesis_kpl::{Config, Producer, Record};
/// # async fn demo() -> Result<(), kinesis_kpl::Error> {
/// let producer = Producer::new(Config::builder().endpoint("http://127.0.0.1:4567").build())?;
/// let handle = producer.put(Record::new("orders", "customer-42", "hello")).await?;
/// let put = handle.await?;
/// println!("{} {} {}", put.shard_id, put.sequence_number, put.sub_sequence_number);
/// let report = producer.shutdown().await;
/// assert_eq!(report.failed, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Drop for Inner {
    // Dropping the last clone drains in the background: nothing buffered is abandoned.
    fn drop(&mut self) {
        self.shared.budget.close();
        let _ = self.tx.send(Msg::Close(None));
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("outstanding_records", &self.outstanding_records())
            .field("buffered_bytes", &self.buffered_bytes())
            .finish_non_exhaustive()
    }
}

/// A record that failed, with its failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// The record as it was put.
    pub record: Record,
    /// Why it failed.
    pub failure: RecordFailure,
}

/// What [`Producer::shutdown`] reports once everything has drained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// User records put over the producer's life.
    pub succeeded: u64,
    /// User records failed over the producer's life.
    pub failed: u64,
    /// The records that failed while shutting down, and earlier failures nobody saw (their
    /// handle had been dropped), up to `Config::max_reported_failures` of the latter.
    pub failures: Vec<FailedRecord>,
    /// Unseen failures left out of `failures` beyond that limit (still counted in `failed`).
    pub failures_omitted: u64,
}

enum Msg {
    Put(UserRecord),
    PutAll(Vec<UserRecord>),
    Done(Done),
    Map(usize, Result<Vec<Shard>, String>),
    Flush(oneshot::Sender<u64>),
    Close(Option<oneshot::Sender<()>>),
}

/// State shared by the producer, its pipeline task and its request tasks.
struct Shared {
    config: Arc<Config>,
    budget: Budget,
    metrics: Metrics,
    outstanding: Outstanding,
    succeeded: AtomicU64,
    failed: AtomicU64,
    draining: AtomicBool,
    failures: Mutex<Vec<FailedRecord>>,
    unseen_kept: AtomicU64,
    failures_omitted: AtomicU64,
}

impl Producer {
    /// Starts a producer; must be called within a Tokio runtime. Fails on an invalid config.
    pub fn new(config: Config) -> Result<Producer, Error> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("Producer::new must be called within a Tokio runtime".into())
        })?;
        let mut client_config = ClientConfig::builder()
            .region(config.region.clone())
            .request_timeout(config.request_timeout)
            .connect_timeout(config.connect_timeout)
            // One more than the requests in flight, so a shard map refresh never queues.
            .max_connections(config.max_connections + 1);
        if let Some(endpoint) = &config.endpoint {
            client_config = client_config.endpoint(endpoint.clone());
        }
        if let Some(provider) = &config.credentials_provider {
            client_config = client_config.credentials_provider(Arc::clone(provider));
        }
        // Fixed keys win over a provider (the client keeps whichever is set last).
        if let Some(creds) = &config.credentials {
            client_config = client_config.credentials(creds.clone());
        }
        if let Some(pem) = &config.custom_ca {
            client_config = client_config.custom_ca(pem.clone());
        }
        let client = Client::new(client_config.build())?;
        let seed = config
            .seed
            .unwrap_or_else(|| RandomState::new().hash_one(Instant::now()));
        let config = Arc::new(config);
        let shared = Arc::new(Shared {
            budget: Budget::new(config.max_buffered_records, config.max_buffered_bytes),
            metrics: Metrics::new(),
            outstanding: Outstanding::default(),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            failures: Mutex::new(Vec::new()),
            unseen_kept: AtomicU64::new(0),
            failures_omitted: AtomicU64::new(0),
            config: Arc::clone(&config),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = Engine {
            pipeline: Pipeline::new(Arc::clone(&config), seed),
            rx,
            tx: tx.clone(),
            shared: Arc::clone(&shared),
            client,
            received: ReceivedCounts::default(),
        };
        runtime.spawn(engine.run());
        Ok(Producer {
            inner: Arc::new(Inner { shared, tx }),
        })
    }

    /// Puts a record: waits for room in the memory budget, then returns a handle that resolves
    /// once the record is put or has failed. Fails at once on an invalid record or after
    /// shutdown.
    pub async fn put(&self, record: Record) -> Result<PutHandle, Error> {
        let shared = &self.inner.shared;
        let hash_key = record.validate(&shared.config)?;
        let cost = record.cost();
        shared
            .budget
            .acquire(cost)
            .await
            .map_err(|_| Error::ShutDown)?;
        self.submit(record, hash_key, cost).map_err(|(_, e)| e)
    }

    /// Puts many records at once, in order: the same as calling [`put`](Self::put) on each,
    /// with one wait for the memory budget and one message to the pipeline per batch that fits
    /// the budget, instead of one per record. Gives each record's handle, or its error (an
    /// invalid record fails alone; after shutdown every record fails with
    /// [`Error::ShutDown`]). Dropping the future part-way leaves the chunks already handed
    /// over in flight, as dropping their handles would (their outcomes still count in the
    /// shutdown report); the rest are not put.
    ///
    /// ```no_run
    /// use kinesis_kpl::{Config, Producer, Record};
    /// # async fn demo() -> Result<(), kinesis_kpl::Error> {
    /// let producer = Producer::new(Config::builder().endpoint("http://127.0.0.1:4567").build())?;
    /// let records = (0..500).map(|i| Record::new("orders", format!("customer-{i}"), "hello"));
    /// for handle in producer.put_all(records.collect()).await {
    ///     let put = handle?.await?;
    ///     println!("{} {}", put.shard_id, put.sequence_number);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn put_all(&self, records: Vec<Record>) -> Vec<Result<PutHandle, Error>> {
        let shared = &self.inner.shared;
        let max_records = shared.budget.max_records();
        let max_bytes = shared.budget.max_bytes().min(u32::MAX as usize);
        let mut left = records.len();
        let mut out = Vec::with_capacity(left);
        // Records go straight into the pipeline's form, handles straight into `out`; a
        // record's arrival and hash key are filled in once its chunk has budget.
        let placeholder = Instant::now();
        let mut chunk = PendingChunk::new(left.min(max_records), 0);
        for record in records {
            let explicit = match record.validate_unhashed(&shared.config) {
                Ok(h) => h,
                Err(e) => {
                    out.push(Err(e));
                    left -= 1;
                    continue;
                }
            };
            let cost = record.cost();
            if !chunk.recs.is_empty()
                && (chunk.recs.len() >= max_records || chunk.bytes + cost > max_bytes)
            {
                let next = PendingChunk::new(left.min(max_records), out.len());
                self.submit_chunk(std::mem::replace(&mut chunk, next), &mut out)
                    .await;
            }
            if chunk.completions.is_full() {
                chunk.completions = Completions::new(left.min(SLOT_BLOCK));
            }
            left -= 1;
            chunk.bytes += cost;
            let (completion, handle) = chunk.completions.next_pair();
            chunk.recs.push(UserRecord::new(
                record,
                explicit.unwrap_or_default(),
                placeholder,
                completion,
            ));
            out.push(Ok(handle));
        }
        if !chunk.recs.is_empty() {
            self.submit_chunk(chunk, &mut out).await;
        }
        out
    }

    /// Takes budget for `chunk` and hands it to the pipeline as one message. If it cannot,
    /// the chunk's handles in `out` are replaced by [`Error::ShutDown`].
    async fn submit_chunk(&self, chunk: PendingChunk, out: &mut [Result<PutHandle, Error>]) {
        let shared = &self.inner.shared;
        let PendingChunk {
            mut recs,
            bytes,
            first,
            ..
        } = chunk;
        let count = recs.len();
        let sent = shared.budget.acquire_many(count, bytes).await.is_ok() && {
            // The partition keys' MD5s, several side by side.
            let keys: Vec<&str> = recs
                .iter()
                .filter(|r| r.explicit_hash_key.is_none())
                .map(|r| r.partition_key.as_str())
                .collect();
            let mut hashed = hash_keys_for_partition_keys(&keys).into_iter();
            drop(keys);
            let now = Instant::now();
            for rec in &mut recs {
                rec.arrival = now;
                if rec.explicit_hash_key.is_none() {
                    rec.hash_key = hashed.next().unwrap_or_default();
                }
            }
            match self.inner.tx.send(Msg::PutAll(recs)) {
                Ok(()) => true,
                Err(_) => {
                    shared.budget.release(count, bytes);
                    false
                }
            }
        };
        if !sent {
            // The records were dropped unsent (their handles would say so too); the chunk's
            // handles are the `Ok`s from its first slot on.
            for slot in out[first..].iter_mut().filter(|s| s.is_ok()) {
                *slot = Err(Error::ShutDown);
            }
        }
    }

    /// Puts a record if the memory budget has room now; otherwise hands it back.
    // The record comes back by value: boxing it would allocate on every refusal.
    #[allow(clippy::result_large_err)]
    pub fn try_put(&self, record: Record) -> Result<PutHandle, Rejected> {
        let shared = &self.inner.shared;
        let hash_key = match record.validate(&shared.config) {
            Ok(h) => h,
            Err(error) => return Err(Rejected { record, error }),
        };
        let cost = record.cost();
        if let Err(refused) = shared.budget.try_acquire(cost) {
            let error = match refused {
                Refused::Full => Error::BufferFull,
                Refused::Closed => Error::ShutDown,
            };
            return Err(Rejected { record, error });
        }
        self.submit(record, hash_key, cost)
            .map_err(|(record, error)| Rejected { record, error })
    }

    #[allow(clippy::result_large_err)]
    fn submit(
        &self,
        record: Record,
        hash_key: u128,
        cost: usize,
    ) -> Result<PutHandle, (Record, Error)> {
        let shared = &self.inner.shared;
        let (completion, handle) = Completion::channel();
        let rec = UserRecord::new(record, hash_key, Instant::now(), completion);
        match self.inner.tx.send(Msg::Put(rec)) {
            Ok(()) => Ok(handle),
            Err(mpsc::error::SendError(msg)) => {
                shared.budget.release(1, cost);
                let record = match msg {
                    Msg::Put(rec) => rec.to_record(),
                    _ => unreachable!("only a Put was sent"),
                };
                Err((record, Error::ShutDown))
            }
        }
    }

    /// Sends everything buffered now (rate limits still apply) and waits until every record
    /// put before this call has resolved; records put meanwhile are not waited for. Bounded by
    /// `RecordTtl` plus a request timeout.
    pub async fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Flush(tx))
            .map_err(|_| Error::ShutDown)?;
        let epoch = rx.await.map_err(|_| Error::ShutDown)?;
        self.inner.shared.outstanding.wait_through(epoch).await;
        Ok(())
    }

    /// Stops accepting records (in every clone), sends everything, waits until every record
    /// has resolved, and reports which failed.
    pub async fn shutdown(self) -> ShutdownReport {
        let shared = Arc::clone(&self.inner.shared);
        shared.draining.store(true, AtomicOrdering::SeqCst);
        shared.budget.close();
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Close(Some(tx))).is_ok() {
            let _ = rx.await;
        }
        ShutdownReport {
            succeeded: shared.succeeded.load(AtomicOrdering::SeqCst),
            failed: shared.failed.load(AtomicOrdering::SeqCst),
            failures: std::mem::take(&mut *shared.failures.lock()),
            failures_omitted: shared.failures_omitted.load(AtomicOrdering::SeqCst),
        }
    }

    /// The producer's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.shared.metrics
    }

    /// The producer's settings.
    pub fn config(&self) -> &Config {
        &self.inner.shared.config
    }

    /// User records accepted and not yet resolved (the KPL's outstanding count).
    pub fn outstanding_records(&self) -> usize {
        self.inner.shared.budget.records_in_use()
    }

    /// Bytes of user records accepted and not yet resolved (at most `max_buffered_bytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.inner.shared.budget.bytes_in_use()
    }
}

/// Slots allocated together for a `put_all` chunk. A chunk's size is known only once the
/// budget's bytes run out, and slots live as long as any of their handles: sized for a whole
/// call, a call of a million large records would hold a million slots per chunk of a few
/// thousand.
const SLOT_BLOCK: usize = 1024;

/// Records of a `put_all` gathered for one budget wait and one message.
struct PendingChunk {
    recs: Vec<UserRecord>,
    completions: Completions,
    /// Budget bytes of `recs`.
    bytes: usize,
    /// Index in the call's output of the chunk's first record.
    first: usize,
}

impl PendingChunk {
    /// Room for `n` records (more as they come), the first of them at `first` in the output.
    fn new(n: usize, first: usize) -> Self {
        PendingChunk {
            recs: Vec::with_capacity(n.min(SLOT_BLOCK)),
            completions: Completions::new(n.min(SLOT_BLOCK)),
            bytes: 0,
            first,
        }
    }
}

/// A handle's answer, held until the budget and counters have moved.
enum Answer {
    Put(Completion, PutResult),
    Failed(Completion, Record, RecordFailure),
}

/// What resolving a run of records gives back: budget, outstanding counts per flush epoch,
/// and the counters.
#[derive(Default)]
struct Tally {
    records: usize,
    bytes: usize,
    ok: u64,
    failed: u64,
    /// Runs of one epoch, in order (records arrive in epoch order, so runs are few).
    epochs: Vec<(u64, u64)>,
}

impl Tally {
    fn add(&mut self, rec: &UserRecord, ok: bool) {
        self.records += 1;
        self.bytes += rec.cost as usize;
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        match self.epochs.last_mut() {
            Some((e, n)) if *e == rec.epoch => *n += 1,
            _ => self.epochs.push((rec.epoch, 1)),
        }
    }
}

impl Shared {
    /// Gives back a run's budget and counts it, before any of its handles resolves, so a
    /// caller that has awaited every handle sees `outstanding_records()` and the report
    /// settled.
    fn release(&self, tally: &Tally) {
        self.budget.release(tally.records, tally.bytes);
        self.succeeded.fetch_add(tally.ok, AtomicOrdering::SeqCst);
        self.failed.fetch_add(tally.failed, AtomicOrdering::SeqCst);
    }

    /// Marks a run resolved for `flush()`, once its handles have resolved.
    fn resolved(&self, tally: Tally) {
        for (epoch, n) in tally.epochs {
            self.outstanding.resolved(epoch, n);
        }
    }

    /// Resolves the user records of Kinesis records that were put, straight from the vectors
    /// they were sent in, a run of at least [`RESOLVE_RUN`] records at a time (whole Kinesis
    /// records): the run's budget and counters settle, then its handles resolve. Gives the
    /// emptied vectors back, for the pipeline to reuse.
    fn complete_put(&self, landed: Vec<Landed>) -> Vec<Vec<UserRecord>> {
        let mut spare = Vec::with_capacity(landed.len());
        let mut retries = RetriesPerRecord::new(&self.metrics);
        // Every result of a Kinesis record is made before the first handle resolves: they
        // share its shard and sequence number, and counting those up while the caller's
        // thread already drops results bounced the counts between the cores.
        let mut answers = Vec::new();
        let mut tally = Tally::default();
        let mut landed = landed.into_iter().peekable();
        while let Some(mut group) = landed.next() {
            for rec in &group.records {
                tally.add(rec, true);
                retries.observe(&rec.stream, rec.attempts().len());
            }
            answers.extend(group.results());
            group.records.clear();
            spare.push(std::mem::take(&mut group.records));
            if answers.len() < RESOLVE_RUN && landed.peek().is_some() {
                continue;
            }
            self.release(&tally);
            for (completion, result) in answers.drain(..) {
                let _ = completion.send(Ok(result));
            }
            self.resolved(std::mem::take(&mut tally));
        }
        spare
    }

    /// Resolves records, gives back their budget and counts them.
    fn complete(
        &self,
        done: impl IntoIterator<Item = (UserRecord, Result<PutResult, RecordFailure>)>,
    ) {
        let draining = self.draining.load(AtomicOrdering::SeqCst);
        let mut tally = Tally::default();
        let mut retries = RetriesPerRecord::new(&self.metrics);
        let done = done.into_iter();
        let mut answers = Vec::with_capacity(done.size_hint().0);
        for (rec, outcome) in done {
            tally.add(&rec, outcome.is_ok());
            let UserRecord {
                stream,
                partition_key,
                explicit_hash_key,
                data,
                completion,
                retry,
                ..
            } = rec;
            let earlier = retry.map_or(0, |r| r.attempts.len());
            match outcome {
                Ok(result) => {
                    retries.observe(&stream, result.attempts.len().saturating_sub(1));
                    answers.push(Answer::Put(completion, result));
                }
                Err(failure) => {
                    retries.observe(
                        &stream,
                        failure.attempts.len().max(earlier).saturating_sub(1),
                    );
                    let record = Record {
                        stream,
                        partition_key: partition_key.into_string(),
                        explicit_hash_key,
                        data,
                    };
                    answers.push(Answer::Failed(completion, record, failure));
                }
            }
        }
        self.release(&tally);
        for answer in answers {
            match answer {
                Answer::Put(completion, result) => {
                    let _ = completion.send(Ok(result));
                }
                Answer::Failed(completion, record, failure) if draining => {
                    let kept = FailedRecord {
                        record,
                        failure: failure.clone(),
                    };
                    let _ = completion.send(Err(Error::RecordFailed(Box::new(failure))));
                    self.failures.lock().push(kept);
                }
                Answer::Failed(completion, record, failure) => {
                    let outcome: PutOutcome = Err(Error::RecordFailed(Box::new(failure)));
                    if let Err(Err(Error::RecordFailed(failure))) = completion.send(outcome) {
                        self.keep_unseen(FailedRecord {
                            record,
                            failure: *failure,
                        });
                    }
                }
            }
        }
        self.resolved(tally);
    }

    fn keep_unseen(&self, failed: FailedRecord) {
        if self.unseen_kept.fetch_add(1, AtomicOrdering::SeqCst)
            < self.config.max_reported_failures as u64
        {
            self.failures.lock().push(failed);
        } else {
            self.failures_omitted.fetch_add(1, AtomicOrdering::SeqCst);
        }
    }
}

/// The task that owns the pipeline.
struct Engine {
    pipeline: Pipeline,
    rx: mpsc::UnboundedReceiver<Msg>,
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    client: Client,
    /// UserRecordsReceived per stream index, added once per wake-up.
    received: ReceivedCounts,
}

impl Engine {
    /// Hands a freshly put record to the pipeline and counts it as received.
    fn accept(&mut self, rec: UserRecord, now: Instant) {
        let stream = self.pipeline.accept(rec, now);
        let pipeline = &self.pipeline;
        self.received
            .count(&self.shared.metrics, stream, |i| pipeline.stream_name(i));
    }

    async fn run(mut self) {
        let mut msgs = Vec::with_capacity(INTAKE_BATCH);
        let mut actions = Actions::default();
        let mut closing = false;
        let mut close_replies = Vec::new();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        loop {
            let wake = self.pipeline.next_wakeup();
            if let Some(t) = wake {
                sleep.as_mut().reset(tokio::time::Instant::from_std(t));
            }
            tokio::select! {
                _ = self.rx.recv_many(&mut msgs, INTAKE_BATCH) => {}
                _ = &mut sleep, if wake.is_some() => {}
            }
            let now = Instant::now();
            let mut accepted = (self.pipeline.epoch(), 0u64);
            for msg in msgs.drain(..) {
                match msg {
                    Msg::Put(rec) => {
                        self.accept(rec, now);
                        accepted.1 += 1;
                    }
                    Msg::PutAll(recs) => {
                        accepted.1 += recs.len() as u64;
                        for rec in recs {
                            self.accept(rec, now);
                        }
                    }
                    Msg::Done(done) => self.pipeline.on_done(done, now),
                    Msg::Map(stream, shards) => self.pipeline.on_map(stream, shards, now),
                    Msg::Flush(reply) => {
                        let _ = reply.send(self.flush(&mut accepted));
                    }
                    Msg::Close(reply) => {
                        closing = true;
                        close_replies.extend(reply);
                        self.flush(&mut accepted);
                    }
                }
            }
            self.shared.outstanding.add(accepted.0, accepted.1);
            self.received.flush();
            self.pipeline.poll(now, &mut actions);
            for (stream, shard) in actions.wrong_shard.drain(..) {
                self.shared.metrics.observe_wrong_shard(&stream, &shard);
            }
            if !actions.confirmed.is_empty() {
                self.shared.metrics.observe_confirmed(&actions.confirmed);
                self.shared
                    .complete(actions.confirmed.drain(..).map(|(r, ok)| (r, Ok(ok))));
            }
            if !actions.expired.is_empty() {
                self.shared.metrics.observe_expired(&actions.expired);
                self.shared
                    .complete(actions.expired.drain(..).map(|(r, f)| (r, Err(f))));
            }
            for batch in actions.batches.drain(..) {
                tokio::spawn(send_batch(
                    Arc::clone(&self.shared),
                    self.client.clone(),
                    batch,
                    self.tx.clone(),
                ));
            }
            for (stream, name) in actions.refresh.drain(..) {
                let client = self.client.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let shards = list_shards(&client, &name).await;
                    let _ = tx.send(Msg::Map(stream, shards));
                });
            }
            let in_use = self.shared.budget.records_in_use();
            self.shared.metrics.user_records_pending.set(in_use as i64);
            self.shared.outstanding.compact(self.pipeline.epoch());
            if closing && in_use == 0 && self.pipeline.is_idle() {
                for reply in close_replies {
                    let _ = reply.send(());
                }
                return;
            }
        }
    }

    /// Flushes the pipeline, first recording the records of the epoch that closes.
    fn flush(&mut self, accepted: &mut (u64, u64)) -> u64 {
        self.shared.outstanding.add(accepted.0, accepted.1);
        let epoch = self.pipeline.flush();
        *accepted = (self.pipeline.epoch(), 0);
        epoch
    }
}

/// The per-entry error code of a throttled Kinesis record.
const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// Sends one PutRecords, sorts the answer, resolves what is final and hands the rest back.
async fn send_batch(
    shared: Arc<Shared>,
    client: Client,
    batch: Batch,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let Batch {
        id,
        stream,
        name,
        mut records,
        map,
    } = batch;
    let config = &shared.config;
    let encode_start = Instant::now();
    let buffering = shared
        .metrics
        .buffering_time
        .with_label_values(&[&*name])
        .local();
    let mut scratch = Aggregator::new(usize::MAX, u64::MAX);
    let mut entries = Vec::with_capacity(records.len());
    // Aggregates waiting for their MD5 trailer, and which entry each belongs to.
    let (mut unsealed, mut unsealed_at) = (Vec::new(), Vec::new());
    let mut users = 0;
    for kr in &mut records {
        users += kr.records.len();
        for r in &mut kr.records {
            if !r.sent_once {
                r.sent_once = true;
                buffering.observe(
                    encode_start
                        .saturating_duration_since(r.arrival)
                        .as_secs_f64()
                        * 1000.0,
                );
            }
        }
        let (entry, data) = kr.to_entry_unsealed(&mut scratch);
        if let Some(data) = data {
            unsealed.push(data);
            unsealed_at.push(entries.len());
        }
        entries.push(entry);
    }
    buffering.flush();
    for (i, data) in unsealed_at.into_iter().zip(seal_all(unsealed)) {
        entries[i].data = Some(Blob(data));
    }
    let input = PutRecordsInput {
        records: Some(entries),
        stream: StreamRef::name(&*name),
    };
    let start = Instant::now();
    let response = client.call_once(&input).await;
    let end = Instant::now();
    drop(input);
    if let Err(e) = &response {
        tracing::debug!(batch = id, stream = %name, error = %e, "PutRecords failed");
    }
    let kinesis = records.len();
    let shards = records.iter().map(|k| k.predicted.clone()).collect();
    // What each entry met, for the shards' rate controllers (a failed call tells nothing).
    let throttled = match &response {
        Ok(out) => out
            .records
            .iter()
            .map(|r| Some(r.error_code.as_deref() == Some(THROTTLED)))
            .collect(),
        Err(_) => vec![None; kinesis],
    };
    let verdicts = retrier::classify(records, map.as_deref(), response, start, end, config);
    shared
        .metrics
        .observe_request(&name, &verdicts, end - start, kinesis, users);
    let Verdicts {
        succeeded,
        failed,
        retry,
        invalidate_map,
        undecided,
        ..
    } = verdicts;
    shared.metrics.observe_request_failures(&failed);
    let spare = shared.complete_put(succeeded);
    if !failed.is_empty() {
        shared.complete(failed.into_iter().map(|(r, f)| (r, Err(f))));
    }
    let invalidate = invalidate_map.then(|| map.as_ref().map_or(0, |m| m.version()));
    // The pipeline task outlives every request task, so this only fails if the runtime is
    // going away; the retried records' handles then resolve as shut down.
    let _ = tx.send(Msg::Done(Done {
        stream,
        shards,
        throttled,
        retries: retry,
        invalidate,
        undecided,
        spare,
    }));
}

/// Every shard of a stream, following pages.
async fn list_shards(client: &Client, name: &str) -> Result<Vec<Shard>, String> {
    client
        .list_all_shards(&StreamRef::name(name))
        .await
        .map_err(|e| e.to_string())
}
