//! Load test for any Kinesis endpoint: produce through raw PutRecords or the kpl, consume by
//! polling (GetRecords), or both at once, and report throughput, put and put-to-delivery
//! latency (HDR histograms), throttles, errors and the broker's CPU time and peak memory.
//!
//! ```text
//! cargo run --release --bin loadtest -- --produce raw --consume poll --duration 10
//! cargo run --release --bin loadtest -- --endpoint http://127.0.0.1:4567 --broker-pid 1234
//! ```
//!
//! Writes `<out>/<name>.json` (summary and a per-second series) and `<out>/<name>.svg`
//! (throughput and latency over time).

use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use kinesis_broker::limiter::LimitsConfig;
use kinesis_broker::{Broker, BrokerConfig, RunningBroker};
use kinesis_proto::aggregation::deaggregate;
use kinesis_proto::client::{Client, ClientConfig, ClientError, Credentials};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{
    ConsumerRef, CreateStreamInput, DescribeStreamSummaryInput, GetRecordsInput,
    GetShardIteratorInput, PutRecordsInput, PutRecordsRequestEntry, RegisterStreamConsumerInput,
    StartingPosition, StreamRef, SubscribeToShardInput,
};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How records are produced.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Produce {
    /// PutRecords batches from this tool.
    Raw,
    /// `kinesis_kpl::Producer` (aggregation on by default).
    Kpl,
    /// No producers.
    None,
}

/// How records are consumed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Consume {
    /// GetShardIterator + GetRecords polling.
    Poll,
    /// Enhanced fan-out: SubscribeToShard, one subscription per shard.
    Fanout,
    /// No consumers.
    None,
}

/// Command-line parameters.
#[derive(Parser, Debug, Clone)]
#[command(about = "Kinesis load test: throughput, latency, throttles, broker CPU and memory")]
struct Args {
    /// "in-process" starts our broker inside this process; otherwise a URL.
    #[arg(long, default_value = "in-process")]
    endpoint: String,
    /// Pid of an external broker on this machine, for its CPU time and peak memory.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Label for the broker in the report.
    #[arg(long, default_value = "kinesis-broker")]
    broker_name: String,
    /// Producer kind.
    #[arg(long, value_enum, default_value = "raw")]
    produce: Produce,
    /// Consumer kind.
    #[arg(long, value_enum, default_value = "none")]
    consume: Consume,
    /// Shards in the stream.
    #[arg(long, default_value_t = 4)]
    shards: u32,
    /// Concurrent producers (raw: tasks each with its own PutRecords in flight; kpl: producers).
    #[arg(long, default_value_t = 4)]
    producers: usize,
    /// Concurrent polling consumers (shards are split among them).
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    /// Bytes per user record (at least 8: the first 8 carry the send time).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Records per PutRecords call (raw).
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Target user records per second over all producers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Limits profile of the in-process broker: "aws", "off", "scale=<factor>".
    #[arg(long, default_value = "off")]
    limits: String,
    /// Idle time between empty polls (the KCL's idleTimeBetweenReadsInMillis default: 1500).
    #[arg(long, default_value_t = 1500)]
    poll_idle_ms: u64,
    /// Stream name (created if missing).
    #[arg(long)]
    stream: Option<String>,
    /// Output folder for the JSON and the SVG.
    #[arg(long, default_value = "target/loadtest")]
    out: PathBuf,
    /// Scenario name: the file stem of the outputs.
    #[arg(long, default_value = "run")]
    name: String,
    /// Hide the progress bar (for scripts writing logs).
    #[arg(long)]
    quiet: bool,
    /// kpl: per-shard `RateLimit` in percent, adapted to what the shard accepts (default:
    /// no client-side limit, to measure the broker).
    #[arg(long)]
    kpl_rate_limit: Option<u64>,
    /// kpl: with --kpl-rate-limit, send at that fixed rate as the AWS KPL does.
    #[arg(long, requires = "kpl_rate_limit")]
    kpl_fixed_rate: bool,
    /// kpl: one Kinesis record per user record (`AggregationEnabled` false), so the
    /// shards' records/s limit binds before their bytes/s.
    #[arg(long)]
    kpl_no_aggregation: bool,
    /// kpl: PutRecords calls in flight per producer (`MaxConnections`).
    #[arg(long, default_value_t = 4)]
    kpl_max_connections: usize,
}

/// A latency histogram in microseconds, overall and for the current second.
struct Latency {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

impl Latency {
    fn new() -> Latency {
        Latency {
            total: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            interval: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
        }
    }

    fn merge(&mut self, h: &Histogram<u64>) {
        // Values beyond 10 minutes are clamped by saturating add; ignore the error.
        let _ = self.total.add(h);
        let _ = self.interval.add(h);
    }
}

fn local_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// Shared counters of one run.
struct Stats {
    epoch: Instant,
    put_records: AtomicU64,
    put_bytes: AtomicU64,
    delivered: AtomicU64,
    delivered_bytes: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
    /// kpl only: Kinesis records the shards accepted and throttled (retried inside kpl).
    kpl_entries_put: AtomicU64,
    kpl_entries_throttled: AtomicU64,
    /// kpl only: bytes of the Kinesis records accepted (data and partition keys).
    kpl_kinesis_bytes: AtomicU64,
    /// kpl only: user records each producer put, to compare producers sharing shards.
    kpl_per_producer: Mutex<Vec<u64>>,
    /// kpl only: bytes of the Kinesis records accepted per shard, for per-shard utilisation.
    kpl_shard_bytes: Mutex<std::collections::BTreeMap<String, u64>>,
    /// kpl only: each producer's metrics, read when the load window ends (before the
    /// producers drain what they still buffer).
    kpl_metrics: Mutex<Vec<kinesis_kpl::Metrics>>,
    put_latency: Mutex<Latency>,
    delivery_latency: Mutex<Latency>,
    stop_producing: AtomicBool,
    stop_consuming: AtomicBool,
}

impl Stats {
    fn micros_since_epoch(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// CPU seconds (user + system) and peak resident bytes of a process.
#[derive(Clone, Copy, Debug, Default)]
struct ProcUsage {
    cpu_secs: f64,
    peak_rss_bytes: u64,
    rss_bytes: u64,
}

/// Reads /proc/<pid>/stat and /proc/<pid>/status ("self" for this process).
fn proc_usage(pid: &str) -> Option<ProcUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the full line (11 and 12 after the name).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // /proc reports in USER_HZ, which the Linux ABI fixes at 100.
    let cpu_secs = (utime + stime) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    Some(ProcUsage {
        cpu_secs,
        peak_rss_bytes: kib("VmHWM:"),
        rss_bytes: kib("VmRSS:"),
    })
}

fn client(endpoint: &str, connections: usize) -> Result<Client, ClientError> {
    Client::new(
        ClientConfig::builder()
            .endpoint(endpoint)
            .region("us-east-1")
            .credentials(Credentials::new("AKIDLOADTEST", "loadtest-secret"))
            .max_connections(connections.max(1))
            .request_timeout(Duration::from_secs(30))
            .build(),
    )
}

fn stream_ref(name: &str) -> StreamRef {
    StreamRef {
        stream_name: Some(name.to_string()),
        stream_arn: None,
    }
}

/// Creates the stream (if missing) and waits until it is ACTIVE; returns its shard ids.
async fn prepare_stream(c: &Client, name: &str, shards: u32) -> Result<Vec<String>, String> {
    match c
        .create_stream(&CreateStreamInput {
            stream_name: Some(name.to_string()),
            shard_count: Some(shards as i64),
            ..Default::default()
        })
        .await
    {
        Ok(()) => {}
        Err(e) if format!("{e}").contains("ResourceInUse") => {}
        Err(e) => return Err(format!("CreateStream: {e}")),
    }
    for _ in 0..600 {
        let d = c
            .describe_stream_summary(&DescribeStreamSummaryInput {
                stream: stream_ref(name),
            })
            .await
            .map_err(|e| format!("DescribeStreamSummary: {e}"))?;
        if d.stream_description_summary.stream_status == "ACTIVE" {
            let shards = c
                .list_all_shards(&stream_ref(name))
                .await
                .map_err(|e| format!("ListShards: {e}"))?;
            let ids = shards.into_iter().map(|s| s.shard_id).collect();
            return Ok(ids);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("stream {name} did not become ACTIVE in 60 s"))
}

/// A payload of `size` bytes whose first 8 carry the send time (µs since the epoch).
fn payload(stats: &Stats, size: usize) -> Bytes {
    let mut v = vec![b'x'; size.max(8)];
    v[..8].copy_from_slice(&stats.micros_since_epoch().to_le_bytes());
    Bytes::from(v)
}

/// Waits until `sent` records fit the target rate for one producer; no wait when unlimited.
async fn pace(start: Instant, sent: u64, per_producer_rate: f64) {
    if per_producer_rate > 0.0 {
        let due = start + Duration::from_secs_f64(sent as f64 / per_producer_rate);
        tokio::time::sleep_until(due.into()).await;
    }
}

async fn raw_producer(c: Client, stream: String, args: Args, stats: Arc<Stats>, seed: usize) {
    let rate = args.rate as f64 / args.producers as f64;
    // At low rates send small batches so pacing stays smooth.
    let batch = if rate > 0.0 {
        args.batch.min(((rate / 100.0).ceil() as usize).max(1))
    } else {
        args.batch
    };
    let start = Instant::now();
    let mut sent = 0u64;
    let mut key = seed as u64 * 1_000_003;
    while !stats.stop_producing.load(Relaxed) {
        pace(start, sent, rate).await;
        if stats.stop_producing.load(Relaxed) {
            break;
        }
        let records: Vec<PutRecordsRequestEntry> = (0..batch)
            .map(|_| {
                key += 1;
                PutRecordsRequestEntry {
                    data: Some(Blob(payload(&stats, args.record_size))),
                    explicit_hash_key: None,
                    partition_key: Some(format!("pk-{key}")),
                }
            })
            .collect();
        let t0 = Instant::now();
        let res = c
            .put_records(&PutRecordsInput {
                records: Some(records),
                stream: stream_ref(&stream),
            })
            .await;
        let micros = t0.elapsed().as_micros() as u64;
        sent += batch as u64;
        match res {
            Ok(out) => {
                let mut ok = 0u64;
                for r in &out.records {
                    match r.error_code.as_deref() {
                        None => ok += 1,
                        Some("ProvisionedThroughputExceededException") => {
                            stats.throttled.fetch_add(1, Relaxed);
                        }
                        Some(_) => {
                            stats.errors.fetch_add(1, Relaxed);
                        }
                    }
                }
                stats.put_records.fetch_add(ok, Relaxed);
                stats
                    .put_bytes
                    .fetch_add(ok * args.record_size as u64, Relaxed);
                let mut h = stats.put_latency.lock().expect("not poisoned");
                let _ = h.total.record(micros.max(1));
                let _ = h.interval.record(micros.max(1));
            }
            Err(e) if e.is_throttling() => {
                stats.throttled.fetch_add(batch as u64, Relaxed);
            }
            Err(_) => {
                stats.errors.fetch_add(batch as u64, Relaxed);
            }
        }
    }
}

async fn kpl_producer(
    endpoint: String,
    stream: String,
    args: Args,
    stats: Arc<Stats>,
    seed: usize,
) {
    let producer = match kinesis_kpl::Producer::new(
        kinesis_kpl::Config::builder()
            .endpoint(endpoint)
            .region("us-east-1")
            .credentials(Credentials::new("AKIDLOADTEST", "loadtest-secret"))
            // By default the load test measures the broker: no client-side shard rate limit.
            .rate_limit(args.kpl_rate_limit.unwrap_or(u64::MAX / 4))
            .adaptive_rate(args.kpl_rate_limit.is_some() && !args.kpl_fixed_rate)
            .aggregation_enabled(!args.kpl_no_aggregation)
            .max_connections(args.kpl_max_connections)
            .max_buffered_bytes(64 << 20)
            .build(),
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kpl: {e}");
            stats.errors.fetch_add(1, Relaxed);
            return;
        }
    };
    stats
        .kpl_metrics
        .lock()
        .expect("not poisoned")
        .push(producer.metrics().clone());
    let stream: Arc<str> = stream.into();
    let rate = args.rate as f64 / args.producers as f64;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, kinesis_kpl::PutHandle)>(100_000);
    let collector = {
        let stats = stats.clone();
        let size = args.record_size as u64;
        tokio::spawn(async move {
            let mut local = local_hist();
            let mut ok = 0u64;
            let mut total = 0u64;
            while let Some((t0, h)) = rx.recv().await {
                match h.await {
                    Ok(_) => {
                        total += 1;
                        let _ = local.record((t0.elapsed().as_micros() as u64).max(1));
                        ok += 1;
                    }
                    Err(e) => {
                        if format!("{e}").contains("Throughput") {
                            stats.throttled.fetch_add(1, Relaxed);
                        } else {
                            stats.errors.fetch_add(1, Relaxed);
                        }
                    }
                }
                if ok >= 1000 || (rx.is_empty() && ok > 0) {
                    stats.put_records.fetch_add(ok, Relaxed);
                    stats.put_bytes.fetch_add(ok * size, Relaxed);
                    stats
                        .put_latency
                        .lock()
                        .expect("not poisoned")
                        .merge(&local);
                    local.reset();
                    ok = 0;
                }
            }
            stats
                .kpl_per_producer
                .lock()
                .expect("not poisoned")
                .push(total);
            stats.put_records.fetch_add(ok, Relaxed);
            stats.put_bytes.fetch_add(ok * size, Relaxed);
            stats
                .put_latency
                .lock()
                .expect("not poisoned")
                .merge(&local);
        })
    };
    let start = Instant::now();
    let mut sent = 0u64;
    let mut key = seed as u64 * 1_000_003;
    while !stats.stop_producing.load(Relaxed) {
        if sent.is_multiple_of(100) {
            pace(start, sent, rate).await;
        }
        key += 1;
        let record = kinesis_kpl::Record::new(
            stream.clone(),
            format!("pk-{key}"),
            payload(&stats, args.record_size),
        );
        let t0 = Instant::now();
        match producer.put(record).await {
            Ok(h) => {
                if tx.send((t0, h)).await.is_err() {
                    break;
                }
            }
            Err(_) => {
                stats.errors.fetch_add(1, Relaxed);
            }
        }
        sent += 1;
    }
    drop(tx);
    let metrics = producer.metrics().clone();
    let report = producer.shutdown().await;
    let _ = report;
    let _ = collector.await;
    stats
        .kpl_entries_put
        .fetch_add(metrics.counter_sum("KinesisRecordsPut", &[]), Relaxed);
    stats
        .kpl_kinesis_bytes
        .fetch_add(metrics.counter_sum("KinesisRecordsDataPut", &[]), Relaxed);
    {
        let mut per_shard = stats.kpl_shard_bytes.lock().expect("not poisoned");
        for family in metrics.registry().gather() {
            if family.name() != "KinesisRecordsDataPut" {
                continue;
            }
            for m in family.get_metric() {
                if let Some(shard) = m.get_label().iter().find(|l| l.name() == "shard") {
                    *per_shard.entry(shard.value().to_string()).or_default() +=
                        m.get_counter().get_value() as u64;
                }
            }
        }
    }
    stats.kpl_entries_throttled.fetch_add(
        metrics.counter_sum(
            "ErrorsByCode",
            &[("error_code", "ProvisionedThroughputExceededException")],
        ),
        Relaxed,
    );
}

/// What the kpl producers had done when the load window of `secs` ended: Kinesis MiB/s
/// accepted, in all and per producer, and the share of Kinesis records throttled.
fn kpl_window(stats: &Stats, secs: f64) -> serde_json::Value {
    let metrics = stats.kpl_metrics.lock().expect("not poisoned");
    if metrics.is_empty() {
        return serde_json::Value::Null;
    }
    let mib = |b: u64| b as f64 / secs / 1048576.0;
    let per: Vec<f64> = metrics
        .iter()
        .map(|m| mib(m.counter_sum("KinesisRecordsDataPut", &[])))
        .collect();
    let put: u64 = metrics
        .iter()
        .map(|m| m.counter_sum("KinesisRecordsPut", &[]))
        .sum();
    let throttled: u64 = metrics
        .iter()
        .map(|m| {
            m.counter_sum(
                "ErrorsByCode",
                &[("error_code", "ProvisionedThroughputExceededException")],
            )
        })
        .sum();
    // Per shard, over all producers: Kinesis records and bytes accepted.
    let mut shards: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for m in metrics.iter() {
        for family in m.registry().gather() {
            let records = match family.name() {
                "KinesisRecordsPut" => true,
                "KinesisRecordsDataPut" => false,
                _ => continue,
            };
            for c in family.get_metric() {
                if let Some(shard) = c.get_label().iter().find(|l| l.name() == "shard") {
                    let e = shards.entry(shard.value().to_string()).or_default();
                    let v = c.get_counter().get_value() as u64;
                    if records { e.0 += v } else { e.1 += v }
                }
            }
        }
    }
    let spread = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            v.get(((v.len() as f64 - 1.0) * q).round() as usize)
                .copied()
        };
        json!({"min": at(0.0), "median": at(0.5), "max": at(1.0)})
    };
    // What the generator managed to offer: below the shards' limits, the limiter never
    // binds and the figures measure this machine, not the rate.
    let offered: u64 = metrics
        .iter()
        .map(|m| m.counter_sum("UserRecordsReceived", &[]))
        .sum();
    json!({
        "secs": secs,
        "offered_user_records_per_sec": offered as f64 / secs,
        "mib_per_sec": per.iter().sum::<f64>(),
        "records_per_sec": put as f64 / secs,
        "per_producer_mib_per_sec": per,
        "throttled_pct": 100.0 * throttled as f64 / (put + throttled).max(1) as f64,
        "shards": shards.len(),
        "per_shard_records_per_sec": spread(shards.values().map(|s| s.0 as f64 / secs).collect()),
        "per_shard_mib_per_sec": spread(shards.values().map(|s| mib(s.1)).collect()),
    })
}

/// Kinesis records the kpl producers have had accepted and throttled so far.
fn kpl_entries(stats: &Stats) -> (u64, u64) {
    let metrics = stats.kpl_metrics.lock().expect("not poisoned");
    metrics.iter().fold((0, 0), |(put, throttled), m| {
        (
            put + m.counter_sum("KinesisRecordsPut", &[]),
            throttled
                + m.counter_sum(
                    "ErrorsByCode",
                    &[("error_code", "ProvisionedThroughputExceededException")],
                ),
        )
    })
}

/// The least, median and most MiB/s of Kinesis bytes the kpl put into one shard.
fn shard_spread(stats: &Stats, secs: f64) -> serde_json::Value {
    let mut rates: Vec<f64> = stats
        .kpl_shard_bytes
        .lock()
        .expect("not poisoned")
        .values()
        .map(|b| *b as f64 / secs / 1048576.0)
        .collect();
    rates.sort_by(f64::total_cmp);
    let at = |q: f64| {
        rates
            .get(((rates.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    json!({"shards": rates.len(), "min": at(0.0), "median": at(0.5), "max": at(1.0)})
}

/// Count delivered user records (deaggregating) and their put-to-delivery latency,
/// read from the send time in each record's first 8 bytes.
fn record_delivery(
    records: Vec<kinesis_proto::model::Record>,
    local: &mut Histogram<u64>,
    stats: &Stats,
) {
    let now = stats.micros_since_epoch();
    let mut n = 0u64;
    let mut bytes = 0u64;
    for r in records {
        for u in deaggregate(&r.partition_key, None, r.data.0) {
            n += 1;
            bytes += u.data.len() as u64;
            if u.data.len() >= 8 {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&u.data[..8]);
                let sent = u64::from_le_bytes(ts);
                let _ = local.record(now.saturating_sub(sent).max(1));
            }
        }
    }
    if n > 0 {
        stats.delivered.fetch_add(n, Relaxed);
        stats.delivered_bytes.fetch_add(bytes, Relaxed);
        stats
            .delivery_latency
            .lock()
            .expect("not poisoned")
            .merge(local);
        local.reset();
    }
}

/// Register (or find) the enhanced fan-out consumer and wait until it is ACTIVE.
async fn fan_out_consumer_arn(c: &Client, stream: &str) -> Result<String, ClientError> {
    let summary = c
        .describe_stream_summary(&DescribeStreamSummaryInput {
            stream: stream_ref(stream),
        })
        .await?;
    let stream_arn = summary.stream_description_summary.stream_arn;
    let arn = match c
        .register_stream_consumer(&RegisterStreamConsumerInput {
            stream_arn: Some(stream_arn.clone()),
            consumer_name: Some("loadtest".into()),
        })
        .await
    {
        Ok(out) => out.consumer.consumer_arn,
        Err(e) if e.code() == Some(kinesis_proto::ErrorCode::ResourceInUse) => {
            c.describe_stream_consumer(&ConsumerRef {
                stream_arn: Some(stream_arn.clone()),
                consumer_name: Some("loadtest".into()),
                consumer_arn: None,
            })
            .await?
            .consumer_description
            .consumer_arn
        }
        Err(e) => return Err(e),
    };
    for _ in 0..200 {
        let d = c
            .describe_stream_consumer(&ConsumerRef {
                stream_arn: None,
                consumer_name: None,
                consumer_arn: Some(arn.clone()),
            })
            .await?;
        if d.consumer_description.consumer_status == "ACTIVE" {
            return Ok(arn);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(arn)
}

/// Read one shard by SubscribeToShard, resubscribing after each response ends
/// (at most once a second, as the service allows).
async fn fan_out_shard(c: Client, consumer_arn: String, shard: String, stats: Arc<Stats>) {
    let mut position = StartingPosition {
        position_type: "TRIM_HORIZON".into(),
        ..Default::default()
    };
    let mut local = local_hist();
    while !stats.stop_consuming.load(Relaxed) {
        let started = Instant::now();
        let input = SubscribeToShardInput {
            consumer_arn: Some(consumer_arn.clone()),
            shard_id: Some(shard.clone()),
            starting_position: Some(position.clone()),
        };
        match c.subscribe_to_shard(&input).await {
            Ok(mut sub) => loop {
                let event = tokio::select! {
                    e = sub.next_event() => e,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if stats.stop_consuming.load(Relaxed) { return; }
                        continue;
                    }
                };
                match event {
                    Ok(Some(ev)) => {
                        record_delivery(ev.records, &mut local, &stats);
                        match ev.continuation_sequence_number {
                            Some(seq) if !seq.is_empty() => {
                                position = StartingPosition {
                                    position_type: "AFTER_SEQUENCE_NUMBER".into(),
                                    sequence_number: Some(seq),
                                    timestamp: None,
                                };
                            }
                            // Shard end: nothing more to read here.
                            _ => return,
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if e.is_throttling() {
                            stats.throttled.fetch_add(1, Relaxed);
                        } else {
                            stats.errors.fetch_add(1, Relaxed);
                        }
                        break;
                    }
                }
            },
            Err(_) => {
                stats.errors.fetch_add(1, Relaxed);
            }
        }
        let wait = Duration::from_secs(1).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
    }
}

async fn poll_consumer(
    c: Client,
    stream: String,
    shards: Vec<String>,
    args: Args,
    stats: Arc<Stats>,
) {
    let mut iters = Vec::new();
    for s in &shards {
        match c
            .get_shard_iterator(&GetShardIteratorInput {
                stream: stream_ref(&stream),
                shard_id: Some(s.clone()),
                shard_iterator_type: Some("TRIM_HORIZON".into()),
                ..Default::default()
            })
            .await
        {
            Ok(o) => iters.push(Some(o.shard_iterator)),
            Err(_) => {
                stats.errors.fetch_add(1, Relaxed);
            }
        }
    }
    let idle = Duration::from_millis(args.poll_idle_ms);
    let mut local = local_hist();
    while !stats.stop_consuming.load(Relaxed) {
        let mut got_any = false;
        for it in iters.iter_mut() {
            let Some(cur) = it.clone() else { continue };
            match c
                .get_records(&GetRecordsInput {
                    shard_iterator: Some(cur),
                    limit: Some(10_000),
                    stream_arn: None,
                })
                .await
            {
                Ok(out) => {
                    got_any |= !out.records.is_empty();
                    record_delivery(out.records, &mut local, &stats);
                    *it = out.next_shard_iterator;
                }
                Err(e) if e.is_throttling() => {
                    stats.throttled.fetch_add(1, Relaxed);
                }
                Err(_) => {
                    stats.errors.fetch_add(1, Relaxed);
                }
            }
        }
        if !got_any {
            // The KCL sleeps its idle time after an empty read; so do we.
            let until = Instant::now() + idle;
            while Instant::now() < until && !stats.stop_consuming.load(Relaxed) {
                tokio::time::sleep(Duration::from_millis(20).min(idle)).await;
            }
        }
    }
}

/// Reads one latency figure of a [`Sample`].
type SampleField = fn(&Sample) -> f64;

/// One second of the run.
#[derive(Clone, Debug, serde::Serialize)]
struct Sample {
    t: f64,
    put_rps: f64,
    delivered_rps: f64,
    put_p50_ms: f64,
    put_p99_ms: f64,
    delivery_p50_ms: f64,
    delivery_p99_ms: f64,
    /// kpl only: Kinesis records the shards accepted and throttled in this second.
    kpl_put_rps: f64,
    kpl_throttled_rps: f64,
}

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    if h.is_empty() {
        return serde_json::Value::Null;
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    json!({
        "count": h.len(),
        "p50_ms": ms(0.5), "p90_ms": ms(0.9), "p99_ms": ms(0.99), "p999_ms": ms(0.999),
        "max_ms": h.max() as f64 / 1000.0, "mean_ms": h.mean() / 1000.0,
    })
}

fn q_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

fn chart(path: &std::path::Path, title: &str, samples: &[Sample]) -> Result<(), String> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (900, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(310);
    let t_max = samples.last().map(|s| s.t).unwrap_or(1.0).max(1.0);
    let r_max = samples
        .iter()
        .map(|s| s.put_rps.max(s.delivered_rps))
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!("{title}: throughput (records/s)"),
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..r_max)
        .map_err(|e| e.to_string())?;
    c.configure_mesh()
        .x_desc("seconds")
        .draw()
        .map_err(|e| e.to_string())?;
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.put_rps)),
        &BLUE,
    ))
    .map_err(|e| e.to_string())?
    .label("put")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.t, s.delivered_rps)),
        &RED,
    ))
    .map_err(|e| e.to_string())?
    .label("delivered")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    c.configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;

    let finite = |v: f64| if v.is_finite() { Some(v) } else { None };
    let l_max = samples
        .iter()
        .flat_map(|s| [s.put_p99_ms, s.delivery_p99_ms])
        .filter_map(finite)
        .fold(1.0, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&bottom)
        .caption("latency (ms)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..l_max)
        .map_err(|e| e.to_string())?;
    c.configure_mesh()
        .x_desc("seconds")
        .draw()
        .map_err(|e| e.to_string())?;
    let lines: [(&str, SampleField, RGBColor); 4] = [
        ("put p50", |s| s.put_p50_ms, BLUE),
        ("put p99", |s| s.put_p99_ms, CYAN),
        ("put-to-delivery p50", |s| s.delivery_p50_ms, RED),
        ("put-to-delivery p99", |s| s.delivery_p99_ms, MAGENTA),
    ];
    for (label, f, color) in lines {
        let pts: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|s| finite(f(s)).map(|v| (s.t, v)))
            .collect();
        if pts.is_empty() {
            continue;
        }
        c.draw_series(LineSeries::new(pts, &color))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.record_size < 8 {
        return Err("--record-size must be at least 8 (the send time)".into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut broker: Option<RunningBroker> = None;
    let endpoint = if args.endpoint == "in-process" {
        let limits: LimitsConfig = args
            .limits
            .parse()
            .map_err(|e| format!("--limits {}: {e}", args.limits))?;
        let b = Broker::start(
            BrokerConfig::builder()
                .port(0)
                .state_delays(Duration::ZERO)
                .limits(limits)
                .build(),
        )
        .await?;
        let ep = b.endpoint();
        broker = Some(b);
        ep
    } else {
        args.endpoint.clone()
    };
    let broker_pid = match (&broker, args.broker_pid) {
        (Some(_), _) => Some("self".to_string()),
        (None, Some(p)) => Some(p.to_string()),
        (None, None) => None,
    };
    let stream = args
        .stream
        .clone()
        .unwrap_or_else(|| format!("loadtest-{}", args.name));
    let admin = client(&endpoint, 1)?;
    let shards = prepare_stream(&admin, &stream, args.shards).await?;

    let stats = Arc::new(Stats {
        epoch: Instant::now(),
        put_records: AtomicU64::new(0),
        put_bytes: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        delivered_bytes: AtomicU64::new(0),
        throttled: AtomicU64::new(0),
        kpl_entries_put: AtomicU64::new(0),
        kpl_entries_throttled: AtomicU64::new(0),
        kpl_kinesis_bytes: AtomicU64::new(0),
        kpl_per_producer: Mutex::new(Vec::new()),
        kpl_shard_bytes: Mutex::new(std::collections::BTreeMap::new()),
        kpl_metrics: Mutex::new(Vec::new()),
        errors: AtomicU64::new(0),
        put_latency: Mutex::new(Latency::new()),
        delivery_latency: Mutex::new(Latency::new()),
        stop_producing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
    });
    let usage_before = broker_pid.as_deref().and_then(proc_usage);

    let mut consumers = Vec::new();
    if args.consume == Consume::Poll {
        let n = args.consumers.max(1).min(shards.len().max(1));
        for i in 0..n {
            let mine: Vec<String> = shards
                .iter()
                .enumerate()
                .filter(|(j, _)| j % n == i)
                .map(|(_, s)| s.clone())
                .collect();
            let c = client(&endpoint, 1)?;
            consumers.push(tokio::spawn(poll_consumer(
                c,
                stream.clone(),
                mine,
                args.clone(),
                stats.clone(),
            )));
        }
    }
    if args.consume == Consume::Fanout {
        let c = client(&endpoint, 2)?;
        let arn = fan_out_consumer_arn(&c, &stream).await?;
        for s in &shards {
            // One connection per subscription: each is a long-lived response.
            let c = client(&endpoint, 1)?;
            consumers.push(tokio::spawn(fan_out_shard(
                c,
                arn.clone(),
                s.clone(),
                stats.clone(),
            )));
        }
    }
    let mut producers = Vec::new();
    let started = Instant::now();
    for i in 0..args.producers {
        match args.produce {
            Produce::Raw => {
                let c = client(&endpoint, 1)?;
                producers.push(tokio::spawn(raw_producer(
                    c,
                    stream.clone(),
                    args.clone(),
                    stats.clone(),
                    i,
                )));
            }
            Produce::Kpl => producers.push(tokio::spawn(kpl_producer(
                endpoint.clone(),
                stream.clone(),
                args.clone(),
                stats.clone(),
                i,
            ))),
            Produce::None => {}
        }
    }

    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(args.duration)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut samples: Vec<Sample> = Vec::new();
    let mut last_put = 0u64;
    let mut last_del = 0u64;
    let mut last_kpl = (0u64, 0u64);
    let mut last_t = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let deadline = started + Duration::from_secs(args.duration);
    let expect_delivery = args.consume != Consume::None && args.produce != Produce::None;
    // Drain: after producing stops, wait up to 10 s (and at least one poll idle) for delivery.
    let drain_limit = Duration::from_secs(10).max(Duration::from_millis(args.poll_idle_ms * 2));
    let mut drain_started: Option<Instant> = None;
    let mut produce_secs = args.duration as f64;
    let mut window = serde_json::Value::Null;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let dt = now.duration_since(last_t).as_secs_f64();
        last_t = now;
        let put = stats.put_records.load(Relaxed);
        let del = stats.delivered.load(Relaxed);
        let (pp50, pp99) = {
            let mut h = stats.put_latency.lock().expect("not poisoned");
            let r = (q_ms(&h.interval, 0.5), q_ms(&h.interval, 0.99));
            h.interval.reset();
            r
        };
        let (dp50, dp99) = {
            let mut h = stats.delivery_latency.lock().expect("not poisoned");
            let r = (q_ms(&h.interval, 0.5), q_ms(&h.interval, 0.99));
            h.interval.reset();
            r
        };
        let kpl = kpl_entries(&stats);
        let s = Sample {
            kpl_put_rps: kpl.0.saturating_sub(last_kpl.0) as f64 / dt,
            kpl_throttled_rps: kpl.1.saturating_sub(last_kpl.1) as f64 / dt,
            t: now.duration_since(started).as_secs_f64(),
            put_rps: (put - last_put) as f64 / dt,
            delivered_rps: (del - last_del) as f64 / dt,
            put_p50_ms: pp50,
            put_p99_ms: pp99,
            delivery_p50_ms: dp50,
            delivery_p99_ms: dp99,
        };
        last_put = put;
        last_del = del;
        last_kpl = kpl;
        bar.set_position(s.t.min(args.duration as f64) as u64);
        bar.set_message(format!(
            "put {:.0}/s  delivered {:.0}/s  put p99 {:.1} ms  throttled {} errors {}",
            s.put_rps,
            s.delivered_rps,
            s.put_p99_ms,
            stats.throttled.load(Relaxed),
            stats.errors.load(Relaxed)
        ));
        samples.push(s);
        if now >= deadline && drain_started.is_none() {
            window = kpl_window(&stats, started.elapsed().as_secs_f64());
            stats.stop_producing.store(true, Relaxed);
            for p in producers.drain(..) {
                let _ = p.await;
            }
            produce_secs = started.elapsed().as_secs_f64();
            drain_started = Some(Instant::now());
        }
        if let Some(d) = drain_started {
            let caught_up = !expect_delivery
                || stats.delivered.load(Relaxed) >= stats.put_records.load(Relaxed);
            if caught_up || d.elapsed() >= drain_limit {
                break;
            }
        }
    }
    stats.stop_consuming.store(true, Relaxed);
    for c in consumers {
        let _ = c.await;
    }
    bar.finish_and_clear();
    let usage_after = broker_pid.as_deref().and_then(proc_usage);

    let put = stats.put_records.load(Relaxed);
    let put_bytes = stats.put_bytes.load(Relaxed);
    let delivered = stats.delivered.load(Relaxed);
    let (put_lat, del_lat) = {
        let p = stats.put_latency.lock().expect("not poisoned");
        let d = stats.delivery_latency.lock().expect("not poisoned");
        (percentiles(&p.total), percentiles(&d.total))
    };
    let broker_usage = match (usage_before, usage_after) {
        (Some(a), Some(b)) => {
            let cpu = b.cpu_secs - a.cpu_secs;
            json!({
                "pid": broker_pid,
                "scope": if broker.is_some() { "this process (broker and load generator)" } else { "broker process" },
                "cpu_secs": cpu,
                "cpu_us_per_record": if put > 0 { cpu * 1e6 / put as f64 } else { f64::NAN },
                "peak_rss_mib": b.peak_rss_bytes as f64 / (1024.0 * 1024.0),
                // What the broker keeps per record written (records stay held
                // within retention): resident growth over the run per record put.
                "rss_growth_bytes_per_record": if put > 0 {
                    (b.rss_bytes as f64 - a.rss_bytes as f64) / put as f64
                } else { f64::NAN },
            })
        }
        _ => serde_json::Value::Null,
    };
    let report = json!({
        "name": args.name,
        "broker": args.broker_name,
        "endpoint": if broker.is_some() { "in-process".to_string() } else { endpoint.clone() },
        "params": {
            "produce": format!("{:?}", args.produce).to_lowercase(),
            "consume": format!("{:?}", args.consume).to_lowercase(),
            "shards": args.shards, "producers": args.producers, "consumers": args.consumers,
            "record_size": args.record_size, "batch": args.batch, "rate": args.rate,
            "duration_s": args.duration, "limits": args.limits, "poll_idle_ms": args.poll_idle_ms,
            "kpl_rate_limit": args.kpl_rate_limit, "kpl_fixed_rate": args.kpl_fixed_rate,
            "kpl_no_aggregation": args.kpl_no_aggregation,
            "kpl_max_connections": args.kpl_max_connections,
        },
        "produce_secs": produce_secs,
        "put_records": put,
        "put_records_per_sec": put as f64 / produce_secs,
        "put_mb_per_sec": put_bytes as f64 / produce_secs / 1e6,
        "delivered_records": delivered,
        "throttled": stats.throttled.load(Relaxed),
        "errors": stats.errors.load(Relaxed),
        "kpl_entries_put": stats.kpl_entries_put.load(Relaxed),
        "kpl_entries_throttled": stats.kpl_entries_throttled.load(Relaxed),
        "kpl_kinesis_mib_per_sec": stats.kpl_kinesis_bytes.load(Relaxed) as f64 / produce_secs / 1048576.0,
        "kpl_per_producer": stats.kpl_per_producer.lock().expect("not poisoned").clone(),
        "kpl_shard_mib_per_sec": shard_spread(&stats, produce_secs),
        "kpl_load_window": window,
        "put_latency": put_lat,
        "delivery_latency": del_lat,
        "broker_usage": broker_usage,
        "series": samples,
    });
    std::fs::create_dir_all(&args.out)?;
    let json_path = args.out.join(format!("{}.json", args.name));
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)?;
    let svg_path = args.out.join(format!("{}.svg", args.name));
    chart(
        &svg_path,
        &format!("{} / {}", args.broker_name, args.name),
        &samples,
    )?;
    println!(
        "{}: put {} records ({:.0}/s, {:.2} MB/s), delivered {}, throttled {}, errors {}",
        args.name,
        put,
        put as f64 / produce_secs,
        put_bytes as f64 / produce_secs / 1e6,
        delivered,
        stats.throttled.load(Relaxed),
        stats.errors.load(Relaxed)
    );
    let (kpl_put, kpl_throttled) = (
        stats.kpl_entries_put.load(Relaxed),
        stats.kpl_entries_throttled.load(Relaxed),
    );
    if kpl_put + kpl_throttled > 0 {
        println!(
            "  kpl: {kpl_put} Kinesis records accepted ({:.3} MiB/s of Kinesis bytes), {kpl_throttled} throttled ({:.2} % of entries sent); user records per producer {:?}",
            stats.kpl_kinesis_bytes.load(Relaxed) as f64 / produce_secs / 1048576.0,
            100.0 * kpl_throttled as f64 / (kpl_put + kpl_throttled) as f64,
            stats.kpl_per_producer.lock().expect("not poisoned")
        );
        if !window.is_null() {
            println!(
                "  kpl in the {}-s load window (before draining): {window}",
                args.duration
            );
        }
        let spread = shard_spread(&stats, produce_secs);
        if spread["shards"].as_u64().unwrap_or(0) > 1 {
            println!("  kpl: MiB/s of Kinesis bytes per shard: {spread}");
        }
    }
    println!("  put latency: {put_lat}");
    println!("  put-to-delivery latency: {del_lat}");
    println!("  broker: {broker_usage}");
    println!("  wrote {} and {}", json_path.display(), svg_path.display());
    if let Some(b) = broker {
        b.shutdown().await;
    }
    Ok(())
}
