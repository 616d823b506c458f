//! The consumer library (kinesis-kcl) end to end against the broker over a real
//! socket: record processors and checkpoints (sub-sequence numbers, two-phase,
//! refusals), deaggregation and the hash-range filter, graceful hand-over,
//! resharding order, three worker processes with a SIGKILL, kinesalite, and
//! enhanced fan-out (subscription expiries, connection resets, a broker restart,
//! shard ends, kinesis-local).
//!
//! The worker processes of the multi-process test are the `kcl-test-worker` binary
//! (tests/bin/kcl_worker.rs).

mod common;
#[path = "common/lease_tables.rs"]
mod lease_tables;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kinesis_broker::BrokerConfig;
use kinesis_broker::fault::FaultPlan;
use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::{Config, InitialPositionInStream};
use kinesis_kcl::extended_sequence::ExtendedSequenceNumber;
use kinesis_kcl::lease_store::{
    DynamoDbConfig, DynamoDbLeaseStore, InMemoryLeaseStore, LeaseStore, SqliteLeaseStore,
};
use kinesis_kcl::polling_config::PollingConfig;
use kinesis_kcl::record_stream::{StartingPosition, shard_records, stream_records};
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_kcl::{Error, KinesisClientRecord};
use kinesis_proto::aggregation::{Aggregator, UserRecord};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::codec::Blob;
use kinesis_proto::hash_key::{HashRange, effective_hash_key};
use kinesis_proto::model::{
    CreateStreamInput, DescribeStreamSummaryInput, MergeShardsInput, PutRecordsInput,
    PutRecordsRequestEntry, Shard, SplitShardInput, StreamRef,
};
use lease_tables::{dynamodb_store, open_store};
use parking_lot::Mutex;

// ---------------------------------------------------------------------------
// Set-up helpers
// ---------------------------------------------------------------------------

fn client(endpoint: &str) -> Client {
    Client::new(ClientConfig::builder().endpoint(endpoint).build()).expect("client")
}

async fn create_stream(client: &Client, name: &str, shards: i64) {
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some(name.into()),
            shard_count: Some(shards),
            ..Default::default()
        })
        .await
        .expect("create stream");
    wait_active(client, name).await;
}

async fn wait_active(client: &Client, name: &str) {
    for _ in 0..1_000 {
        let s = client
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: StreamRef::name(name),
            })
            .await
            .expect("describe stream summary");
        if s.stream_description_summary.stream_status == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("stream {name} never became ACTIVE");
}

async fn open_shards(client: &Client, stream: &str) -> Vec<Shard> {
    kinesis_kcl::shard_sync::list_all_shards(client, &StreamRef::name(stream))
        .await
        .expect("list shards")
        .into_iter()
        .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
        .collect()
}

fn range_of(shard: &Shard) -> HashRange {
    HashRange::from_wire(&shard.hash_key_range).expect("valid range")
}

/// PutRecords `entries`, re-sending failed ones (bounded).
async fn put_entries(client: &Client, stream: &str, mut entries: Vec<PutRecordsRequestEntry>) {
    for _ in 0..50 {
        if entries.is_empty() {
            return;
        }
        let mut failed = Vec::new();
        for chunk in entries.chunks(500) {
            let out = client
                .put_records(&PutRecordsInput {
                    records: Some(chunk.to_vec()),
                    stream: StreamRef::name(stream),
                })
                .await
                .expect("put records");
            for (entry, result) in chunk.iter().zip(&out.records) {
                if result.error_code.is_some() {
                    failed.push(entry.clone());
                }
            }
        }
        entries = failed;
        if !entries.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("records still failing after retries");
}

/// Plain (non-aggregated) records, routed by Kinesis.
async fn put_plain(client: &Client, stream: &str, records: &[(String, String)]) {
    let entries = records
        .iter()
        .map(|(pk, data)| PutRecordsRequestEntry {
            data: Some(Blob(Bytes::from(data.clone()))),
            partition_key: Some(pk.clone()),
            explicit_hash_key: None,
        })
        .collect();
    put_entries(client, stream, entries).await;
}

/// KPL-style aggregated records: user records grouped by their shard, packed into
/// aggregates of at most 50 KiB, each sent with the first user record's hash key.
async fn put_aggregated(client: &Client, stream: &str, records: &[(String, String)]) {
    let shards = open_shards(client, stream).await;
    let mut per_shard: BTreeMap<usize, Vec<UserRecord>> = BTreeMap::new();
    for (pk, data) in records {
        let key = effective_hash_key(pk, None).expect("hash key");
        let shard = shards
            .iter()
            .position(|s| range_of(s).contains(key))
            .expect("a shard owns every key");
        per_shard
            .entry(shard)
            .or_default()
            .push(UserRecord::new(pk.clone(), Bytes::from(data.clone())));
    }
    let mut entries = Vec::new();
    for users in per_shard.values() {
        let mut agg = Aggregator::new(51_200, u64::MAX);
        let mut first: Option<&UserRecord> = None;
        let mut flush = |agg: &mut Aggregator, first: &mut Option<&UserRecord>| {
            if let (Some(data), Some(f)) = (agg.finish(), first.take()) {
                let ehk = effective_hash_key(&f.partition_key, None).expect("hash key");
                entries.push(PutRecordsRequestEntry {
                    data: Some(Blob(data)),
                    partition_key: Some(f.partition_key.clone()),
                    explicit_hash_key: Some(ehk.to_string()),
                });
            }
        };
        for u in users {
            if !agg.fits(u) {
                flush(&mut agg, &mut first);
            }
            agg.push(u);
            first.get_or_insert(u);
        }
        flush(&mut agg, &mut first);
    }
    put_entries(client, stream, entries).await;
}

/// Put `records` through the KPL; the handles resolve once each is stored.
async fn put_with_kpl(
    producer: &kinesis_kpl::Producer,
    stream: &str,
    records: &[(String, String)],
) -> Vec<kinesis_kpl::PutHandle> {
    let stream: Arc<str> = stream.into();
    let mut handles = Vec::new();
    for (pk, data) in records {
        let record = kinesis_kpl::Record::new(Arc::clone(&stream), pk.clone(), data.clone());
        handles.push(producer.put(record).await.expect("put"));
    }
    handles
}

/// Poll `cond` every 25 ms until it holds; panic after `limit`.
async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Like [`wait_until`] with an async condition.
async fn wait_until_async<F, Fut>(what: &str, limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn owners(store: &dyn LeaseStore) -> BTreeMap<String, Option<String>> {
    store
        .list()
        .await
        .expect("list leases")
        .into_iter()
        .map(|l| (l.lease_key, l.lease_owner))
        .collect()
}

fn count_owned(owners: &BTreeMap<String, Option<String>>, worker: &str) -> usize {
    owners
        .values()
        .filter(|o| o.as_deref() == Some(worker))
        .count()
}

/// Short lease timings for tests; everything else at KCL defaults unless overridden.
fn test_config(stream: &str, app: &str, worker: &str, failover: Duration) -> Config {
    Config::builder(stream, app)
        .worker_identifier(worker)
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .failover_time(failover)
        .lease_taker_interval(Duration::from_millis(200))
        .parent_shard_poll_interval(Duration::from_millis(100))
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
        .shard_sync_interval(Duration::from_millis(500))
        .idle_time_between_reads(Duration::from_millis(200))
        .build()
        .expect("valid config")
}

// ---------------------------------------------------------------------------
// A processor that journals everything it sees
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Init {
        checkpoint: ExtendedSequenceNumber,
        pending: Option<ExtendedSequenceNumber>,
        state: Option<Vec<u8>>,
    },
    Record(ExtendedSequenceNumber, String),
    Checkpointed(ExtendedSequenceNumber),
    LeaseLost,
    ShardEnded,
    ShutdownRequested,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    worker: String,
    shard: String,
    event: Event,
}

/// Every processor's events in the order they happened, with when.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<(Instant, Entry)>>>);

impl Journal {
    fn push(&self, worker: &str, shard: &str, event: Event) {
        self.0.lock().push((
            Instant::now(),
            Entry {
                worker: worker.into(),
                shard: shard.into(),
                event,
            },
        ));
    }

    fn entries(&self) -> Vec<Entry> {
        self.0.lock().iter().map(|(_, e)| e.clone()).collect()
    }

    fn timed_entries(&self) -> Vec<(Instant, Entry)> {
        self.0.lock().clone()
    }

    fn distinct_data(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .iter()
            .map(|(_, e)| e)
            .filter_map(|e| match &e.event {
                Event::Record(_, d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Checkpoints after every batch, at shard end and on shutdown.
struct Recorder {
    worker: String,
    shard: String,
    journal: Journal,
}

fn recorder(worker: &str, journal: &Journal) -> impl Fn(&str) -> Recorder + Send + Sync + 'static {
    let worker = worker.to_string();
    let journal = journal.clone();
    move |shard: &str| Recorder {
        worker: worker.clone(),
        shard: shard.to_string(),
        journal: journal.clone(),
    }
}

impl Recorder {
    fn log(&self, event: Event) {
        self.journal.push(&self.worker, &self.shard, event);
    }

    async fn checkpoint(&self, cp: &RecordProcessorCheckpointer) {
        if cp.checkpoint().await.is_ok() {
            self.log(Event::Checkpointed(cp.last_checkpoint()));
        }
    }
}

impl ShardRecordProcessor for Recorder {
    async fn initialize(&mut self, input: InitializationInput) {
        self.log(Event::Init {
            checkpoint: input.extended_sequence_number,
            pending: input.pending_checkpoint_sequence_number,
            state: input.pending_checkpoint_state,
        });
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        for r in &input.records {
            self.log(Event::Record(
                r.extended_sequence_number(),
                String::from_utf8_lossy(&r.data).into_owned(),
            ));
        }
        self.checkpoint(cp).await;
    }

    async fn lease_lost(&mut self) {
        self.log(Event::LeaseLost);
    }

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        self.log(Event::ShardEnded);
        self.checkpoint(cp).await;
    }

    async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
        self.log(Event::ShutdownRequested);
        self.checkpoint(cp).await;
    }
}

fn records(prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("pk-{prefix}-{i}"), format!("{prefix}-{i:06}")))
        .collect()
}

// ---------------------------------------------------------------------------
// Checkpoints, deaggregation, resume
// ---------------------------------------------------------------------------

/// What the probing processor saw, for the test to assert on.
#[derive(Debug, Default)]
struct Probe {
    records: Vec<KinesisClientRecord>,
    beyond_delivered: Option<Result<(), Error>>,
    negative_sub: Option<Result<(), Error>>,
    before_last: Option<Result<(), Error>>,
    at_record_4: Option<Result<(), Error>>,
    prepared_6: Option<Result<(), Error>>,
    committed_6: Option<Result<(), Error>>,
    prepared_8: Option<Result<(), Error>>,
    done: bool,
}

/// Exercises the checkpointer on its first batch, then never checkpoints again.
struct Prober(Arc<Mutex<Probe>>);

impl ShardRecordProcessor for Prober {
    async fn initialize(&mut self, _input: InitializationInput) {}

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        if self.0.lock().done {
            return;
        }
        let recs = input.records;
        assert!(recs.len() >= 10, "the aggregate comes in one page");
        let last = recs.last().expect("records").clone();
        let beyond = cp
            .checkpoint_at(last.sequence_number.as_str(), last.sub_sequence_number + 1)
            .await;
        let negative = cp.checkpoint_at(last.sequence_number.as_str(), -1).await;
        let at_4 = cp.checkpoint_record(&recs[4]).await;
        let before = cp.checkpoint_record(&recs[2]).await;
        let prepared = cp
            .prepare_checkpoint_record(&recs[6], Some(b"six".to_vec()))
            .await;
        let committed = match &prepared {
            Ok(p) => p.checkpoint().await,
            Err(_) => Ok(()),
        };
        let prepared_8 = cp
            .prepare_checkpoint_record(&recs[8], Some(b"eight".to_vec()))
            .await
            .map(|_| ());
        let mut p = self.0.lock();
        p.records = recs;
        p.beyond_delivered = Some(beyond);
        p.negative_sub = Some(negative);
        p.at_record_4 = Some(at_4);
        p.before_last = Some(before);
        p.prepared_6 = Some(prepared.map(|_| ()));
        p.committed_6 = Some(committed);
        p.prepared_8 = Some(prepared_8);
        p.done = true;
    }

    async fn lease_lost(&mut self) {}

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        let _ = cp.checkpoint().await;
    }

    async fn shutdown_requested(&mut self, _cp: &RecordProcessorCheckpointer) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_at_sub_sequence_numbers_and_a_restart_resumes_right_after() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "ckpt", 1).await;
    // One aggregate of 10 user records, then 2 plain records.
    let agg: Vec<(String, String)> = records("agg", 10);
    put_aggregated(&kinesis, "ckpt", &agg).await;
    put_plain(&kinesis, "ckpt", &records("plain", 2)).await;

    let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
    let probe = Arc::new(Mutex::new(Probe::default()));
    let p = Arc::clone(&probe);
    let first = Scheduler::new(
        test_config("ckpt", "app", "w1", Duration::from_secs(10)),
        kinesis.clone(),
        Arc::clone(&store),
        move |_: &str| Prober(Arc::clone(&p)),
    )
    .expect("scheduler");
    let handle = first.shutdown_handle();
    let run = tokio::spawn(first.run());
    wait_until("the probe", Duration::from_secs(20), || probe.lock().done).await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");

    let p = std::mem::take(&mut *probe.lock());
    let recs = &p.records;
    let seq = recs[0].sequence_number.clone();
    assert!(
        recs[..10]
            .iter()
            .all(|r| r.aggregated && r.sequence_number == seq)
    );
    assert_eq!(
        recs.iter()
            .map(|r| r.sub_sequence_number)
            .take(10)
            .collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    assert!(matches!(
        p.beyond_delivered,
        Some(Err(Error::InvalidCheckpoint { .. }))
    ));
    assert!(matches!(
        p.negative_sub,
        Some(Err(Error::InvalidSubSequenceNumber(-1)))
    ));
    assert!(matches!(p.at_record_4, Some(Ok(()))));
    assert!(
        matches!(p.before_last, Some(Err(Error::InvalidCheckpoint { .. }))),
        "before the stored checkpoint"
    );
    assert!(matches!(p.prepared_6, Some(Ok(()))));
    assert!(matches!(p.committed_6, Some(Ok(()))));
    assert!(matches!(p.prepared_8, Some(Ok(()))));

    // The lease holds the committed checkpoint and the uncommitted prepared one, unowned.
    let lease = store
        .get("shardId-000000000000")
        .await
        .expect("get")
        .expect("lease");
    assert_eq!(lease.checkpoint, recs[6].extended_sequence_number());
    assert_eq!(
        lease.pending_checkpoint,
        Some(recs[8].extended_sequence_number())
    );
    assert_eq!(
        lease.pending_checkpoint_state.as_deref(),
        Some(&b"eight"[..])
    );
    assert_eq!(lease.lease_owner, None, "released on graceful shutdown");
    let expected_rest: Vec<String> = recs[7..]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.data).into_owned())
        .collect();

    // A new worker resumes right after (seq, 6) and sees the pending checkpoint.
    let journal = Journal::default();
    let second = Scheduler::new(
        test_config("ckpt", "app", "w2", Duration::from_secs(10)),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w2", &journal),
    )
    .expect("scheduler");
    let handle = second.shutdown_handle();
    let run = tokio::spawn(second.run());
    wait_until("the rest of the records", Duration::from_secs(20), || {
        journal.distinct_data().len() >= expected_rest.len()
    })
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    let entries = journal.entries();
    assert_eq!(
        entries[0].event,
        Event::Init {
            checkpoint: p.records[6].extended_sequence_number(),
            pending: Some(p.records[8].extended_sequence_number()),
            state: Some(b"eight".to_vec()),
        }
    );
    let delivered: Vec<String> = entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Record(_, d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        delivered, expected_rest,
        "resumes right after the checkpointed user record"
    );
    assert!(
        entries.iter().any(|e| e.event == Event::ShutdownRequested),
        "graceful shutdown calls shutdown_requested"
    );
    assert_eq!(
        entries.last().map(|e| &e.event),
        Some(&Event::LeaseLost),
        "then lease_lost"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_with_a_user_record_outside_its_shard_is_dropped_whole() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "ranges", 2).await;
    let shards = open_shards(&kinesis, "ranges").await;
    let (low, high) = (range_of(&shards[0]), range_of(&shards[1]));
    // One aggregate sent to shard 0 holding a user record that belongs to shard 1,
    // as a producer with a stale shard map after a split would make. The producer
    // re-sends all of it, so all of it is dropped here (as the Java KCL does).
    let mut agg = Aggregator::new(51_200, u64::MAX);
    for (pk, ehk, data) in [
        ("a", low.start.to_string(), "in-0"),
        ("b", high.start.to_string(), "stray"),
        ("c", low.end.to_string(), "in-2"),
    ] {
        agg.push(&UserRecord::new(pk, data).with_explicit_hash_key(ehk));
    }
    let data = agg.finish().expect("aggregate");
    put_entries(
        &kinesis,
        "ranges",
        vec![PutRecordsRequestEntry {
            data: Some(Blob(data)),
            partition_key: Some("a".into()),
            explicit_hash_key: Some(low.start.to_string()),
        }],
    )
    .await;
    put_plain(&kinesis, "ranges", &records("plain", 20)).await;

    // Through the scheduler (the lease carries the shard's range) ...
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        test_config("ranges", "app", "w1", Duration::from_secs(10)),
        kinesis.clone(),
        Arc::new(InMemoryLeaseStore::new()),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let metrics = scheduler.metrics().clone();
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    wait_until("all plain records", Duration::from_secs(20), || {
        journal.distinct_data().len() >= 20
    })
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    let seen = journal.distinct_data();
    assert!(
        !seen.contains("in-0") && !seen.contains("in-2") && !seen.contains("stray"),
        "the aggregate is dropped whole"
    );
    assert_eq!(seen.len(), 20);
    let text = metrics.render();
    assert!(text.contains("kcl_records_dropped_out_of_range_total{shard_id=\"shardId-000000000000\",worker=\"w1\"} 3"), "{text}");
    assert!(text.contains("kcl_records_processed_total"));
    assert!(text.contains("kcl_millis_behind_latest"));

    // ... and through the stream API.
    let stream = stream_records(
        kinesis.clone(),
        StreamRef::name("ranges"),
        InitialPositionInStream::TrimHorizon,
        PollingConfig {
            idle_time_between_reads: Duration::from_millis(200),
            ..PollingConfig::default()
        },
    )
    .expect("stream");
    use futures::StreamExt;
    let got: Vec<String> = stream
        .take(20)
        .map(|r| String::from_utf8_lossy(&r.expect("record").record.data).into_owned())
        .collect()
        .await;
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(got, seen);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_backs_off_when_throttled_and_recovers_from_expired_iterators() {
    // A third of GetRecords calls throttled, a fifth of the rest with an expired iterator.
    let plan = FaultPlan::from_json(
        r#"{"seed": 11, "rules": [
            {"operation": "GetRecords", "error_rate": 0.3, "error": "ProvisionedThroughputExceededException"},
            {"operation": "GetRecords", "error_rate": 0.2, "error": "ExpiredIteratorException"}
        ]}"#,
    )
    .expect("fault plan");
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .faults(plan)
            .build(),
    )
    .await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "faulty", 2).await;
    // No client-level retries: the fetcher's own backoff handles throttling.
    let reader = Client::new(
        ClientConfig::builder()
            .endpoint(broker.endpoint())
            .max_attempts(1)
            .build(),
    )
    .expect("client");
    let config = Config::builder("faulty", "app")
        .worker_identifier("w1")
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
        .polling(PollingConfig {
            idle_time_between_reads: Duration::from_millis(200),
            max_records: 50,
            retry_backoff_base: Duration::from_millis(20),
            retry_backoff_cap: Duration::from_millis(200),
            ..PollingConfig::default()
        })
        .build()
        .expect("config");
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        config,
        reader,
        Arc::new(InMemoryLeaseStore::new()),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let metrics = scheduler.metrics().clone();
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    let mut expected = BTreeSet::new();
    for wave in 0..3 {
        let batch = records(&format!("w{wave}"), 200);
        expected.extend(batch.iter().map(|(_, d)| d.clone()));
        put_plain(&kinesis, "faulty", &batch).await;
    }
    let total = |v: &kinesis_kcl::metrics::prometheus::IntCounterVec| -> u64 {
        ["shardId-000000000000", "shardId-000000000001"]
            .iter()
            .map(|s| v.with_label_values(&[*s]).get())
            .sum()
    };
    wait_until(
        "every record and both kinds of fault",
        Duration::from_secs(30),
        || {
            journal.distinct_data().len() >= expected.len()
                && total(&metrics.get_records_throttled) > 0
                && total(&metrics.expired_iterators) > 0
        },
    )
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    let deliveries = journal
        .entries()
        .iter()
        .filter(|e| matches!(e.event, Event::Record(..)))
        .count();
    assert_eq!(journal.distinct_data(), expected);
    assert_eq!(
        deliveries,
        expected.len(),
        "no record re-read after a throttle or an expired iterator"
    );
    eprintln!(
        "faults: {} throttled GetRecords backed off, {} expired iterators renewed",
        total(&metrics.get_records_throttled),
        total(&metrics.expired_iterators)
    );
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------
// Graceful hand-over between workers
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_hands_leases_over_without_waiting_for_expiry() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "handover", 4).await;
    put_plain(&kinesis, "handover", &records("a", 400)).await;

    // A failover time far longer than the test: only a release can hand leases over quickly.
    let failover = Duration::from_secs(30);
    let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
    let journal = Journal::default();
    let w1 = Scheduler::new(
        test_config("handover", "app", "w1", failover),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let w1_handle = w1.shutdown_handle();
    let w1_run = tokio::spawn(w1.run());
    wait_until_async("w1 to take all leases", Duration::from_secs(20), || async {
        let o = owners(store.as_ref()).await;
        o.len() == 4 && count_owned(&o, "w1") == 4
    })
    .await;
    wait_until("w1 to process the backlog", Duration::from_secs(20), || {
        journal.distinct_data().len() >= 400
    })
    .await;

    let w2 = Scheduler::new(
        test_config("handover", "app", "w2", failover),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w2", &journal),
    )
    .expect("scheduler");
    let w2_metrics = w2.metrics().clone();
    let w2_handle = w2.shutdown_handle();
    let w2_run = tokio::spawn(w2.run());
    // w2 steals from the most loaded worker, one lease per taker run, up to its share.
    wait_until_async("w2 to steal its share", Duration::from_secs(20), || async {
        count_owned(&owners(store.as_ref()).await, "w2") == 2
    })
    .await;

    let started = Instant::now();
    w1_handle.graceful_shutdown().await;
    let released = started.elapsed();
    wait_until_async(
        "w2 to take every lease",
        Duration::from_secs(20),
        || async { count_owned(&owners(store.as_ref()).await, "w2") == 4 },
    )
    .await;
    let handed_over = started.elapsed();
    eprintln!(
        "graceful hand-over: leases released after {released:?}, all taken by the other worker \
         after {handed_over:?} (failover time {failover:?})"
    );
    assert!(
        handed_over < failover,
        "hand-over did not wait for the leases to expire"
    );
    w1_run.await.expect("join").expect("run");

    put_plain(&kinesis, "handover", &records("b", 100)).await;
    wait_until(
        "w2 to process the new records",
        Duration::from_secs(20),
        || journal.distinct_data().len() >= 500,
    )
    .await;
    w2_handle.graceful_shutdown().await;
    w2_run.await.expect("join").expect("run");

    let entries = journal.entries();
    // w1's processors: shutdown_requested, then lease_lost, for each shard it still held.
    for shard in entries
        .iter()
        .filter(|e| e.worker == "w1")
        .map(|e| e.shard.clone())
        .collect::<BTreeSet<_>>()
    {
        let last_two: Vec<&Event> = entries
            .iter()
            .filter(|e| e.worker == "w1" && e.shard == shard)
            .map(|e| &e.event)
            .rev()
            .take(1)
            .collect();
        assert_eq!(
            last_two,
            [&Event::LeaseLost],
            "{shard}: ends with lease_lost"
        );
    }
    assert!(
        entries
            .iter()
            .any(|e| e.worker == "w1" && e.event == Event::ShutdownRequested)
    );
    // Nothing is lost, and the second worker resumed from w1's final checkpoints.
    let all: BTreeSet<String> = records("a", 400)
        .into_iter()
        .chain(records("b", 100))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(journal.distinct_data(), all);
    for e in entries.iter().filter(|e| e.worker == "w2") {
        if let Event::Init { checkpoint, .. } = &e.event {
            let stored_by_w1 = entries
                .iter()
                .filter(|x| x.worker == "w1" && x.shard == e.shard)
                .filter_map(|x| match &x.event {
                    Event::Checkpointed(c) => Some(c.clone()),
                    _ => None,
                })
                .max();
            if let Some(c) = stored_by_w1 {
                assert!(
                    checkpoint >= &c,
                    "{}: w2 starts from w1's checkpoint",
                    e.shard
                );
            }
        }
    }
    let text = w2_metrics.render();
    assert!(
        text.contains("kcl_leases_stolen_total{worker=\"w2\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("kcl_leases_taken_total{worker=\"w2\"} 4"),
        "{text}"
    );
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------
// Resharding
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_processes_every_parent_record_before_any_child_record() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "reshard", 2).await;
    let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
    let journal = Journal::default();
    let mut runs = Vec::new();
    let mut handles = Vec::new();
    for w in ["w1", "w2"] {
        let s = Scheduler::new(
            test_config("reshard", "app", w, Duration::from_secs(5)),
            kinesis.clone(),
            Arc::clone(&store),
            recorder(w, &journal),
        )
        .expect("scheduler");
        handles.push(s.shutdown_handle());
        runs.push(tokio::spawn(s.run()));
    }
    // 20 keys, each with an increasing counter, so per-key order can be checked.
    let mut counter = 0usize;
    let mut wave = |n: usize| {
        let out: Vec<(String, String)> = (0..n)
            .map(|i| {
                let key = format!("key-{}", i % 20);
                counter += 1;
                (key.clone(), format!("{key}:{counter:06}"))
            })
            .collect();
        out
    };
    let mut expected = BTreeSet::new();
    let w = wave(300);
    expected.extend(w.iter().map(|(_, d)| d.clone()));
    put_plain(&kinesis, "reshard", &w).await;
    wait_until("consumption to start", Duration::from_secs(20), || {
        !journal.distinct_data().is_empty()
    })
    .await;

    // Split shard 0 in the middle of its range, while consuming.
    let shards = open_shards(&kinesis, "reshard").await;
    let r0 = range_of(&shards[0]);
    kinesis
        .split_shard(&SplitShardInput {
            stream: StreamRef::name("reshard"),
            shard_to_split: Some(shards[0].shard_id.clone()),
            new_starting_hash_key: Some((r0.start + (r0.end - r0.start) / 2).to_string()),
        })
        .await
        .expect("split");
    wait_active(&kinesis, "reshard").await;
    let w = wave(300);
    expected.extend(w.iter().map(|(_, d)| d.clone()));
    put_plain(&kinesis, "reshard", &w).await;

    // Merge the split's upper child with its neighbour, shard 1.
    let open = open_shards(&kinesis, "reshard").await;
    let r1 = range_of(&shards[1]);
    let upper = open
        .iter()
        .find(|s| r1.start.checked_sub(1) == Some(range_of(s).end))
        .expect("the upper child");
    kinesis
        .merge_shards(&MergeShardsInput {
            stream: StreamRef::name("reshard"),
            shard_to_merge: Some(upper.shard_id.clone()),
            adjacent_shard_to_merge: Some(shards[1].shard_id.clone()),
        })
        .await
        .expect("merge");
    wait_active(&kinesis, "reshard").await;
    let w = wave(300);
    expected.extend(w.iter().map(|(_, d)| d.clone()));
    put_plain(&kinesis, "reshard", &w).await;

    wait_until("every record", Duration::from_secs(30), || {
        journal.distinct_data().len() >= expected.len()
    })
    .await;
    // Finished parents' leases are deleted once all their children started.
    wait_until_async(
        "the finished parents' leases to be cleaned up",
        Duration::from_secs(20),
        || async {
            let keys: Vec<String> = owners(store.as_ref()).await.into_keys().collect();
            keys == ["shardId-000000000002", "shardId-000000000004"]
        },
    )
    .await;
    for h in &handles {
        h.graceful_shutdown().await;
    }
    for r in runs {
        r.await.expect("join").expect("run");
    }
    assert_eq!(journal.distinct_data(), expected);

    // Lineage from ListShards, processing order from the journal.
    let all_shards =
        kinesis_kcl::shard_sync::list_all_shards(&kinesis, &StreamRef::name("reshard"))
            .await
            .expect("list");
    assert_eq!(all_shards.len(), 5, "2 + 2 split children + 1 merge child");
    let deliveries: Vec<(String, String)> = journal
        .entries()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Record(_, d) => Some((e.shard, d)),
            _ => None,
        })
        .collect();
    let checked = assert_parents_first(&all_shards, &deliveries);
    assert!(
        checked >= 3,
        "split (1 parent) and merge (2 parents) were both checked: {checked}"
    );

    // The stream API follows the same lineage.
    let stream = stream_records(
        kinesis.clone(),
        StreamRef::name("reshard"),
        InitialPositionInStream::TrimHorizon,
        PollingConfig {
            idle_time_between_reads: Duration::from_millis(200),
            ..PollingConfig::default()
        },
    )
    .expect("stream");
    use futures::StreamExt;
    let read: Vec<(String, String)> = stream
        .take(expected.len())
        .map(|r| {
            let r = r.expect("record");
            (
                r.shard_id.to_string(),
                String::from_utf8_lossy(&r.record.data).into_owned(),
            )
        })
        .collect()
        .await;
    assert_eq!(
        read.iter().map(|(_, d)| d.clone()).collect::<BTreeSet<_>>(),
        expected
    );
    assert!(assert_parents_first(&all_shards, &read) >= 3);
    broker.shutdown().await;
}

/// Check, over `deliveries` (shard, data) in processing order, that every record of a
/// parent shard came before any record of its child, and that each key's records
/// (`key:counter`) came in order; returns how many parent–child pairs were checked.
fn assert_parents_first(shards: &[Shard], deliveries: &[(String, String)]) -> usize {
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    let mut shard_of: HashMap<&str, &str> = HashMap::new();
    for (i, (shard, d)) in deliveries.iter().enumerate() {
        first_index.entry(d).or_insert(i);
        shard_of.entry(d).or_insert(shard);
    }
    let records_of = |shard: &str| -> Vec<usize> {
        shard_of
            .iter()
            .filter(|(_, s)| **s == shard)
            .map(|(d, _)| first_index[d])
            .collect()
    };
    let mut checked = 0;
    for child in shards {
        let Some(child_first) = records_of(&child.shard_id).into_iter().min() else {
            continue;
        };
        let parents = child
            .parent_shard_id
            .iter()
            .chain(&child.adjacent_parent_shard_id);
        for p in parents {
            if let Some(parent_last) = records_of(p).into_iter().max() {
                assert!(
                    parent_last < child_first,
                    "record #{child_first} of {} came before record #{parent_last} of its parent {p}",
                    child.shard_id
                );
                checked += 1;
            }
        }
    }
    let mut order: Vec<(usize, &str)> = first_index.iter().map(|(d, i)| (*i, *d)).collect();
    order.sort();
    let mut last: HashMap<&str, &str> = HashMap::new();
    for (_, d) in order {
        let (key, n) = d.split_once(':').expect("key:counter");
        if let Some(prev) = last.insert(key, n) {
            assert!(prev < n, "{key}: {n} after {prev}");
        }
    }
    checked
}

// ---------------------------------------------------------------------------
// Three worker processes, SIGKILL, restart
// ---------------------------------------------------------------------------

/// A worker process and the lines it printed so far.
struct WorkerProcess {
    id: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl WorkerProcess {
    fn spawn(
        endpoint: &str,
        stream: &str,
        app: &str,
        db: &str,
        id: &str,
        log: &std::path::Path,
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kcl-test-worker"))
            .args([endpoint, stream, app, db, id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("worker log"))
            .spawn()
            .expect("spawn worker");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().push(line);
            }
        });
        WorkerProcess {
            id: id.to_string(),
            child,
            lines,
        }
    }

    fn records_seen(&self) -> usize {
        self.lines
            .lock()
            .iter()
            .filter(|l| l.starts_with("R "))
            .count()
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    /// Wait (bounded) for the process to exit; its status.
    async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader thread drain the pipe.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return status;
            }
            assert!(Instant::now() < deadline, "worker {} did not exit", self.id);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One parsed output line of a worker.
#[derive(Debug, Clone)]
enum Line {
    Init(String, ExtendedSequenceNumber),
    Record(String, ExtendedSequenceNumber, String),
    Checkpoint(String, ExtendedSequenceNumber),
}

fn parse_line(line: &str) -> Option<Line> {
    let f: Vec<&str> = line.split(' ').collect();
    let pos = |s: &str, sub: &str| ExtendedSequenceNumber::parse(s, sub.parse().ok()?).ok();
    match f[..] {
        ["I", shard, c, sub] => Some(Line::Init(shard.into(), pos(c, sub)?)),
        ["R", shard, seq, sub, data] => {
            Some(Line::Record(shard.into(), pos(seq, sub)?, data.into()))
        }
        ["C", shard, c, sub] => Some(Line::Checkpoint(shard.into(), pos(c, sub)?)),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_survive_a_sigkill_and_resume_from_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("leases.sqlite");
    three_workers_sigkill(&db.display().to_string(), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_on_a_dynamodb_lease_table_survive_a_sigkill() {
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let dir = tempfile::tempdir().expect("tempdir");
    three_workers_sigkill(&format!("dynamodb={}", dynalite.endpoint), dir.path()).await;
}

/// Three worker processes sharing the lease table `db` (a worker spec's store field)
/// consume an 8-shard stream; one is SIGKILLed, a fourth joins; every record is processed,
/// duplicates only after the last checkpoint, every session resumes right after its checkpoint.
async fn three_workers_sigkill(db: &str, dir: &std::path::Path) {
    let broker = common::start_broker().await;
    let endpoint = broker.endpoint();
    let kinesis = client(&endpoint);
    create_stream(&kinesis, "multi", 8).await;
    let store = open_store(db, "multi-app").await;
    let store = &*store;
    let spawn = |id: &str| {
        WorkerProcess::spawn(
            &endpoint,
            "multi",
            "multi-app",
            db,
            id,
            &dir.join(format!("{id}.log")),
        )
    };
    let mut workers = vec![spawn("w1"), spawn("w2"), spawn("w3")];

    // Produce through the KPL (aggregation on) while the workers start and balance.
    let producer = Arc::new(
        kinesis_kpl::Producer::new(
            kinesis_kpl::Config::builder()
                .endpoint(endpoint.clone())
                .seed(3)
                .build(),
        )
        .expect("producer"),
    );
    let feeding = {
        let producer = Arc::clone(&producer);
        tokio::spawn(async move {
            let mut handles = Vec::new();
            for burst in 0..20 {
                handles.extend(
                    put_with_kpl(&producer, "multi", &records(&format!("a{burst:02}"), 400)).await,
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            for h in handles {
                h.await.expect("record stored");
            }
        })
    };
    wait_until_async(
        "the three workers to share the 8 leases",
        Duration::from_secs(30),
        || async {
            let o = owners(store).await;
            o.len() == 8 && ["w1", "w2", "w3"].iter().all(|w| count_owned(&o, w) >= 2)
        },
    )
    .await;
    // w1 may get its share only after the feed above is consumed by the others
    // (balancing is slower on a loaded machine): keep feeding, a burst a second,
    // until w1 has processed records of its own.
    let mut extra_bursts = 0;
    while workers[0].records_seen() == 0 {
        assert!(
            extra_bursts < 30,
            "timed out waiting for w1 to process records"
        );
        for h in put_with_kpl(
            &producer,
            "multi",
            &records(&format!("x{extra_bursts:02}"), 400),
        )
        .await
        {
            h.await.expect("record stored");
        }
        extra_bursts += 1;
        let deadline = Instant::now() + Duration::from_secs(1);
        while workers[0].records_seen() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    // SIGKILL w1 mid-stream: its leases must be taken once they expire.
    let killed_at = Instant::now();
    workers[0].child.kill().expect("SIGKILL");
    wait_until_async(
        "w1's leases to be taken",
        Duration::from_secs(30),
        || async { count_owned(&owners(store).await, "w1") == 0 },
    )
    .await;
    let takeover = killed_at.elapsed();
    eprintln!(
        "SIGKILL: the dead worker's leases were all taken {takeover:?} after the kill (failover time 1.5 s)"
    );
    feeding.await.expect("producer");

    // A restarted worker gets its share back (by graceful hand-off, so it holds a lease
    // once its owner has passed it on) and resumes from the checkpoints.
    workers.push(spawn("w4"));
    wait_until_async("w4 to get its share", Duration::from_secs(30), || async {
        held_outright(store, "w4").await >= 2
    })
    .await;
    let mut handles = Vec::new();
    for burst in 0..5 {
        handles
            .extend(put_with_kpl(&producer, "multi", &records(&format!("b{burst:02}"), 400)).await);
    }
    for h in handles {
        h.await.expect("record stored");
    }
    let expected: BTreeSet<String> = (0..20)
        .flat_map(|b| records(&format!("a{b:02}"), 400))
        .chain((0..5).flat_map(|b| records(&format!("b{b:02}"), 400)))
        .chain((0..extra_bursts).flat_map(|b| records(&format!("x{b:02}"), 400)))
        .map(|(_, d)| d)
        .collect();
    let all_lines = |workers: &[WorkerProcess]| -> Vec<(String, Vec<String>)> {
        workers
            .iter()
            .map(|w| (w.id.clone(), w.lines.lock().clone()))
            .collect()
    };
    wait_until(
        "every record to be processed",
        Duration::from_secs(40),
        || {
            let seen: BTreeSet<String> = all_lines(&workers)
                .iter()
                .flat_map(|(_, lines)| {
                    lines
                        .iter()
                        .filter_map(|l| match parse_line(l) {
                            Some(Line::Record(_, _, d)) => Some(d),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            seen.len() >= expected.len()
        },
    )
    .await;
    assert!(
        workers[3].records_seen() > 0,
        "the restarted worker processed records"
    );

    // Graceful shutdown of every live worker: each exits cleanly.
    for w in workers.iter().skip(1) {
        w.terminate();
    }
    for w in workers.iter_mut().skip(1) {
        let status = w.wait_exit(Duration::from_secs(20)).await;
        assert!(status.success(), "worker {} exited with {status}", w.id);
    }
    let leases = store.list().await.expect("list");
    assert!(
        leases.iter().all(|l| l.lease_owner.is_none()),
        "every lease released: {leases:?}"
    );

    // Analysis: every record at least once; duplicates only from after a checkpoint;
    // every session starts right after its checkpoint.
    let outputs = all_lines(&workers);
    // Keyed by position: a producer retry may store the same data twice, which is
    // not the consumer's duplicate.
    let mut deliveries: HashMap<(String, ExtendedSequenceNumber), usize> = HashMap::new();
    let mut checkpointed_deliveries: HashMap<(String, ExtendedSequenceNumber), usize> =
        HashMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut uncheckpointed = 0usize;
    let mut positions: BTreeMap<String, BTreeSet<ExtendedSequenceNumber>> = BTreeMap::new();
    // (shard, init checkpoint, first position delivered after it)
    let mut session_starts: Vec<(String, ExtendedSequenceNumber, ExtendedSequenceNumber)> =
        Vec::new();
    for (_, lines) in &outputs {
        // Per shard: the current session's deliveries not yet covered by a checkpoint.
        let mut open: HashMap<String, Vec<ExtendedSequenceNumber>> = HashMap::new();
        let mut awaiting_first: HashMap<String, ExtendedSequenceNumber> = HashMap::new();
        let close = |pending: Vec<ExtendedSequenceNumber>, n: &mut usize| *n += pending.len();
        for line in lines.iter().filter_map(|l| parse_line(l)) {
            match line {
                Line::Init(shard, c) => {
                    if let Some(rest) = open.remove(&shard) {
                        close(rest, &mut uncheckpointed);
                    }
                    awaiting_first.insert(shard, c);
                }
                Line::Record(shard, pos, data) => {
                    *deliveries.entry((shard.clone(), pos.clone())).or_default() += 1;
                    seen.insert(data.clone());
                    positions
                        .entry(shard.clone())
                        .or_default()
                        .insert(pos.clone());
                    if let Some(c) = awaiting_first.remove(&shard) {
                        session_starts.push((shard.clone(), c, pos.clone()));
                    }
                    open.entry(shard).or_default().push(pos);
                }
                Line::Checkpoint(shard, c) => {
                    let pending = open.entry(shard.clone()).or_default();
                    let (done, rest): (Vec<_>, Vec<_>) =
                        pending.drain(..).partition(|p| *p <= c || c.is_shard_end());
                    *pending = rest;
                    for p in done {
                        *checkpointed_deliveries
                            .entry((shard.clone(), p))
                            .or_default() += 1;
                    }
                }
            }
        }
        for (_, rest) in open {
            close(rest, &mut uncheckpointed);
        }
    }
    assert_eq!(seen, expected, "every user record processed at least once");
    let duplicates: usize = deliveries.values().map(|n| n - 1).sum();
    eprintln!(
        "3 workers, SIGKILL, restart: {} user records at {} positions, {} deliveries, \
         {duplicates} duplicates, {uncheckpointed} deliveries never covered by a checkpoint",
        expected.len(),
        deliveries.len(),
        deliveries.values().sum::<usize>()
    );
    assert!(
        checkpointed_deliveries.values().all(|&n| n <= 1),
        "a record covered by a checkpoint was processed again"
    );
    assert!(
        duplicates <= uncheckpointed,
        "duplicates ({duplicates}) come only from deliveries after the last checkpoint ({uncheckpointed})"
    );
    let mut resumed_from_real_checkpoint = 0;
    for (shard, checkpoint, first) in &session_starts {
        let expected_first = positions[shard]
            .range((
                std::ops::Bound::Excluded(checkpoint.clone()),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .expect("a later record");
        assert_eq!(
            first, expected_first,
            "{shard}: a session starting at {checkpoint} resumed right after it"
        );
        if !checkpoint.is_sentinel() {
            resumed_from_real_checkpoint += 1;
        }
    }
    assert!(
        resumed_from_real_checkpoint >= 2,
        "takeovers resumed from stored checkpoints"
    );
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------
// Another Kinesis implementation: kinesalite
// ---------------------------------------------------------------------------

/// kinesalite (from npm, installed under target/peers) on an ephemeral port.
struct Kinesalite {
    child: Child,
    endpoint: String,
}

impl Kinesalite {
    fn start() -> Self {
        let package = common::peers::npm_package("kinesalite");
        let script = "require(process.argv[1])({createStreamMs:0,deleteStreamMs:0,updateStreamMs:0,shardLimit:100})\
            .listen(0,'127.0.0.1',function(){console.log('PORT '+this.address().port)})";
        let mut child = Command::new("node")
            .args(["-e", script])
            .arg(&package)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kinesalite with node");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("kinesalite port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .expect("PORT line")
            .to_string();
        Kinesalite {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_a_stream_on_kinesalite() {
    let kinesalite = tokio::task::spawn_blocking(Kinesalite::start)
        .await
        .expect("kinesalite");
    let kinesis = client(&kinesalite.endpoint);
    create_stream(&kinesis, "lite", 2).await;
    let plain = records("plain", 50);
    let aggregated = records("agg", 150);
    put_plain(&kinesis, "lite", &plain).await;
    put_aggregated(&kinesis, "lite", &aggregated).await;
    let expected: BTreeSet<String> = plain
        .iter()
        .chain(&aggregated)
        .map(|(_, d)| d.clone())
        .collect();

    let journal = Journal::default();
    let scheduler = Scheduler::new(
        test_config("lite", "app", "w1", Duration::from_secs(10)),
        kinesis.clone(),
        Arc::new(InMemoryLeaseStore::new()),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    wait_until(
        "every record from kinesalite",
        Duration::from_secs(30),
        || journal.distinct_data().len() >= expected.len(),
    )
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    assert_eq!(journal.distinct_data(), expected);
    let checkpoints = journal
        .entries()
        .iter()
        .filter(|e| matches!(e.event, Event::Checkpointed(_)))
        .count();
    assert!(checkpoints >= 2, "checkpoints were stored");
    // Sub-sequence numbers came through: some aggregate's user records are at sub > 0.
    assert!(
        journal
            .entries()
            .iter()
            .any(|e| matches!(&e.event, Event::Record(p, _) if p.sub_sequence_number() > 0))
    );

    // One shard as a Stream, from the start and from right after a user record
    // inside an aggregate.
    let shard0: Vec<(ExtendedSequenceNumber, String)> = journal
        .entries()
        .into_iter()
        .filter(|e| e.shard == "shardId-000000000000")
        .filter_map(|e| match e.event {
            Event::Record(p, d) => Some((p, d)),
            _ => None,
        })
        .collect();
    let polling = PollingConfig {
        idle_time_between_reads: Duration::from_millis(200),
        ..PollingConfig::default()
    };
    let read = |start: StartingPosition, n: usize| {
        let records = shard_records(
            kinesis.clone(),
            StreamRef::name("lite"),
            "shardId-000000000000",
            start,
            polling.clone(),
        )
        .expect("shard stream");
        async move {
            use futures::StreamExt;
            records
                .take(n)
                .map(|r| {
                    let r = r.expect("record").record;
                    (
                        r.extended_sequence_number(),
                        String::from_utf8_lossy(&r.data).into_owned(),
                    )
                })
                .collect::<Vec<_>>()
                .await
        }
    };
    assert_eq!(
        read(StartingPosition::TrimHorizon, shard0.len()).await,
        shard0
    );
    let mid = shard0
        .iter()
        .position(|(p, _)| p.sub_sequence_number() > 0)
        .expect("a user record inside an aggregate on shard 0");
    let after = read(
        StartingPosition::After(shard0[mid].0.clone()),
        shard0.len() - mid - 1,
    )
    .await;
    assert_eq!(after, shard0[mid + 1..]);
    drop(kinesalite);
}

// ---------------------------------------------------------------------------
// Enhanced fan-out
// ---------------------------------------------------------------------------

const EFO_SHARDS: [&str; 2] = ["shardId-000000000000", "shardId-000000000001"];

/// Fan-out scheduler settings: short lease timings, quick re-subscription backoff.
fn fan_out_config(stream: &str, worker: &str) -> Config {
    Config::builder(stream, "efo-app")
        .worker_identifier(worker)
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .failover_time(Duration::from_secs(10))
        .lease_taker_interval(Duration::from_millis(200))
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
        .shard_sync_interval(Duration::from_millis(500))
        .polling(PollingConfig {
            retry_backoff_base: Duration::from_millis(100),
            retry_backoff_cap: Duration::from_secs(1),
            ..PollingConfig::default()
        })
        .fan_out("efo-consumer")
        .build()
        .expect("valid config")
}

/// Every record exactly once, and in each shard in sequence order.
fn assert_in_order_exactly_once(journal: &Journal, expected: &BTreeSet<String>) {
    let mut last: HashMap<String, ExtendedSequenceNumber> = HashMap::new();
    let mut seen = BTreeSet::new();
    for e in journal.entries() {
        if let Event::Record(position, data) = e.event {
            assert!(seen.insert(data.clone()), "{data} delivered twice");
            if let Some(prev) = last.get(&e.shard) {
                assert!(
                    *prev < position,
                    "{} out of order: {position} after {prev}",
                    e.shard
                );
            }
            last.insert(e.shard, position);
        }
    }
    assert_eq!(&seen, expected);
}

/// PUT a fault plan on the broker's admin endpoint.
async fn put_faults(addr: std::net::SocketAddr, plan: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "PUT /admin/faults HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            plan.len()
        );
        tcp.write_all(head.as_bytes()).await.expect("write head");
        tcp.write_all(plan.as_bytes()).await.expect("write body");
        let mut buf = Vec::new();
        tcp.read_to_end(&mut buf).await.expect("read response");
        String::from_utf8_lossy(&buf).into_owned()
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the broker answered");
    assert!(answer.starts_with("HTTP/1.1 2"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_reads_across_subscription_expiries_and_connection_resets() {
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .subscription_lifetime(Duration::from_secs(2))
            .build(),
    )
    .await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "efo", 2).await;
    put_plain(&kinesis, "efo", &records("before", 100)).await;
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        fan_out_config("efo", "w1"),
        client(&broker.endpoint()),
        Arc::new(InMemoryLeaseStore::new()),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let metrics = scheduler.metrics().clone();
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    let fewest = |outcome: &str| -> u64 {
        EFO_SHARDS
            .iter()
            .map(|s| {
                metrics
                    .subscriptions_ended
                    .with_label_values(&[*s, outcome])
                    .get()
            })
            .min()
            .unwrap_or(0)
    };

    // Keep records flowing, plain and aggregated, while subscriptions expire.
    let mut expected: BTreeSet<String> = records("before", 100).into_iter().map(|r| r.1).collect();
    let mut wave = 0;
    while fewest("expired") < 2 {
        assert!(wave < 300, "subscriptions never expired twice per shard");
        let batch = records(&format!("x{wave}"), 20);
        if wave % 2 == 0 {
            put_plain(&kinesis, "efo", &batch).await;
        } else {
            put_aggregated(&kinesis, "efo", &batch).await;
        }
        expected.extend(batch.into_iter().map(|r| r.1));
        wave += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Now reset half the subscriptions mid-response.
    put_faults(
        broker.local_addr(),
        r#"{"seed": 7, "rules": [{"operation": "SubscribeToShard", "reset_rate": 0.5}]}"#,
    )
    .await;
    let failed_before = fewest("failed");
    let mut wave = 0;
    while fewest("failed") < failed_before + 2 {
        assert!(wave < 300, "no connection reset seen");
        let batch = records(&format!("r{wave}"), 20);
        if wave % 2 == 0 {
            put_aggregated(&kinesis, "efo", &batch).await;
        } else {
            put_plain(&kinesis, "efo", &batch).await;
        }
        expected.extend(batch.into_iter().map(|r| r.1));
        wave += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    put_faults(broker.local_addr(), r#"{"seed": 0, "rules": []}"#).await;
    wait_until("every record", Duration::from_secs(30), || {
        journal.distinct_data().len() >= expected.len()
    })
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    assert_in_order_exactly_once(&journal, &expected);
    eprintln!(
        "fan-out: {} records, subscriptions expired {:?}, failed {:?}",
        expected.len(),
        EFO_SHARDS.map(|s| metrics
            .subscriptions_ended
            .with_label_values(&[s, "expired"])
            .get()),
        EFO_SHARDS.map(|s| metrics
            .subscriptions_ended
            .with_label_values(&[s, "failed"])
            .get()),
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_survives_a_broker_restart_with_a_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker_config = |port: u16| {
        BrokerConfig::builder()
            .port(port)
            .state_delays(Duration::ZERO)
            .durable(kinesis_broker::store::durable::DurableConfig::new(
                dir.path(),
            ))
            .build()
    };
    let broker = common::start_broker_with(broker_config(0)).await;
    let addr = broker.local_addr();
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "efo-durable", 2).await;
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        fan_out_config("efo-durable", "w1"),
        client(&broker.endpoint()),
        Arc::new(InMemoryLeaseStore::new()),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let metrics = scheduler.metrics().clone();
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    let mut expected = BTreeSet::new();
    let first = records("a", 150);
    put_plain(&kinesis, "efo-durable", &first).await;
    expected.extend(first.into_iter().map(|r| r.1));
    wait_until("the first records", Duration::from_secs(20), || {
        journal.distinct_data().len() >= expected.len()
    })
    .await;

    broker.shutdown().await;
    // The same port, so the running scheduler's client finds it again.
    let mut restarted = None;
    for _ in 0..100 {
        match kinesis_broker::Broker::start(broker_config(addr.port())).await {
            Ok(b) => {
                restarted = Some(b);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let broker = restarted.expect("the broker restarts on its port");
    let plain = records("b", 100);
    let aggregated = records("c", 100);
    put_plain(&kinesis, "efo-durable", &plain).await;
    put_aggregated(&kinesis, "efo-durable", &aggregated).await;
    expected.extend(plain.into_iter().chain(aggregated).map(|r| r.1));
    wait_until(
        "every record after the restart",
        Duration::from_secs(30),
        || journal.distinct_data().len() >= expected.len(),
    )
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    assert_in_order_exactly_once(&journal, &expected);
    let failed = EFO_SHARDS.map(|s| {
        metrics
            .subscriptions_ended
            .with_label_values(&[s, "failed"])
            .get()
    });
    assert!(
        failed.iter().all(|&f| f > 0),
        "every subscription broke with the broker: {failed:?}"
    );
    eprintln!("fan-out across a restart: subscriptions failed {failed:?}");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_ends_a_split_shard_and_reads_its_children_after_it() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "efo-split", 2).await;
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        fan_out_config("efo-split", "w1"),
        kinesis.clone(),
        Arc::new(InMemoryLeaseStore::new()),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    let wave = |from: usize, n: usize| -> Vec<(String, String)> {
        (from..from + n)
            .map(|i| {
                let key = format!("key-{}", i % 20);
                (key.clone(), format!("{key}:{i:06}"))
            })
            .collect()
    };
    let mut expected = BTreeSet::new();
    let before = wave(0, 200);
    put_plain(&kinesis, "efo-split", &before).await;
    expected.extend(before.into_iter().map(|r| r.1));
    wait_until("consumption to start", Duration::from_secs(20), || {
        !journal.distinct_data().is_empty()
    })
    .await;
    let shards = open_shards(&kinesis, "efo-split").await;
    let r0 = range_of(&shards[0]);
    kinesis
        .split_shard(&SplitShardInput {
            stream: StreamRef::name("efo-split"),
            shard_to_split: Some(shards[0].shard_id.clone()),
            new_starting_hash_key: Some((r0.start + (r0.end - r0.start) / 2).to_string()),
        })
        .await
        .expect("split");
    wait_active(&kinesis, "efo-split").await;
    let after = wave(200, 200);
    put_aggregated(&kinesis, "efo-split", &after).await;
    expected.extend(after.into_iter().map(|r| r.1));
    wait_until("every record", Duration::from_secs(30), || {
        journal.distinct_data().len() >= expected.len()
    })
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    assert_in_order_exactly_once(&journal, &expected);
    assert!(
        journal
            .entries()
            .iter()
            .any(|e| e.shard == shards[0].shard_id && e.event == Event::ShardEnded),
        "the parent's final event ended it"
    );
    let all_shards =
        kinesis_kcl::shard_sync::list_all_shards(&kinesis, &StreamRef::name("efo-split"))
            .await
            .expect("list");
    let deliveries: Vec<(String, String)> = journal
        .entries()
        .into_iter()
        .filter_map(|e| match e.event {
            Event::Record(_, d) => Some((e.shard, d)),
            _ => None,
        })
        .collect();
    assert_eq!(assert_parents_first(&all_shards, &deliveries), 2);
    broker.shutdown().await;
}

/// kinesis-mock (npm `kinesis-local`) on a free plain-HTTP port.
struct KinesisLocal {
    child: Child,
    endpoint: String,
}

impl KinesisLocal {
    fn start() -> Self {
        let package = common::peers::npm_package("kinesis-local");
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port()
        };
        let (plain, tls) = (free_port(), free_port());
        // It reads server.json (its TLS certificate) from the working directory.
        let child = Command::new("node")
            .arg("main.js")
            .current_dir(&package)
            .env("KINESIS_MOCK_PLAIN_PORT", plain.to_string())
            .env("KINESIS_MOCK_TLS_PORT", tls.to_string())
            .env("CREATE_STREAM_DURATION", "0ms")
            .env("REGISTER_STREAM_CONSUMER_DURATION", "0ms")
            .env("LOG_LEVEL", "WARN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kinesis-local with node");
        let local = KinesisLocal {
            child,
            endpoint: format!("http://127.0.0.1:{plain}"),
        };
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", plain)).is_ok() {
                return local;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kinesis-local never listened on {plain}");
    }
}

impl Drop for KinesisLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// kinesis-mock 0.6.2 opens the event stream with a SubscribeToShardEvent instead of
// the `initial-response` AWS sends first; the client keeps that event's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_consumes_a_stream_on_kinesis_local() {
    let local = tokio::task::spawn_blocking(KinesisLocal::start)
        .await
        .expect("kinesis-local");
    let kinesis = client(&local.endpoint);
    create_stream(&kinesis, "local", 2).await;
    let plain = records("plain", 50);
    let aggregated = records("agg", 100);
    put_plain(&kinesis, "local", &plain).await;
    put_aggregated(&kinesis, "local", &aggregated).await;
    let expected: BTreeSet<String> = plain
        .iter()
        .chain(&aggregated)
        .map(|(_, d)| d.clone())
        .collect();
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        fan_out_config("local", "w1"),
        kinesis.clone(),
        Arc::new(InMemoryLeaseStore::new()),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    wait_until(
        "every record from kinesis-local",
        Duration::from_secs(30),
        || journal.distinct_data().len() >= expected.len(),
    )
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    assert_in_order_exactly_once(&journal, &expected);
}

// ---------------------------------------------------------------------------
// Leases in DynamoDB (dynalite)
// ---------------------------------------------------------------------------

/// A fresh dynalite and a lease table in it, for one run of the shared store suite.
async fn fresh_dynamodb_table() -> (DynamoDbLeaseStore, common::peers::Dynalite) {
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let store = dynamodb_store(&dynalite.endpoint, "suite-app").await;
    (store, dynalite)
}

kinesis_kcl::lease_store_suite!(dynamodb_lease_store_suite, fresh_dynamodb_table().await);

/// The official DynamoDB client, for writing and reading items as the Java KCL does.
fn raw_dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_dynamodb_clients_race_for_a_lease_with_one_winner() {
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let mut stores: Vec<Arc<DynamoDbLeaseStore>> = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(
            dynamodb_store(&dynalite.endpoint, "race-app").await,
        ));
    }
    kinesis_kcl::lease_store::suite::racing_takers_have_one_winner(stores, 16).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_table_is_created_as_the_kcl_creates_it_and_an_existing_one_is_kept() {
    use aws_sdk_dynamodb::types::{BillingMode, KeyType};
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let raw = raw_dynamodb(&dynalite.endpoint);

    let store = dynamodb_store(&dynalite.endpoint, "fresh-app").await;
    assert_eq!(store.table_name(), "fresh-app");
    let table = raw
        .describe_table()
        .table_name("fresh-app")
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let key = table.key_schema();
    assert_eq!(key.len(), 1);
    assert_eq!(key[0].attribute_name(), "leaseKey");
    assert_eq!(key[0].key_type(), &KeyType::Hash);
    assert_eq!(
        table.billing_mode_summary().and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );
    let index = &table.global_secondary_indexes()[0];
    assert_eq!(
        index.index_name(),
        Some(kinesis_kcl::lease_store::dynamodb::LEASE_OWNER_INDEX)
    );
    let index_keys: Vec<_> = index
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name().to_string(), k.key_type().clone()))
        .collect();
    assert_eq!(
        index_keys,
        vec![
            ("leaseOwner".to_string(), KeyType::Hash),
            ("leaseKey".to_string(), KeyType::Range)
        ]
    );

    // Provisioned capacity when asked for.
    DynamoDbLeaseStore::open(
        DynamoDbConfig::builder("provisioned-app")
            .endpoint(&dynalite.endpoint)
            .billing_mode(
                kinesis_kcl::lease_store::dynamodb::BillingMode::Provisioned {
                    read_capacity: 10,
                    write_capacity: 10,
                },
            )
            .build(),
    )
    .await
    .expect("provisioned table");
    let provisioned = raw
        .describe_table()
        .table_name("provisioned-app")
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    assert_eq!(
        provisioned
            .provisioned_throughput()
            .and_then(|p| p.read_capacity_units()),
        Some(10)
    );

    // A table that exists (a KCL 2.x one: no index) is used as it is, items included.
    let lease =
        kinesis_kcl::lease::Lease::new("shardId-000000000000", ExtendedSequenceNumber::Latest);
    assert!(store.create_if_absent(&lease).await.expect("create"));
    let again = dynamodb_store(&dynalite.endpoint, "fresh-app").await;
    assert_eq!(again.list().await.expect("list"), vec![lease]);
}

/// PutRecord each of `data` into the shard whose range starts at `hash_key`; their sequence numbers.
async fn put_to_shard(
    client: &Client,
    stream: &str,
    hash_key: u128,
    data: &[String],
) -> Vec<String> {
    let mut sequence_numbers = Vec::new();
    for d in data {
        let out = client
            .put_records(&PutRecordsInput {
                records: Some(vec![PutRecordsRequestEntry {
                    data: Some(Blob(Bytes::from(d.clone()))),
                    partition_key: Some("pk".into()),
                    explicit_hash_key: Some(hash_key.to_string()),
                }]),
                stream: StreamRef::name(stream),
            })
            .await
            .expect("put");
        sequence_numbers.push(
            out.records[0]
                .sequence_number
                .clone()
                .expect("stored, limits off"),
        );
    }
    sequence_numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_table_written_by_the_java_kcl_is_resumed_where_it_stopped() {
    use aws_sdk_dynamodb::primitives::Blob as DdbBlob;
    use aws_sdk_dynamodb::types::AttributeValue as Av;

    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(kinesis_broker::limiter::LimitProfile::Off)
            .build(),
    )
    .await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "java", 3).await;
    let originals = open_shards(&kinesis, "java").await;
    let start = |i: usize| range_of(&originals[i]).start;
    let data = |p: &str| (0..10).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    let a = put_to_shard(&kinesis, "java", start(0), &data("A")).await;
    let _b = put_to_shard(&kinesis, "java", start(1), &data("B")).await;
    let d = put_to_shard(&kinesis, "java", start(2), &data("D")).await;
    for parent in [1, 2] {
        let r = range_of(&originals[parent]);
        kinesis
            .split_shard(&SplitShardInput {
                stream: StreamRef::name("java"),
                shard_to_split: Some(originals[parent].shard_id.clone()),
                new_starting_hash_key: Some((r.start + (r.end - r.start) / 2).to_string()),
            })
            .await
            .expect("split");
        wait_active(&kinesis, "java").await;
    }
    let all = kinesis_kcl::shard_sync::list_all_shards(&kinesis, &StreamRef::name("java"))
        .await
        .expect("list shards");
    let children_of = |parent: usize| -> Vec<Shard> {
        all.iter()
            .filter(|s| s.parent_shard_id.as_deref() == Some(originals[parent].shard_id.as_str()))
            .cloned()
            .collect()
    };
    let (kids1, kids2) = (children_of(1), children_of(2));
    assert_eq!((kids1.len(), kids2.len()), (2, 2));
    let mut child_data = BTreeMap::new();
    for (i, child) in kids1.iter().chain(&kids2).enumerate() {
        let records = data(&format!("C{i}-"));
        put_to_shard(&kinesis, "java", range_of(child).start, &records).await;
        child_data.insert(child.shard_id.clone(), records);
    }

    // The lease table as the Java KCL (2.x creates it provisioned, without the owner index)
    // left it: shard 0 mid-shard with a prepared checkpoint and a 3.x attribute; shard 1
    // ended with its children recorded; shard 2 mid-shard, still owned by a dead worker.
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let raw = raw_dynamodb(&dynalite.endpoint);
    raw.create_table()
        .table_name("java-app")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("definition"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("leaseKey")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .provisioned_throughput(
            aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                .read_capacity_units(10)
                .write_capacity_units(10)
                .build()
                .expect("throughput"),
        )
        .send()
        .await
        .expect("create table");
    let s = |v: &str| Av::S(v.to_string());
    let n = |v: &str| Av::N(v.to_string());
    let ss = |v: Vec<String>| Av::Ss(v);
    let range = |shard: &Shard| {
        let r = range_of(shard);
        [
            ("startingHashKey", s(&r.start.to_string())),
            ("endingHashKey", s(&r.end.to_string())),
        ]
    };
    let mut items: Vec<Vec<(&str, Av)>> = Vec::new();
    let mut shard0 = vec![
        ("leaseKey", s(&originals[0].shard_id)),
        ("leaseOwner", s("java-host-1:7c9a")),
        ("leaseCounter", n("42")),
        ("ownerSwitchesSinceCheckpoint", n("3")),
        ("checkpoint", s(&a[4])),
        ("checkpointSubSequenceNumber", n("0")),
        ("pendingCheckpoint", s(&a[6])),
        ("pendingCheckpointSubSequenceNumber", n("0")),
        (
            "pendingCheckpointState",
            Av::B(DdbBlob::new(b"app-state".to_vec())),
        ),
        // An attribute kcl does not know (a newer KCL's, say) must survive kcl's writes.
        ("futureAttribute", s("kept-as-is")),
    ];
    shard0.extend(range(&originals[0]));
    items.push(shard0);
    let mut shard1 = vec![
        ("leaseKey", s(&originals[1].shard_id)),
        ("leaseCounter", n("9")),
        ("ownerSwitchesSinceCheckpoint", n("0")),
        ("checkpoint", s("SHARD_END")),
        ("checkpointSubSequenceNumber", n("0")),
        (
            "childShardIds",
            ss(kids1.iter().map(|k| k.shard_id.clone()).collect()),
        ),
    ];
    shard1.extend(range(&originals[1]));
    items.push(shard1);
    let mut shard2 = vec![
        ("leaseKey", s(&originals[2].shard_id)),
        ("leaseOwner", s("java-host-2:0f31")),
        ("leaseCounter", n("5")),
        ("ownerSwitchesSinceCheckpoint", n("1")),
        ("checkpoint", s(&d[4])),
        ("checkpointSubSequenceNumber", n("0")),
    ];
    shard2.extend(range(&originals[2]));
    items.push(shard2);
    for (parent, kids) in [(1, &kids1), (2, &kids2)] {
        for kid in kids {
            let mut child = vec![
                ("leaseKey", s(&kid.shard_id)),
                ("leaseCounter", n("0")),
                ("ownerSwitchesSinceCheckpoint", n("0")),
                ("checkpoint", s("TRIM_HORIZON")),
                ("checkpointSubSequenceNumber", n("0")),
                (
                    "parentShardId",
                    ss(vec![originals[parent].shard_id.clone()]),
                ),
            ];
            child.extend(range(kid));
            items.push(child);
        }
    }
    for item in items {
        raw.put_item()
            .table_name("java-app")
            .set_item(Some(
                item.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            ))
            .send()
            .await
            .expect("put Java item");
    }

    let store: Arc<dyn LeaseStore> = Arc::new(dynamodb_store(&dynalite.endpoint, "java-app").await);
    let journal = Journal::default();
    let worker = Scheduler::new(
        test_config("java", "java-app", "rust-1", Duration::from_millis(1_500)),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("rust-1", &journal),
    )
    .expect("scheduler");
    let handle = worker.shutdown_handle();
    let run = tokio::spawn(worker.run());
    let mut expected: BTreeSet<String> =
        ["A5", "A6", "A7", "A8", "A9", "D5", "D6", "D7", "D8", "D9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    expected.extend(child_data.values().flatten().cloned());
    wait_until(
        "every record after the checkpoints",
        Duration::from_secs(30),
        || journal.distinct_data().len() >= expected.len(),
    )
    .await;
    handle.request();
    run.await.expect("join").expect("scheduler run");

    assert_eq!(
        journal.distinct_data(),
        expected,
        "resumed right after each checkpoint, shard 1 not re-read"
    );
    let entries = journal.entries();
    // Shard 0 starts at its checkpoint and sees the Java application's prepared checkpoint.
    let init0 = entries
        .iter()
        .find_map(|e| match &e.event {
            Event::Init {
                checkpoint,
                pending,
                state,
            } if e.shard == originals[0].shard_id => {
                Some((checkpoint.clone(), pending.clone(), state.clone()))
            }
            _ => None,
        })
        .expect("shard 0 initialised");
    assert_eq!(
        init0.0,
        ExtendedSequenceNumber::parse(&a[4], 0).expect("seq")
    );
    assert_eq!(
        init0.1,
        Some(ExtendedSequenceNumber::parse(&a[6], 0).expect("seq"))
    );
    assert_eq!(init0.2.as_deref(), Some(&b"app-state"[..]));
    // The children of shard 2 start only after their parent's last record.
    let position = |pred: &dyn Fn(&Entry) -> bool| entries.iter().position(pred);
    let parent_last =
        position(&|e| matches!(&e.event, Event::Record(_, d) if d == "D9")).expect("D9 processed");
    for kid in &kids2 {
        let first = position(&|e| e.shard == kid.shard_id && matches!(e.event, Event::Record(..)))
            .expect("child processed");
        assert!(
            first > parent_last,
            "{} read before its parent ended",
            kid.shard_id
        );
    }

    // kcl wrote its checkpoints in the KCL's format and kept the attribute it does not know.
    let item = raw
        .get_item()
        .table_name("java-app")
        .key("leaseKey", s(&originals[0].shard_id))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("shard 0's lease");
    assert_eq!(
        item.get("futureAttribute"),
        Some(&s("kept-as-is")),
        "unknown attribute kept"
    );
    assert_eq!(item.get("checkpoint"), Some(&s(&a[9])));
    assert_eq!(item.get("checkpointSubSequenceNumber"), Some(&n("0")));
    assert_eq!(item.get("leaseOwner"), None, "released on shutdown");
    assert!(
        !item.contains_key("pendingCheckpoint"),
        "the checkpoint cleared the prepared one"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_outage_never_lets_two_workers_process_one_shard() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "outage", 4).await;
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let journal = Journal::default();
    let mut workers = Vec::new();
    for id in ["w1", "w2", "w3"] {
        // Each worker its own client, as on separate hosts.
        let store: Arc<dyn LeaseStore> =
            Arc::new(dynamodb_store(&dynalite.endpoint, "outage-app").await);
        let scheduler = Scheduler::new(
            test_config("outage", "outage-app", id, Duration::from_millis(1_500)),
            kinesis.clone(),
            store,
            recorder(id, &journal),
        )
        .expect("scheduler");
        let handle = scheduler.shutdown_handle();
        workers.push((handle, tokio::spawn(scheduler.run())));
    }
    let observer = dynamodb_store(&dynalite.endpoint, "outage-app").await;
    let mut expected = BTreeSet::new();
    let wave = |prefix: &str| records(prefix, 200);
    let a = wave("a");
    expected.extend(a.iter().map(|(_, d)| d.clone()));
    put_plain(&kinesis, "outage", &a).await;
    wait_until("wave a processed", Duration::from_secs(30), || {
        journal.distinct_data().len() >= expected.len()
    })
    .await;

    // DynamoDB stops answering for 5 s (frozen: connections hang) while records keep coming.
    dynalite.pause();
    let paused_at = Instant::now();
    let b = wave("b");
    expected.extend(b.iter().map(|(_, d)| d.clone()));
    put_plain(&kinesis, "outage", &b).await;
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(paused_at.elapsed())).await;
    dynalite.resume();
    let c = wave("c");
    expected.extend(c.iter().map(|(_, d)| d.clone()));
    put_plain(&kinesis, "outage", &c).await;
    wait_until(
        "every record processed after the outage",
        Duration::from_secs(60),
        || journal.distinct_data().len() >= expected.len(),
    )
    .await;
    wait_until_async(
        "all leases owned again",
        Duration::from_secs(30),
        || async {
            observer
                .list()
                .await
                .is_ok_and(|l| l.len() == 4 && l.iter().all(|l| l.lease_owner.is_some()))
        },
    )
    .await;
    for (handle, _) in &workers {
        handle.request();
    }
    for (_, run) in workers {
        run.await.expect("join").expect("scheduler run");
    }
    assert_eq!(journal.distinct_data(), expected, "every record processed");

    // The processors' own log: per shard, each session (init to its last record) of one
    // worker never overlaps a session of another.
    let timed = journal.timed_entries();
    let mut sessions: BTreeMap<String, Vec<(String, Instant, Instant)>> = BTreeMap::new();
    let mut open: HashMap<(String, String), (Instant, Option<Instant>)> = HashMap::new();
    let close = |sessions: &mut BTreeMap<String, Vec<(String, Instant, Instant)>>,
                 (worker, shard): (String, String),
                 span: (Instant, Option<Instant>)| {
        if let (first, Some(last)) = span {
            sessions
                .entry(shard)
                .or_default()
                .push((worker, first, last));
        }
    };
    for (at, e) in &timed {
        let key = (e.worker.clone(), e.shard.clone());
        match &e.event {
            Event::Init { .. } => {
                if let Some(span) = open.remove(&key) {
                    close(&mut sessions, key.clone(), span);
                }
                open.insert(key, (*at, None));
            }
            Event::Record(..) => {
                let span = open.entry(key).or_insert((*at, None));
                span.1 = Some(*at);
            }
            _ => {}
        }
    }
    for (key, span) in open {
        close(&mut sessions, key, span);
    }
    let mut moves = 0;
    for (shard, list) in &sessions {
        for (i, (w1, s1, e1)) in list.iter().enumerate() {
            for (w2, s2, e2) in &list[i + 1..] {
                if w1 != w2 {
                    moves += 1;
                    assert!(
                        e1 < s2 || e2 < s1,
                        "{shard} processed by {w1} and {w2} at once"
                    );
                }
            }
        }
    }
    // Nothing checkpointed is lost: every session starts at or after the newest checkpoint
    // any worker stored for that shard before it began.
    let mut newest: HashMap<String, ExtendedSequenceNumber> = HashMap::new();
    for (_, e) in &timed {
        match &e.event {
            Event::Checkpointed(c) => {
                let slot = newest
                    .entry(e.shard.clone())
                    .or_insert(ExtendedSequenceNumber::TrimHorizon);
                if c > slot {
                    *slot = c.clone();
                }
            }
            Event::Init { checkpoint, .. } => {
                if let Some(stored) = newest.get(&e.shard) {
                    assert!(
                        checkpoint >= stored,
                        "{} resumed at {checkpoint}, before its checkpoint {stored}",
                        e.shard
                    );
                }
            }
            _ => {}
        }
    }
    eprintln!(
        "DynamoDB outage of 5 s: {} records, {} sessions, {moves} cross-worker session pairs, none overlapping; {} DynamoDB requests by the observer",
        expected.len(),
        sessions.values().map(Vec::len).sum::<usize>(),
        observer.request_count()
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_migrate_from_sqlite_to_dynamodb_and_back_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = SqliteLeaseStore::open(dir.path().join("from.sqlite"), "mig-app")
        .await
        .expect("sqlite");
    let seq = "49600871682957036442365024926191073437251060580128653314";
    let mut originals = Vec::new();
    for (i, checkpoint) in [
        ExtendedSequenceNumber::parse(seq, 3).expect("seq"),
        ExtendedSequenceNumber::ShardEnd,
        ExtendedSequenceNumber::TrimHorizon,
        ExtendedSequenceNumber::AtTimestamp,
    ]
    .into_iter()
    .enumerate()
    {
        let mut lease =
            kinesis_kcl::lease::Lease::new(format!("shardId-00000000000{i}"), checkpoint)
                .with_hash_key_range(HashRange::new(i as u128 * 1000, i as u128 * 1000 + 999));
        lease.lease_counter = 10 + i as u64;
        lease.owner_switches_since_checkpoint = i as u64;
        if i == 0 {
            lease.pending_checkpoint = Some(ExtendedSequenceNumber::parse(seq, 7).expect("seq"));
            lease.pending_checkpoint_state = Some(b"state".to_vec());
            lease.lease_owner = Some("host-a".into());
        }
        if i == 1 {
            lease.child_shard_ids = ["shardId-000000000002".to_string()].into();
        }
        if i == 2 {
            lease = lease.with_parent_shard_ids(["shardId-000000000001"]);
        }
        assert!(sqlite.create_if_absent(&lease).await.expect("create"));
        lease.lease_owner = None;
        originals.push(lease);
    }
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let dynamo = dynamodb_store(&dynalite.endpoint, "mig-app").await;
    let there = kinesis_kcl::lease_store::copy_leases(&sqlite, &dynamo)
        .await
        .expect("to DynamoDB");
    assert_eq!(there.copied.len(), 4);
    assert_eq!(
        dynamo.list().await.expect("list"),
        originals,
        "owners cleared, all else kept"
    );
    let back = SqliteLeaseStore::open(dir.path().join("back.sqlite"), "mig-app")
        .await
        .expect("sqlite");
    kinesis_kcl::lease_store::copy_leases(&dynamo, &back)
        .await
        .expect("back to SQLite");
    assert_eq!(
        back.list().await.expect("list"),
        originals,
        "identical after the round trip"
    );
    // A second copy changes nothing and says so.
    let again = kinesis_kcl::lease_store::copy_leases(&sqlite, &dynamo)
        .await
        .expect("again");
    assert!(again.copied.is_empty());
    assert_eq!(again.already_present.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_makes_no_more_dynamodb_calls_than_the_java_kcl() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "cost", 8).await;
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let store = Arc::new(dynamodb_store(&dynalite.endpoint, "cost-app").await);
    // The KCL's own timings, scaled down: renewals every failover/3 − ε, a taker run
    // every 2 × (failover + ε), a shard sync a minute.
    let failover = Duration::from_millis(1_500);
    let config = Config::builder("cost", "cost-app")
        .worker_identifier("w1")
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .failover_time(failover)
        .build()
        .expect("config");
    let renewer = config.lease.renewer_interval();
    let taker = config.effective_lease_taker_interval();
    let sync = config.shard_sync_interval;
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        config,
        kinesis.clone(),
        Arc::clone(&store) as Arc<dyn LeaseStore>,
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    wait_until_async(
        "w1 to hold all 8 leases",
        Duration::from_secs(30),
        || async { count_owned(&owners(store.as_ref()).await, "w1") == 8 },
    )
    .await;
    let before = store.request_count();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let calls = store.request_count() - before;
    let elapsed = started.elapsed();
    handle.request();
    run.await.expect("join").expect("scheduler run");

    // The Java KCL over the same time: each held lease renewed per renewer run, one
    // paginated Scan per taker run and per shard sync (one page here), no checkpoints
    // on an idle stream. One run of each may straddle the window's edges.
    let runs = |period: Duration| (elapsed.as_secs_f64() / period.as_secs_f64()).ceil() as u64 + 1;
    let java = 8 * runs(renewer) + runs(taker) + runs(sync);
    eprintln!(
        "DynamoDB calls over {elapsed:.1?} with failover {failover:?}: {calls} (the Java KCL's formula: {java}); \
         at the KCL's default 10 s failover that is 8 × 18.1 + 3.0 + 1 = {:.0} calls per worker-minute",
        8.0 * 60.0 / 3.308 + 60.0 / 20.05 + 1.0
    );
    assert!(calls > 0, "the store counts its calls");
    assert!(
        calls <= java,
        "{calls} DynamoDB calls, more than the Java KCL's {java} for the same timings"
    );
    broker.shutdown().await;
}

/// The broker's `kinesis_requests_total` for one operation, all outcomes.
async fn broker_calls(endpoint: &str, operation: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = endpoint.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut body = String::new();
    tcp.read_to_string(&mut body).await.expect("read");
    body.lines()
        .filter(|l| {
            l.starts_with("kinesis_requests_total{")
                && l.contains(&format!("operation=\"{operation}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backlog_is_drained_at_the_read_limit_with_few_throttles() {
    // 24 MiB written with limits off, then read with the service's limits: pages of up to
    // 10 MiB, each of which the shard needs five seconds to recover from.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |limits| {
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(limits)
            .durable(kinesis_broker::store::durable::DurableConfig::new(
                dir.path(),
            ))
            .build()
    };
    let writer =
        common::start_broker_with(config(kinesis_broker::limiter::LimitProfile::Off)).await;
    let kinesis = client(&writer.endpoint());
    create_stream(&kinesis, "backlog", 1).await;
    let payload = "x".repeat(1_000);
    let records: Vec<(String, String)> = (0..24 * 1024)
        .map(|i| (format!("pk-{}", i % 64), format!("{i:08}{payload}")))
        .collect();
    put_plain(&kinesis, "backlog", &records).await;
    writer.shutdown().await;

    let broker =
        common::start_broker_with(config(kinesis_broker::limiter::LimitProfile::Aws)).await;
    let kinesis = client(&broker.endpoint());
    let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
    let journal = Journal::default();
    let scheduler = Scheduler::new(
        test_config("backlog", "drain", "w1", Duration::from_secs(10)),
        kinesis.clone(),
        store,
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let metrics = scheduler.metrics().clone();
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    let started = Instant::now();
    wait_until("the backlog drained", Duration::from_secs(90), || {
        journal.distinct_data().len() >= records.len()
    })
    .await;
    let drained_in = started.elapsed();
    handle.request();
    run.await.expect("join").expect("scheduler run");
    let calls = broker_calls(&broker.endpoint(), "GetRecords").await;
    let throttled: u64 = metrics
        .get_records_throttled
        .with_label_values(&["shardId-000000000000"])
        .get();
    let bytes = records
        .iter()
        .map(|(k, d)| k.len() + d.len())
        .sum::<usize>() as f64;
    eprintln!(
        "drained {:.1} MiB in {drained_in:.1?} ({:.0} % of 2 MiB/s) with {calls} GetRecords, {throttled} throttled",
        bytes / 1048576.0,
        100.0 * bytes / drained_in.as_secs_f64() / (2.0 * 1048576.0)
    );
    assert!(calls > 0);
    assert!(
        throttled * 10 < calls,
        "{throttled} of {calls} GetRecords throttled"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_sharing_one_shard_each_receive_every_record() {
    // 4 MiB written with limits off, then read with the service's limits by three
    // applications at once: two that this process paces together, and one reaching the
    // broker under another name, so that the pace does not know of it (as an application
    // in another process would be) and meets the others' reads as throttles. None starves.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = |limits| {
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(limits)
            .durable(kinesis_broker::store::durable::DurableConfig::new(
                dir.path(),
            ))
            .build()
    };
    let writer =
        common::start_broker_with(config(kinesis_broker::limiter::LimitProfile::Off)).await;
    let kinesis = client(&writer.endpoint());
    create_stream(&kinesis, "shared", 1).await;
    let payload = "x".repeat(1_000);
    let records: Vec<(String, String)> = (0..4 * 1024)
        .map(|i| (format!("pk-{}", i % 64), format!("{i:08}{payload}")))
        .collect();
    put_plain(&kinesis, "shared", &records).await;
    writer.shutdown().await;

    let broker =
        common::start_broker_with(config(kinesis_broker::limiter::LimitProfile::Aws)).await;
    let endpoints = [
        broker.endpoint(),
        format!("http://localhost:{}", broker.local_addr().port()),
        broker.endpoint(),
    ];
    let mut apps = Vec::new();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let journal = Journal::default();
        let scheduler = Scheduler::new(
            test_config("shared", &format!("app-{i}"), "w1", Duration::from_secs(10)),
            client(endpoint),
            Arc::new(InMemoryLeaseStore::new()),
            recorder("w1", &journal),
        )
        .expect("scheduler");
        let metrics = scheduler.metrics().clone();
        let handle = scheduler.shutdown_handle();
        let run = tokio::spawn(scheduler.run());
        apps.push((journal, metrics, handle, run));
    }
    let expected: BTreeSet<String> = records.iter().map(|r| r.1.clone()).collect();
    for (i, (journal, metrics, handle, run)) in apps.into_iter().enumerate() {
        wait_until(
            &format!("application {i} read the backlog"),
            Duration::from_secs(120),
            || journal.distinct_data().len() >= expected.len(),
        )
        .await;
        assert_eq!(journal.distinct_data(), expected, "application {i}");
        handle.request();
        run.await.expect("join").expect("scheduler run");
        let calls = metrics
            .get_records_calls
            .with_label_values(&["shardId-000000000000"])
            .get();
        assert!(calls > 0, "application {i} read with its own calls");
    }
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------
// A parent shard the stream no longer has
// ---------------------------------------------------------------------------

/// The lease of a parent the broker answers ResourceNotFound for (aged out after a
/// reshard, or the stream was recreated), whose child holds the records.
const GONE_PARENT: &str = "shardId-000000000099";

async fn leases_with_a_gone_parent(store: &dyn LeaseStore) {
    let parent = kinesis_kcl::lease::Lease::new(GONE_PARENT, ExtendedSequenceNumber::TrimHorizon);
    let child =
        kinesis_kcl::lease::Lease::new("shardId-000000000000", ExtendedSequenceNumber::TrimHorizon)
            .with_parent_shard_ids([GONE_PARENT]);
    assert!(
        store
            .create_if_absent(&parent)
            .await
            .expect("create parent")
    );
    assert!(store.create_if_absent(&child).await.expect("create child"));
}

/// Reads the child's records with `config`, and checks that the gone parent was
/// ended (processor told, `SHARD_END` stored) rather than retried for ever.
async fn children_of_a_gone_parent_are_consumed(stream: &str, config: Config) {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, stream, 1).await;
    let batch = records("child", 30);
    put_plain(&kinesis, stream, &batch).await;
    let expected: BTreeSet<String> = batch.into_iter().map(|r| r.1).collect();
    let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
    leases_with_a_gone_parent(store.as_ref()).await;

    let journal = Journal::default();
    let scheduler = Scheduler::new(
        config,
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    wait_until("the child's records", Duration::from_secs(30), || {
        journal.distinct_data().len() >= expected.len()
    })
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");

    assert_in_order_exactly_once(&journal, &expected);
    assert!(
        journal
            .entries()
            .iter()
            .any(|e| e.shard == GONE_PARENT && e.event == Event::ShardEnded),
        "the gone parent's processor is told its shard ended"
    );
    let parent = store
        .get(GONE_PARENT)
        .await
        .expect("get")
        .map(|l| l.checkpoint);
    // Cleanup may already have deleted the finished parent's lease.
    assert!(
        parent.as_ref().is_none_or(|c| c.is_shard_end()),
        "the gone parent is checkpointed at SHARD_END, not {parent:?}"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_treats_a_shard_not_found_as_its_end_so_children_start() {
    children_of_a_gone_parent_are_consumed(
        "gone-parent",
        test_config("gone-parent", "app", "w1", Duration::from_secs(10)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_treats_a_shard_not_found_as_its_end_so_children_start() {
    children_of_a_gone_parent_are_consumed(
        "gone-parent-efo",
        fan_out_config("gone-parent-efo", "w1"),
    )
    .await;
}

// ---------------------------------------------------------------------------
// A hostile aggregate
// ---------------------------------------------------------------------------

/// One aggregate of `len` bytes at most: a 500 KB partition key, then empty user
/// records that all name it (written byte by byte; 6 bytes each). Returns the
/// aggregate and its record count.
fn aggregate_naming_one_huge_key(len: usize) -> (Bytes, usize) {
    use kinesis_proto::aggregation::{FIXED_OVERHEAD, MAGIC};
    use md5::{Digest, Md5};
    const KEY_LEN: usize = 500_000;
    const RECORD: [u8; 6] = [0x1a, 0x04, 0x08, 0x00, 0x1a, 0x00];
    let mut message = vec![0x0a];
    let mut n = KEY_LEN;
    while n >= 0x80 {
        message.push(n as u8 | 0x80);
        n >>= 7;
    }
    message.push(n as u8);
    message.extend(std::iter::repeat_n(b'k', KEY_LEN));
    let count = (len - FIXED_OVERHEAD - message.len()) / RECORD.len();
    for _ in 0..count {
        message.extend_from_slice(&RECORD);
    }
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(&message);
    data.extend_from_slice(&Md5::digest(&message));
    (Bytes::from(data), count)
}

/// The peak resident set of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Reported {
    rejected: Vec<ExtendedSequenceNumber>,
    delivered: Vec<String>,
    checkpointed: Option<ExtendedSequenceNumber>,
}

/// Keeps what it was given and checkpoints after every batch.
struct Reporter(Arc<Mutex<Reported>>);

impl ShardRecordProcessor for Reporter {
    async fn initialize(&mut self, _input: InitializationInput) {}

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        {
            let mut r = self.0.lock();
            r.rejected.extend(
                input
                    .rejected_records
                    .iter()
                    .map(|x| x.extended_sequence_number()),
            );
            r.delivered.extend(
                input
                    .records
                    .iter()
                    .map(|x| String::from_utf8_lossy(&x.data).into_owned()),
            );
        }
        if cp.checkpoint().await.is_ok() {
            self.0.lock().checkpointed = Some(cp.last_checkpoint());
        }
    }

    async fn lease_lost(&mut self) {}

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        let _ = cp.checkpoint().await;
    }

    async fn shutdown_requested(&mut self, _cp: &RecordProcessorCheckpointer) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_naming_one_huge_key_80000_times_is_reported_in_bounded_memory() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "hostile", 1).await;
    // Data plus the outer partition key within PutRecord's 1 MiB.
    let (aggregate, count) = aggregate_naming_one_huge_key((1 << 20) - 16);
    assert!(count >= 80_000);
    let entries = vec![
        PutRecordsRequestEntry {
            data: Some(Blob(aggregate)),
            partition_key: Some("outer".into()),
            explicit_hash_key: None,
        },
        PutRecordsRequestEntry {
            data: Some(Blob(Bytes::from_static(b"after"))),
            partition_key: Some("outer".into()),
            explicit_hash_key: None,
        },
    ];
    put_entries(&kinesis, "hostile", entries).await;

    let rss_before = peak_rss_kib();
    let reported = Arc::new(Mutex::new(Reported::default()));
    let r = Arc::clone(&reported);
    let scheduler = Scheduler::new(
        test_config("hostile", "app", "w1", Duration::from_secs(10)),
        kinesis.clone(),
        Arc::new(InMemoryLeaseStore::new()),
        move |_: &str| Reporter(Arc::clone(&r)),
    )
    .expect("scheduler");
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    wait_until(
        "the record after the aggregate",
        Duration::from_secs(30),
        || reported.lock().delivered.iter().any(|d| d == "after"),
    )
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");
    let grown_mib = peak_rss_kib().saturating_sub(rss_before) / 1024;

    let r = std::mem::take(&mut *reported.lock());
    assert_eq!(r.rejected.len(), count, "every user record is reported");
    assert_eq!(r.delivered, ["after"]);
    assert!(
        r.checkpointed
            .as_ref()
            .is_some_and(|c| c > &r.rejected[count - 1]),
        "the processor checkpointed past the rejected records: {:?}",
        r.checkpointed
    );
    eprintln!("{count} rejected user records; peak RSS grew {grown_mib} MiB");
    // Copying the key per user record would take 40 GB.
    assert!(grown_mib < 256, "peak RSS grew {grown_mib} MiB");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_stream_reports_undeliverable_records_and_reads_on() {
    use futures::StreamExt;
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "hostile-stream", 1).await;
    let (aggregate, count) = aggregate_naming_one_huge_key(600_000);
    let entries = ["before", "", "after"]
        .into_iter()
        .map(|d| PutRecordsRequestEntry {
            data: Some(Blob(if d.is_empty() {
                aggregate.clone()
            } else {
                Bytes::from_static(d.as_bytes())
            })),
            partition_key: Some("outer".into()),
            explicit_hash_key: None,
        })
        .collect();
    put_entries(&kinesis, "hostile-stream", entries).await;

    let records = shard_records(
        kinesis.clone(),
        StreamRef::name("hostile-stream"),
        "shardId-000000000000",
        StartingPosition::TrimHorizon,
        PollingConfig::default(),
    )
    .expect("valid polling config");
    futures::pin_mut!(records);
    let mut delivered = Vec::new();
    let mut rejected = Vec::new();
    while delivered.len() < 2 {
        let item = tokio::time::timeout(Duration::from_secs(10), records.next())
            .await
            .expect("the next item within 10 s")
            .expect("the shard is open");
        match item {
            Ok(r) => delivered.push(String::from_utf8_lossy(&r.record.data).into_owned()),
            Err(Error::RecordRejected(r)) => {
                assert!(delivered.len() == 1, "rejected records come in shard order");
                rejected.push(r.sub_sequence_number);
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(delivered, ["before", "after"]);
    assert_eq!(rejected, (0..count as u64).collect::<Vec<_>>());
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------
// KCL 3.x coordination: graceful hand-off
// ---------------------------------------------------------------------------

/// A [`Recorder`] that checkpoints only every third batch (and, as every processor
/// should, in `shutdown_requested`), so that a lease moved without a hand-off would
/// show up as records processed twice (as it does with `Coordination::Kcl2`).
struct SparseRecorder {
    inner: Recorder,
    batches: usize,
}

impl ShardRecordProcessor for SparseRecorder {
    async fn initialize(&mut self, input: InitializationInput) {
        self.inner.initialize(input).await;
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        for r in &input.records {
            self.inner.log(Event::Record(
                r.extended_sequence_number(),
                String::from_utf8_lossy(&r.data).into_owned(),
            ));
        }
        self.batches += 1;
        if self.batches.is_multiple_of(3) {
            self.inner.checkpoint(cp).await;
        }
    }

    async fn lease_lost(&mut self) {
        self.inner.lease_lost().await;
    }

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        self.inner.shard_ended(cp).await;
    }

    async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
        self.inner.shutdown_requested(cp).await;
    }
}

fn sparse_recorder(
    worker: &str,
    journal: &Journal,
) -> impl Fn(&str) -> SparseRecorder + Send + Sync + 'static {
    let make = recorder(worker, journal);
    move |shard: &str| SparseRecorder {
        inner: make(shard),
        batches: 0,
    }
}

/// Leases `worker` holds outright: its own, with no hand-off pending.
async fn held_outright(store: &dyn LeaseStore, worker: &str) -> usize {
    store
        .list()
        .await
        .expect("list leases")
        .iter()
        .filter(|l| l.lease_owner.as_deref() == Some(worker) && l.checkpoint_owner.is_none())
        .count()
}

/// Every position delivered more than once, per shard, with how often.
fn repeated_positions(journal: &Journal) -> Vec<(String, ExtendedSequenceNumber, usize)> {
    let mut deliveries: BTreeMap<(String, ExtendedSequenceNumber), usize> = BTreeMap::new();
    for e in journal.entries() {
        if let Event::Record(pos, _) = e.event {
            *deliveries.entry((e.shard, pos)).or_default() += 1;
        }
    }
    deliveries
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((shard, pos), n)| (shard, pos, n))
        .collect()
}

/// A second worker joins a busy one and gets half the leases by graceful hand-off;
/// then the first shuts down and hands the rest over. Records flow all along, the
/// processors checkpoint only every third batch, and yet no record is processed twice.
/// The worker named by the leader lock in the coordinator-state table, if any.
async fn leader_of(store: &dyn LeaseStore) -> Option<String> {
    let coordinator = store
        .coordinator_store()
        .expect("the store keeps the coordinator-state table");
    coordinator
        .get_lock(kinesis_kcl::leader_lock::LEADER_KEY)
        .await
        .expect("read the leader lock")
        .filter(|lock| !lock.released)
        .map(|lock| lock.owner_name)
}

/// The workers with an item in the worker-metrics table.
async fn reporting_workers(store: &dyn LeaseStore) -> Vec<String> {
    let coordinator = store
        .coordinator_store()
        .expect("the store keeps the worker-metrics table");
    let mut workers: Vec<String> = coordinator
        .list_worker_metrics()
        .await
        .expect("list worker metrics")
        .into_iter()
        .map(|m| m.worker_id)
        .collect();
    workers.sort();
    workers
}

async fn handoffs_process_no_record_twice(store: Arc<dyn LeaseStore>, label: &str) {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "handoff", 4).await;
    let journal = Journal::default();
    let config = |worker: &str| {
        Config::builder("handoff", "handoff-app")
            .worker_identifier(worker)
            .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
            .failover_time(Duration::from_secs(3))
            .leader_lock(Duration::from_secs(10), Duration::from_millis(500))
            .worker_metrics_reporter_interval(Duration::from_secs(1))
            .lease_taker_interval(Duration::from_millis(200))
            .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
            .idle_time_between_reads(Duration::from_millis(200))
            .build()
            .expect("valid config")
    };

    // A producer writing a burst every 50 ms until told to stop.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let producing = {
        let kinesis = kinesis.clone();
        tokio::spawn(async move {
            let mut produced = Vec::new();
            for burst in 0..2_000 {
                let batch = records(&format!("h{burst:04}"), 10);
                put_plain(&kinesis, "handoff", &batch).await;
                produced.extend(batch.into_iter().map(|(_, d)| d));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
            }
            produced
        })
    };

    let w1 = Scheduler::new(
        config("w1"),
        kinesis.clone(),
        Arc::clone(&store),
        sparse_recorder("w1", &journal),
    )
    .expect("scheduler");
    let w1_handle = w1.shutdown_handle();
    let w1_run = tokio::spawn(w1.run());
    wait_until_async(
        "w1 to hold all 4 leases",
        Duration::from_secs(20),
        || async { held_outright(store.as_ref(), "w1").await == 4 },
    )
    .await;
    wait_until("w1 to process records", Duration::from_secs(20), || {
        !journal.distinct_data().is_empty()
    })
    .await;

    let w2 = Scheduler::new(
        config("w2"),
        kinesis.clone(),
        Arc::clone(&store),
        sparse_recorder("w2", &journal),
    )
    .expect("scheduler");
    let w2_handle = w2.shutdown_handle();
    let joined = Instant::now();
    let w2_run = tokio::spawn(w2.run());
    wait_until_async(
        "w2 to hold half the leases",
        Duration::from_secs(30),
        || async {
            held_outright(store.as_ref(), "w2").await == 2
                && held_outright(store.as_ref(), "w1").await == 2
        },
    )
    .await;
    let balanced = joined.elapsed();
    // The moves were the leader's (w1, which started first, unless a stall let its lock
    // expire), which saw w2 holding no lease yet through w2's worker-metrics item.
    let leader = leader_of(store.as_ref()).await;
    assert!(matches!(leader.as_deref(), Some("w1" | "w2")), "{leader:?}");
    assert_eq!(reporting_workers(store.as_ref()).await, ["w1", "w2"]);
    wait_until("w2 to process records", Duration::from_secs(20), || {
        journal
            .entries()
            .iter()
            .any(|e| e.worker == "w2" && matches!(e.event, Event::Record(..)))
    })
    .await;

    let leaving = Instant::now();
    w1_handle.graceful_shutdown().await;
    w1_run.await.expect("join").expect("w1 run");
    wait_until_async(
        "w2 to hold every lease",
        Duration::from_secs(20),
        || async { held_outright(store.as_ref(), "w2").await == 4 },
    )
    .await;
    let taken_over = leaving.elapsed();
    // w1 gave the leader lock up when it left: w2 leads now.
    wait_until_async(
        "w2 to become the leader",
        Duration::from_secs(20),
        || async { leader_of(store.as_ref()).await.as_deref() == Some("w2") },
    )
    .await;
    // Renewals carry each lease's measured rate, as the KCL 3.x's do.
    wait_until_async(
        "every lease to report its throughput",
        Duration::from_secs(20),
        || async {
            store
                .list()
                .await
                .expect("list leases")
                .iter()
                .all(|l| l.throughput_kbps.is_some_and(|kbps| kbps > 0.0))
        },
    )
    .await;

    stop.send_replace(true);
    let produced: BTreeSet<String> = producing.await.expect("producer").into_iter().collect();
    wait_until(
        "every record to be processed",
        Duration::from_secs(30),
        || journal.distinct_data().len() >= produced.len(),
    )
    .await;
    w2_handle.graceful_shutdown().await;
    w2_run.await.expect("join").expect("w2 run");
    eprintln!(
        "{label}: {} records; w2 held half the leases {balanced:?} after joining; \
         all of them {taken_over:?} after w1 began shutting down",
        produced.len()
    );

    assert_eq!(journal.distinct_data(), produced, "every record processed");
    assert_eq!(
        repeated_positions(&journal),
        [],
        "no record processed twice across the hand-offs"
    );
    // Every session began at the checkpoint made last on its shard, by whichever worker
    // (the leader may also move a lease back to itself, and a lease passed on to w1 but
    // not yet claimed when it left goes back to w2).
    let entries = journal.entries();
    let mut w2_shards = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        if let Event::Init { checkpoint, .. } = &e.event {
            let last_before = entries[..i]
                .iter()
                .filter(|x| x.shard == e.shard)
                .filter_map(|x| match &x.event {
                    Event::Checkpointed(c) => Some(c.clone()),
                    _ => None,
                })
                .max();
            if let Some(last) = last_before {
                assert_eq!(
                    checkpoint, &last,
                    "{}: {} starts at the last checkpoint",
                    e.shard, e.worker
                );
            }
            if e.worker == "w2" {
                w2_shards.insert(e.shard.clone());
            }
        }
    }
    assert_eq!(w2_shards.len(), 4, "w2 processed every shard");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_and_a_leaving_worker_hand_leases_off_with_no_record_processed_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteLeaseStore::open(dir.path().join("leases.db"), "handoff-app")
        .await
        .expect("lease db");
    handoffs_process_no_record_twice(Arc::new(store), "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_a_joining_and_a_leaving_worker_hand_leases_off_with_no_record_processed_twice()
{
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let store = dynamodb_store(&dynalite.endpoint, "handoff-app").await;
    handoffs_process_no_record_twice(Arc::new(store), "DynamoDB").await;
}

/// The leader crashes without giving its lock up: the other worker becomes leader once
/// it has seen the lock unchanged for the lock's lease duration, and meanwhile takes the
/// dead worker's leases after the failover time as always.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_dies_another_worker_takes_the_lock_over() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "leader", 4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn LeaseStore> = Arc::new(
        SqliteLeaseStore::open(dir.path().join("leases.db"), "leader-app")
            .await
            .expect("lease db"),
    );
    let journal = Journal::default();
    let config = |worker: &str| {
        Config::builder("leader", "leader-app")
            .worker_identifier(worker)
            .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
            .failover_time(Duration::from_secs(2))
            .lease_taker_interval(Duration::from_millis(200))
            .leader_lock(Duration::from_secs(2), Duration::from_millis(300))
            .worker_metrics_reporter_interval(Duration::from_secs(1))
            .build()
            .expect("valid config")
    };
    let w1 = Scheduler::new(
        config("w1"),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let w1_run = tokio::spawn(w1.run());
    wait_until_async("w1 to lead", Duration::from_secs(20), || async {
        leader_of(store.as_ref()).await.as_deref() == Some("w1")
    })
    .await;
    let w2 = Scheduler::new(
        config("w2"),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w2", &journal),
    )
    .expect("scheduler");
    let w2_handle = w2.shutdown_handle();
    let w2_run = tokio::spawn(w2.run());
    wait_until_async(
        "the leader to give w2 half the leases",
        Duration::from_secs(30),
        || async { held_outright(store.as_ref(), "w2").await == 2 },
    )
    .await;
    assert_eq!(leader_of(store.as_ref()).await.as_deref(), Some("w1"));

    // A crash: the scheduler and its background tasks stop without any cleanup.
    w1_run.abort();
    assert!(w1_run.await.expect_err("aborted").is_cancelled());
    let crashed = Instant::now();
    wait_until_async(
        "w2 to take the lock over",
        Duration::from_secs(30),
        || async { leader_of(store.as_ref()).await.as_deref() == Some("w2") },
    )
    .await;
    let took_lock = crashed.elapsed();
    wait_until_async(
        "w2 to hold every lease",
        Duration::from_secs(30),
        || async { held_outright(store.as_ref(), "w2").await == 4 },
    )
    .await;
    eprintln!(
        "w2 led {took_lock:?} and held every lease {:?} after the leader crashed \
         (lock lease duration 2 s, failover 2 s)",
        crashed.elapsed()
    );
    w2_handle.graceful_shutdown().await;
    w2_run.await.expect("join").expect("w2 run");
    // A worker leaving gracefully gives the lock up.
    assert_eq!(leader_of(store.as_ref()).await, None);
    broker.shutdown().await;
}

// ---------------------------------------------------------------------------
// KCL 3.x coordination: balancing load, not lease counts
// ---------------------------------------------------------------------------

/// 8 shards, shard 0 carrying ten times the traffic of each other shard, and 2
/// workers: once the leases report their throughput, the worker holding the hot shard
/// ends up holding fewer leases than the other, every record is processed, and no
/// record is processed twice on the way.
async fn hot_shard_holder_holds_fewer_leases(store: Arc<dyn LeaseStore>, label: &str) {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "hot", 8).await;
    let mut shards = open_shards(&kinesis, "hot").await;
    shards.sort_by_key(|s| range_of(s).start);
    let hot_shard = shards[0].shard_id.clone();
    let hash_keys: Vec<u128> = shards.iter().map(|s| range_of(s).start).collect();
    let journal = Journal::default();
    let config = |worker: &str| {
        Config::builder("hot", "hot-app")
            .worker_identifier(worker)
            .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
            .failover_time(Duration::from_secs(3))
            .leader_lock(Duration::from_secs(10), Duration::from_millis(500))
            .worker_metrics_reporter_interval(Duration::from_secs(1))
            .lease_taker_interval(Duration::from_millis(200))
            .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
            .idle_time_between_reads(Duration::from_millis(200))
            .build()
            .expect("valid config")
    };

    // Every 50 ms: ten 500-byte records to the hot shard, one to each other shard.
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let producing = {
        let kinesis = kinesis.clone();
        tokio::spawn(async move {
            let mut produced = Vec::new();
            for tick in 0..4_000 {
                let mut entries = Vec::new();
                for (i, key) in hash_keys.iter().enumerate() {
                    for n in 0..(if i == 0 { 10 } else { 1 }) {
                        let data = format!("{tick:05}-{i}-{n}-{}", "x".repeat(480));
                        produced.push(data.clone());
                        entries.push(PutRecordsRequestEntry {
                            data: Some(Blob(Bytes::from(data))),
                            partition_key: Some("pk".into()),
                            explicit_hash_key: Some(key.to_string()),
                        });
                    }
                }
                put_entries(&kinesis, "hot", entries).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
            }
            produced
        })
    };

    let w1 = Scheduler::new(
        config("w1"),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let w1_handle = w1.shutdown_handle();
    let w1_run = tokio::spawn(w1.run());
    wait_until_async(
        "w1 to hold every lease and measure each one's throughput",
        Duration::from_secs(30),
        || async {
            let leases = store.list().await.expect("list leases");
            leases.len() == 8
                && leases.iter().all(|l| {
                    l.lease_owner.as_deref() == Some("w1")
                        && l.throughput_kbps.is_some_and(|kbps| kbps > 0.0)
                })
        },
    )
    .await;

    let w2 = Scheduler::new(
        config("w2"),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w2", &journal),
    )
    .expect("scheduler");
    let w2_handle = w2.shutdown_handle();
    let joined = Instant::now();
    let w2_run = tokio::spawn(w2.run());
    let split = || async {
        let leases = store.list().await.expect("list leases");
        let hot_holder = leases
            .iter()
            .find(|l| l.lease_key == hot_shard)
            .and_then(|l| l.lease_owner.clone())
            .unwrap_or_default();
        let pending = leases.iter().any(|l| l.checkpoint_owner.is_some());
        let held = |w: &str| {
            leases
                .iter()
                .filter(|l| l.lease_owner.as_deref() == Some(w))
                .count()
        };
        (hot_holder, held("w1"), held("w2"), pending)
    };
    // Converged: the hot shard's holder holds fewer leases, and nothing has moved for
    // ten taker runs.
    let mut last = split().await;
    let mut last_change = Instant::now();
    let mut moves = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = split().await;
        if now != last {
            moves += 1;
            last_change = Instant::now();
            last = now;
        }
        let (hot, w1, w2, pending) = &last;
        let (mine, other) = if hot == "w1" { (w1, w2) } else { (w2, w1) };
        if !pending
            && w1 + w2 == 8
            && mine < other
            && last_change.elapsed() >= Duration::from_secs(2)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the hot shard's holder to hold fewer leases, stably: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let converged = last_change.duration_since(joined);
    let leader = leader_of(store.as_ref()).await;
    assert!(
        matches!(leader.as_deref(), Some("w1" | "w2")),
        "a leader moved them: {leader:?}"
    );
    assert_eq!(reporting_workers(store.as_ref()).await, ["w1", "w2"]);
    let (hot_holder, w1_leases, w2_leases, _) = split().await;
    eprintln!(
        "{label}: load-based balancing settled {converged:?} after the second worker joined \
         ({moves} observed changes): {hot_holder} holds the hot shard; \
         w1 {w1_leases} leases, w2 {w2_leases} leases"
    );

    stop.send_replace(true);
    let produced: BTreeSet<String> = producing.await.expect("producer").into_iter().collect();
    wait_until(
        "every record to be processed",
        Duration::from_secs(30),
        || journal.distinct_data().len() >= produced.len(),
    )
    .await;
    w1_handle.graceful_shutdown().await;
    w2_handle.graceful_shutdown().await;
    w1_run.await.expect("join").expect("w1 run");
    w2_run.await.expect("join").expect("w2 run");
    assert_eq!(journal.distinct_data(), produced, "every record processed");
    assert_eq!(
        repeated_positions(&journal),
        [],
        "moves by hand-off process no record twice"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_holding_a_hot_shard_holds_fewer_leases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteLeaseStore::open(dir.path().join("leases.db"), "hot-app")
        .await
        .expect("lease db");
    hot_shard_holder_holds_fewer_leases(Arc::new(store), "SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_the_worker_holding_a_hot_shard_holds_fewer_leases() {
    let dynalite = tokio::task::spawn_blocking(common::peers::Dynalite::start)
        .await
        .expect("dynalite");
    let store = dynamodb_store(&dynalite.endpoint, "hot-app").await;
    hot_shard_holder_holds_fewer_leases(Arc::new(store), "DynamoDB").await;
}

// ---------------------------------------------------------------------------
// KCL 3.x coordination: one scheduler over several streams
// ---------------------------------------------------------------------------

/// One scheduler consumes three streams; a fourth is added to its list while it runs,
/// and one is dropped from the list and deleted. Every record of every stream is
/// processed, the leases are keyed `account:stream:creationEpoch:shardId`, and the
/// dropped stream's leases are removed after the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scheduler_consumes_streams_added_and_removed_while_it_runs() {
    use kinesis_kcl::multi_stream::MultiStreamTracker;
    use kinesis_kcl::stream_identifier::StreamIdentifier;
    use kinesis_proto::model::DeleteStreamInput;

    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    for name in ["ms-1", "ms-2", "ms-3"] {
        create_stream(&kinesis, name, 2).await;
    }
    let listed = Arc::new(Mutex::new(vec![
        "ms-1".to_string(),
        "ms-2".to_string(),
        "ms-3".to_string(),
    ]));
    let tracker = {
        let listed = Arc::clone(&listed);
        MultiStreamTracker::callback(move || listed.lock().clone())
            .refresh_interval(Duration::from_millis(200))
            .delete_former_streams_after(Duration::from_secs(1))
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn LeaseStore> = Arc::new(
        SqliteLeaseStore::open(dir.path().join("leases.db"), "multi-app")
            .await
            .expect("lease db"),
    );
    let journal = Journal::default();
    let scheduler = Scheduler::new_multi_stream(
        test_config("unused", "multi-app", "w1", Duration::from_secs(3)),
        kinesis.clone(),
        Arc::clone(&store),
        tracker,
        recorder("w1", &journal),
    )
    .expect("scheduler");
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());

    let mut expected = BTreeSet::new();
    async fn put(kinesis: &Client, expected: &mut BTreeSet<String>, name: &str, wave: &str) {
        let batch = records(&format!("{name}-{wave}"), 40);
        expected.extend(batch.iter().map(|(_, d)| d.clone()));
        put_plain(kinesis, name, &batch).await;
    }
    for name in ["ms-1", "ms-2", "ms-3"] {
        put(&kinesis, &mut expected, name, "a").await;
    }
    let everything = |expected: &BTreeSet<String>| {
        let expected = expected.clone();
        let journal = journal.clone();
        move || journal.distinct_data().is_superset(&expected)
    };
    wait_until(
        "the three streams' records",
        Duration::from_secs(30),
        everything(&expected),
    )
    .await;

    // A fourth stream joins the list.
    create_stream(&kinesis, "ms-4", 2).await;
    listed.lock().push("ms-4".to_string());
    for name in ["ms-1", "ms-2", "ms-3", "ms-4"] {
        put(&kinesis, &mut expected, name, "b").await;
    }
    wait_until(
        "the four streams' records",
        Duration::from_secs(30),
        everything(&expected),
    )
    .await;

    // ms-2 leaves the list and is deleted: its leases go after the grace period.
    let leases = store.list().await.expect("list leases");
    let ms2: StreamIdentifier = leases
        .iter()
        .filter_map(|l| StreamIdentifier::split_lease_key(&l.lease_key).map(|(s, _)| s))
        .find(|s| s.stream_name == "ms-2")
        .expect("ms-2 has leases");
    listed.lock().retain(|n| n != "ms-2");
    kinesis
        .delete_stream(&DeleteStreamInput {
            stream: StreamRef::name("ms-2"),
            enforce_consumer_deletion: None,
        })
        .await
        .expect("delete ms-2");
    wait_until_async(
        "ms-2's leases to be removed",
        Duration::from_secs(20),
        || async {
            !store
                .list()
                .await
                .expect("list leases")
                .iter()
                .any(|l| l.lease_key.starts_with(&ms2.lease_key_prefix()))
        },
    )
    .await;
    for name in ["ms-1", "ms-3", "ms-4"] {
        put(&kinesis, &mut expected, name, "c").await;
    }
    wait_until(
        "the remaining streams' records",
        Duration::from_secs(30),
        everything(&expected),
    )
    .await;
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("run");

    assert_eq!(journal.distinct_data(), expected, "every record processed");
    let leases = store.list().await.expect("list leases");
    let streams: BTreeSet<String> = leases
        .iter()
        .map(|l| {
            let (stream, shard) =
                StreamIdentifier::split_lease_key(&l.lease_key).expect("a multi-stream key");
            let ids = l.multi_stream.as_ref().expect("streamName and shardId");
            assert_eq!(ids.stream_identifier, stream.to_string());
            assert_eq!(ids.shard_id, shard);
            stream.stream_name
        })
        .collect();
    assert_eq!(
        streams,
        BTreeSet::from(["ms-1".into(), "ms-3".into(), "ms-4".into()]),
        "the dropped stream's leases are gone, the others' kept"
    );
    // Processors were told their shard within the stream, named by the lease key.
    assert!(
        journal
            .entries()
            .iter()
            .all(|e| StreamIdentifier::split_lease_key(&e.shard).is_some())
    );
    broker.shutdown().await;
}

/// A processor that does not return from `shutdown_requested` until the test opens
/// its gate: a hand-off of its lease can only finish by timing out.
struct Stuck {
    inner: Recorder,
    gate: tokio::sync::watch::Receiver<bool>,
}

impl ShardRecordProcessor for Stuck {
    async fn initialize(&mut self, input: InitializationInput) {
        self.inner.initialize(input).await;
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        self.inner.process_records(input, cp).await;
    }

    async fn lease_lost(&mut self) {
        self.inner.lease_lost().await;
    }

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        self.inner.shard_ended(cp).await;
    }

    async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
        self.inner.log(Event::ShutdownRequested);
        let _ = self.gate.wait_for(|open| *open).await;
        self.inner.checkpoint(cp).await;
    }
}

/// A hand-off whose owner never finishes falls back after the timeout: the lease
/// reaches the worker that asked for it anyway, and every record is still processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_that_times_out_falls_back_to_moving_the_lease() {
    let broker = common::start_broker().await;
    let kinesis = client(&broker.endpoint());
    create_stream(&kinesis, "stuck", 2).await;
    put_plain(&kinesis, "stuck", &records("s", 40)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn LeaseStore> = Arc::new(
        SqliteLeaseStore::open(dir.path().join("leases.db"), "stuck-app")
            .await
            .expect("lease db"),
    );
    let journal = Journal::default();
    // w1 renews (and so learns of the hand-off) about every second; the hand-off
    // times out after two.
    let timeout = Duration::from_secs(2);
    let config = |worker: &str| {
        Config::builder("stuck", "stuck-app")
            .worker_identifier(worker)
            .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
            .failover_time(Duration::from_secs(3))
            .graceful_lease_handoff_timeout(timeout)
            .lease_taker_interval(Duration::from_millis(200))
            .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
            .idle_time_between_reads(Duration::from_millis(200))
            .build()
            .expect("valid config")
    };
    let (open_gate, gate) = tokio::sync::watch::channel(false);
    let w1 = {
        let make = recorder("w1", &journal);
        Scheduler::new(
            config("w1"),
            kinesis.clone(),
            Arc::clone(&store),
            move |shard: &str| Stuck {
                inner: make(shard),
                gate: gate.clone(),
            },
        )
        .expect("scheduler")
    };
    let w1_handle = w1.shutdown_handle();
    let w1_run = tokio::spawn(w1.run());
    wait_until("w1 to process the records", Duration::from_secs(20), || {
        journal.distinct_data().len() >= 40
    })
    .await;

    let w2 = Scheduler::new(
        config("w2"),
        kinesis.clone(),
        Arc::clone(&store),
        recorder("w2", &journal),
    )
    .expect("scheduler");
    let w2_handle = w2.shutdown_handle();
    let w2_run = tokio::spawn(w2.run());
    // w1 stays alive and renewing, so its lease never expires: only the hand-off's
    // timeout can move it.
    let asked = Instant::now();
    wait_until_async(
        "the stuck hand-off to move the lease to w2",
        Duration::from_secs(20),
        || async { held_outright(store.as_ref(), "w2").await == 1 },
    )
    .await;
    let moved = asked.elapsed();
    assert!(
        journal
            .entries()
            .iter()
            .any(|e| e.worker == "w1" && e.event == Event::ShutdownRequested),
        "w1's processor was asked to finish and did not: {:?}",
        journal
            .entries()
            .iter()
            .filter(|e| !matches!(e.event, Event::Record(..) | Event::Checkpointed(..)))
            .collect::<Vec<_>>()
    );
    eprintln!("a hand-off stuck in shutdown_requested moved after {moved:?} (timeout {timeout:?})");

    put_plain(&kinesis, "stuck", &records("t", 40)).await;
    wait_until(
        "every record to be processed",
        Duration::from_secs(20),
        || journal.distinct_data().len() >= 80,
    )
    .await;
    open_gate.send_replace(true);
    w1_handle.graceful_shutdown().await;
    w2_handle.graceful_shutdown().await;
    w1_run.await.expect("join").expect("w1 run");
    w2_run.await.expect("join").expect("w2 run");
    let all: BTreeSet<String> = records("s", 40)
        .into_iter()
        .chain(records("t", 40))
        .map(|(_, d)| d)
        .collect();
    assert_eq!(journal.distinct_data(), all);
    broker.shutdown().await;
}
