//! PutRecords' JSON answer, written by hand from the [`PutOutcome`]: the
//! generic serializer would need two strings made per record (sequence
//! number and shard id) and scans each for characters to escape, which cost
//! as much as storing the record. Byte for byte what serde writes for
//! [`PutOutcome::into_output`] (tested below).

use super::records::{INTERNAL_FAILURE, PutOutcome, PutResult};
use kinesis_proto::error::ErrorCode;
use kinesis_proto::json_out::{append_json, append_member};
use kinesis_proto::sequence;

/// Append `o`'s answer as JSON.
pub fn write_put_records_json(out: &mut Vec<u8>, o: &PutOutcome) {
    // Each shard's id, quoted once per request rather than once per record.
    let ids: Vec<Vec<u8>> = o
        .shards
        .iter()
        .map(|s| serde_json::to_vec(&s.id).unwrap_or_default())
        .collect();
    out.reserve(32 + o.results.len() * 112);
    out.extend_from_slice(b"{\"FailedRecordCount\":");
    append_json(out, &o.failed_record_count);
    out.extend_from_slice(b",\"Records\":[");
    for (i, r) in o.results.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match *r {
            PutResult::Stored { shard, counter } => {
                out.extend_from_slice(b"{\"SequenceNumber\":\"");
                out.extend_from_slice(&sequence::layout::encode_digits(
                    counter,
                    o.shards[shard].index,
                ));
                out.extend_from_slice(b"\",\"ShardId\":");
                out.extend_from_slice(&ids[shard]);
            }
            PutResult::Throttled { shard } => {
                out.extend_from_slice(b"{\"ErrorCode\":");
                append_json(out, ErrorCode::ProvisionedThroughputExceeded.as_str());
                append_member(out, b",\"ErrorMessage\":", &o.throttle_message(shard));
            }
            PutResult::Internal => {
                out.extend_from_slice(b"{\"ErrorCode\":");
                append_json(out, INTERNAL_FAILURE.0);
                append_member(out, b",\"ErrorMessage\":", INTERNAL_FAILURE.1);
            }
        }
        out.push(b'}');
    }
    out.push(b']');
    append_member(out, b",\"EncryptionType\":", o.encryption_type);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;
    use crate::ops::records::PutEntry;
    use crate::service::Service;
    use crate::store::PartitionKey;
    use bytes::Bytes;
    use kinesis_proto::model::{CreateStreamInput, StreamRef};
    use proptest::prelude::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn service_with_stream(shards: i64) -> Arc<Service> {
        // The service's own limits: 1,000 records/s per shard, so larger
        // requests have throttled entries among stored ones.
        let svc = Service::new(BrokerConfig::builder().state_delays(Duration::ZERO).build());
        svc.create_stream(CreateStreamInput {
            stream_name: Some("s".into()),
            shard_count: Some(shards),
            ..Default::default()
        })
        .unwrap();
        svc
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn matches_the_generic_serializer(
            shards in 1i64..4,
            keys in proptest::collection::vec("[a-z\u{e9}\"\\\\]{1,12}", 1..400),
            internal in proptest::collection::vec(any::<bool>(), 0..20),
        ) {
            let svc = service_with_stream(shards);
            for _ in 0..3 {
                let entries = keys
                    .iter()
                    .map(|k| PutEntry {
                        partition_key: PartitionKey::from(k.as_str()),
                        data: Bytes::from_static(b"data"),
                        explicit_hash_key: None,
                    })
                    .collect();
                let mut o = svc.put_entries(&StreamRef::name("s"), entries).unwrap();
                // A shard closing mid-write is rare; mark some entries so.
                for (r, &bad) in o.results.iter_mut().zip(&internal) {
                    if bad {
                        *r = PutResult::Internal;
                    }
                }
                let mut json = Vec::new();
                write_put_records_json(&mut json, &o);
                let want = serde_json::to_vec(&o.into_output()).unwrap();
                prop_assert_eq!(String::from_utf8(json).unwrap(), String::from_utf8(want).unwrap());
            }
        }
    }

    #[test]
    fn a_busy_shard_answers_with_throttled_entries() {
        let svc = service_with_stream(1);
        let entries = (0..1_200)
            .map(|i| PutEntry {
                partition_key: PartitionKey::from(format!("k{i}")),
                data: Bytes::from_static(b"x"),
                explicit_hash_key: None,
            })
            .collect();
        let o = svc.put_entries(&StreamRef::name("s"), entries).unwrap();
        let mut json = Vec::new();
        write_put_records_json(&mut json, &o);
        let text = String::from_utf8(json).unwrap();
        assert!(o.failed_record_count > 0, "{}", o.failed_record_count);
        assert!(text.contains("ProvisionedThroughputExceededException"));
    }
}
