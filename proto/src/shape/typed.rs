//! The same constraints checked on an input already decoded into its model,
//! for the hot write operations. A valid PutRecords or PutRecord then costs
//! one parse instead of two (the generic check reads the body into a tree of
//! [`Node`](super::Node)s first). Only a "yes" is trusted: any input this
//! refuses goes through the generic [`check`](super::check), which writes
//! the service's message.

use super::inputs::{Member, Shape, input_shape};
use crate::model::{Operation, PutRecordInput, PutRecordsInput};
use crate::put_records_view::PutRecordsView;

/// Whether `input` satisfies PutRecords' input model, so the generic check
/// of its body would pass.
pub fn put_records_satisfies(input: &PutRecordsInput) -> bool {
    let Some(records) = &input.records else {
        return false;
    };
    records_satisfy(
        input.stream.stream_name.as_deref(),
        input.stream.stream_arn.as_deref(),
        records.len(),
        records.iter().map(|r| {
            (
                r.partition_key.as_deref(),
                r.explicit_hash_key.as_deref(),
                r.data.as_ref().map(|d| d.0.len()),
            )
        }),
    )
}

/// [`put_records_satisfies`] for a body read in place: the same answer as
/// for [`PutRecordsView::to_input`].
pub fn put_records_view_satisfies(view: &PutRecordsView) -> bool {
    records_satisfy(
        view.stream_name(),
        view.stream_arn(),
        view.entries().len(),
        view.entries()
            .map(|e| (e.partition_key(), e.explicit_hash_key(), e.data_len())),
    )
}

/// PutRecords' constraints on its stream members and on `n` entries of
/// (partition key, explicit hash key, data length).
fn records_satisfy<'a>(
    stream_name: Option<&str>,
    stream_arn: Option<&str>,
    n: usize,
    entries: impl Iterator<Item = (Option<&'a str>, Option<&'a str>, Option<usize>)>,
) -> bool {
    let members = input_shape(Operation::PutRecords);
    let Some(Member {
        shape:
            Shape::List {
                member: Shape::Struct(entry),
                min,
                max,
                member_len: None,
                ..
            },
        ..
    }) = find(members, "Records")
    else {
        return false;
    };
    if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
        return false;
    }
    // Looked up once, not once per record.
    let (Some(key), Some(hash_key), Some(data)) = (
        find(entry, "PartitionKey"),
        find(entry, "ExplicitHashKey"),
        find(entry, "Data"),
    ) else {
        return false;
    };
    stream_satisfies(members, stream_name, stream_arn) && { entries }.all(|(k, h, len)| {
        text_member(key, k) && text_member(hash_key, h) && blob_member(data, len)
    })
}

/// Whether `input` satisfies PutRecord's input model.
pub fn put_record_satisfies(input: &PutRecordInput) -> bool {
    let members = input_shape(Operation::PutRecord);
    stream_satisfies(
        members,
        input.stream.stream_name.as_deref(),
        input.stream.stream_arn.as_deref(),
    ) && text(members, "PartitionKey", input.partition_key.as_deref())
        && text(
            members,
            "ExplicitHashKey",
            input.explicit_hash_key.as_deref(),
        )
        && text(
            members,
            "SequenceNumberForOrdering",
            input.sequence_number_for_ordering.as_deref(),
        )
        && blob(members, "Data", input.data.as_ref().map(|d| d.0.len()))
}

fn stream_satisfies(members: &[Member], name: Option<&str>, arn: Option<&str>) -> bool {
    text(members, "StreamName", name) && text(members, "StreamARN", arn)
}

fn find<'m>(members: &'m [Member], name: &str) -> Option<&'m Member> {
    members.iter().find(|m| m.name == name)
}

/// A text member: absent only if optional, else within its length, pattern and values.
fn text(members: &[Member], name: &str, v: Option<&str>) -> bool {
    find(members, name).is_some_and(|mem| text_member(mem, v))
}

fn text_member(mem: &Member, v: Option<&str>) -> bool {
    let Some(s) = v else {
        return !mem.required;
    };
    let Shape::Str {
        min,
        max,
        pattern,
        values,
    } = mem.shape
    else {
        return false;
    };
    let n = s.chars().count();
    pattern.is_none_or(|p| p.matches(s))
        && (values.is_empty() || values.contains(&s))
        && min.is_none_or(|m| n >= m)
        && max.is_none_or(|m| n <= m)
}

/// A binary member of `len` bytes: absent only if optional, else within its size.
fn blob(members: &[Member], name: &str, len: Option<usize>) -> bool {
    find(members, name).is_some_and(|mem| blob_member(mem, len))
}

fn blob_member(mem: &Member, len: Option<usize>) -> bool {
    match (len, mem.shape) {
        (None, _) => !mem.required,
        (Some(n), Shape::Blob { max }) => n <= *max,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Blob, Encoding};
    use crate::model::{PutRecordsRequestEntry, StreamRef};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            Just(String::new()),
            "[a-z]{1,20}",
            "(?s).{250,260}",
        ])
    }

    fn hash_key() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            Just("0".to_string()),
            "[1-9][0-9]{0,38}",
            "0[0-9]{1,3}",
            "[0-9]{40,41}",
            Just(String::new()),
            "[a-z ]{1,5}",
        ])
    }

    fn data() -> impl Strategy<Value = Option<usize>> {
        proptest::option::of(prop_oneof![0usize..200, Just(1_048_576), Just(1_048_577)])
    }

    fn entry() -> impl Strategy<Value = PutRecordsRequestEntry> {
        entry_with(data())
    }

    /// Entries of a few bytes, for lists at the 500-record bound (a debug
    /// build would spend minutes on 500 megabyte-sized records).
    fn small_entry() -> impl Strategy<Value = PutRecordsRequestEntry> {
        entry_with(proptest::option::of(0usize..8))
    }

    fn entry_with(
        data: impl Strategy<Value = Option<usize>>,
    ) -> impl Strategy<Value = PutRecordsRequestEntry> {
        (key(), hash_key(), data).prop_map(|(k, h, d)| PutRecordsRequestEntry {
            data: d.map(|n| Blob(Bytes::from(vec![7u8; n]))),
            partition_key: k,
            explicit_hash_key: h,
        })
    }

    fn stream() -> impl Strategy<Value = StreamRef> {
        (
            proptest::option::of(prop_oneof![
                "[a-zA-Z0-9_.-]{1,20}",
                Just(String::new()),
                "[a-z]{1,3} [a-z]{1,3}",
                "[a-z]{129,130}"
            ]),
            proptest::option::of(prop_oneof![
                Just("arn:aws:kinesis:us-east-1:000000000000:stream/s".to_string()),
                Just("not-an-arn".to_string()),
            ]),
        )
            .prop_map(|(stream_name, stream_arn)| StreamRef {
                stream_name,
                stream_arn,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn put_records_agrees_with_the_generic_check(
            records in proptest::option::of(prop_oneof![
                proptest::collection::vec(entry(), 0..4),
                proptest::collection::vec(small_entry(), 499..502),
            ]),
            stream in stream(),
        ) {
            let input = PutRecordsInput { records, stream };
            let body = serde_json::to_vec(&input).expect("serializes");
            let generic = super::super::check(Operation::PutRecords, Encoding::Json, &body);
            prop_assert_eq!(put_records_satisfies(&input), generic.is_ok(), "{:?}", generic);
            // The same body read in place gets the same answer (a body
            // without Records is left to the generic decoder).
            let view = PutRecordsView::read(&Bytes::from(body));
            prop_assert_eq!(view.is_some(), input.records.is_some());
            if let Some(view) = view {
                prop_assert_eq!(put_records_view_satisfies(&view), generic.is_ok());
            }
        }

        #[test]
        fn put_record_agrees_with_the_generic_check(
            e in entry(),
            seq in proptest::option::of(prop_oneof!["[0-9]{1,20}", Just(String::new()), "[a-z]{1,3}"]),
            stream in stream(),
        ) {
            let input = PutRecordInput {
                stream,
                data: e.data,
                partition_key: e.partition_key,
                explicit_hash_key: e.explicit_hash_key,
                sequence_number_for_ordering: seq,
            };
            let body = serde_json::to_vec(&input).expect("serializes");
            let generic = super::super::check(Operation::PutRecord, Encoding::Json, &body);
            prop_assert_eq!(put_record_satisfies(&input), generic.is_ok(), "{:?}", generic);
        }
    }
}
