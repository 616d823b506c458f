//! Per-shard throughput limits, control-plane limits, `/metrics` and fault
//! injection, seen through the official AWS SDK (without retries, so the
//! SDK hides no throttle).
//!
//! The rate scenarios run against the wall clock. They are kept robust by
//! asserting what the token buckets guarantee whatever the timing (a bucket
//! never admits more than its burst plus its rate times the elapsed time, and
//! a full bucket always admits its burst) plus generous bands, and by retrying
//! a burst scenario on a fresh shard when the machine stalled long enough for
//! a token to refill.

mod common;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use kinesis_broker::fault::{FaultInjector, FaultOutcome, FaultPlan};
use kinesis_broker::limiter::{LimitProfile, LimitsConfig};
use kinesis_broker::{BrokerConfig, RunningBroker};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACCOUNT: &str = "000000000000";
const SHARD0: &str = "shardId-000000000000";
const PTE: &str = "ProvisionedThroughputExceededException";

async fn broker_with(limits: LimitsConfig) -> RunningBroker {
    common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limits(limits)
            .build(),
    )
    .await
}

fn throttle_message(shard: &str, stream: &str) -> String {
    format!("Rate exceeded for shard {shard} in stream {stream} under account {ACCOUNT}.")
}

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.expect("write head");
        tcp.write_all(body.as_bytes()).await.expect("write body");
        let mut buf = Vec::new();
        tcp.read_to_end(&mut buf).await.expect("read response");
        let text = String::from_utf8(buf).expect("utf-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status");
        (status, body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the broker answered within 10 s")
}

/// The Prometheus text at `/metrics`, as (name, labels) → value.
async fn scrape(broker: &RunningBroker) -> Metrics {
    let (status, text) = http(broker.local_addr(), "GET", "/metrics", "").await;
    assert_eq!(status, 200, "{text}");
    let mut series = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (key, value) = line.rsplit_once(' ').expect("name and value");
        let (name, labels) = match key.split_once('{') {
            Some((name, rest)) => {
                let labels: BTreeMap<String, String> = rest
                    .trim_end_matches('}')
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once("=\"").expect("label=\"value\"");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
            None => (key.to_string(), BTreeMap::new()),
        };
        series.insert((name, labels), value.parse::<f64>().expect("a number"));
    }
    Metrics(series)
}

struct Metrics(BTreeMap<(String, BTreeMap<String, String>), f64>);

impl Metrics {
    /// The value of the series with exactly these labels, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0.get(&(name.to_string(), labels)).copied()
    }

    /// A per-shard counter; a missing series is a test failure.
    fn shard(&self, name: &str, stream: &str, shard: &str) -> u64 {
        self.get(name, &[("stream", stream), ("shard", shard)])
            .unwrap_or_else(|| panic!("no {name} series for {stream}/{shard}")) as u64
    }

    fn requests(&self, operation: &str, outcome: &str) -> u64 {
        self.get(
            "kinesis_requests_total",
            &[("operation", operation), ("outcome", outcome)],
        )
        .unwrap_or(0.0) as u64
    }
}

/// What a run of paced PutRecords calls saw.
#[derive(Debug, Default)]
struct PutTally {
    calls: u64,
    calls_with_success: u64,
    succeeded: u64,
    throttled: u64,
    sequence_numbers: Vec<String>,
    elapsed: Duration,
}

/// Offer `batches` PutRecords calls of `per_batch` records of `data_len`
/// bytes (partition key "k"), one every `every`, to a one-shard stream.
/// Every failed entry must be a throttle with the service's exact text.
async fn offer(
    client: &Client,
    stream: &str,
    batches: usize,
    per_batch: usize,
    data_len: usize,
    every: Duration,
) -> PutTally {
    let mut tally = PutTally::default();
    let entries: Vec<PutRecordsRequestEntry> = (0..per_batch)
        .map(|_| {
            PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(Blob::new(vec![b'x'; data_len]))
                .build()
                .expect("entry")
        })
        .collect();
    let mut tick = tokio::time::interval(every);
    // A late tick is sent at once, so the offered rate holds over the run.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for _ in 0..batches {
        tick.tick().await;
        let out = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries.clone()))
            .send()
            .await
            .expect("PutRecords answers 200 even when records are throttled");
        tally.calls += 1;
        let mut failed = 0;
        let mut ok = 0;
        for r in out.records() {
            match r.error_code() {
                None => {
                    ok += 1;
                    assert_eq!(r.shard_id(), Some(SHARD0));
                    tally
                        .sequence_numbers
                        .push(r.sequence_number().expect("a sequence number").to_string());
                }
                Some(code) => {
                    failed += 1;
                    assert_eq!(code, PTE);
                    assert_eq!(
                        r.error_message(),
                        Some(throttle_message(SHARD0, stream).as_str())
                    );
                    assert_eq!(r.sequence_number(), None);
                }
            }
        }
        assert_eq!(out.records().len(), per_batch);
        assert_eq!(out.failed_record_count(), Some(failed as i32));
        tally.succeeded += ok;
        tally.throttled += failed;
        if ok > 0 {
            tally.calls_with_success += 1;
        }
    }
    tally.elapsed = started.elapsed();
    tally
}

/// Every record of a one-shard stream, read with one iterator.
async fn read_all(client: &Client, stream: &str) -> Vec<String> {
    let it = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(SHARD0)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("iterator");
    let got = client
        .get_records()
        .shard_iterator(it.shard_iterator().expect("an iterator"))
        .send()
        .await
        .expect("get records");
    got.records()
        .iter()
        .map(|r| r.sequence_number().to_string())
        .collect()
}

/// 2000 records/s for 3 s to one shard (1000 records/s, 1 s burst): the
/// burst passes the first second whole, then half is refused, so a third of
/// all records is throttled; the counters at `/metrics` match exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twice_the_record_rate_throttles_the_excess_per_record() {
    let broker = broker_with(LimitsConfig::uniform(LimitProfile::Aws)).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    common::create_active_stream(&client, "rate", 1).await;
    // 250 records every 125 ms = 2000 records/s, 24 calls = 3 s.
    let t = offer(&client, "rate", 24, 250, 10, Duration::from_millis(125)).await;
    eprintln!(
        "2000 records/s: {} accepted, {} throttled in {:?}",
        t.succeeded, t.throttled, t.elapsed
    );
    let offered = 24 * 250;
    assert_eq!(t.succeeded + t.throttled, offered);
    let fraction = t.throttled as f64 / offered as f64;
    assert!(
        (0.2..=0.6).contains(&fraction),
        "throttled {} of {offered} ({fraction:.2}) in {:?}",
        t.throttled,
        t.elapsed
    );
    // What a 1000/s bucket with a 1 s burst can admit in the elapsed time.
    let ceiling = 1000.0 * (1.0 + t.elapsed.as_secs_f64()) + 1.0;
    assert!(
        (t.succeeded as f64) <= ceiling,
        "admitted {} in {:?}",
        t.succeeded,
        t.elapsed
    );
    assert!(t.succeeded >= 1000, "the 1 s burst always passes");

    // Throttled records were not stored; accepted ones were, in order.
    assert_eq!(read_all(&client, "rate").await, t.sequence_numbers);

    let m = scrape(&broker).await;
    let s = |name| m.shard(name, "rate", SHARD0);
    assert_eq!(s("kinesis_incoming_records_total"), t.succeeded);
    assert_eq!(s("kinesis_incoming_bytes_total"), t.succeeded * 11);
    assert_eq!(s("kinesis_put_records_success_total"), t.calls_with_success);
    assert_eq!(
        s("kinesis_put_records_throttled_records_total"),
        t.throttled
    );
    assert_eq!(s("kinesis_put_records_failed_records_total"), 0);
    assert_eq!(
        s("kinesis_write_provisioned_throughput_exceeded_total"),
        t.throttled
    );
    assert_eq!(s("kinesis_put_record_success_total"), 0);
    assert_eq!(s("kinesis_get_records_success_total"), 1);
    assert_eq!(s("kinesis_get_records_records_total"), t.succeeded);
    assert_eq!(s("kinesis_get_records_bytes_total"), t.succeeded * 11);
    assert_eq!(s("kinesis_read_provisioned_throughput_exceeded_total"), 0);
    assert_eq!(m.requests("PutRecords", "Success"), t.calls);
    assert_eq!(m.requests("CreateStream", "Success"), 1);
    assert_eq!(m.requests("GetRecords", "Success"), 1);
    assert_eq!(
        m.get(
            "kinesis_request_duration_seconds_count",
            &[("operation", "PutRecords")]
        ),
        Some(t.calls as f64)
    );
    // At least the scraping connection is open, and it was counted.
    assert!(m.get("kinesis_open_connections", &[]).unwrap_or(0.0) >= 1.0);
    assert!(m.get("kinesis_connections_total", &[]).unwrap_or(0.0) >= 1.0);
    broker.shutdown().await;
}

/// The same offer with `--limits off` throttles nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_is_throttled_with_limits_off() {
    let broker = broker_with("off".parse().expect("profile")).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    common::create_active_stream(&client, "free", 1).await;
    let t = offer(&client, "free", 24, 250, 10, Duration::from_millis(125)).await;
    assert_eq!(t.throttled, 0);
    assert_eq!(t.succeeded, 6000);
    let m = scrape(&broker).await;
    assert_eq!(
        m.shard("kinesis_incoming_records_total", "free", SHARD0),
        6000
    );
    assert_eq!(
        m.shard(
            "kinesis_write_provisioned_throughput_exceeded_total",
            "free",
            SHARD0
        ),
        0
    );
    broker.shutdown().await;
}

/// A per-stream override: `aws,bulk:off` throttles only the other streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_stream_profile_overrides_the_default() {
    let broker = broker_with("aws,bulk:off".parse().expect("limits")).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    common::create_active_stream(&client, "bulk", 1).await;
    let bulk = offer(&client, "bulk", 3, 500, 10, Duration::from_millis(1)).await;
    assert_eq!(bulk.throttled, 0);
    // 3 × 500 records at once are over the 1000-record burst unless the
    // three calls take half a second; try fresh streams if the machine stalls.
    for attempt in 0..3 {
        let stream = format!("capped-{attempt}");
        common::create_active_stream(&client, &stream, 1).await;
        let capped = offer(&client, &stream, 3, 500, 10, Duration::from_millis(1)).await;
        assert!(capped.succeeded >= 1000, "{capped:?}");
        if capped.elapsed < Duration::from_millis(450) {
            assert!(capped.throttled > 0, "{capped:?}");
            broker.shutdown().await;
            return;
        }
    }
    panic!("the machine stalled for 450 ms on every attempt");
}

/// 1.5 MiB/s of 10 KiB records (150 records/s, far below the record limit)
/// is throttled on bytes: no more than 1 MiB/s plus the 1 MiB burst passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_and_a_half_mib_per_second_is_throttled_on_bytes() {
    let broker = broker_with(LimitsConfig::default()).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    common::create_active_stream(&client, "bytes", 1).await;
    // 15 records of 10 KiB (data + 1-byte key) every 100 ms for 4 s.
    let record = 10 * 1024u64;
    let t = offer(
        &client,
        "bytes",
        40,
        15,
        record as usize - 1,
        Duration::from_millis(100),
    )
    .await;
    let mib = 1024.0 * 1024.0;
    let admitted = t.succeeded * record;
    eprintln!(
        "1.5 MiB/s: {} records accepted ({admitted} B), {} throttled in {:?}",
        t.succeeded, t.throttled, t.elapsed
    );
    let ceiling = mib * (1.0 + t.elapsed.as_secs_f64()) + record as f64;
    assert!(
        (admitted as f64) <= ceiling,
        "{admitted} bytes admitted in {:?}",
        t.elapsed
    );
    assert!(
        t.throttled > 0,
        "6 MiB offered in {:?}: some must be refused",
        t.elapsed
    );
    assert!(admitted as f64 >= mib, "the 1 MiB burst always passes");
    let m = scrape(&broker).await;
    assert_eq!(
        m.shard("kinesis_incoming_bytes_total", "bytes", SHARD0),
        admitted
    );
    assert_eq!(
        m.shard(
            "kinesis_put_records_throttled_records_total",
            "bytes",
            SHARD0
        ),
        t.throttled
    );
    broker.shutdown().await;
}

/// A single PutRecord over the budget is refused whole, with the service's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_record_over_the_budget_is_refused() {
    let broker = broker_with(LimitsConfig::default()).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    // Spend the 1 MiB burst with one record of exactly 1 MiB (data + key);
    // a 900 KiB record then needs 900 ms of refill. Try fresh streams if the
    // machine stalls that long (signing a megabyte is slow in debug builds).
    let mut throttles = 0;
    for attempt in 0..3 {
        let stream = format!("single-{attempt}");
        common::create_active_stream(&client, &stream, 1).await;
        let put = |len: usize| {
            client
                .put_record()
                .stream_name(&stream)
                .partition_key("k")
                .data(Blob::new(vec![0u8; len]))
                .send()
        };
        let started = Instant::now();
        put(1024 * 1024 - 1)
            .await
            .expect("a full bucket admits one record of the whole burst");
        let second = put(900 * 1024).await;
        throttles += u64::from(second.is_err());
        if started.elapsed() >= Duration::from_millis(850) {
            continue;
        }
        let err = second.expect_err("no budget left");
        let service = err.as_service_error().expect("a service error");
        assert!(service.is_provisioned_throughput_exceeded_exception());
        assert_eq!(
            service.message(),
            Some(throttle_message(SHARD0, &stream).as_str())
        );
        let m = scrape(&broker).await;
        let s = |name| m.shard(name, &stream, SHARD0);
        assert_eq!(s("kinesis_put_record_success_total"), 1);
        assert_eq!(s("kinesis_incoming_bytes_total"), 1024 * 1024);
        assert_eq!(s("kinesis_write_provisioned_throughput_exceeded_total"), 1);
        assert_eq!(m.requests("PutRecord", PTE), throttles);
        broker.shutdown().await;
        return;
    }
    panic!("the machine stalled for 850 ms on every attempt");
}

/// Runs `burst` quick calls (all admitted by a full bucket) and one more;
/// returns the last call's result and whether it came before `refill`
/// elapsed (otherwise the machine stalled and a token may have refilled).
async fn burst_then_one<T, E, F, Fut>(
    burst: usize,
    refill: Duration,
    mut call: F,
) -> (Result<T, E>, bool)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    let started = Instant::now();
    for i in 0..burst {
        if let Err(e) = call().await {
            panic!("call {} of a full bucket was refused: {e:?}", i + 1);
        }
    }
    let last = call().await;
    (last, started.elapsed() < refill)
}

/// The sixth GetRecords call within a second on one shard is throttled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixth_get_records_within_a_second_is_throttled() {
    let broker = broker_with(LimitsConfig::default()).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    common::create_active_stream(&client, "reads", 3).await;
    let mut earlier = 0;
    // Try each shard in turn in case the machine stalls for a refill (200 ms).
    for index in 0..3 {
        let shard = format!("shardId-00000000000{index}");
        let it = client
            .get_shard_iterator()
            .stream_name("reads")
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator()
            .expect("an iterator")
            .to_string();
        let sixth = burst_then_one(5, Duration::from_millis(200), || {
            client.get_records().shard_iterator(&it).send()
        })
        .await;
        let (sixth, in_time) = sixth;
        if !in_time {
            earlier += u64::from(sixth.is_err());
            continue;
        }
        let err = sixth.expect_err("the sixth call within a second is refused");
        let service = err.as_service_error().expect("a service error");
        assert!(
            service.is_provisioned_throughput_exceeded_exception(),
            "{service:?}"
        );
        assert_eq!(
            service.message(),
            Some(throttle_message(&shard, "reads").as_str())
        );
        let m = scrape(&broker).await;
        assert_eq!(
            m.shard("kinesis_get_records_success_total", "reads", &shard),
            5
        );
        assert_eq!(
            m.shard(
                "kinesis_read_provisioned_throughput_exceeded_total",
                "reads",
                &shard
            ),
            1
        );
        assert_eq!(m.requests("GetRecords", PTE), earlier + 1);
        broker.shutdown().await;
        return;
    }
    panic!("the machine stalled for 200 ms on every attempt");
}

/// GetShardIterator is limited to 5 calls/s per shard too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixth_get_shard_iterator_within_a_second_is_throttled() {
    let broker = broker_with(LimitsConfig::default()).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    common::create_active_stream(&client, "iters", 3).await;
    for index in 0..3 {
        let shard = format!("shardId-00000000000{index}");
        let sixth = burst_then_one(5, Duration::from_millis(200), || {
            client
                .get_shard_iterator()
                .stream_name("iters")
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::Latest)
                .send()
        })
        .await;
        let (sixth, in_time) = sixth;
        if !in_time {
            continue;
        }
        let err = sixth.expect_err("the sixth call within a second is refused");
        let service = err.as_service_error().expect("a service error");
        assert!(
            service.is_provisioned_throughput_exceeded_exception(),
            "{service:?}"
        );
        assert_eq!(
            service.message(),
            Some(throttle_message(&shard, "iters").as_str())
        );
        broker.shutdown().await;
        return;
    }
    panic!("the machine stalled for 200 ms on every attempt");
}

/// Control-plane calls over their TPS get LimitExceededException
/// (CreateStream: 5 per second per account).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixth_create_stream_within_a_second_is_limited() {
    let broker = broker_with(LimitsConfig::default()).await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    let mut earlier = 0;
    for attempt in 0..3 {
        let mut n = 0;
        let sixth = burst_then_one(5, Duration::from_millis(200), || {
            n += 1;
            client
                .create_stream()
                .stream_name(format!("cp-{attempt}-{n}"))
                .shard_count(1)
                .send()
        })
        .await;
        let (sixth, in_time) = sixth;
        if !in_time {
            earlier += u64::from(sixth.is_err());
            // Let the bucket fill up again before the next attempt.
            tokio::time::sleep(Duration::from_millis(1100)).await;
            continue;
        }
        let err = sixth.expect_err("the sixth CreateStream within a second is refused");
        let service = err.as_service_error().expect("a service error");
        assert!(service.is_limit_exceeded_exception(), "{service:?}");
        assert_eq!(
            service.message(),
            Some(
                format!("Rate exceeded for operation CreateStream under account {ACCOUNT}.")
                    .as_str()
            )
        );
        let m = scrape(&broker).await;
        assert_eq!(
            m.requests("CreateStream", "LimitExceededException"),
            earlier + 1
        );
        broker.shutdown().await;
        return;
    }
    panic!("the machine stalled for 200 ms on every attempt");
}

/// `/health` answers, and `/admin/faults` shows, replaces and rejects plans.
#[tokio::test]
async fn health_and_admin_endpoints() {
    let broker = common::start_broker().await;
    let addr = broker.local_addr();
    assert_eq!(
        http(addr, "GET", "/health", "").await,
        (200, "ok\n".to_string())
    );
    let (status, body) = http(addr, "GET", "/admin/faults", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        FaultPlan::from_json(&body).expect("a plan"),
        FaultPlan::none()
    );
    let plan = r#"{"seed": 9, "rules": [{"operation": "ListStreams", "latency_ms": 5}]}"#;
    let (status, body) = http(addr, "PUT", "/admin/faults", plan).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = http(addr, "GET", "/admin/faults", "").await;
    assert_eq!(
        FaultPlan::from_json(&body).expect("a plan"),
        FaultPlan::from_json(plan).expect("a plan")
    );
    let (status, body) = http(
        addr,
        "PUT",
        "/admin/faults",
        r#"{"rules": [{"operation": "NoSuchOperation", "error_rate": 1}]}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("NoSuchOperation"), "{body}");
    // A rejected plan leaves the previous one in force.
    let (_, body) = http(addr, "GET", "/admin/faults", "").await;
    assert_eq!(FaultPlan::from_json(&body).expect("a plan").seed, 9);
    let (status, _) = http(addr, "DELETE", "/admin/faults", "").await;
    assert_eq!(status, 200);
    let (_, body) = http(addr, "GET", "/admin/faults", "").await;
    assert_eq!(
        FaultPlan::from_json(&body).expect("a plan"),
        FaultPlan::none()
    );
    broker.shutdown().await;
}

/// A broker with limits off, the given fault plan, and a stream "f".
async fn faulty_broker(plan: &str) -> (RunningBroker, Client) {
    let broker = common::start_broker_with(
        BrokerConfig::builder()
            .port(0)
            .state_delays(Duration::ZERO)
            .limit_profile(LimitProfile::Off)
            .faults(FaultPlan::from_json(plan).expect("plan"))
            .build(),
    )
    .await;
    let client = common::sdk_client_no_retry(&broker.endpoint());
    common::create_active_stream(&client, "f", 1).await;
    (broker, client)
}

async fn put_one(
    client: &Client,
) -> Result<String, SdkError<aws_sdk_kinesis::operation::put_record::PutRecordError>> {
    client
        .put_record()
        .stream_name("f")
        .partition_key("k")
        .data(Blob::new("v"))
        .send()
        .await
        .map(|o| o.sequence_number().to_string())
}

/// Each injected error type reaches the SDK as that error, with its status.
#[tokio::test]
async fn injected_errors_reach_the_sdk_as_configured() {
    for (error, code, status) in [
        ("InternalFailure", "InternalFailureException", 500),
        ("ServiceUnavailable", "ServiceUnavailable", 503),
        (PTE, PTE, 400),
        ("KMSThrottlingException", "KMSThrottlingException", 400),
    ] {
        let plan = format!(
            r#"{{"rules": [{{"operation": "PutRecord", "error_rate": 1.0, "error": "{error}"}}]}}"#
        );
        let (broker, client) = faulty_broker(&plan).await;
        let err = put_one(&client).await.expect_err("an injected failure");
        let SdkError::ServiceError(service) = &err else {
            panic!("{error}: expected a service error, got {err:?}");
        };
        assert_eq!(service.raw().status().as_u16(), status, "{error}");
        assert_eq!(err.code(), Some(code), "{error}");
        assert!(
            err.message()
                .is_some_and(|m| m.contains("(injected fault)"))
        );
        let modeled = service.err();
        match error {
            PTE => assert!(modeled.is_provisioned_throughput_exceeded_exception()),
            "KMSThrottlingException" => assert!(modeled.is_kms_throttling_exception()),
            _ => {}
        }
        // The call never reached the operation.
        assert!(read_all(&client, "f").await.is_empty(), "{error}");
        let m = scrape(&broker).await;
        assert_eq!(m.requests("PutRecord", code), 1, "{error}");
        broker.shutdown().await;
    }
}

/// Injected latency delays the answer by at least the configured time.
#[tokio::test]
async fn injected_latency_delays_the_answer() {
    let (broker, client) =
        faulty_broker(r#"{"rules": [{"operation": "PutRecord", "latency_ms": 300}]}"#).await;
    let started = Instant::now();
    put_one(&client).await.expect("a delayed success");
    assert!(started.elapsed() >= Duration::from_millis(300));
    broker.shutdown().await;
}

/// An injected reset cuts the response off: the SDK sees a transport error,
/// not a service error, although the record was stored.
#[tokio::test]
async fn injected_reset_is_a_transport_error() {
    let (broker, client) =
        faulty_broker(r#"{"rules": [{"operation": "PutRecord", "reset_rate": 1.0}]}"#).await;
    let err = put_one(&client).await.expect_err("a reset");
    assert!(
        matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        ),
        "expected a transport error, got {err:?}"
    );
    assert_eq!(read_all(&client, "f").await.len(), 1);
    let m = scrape(&broker).await;
    assert_eq!(m.requests("PutRecord", "ConnectionReset"), 1);
    broker.shutdown().await;
}

/// A reset on SubscribeToShard cuts the event stream after its initial
/// response: the SDK's receiver fails with a transport error, not a clean end.
#[tokio::test]
async fn injected_reset_cuts_a_subscription() {
    use aws_sdk_kinesis::types::StartingPosition;
    let (broker, client) =
        faulty_broker(r#"{"rules": [{"operation": "SubscribeToShard", "reset_rate": 1.0}]}"#).await;
    put_one(&client).await.expect("a record to push");
    let consumer_arn = client
        .register_stream_consumer()
        .stream_arn(broker.service().stream_arn("f"))
        .consumer_name("reset")
        .send()
        .await
        .expect("register")
        .consumer()
        .expect("consumer")
        .consumer_arn()
        .to_string();
    let subscribed = client
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id(SHARD0)
        .starting_position(
            StartingPosition::builder()
                .r#type(ShardIteratorType::TrimHorizon)
                .build()
                .expect("position"),
        )
        .send()
        .await;
    let failure = match subscribed {
        Err(e) => format!("{e:?}"),
        Ok(mut out) => {
            let mut failure = None;
            for _ in 0..100 {
                match out.event_stream.recv().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("the event stream ended cleanly"),
                    Err(e) => {
                        assert!(
                            !matches!(e, SdkError::ServiceError(_)),
                            "expected a transport error, got {e:?}"
                        );
                        failure = Some(format!("{e:?}"));
                        break;
                    }
                }
            }
            failure.expect("the subscription failed within 100 events")
        }
    };
    assert!(!failure.is_empty());
    let m = scrape(&broker).await;
    assert_eq!(m.requests("SubscribeToShard", "ConnectionReset"), 1);
    broker.shutdown().await;
}

/// What one PutRecord call ended in, comparably.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Ok,
    Error(String),
    Transport,
}

async fn fifty_puts(client: &Client) -> Vec<Seen> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen.push(match put_one(client).await {
            Ok(_) => Seen::Ok,
            Err(SdkError::ServiceError(e)) => {
                Seen::Error(e.err().code().unwrap_or_default().to_string())
            }
            Err(_) => Seen::Transport,
        });
    }
    seen
}

/// The same seed gives the same sequence of faults: predicted by the
/// injector alone, on a broker started with the plan, and after the plan is
/// put again at run time.
#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let plan = r#"{"seed": 42, "rules": [{"operation": "PutRecord", "error_rate": 0.3, "error": "ServiceUnavailable", "reset_rate": 0.2}]}"#;
    let injector = FaultInjector::new(FaultPlan::from_json(plan).expect("plan"));
    let predicted: Vec<Seen> = (0..50)
        .map(|_| match injector.decide("PutRecord").outcome {
            FaultOutcome::Proceed => Seen::Ok,
            FaultOutcome::Fail(e) => Seen::Error(e.code.as_str().to_string()),
            FaultOutcome::ResetConnection => Seen::Transport,
        })
        .collect();
    for kind in [
        Seen::Ok,
        Seen::Transport,
        Seen::Error("ServiceUnavailable".into()),
    ] {
        assert!(predicted.contains(&kind), "seed 42 never gives {kind:?}");
    }

    let (broker, client) = faulty_broker(plan).await;
    assert_eq!(fifty_puts(&client).await, predicted);
    // Other operations draw from their own streams and change nothing.
    client.list_streams().send().await.expect("list streams");
    let (status, _) = http(broker.local_addr(), "PUT", "/admin/faults", plan).await;
    assert_eq!(status, 200);
    assert_eq!(fifty_puts(&client).await, predicted);

    let other = plan.replace("42", "43");
    let (status, _) = http(broker.local_addr(), "PUT", "/admin/faults", &other).await;
    assert_eq!(status, 200);
    assert_ne!(fifty_puts(&client).await, predicted);
    broker.shutdown().await;
}
