//! Enhanced fan-out at scale: `FANOUT_CONSUMERS` consumers (default 250) each
//! subscribed to every shard of a 4-shard stream (1,000 subscriptions, one
//! connection each), while 1 MiB/s of 1 KiB records is written in total. The
//! service allows 20 consumers per stream (`docs/limits.md`), so the consumers
//! are spread over as many 4-shard streams as that takes (13 for 250), and the
//! writes go round-robin over those streams. Reports the
//! delivery latency (from the PutRecords call to the event reaching the
//! subscriber, p50/p99/max over every delivery), deliveries per second, and
//! the broker's CPU per delivered record.
//!
//! The broker runs in this process on a runtime of its own whose threads are
//! named `broker`; its CPU is the sum over those threads (`/proc/self/task`),
//! so the subscribers' and the producer's CPU are not counted.
//!
//! ```sh
//! cargo bench --bench fan_out_scale                       # 250 consumers × 4 shards, 20 s
//! FANOUT_CONSUMERS=25 FANOUT_SECS=10 cargo bench --bench fan_out_scale
//! ```

#[path = "support/in_process.rs"]
mod in_process;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kinesis_broker::limiter::{LimitProfile, LimitsConfig};
use kinesis_broker::{Broker, BrokerConfig};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;
use parking_lot::Mutex;

const SHARDS: usize = 4;
const RECORD: usize = 1024;
/// The service's quota of registered consumers per stream.
const CONSUMERS_PER_STREAM: usize = 20;

/// Latencies in microseconds, from every subscriber.
#[derive(Default)]
struct Deliveries {
    latencies_us: Mutex<Vec<u64>>,
    count: AtomicU64,
}

async fn subscribe(
    endpoint: String,
    consumer_arn: String,
    shard: String,
    origin: Instant,
    out: Arc<Deliveries>,
    ready: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let c = in_process::client(&endpoint);
    let mut position = StartingPosition {
        position_type: ShardIteratorType::Latest,
        ..Default::default()
    };
    let mut first = true;
    let mut local = Vec::with_capacity(64 * 1024);
    while !stop.load(Relaxed) {
        let input = SubscribeToShardInput {
            consumer_arn: Some(consumer_arn.clone()),
            shard_id: Some(shard.clone()),
            starting_position: Some(position.clone()),
        };
        let Ok(mut sub) = c.subscribe_to_shard(&input).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        if first {
            ready.fetch_add(1, Relaxed);
            first = false;
        }
        loop {
            let event = tokio::select! {
                e = sub.next_event() => e,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if stop.load(Relaxed) { break; }
                    continue;
                }
            };
            let Ok(Some(ev)) = event else { break };
            let now = origin.elapsed().as_micros() as u64;
            for r in &ev.records {
                if let Some(sent) = r.data.0.get(..8) {
                    let sent = u64::from_le_bytes(sent.try_into().unwrap_or([0; 8]));
                    local.push(now.saturating_sub(sent));
                }
            }
            out.count.fetch_add(ev.records.len() as u64, Relaxed);
            if let Some(seq) = ev.continuation_sequence_number.filter(|s| !s.is_empty()) {
                position = StartingPosition {
                    position_type: ShardIteratorType::AfterSequenceNumber,
                    sequence_number: Some(seq),
                    timestamp: None,
                };
            }
        }
    }
    out.latencies_us.lock().extend(local);
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let consumers = in_process::env_or("FANOUT_CONSUMERS", 250) as usize;
    let secs = in_process::env_or("FANOUT_SECS", 20);
    let broker_rt = in_process::broker_runtime();
    let broker = broker_rt
        .block_on(Broker::start(
            BrokerConfig::builder()
                .port(0)
                .state_delays(Duration::ZERO)
                .limits(LimitsConfig::uniform(LimitProfile::Off))
                .build(),
        ))
        .expect("broker");
    let endpoint = broker.endpoint();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("clients")
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async move {
        let admin = in_process::client(&endpoint);
        let streams = consumers.div_ceil(CONSUMERS_PER_STREAM).max(1);
        let names: Vec<String> = (0..streams).map(|i| format!("fanout-{i}")).collect();
        let mut arns = Vec::new();
        for name in &names {
            admin
                .create_stream(&CreateStreamInput {
                    stream_name: Some(name.clone()),
                    shard_count: Some(SHARDS as i64),
                    ..Default::default()
                })
                .await
                .expect("create");
            arns.push(
                admin
                    .describe_stream_summary(&DescribeStreamSummaryInput {
                        stream: StreamRef::name(name),
                    })
                    .await
                    .expect("describe")
                    .stream_description_summary
                    .stream_arn,
            );
        }
        // Consumer n reads stream n % streams: as even a spread as the quota allows.
        let consumers_on: Vec<u64> = (0..streams)
            .map(|i| (0..consumers).filter(|n| n % streams == i).count() as u64)
            .collect();
        let shards: Vec<String> = (0..SHARDS).map(|i| format!("shardId-{i:012}")).collect();
        let origin = Instant::now();
        let deliveries = Arc::new(Deliveries::default());
        let ready = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for n in 0..consumers {
            let consumer_arn = admin
                .register_stream_consumer(&RegisterStreamConsumerInput {
                    stream_arn: Some(arns[n % streams].clone()),
                    consumer_name: Some(format!("c{n:03}")),
                })
                .await
                .expect("register")
                .consumer
                .consumer_arn;
            for s in &shards {
                tasks.push(tokio::spawn(subscribe(
                    endpoint.clone(),
                    consumer_arn.clone(),
                    s.clone(),
                    origin,
                    Arc::clone(&deliveries),
                    Arc::clone(&ready),
                    Arc::clone(&stop),
                )));
            }
        }
        let subscriptions = (consumers * SHARDS) as u64;
        let set_up = Instant::now();
        while ready.load(Relaxed) < subscriptions {
            assert!(
                set_up.elapsed() < Duration::from_secs(120),
                "only {} of {subscriptions} subscriptions started",
                ready.load(Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Each SubscribeToShard answers before its first event: give the
        // LATEST positions a moment to be taken before the first write.
        tokio::time::sleep(Duration::from_millis(500)).await;

        // 1 MiB/s: ten 1 KiB records every 10 ms, keys over every shard.
        let cpu_before = in_process::cpu_time(Some("broker")).as_secs_f64();
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut written = 0u64;
        let mut wanted = 0u64;
        let mut calls = 0u64;
        while started.elapsed() < Duration::from_secs(secs) {
            tick.tick().await;
            let sent = origin.elapsed().as_micros() as u64;
            let mut data = vec![b'f'; RECORD];
            data[..8].copy_from_slice(&sent.to_le_bytes());
            let data = Bytes::from(data);
            let records: Vec<PutRecordsRequestEntry> = (0..10)
                .map(|i| PutRecordsRequestEntry {
                    data: Some(Blob(data.clone())),
                    partition_key: Some(format!("{calls}-{i}")),
                    ..Default::default()
                })
                .collect();
            let out = admin
                .put_records(&PutRecordsInput {
                    stream: StreamRef::name(&names[calls as usize % streams]),
                    records: Some(records),
                })
                .await
                .expect("put");
            let ok = 10 - out.failed_record_count as u64;
            written += ok;
            wanted += ok * consumers_on[calls as usize % streams];
            calls += 1;
        }
        let drain = Instant::now();
        while deliveries.count.load(Relaxed) < wanted && drain.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = in_process::cpu_time(Some("broker")).as_secs_f64() - cpu_before;
        stop.store(true, Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let delivered = deliveries.count.load(Relaxed);
        let mut lat = std::mem::take(&mut *deliveries.latencies_us.lock());
        lat.sort_unstable();
        println!(
            "## Enhanced fan-out: {consumers} consumers × {SHARDS} shards = {subscriptions} subscriptions over {streams} streams, 1 MiB/s written\n"
        );
        println!("| written records | delivered (of written × its stream's consumers) | deliveries/s | latency p50 / p99 / max (ms) | broker CPU per delivered record (µs) | broker CPU (cores) |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| {written} in {secs} s | {delivered} of {wanted} | {:.0} | {:.1} / {:.1} / {:.1} | {:.2} | {:.2} |",
            delivered as f64 / elapsed,
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            percentile(&lat, 1.0),
            cpu * 1e6 / delivered.max(1) as f64,
            cpu / elapsed,
        );
    });
    drop(broker);
}
