//! Each operation's input shape as the service's model declares it — member
//! types, required members, lengths, patterns, numeric ranges, enum values —
//! and the check Kinesis runs on a request body before the operation itself:
//! a member of the wrong type is a `SerializationException`, broken
//! constraints are one `ValidationException` listing up to ten of them
//! (docs/validation.md). An operation gets its checks by declaring its shape
//! in [`input_shape`].

mod check;
mod inputs;
mod node;
mod pattern;
mod typed;

pub use check::{check, check_node, is_structure};
pub use inputs::{Member, Shape, input_shape};
pub use node::Node;
pub use pattern::Pattern;
pub use typed::{put_record_satisfies, put_records_satisfies, put_records_view_satisfies};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use crate::codec::Encoding;
    use crate::error::KinesisError;
    use crate::model::Operation;

    fn json(op: Operation, body: &str) -> Result<(), KinesisError> {
        check(op, Encoding::Json, body.as_bytes())
    }

    #[test]
    fn aggregates_in_the_recorded_order() {
        let e = json(
            Operation::CreateStream,
            r#"{"StreamName":"","ShardCount":0}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Validation);
        assert_eq!(
            e.message,
            "3 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1; Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        let e = json(Operation::CreateStream, "{}").unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn integers_are_clamped_and_floored() {
        let e = json(Operation::ListStreams, r#"{"Limit":100000000000}"#).unwrap_err();
        assert!(
            e.message.contains("Value '2147483647' at 'limit'"),
            "{}",
            e.message
        );
        assert!(json(Operation::ListStreams, r#"{"Limit":1.9}"#).is_ok());
    }

    #[test]
    fn nested_members_have_indexed_paths_and_at_most_ten_are_listed() {
        let records: Vec<String> = (0..501)
            .map(|_| r#"{"PartitionKey":"","Data":""}"#.to_string())
            .collect();
        let body = format!(r#"{{"StreamName":"","Records":[{}]}}"#, records.join(","));
        let e = json(Operation::PutRecords, &body).unwrap_err();
        assert!(e.message.starts_with("10 validation errors detected: Value '[com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@c965e310, "));
        assert!(e.message.contains("at 'records.9.member.partitionKey'"));
        assert!(!e.message.contains("records.10."));
        let e = json(
            Operation::PutRecord,
            r#"{"StreamName":"s","PartitionKey":"k","Data":"AAAA","ExplicitHashKey":"01"}"#,
        )
        .unwrap_err();
        assert!(e.message.contains("Value '01' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})"));
    }

    #[test]
    fn wrong_types_are_serialization_errors_in_the_services_words() {
        for (body, msg) in [
            (
                r#"{"StreamName":true}"#,
                "class java.lang.Boolean can not be converted to an String",
            ),
            (
                r#"{"StreamName":12}"#,
                "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
            ),
            (
                r#"{"StreamName":[]}"#,
                "Start of list found where not expected",
            ),
            (
                r#"{"StreamName":{}}"#,
                "Start of structure or map found where not expected.",
            ),
            (
                r#"{"Limit":"1"}"#,
                "class java.lang.String can not be converted to an Integer",
            ),
            (
                r#"{"Limit":false}"#,
                "class java.lang.Boolean can not be converted to an Integer",
            ),
        ] {
            let e = json(Operation::DescribeStream, body).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (ErrorCode::Serialization, msg),
                "{body}"
            );
        }
        let e = json(Operation::AddTagsToStream, r#"{"Tags":5}"#).unwrap_err();
        assert_eq!(e.message, "Expected map or null");
        let e = json(Operation::RemoveTagsFromStream, r#"{"TagKeys":"a"}"#).unwrap_err();
        assert_eq!(e.message, "Expected list or null");
        let e = json(Operation::CreateStream, r#"{"StreamModeDetails":"x"}"#).unwrap_err();
        assert_eq!(e.message, "Expected null");
        let e = json(Operation::PutRecord, r#"{"Data":"23456"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"
        );
        let e = json(Operation::PutRecord, r#"{"Data":"=+/="}"#).unwrap_err();
        assert_eq!(
            e.message,
            "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"
        );
        let e = json(Operation::PutRecord, r#"{"Data":"+/+="}"#).unwrap_err();
        assert_eq!(
            e.message,
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"
        );
        let e = json(Operation::GetShardIterator, r#"{"Timestamp":"x"}"#).unwrap_err();
        assert_eq!(
            e.message,
            "class java.lang.String can not be converted to milliseconds since epoch"
        );
        let e = json(
            Operation::DeleteStream,
            r#"{"EnforceConsumerDeletion":"yes"}"#,
        )
        .unwrap_err();
        assert_eq!(e.message, "'YES' can not be converted to an Boolean");
        for garbage in ["", "hello", "[]", "null", "5"] {
            let e = json(Operation::ListStreams, garbage).unwrap_err();
            assert_eq!(
                (e.code, e.message.as_str()),
                (ErrorCode::Serialization, ""),
                "{garbage}"
            );
        }
    }

    #[test]
    fn cbor_bodies_get_the_same_checks() {
        let body = Encoding::Cbor.encode(&serde_json::json!({"StreamName": 5}));
        let e = check(Operation::DeleteStream, Encoding::Cbor, &body).unwrap_err();
        assert_eq!(e.code, ErrorCode::Serialization);
        let value = ciborium::Value::Map(vec![(
            ciborium::Value::Text("Data".into()),
            ciborium::Value::Bytes(vec![0; 1_048_577]),
        )]);
        let body = Encoding::Cbor.encode(&value);
        let e = check(Operation::PutRecord, Encoding::Cbor, &body).unwrap_err();
        assert!(
            e.message.contains(
                "Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data'"
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn tag_bounds_are_one_constraint_of_the_whole_map() {
        let long = "a".repeat(129);
        let e = json(
            Operation::AddTagsToStream,
            &format!(r#"{{"StreamName":"s","Tags":{{"a":"1","{long}":"3"}}}}"#),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "1 validation error detected: Value '{{a=1, {long}=3}}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
            )
        );
        let e = json(
            Operation::RemoveTagsFromStream,
            &format!(r#"{{"StreamName":"s","TagKeys":["a","{long}"]}}"#),
        )
        .unwrap_err();
        assert!(e.message.ends_with("Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"));
    }

    #[test]
    fn structures_are_told_from_other_bodies() {
        assert!(is_structure(Encoding::Json, br#"{"a":[1,{"b":null}]}"#));
        for bad in [&b"[]"[..], b"null", b"hello", b"{", b"5"] {
            assert!(!is_structure(Encoding::Json, bad));
        }
        assert!(is_structure(Encoding::Cbor, &[0xa0]));
        assert!(!is_structure(Encoding::Cbor, &[0x80]));
    }

    #[test]
    fn patterns() {
        assert!(Pattern::StreamArn.matches("arn:aws:kinesis:us-east-1:123456789012:stream/s"));
        assert!(!Pattern::StreamArn.matches("arn:aws:kinesis:us-east-1:12345:stream/s"));
        assert!(
            Pattern::ConsumerArn
                .matches("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1700000000")
        );
        assert!(
            !Pattern::ConsumerArn
                .matches("arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c")
        );
        assert!(Pattern::HashKey.matches("0"));
        assert!(!Pattern::HashKey.matches(""));
        assert!(!Pattern::HashKey.matches(&"9".repeat(40)));
        assert!(Pattern::SequenceNumber.matches(&"9".repeat(129)));
    }

    #[test]
    fn every_operation_accepts_an_empty_valid_shape() {
        for op in Operation::ALL {
            // Members all optional or all reported missing, never a panic.
            let _ = json(op, "{}");
        }
    }
}
