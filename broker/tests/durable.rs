//! The durable store through the real `kinesis-broker` binary: SIGKILL at many
//! points while several writers write, then restart and check every
//! acknowledged record; a torn or corrupt tail cut off at start with a log
//! line; and stream metadata, iterators and resharding surviving restarts.

use kinesis_proto::client::{Client, ClientConfig, ClientError, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use kinesis_proto::sequence::layout;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// A broker process on a data dir.
struct Running {
    child: Child,
    endpoint: String,
    stderr: tokio::task::JoinHandle<Vec<String>>,
}

async fn start(dir: &Path, extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kinesis-broker"))
        .args(["--port", "0", "--limits", "off", "--log-level", "info"])
        .args(["--create-delay-ms", "0"])
        // A test may give its own update delay (to stop the broker mid-update).
        .args(
            (!extra.contains(&"--update-delay-ms"))
                .then_some(["--update-delay-ms", "0"])
                .into_iter()
                .flatten(),
        )
        .args(["--delete-delay-ms", "0", "--consumer-delay-ms", "0"])
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
    let endpoint = loop {
        match lines.next_line().await.expect("read stdout") {
            Some(l) => {
                if let Some(e) = l.strip_prefix("Listening on ") {
                    break e.to_string();
                }
            }
            None => panic!(
                "the broker exited before listening: {:#?}",
                stderr.await.unwrap()
            ),
        }
    };
    // Keep draining stdout so the broker never blocks writing to it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running {
        child,
        endpoint,
        stderr,
    }
}

impl Running {
    fn client(&self, attempts: u32) -> Client {
        Client::new(
            ClientConfig::builder()
                .endpoint(self.endpoint.clone())
                .region("us-east-1")
                .credentials(Credentials::test())
                .max_attempts(attempts)
                .build(),
        )
        .expect("client")
    }

    /// SIGKILL the broker; its stderr.
    async fn kill(mut self) -> Vec<String> {
        self.child.kill().await.expect("SIGKILL");
        self.stderr.await.expect("stderr reader")
    }
}

/// A tiny seeded generator: the kill points are random but repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn stream(name: &str) -> StreamRef {
    StreamRef::name(name)
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

async fn list_shards(client: &Client, name: &str) -> Vec<Shard> {
    let mut out = Vec::new();
    let mut input = ListShardsInput {
        stream: stream(name),
        ..Default::default()
    };
    for _ in 0..100 {
        let page = client.list_shards(&input).await.expect("list shards");
        out.extend(page.shards);
        match page.next_token {
            Some(t) => {
                input = ListShardsInput {
                    next_token: Some(t),
                    ..Default::default()
                }
            }
            None => return out,
        }
    }
    panic!("too many shard pages");
}

async fn iterator(client: &Client, name: &str, shard: &str, kind: &str) -> String {
    client
        .get_shard_iterator(&GetShardIteratorInput {
            stream: stream(name),
            shard_id: Some(shard.into()),
            shard_iterator_type: Some(kind.into()),
            ..Default::default()
        })
        .await
        .expect("get shard iterator")
        .shard_iterator
}

/// Every record of a shard from `it` on: (sequence number, data).
async fn drain(client: &Client, mut it: String) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let page = client
            .get_records(&GetRecordsInput {
                shard_iterator: Some(it),
                limit: Some(10_000),
                ..Default::default()
            })
            .await
            .expect("get records");
        let empty = page.records.is_empty();
        out.extend(
            page.records
                .into_iter()
                .map(|r| (r.sequence_number, r.data.0.to_vec())),
        );
        match page.next_shard_iterator {
            Some(next) if !empty => it = next,
            _ => return out,
        }
    }
    panic!("shard did not end");
}

/// Every record of every shard, by shard id, from TRIM_HORIZON.
async fn read_stream(client: &Client, name: &str) -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
    let mut out = BTreeMap::new();
    for s in list_shards(client, name).await {
        let it = iterator(client, name, &s.shard_id, "TRIM_HORIZON").await;
        out.insert(s.shard_id.clone(), drain(client, it).await);
    }
    out
}

fn counter_of(seq: &str) -> u64 {
    layout::decode(seq)
        .expect("a broker-minted sequence number")
        .0
}

/// What the writers sent and what the broker acknowledged.
#[derive(Default)]
struct Ledger {
    /// Payload → (shard id, sequence number) for every acknowledged record.
    acked: HashMap<String, (String, String)>,
    /// Every payload ever sent (acknowledged or not).
    attempted: HashSet<String>,
}

/// Check what a restarted broker holds against the ledger; the highest counter.
fn verify(ledger: &Ledger, read: &BTreeMap<String, Vec<(String, Vec<u8>)>>, round: usize) -> u64 {
    let mut seen: HashMap<String, (String, String)> = HashMap::new();
    let mut max = 0;
    for (shard, records) in read {
        let index = kinesis_proto::shard_id::parse(shard).expect("shard id");
        let mut prev: Option<u64> = None;
        for (seq, data) in records {
            let (counter, on) = layout::decode(seq).expect("sequence number");
            assert_eq!(on, index, "round {round}: {seq} read from {shard}");
            assert!(
                prev.is_none_or(|p| p < counter),
                "round {round}: {shard} out of order at {seq}"
            );
            prev = Some(counter);
            max = max.max(counter);
            let payload = String::from_utf8(data.clone()).expect("payload");
            assert!(
                ledger.attempted.contains(&payload),
                "round {round}: a record nobody wrote: {payload}"
            );
            let again = seen.insert(payload.clone(), (shard.clone(), seq.clone()));
            assert!(again.is_none(), "round {round}: duplicate record {payload}");
        }
    }
    for (payload, at) in &ledger.acked {
        assert_eq!(
            seen.get(payload),
            Some(at),
            "round {round}: acknowledged record {payload} lost or moved"
        );
    }
    max
}

/// One writer: PutRecord and PutRecords of random sizes until a request cannot
/// reach the broker (it was killed) or it has sent enough.
#[allow(clippy::too_many_arguments)]
async fn writer(
    client: Client,
    name: &'static str,
    label: String,
    seed: u64,
    floor: u64,
    ledger: Arc<Mutex<Ledger>>,
    acks: Arc<AtomicUsize>,
    target: usize,
    reached: Arc<Notify>,
) {
    let mut rng = Rng(seed | 1);
    for n in 0..20_000 {
        let size = if rng.below(3) == 0 {
            0
        } else {
            1 + rng.below(25) as usize
        };
        let payloads: Vec<String> = (0..size.max(1))
            .map(|i| format!("{label}-{n}-{i}"))
            .collect();
        ledger.lock().attempted.extend(payloads.iter().cloned());
        let results: Vec<Option<(String, String)>> = if size == 0 {
            let input = PutRecordInput {
                stream: stream(name),
                data: Some(Blob(payloads[0].clone().into())),
                partition_key: Some(format!("{label}-{n}")),
                ..Default::default()
            };
            match client.call_once(&input).await {
                Ok(PutRecordOutput {
                    shard_id,
                    sequence_number,
                    ..
                }) => vec![Some((shard_id, sequence_number))],
                // Refused (say, its shard closed in a reshard): not stored, go on.
                Err(ClientError::Service(_)) => vec![None],
                Err(_) => return,
            }
        } else {
            let input = PutRecordsInput {
                stream: stream(name),
                records: Some(
                    payloads
                        .iter()
                        .map(|p| PutRecordsRequestEntry {
                            data: Some(Blob(p.clone().into())),
                            partition_key: Some(p.clone()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            };
            match client.call_once(&input).await {
                Ok(out) => out
                    .records
                    .into_iter()
                    .map(|r| r.sequence_number.zip(r.shard_id).map(|(s, i)| (i, s)))
                    .collect(),
                Err(ClientError::Service(_)) => vec![None; payloads.len()],
                Err(_) => return,
            }
        };
        let mut now_acked = 0;
        {
            let mut l = ledger.lock();
            for (p, r) in payloads.iter().zip(results) {
                if let Some((shard, seq)) = r {
                    assert!(
                        counter_of(&seq) > floor,
                        "{p}: {seq} is not above what the broker held at restart"
                    );
                    l.acked.insert(p.clone(), (shard, seq));
                    now_acked += 1;
                }
            }
        }
        if acks.fetch_add(now_acked, Ordering::SeqCst) + now_acked >= target {
            reached.notify_one();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_sigkill_at_many_points() {
    const NAME: &str = "crash";
    const ROUNDS: usize = 22;
    const WRITERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so kills also land around segment rolls.
    let extra = ["--segment-bytes", "16384"];
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(0x5eed_cafe_f00d);
    let mut floor = 0u64;
    let mut expect_open: Option<i64> = None;
    let mut expect_tags: BTreeMap<String, String> = BTreeMap::new();
    // Tags whose request the kill cut off: applied or not, either is right.
    let mut maybe_tags: HashSet<String> = HashSet::new();
    let mut kills = 0;
    for round in 0..ROUNDS {
        let broker = start(dir.path(), &extra).await;
        let admin = broker.client(3);
        if round == 0 {
            create(&admin, NAME, 4).await;
        } else {
            // Everything acknowledged before the last kill is there, once, in order.
            let read = read_stream(&admin, NAME).await;
            floor = verify(&ledger.lock(), &read, round);
            let summary = admin
                .describe_stream_summary(&DescribeStreamSummaryInput {
                    stream: stream(NAME),
                })
                .await
                .expect("summary")
                .stream_description_summary;
            assert_eq!(summary.stream_status, "ACTIVE");
            if let Some(n) = expect_open.take() {
                assert_eq!(summary.open_shard_count, n, "round {round}: reshard lost");
            }
            let tags = admin
                .list_tags_for_stream(&ListTagsForStreamInput {
                    stream: stream(NAME),
                    ..Default::default()
                })
                .await
                .expect("tags")
                .tags;
            let tags: BTreeMap<String, String> = tags
                .into_iter()
                .filter(|t| !maybe_tags.contains(&t.key))
                .map(|t| (t.key, t.value.unwrap_or_default()))
                .collect();
            assert_eq!(tags, expect_tags, "round {round}: tags");
        }
        let acks = Arc::new(AtomicUsize::new(0));
        let reached = Arc::new(Notify::new());
        let target = 20 + rng.below(300) as usize;
        let mut tasks = JoinSet::new();
        for w in 0..WRITERS {
            tasks.spawn(writer(
                broker.client(1),
                NAME,
                format!("r{round}w{w}"),
                rng.next(),
                floor,
                Arc::clone(&ledger),
                Arc::clone(&acks),
                target,
                Arc::clone(&reached),
            ));
        }
        // Some rounds also reshard or tag while the writers write; the kill
        // lands before, during or after it.
        let side = match round % 4 {
            1 => {
                let open = list_shards(&admin, NAME)
                    .await
                    .iter()
                    .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
                    .count() as i64;
                let to = if open >= 6 { 3 } else { open + 2 };
                let client = broker.client(1);
                Some(tokio::spawn(async move {
                    let r = client
                        .update_shard_count(&UpdateShardCountInput {
                            stream: stream(NAME),
                            target_shard_count: Some(to),
                            scaling_type: Some("UNIFORM_SCALING".into()),
                        })
                        .await;
                    r.is_ok().then_some(("open", to.to_string()))
                }))
            }
            3 => {
                let client = broker.client(1);
                let key = format!("round{round}");
                Some(tokio::spawn(async move {
                    let r = client
                        .add_tags_to_stream(&AddTagsToStreamInput {
                            stream: stream(NAME),
                            tags: Some(BTreeMap::from([(key.clone(), "x".to_string())])),
                        })
                        .await;
                    Some(("tag", if r.is_ok() { key } else { format!("?{key}") }))
                }))
            }
            _ => None,
        };
        loop {
            tokio::select! {
                _ = reached.notified() => break,
                done = tasks.join_next() => if done.is_none() { break },
            }
        }
        let stderr = broker.kill().await;
        kills += 1;
        while let Some(t) = tasks.join_next().await {
            t.expect("writer");
        }
        assert!(
            acks.load(Ordering::SeqCst) >= target,
            "round {round}: writers stopped early; broker said {stderr:#?}"
        );
        if let Some(side) = side {
            match side.await.expect("side task") {
                Some(("open", n)) => expect_open = n.parse().ok(),
                Some((_, key)) => match key.strip_prefix('?') {
                    Some(unanswered) => {
                        maybe_tags.insert(unanswered.to_string());
                    }
                    None => {
                        expect_tags.insert(key, "x".into());
                    }
                },
                None => {}
            }
        }
    }
    // A last restart: everything is there, and new writes number above it.
    let broker = start(dir.path(), &extra).await;
    let client = broker.client(3);
    let read = read_stream(&client, NAME).await;
    let max = verify(&ledger.lock(), &read, ROUNDS);
    let out = client
        .put_record(&PutRecordInput {
            stream: stream(NAME),
            data: Some(Blob("last".into())),
            partition_key: Some("last".into()),
            ..Default::default()
        })
        .await
        .expect("put after restart");
    assert!(counter_of(&out.sequence_number) > max);
    assert!(kills >= 20);
    let acked = ledger.lock().acked.len();
    let stored: usize = read.values().map(Vec::len).sum();
    let attempted = ledger.lock().attempted.len();
    eprintln!(
        "{kills} kills: {attempted} records sent, {acked} acknowledged, {stored} stored \
         (the rest were in flight at a kill)"
    );
    assert!(acked >= ROUNDS * 20, "{acked} acknowledged records");
    broker.kill().await;
}

fn segment_files(dir: &Path, stream_prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for s in std::fs::read_dir(dir.join("streams")).unwrap() {
        let s = s.unwrap().path();
        let name = s.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with(stream_prefix) {
            continue;
        }
        for shard in std::fs::read_dir(&s).unwrap() {
            let shard = shard.unwrap().path();
            if !shard.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&shard).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "seg") {
                    out.push(f);
                }
            }
        }
    }
    out.sort();
    out
}

async fn put_batch(client: &Client, name: &str, payloads: &[String]) -> Vec<String> {
    let out = client
        .put_records(&PutRecordsInput {
            stream: stream(name),
            records: Some(
                payloads
                    .iter()
                    .map(|p| PutRecordsRequestEntry {
                        data: Some(Blob(p.clone().into())),
                        partition_key: Some(p.clone()),
                        ..Default::default()
                    })
                    .collect(),
            ),
        })
        .await
        .expect("put records");
    assert_eq!(out.failed_record_count, 0);
    out.records
        .into_iter()
        .map(|r| r.sequence_number.expect("sequence number"))
        .collect()
}

#[tokio::test]
async fn a_torn_or_corrupt_tail_is_dropped_at_start_with_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    let client = broker.client(3);
    create(&client, "torn", 1).await;
    let payloads: Vec<String> = (0..30).map(|i| format!("record-{i:02}")).collect();
    let seqs = put_batch(&client, "torn", &payloads).await;
    broker.kill().await;

    // Cut the last record short.
    let seg = segment_files(dir.path(), "torn.").pop().expect("a segment");
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let broker = start(dir.path(), &[]).await;
    let client = broker.client(3);
    let read = read_stream(&client, "torn").await;
    let records = &read["shardId-000000000000"];
    let want: Vec<(String, Vec<u8>)> = seqs
        .iter()
        .zip(&payloads)
        .take(29)
        .map(|(s, p)| (s.clone(), p.clone().into_bytes()))
        .collect();
    assert_eq!(records, &want);
    let log = broker.kill().await;
    let line = log
        .iter()
        .find(|l| l.contains("dropped a torn tail"))
        .unwrap_or_else(|| panic!("no torn-tail line in {log:#?}"));
    assert!(line.contains("record cut short"), "{line}");
    assert!(line.contains("WARN"), "{line}");

    // Flip a byte inside what is now the last record.
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();
    let broker = start(dir.path(), &[]).await;
    let client = broker.client(3);
    let read = read_stream(&client, "torn").await;
    assert_eq!(read["shardId-000000000000"], want[..28]);
    // New writes continue above everything kept.
    let more = put_batch(&client, "torn", &["after".to_string()]).await;
    assert!(counter_of(&more[0]) > counter_of(&want[27].0));
    let log = broker.kill().await;
    assert!(
        log.iter()
            .any(|l| l.contains("dropped a torn tail") && l.contains("checksum mismatch")),
        "{log:#?}"
    );
}

#[tokio::test]
async fn streams_reshards_tags_consumers_and_iterators_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &["--fsync", "interval=5"]).await;
    let c = broker.client(3);
    create(&c, "meta", 2).await;
    create(&c, "gone", 1).await;
    c.delete_stream(&DeleteStreamInput {
        stream: stream("gone"),
        ..Default::default()
    })
    .await
    .expect("delete");
    c.add_tags_to_stream(&AddTagsToStreamInput {
        stream: stream("meta"),
        tags: Some(BTreeMap::from([
            ("team".to_string(), "data".to_string()),
            ("env".to_string(), "test".to_string()),
        ])),
    })
    .await
    .expect("tags");
    c.increase_stream_retention_period(&RetentionPeriodInput {
        stream: stream("meta"),
        retention_period_hours: Some(48),
    })
    .await
    .expect("retention");
    let before = put_batch(
        &c,
        "meta",
        &(0..10).map(|i| format!("a{i}")).collect::<Vec<_>>(),
    )
    .await;
    // Split shard 0 in half, then merge its upper half with shard 1.
    let shards = list_shards(&c, "meta").await;
    let end0: u128 = shards[0].hash_key_range.ending_hash_key.parse().unwrap();
    c.split_shard(&SplitShardInput {
        stream: stream("meta"),
        shard_to_split: Some("shardId-000000000000".into()),
        new_starting_hash_key: Some((end0 / 2).to_string()),
    })
    .await
    .expect("split");
    c.merge_shards(&MergeShardsInput {
        stream: stream("meta"),
        shard_to_merge: Some("shardId-000000000003".into()),
        adjacent_shard_to_merge: Some("shardId-000000000001".into()),
    })
    .await
    .expect("merge");
    let after = put_batch(
        &c,
        "meta",
        &(0..10).map(|i| format!("b{i}")).collect::<Vec<_>>(),
    )
    .await;
    let summary = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: stream("meta"),
        })
        .await
        .unwrap()
        .stream_description_summary;
    let consumer = c
        .register_stream_consumer(&RegisterStreamConsumerInput {
            stream_arn: Some(summary.stream_arn.clone()),
            consumer_name: Some("app".into()),
        })
        .await
        .expect("register")
        .consumer;
    c.enable_enhanced_monitoring(&EnhancedMonitoringInput {
        stream: stream("meta"),
        shard_level_metrics: Some(vec!["IncomingBytes".into()]),
    })
    .await
    .expect("monitoring");
    let shards_before = list_shards(&c, "meta").await;
    let old_iterator = iterator(&c, "meta", "shardId-000000000004", "TRIM_HORIZON").await;
    // A graceful stop would flush; SIGKILL shows what the disk had.
    broker.kill().await;

    let broker = start(dir.path(), &[]).await;
    let c = broker.client(3);
    let streams = c
        .list_streams(&ListStreamsInput::default())
        .await
        .expect("list streams");
    assert_eq!(streams.stream_names, vec!["meta".to_string()]);
    assert_eq!(list_shards(&c, "meta").await, shards_before);
    let again = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: stream("meta"),
        })
        .await
        .unwrap()
        .stream_description_summary;
    assert_eq!(again.stream_arn, summary.stream_arn);
    assert_eq!(
        again.stream_creation_timestamp,
        summary.stream_creation_timestamp
    );
    assert_eq!(again.retention_period_hours, 48);
    assert_eq!(again.open_shard_count, 2);
    assert_eq!(again.stream_status, "ACTIVE");
    assert_eq!(
        again.enhanced_monitoring[0].shard_level_metrics,
        vec!["IncomingBytes".to_string()]
    );
    let tags = c
        .list_tags_for_stream(&ListTagsForStreamInput {
            stream: stream("meta"),
            ..Default::default()
        })
        .await
        .unwrap()
        .tags;
    assert_eq!(tags.len(), 2);
    let consumers = c
        .list_stream_consumers(&ListStreamConsumersInput {
            stream_arn: Some(summary.stream_arn.clone()),
            ..Default::default()
        })
        .await
        .unwrap()
        .consumers;
    assert_eq!(consumers.len(), 1);
    assert_eq!(consumers[0].consumer_arn, consumer.consumer_arn);
    assert_eq!(consumers[0].consumer_status, "ACTIVE");
    // The iterator handed out before the restart still reads (the key is on disk).
    let via_old = drain(&c, old_iterator).await;
    let all = read_stream(&c, "meta").await;
    assert_eq!(via_old, all["shardId-000000000004"]);
    let mut seqs: Vec<String> = all.values().flatten().map(|(s, _)| s.clone()).collect();
    seqs.sort_by_key(|s| counter_of(s));
    let mut want: Vec<String> = before.iter().chain(&after).cloned().collect();
    want.sort_by_key(|s| counter_of(s));
    assert_eq!(seqs, want);
    // Resharding goes on after the restart with fresh indexes and higher numbers.
    c.split_shard(&SplitShardInput {
        stream: stream("meta"),
        shard_to_split: Some("shardId-000000000002".into()),
        new_starting_hash_key: Some((end0 / 4).to_string()),
    })
    .await
    .expect("split after restart");
    let shards = list_shards(&c, "meta").await;
    assert_eq!(shards.last().unwrap().shard_id, "shardId-000000000006");
    let highest_end = shards
        .iter()
        .filter_map(|s| s.sequence_number_range.ending_sequence_number.as_deref())
        .map(counter_of)
        .max()
        .unwrap();
    let next = put_batch(&c, "meta", &["c0".to_string()]).await;
    assert!(counter_of(&next[0]) > highest_end);
    broker.kill().await;
}

/// Every record of a shard from TRIM_HORIZON: (data, EncryptionType).
async fn encryption_of_records(client: &Client, name: &str, shard: &str) -> Vec<(String, String)> {
    let it = iterator(client, name, shard, "TRIM_HORIZON").await;
    let page = client
        .get_records(&GetRecordsInput {
            shard_iterator: Some(it),
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .expect("get records");
    page.records
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.data.0.to_vec()).expect("utf-8 payload"),
                r.encryption_type.unwrap_or_default(),
            )
        })
        .collect()
}

async fn status(client: &Client, name: &str) -> StreamStatus {
    client
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: stream(name),
        })
        .await
        .expect("describe")
        .stream_description_summary
        .stream_status
}

#[tokio::test]
async fn a_reshard_accepted_before_a_kill_is_carried_out_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Updates take ten minutes: every reshard below is still pending at the kill.
    let broker = start(dir.path(), &["--update-delay-ms", "600000"]).await;
    let c = broker.client(3);
    for (name, shards) in [("split", 2), ("merge", 2), ("scale", 1), ("enc", 1)] {
        create(&c, name, shards).await;
    }
    let payloads = |p: &str| (0..20).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    for name in ["split", "merge", "scale"] {
        put_batch(&c, name, &payloads("a")).await;
    }
    let shards = list_shards(&c, "split").await;
    let end0: u128 = shards[0].hash_key_range.ending_hash_key.parse().unwrap();
    c.split_shard(&SplitShardInput {
        stream: stream("split"),
        shard_to_split: Some("shardId-000000000000".into()),
        new_starting_hash_key: Some((end0 / 2).to_string()),
    })
    .await
    .expect("split accepted");
    c.merge_shards(&MergeShardsInput {
        stream: stream("merge"),
        shard_to_merge: Some("shardId-000000000000".into()),
        adjacent_shard_to_merge: Some("shardId-000000000001".into()),
    })
    .await
    .expect("merge accepted");
    c.update_shard_count(&UpdateShardCountInput {
        stream: stream("scale"),
        target_shard_count: Some(2),
        scaling_type: Some("UNIFORM_SCALING".into()),
    })
    .await
    .expect("rescale accepted");
    // A record keeps the encryption it was written with, across the restart too.
    put_batch(&c, "enc", &["plain".to_string()]).await;
    c.start_stream_encryption(&StreamEncryptionInput {
        stream: stream("enc"),
        encryption_type: Some("KMS".into()),
        key_id: Some("alias/aws/kinesis".into()),
    })
    .await
    .expect("start encryption");
    put_batch(&c, "enc", &["sealed".to_string()]).await;
    for name in ["split", "merge", "scale", "enc"] {
        assert_eq!(status(&c, name).await, "UPDATING", "{name}");
    }
    // Written while UPDATING: to the shards as they were.
    assert_eq!(list_shards(&c, "split").await.len(), 2);
    for name in ["split", "merge", "scale"] {
        put_batch(&c, name, &payloads("b")).await;
    }
    broker.kill().await;

    let broker = start(dir.path(), &[]).await;
    let c = broker.client(3);
    let shape = |shards: &[Shard]| -> Vec<(String, Option<String>, Option<String>, bool)> {
        shards
            .iter()
            .map(|s| {
                (
                    s.shard_id.clone(),
                    s.parent_shard_id.clone(),
                    s.adjacent_parent_shard_id.clone(),
                    s.sequence_number_range.ending_sequence_number.is_some(),
                )
            })
            .collect()
    };
    let id = |i: u32| format!("shardId-{i:012}");
    assert_eq!(
        shape(&list_shards(&c, "split").await),
        vec![
            (id(0), None, None, true),
            (id(1), None, None, false),
            (id(2), Some(id(0)), None, false),
            (id(3), Some(id(0)), None, false),
        ],
        "the split was carried out at start-up"
    );
    assert_eq!(
        shape(&list_shards(&c, "merge").await),
        vec![
            (id(0), None, None, true),
            (id(1), None, None, true),
            (id(2), Some(id(0)), Some(id(1)), false),
        ],
        "the merge was carried out at start-up"
    );
    let scaled = list_shards(&c, "scale").await;
    let open: Vec<_> = scaled
        .iter()
        .filter(|s| s.sequence_number_range.ending_sequence_number.is_none())
        .collect();
    assert_eq!(open.len(), 2, "the rescale was carried out: {scaled:#?}");
    for name in ["split", "merge", "scale", "enc"] {
        assert_eq!(status(&c, name).await, "ACTIVE", "{name}");
    }
    // Everything acknowledged before the kill is there; new records go to the children.
    for name in ["split", "merge", "scale"] {
        put_batch(&c, name, &payloads("c")).await;
        let read = read_stream(&c, name).await;
        let mut seen: Vec<String> = read
            .values()
            .flatten()
            .map(|(_, d)| String::from_utf8(d.clone()).unwrap())
            .collect();
        seen.sort();
        let mut want: Vec<String> = ["a", "b", "c"].iter().flat_map(|p| payloads(p)).collect();
        want.sort();
        assert_eq!(seen, want, "{name}: every record once");
        let closed = list_shards(&c, name).await;
        for s in closed
            .iter()
            .filter(|s| s.sequence_number_range.ending_sequence_number.is_some())
        {
            let on_parent = &read[&s.shard_id];
            assert!(
                on_parent.iter().all(|(_, d)| !d.starts_with(b"c")),
                "{name}: a record written after the reshard reached closed {}",
                s.shard_id
            );
        }
    }
    assert_eq!(
        encryption_of_records(&c, "enc", &id(0)).await,
        vec![
            ("plain".to_string(), "NONE".to_string()),
            ("sealed".to_string(), "KMS".to_string()),
        ]
    );
    // The completed reshard is saved: a second restart shows the same shards.
    let before = list_shards(&c, "split").await;
    broker.kill().await;
    let broker = start(dir.path(), &[]).await;
    assert_eq!(list_shards(&broker.client(3), "split").await, before);
    broker.kill().await;
}
