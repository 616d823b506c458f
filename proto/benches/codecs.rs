//! Hot-path codecs: KPL aggregation, event-stream frames, JSON and CBOR
//! PutRecords bodies, and MD5 routing. Run with `cargo bench -p kinesis-proto`.

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kinesis_proto::aggregation::{Aggregator, UserRecord, deaggregate};
use kinesis_proto::codec::{Blob, Encoding};
use kinesis_proto::event_stream::{Decoder, Message, encode};
use kinesis_proto::hash_key::hash_key_for_partition_key;
use kinesis_proto::model::{PutRecordsInput, PutRecordsRequestEntry, StreamRef};
use std::hint::black_box;

const N: usize = 500;

fn user_records() -> Vec<UserRecord> {
    (0..N)
        .map(|i| {
            UserRecord::new(
                format!("partition-key-{i:08}"),
                Bytes::from(vec![b'x'; 100]),
            )
        })
        .collect()
}

fn put_records_input() -> PutRecordsInput {
    PutRecordsInput {
        records: Some(
            (0..N)
                .map(|i| PutRecordsRequestEntry {
                    data: Some(Blob::from(vec![b'x'; 100])),
                    explicit_hash_key: None,
                    partition_key: Some(format!("partition-key-{i:08}")),
                })
                .collect(),
        ),
        stream: StreamRef::name("bench"),
    }
}

fn aggregation(c: &mut Criterion) {
    let records = user_records();
    let mut g = c.benchmark_group("aggregation");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("encode_500x100B", |b| {
        let mut agg = Aggregator::new(1024 * 1024, u64::MAX);
        b.iter(|| {
            for r in &records {
                agg.push(r);
            }
            black_box(agg.finish())
        })
    });
    let mut agg = Aggregator::new(1024 * 1024, u64::MAX);
    for r in &records {
        agg.push(r);
    }
    let blob = agg.finish().unwrap_or_default();
    g.bench_function("decode_500x100B", |b| {
        b.iter(|| black_box(deaggregate("a", None, blob.clone())))
    });
    g.finish();
}

fn event_stream(c: &mut Criterion) {
    let payload = Bytes::from(vec![b'{'; 64 * 1024]);
    let msg = Message::event("SubscribeToShardEvent", payload);
    let mut g = c.benchmark_group("event_stream");
    g.throughput(Throughput::Bytes(msg.encoded_len() as u64));
    g.bench_function("encode_64KiB", |b| {
        let mut buf = BytesMut::with_capacity(80 * 1024);
        b.iter(|| {
            buf.clear();
            encode(&msg, &mut buf).ok();
            black_box(buf.len())
        })
    });
    let frame = msg.to_bytes().unwrap_or_default();
    g.bench_function("decode_64KiB", |b| {
        b.iter(|| {
            let mut d = Decoder::default();
            d.push(&frame);
            black_box(d.next_message().ok().flatten())
        })
    });
    g.finish();
}

fn request_codecs(c: &mut Criterion) {
    let input = put_records_input();
    let mut g = c.benchmark_group("put_records_body");
    g.throughput(Throughput::Elements(N as u64));
    for enc in [Encoding::Json, Encoding::Cbor] {
        let name = if enc == Encoding::Json {
            "json"
        } else {
            "cbor"
        };
        g.bench_function(format!("{name}_encode_500x100B"), |b| {
            b.iter(|| black_box(enc.encode(&input)))
        });
        let body = enc.encode(&input);
        g.bench_function(format!("{name}_decode_500x100B"), |b| {
            b.iter(|| black_box(enc.decode::<PutRecordsInput>(&body).ok()))
        });
    }
    g.finish();
}

fn routing(c: &mut Criterion) {
    let keys: Vec<String> = (0..1024).map(|i| format!("user-{i:010}")).collect();
    let mut g = c.benchmark_group("routing");
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("md5_partition_key_16B", |b| {
        b.iter(|| {
            let mut acc = 0u128;
            for k in &keys {
                acc ^= hash_key_for_partition_key(k);
            }
            black_box(acc)
        })
    });
    g.finish();
}

criterion_group!(benches, aggregation, event_stream, request_codecs, routing);
criterion_main!(benches);
