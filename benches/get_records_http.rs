//! The broker's read path over HTTP: broker CPU per record returned by
//! GetRecords. `READ_RECORDS` records of 100 B (default 1,000,000) are written
//! to a 4-shard stream, then read back from TRIM_HORIZON with GetRecords of
//! `READ_LIMIT` records (default 10,000, the service's maximum) until every
//! shard is drained, by one reader per shard over HTTP/1.1 JSON.
//!
//! The broker runs in this process on a runtime of its own whose threads are
//! named `broker`; its CPU is the sum over those threads (`/proc/self/task`),
//! so the readers' decoding is not counted. Writes happen before the measured
//! window. Limits are off: this measures the cost of a read, not the pacing.
//!
//! ```sh
//! cargo bench --bench get_records_http
//! READ_RECORDS=200000 cargo bench --bench get_records_http
//! ```

#[path = "support/in_process.rs"]
mod in_process;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kinesis_broker::limiter::{LimitProfile, LimitsConfig};
use kinesis_broker::{Broker, BrokerConfig};
use kinesis_proto::client::Client;
use kinesis_proto::codec::Blob;
use kinesis_proto::model::*;

const SHARDS: usize = 4;
const RECORD: usize = 100;

/// Reads `shard` from its start to the last record written; returns records read.
async fn drain(c: Client, shard: String, want: u64, limit: i64) -> u64 {
    let iterator = c
        .get_shard_iterator(&GetShardIteratorInput {
            stream: StreamRef::name("reads"),
            shard_id: Some(shard),
            shard_iterator_type: Some("TRIM_HORIZON".into()),
            ..Default::default()
        })
        .await
        .expect("iterator")
        .shard_iterator;
    let mut iterator = Some(iterator);
    let mut read = 0u64;
    while read < want {
        let out = c
            .get_records(&GetRecordsInput {
                shard_iterator: iterator.clone(),
                limit: Some(limit),
                stream_arn: None,
            })
            .await
            .expect("get records");
        read += out.records.len() as u64;
        iterator = out.next_shard_iterator;
        if out.records.is_empty() || iterator.is_none() {
            break;
        }
    }
    read
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let records = in_process::env_or("READ_RECORDS", 1_000_000);
    let limit = in_process::env_or("READ_LIMIT", 10_000) as i64;
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
        .thread_name("readers")
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async move {
        let admin = in_process::client(&endpoint);
        admin
            .create_stream(&CreateStreamInput {
                stream_name: Some("reads".into()),
                shard_count: Some(SHARDS as i64),
                ..Default::default()
            })
            .await
            .expect("create");
        // Explicit hash keys spread the records evenly: each shard holds a quarter.
        let data = Bytes::from(vec![b'r'; RECORD]);
        let per_shard = records / SHARDS as u64;
        for shard in 0..SHARDS as u128 {
            let hash = (u128::MAX / SHARDS as u128 + 1) * shard;
            let mut left = per_shard;
            while left > 0 {
                let n = left.min(500);
                let batch: Vec<PutRecordsRequestEntry> = (0..n)
                    .map(|i| PutRecordsRequestEntry {
                        data: Some(Blob(data.clone())),
                        partition_key: Some(format!("k{i}")),
                        explicit_hash_key: Some(hash.to_string()),
                    })
                    .collect();
                let out = admin
                    .put_records(&PutRecordsInput {
                        stream: StreamRef::name("reads"),
                        records: Some(batch),
                    })
                    .await
                    .expect("put");
                assert_eq!(out.failed_record_count, 0, "a write failed");
                let want = format!("shardId-{shard:012}");
                assert!(
                    out.records.iter().all(|r| r.shard_id.as_deref() == Some(want.as_str())),
                    "a record missed {want}: {:?}",
                    out.records.first()
                );
                left -= n;
            }
        }
        // A profiler attached now sees the reads only (`perf record -p`).
        eprintln!("written; reading (pid {})", std::process::id());
        if let Some(pause) = std::env::var("READ_PAUSE_SECS").ok().and_then(|v| v.parse().ok()) {
            tokio::time::sleep(Duration::from_secs(pause)).await;
        }
        let cpu_before = in_process::cpu_time(Some("broker")).as_secs_f64();
        let started = Instant::now();
        let readers: Vec<_> = (0..SHARDS)
            .map(|i| {
                tokio::spawn(drain(
                    in_process::client(&endpoint),
                    format!("shardId-{i:012}"),
                    per_shard,
                    limit,
                ))
            })
            .collect();
        let mut read = 0u64;
        for r in readers {
            read += r.await.expect("reader");
        }
        let elapsed = started.elapsed().as_secs_f64();
        let cpu = in_process::cpu_time(Some("broker")).as_secs_f64() - cpu_before;
        assert_eq!(read, per_shard * SHARDS as u64, "every record read back");
        println!(
            "GetRecords over HTTP (JSON), {SHARDS} shards x {per_shard} records of {RECORD} B, pages of {limit}:"
        );
        println!(
            "  read {read} records in {elapsed:.2} s ({:.0} records/s); broker CPU {cpu:.2} s = {:.0} ns per record returned",
            read as f64 / elapsed,
            cpu * 1e9 / read as f64
        );
    });
    drop(broker);
}
