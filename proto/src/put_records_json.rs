//! A PutRecords JSON body written by hand, for the producer's hottest request.
//!
//! Through serde, every record's base64 text is formatted in small chunks and
//! then scanned again for characters to escape, which cost the producer more
//! than the rest of the body together. Here it is encoded straight into the
//! body (`json_out`); the short strings still go through serde. The bytes are
//! exactly serde's (property-tested below), so a peer cannot tell the two apart.

use crate::json_out::{append_base64, append_json};
use crate::model::{PutRecordsInput, PutRecordsRequestEntry};

/// The JSON body of `input`, byte for byte what `serde_json::to_vec` makes of it.
pub fn to_vec(input: &PutRecordsInput) -> Vec<u8> {
    let entries = input.records.as_deref().unwrap_or_default();
    let size = entries.iter().map(entry_size).sum::<usize>() + 128;
    let mut out = Vec::with_capacity(size);
    let mut object = Object::open(&mut out);
    if let Some(records) = &input.records {
        object.member(&mut out, "Records");
        out.push(b'[');
        for (i, e) in records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_entry(&mut out, e);
        }
        out.push(b']');
    }
    // The stream reference is flattened after the records, as serde orders it.
    if let Some(name) = &input.stream.stream_name {
        object.member(&mut out, "StreamName");
        append_json(&mut out, name);
    }
    if let Some(arn) = &input.stream.stream_arn {
        object.member(&mut out, "StreamARN");
        append_json(&mut out, arn);
    }
    out.push(b'}');
    out
}

/// An upper bound of the bytes one entry takes when its strings need no escapes.
fn entry_size(e: &PutRecordsRequestEntry) -> usize {
    let data = e.data.as_ref().map_or(0, |d| d.0.len().div_ceil(3) * 4);
    let key = e.partition_key.as_ref().map_or(0, String::len);
    let ehk = e.explicit_hash_key.as_ref().map_or(0, String::len);
    data + key + ehk + 64
}

fn write_entry(out: &mut Vec<u8>, e: &PutRecordsRequestEntry) {
    let mut object = Object::open(out);
    if let Some(data) = &e.data {
        // Base64 never needs escaping: encoded straight into the body.
        object.member(out, "Data");
        out.push(b'"');
        append_base64(out, &data.0);
        out.push(b'"');
    }
    if let Some(ehk) = &e.explicit_hash_key {
        object.member(out, "ExplicitHashKey");
        append_json(out, ehk);
    }
    if let Some(key) = &e.partition_key {
        object.member(out, "PartitionKey");
        append_json(out, key);
    }
    out.push(b'}');
}

/// A JSON object being written: a comma goes before every member but the first.
struct Object {
    first: bool,
}

impl Object {
    fn open(out: &mut Vec<u8>) -> Object {
        out.push(b'{');
        Object { first: true }
    }

    /// `"name":`, after a comma unless it is the first member.
    fn member(&mut self, out: &mut Vec<u8>, name: &str) {
        if !std::mem::take(&mut self.first) {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Blob;
    use crate::model::StreamRef;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9-]{0,12}",
            any::<String>(),
            Just("q\"uote\\back\u{1}\n\u{7f}é".to_string()),
        ]
    }

    fn entry() -> impl Strategy<Value = PutRecordsRequestEntry> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..70)),
            proptest::option::of(text()),
            proptest::option::of(text()),
        )
            .prop_map(|(data, key, ehk)| PutRecordsRequestEntry {
                data: data.map(|d| Blob(Bytes::from(d))),
                explicit_hash_key: ehk,
                partition_key: key,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_body_is_serdes_byte_for_byte(
            records in proptest::option::of(proptest::collection::vec(entry(), 0..6)),
            name in proptest::option::of(text()),
            arn in proptest::option::of(text()),
        ) {
            let input = PutRecordsInput {
                records,
                stream: StreamRef { stream_name: name, stream_arn: arn },
            };
            let ours = to_vec(&input);
            let serde = serde_json::to_vec(&input).expect("serializes");
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde));
        }
    }

    #[test]
    fn a_typical_batch_is_read_back_as_written() {
        let input = PutRecordsInput {
            records: Some(
                (0..3)
                    .map(|i| PutRecordsRequestEntry {
                        data: Some(Blob(Bytes::from(vec![i as u8; 100]))),
                        explicit_hash_key: None,
                        partition_key: Some(format!("key-{i}")),
                    })
                    .collect(),
            ),
            stream: StreamRef {
                stream_name: Some("orders".into()),
                stream_arn: None,
            },
        };
        let back: PutRecordsInput = serde_json::from_slice(&to_vec(&input)).expect("parses");
        assert_eq!(back, input);
    }
}
