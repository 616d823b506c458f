//! GetRecords' JSON answer written by hand, byte for byte what serializing
//! `model::GetRecordsOutput` gives (`kinesis_proto::json_out` says why).

use kinesis_proto::json_out::{append_base64, append_json, append_member};
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
        append_member(out, b",\"NextShardIterator\":", it);
    }
    if let Some(ms) = o.millis_behind_latest {
        append_member(out, b",\"MillisBehindLatest\":", &ms);
    }
    if let Some(children) = &o.child_shards {
        append_member(out, b",\"ChildShards\":", children);
    }
    out.push(b'}');
}

/// One record, its members in the order `model::Record` declares them.
fn write_record(out: &mut Vec<u8>, r: &Record) {
    append_member(out, b"{\"SequenceNumber\":", &r.sequence_number);
    if let Some(t) = &r.approximate_arrival_timestamp {
        append_member(out, b",\"ApproximateArrivalTimestamp\":", t);
    }
    out.extend_from_slice(b",\"Data\":\"");
    append_base64(out, &r.data.0);
    out.extend_from_slice(b"\",\"PartitionKey\":");
    append_json(out, &r.partition_key);
    if let Some(e) = &r.encryption_type {
        append_member(out, b",\"EncryptionType\":", e);
    }
    out.push(b'}');
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
