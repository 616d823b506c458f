//! Durability and ordering under disk faults, through a real broker on a socket:
//! an fsync round abandoned by its client, reads held back to what is on disk,
//! counters that never go backwards after a crash of the machine, recovery that
//! refuses to cut intact records, transactional resharding, expired closed
//! shards reclaimed and expired records staying expired, slow disk work that
//! stalls no other request, and storage errors reported as errors.
//!
//! Disk faults come from the store's test hook ([`DiskFaults`]); a crash of the
//! machine is modelled by SIGKILLing the broker binary and then cutting off
//! what it had not fsynced, which is what the page cache loses in a power cut.

use kinesis_broker::limiter::LimitsConfig;
use kinesis_broker::store::disk_faults::DiskFaults;
use kinesis_broker::store::durable::DurableConfig;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use kinesis_proto::ErrorCode;
use kinesis_proto::client::{Client, ClientConfig, ClientError, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use kinesis_proto::sequence::layout;
use parking_lot::{Condvar, Mutex};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// A latch the hook blocks on until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock();
        while !*open {
            self.cond.wait(&mut open);
        }
    }

    fn release(&self) {
        *self.open.lock() = true;
        self.cond.notify_all();
    }
}

/// The first fsync announces itself, blocks until released, then succeeds or
/// fails as told; later fsyncs succeed at once.
struct StallFirstFsync {
    calls: AtomicUsize,
    entered: mpsc::UnboundedSender<()>,
    gate: Gate,
    fail: bool,
}

impl StallFirstFsync {
    fn new(fail: bool) -> (Arc<Self>, mpsc::UnboundedReceiver<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let hook = Arc::new(StallFirstFsync {
            calls: AtomicUsize::new(0),
            entered: tx,
            gate: Gate::default(),
            fail,
        });
        (hook, rx)
    }
}

/// Opens the gate when dropped, so a failing test never leaves a blocked
/// fsync holding up the runtime's shutdown.
struct OpenOnDrop(Arc<StallFirstFsync>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.gate.release();
    }
}

impl DiskFaults for StallFirstFsync {
    fn before_fsync(&self, _log_dir: &Path) -> std::io::Result<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            return Ok(());
        }
        let _ = self.entered.send(());
        self.gate.wait();
        if self.fail {
            return Err(std::io::Error::other("injected EIO"));
        }
        Ok(())
    }
}

async fn start_in_process(dir: &Path, hook: Arc<dyn DiskFaults>) -> RunningBroker {
    start_with_heartbeat(dir, hook, Duration::from_secs(3600)).await
}

async fn start_with_heartbeat(
    dir: &Path,
    hook: Arc<dyn DiskFaults>,
    heartbeat: Duration,
) -> RunningBroker {
    let config = BrokerConfig::builder()
        .port(0)
        .state_delays(Duration::ZERO)
        .limits("off".parse::<LimitsConfig>().expect("limits"))
        .subscription_heartbeat(heartbeat)
        .durable(DurableConfig::new(dir).disk_faults(hook))
        .build();
    Broker::start(config).await.expect("broker starts")
}

fn client(endpoint: &str) -> Client {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint.to_string())
            .region("us-east-1")
            .credentials(Credentials::test())
            .max_attempts(1)
            .request_timeout(Duration::from_secs(60))
            .build(),
    )
    .expect("client")
}

async fn create(client: &Client, name: &str, shards: i64) {
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some(name.into()),
            shard_count: Some(shards),
            ..Default::default()
        })
        .await
        .expect("create stream");
}

fn put(name: &str, data: &str) -> PutRecordInput {
    PutRecordInput {
        stream: StreamRef::name(name),
        data: Some(Blob::from(data.as_bytes().to_vec())),
        partition_key: Some("k".into()),
        ..Default::default()
    }
}

async fn trim_horizon(client: &Client, name: &str, shard: &str) -> String {
    client
        .get_shard_iterator(&GetShardIteratorInput {
            stream: StreamRef::name(name),
            shard_id: Some(shard.into()),
            shard_iterator_type: Some("TRIM_HORIZON".into()),
            ..Default::default()
        })
        .await
        .expect("iterator")
        .shard_iterator
}

async fn get(client: &Client, iterator: &str) -> Result<GetRecordsOutput, ClientError> {
    client
        .get_records(&GetRecordsInput {
            shard_iterator: Some(iterator.into()),
            ..Default::default()
        })
        .await
}

fn assert_internal_failure<T: std::fmt::Debug>(r: Result<T, ClientError>, what: &str) {
    match r {
        Err(ClientError::Service(e)) => {
            assert_eq!(e.code, ErrorCode::InternalFailure, "{what}: {e}")
        }
        other => panic!("{what}: expected InternalFailure, got {other:?}"),
    }
}

/// PutRecord over its own HTTP/2 connection; dropping the returned future
/// resets the stream (RST_STREAM), as a client that gives up does.
async fn put_over_h2(endpoint: &str, name: &str) -> impl std::future::Future<Output = ()> + use<> {
    let addr = endpoint.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let body = serde_json::json!({
        "StreamName": name,
        "Data": "YQ==",
        "PartitionKey": "k",
    })
    .to_string();
    // Signed, as the broker requires of every call (docs/validation.md).
    let signature = kinesis_proto::client::sign_headers(
        &kinesis_proto::client::Credentials::test(),
        "us-east-1",
        "kinesis",
        "POST",
        &format!("http://{addr}/"),
        &[
            ("host", addr.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.PutRecord"),
        ],
        body.as_bytes(),
        std::time::SystemTime::now(),
    )
    .expect("sign");
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.PutRecord");
    for (k, v) in &signature {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("request");
    async move {
        let _ = send.send_request(req).await;
    }
}

/// Finding 1: the client leading a group-commit round goes away while its
/// fsync is under way, and that fsync then fails. The write that queued
/// behind the round must not be acknowledged, nor any later one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_fsync_round_still_fails_the_writes_behind_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, mut entered) = StallFirstFsync::new(true);
    let _open = OpenOnDrop(hook.clone());
    let broker = start_in_process(dir.path(), hook.clone()).await;
    let endpoint = broker.endpoint();
    let c = client(&endpoint);
    create(&c, "s", 1).await;

    // The leader: its fsync stalls, then its client resets the stream.
    let leader = tokio::spawn(put_over_h2(&endpoint, "s").await);
    entered.recv().await.expect("the first fsync starts");
    leader.abort();
    let _ = leader.await;

    // A writer behind the round: its record shares the file whose fsync fails.
    let behind = tokio::spawn({
        let c = c.clone();
        async move { c.put_record(&put("s", "behind")).await }
    });
    let mut behind = std::pin::pin!(behind);
    // Without the fix the round dies with its client and the writer is
    // acknowledged on its own fsync while the failing one is still pending.
    if let Ok(answer) = tokio::time::timeout(Duration::from_secs(2), &mut behind).await {
        hook.gate.release();
        assert_internal_failure(
            answer.expect("writer task"),
            "acknowledged while the fsync covering its file was still pending",
        );
    } else {
        hook.gate.release();
        assert_internal_failure(
            behind.await.expect("writer task"),
            "a write covered by a failed fsync",
        );
    }
    // The log is in an unknown state: writes are refused until a restart.
    assert_internal_failure(
        c.put_record(&put("s", "later")).await,
        "a write after a failed fsync",
    );
    broker.shutdown().await;

    // A restart checks the logs again and takes writes.
    let broker = Broker::start(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .durable(DurableConfig::new(dir.path()))
            .build(),
    )
    .await
    .expect("restart");
    let c = client(&broker.endpoint());
    c.put_record(&put("s", "after restart"))
        .await
        .expect("writes resume after a restart");
    broker.shutdown().await;
}

/// Finding 2: under `--fsync always` a reader never sees a record before it is
/// on disk; a fan-out subscriber gets it as soon as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_fsync_always_readers_see_only_durable_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, mut entered) = StallFirstFsync::new(false);
    let _open = OpenOnDrop(hook.clone());
    let broker = start_in_process(dir.path(), hook.clone()).await;
    let c = client(&broker.endpoint());
    create(&c, "s", 1).await;
    let shard = "shardId-000000000000";
    let stream_arn = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name("s"),
        })
        .await
        .expect("describe")
        .stream_description_summary
        .stream_arn;
    let consumer = c
        .register_stream_consumer(&RegisterStreamConsumerInput {
            stream_arn: Some(stream_arn),
            consumer_name: Some("c".into()),
        })
        .await
        .expect("register")
        .consumer
        .consumer_arn;
    let mut events = c
        .subscribe_to_shard(&SubscribeToShardInput {
            consumer_arn: Some(consumer),
            shard_id: Some(shard.into()),
            starting_position: Some(StartingPosition {
                position_type: "TRIM_HORIZON".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("subscribe");
    let it = trim_horizon(&c, "s", shard).await;

    let writer = tokio::spawn({
        let c = c.clone();
        async move { c.put_record(&put("s", "pending")).await }
    });
    entered.recv().await.expect("the fsync starts");
    let seen = get(&c, &it).await.expect("get records");
    assert!(
        seen.records.is_empty(),
        "a record was served before it was on disk: {:?}",
        seen.records
    );
    hook.gate.release();
    let acked = writer.await.expect("writer").expect("put once durable");
    let seen = get(&c, &it).await.expect("get records");
    let seqs: Vec<&str> = seen
        .records
        .iter()
        .map(|r| r.sequence_number.as_str())
        .collect();
    assert_eq!(seqs, vec![acked.sequence_number.as_str()]);
    // The subscriber is woken by the fsync, not left waiting for a heartbeat.
    let record_event = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.next_event().await.expect("event") {
                Some(e) if !e.records.is_empty() => break e,
                Some(_) => continue,
                None => panic!("the subscription ended"),
            }
        }
    })
    .await
    .expect("the subscriber receives the record once it is durable");
    assert_eq!(
        record_event.records[0].sequence_number,
        acked.sequence_number
    );
    broker.shutdown().await;
}

/// A broker process on a data dir.
struct Process {
    child: Child,
    endpoint: String,
}

async fn spawn_broker(dir: &Path, extra: &[&str]) -> Result<Process, Vec<String>> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinesis-broker"))
        .args(["--port", "0", "--limits", "off", "--log-level", "warn"])
        .args(["--create-delay-ms", "0", "--update-delay-ms", "0"])
        .arg("--data-dir")
        .arg(dir)
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the broker binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let stderr = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut out = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            out.push(l);
        }
        out
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        match lines.next_line().await.expect("read stdout") {
            Some(l) => {
                if let Some(e) = l.strip_prefix("Listening on ") {
                    let endpoint = e.to_string();
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return Ok(Process { child, endpoint });
                }
            }
            None => {
                let _ = child.wait().await;
                return Err(stderr.await.expect("stderr reader"));
            }
        }
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("list") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn counter_of(seq: &str) -> u64 {
    layout::decode(seq).expect("a broker sequence number").0
}

/// Finding 2: records a reader saw, then lost with the page cache in a crash
/// of the machine (`--fsync interval` had not synced them), must not have
/// their sequence numbers handed to later writes: a consumer that checkpointed
/// one would skip the new record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_never_go_backwards_after_a_crash_of_the_machine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hour = ["--fsync", "interval=3600000"];
    let p = spawn_broker(dir.path(), &hour).await.expect("start");
    let c = client(&p.endpoint);
    create(&c, "s", 1).await;
    let shard = "shardId-000000000000";
    for i in 0..5 {
        c.put_record(&put("s", &format!("r{i}")))
            .await
            .expect("put");
    }
    let it = trim_horizon(&c, "s", shard).await;
    let seen = get(&c, &it).await.expect("get").records;
    assert_eq!(seen.len(), 5);
    let checkpoint = counter_of(&seen[4].sequence_number);
    let mut child = p.child;
    child.kill().await.expect("SIGKILL");
    // The power cut: nothing written since the stream was created was fsynced.
    for f in segment_files(dir.path()) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .and_then(|f| f.set_len(0))
            .expect("cut the unsynced tail");
    }
    let p = spawn_broker(dir.path(), &hour).await.expect("restart");
    let c = client(&p.endpoint);
    let next = c.put_record(&put("s", "after")).await.expect("put");
    assert!(
        counter_of(&next.sequence_number) > checkpoint,
        "sequence number {} handed out again after the crash (a reader had seen up to {})",
        next.sequence_number,
        seen[4].sequence_number
    );
    let mut child = p.child;
    child.kill().await.expect("SIGKILL");
}

async fn read_all(client: &Client, name: &str, shard: &str) -> Vec<String> {
    let mut it = trim_horizon(client, name, shard).await;
    let mut out = Vec::new();
    for _ in 0..1000 {
        let page = get(client, &it).await.expect("get records");
        if page.records.is_empty() {
            break;
        }
        out.extend(page.records.into_iter().map(|r| r.sequence_number));
        match page.next_shard_iterator {
            Some(next) => it = next,
            None => break,
        }
    }
    out
}

fn first_counter_of_segment(path: &Path) -> u64 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("a segment file name")
}

/// Finding 3: damage in a sealed segment (fsynced whole when it was closed) is
/// not a torn write. Start-up must not silently cut the file there, dropping
/// the records behind the damage: it refuses to start, naming the file, unless
/// told to quarantine the segment (a copy kept aside, the rest served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_in_a_sealed_segment_stops_the_start_instead_of_cutting_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = ["--segment-bytes", "256"];
    let p = spawn_broker(dir.path(), &small).await.expect("start");
    let c = client(&p.endpoint);
    create(&c, "s", 1).await;
    let shard = "shardId-000000000000";
    for i in 0..40 {
        c.put_record(&put("s", &format!("record-{i:02}")))
            .await
            .expect("put");
    }
    let all = read_all(&c, "s", shard).await;
    assert_eq!(all.len(), 40);
    let mut child = p.child;
    child.kill().await.expect("SIGKILL");
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 4, "{segs:?}");
    // Flip a byte in the middle of the oldest segment.
    let mut bytes = std::fs::read(&segs[0]).expect("read segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5A;
    std::fs::write(&segs[0], &bytes).expect("write segment");

    match spawn_broker(dir.path(), &small).await {
        Ok(p) => {
            let c = client(&p.endpoint);
            let kept = read_all(&c, "s", shard).await;
            panic!(
                "the broker started on a damaged sealed segment and serves {} of 40 records",
                kept.len()
            );
        }
        Err(stderr) => {
            let name = segs[0].file_name().and_then(|n| n.to_str()).expect("name");
            assert!(
                stderr
                    .iter()
                    .any(|l| l.contains(name) && l.contains("--recover-corrupt")),
                "no line names the damaged segment: {stderr:#?}"
            );
        }
    }
    // Nothing was cut: every later segment is whole.
    assert_eq!(std::fs::read(&segs[0]).expect("read"), bytes);

    let mut quarantine = small.to_vec();
    quarantine.extend(["--recover-corrupt", "quarantine"]);
    let p = spawn_broker(dir.path(), &quarantine)
        .await
        .expect("start with quarantine");
    let c = client(&p.endpoint);
    let kept = read_all(&c, "s", shard).await;
    let behind = first_counter_of_segment(&segs[1]);
    let whole: Vec<&String> = all.iter().filter(|s| counter_of(s) >= behind).collect();
    assert!(
        whole.iter().all(|s| kept.contains(s)),
        "every record of the intact segments is served: {kept:?}"
    );
    assert!(
        kept.len() > whole.len(),
        "the records before the damage are served"
    );
    assert!(kept.iter().all(|s| all.contains(s)));
    let mut aside = segs[0].clone().into_os_string();
    aside.push(".quarantined");
    assert_eq!(
        std::fs::read(&aside).expect("the damaged segment is kept aside"),
        bytes
    );
    let next = c.put_record(&put("s", "after")).await.expect("put");
    assert!(counter_of(&next.sequence_number) > counter_of(all.last().expect("records")));
    let mut child = p.child;
    child.kill().await.expect("SIGKILL");
}

/// Finding 7: a record that cannot be read back (the disk returns garbage) is a
/// storage error, not "no records yet": GetRecords answers 500
/// InternalFailure, and a fan-out subscriber gets an error event and its
/// stream ends, instead of heartbeats saying it is caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_read_error_reaches_readers_as_an_internal_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BrokerConfig::builder()
        .port(0)
        .state_delays(Duration::ZERO)
        .limits("off".parse::<LimitsConfig>().expect("limits"))
        .subscription_heartbeat(Duration::from_millis(20))
        .durable(DurableConfig::new(dir.path()))
        .build();
    let broker = Broker::start(config).await.expect("broker starts");
    let c = client(&broker.endpoint());
    create(&c, "s", 1).await;
    let shard = "shardId-000000000000";
    for i in 0..3 {
        c.put_record(&put("s", &format!("record-{i}")))
            .await
            .expect("put");
    }
    // The disk now returns a damaged record in the middle of the shard.
    let seg = segment_files(dir.path()).pop().expect("a segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5A;
    std::fs::write(&seg, &bytes).expect("write");

    let it = trim_horizon(&c, "s", shard).await;
    assert_internal_failure(get(&c, &it).await, "GetRecords over a damaged record");

    let stream_arn = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name("s"),
        })
        .await
        .expect("describe")
        .stream_description_summary
        .stream_arn;
    let consumer = c
        .register_stream_consumer(&RegisterStreamConsumerInput {
            stream_arn: Some(stream_arn),
            consumer_name: Some("c".into()),
        })
        .await
        .expect("register")
        .consumer
        .consumer_arn;
    let mut events = c
        .subscribe_to_shard(&SubscribeToShardInput {
            consumer_arn: Some(consumer),
            shard_id: Some(shard.into()),
            starting_position: Some(StartingPosition {
                position_type: "TRIM_HORIZON".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("subscribe");
    let mut heartbeats = 0;
    let outcome = loop {
        match events.next_event().await {
            Ok(Some(e)) if e.records.is_empty() => {
                heartbeats += 1;
                // Far more than the subscriber needs to learn of the failure.
                if heartbeats == 20 {
                    break Ok(heartbeats);
                }
            }
            Ok(Some(_)) => continue,
            Ok(None) => break Err("the stream ended".to_string()),
            Err(e) => break Err(e.to_string()),
        }
    };
    match outcome {
        Ok(n) => panic!("{n} events said the subscriber is caught up at a damaged record"),
        Err(e) => assert!(
            e.contains("InternalFailure") || e == "the stream ended",
            "unexpected end: {e}"
        ),
    }
    broker.shutdown().await;
}

/// Fails chosen disk operations while its switches are on.
#[derive(Default)]
struct Switches {
    fail_create_log: std::sync::atomic::AtomicBool,
    fail_save_stream: std::sync::atomic::AtomicBool,
}

impl DiskFaults for Switches {
    fn before_create_log(&self, _log_dir: &Path) -> std::io::Result<()> {
        if self.fail_create_log.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected: no space left"));
        }
        Ok(())
    }

    fn before_save_stream(&self, _name: &str) -> std::io::Result<()> {
        if self.fail_save_stream.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected: no space left"));
        }
        Ok(())
    }
}

async fn shard_ids(client: &Client, name: &str) -> Vec<(String, bool)> {
    client
        .list_shards(&ListShardsInput {
            stream: StreamRef::name(name),
            ..Default::default()
        })
        .await
        .expect("list shards")
        .shards
        .into_iter()
        .map(|s| {
            let open = s.sequence_number_range.ending_sequence_number.is_none();
            (s.shard_id, open)
        })
        .collect()
}

fn split(name: &str) -> SplitShardInput {
    SplitShardInput {
        stream: StreamRef::name(name),
        shard_to_split: Some("shardId-000000000000".into()),
        new_starting_hash_key: Some((1u128 << 127).to_string()),
    }
}

/// Finding 4: a reshard whose shard logs or description cannot be written
/// changes nothing: the parent stays open and takes writes, no child appears,
/// and every acknowledged write is still there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshard_that_cannot_be_written_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let switches = Arc::new(Switches::default());
    let broker = start_in_process(dir.path(), switches.clone()).await;
    let c = client(&broker.endpoint());
    create(&c, "s", 1).await;
    let before = shard_ids(&c, "s").await;
    let mut acked = Vec::new();

    for fault in [&switches.fail_create_log, &switches.fail_save_stream] {
        fault.store(true, Ordering::SeqCst);
        assert_internal_failure(
            c.split_shard(&split("s")).await,
            "a reshard that cannot be written",
        );
        fault.store(false, Ordering::SeqCst);
        assert_eq!(shard_ids(&c, "s").await, before, "the shard set changed");
        for i in 0..4 {
            let out = c
                .put_record(&PutRecordInput {
                    partition_key: Some(format!("key-{i}")),
                    ..put("s", "after a failed reshard")
                })
                .await
                .expect("writes go on after a failed reshard");
            acked.push(out.sequence_number);
        }
    }
    broker.shutdown().await;

    let broker = Broker::start(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .durable(DurableConfig::new(dir.path()))
            .build(),
    )
    .await
    .expect("restart");
    let c = client(&broker.endpoint());
    let mut stored = Vec::new();
    for (shard, _) in shard_ids(&c, "s").await {
        stored.extend(read_all(&c, "s", &shard).await);
    }
    for seq in &acked {
        assert!(
            stored.contains(seq),
            "acknowledged {seq} is gone after a restart"
        );
    }
    // The reshard works once the disk does.
    c.split_shard(&split("s")).await.expect("split");
    let after = shard_ids(&c, "s").await;
    assert_eq!(after.len(), 3);
    assert_eq!(after.iter().filter(|(_, open)| *open).count(), 2);
    broker.shutdown().await;
}

/// Paths of the files this process has open (Linux's /proc).
fn open_files() -> Vec<PathBuf> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn shard_dir(data: &Path, stream: &str, shard: &str) -> PathBuf {
    let streams = data.join("streams");
    let dir = std::fs::read_dir(&streams)
        .expect("list streams")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{stream}.")))
        })
        .expect("the stream's dir");
    dir.join(shard)
}

/// Finding 5: a closed shard whose records have all expired is reclaimed: its
/// files are deleted, its descriptors closed and its metrics dropped, and a
/// restart does not bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_shard_whose_records_all_expired_is_reclaimed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || {
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limits("off".parse::<LimitsConfig>().expect("limits"))
            .durable(DurableConfig::new(dir.path()))
            .build()
    };
    let broker = Broker::start(config()).await.expect("broker starts");
    let c = client(&broker.endpoint());
    create(&c, "s", 1).await;
    let parent = "shardId-000000000000";
    for i in 0..5 {
        c.put_record(&put("s", &format!("r{i}")))
            .await
            .expect("put");
    }
    c.split_shard(&split("s")).await.expect("split");
    let parent_dir = shard_dir(dir.path(), "s", parent);
    assert!(parent_dir.exists());
    assert!(open_files().iter().any(|f| f.starts_with(&parent_dir)));
    // A day and a little more pass (the trimmer's own tick does this every second).
    let svc = Arc::clone(broker.service());
    let later = kinesis_broker::service::now_ms() + 25 * 3600 * 1000;
    tokio::task::spawn_blocking(move || svc.trim_expired(later))
        .await
        .expect("trim");

    assert!(
        !parent_dir.exists(),
        "the expired shard's files are still on disk"
    );
    assert!(
        !open_files().iter().any(|f| f.starts_with(&parent_dir)),
        "a descriptor of the expired shard is still open"
    );
    let metrics = broker.service().metrics().gather_text();
    assert!(
        !metrics.contains(&format!("\"{parent}\"")),
        "the expired shard still has metrics"
    );
    broker.shutdown().await;
    let broker = Broker::start(config()).await.expect("restart");
    assert!(
        !parent_dir.exists(),
        "the restart made the shard's files again"
    );
    let c = client(&broker.endpoint());
    let shards = shard_ids(&c, "s").await;
    assert_eq!(shards.len(), 3, "{shards:?}");
    broker.shutdown().await;
}

/// Finding 5: records that expired stay expired across a restart, even after
/// the retention period grew (the cut-off applied then must be saved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_stay_expired_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A retention "hour" of 5 ms: the default 24 hours last 120 ms.
    let config = || {
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limits("off".parse::<LimitsConfig>().expect("limits"))
            .retention_hour(Duration::from_millis(5))
            .durable(DurableConfig::new(dir.path()))
            .build()
    };
    let broker = Broker::start(config()).await.expect("broker starts");
    let c = client(&broker.endpoint());
    create(&c, "s", 1).await;
    let shard = "shardId-000000000000";
    c.put_record(&put("s", "expires")).await.expect("put");
    let mut expired = false;
    for _ in 0..200 {
        if read_all(&c, "s", shard).await.is_empty() {
            expired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(expired, "the record never expired");
    // 8760 hours are 43.8 s here: far longer than the rest of this test.
    c.increase_stream_retention_period(&RetentionPeriodInput {
        stream: StreamRef::name("s"),
        retention_period_hours: Some(8760),
    })
    .await
    .expect("increase retention");
    assert!(read_all(&c, "s", shard).await.is_empty());
    broker.shutdown().await;
    let broker = Broker::start(config()).await.expect("restart");
    let c = client(&broker.endpoint());
    let back = read_all(&c, "s", shard).await;
    assert!(back.is_empty(), "expired records came back: {back:?}");
    broker.shutdown().await;
}

/// Stalls the next shard-log creation after [`arm`](Self::arm) until released.
#[derive(Default)]
struct StallCreateLog {
    armed: std::sync::atomic::AtomicBool,
    entered: Mutex<Option<mpsc::UnboundedSender<()>>>,
    open: Mutex<bool>,
    cond: Condvar,
}

impl StallCreateLog {
    fn arm(&self) -> mpsc::UnboundedReceiver<()> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.entered.lock() = Some(tx);
        *self.open.lock() = false;
        self.armed.store(true, Ordering::SeqCst);
        rx
    }

    fn release(&self) {
        *self.open.lock() = true;
        self.cond.notify_all();
    }
}

impl DiskFaults for StallCreateLog {
    fn before_create_log(&self, _log_dir: &Path) -> std::io::Result<()> {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(tx) = self.entered.lock().take() {
            let _ = tx.send(());
        }
        let mut open = self.open.lock();
        while !*open {
            self.cond.wait(&mut open);
        }
        Ok(())
    }
}

struct ReleaseOnDrop(Arc<StallCreateLog>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Finding 6: while one request waits on the disk (making a stream's shard
/// dirs, a reshard's child logs), requests for other streams, and writes to the
/// stream being resharded, are served. The broker runs on a runtime of its
/// own, so that a stalled broker cannot stall the test's clock.
#[test]
fn slow_disk_work_of_one_request_does_not_stall_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Arc::new(StallCreateLog::default());
    let broker_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("broker runtime");
    let broker = broker_rt.block_on(start_in_process(dir.path(), hook.clone()));
    let endpoint = broker.endpoint();
    let test_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime");
    // Dropped first, also when the test fails: nothing stays blocked on the gate.
    let _release = ReleaseOnDrop(hook.clone());
    test_rt.block_on(async {
        let c = client(&endpoint);
        create(&c, "small", 1).await;
        create(&c, "resharded", 2).await;
        let patience = Duration::from_secs(10);

        let mut entered = hook.arm();
        let big = tokio::spawn({
            let c = c.clone();
            async move { create(&c, "big", 20).await }
        });
        entered.recv().await.expect("CreateStream reaches the disk");
        tokio::time::timeout(patience, c.put_record(&put("small", "x")))
            .await
            .expect("a write to another stream waited for CreateStream's disk work")
            .expect("put");
        tokio::time::timeout(patience, c.list_streams(&ListStreamsInput::default()))
            .await
            .expect("ListStreams waited for CreateStream's disk work")
            .expect("list streams");
        hook.release();
        big.await.expect("create task");

        let mut entered = hook.arm();
        let reshard = tokio::spawn({
            let c = c.clone();
            async move {
                c.update_shard_count(&UpdateShardCountInput {
                    stream: StreamRef::name("resharded"),
                    target_shard_count: Some(4),
                    scaling_type: Some("UNIFORM_SCALING".into()),
                })
                .await
            }
        });
        entered
            .recv()
            .await
            .expect("UpdateShardCount reaches the disk");
        tokio::time::timeout(patience, c.put_record(&put("resharded", "x")))
            .await
            .expect("a write to the stream waited for its reshard's disk work")
            .expect("put");
        hook.release();
        reshard
            .await
            .expect("reshard task")
            .expect("update shard count");
        let open = shard_ids(&c, "resharded")
            .await
            .into_iter()
            .filter(|(_, o)| *o)
            .count();
        assert_eq!(open, 4);
    });
    hook.release();
    broker_rt.block_on(broker.shutdown());
}

/// Finding 2, at a shard's end: a shard closed while its last record waits
/// for its fsync does not end a fan-out subscription before that record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_does_not_end_before_a_held_back_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hook, mut entered) = StallFirstFsync::new(false);
    let _open = OpenOnDrop(hook.clone());
    let broker = start_with_heartbeat(dir.path(), hook.clone(), Duration::from_millis(20)).await;
    let c = client(&broker.endpoint());
    create(&c, "s", 1).await;
    let stream_arn = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: StreamRef::name("s"),
        })
        .await
        .expect("describe")
        .stream_description_summary
        .stream_arn;
    let consumer = c
        .register_stream_consumer(&RegisterStreamConsumerInput {
            stream_arn: Some(stream_arn),
            consumer_name: Some("c".into()),
        })
        .await
        .expect("register")
        .consumer
        .consumer_arn;
    let mut events = c
        .subscribe_to_shard(&SubscribeToShardInput {
            consumer_arn: Some(consumer),
            shard_id: Some("shardId-000000000000".into()),
            starting_position: Some(StartingPosition {
                position_type: "TRIM_HORIZON".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("subscribe");
    let writer = tokio::spawn({
        let c = c.clone();
        async move { c.put_record(&put("s", "last")).await }
    });
    entered.recv().await.expect("the fsync starts");
    c.split_shard(&split("s")).await.expect("split");
    let mut released = false;
    let mut delivered = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match events.next_event().await.expect("event") {
                Some(e) if e.child_shards.is_some() => break e,
                Some(e) => {
                    delivered.extend(e.records.into_iter().map(|r| r.sequence_number));
                    // The shard has closed and the subscriber has looked at
                    // it (a heartbeat says so): now the fsync may finish.
                    if !released {
                        released = true;
                        hook.gate.release();
                    }
                }
                None => panic!("the subscription ended without an end-of-shard event"),
            }
        }
    })
    .await
    .expect("the shard's end reaches the subscriber");
    hook.gate.release();
    let acked = writer.await.expect("writer").expect("put");
    assert!(end.records.is_empty());
    assert_eq!(
        delivered,
        vec![acked.sequence_number],
        "the shard ended before its last acknowledged record was delivered"
    );
    broker.shutdown().await;
}

/// Stalls the next read of a shard log after [`arm`](Self::arm) until released.
#[derive(Default)]
struct StallRead {
    armed: std::sync::atomic::AtomicBool,
    entered: Mutex<Option<mpsc::UnboundedSender<()>>>,
    gate: Gate,
}

impl DiskFaults for StallRead {
    fn before_read(&self, _log_dir: &Path) -> std::io::Result<()> {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(tx) = self.entered.lock().take() {
            let _ = tx.send(());
        }
        self.gate.wait();
        Ok(())
    }
}

struct OpenReadsOnDrop(Arc<StallRead>);

impl Drop for OpenReadsOnDrop {
    fn drop(&mut self) {
        self.0.gate.release();
    }
}

/// Finding 6: a fan-out subscription reading segment files does not hold
/// an async worker meanwhile. The broker gets a single worker, so a read
/// that occupied it would stall every other request.
#[test]
fn a_subscription_reading_the_disk_does_not_stall_other_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Arc::new(StallRead::default());
    let broker_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("broker runtime");
    let broker = broker_rt.block_on(start_in_process(dir.path(), hook.clone()));
    let endpoint = broker.endpoint();
    let test_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("test runtime");
    let _open = OpenReadsOnDrop(hook.clone());
    test_rt.block_on(async {
        let c = client(&endpoint);
        create(&c, "s", 1).await;
        create(&c, "other", 1).await;
        c.put_record(&put("s", "x")).await.expect("put");
        let stream_arn = c
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: StreamRef::name("s"),
            })
            .await
            .expect("describe")
            .stream_description_summary
            .stream_arn;
        let consumer = c
            .register_stream_consumer(&RegisterStreamConsumerInput {
                stream_arn: Some(stream_arn),
                consumer_name: Some("c".into()),
            })
            .await
            .expect("register")
            .consumer
            .consumer_arn;
        let (tx, mut entered) = mpsc::unbounded_channel();
        *hook.entered.lock() = Some(tx);
        hook.armed.store(true, Ordering::SeqCst);
        let subscriber = tokio::spawn({
            let c = c.clone();
            async move {
                let mut events = c
                    .subscribe_to_shard(&SubscribeToShardInput {
                        consumer_arn: Some(consumer),
                        shard_id: Some("shardId-000000000000".into()),
                        starting_position: Some(StartingPosition {
                            position_type: "TRIM_HORIZON".into(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .expect("subscribe");
                loop {
                    match events.next_event().await.expect("event") {
                        Some(e) if !e.records.is_empty() => break e.records.len(),
                        Some(_) => continue,
                        None => panic!("the subscription ended"),
                    }
                }
            }
        });
        entered
            .recv()
            .await
            .expect("the subscription reads the disk");
        tokio::time::timeout(Duration::from_secs(10), c.put_record(&put("other", "y")))
            .await
            .expect("a write waited for a subscription's disk read")
            .expect("put");
        hook.gate.release();
        assert_eq!(subscriber.await.expect("subscriber"), 1);
    });
    hook.gate.release();
    broker_rt.block_on(broker.shutdown());
}
