//! What the console's partition-key sampler costs per stored record, next to
//! the whole in-process PutRecords path it rides on: `HotKeys::observe` for
//! batches of 500 records with (a) every key distinct, the worst case, where
//! each record evicts, (b) a skewed mix, one key in four repeated, and (c)
//! one key, reported as ns per record and as a share of `Service::put_records`
//! (limits and metrics off) measured in the same run.
//!
//! Run with `cargo bench -p kinesis-broker --bench hot_keys`.

use bytes::Bytes;
use kinesis_broker::hot_keys::HotKeys;
use kinesis_broker::{BrokerConfig, Service};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{CreateStreamInput, PutRecordsInput, PutRecordsRequestEntry, StreamRef};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORDS: usize = 500;
const CALLS: usize = 400;
const ROUNDS: usize = 5;

fn best_ns_per_record(mut run: impl FnMut(usize)) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for call in 0..CALLS {
                run(call);
            }
            t.elapsed().as_nanos() as f64 / (CALLS * RECORDS) as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn observe_cost(keys: &[Vec<Arc<str>>]) -> f64 {
    let h = HotKeys::new();
    let mut now = 0i64;
    best_ns_per_record(|call| {
        // 1 ms per call: buckets turn over as they do under load.
        now += 1;
        let batch = &keys[call % keys.len()];
        h.observe(batch.iter().map(|k| (&**k, 100)), now);
    })
}

fn main() {
    let distinct: Vec<Vec<Arc<str>>> = (0..CALLS)
        .map(|c| {
            (0..RECORDS)
                .map(|i| Arc::from(format!("user-{c}-{i}")))
                .collect()
        })
        .collect();
    let hot: Arc<str> = Arc::from("hot-key");
    let skewed: Vec<Vec<Arc<str>>> = distinct
        .iter()
        .map(|b| {
            b.iter()
                .enumerate()
                .map(|(i, k)| {
                    if i % 4 == 0 {
                        Arc::clone(&hot)
                    } else {
                        Arc::clone(k)
                    }
                })
                .collect()
        })
        .collect();
    let single = vec![vec![Arc::clone(&hot); RECORDS]];

    let svc = Service::new(
        BrokerConfig::builder()
            .state_delays(Duration::ZERO)
            .limit_profile(kinesis_broker::limiter::LimitProfile::Off)
            .metrics(false)
            .build(),
    );
    svc.create_stream(CreateStreamInput {
        stream_name: Some("bench".into()),
        shard_count: Some(4),
        ..Default::default()
    })
    .expect("create");
    let data = Bytes::from(vec![b'x'; 100]);
    let inputs: Vec<PutRecordsInput> = distinct
        .iter()
        .map(|b| PutRecordsInput {
            stream: StreamRef {
                stream_name: Some("bench".into()),
                stream_arn: None,
            },
            records: Some(
                b.iter()
                    .map(|k| PutRecordsRequestEntry {
                        data: Some(Blob(data.clone())),
                        partition_key: Some(k.to_string()),
                        explicit_hash_key: None,
                    })
                    .collect(),
            ),
        })
        .collect();
    let put = best_ns_per_record(|call| {
        let out = svc
            .put_records(inputs[call % inputs.len()].clone())
            .expect("put");
        assert_eq!(out.failed_record_count, 0);
    });

    println!("HotKeys::observe, batches of {RECORDS}, best of {ROUNDS} runs of {CALLS} calls:");
    println!("  Service::put_records (sampler included): {put:8.1} ns/record");
    for (name, keys) in [
        ("every key distinct (worst)", &distinct),
        ("one key in four repeated", &skewed),
        ("a single key", &single),
    ] {
        let ns = observe_cost(keys);
        println!(
            "  observe, {name:<27} {ns:8.1} ns/record  share of put_records {:.3}",
            ns / put
        );
    }
}
