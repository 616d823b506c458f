//! The chaos run: kpl producing, three kcl workers consuming, while the broker
//! (a separate process on a data dir) is killed with SIGKILL and restarted every
//! few seconds and a fault plan resets connections and answers 500s and throttles.
//!
//! Checked: every record whose put resolved Ok is processed at least once; per
//! partition key, first deliveries come in put order; a record is processed at
//! two positions only if its put may have stored it twice, and never twice at one
//! position by one processor; consumption resumes within 10 s of each restart.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::{Config, InitialPositionInStream};
use kinesis_kcl::extended_sequence::ExtendedSequenceNumber;
use kinesis_kcl::lease_store::{InMemoryLeaseStore, LeaseStore};
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::model::{CreateStreamInput, DescribeStreamSummaryInput, StreamRef};
use parking_lot::Mutex;

const STREAM: &str = "chaos";
const KEYS: usize = 24;
const RESTARTS: usize = 8;
const BETWEEN_KILLS: Duration = Duration::from_secs(4);

/// Faults on the data plane (and resets anywhere): enough to exercise every
/// retry path without starving progress.
const FAULTS: &str = r#"{"seed": 13, "rules": [
    {"operation": "PutRecords", "error_rate": 0.05, "error": "InternalFailure"},
    {"operation": "PutRecords", "error_rate": 0.05, "error": "ProvisionedThroughputExceededException"},
    {"operation": "GetRecords", "error_rate": 0.05, "error": "InternalFailure"},
    {"operation": "GetRecords", "error_rate": 0.05, "error": "ProvisionedThroughputExceededException"},
    {"operation": "PutRecords", "reset_rate": 0.03},
    {"operation": "GetRecords", "reset_rate": 0.03}
]}"#;

/// The broker binary on a data dir, killed with SIGKILL when dropped.
struct BrokerProcess {
    _process: common::KillOnDrop,
}

impl BrokerProcess {
    /// Start it on `port` (0: any) and wait (bounded) until it listens; its port.
    async fn start(bin: &Path, port: u16, data: &Path, faults: &Path) -> (Self, u16) {
        let mut child = Command::new(bin)
            .args(["--port", &port.to_string(), "--create-delay-ms", "0"])
            .args(["--log-level", "error", "--fsync", "always"])
            .arg("--data-dir")
            .arg(data)
            .arg("--faults")
            .arg(faults)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("stdout");
        let guard = common::KillOnDrop(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("join")
            .expect("the broker prints its endpoint within 30 s");
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
        (BrokerProcess { _process: guard }, port)
    }

    fn kill(self) {
        // KillOnDrop sends SIGKILL and reaps the process.
        drop(self);
    }
}

/// What the processors saw, in order.
#[derive(Debug, Clone)]
enum Seen {
    /// A processor started on a shard (a new lifetime).
    Init { worker: String, shard: String },
    /// A user record was delivered.
    Record {
        worker: String,
        shard: String,
        position: ExtendedSequenceNumber,
        data: String,
        at: Instant,
    },
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn distinct(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .iter()
            .filter_map(|s| match s {
                Seen::Record { data, .. } => Some(data.clone()),
                Seen::Init { .. } => None,
            })
            .collect()
    }
}

/// Logs every record and checkpoints after every batch.
struct Processor {
    worker: String,
    shard: String,
    log: Log,
}

impl ShardRecordProcessor for Processor {
    async fn initialize(&mut self, _input: InitializationInput) {
        self.log.0.lock().push(Seen::Init {
            worker: self.worker.clone(),
            shard: self.shard.clone(),
        });
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        let at = Instant::now();
        {
            let mut log = self.log.0.lock();
            for r in &input.records {
                log.push(Seen::Record {
                    worker: self.worker.clone(),
                    shard: self.shard.clone(),
                    position: r.extended_sequence_number(),
                    data: String::from_utf8_lossy(&r.data).into_owned(),
                    at,
                });
            }
        }
        // A checkpoint refused while the lease moves is retried with the next batch.
        let _ = cp.checkpoint().await;
    }

    async fn lease_lost(&mut self) {}

    async fn shard_ended(&mut self, cp: &RecordProcessorCheckpointer) {
        let _ = cp.checkpoint().await;
    }

    async fn shutdown_requested(&mut self, cp: &RecordProcessorCheckpointer) {
        let _ = cp.checkpoint().await;
    }
}

fn client(endpoint: &str) -> Client {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint)
            .max_attempts(20)
            .backoff(Duration::from_millis(50), Duration::from_millis(500))
            .build(),
    )
    .expect("client")
}

fn worker_config(worker: &str) -> Config {
    Config::builder(STREAM, "chaos-app")
        .worker_identifier(worker)
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .failover_time(Duration::from_secs(3))
        .lease_taker_interval(Duration::from_millis(300))
        .parent_shard_poll_interval(Duration::from_millis(200))
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(100))
        .shard_sync_interval(Duration::from_secs(2))
        .idle_time_between_reads(Duration::from_millis(200))
        .build()
        .expect("config")
}

/// A record's payload: its key and its index among that key's puts.
fn payload(key: usize, n: usize) -> String {
    format!("k{key:02}:{n:06}")
}

fn parse_payload(data: &str) -> Option<(usize, usize)> {
    let (k, n) = data.strip_prefix('k')?.split_once(':')?;
    Some((k.parse().ok()?, n.parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_and_three_kcl_workers_survive_broker_kills_and_faults() {
    let bin = tokio::task::spawn_blocking(common::broker_binary)
        .await
        .expect("join");
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let faults = dir.path().join("faults.json");
    std::fs::write(&faults, FAULTS).expect("write the fault plan");
    let (mut broker, port) = BrokerProcess::start(&bin, 0, &data_dir, &faults).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let kinesis = client(&endpoint);
    kinesis
        .create_stream(&CreateStreamInput {
            stream_name: Some(STREAM.into()),
            shard_count: Some(4),
            ..Default::default()
        })
        .await
        .expect("create stream");
    for _ in 0..200 {
        let status = kinesis
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: StreamRef::name(STREAM),
            })
            .await
            .map(|s| s.stream_description_summary.stream_status);
        if status.as_ref().ok().map(|s| s.as_str()) == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Three workers sharing one lease table.
    let log = Log::default();
    let store: Arc<dyn LeaseStore> = Arc::new(InMemoryLeaseStore::new());
    let mut workers = Vec::new();
    for w in ["w1", "w2", "w3"] {
        let log = log.clone();
        let worker = w.to_string();
        let scheduler = Scheduler::new(
            worker_config(w),
            client(&endpoint),
            Arc::clone(&store),
            move |shard: &str| Processor {
                worker: worker.clone(),
                shard: shard.to_string(),
                log: log.clone(),
            },
        )
        .expect("scheduler");
        let handle = scheduler.shutdown_handle();
        workers.push((handle, tokio::spawn(scheduler.run())));
    }

    // The producer puts all along, key by key in order.
    let producer = Arc::new(
        kinesis_kpl::Producer::new(
            kinesis_kpl::Config::builder()
                .endpoint(&endpoint)
                .seed(13)
                .ordering(kinesis_kpl::Ordering::PerPartitionKey)
                .record_max_buffered_time(Duration::from_millis(50))
                .record_ttl(Duration::from_secs(60))
                .build(),
        )
        .expect("producer"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let putting = {
        let producer = Arc::clone(&producer);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let stream: Arc<str> = STREAM.into();
            let mut handles = Vec::new();
            let mut i = 0usize;
            // Bounded: at most ~5 minutes' worth even if never told to stop.
            while !stop.load(Ordering::Relaxed) && i < 60_000 {
                let (key, n) = (i % KEYS, i / KEYS);
                let record = kinesis_kpl::Record::new(
                    Arc::clone(&stream),
                    format!("key-{key}"),
                    payload(key, n),
                );
                handles.push((payload(key, n), producer.put(record).await.expect("put")));
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            handles
        })
    };

    // Kill and restart the broker every few seconds.
    let mut restarts = Vec::new();
    for _ in 0..RESTARTS {
        tokio::time::sleep(BETWEEN_KILLS).await;
        broker.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (restarted, _) = BrokerProcess::start(&bin, port, &data_dir, &faults).await;
        broker = restarted;
        restarts.push(Instant::now());
    }
    tokio::time::sleep(BETWEEN_KILLS).await;
    stop.store(true, Ordering::Relaxed);
    let handles = putting.await.expect("join the producer");
    let mut ok: BTreeMap<String, kinesis_kpl::PutResult> = BTreeMap::new();
    let mut failed = 0usize;
    for (data, handle) in handles {
        match tokio::time::timeout(Duration::from_secs(90), handle)
            .await
            .expect("every put resolves")
        {
            Ok(result) => {
                ok.insert(data, result);
            }
            Err(_) => failed += 1,
        }
    }
    assert!(!ok.is_empty(), "nothing was put");
    eprintln!("chaos: puts resolved after {:?}", started.elapsed());

    // Every record whose put resolved Ok is processed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = log.distinct();
        let missing = ok.keys().filter(|d| !seen.contains(*d)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} acknowledged records never processed",
            ok.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (handle, _) in &workers {
        handle.request();
    }
    for (_, run) in workers {
        tokio::time::timeout(Duration::from_secs(30), run)
            .await
            .expect("workers stop")
            .expect("join")
            .expect("run");
    }
    let seen = log.0.lock().clone();
    eprintln!(
        "chaos: all processed, workers stopped after {:?}",
        started.elapsed()
    );

    // Per key, the first delivery of each acknowledged record comes in put order.
    let mut first: BTreeSet<&str> = BTreeSet::new();
    let mut last_n: HashMap<usize, usize> = HashMap::new();
    for s in &seen {
        let Seen::Record { data, .. } = s else {
            continue;
        };
        if !ok.contains_key(data) || !first.insert(data) {
            continue;
        }
        let (key, n) = parse_payload(data).expect("a payload of ours");
        if let Some(&prev) = last_n.get(&key) {
            assert!(
                prev < n,
                "key {key}: record {n} processed first after {prev}"
            );
        }
        last_n.insert(key, n);
    }

    // Duplicates only where expected: one processor lifetime never sees one
    // position twice, and a record at two positions was put possibly twice.
    let mut lifetime: HashMap<(String, String), BTreeSet<ExtendedSequenceNumber>> = HashMap::new();
    let mut positions: BTreeMap<&str, BTreeSet<&ExtendedSequenceNumber>> = BTreeMap::new();
    let mut replays = 0usize;
    for s in &seen {
        match s {
            Seen::Init { worker, shard } => {
                lifetime.insert((worker.clone(), shard.clone()), BTreeSet::new());
            }
            Seen::Record {
                worker,
                shard,
                position,
                data,
                ..
            } => {
                let mine = lifetime.entry((worker.clone(), shard.clone())).or_default();
                assert!(
                    mine.insert(position.clone()),
                    "{worker} delivered {shard} {position} twice in one lifetime"
                );
                if !positions.entry(data).or_default().insert(position) {
                    replays += 1;
                }
            }
        }
    }
    let mut stream_duplicates = 0usize;
    for (data, at) in &positions {
        if at.len() > 1 {
            stream_duplicates += 1;
            if let Some(result) = ok.get(*data) {
                assert!(
                    result.possible_duplicate(),
                    "{data} is stored at {at:?}, but no attempt of its put may have stored it"
                );
            }
        }
    }

    // Consumption resumes within 10 s of each restart.
    let mut seen_before: BTreeSet<&str> = BTreeSet::new();
    let mut first_at: Vec<(Instant, &str)> = Vec::new();
    for s in &seen {
        if let Seen::Record { data, at, .. } = s
            && seen_before.insert(data)
        {
            first_at.push((*at, data));
        }
    }
    for (i, restart) in restarts.iter().enumerate() {
        let resumed = first_at
            .iter()
            .map(|(at, _)| *at)
            .filter(|at| at > restart)
            .min()
            .expect("records processed after every restart");
        let after = resumed - *restart;
        assert!(
            after <= Duration::from_secs(10),
            "restart {i}: nothing new processed for {after:?}"
        );
    }
    eprintln!(
        "chaos: {} records acknowledged, {failed} failed, {RESTARTS} broker kills, \
         {stream_duplicates} stored twice by producer retries, {replays} re-deliveries",
        ok.len()
    );
    broker.kill();
}
