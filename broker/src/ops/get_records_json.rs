//! GetRecords' JSON answer written by hand, byte for byte what serializing
//! `model::GetRecordsOutput` gives. The generic serializer base64-encodes a
//! record's data in small pieces and scans every piece for characters to
//! escape; base64 text has none, and the data is most of the answer, so the
//! read path spends much of its time there (BENCHMARKS.md, "GetRecords over
//! HTTP").

use base64::Engine as _;
use kinesis_proto::model::{GetRecordsOutput, Record};

/// Append `o`'s JSON to `out`.
pub fn write_get_records_json(out: &mut Vec<u8>, o: &GetRecordsOutput) {
    // Data grows by a third in base64; the rest of a record is about 150 bytes.
    let data: usize = o.records.iter().map(|r| r.data.0.len()).sum();
    out.reserve(data / 3 * 4 + o.records.len() * 160 + 64);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, r) in o.records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_record(out, r);
    }
    out.push(b']');
    if let Some(it) = &o.next_shard_iterator {
        out.extend_from_slice(b",\"NextShardIterator\":");
        write_json(out, it);
    }
    if let Some(ms) = o.millis_behind_latest {
        out.extend_from_slice(b",\"MillisBehindLatest\":");
        write_json(out, &ms);
    }
    if let Some(children) = &o.child_shards {
        out.extend_from_slice(b",\"ChildShards\":");
        write_json(out, children);
    }
    out.push(b'}');
}

/// One record, its members in the order `model::Record` declares them.
fn write_record(out: &mut Vec<u8>, r: &Record) {
    out.extend_from_slice(b"{\"SequenceNumber\":");
    write_json(out, &r.sequence_number);
    if let Some(t) = &r.approximate_arrival_timestamp {
        out.extend_from_slice(b",\"ApproximateArrivalTimestamp\":");
        write_json(out, t);
    }
    out.extend_from_slice(b",\"Data\":\"");
    let start = out.len();
    let len = base64::encoded_len(r.data.0.len(), true).unwrap_or(0);
    out.resize(start + len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(&r.data.0, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.extend_from_slice(b"\",\"PartitionKey\":");
    write_json(out, &r.partition_key);
    if let Some(e) = &r.encryption_type {
        out.extend_from_slice(b",\"EncryptionType\":");
        write_json(out, e);
    }
    out.push(b'}');
}

fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing plain values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kinesis_proto::codec::{Blob, Timestamp};
    use kinesis_proto::model::{ChildShard, HashKeyRange};
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = Record> {
        (
            "[0-9]{1,56}",
            proptest::option::of(0i64..4_000_000_000_000),
            proptest::collection::vec(any::<u8>(), 0..300),
            // Keys with quotes, backslashes, controls and non-ASCII must be escaped alike.
            "(?s).{0,40}",
            proptest::option::of(prop_oneof![
                Just("NONE".to_string()),
                Just("KMS".to_string())
            ]),
        )
            .prop_map(|(seq, ts, data, key, enc)| Record {
                sequence_number: seq,
                approximate_arrival_timestamp: ts.map(Timestamp),
                data: Blob(Bytes::from(data)),
                partition_key: key,
                encryption_type: enc,
            })
    }

    proptest! {
        #[test]
        fn matches_the_generic_serializer(
            records in proptest::collection::vec(record(), 0..20),
            iterator in proptest::option::of("[A-Za-z0-9+/=]{0,80}"),
            behind in proptest::option::of(any::<i64>()),
            children in any::<bool>(),
        ) {
            let o = GetRecordsOutput {
                records,
                next_shard_iterator: iterator,
                millis_behind_latest: behind,
                child_shards: children.then(|| vec![ChildShard {
                    shard_id: "shardId-000000000001".into(),
                    parent_shards: vec!["shardId-000000000000".into()],
                    hash_key_range: HashKeyRange {
                        starting_hash_key: "0".into(),
                        ending_hash_key: "42".into(),
                    },
                }]),
            };
            let mut ours = Vec::new();
            write_get_records_json(&mut ours, &o);
            let generic = serde_json::to_vec(&o).expect("serializes");
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&generic));
        }
    }
}
