//! Entry points for fuzzing the decoders that take outside bytes: request and
//! response bodies (JSON and CBOR), event-stream frames and KPL aggregates.
//!
//! The fuzz crate (`fuzz/`, cargo-fuzz) and this crate's property tests call the
//! same functions, so a crash found by either is a failing test in both. Each
//! function panics only when a decoder breaks one of its own promises (a
//! decoded value that does not survive re-encoding, a message count beyond what
//! the input can hold); malformed input itself must be refused, never panic.

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aggregation::{self, MAGIC};
use crate::codec::Encoding;
use crate::event_stream::{self, Decoder};
use crate::model::*;

/// Decode `body` as `T`; whatever decodes must re-encode and decode to the same value.
fn round_trip<T>(encoding: Encoding, body: &[u8])
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(value) = encoding.decode::<T>(body) else {
        return;
    };
    let again = encoding.encode(&value);
    match encoding.decode::<T>(&again) {
        Ok(back) => assert_eq!(back, value, "{encoding:?} re-encoding changed the value"),
        Err(e) => panic!("{encoding:?}: a decoded value does not decode once re-encoded: {e}"),
    }
}

type BodyDecoder = fn(Encoding, &[u8]);

/// The broker's in-place PutRecords reader: whatever it reads, the generic
/// decoder must read the same way.
fn put_records_view(encoding: Encoding, body: &[u8]) {
    if encoding != Encoding::Json {
        return;
    }
    let Some(view) = crate::put_records_view::PutRecordsView::read(&Bytes::copy_from_slice(body))
    else {
        return;
    };
    match encoding.decode::<PutRecordsInput>(body) {
        Ok(generic) => assert_eq!(view.to_input(), generic, "the in-place reader disagrees"),
        Err(e) => panic!("the in-place reader read a body the decoder refuses: {e}"),
    }
}

/// Every operation's request type, then the response types the client decodes.
const BODIES: &[BodyDecoder] = &[
    round_trip::<CreateStreamInput>,
    round_trip::<DeleteStreamInput>,
    round_trip::<DescribeStreamInput>,
    round_trip::<DescribeStreamSummaryInput>,
    round_trip::<ListStreamsInput>,
    round_trip::<ListShardsInput>,
    round_trip::<PutRecordInput>,
    round_trip::<PutRecordsInput>,
    round_trip::<GetShardIteratorInput>,
    round_trip::<GetRecordsInput>,
    round_trip::<SplitShardInput>,
    round_trip::<MergeShardsInput>,
    round_trip::<UpdateShardCountInput>,
    round_trip::<RetentionPeriodInput>,
    round_trip::<AddTagsToStreamInput>,
    round_trip::<RemoveTagsFromStreamInput>,
    round_trip::<ListTagsForStreamInput>,
    round_trip::<EnhancedMonitoringInput>,
    round_trip::<UpdateStreamModeInput>,
    round_trip::<StreamEncryptionInput>,
    round_trip::<RegisterStreamConsumerInput>,
    round_trip::<ConsumerRef>,
    round_trip::<ListStreamConsumersInput>,
    round_trip::<SubscribeToShardInput>,
    round_trip::<Empty>,
    round_trip::<DescribeStreamOutput>,
    round_trip::<DescribeStreamSummaryOutput>,
    round_trip::<ListStreamsOutput>,
    round_trip::<ListShardsOutput>,
    round_trip::<PutRecordOutput>,
    round_trip::<PutRecordsOutput>,
    round_trip::<GetShardIteratorOutput>,
    round_trip::<GetRecordsOutput>,
    round_trip::<UpdateShardCountOutput>,
    round_trip::<ListTagsForStreamOutput>,
    round_trip::<DescribeLimitsOutput>,
    round_trip::<EnhancedMonitoringOutput>,
    round_trip::<RegisterStreamConsumerOutput>,
    round_trip::<DescribeStreamConsumerOutput>,
    round_trip::<ListStreamConsumersOutput>,
    round_trip::<SubscribeToShardEvent>,
    // Last, so the selectors of the types above stay as they were.
    put_records_view,
];

/// How many body types [`request_body`] picks from (its first byte, modulo this, times two encodings).
pub const BODY_TYPES: usize = BODIES.len();

/// A request or response body: byte 0 picks the type and the encoding (JSON or
/// CBOR), the rest is the body.
pub fn request_body(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let selector = usize::from(selector);
    let encoding = if selector % 2 == 0 {
        Encoding::Json
    } else {
        Encoding::Cbor
    };
    BODIES[(selector / 2) % BODIES.len()](encoding, body);
}

/// Event-stream frames fed to the incremental decoder: byte 0 is the chunk size
/// the bytes arrive in; when byte 1 is odd, the rest is one frame whose length
/// and CRCs are corrected first, so the headers and payload parsers are reached.
pub fn event_stream(data: &[u8]) {
    let [chunk, fix, rest @ ..] = data else {
        return;
    };
    let mut bytes = rest.to_vec();
    if fix % 2 == 1 && bytes.len() >= 16 {
        let total = bytes.len() as u32;
        bytes[..4].copy_from_slice(&total.to_be_bytes());
        let prelude = crc32fast::hash(&bytes[..8]);
        bytes[8..12].copy_from_slice(&prelude.to_be_bytes());
        let end = bytes.len() - 4;
        let message = crc32fast::hash(&bytes[..end]);
        bytes[end..].copy_from_slice(&message.to_be_bytes());
    }
    // A small frame limit, so that lengths near it are explored too.
    let mut decoder = Decoder::new(64 * 1024);
    let mut messages = 0usize;
    for piece in bytes.chunks(usize::from(*chunk).max(1)) {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    messages += 1;
                    // A frame is at least 16 bytes: prelude and message CRC.
                    assert!(
                        messages * 16 <= bytes.len(),
                        "more messages than bytes allow"
                    );
                    let encoded = message.to_bytes().expect("a decoded message re-encodes");
                    let mut buf = BytesMut::from(&encoded[..]);
                    let back = event_stream::decode_frame(&mut buf, usize::MAX)
                        .expect("a re-encoded message decodes")
                        .expect("a re-encoded message is complete");
                    assert_eq!(back, message, "re-encoding changed the message");
                }
                Ok(None) => break,
                // Errors are sticky: the stream is dropped.
                Err(_) => return,
            }
        }
    }
}

/// A Kinesis record's data deaggregated: when byte 0 is odd, the rest is wrapped
/// as magic + message + MD5 so the protobuf parser is reached; otherwise it is
/// taken as the record's data as is.
pub fn aggregated_record(data: &[u8]) {
    let Some((&wrap, rest)) = data.split_first() else {
        return;
    };
    let data = if wrap % 2 == 1 {
        let mut framed = MAGIC.to_vec();
        framed.extend_from_slice(rest);
        framed.extend_from_slice(&Md5::digest(rest));
        Bytes::from(framed)
    } else {
        Bytes::copy_from_slice(rest)
    };
    let records = aggregation::deaggregate("outer", None, data.clone());
    let aggregated = aggregation::is_aggregated(&data);
    assert_eq!(aggregated, aggregation::parse(&data).is_some());
    assert_eq!(aggregated, aggregation::try_deaggregate(&data).is_some());
    if aggregated {
        // Each user record takes at least two bytes of the message (its tag and length).
        assert!(
            records.len() * 2 <= data.len(),
            "more records than bytes allow"
        );
        assert!(records.iter().all(|r| r.aggregated));
    } else {
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].data, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Blob, Timestamp};
    use crate::event_stream::{Header, Message};
    use proptest::prelude::*;

    /// Bodies of real requests to mutate, in both encodings.
    fn seeds() -> Vec<(usize, Vec<u8>)> {
        let put = PutRecordsInput {
            records: Some(vec![
                PutRecordsRequestEntry {
                    data: Some(Blob(Bytes::from_static(b"hello"))),
                    partition_key: Some("pk".into()),
                    explicit_hash_key: Some("170141183460469231731687303715884105728".into()),
                };
                3
            ]),
            stream: StreamRef::name("s"),
        };
        let iterator = GetShardIteratorInput {
            stream: StreamRef::name("s"),
            shard_id: Some("shardId-000000000000".into()),
            shard_iterator_type: Some("AT_TIMESTAMP".into()),
            timestamp: Some(Timestamp::from_millis(1_700_000_000_123)),
            ..GetShardIteratorInput::default()
        };
        let create = CreateStreamInput {
            stream_name: Some("s".into()),
            shard_count: Some(4),
            ..CreateStreamInput::default()
        };
        let index = |name: usize| name * 2;
        let view = index(BODIES.len() - 1);
        let mut out = Vec::new();
        for (enc_bit, enc) in [(0, Encoding::Json), (1, Encoding::Cbor)] {
            out.push((index(7) + enc_bit, enc.encode(&put).to_vec()));
            out.push((index(8) + enc_bit, enc.encode(&iterator).to_vec()));
            out.push((index(0) + enc_bit, enc.encode(&create).to_vec()));
            out.push((view + enc_bit, enc.encode(&put).to_vec()));
        }
        out
    }

    /// Flip, drop, insert or truncate at the given positions.
    fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
        for &(at, kind, value) in edits {
            if bytes.is_empty() {
                bytes.push(value);
                continue;
            }
            let at = at % bytes.len();
            match kind % 4 {
                0 => bytes[at] ^= value.max(1),
                1 => {
                    bytes.remove(at);
                }
                2 => bytes.insert(at, value),
                _ => bytes.truncate(at),
            }
        }
        bytes
    }

    fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
        proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let value = prop_oneof![
            any::<bool>().prop_map(event_stream::HeaderValue::Bool),
            any::<i32>().prop_map(event_stream::HeaderValue::Int32),
            "[a-z/-]{0,20}".prop_map(event_stream::HeaderValue::String),
        ];
        (
            proptest::collection::vec(("[:a-z-]{1,12}", value), 0..5),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(headers, payload)| {
                Message::new(
                    headers
                        .into_iter()
                        .map(|(name, value)| Header::new(name, value))
                        .collect(),
                    payload,
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bodies_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            request_body(&data);
        }

        #[test]
        fn mutated_real_bodies_never_panic(seed in 0usize..8, edits in edits(), any_type in any::<u8>()) {
            let (selector, body) = seeds().swap_remove(seed);
            let body = mutate(body, &edits);
            // The seed's own type, and (keeping its encoding) any other type.
            for selector in [selector, (usize::from(any_type) & !1) | (selector & 1)] {
                let mut data = vec![(selector % 256) as u8];
                data.extend_from_slice(&body);
                request_body(&data);
            }
        }

        #[test]
        fn arbitrary_event_stream_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            event_stream(&data);
        }

        #[test]
        fn mutated_event_stream_frames_never_panic(
            messages in proptest::collection::vec(arb_message(), 1..4),
            edits in edits(),
            chunk in any::<u8>(),
            fix in any::<u8>(),
        ) {
            let mut frames = BytesMut::new();
            for m in &messages {
                event_stream::encode(m, &mut frames).expect("encodes");
            }
            let mut data = vec![chunk, fix];
            data.extend_from_slice(&mutate(frames.to_vec(), &edits));
            event_stream(&data);
        }

        #[test]
        fn arbitrary_aggregates_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            aggregated_record(&data);
        }

        #[test]
        fn mutated_aggregates_never_panic(
            keys in proptest::collection::vec("[a-z]{0,8}", 1..4),
            count in 1usize..20,
            edits in edits(),
        ) {
            let records: Vec<aggregation::UserRecord> = (0..count)
                .map(|i| aggregation::UserRecord::new(keys[i % keys.len()].clone(), vec![i as u8; i]))
                .collect();
            let framed = aggregation::encode(&records);
            // The message alone, mutated, then framed with a correct digest.
            let message = framed[MAGIC.len()..framed.len() - aggregation::DIGEST_LEN].to_vec();
            let mut data = vec![1];
            data.extend_from_slice(&mutate(message, &edits));
            aggregated_record(&data);
        }
    }

    #[test]
    fn every_body_type_is_reachable() {
        // Selectors 0..2 * BODY_TYPES reach each type in each encoding once.
        for selector in 0..(2 * BODY_TYPES).min(256) {
            request_body(&[selector as u8, b'{', b'}']);
            request_body(&[selector as u8, 0xa0]);
        }
    }
}
