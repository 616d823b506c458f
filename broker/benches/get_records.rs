//! The broker's read path in process: `Service::get_records` over a shard holding
//! 100,000 records of 100 bytes, read front to back in pages of 10,000 (the
//! GetRecords maximum) and of 100, reported as ns per record delivered.
//!
//! Run with `cargo bench -p kinesis-broker --bench get_records`.

use bytes::Bytes;
use kinesis_broker::limiter::{LimitProfile, LimitsConfig};
use kinesis_broker::{BrokerConfig, Service};
use kinesis_proto::codec::Blob;
use kinesis_proto::model::{
    CreateStreamInput, GetRecordsInput, GetShardIteratorInput, PutRecordsInput,
    PutRecordsRequestEntry, ShardIteratorType, StreamRef,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RECORDS: usize = 100_000;
const ROUNDS: usize = 5;

fn stream() -> StreamRef {
    StreamRef {
        stream_name: Some("bench".into()),
        stream_arn: None,
    }
}

fn filled_service() -> Arc<Service> {
    let svc = Service::new(
        BrokerConfig::builder()
            .state_delays(Duration::ZERO)
            .limits(LimitsConfig::uniform(LimitProfile::Off))
            .build(),
    );
    svc.create_stream(CreateStreamInput {
        stream_name: Some("bench".into()),
        shard_count: Some(1),
        ..Default::default()
    })
    .expect("create stream");
    for batch in 0..RECORDS / 500 {
        let records = (0..500)
            .map(|i| PutRecordsRequestEntry {
                data: Some(Blob(Bytes::from(vec![b'x'; 100]))),
                explicit_hash_key: None,
                partition_key: Some(format!("pk-{batch}-{i}")),
            })
            .collect();
        svc.put_records(PutRecordsInput {
            records: Some(records),
            stream: stream(),
        })
        .expect("put records");
    }
    svc
}

/// Nanoseconds per record reading the whole shard with pages of `limit`.
fn read_all(svc: &Service, limit: i64) -> f64 {
    let started = Instant::now();
    let mut iterator = svc
        .get_shard_iterator(GetShardIteratorInput {
            stream: stream(),
            shard_id: Some("shardId-000000000000".into()),
            shard_iterator_type: Some(ShardIteratorType::TrimHorizon),
            ..Default::default()
        })
        .expect("iterator")
        .shard_iterator;
    let mut read = 0usize;
    while read < RECORDS {
        let out = svc
            .get_records(GetRecordsInput {
                shard_iterator: Some(iterator),
                limit: Some(limit),
                stream_arn: None,
            })
            .expect("get records");
        read += out.records.len();
        std::hint::black_box(&out.records);
        iterator = out.next_shard_iterator.expect("open shard");
    }
    started.elapsed().as_nanos() as f64 / read as f64
}

fn main() {
    let svc = filled_service();
    println!("GetRecords over {RECORDS} x 100 B in one shard, best of {ROUNDS} full reads:");
    for limit in [10_000, 100] {
        let best = (0..ROUNDS)
            .map(|_| read_all(&svc, limit))
            .fold(f64::INFINITY, f64::min);
        println!("  pages of {limit:>6}: {best:>7.1} ns/record");
    }
}
