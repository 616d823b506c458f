//! The Grafana dashboards in `docs/grafana/` chart only metrics the code
//! exports: a broker, a kpl producer and two kcl schedulers (polling and
//! enhanced fan-out) run real traffic, then every metric named in a
//! dashboard's queries must appear in what that component exposes.

mod common;

use kinesis_broker::BrokerConfig;
use kinesis_broker::limiter::LimitProfile;
use kinesis_kcl::checkpointer::RecordProcessorCheckpointer;
use kinesis_kcl::config::{Config as KclConfig, InitialPositionInStream};
use kinesis_kcl::lease_store::InMemoryLeaseStore;
use kinesis_kcl::scheduler::Scheduler;
use kinesis_kcl::shard_record_processor::{
    InitializationInput, ProcessRecordsInput, ShardRecordProcessor,
};
use kinesis_kpl::{Config as KplConfig, Producer, Record};
use kinesis_proto::client::{Client, ClientConfig};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{
    CreateStreamInput, GetRecordsInput, GetShardIteratorInput, PutRecordsInput,
    PutRecordsRequestEntry, StreamRef,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const STREAM: &str = "dashboards";
const RECORDS: usize = 200;

/// PromQL words that are not metric names: keywords, and aggregations
/// (which may be followed by `by (...)` rather than their parenthesis).
const PROMQL_WORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names a PromQL expression selects: identifiers that are not
/// functions, keywords, label names or values, or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Drop label matchers, range selectors and strings first.
    let mut plain = String::new();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' if depth_brace == 0 => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            c => plain.push(c),
        }
        if matches!(c, '}' | ']') {
            plain.push(' ');
        }
    }
    let chars: Vec<char> = plain.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            let lower = word.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) {
                // The label list that follows is not metrics.
                skip_group = true;
            } else if next == Some(&'(') || PROMQL_WORDS.contains(&lower.as_str()) {
                // A function or aggregation.
            } else {
                names.insert(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number (0.99, 10): skip it and any exponent or unit letters.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c == '(' && skip_group {
            skip_group = false;
            while i < chars.len() && chars[i] != ')' {
                i += 1;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    names
}

/// Every metric name every query of a dashboard file selects.
fn dashboard_metrics(file: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/grafana")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("the dashboard file");
    let dash: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"));
    assert!(
        dash["title"].is_string() && dash["uid"].is_string(),
        "{file}"
    );
    let panels = dash["panels"].as_array().expect("panels");
    assert!(!panels.is_empty(), "{file} has panels");
    let mut names = BTreeSet::new();
    for p in panels {
        let targets = p["targets"].as_array().expect("targets");
        assert!(
            !targets.is_empty(),
            "{file}: panel {} has queries",
            p["title"]
        );
        for t in targets {
            let expr = t["expr"].as_str().expect("an expr");
            let found = metric_names(expr);
            assert!(!found.is_empty(), "{file}: no metric in {expr}");
            names.extend(found);
        }
    }
    names
}

/// The series names in a Prometheus text exposition.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn assert_exported(file: &str, text: &str) {
    let have = exported(text);
    let missing: Vec<String> = dashboard_metrics(file)
        .into_iter()
        .filter(|m| !have.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "{file} charts metrics that are not exported: {missing:?}\nexported: {have:?}"
    );
}

#[test]
fn the_query_parser_finds_metric_names() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le, operation) (rate(kinesis_request_duration_seconds_bucket{op=~"a|b"}[$__rate_interval]))) / on(x) foo:bar + 1e3"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["foo:bar", "kinesis_request_duration_seconds_bucket"]
    );
}

/// Counts what it is given and checkpoints.
struct Counter(Arc<AtomicUsize>);

impl ShardRecordProcessor for Counter {
    async fn initialize(&mut self, _input: InitializationInput) {}
    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        cp: &RecordProcessorCheckpointer,
    ) {
        self.0.fetch_add(input.records.len(), Ordering::SeqCst);
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

/// Run a scheduler until it processed every record (and, given `crowded`,
/// until it was throttled: then `crowded` is set); its metrics text.
async fn consume(client: &Client, config: KclConfig, crowded: Option<&AtomicBool>) -> String {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let scheduler = Scheduler::new(
        config,
        client.clone(),
        Arc::new(InMemoryLeaseStore::new()),
        move |_: &str| Counter(Arc::clone(&counter)),
    )
    .expect("a scheduler");
    let metrics = scheduler.metrics().clone();
    let handle = scheduler.shutdown_handle();
    let run = tokio::spawn(scheduler.run());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(flag) = crowded
            && metrics.render().contains("kcl_get_records_throttled_total")
        {
            flag.store(true, Ordering::SeqCst);
        }
        if seen.load(Ordering::SeqCst) >= RECORDS
            && crowded.is_none_or(|f| f.load(Ordering::SeqCst))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduler processed {} records, throttled: {:?}",
            seen.load(Ordering::SeqCst),
            crowded
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.graceful_shutdown().await;
    run.await.expect("join").expect("the scheduler ran");
    metrics.render()
}

/// `GET /metrics` over a fresh connection: the body.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// GetRecords on every shard as fast as answers come, until `stop` (at most
/// a few thousand calls), so a consumer sharing the shards meets throttles.
async fn crowd_reads(client: Client, stop: Arc<AtomicBool>) {
    let mut iterators = Vec::new();
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        let it = client
            .get_shard_iterator(&GetShardIteratorInput {
                stream: StreamRef {
                    stream_name: Some(STREAM.into()),
                    stream_arn: None,
                },
                shard_id: Some(shard.into()),
                shard_iterator_type: Some("LATEST".into()),
                ..Default::default()
            })
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        iterators.push(it);
    }
    for _ in 0..5_000 {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        for it in &iterators {
            // Throttled answers are the point; the iterator stays valid.
            let _ = client
                .get_records(&GetRecordsInput {
                    shard_iterator: Some(it.clone()),
                    ..Default::default()
                })
                .await;
        }
    }
}

fn kcl_config(app: &str) -> kinesis_kcl::config::ConfigBuilder {
    KclConfig::builder(STREAM, app)
        .worker_identifier(format!("{app}-worker"))
        .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
        .lease_taker_interval(Duration::from_millis(200))
        .parent_shard_poll_interval(Duration::from_millis(100))
        .shard_consumer_dispatch_poll_interval(Duration::from_millis(50))
        .shard_sync_interval(Duration::from_millis(500))
        .idle_time_between_reads(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_an_exported_metric() {
    // A fifth of the service's limits, so ordinary traffic meets throttles.
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(LimitProfile::Aws)
            .build(),
    )
    .await;
    let endpoint = broker.endpoint();
    let client = Client::new(ClientConfig::builder().endpoint(&endpoint).build()).expect("client");
    client
        .create_stream(&CreateStreamInput {
            stream_name: Some(STREAM.into()),
            shard_count: Some(2),
            ..Default::default()
        })
        .await
        .expect("CreateStream");
    let stream = StreamRef {
        stream_name: Some(STREAM.into()),
        stream_arn: None,
    };

    // The producer: records that succeed, and some for a stream that does not exist.
    let producer =
        Producer::new(KplConfig::builder().endpoint(&endpoint).seed(3).build()).expect("producer");
    let mut handles = Vec::new();
    for i in 0..RECORDS {
        handles.push(
            producer
                .put(Record::new(
                    STREAM,
                    format!("key-{i}"),
                    format!("record {i}"),
                ))
                .await
                .expect("put"),
        );
    }
    let missing = producer
        .put(Record::new("no-such-stream", "k", "lost"))
        .await
        .expect("put");
    producer.flush().await.expect("flush");
    for h in handles {
        h.await.expect("a record put");
    }
    assert!(missing.await.is_err(), "a missing stream fails the record");
    let kpl_text = producer.metrics().to_text();
    producer.shutdown().await;

    // Writes over a shard's budget: throttled records. Each round sends eight
    // calls at once (4,000 records against 1,000 a second per shard, two
    // shards, a one-second burst), so however slow this machine, the budget
    // runs out.
    let mut throttled = false;
    for round in 0..10 {
        let calls = (0..8).map(|c| {
            let entries = (0..500)
                .map(|i| PutRecordsRequestEntry {
                    data: Some(Blob(bytes::Bytes::from(vec![b'x'; 900]))),
                    partition_key: Some(format!("burst-{round}-{c}-{i}")),
                    explicit_hash_key: None,
                })
                .collect();
            let input = PutRecordsInput {
                stream: stream.clone(),
                records: Some(entries),
            };
            let client = &client;
            async move { client.put_records(&input).await.expect("PutRecords") }
        });
        let outs = futures::future::join_all(calls).await;
        if outs.iter().any(|o| o.failed_record_count > 0) {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "a burst over the write budget is throttled");

    // Two consumer applications: polling, and enhanced fan-out. Another
    // reader crowds the polling one's shards until it is throttled.
    let crowded = Arc::new(AtomicBool::new(false));
    let crowd = tokio::spawn(crowd_reads(client.clone(), Arc::clone(&crowded)));
    let polling_text = consume(
        &client,
        kcl_config("poller").build().expect("config"),
        Some(&crowded),
    )
    .await;
    crowd.await.expect("the crowding reader");
    let fan_out_text = consume(
        &client,
        kcl_config("subscriber")
            .fan_out("dashboards-efo")
            .build()
            .expect("config"),
        None,
    )
    .await;

    // Reads over a shard's call budget.
    let it = client
        .get_shard_iterator(&GetShardIteratorInput {
            stream: stream.clone(),
            shard_id: Some("shardId-000000000000".into()),
            shard_iterator_type: Some("LATEST".into()),
            ..Default::default()
        })
        .await
        .expect("GetShardIterator")
        .shard_iterator;
    let mut read_throttled = false;
    for _ in 0..50 {
        match client
            .get_records(&GetRecordsInput {
                shard_iterator: Some(it.clone()),
                ..Default::default()
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.to_string().contains("ProvisionedThroughputExceeded") => {
                read_throttled = true;
                break;
            }
            Err(e) => panic!("GetRecords: {e}"),
        }
    }
    assert!(read_throttled, "calls over the read budget are throttled");

    let broker_text = scrape(broker.local_addr()).await;

    assert_exported("broker.json", &broker_text);
    assert_exported("kpl.json", &kpl_text);
    assert_exported("kcl.json", &format!("{polling_text}\n{fan_out_text}"));
    broker.shutdown().await;
}
