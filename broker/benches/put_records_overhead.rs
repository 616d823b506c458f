//! What per-shard limits and metrics cost on the PutRecords path: a tight
//! in-process loop of `Service::put_records` with 500 records of 100 bytes,
//! under four settings, reported as ns per record and as ratios to the
//! baseline (limits off, metrics off).
//!
//! Run with `cargo bench -p kinesis-broker --bench put_records_overhead`.

use bytes::Bytes;
use kinesis_broker::limiter::{LimitProfile, LimitsConfig, Nanos, ShardWriteLimiter};
use kinesis_broker::metrics::Metrics;
use kinesis_broker::{BrokerConfig, Service};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{CreateStreamInput, PutRecordsInput, PutRecordsRequestEntry, StreamRef};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CALLS: usize = 200;
const RECORDS: usize = 500;
const ROUNDS: usize = 5;

fn service(limits: LimitProfile, metrics: bool) -> Arc<Service> {
    let svc = Service::new(
        BrokerConfig::builder()
            .state_delays(Duration::ZERO)
            .limits(LimitsConfig::uniform(limits))
            .metrics(metrics)
            .build(),
    );
    svc.create_stream(CreateStreamInput {
        stream_name: Some("bench".into()),
        shard_count: Some(1),
        ..Default::default()
    })
    .expect("create stream");
    svc
}

fn input() -> PutRecordsInput {
    PutRecordsInput {
        records: Some(
            (0..RECORDS)
                .map(|i| PutRecordsRequestEntry {
                    data: Some(Blob(Bytes::from(vec![b'x'; 100]))),
                    explicit_hash_key: None,
                    partition_key: Some(format!("pk-{i}")),
                })
                .collect(),
        ),
        stream: StreamRef {
            stream_name: Some("bench".into()),
            stream_arn: None,
        },
    }
}

/// Nanoseconds per record over `CALLS` calls on a fresh service.
fn run(limits: LimitProfile, metrics: bool, input: &PutRecordsInput) -> f64 {
    let svc = service(limits, metrics);
    let started = Instant::now();
    for _ in 0..CALLS {
        let out = svc.put_records(input.clone()).expect("put records");
        assert_eq!(out.failed_record_count, 0);
    }
    started.elapsed().as_nanos() as f64 / (CALLS * RECORDS) as f64
}

fn main() {
    let input = input();
    let settings = [
        (
            "limits off, metrics off (baseline)",
            LimitProfile::Off,
            false,
        ),
        ("limits off, metrics on", LimitProfile::Off, true),
        (
            "limits aws scale=1e6, metrics off",
            LimitProfile::Scaled(1e6),
            false,
        ),
        (
            "limits aws scale=1e6, metrics on",
            LimitProfile::Scaled(1e6),
            true,
        ),
    ];
    let mut best = [f64::INFINITY; 4];
    // Interleave the settings so drift in machine load hits all alike.
    for _ in 0..ROUNDS {
        for (i, (_, limits, metrics)) in settings.iter().enumerate() {
            best[i] = best[i].min(run(*limits, *metrics, &input));
        }
    }
    // The clone of the 500-entry input is in every figure; measure it alone.
    let started = Instant::now();
    for _ in 0..CALLS {
        std::hint::black_box(input.clone());
    }
    let clone = started.elapsed().as_nanos() as f64 / (CALLS * RECORDS) as f64;
    println!("PutRecords of {RECORDS} x 100 B, best of {ROUNDS} runs of {CALLS} calls:");
    for (i, (name, _, _)) in settings.iter().enumerate() {
        println!(
            "  {name:<38} {:>7.1} ns/record  ratio {:.3}",
            best[i],
            best[i] / best[0]
        );
    }
    println!("  (input clone alone, included above:  {clone:>7.1} ns/record)");

    // The pieces on their own, far below the noise of the whole call.
    let limits = LimitProfile::Scaled(1e6).limits();
    let mut write = ShardWriteLimiter::new(&limits, Nanos::ZERO);
    let n = 10_000_000u64;
    let started = Instant::now();
    for i in 0..n {
        std::hint::black_box(write.admit(std::hint::black_box(105), Nanos(i * 10)));
    }
    let admit = started.elapsed().as_nanos() as f64 / n as f64;
    let metrics = Metrics::new().shard("bench", "shardId-000000000000");
    let calls = 1_000_000u64;
    let started = Instant::now();
    for _ in 0..calls {
        metrics.put_records(std::hint::black_box(500), 52_500, 0, 0);
    }
    let per_call = started.elapsed().as_nanos() as f64 / calls as f64;
    println!("  ShardWriteLimiter::admit alone:        {admit:>7.1} ns/record");
    println!(
        "  ShardMetrics::put_records alone:       {per_call:>7.1} ns/call ({:.2} ns/record)",
        per_call / RECORDS as f64
    );
}
