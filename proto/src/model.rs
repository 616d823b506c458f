//! Request and response shapes of the Kinesis Data Streams API (2013-12-02),
//! with member names exactly as AWS spells them.
//!
//! Members the service requires are still `Option` (or defaulted) on requests,
//! so that a missing one reaches the broker's validation and is answered with
//! `ValidationException`, as the service does, instead of a parse failure.

use serde::{Deserialize, Serialize};

mod consumers;
mod operation;
mod records;
mod settings;
mod shards;
mod shared_inputs;
mod stream_ref;
mod streams;
mod tags;
mod wire_enums;

pub use consumers::*;
pub use operation::*;
pub use records::*;
pub use settings::*;
pub use shards::*;
pub use shared_inputs::*;
pub use stream_ref::*;
pub use streams::*;
pub use tags::*;
pub use wire_enums::*;

/// An output with no members (answered as an empty body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Encoding, Timestamp};

    #[test]
    fn every_target_resolves() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_target(&op.target()), Some(op));
        }
        assert_eq!(Operation::from_target("Kinesis_20131202.Nope"), None);
        assert_eq!(Operation::from_target("PutRecord"), None);
    }

    #[test]
    fn arn_members_are_spelled_as_aws_does() {
        let json = String::from_utf8(
            Encoding::Json
                .encode(&GetShardIteratorInput {
                    stream: StreamRef::arn("arn:aws:kinesis:us-east-1:123456789012:stream/s"),
                    shard_id: Some("shardId-000000000000".into()),
                    shard_iterator_type: Some("LATEST".into()),
                    ..Default::default()
                })
                .to_vec(),
        )
        .unwrap();
        assert_eq!(
            json,
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","ShardId":"shardId-000000000000","ShardIteratorType":"LATEST"}"#
        );
    }

    #[test]
    fn wire_enums_keep_unknown_values_as_sent() {
        let p: StartingPosition = Encoding::Json
            .decode(br#"{"Type":"AT_TIMESTAMP","Timestamp":1700000000}"#)
            .unwrap();
        assert_eq!(p.position_type, ShardIteratorType::AtTimestamp);
        let p: StartingPosition = Encoding::Json.decode(br#"{"Type":"NOPE"}"#).unwrap();
        assert!(!p.position_type.is_known());
        assert_eq!(p.position_type.as_str(), "NOPE");
        assert_eq!(
            Encoding::Json.encode(&p).to_vec(),
            br#"{"Type":"NOPE"}"#.to_vec()
        );
        let p: StartingPosition = Encoding::Json.decode(b"{}").unwrap();
        assert_eq!(p.position_type.as_str(), "");
        for v in ShardIteratorType::values() {
            assert_eq!(v.parse::<ShardIteratorType>().unwrap().as_str(), *v);
        }
        assert_eq!(ConsumerStatus::from("ACTIVE"), ConsumerStatus::Active);
        assert_eq!(StreamStatus::Updating.to_string(), "UPDATING");
    }

    #[test]
    fn put_records_output_matches_the_spec_example() {
        let out: PutRecordsOutput = Encoding::Json
            .decode(
                br#"{"FailedRecordCount":1,"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"},{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded"}],"EncryptionType":"NONE"}"#,
            )
            .unwrap();
        assert_eq!(out.failed_record_count, 1);
        assert_eq!(out.records.len(), 2);
        assert_eq!(
            out.records[1].error_code.as_deref(),
            Some("ProvisionedThroughputExceededException")
        );
    }

    #[test]
    fn subscribe_event_vector_payload_parses() {
        let payload = r#"{"ContinuationSequenceNumber":"49600871682957036442365024926191073437251060580128653314","MillisBehindLatest":0,"Records":[{"ApproximateArrivalTimestamp":1700000000.123,"Data":"aGVsbG8=","PartitionKey":"pk-1","SequenceNumber":"49600871682957036442365024926191073437251060580128653314"}]}"#;
        let ev: SubscribeToShardEvent = Encoding::Json.decode(payload.as_bytes()).unwrap();
        assert_eq!(ev.records[0].data.as_bytes(), b"hello");
        assert_eq!(
            ev.records[0].approximate_arrival_timestamp,
            Some(Timestamp(1_700_000_000_123))
        );
    }
}
