//! Cross-checks our event-stream codec against smithy-rs's `aws-smithy-eventstream`, the codec
//! inside aws-sdk-rust, in both directions.

use aws_smithy_eventstream::frame::{
    DecodedFrame, MessageFrameDecoder, read_message_from, write_message_to,
};
use aws_smithy_types::DateTime;
use aws_smithy_types::event_stream as smithy;
use bytes::{Bytes, BytesMut};
use kinesis_proto::event_stream::{Decoder, Header, HeaderValue, Message, encode};
use proptest::prelude::*;

fn to_smithy(m: &Message) -> smithy::Message {
    let headers = m
        .headers
        .iter()
        .map(|h| {
            let value = match &h.value {
                HeaderValue::Bool(v) => smithy::HeaderValue::Bool(*v),
                HeaderValue::Byte(v) => smithy::HeaderValue::Byte(*v),
                HeaderValue::Int16(v) => smithy::HeaderValue::Int16(*v),
                HeaderValue::Int32(v) => smithy::HeaderValue::Int32(*v),
                HeaderValue::Int64(v) => smithy::HeaderValue::Int64(*v),
                HeaderValue::ByteArray(v) => smithy::HeaderValue::ByteArray(v.clone()),
                HeaderValue::String(v) => smithy::HeaderValue::String(v.clone().into()),
                HeaderValue::Timestamp(ms) => {
                    smithy::HeaderValue::Timestamp(DateTime::from_millis(*ms))
                }
                HeaderValue::Uuid(u) => smithy::HeaderValue::Uuid(u128::from_be_bytes(*u)),
            };
            smithy::Header::new(h.name.clone(), value)
        })
        .collect();
    smithy::Message::new_from_parts(headers, m.payload.clone())
}

fn from_smithy(m: &smithy::Message) -> Message {
    let headers = m
        .headers()
        .iter()
        .map(|h| {
            let value = match h.value() {
                smithy::HeaderValue::Bool(v) => HeaderValue::Bool(*v),
                smithy::HeaderValue::Byte(v) => HeaderValue::Byte(*v),
                smithy::HeaderValue::Int16(v) => HeaderValue::Int16(*v),
                smithy::HeaderValue::Int32(v) => HeaderValue::Int32(*v),
                smithy::HeaderValue::Int64(v) => HeaderValue::Int64(*v),
                smithy::HeaderValue::ByteArray(v) => HeaderValue::ByteArray(v.clone()),
                smithy::HeaderValue::String(v) => HeaderValue::String(v.as_str().to_owned()),
                smithy::HeaderValue::Timestamp(t) => {
                    HeaderValue::Timestamp(t.to_millis().expect("millisecond timestamp"))
                }
                smithy::HeaderValue::Uuid(u) => HeaderValue::Uuid(u.to_be_bytes()),
                other => panic!("unmapped smithy header value {other:?}"),
            };
            Header::new(h.name().as_str(), value)
        })
        .collect();
    Message::new(headers, m.payload().clone())
}

fn arb_header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        proptest::collection::vec(any::<u8>(), 0..100)
            .prop_map(|v| HeaderValue::ByteArray(v.into())),
        "\\PC{0,30}".prop_map(HeaderValue::String),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let header = ("\\PC{1,40}", arb_header_value())
        .prop_filter("names are at most 255 bytes", |(n, _)| n.len() <= 255)
        .prop_map(|(n, v)| Header::new(n, v));
    (
        proptest::collection::vec(header, 0..10),
        proptest::collection::vec(any::<u8>(), 0..500),
    )
        .prop_map(|(headers, payload)| Message::new(headers, payload))
}

#[test]
fn spec_messages_agree() {
    for m in [
        Message::event("initial-response", "{}"),
        Message::exception("ResourceInUseException", r#"{"message":"x"}"#),
        Message::error("InternalFailure", "boom"),
        Message::new(vec![], Bytes::new()),
    ] {
        let mut theirs = Vec::new();
        write_message_to(&to_smithy(&m), &mut theirs).unwrap();
        assert_eq!(m.to_bytes().unwrap()[..], theirs[..]);
    }
}

proptest! {
    #[test]
    fn ours_encoded_smithy_decodes(m in arb_message()) {
        let bytes = m.to_bytes().unwrap();
        let decoded = read_message_from(&bytes[..]).unwrap();
        prop_assert_eq!(from_smithy(&decoded), m);
    }

    #[test]
    fn smithy_encoded_ours_decodes(m in arb_message()) {
        let mut theirs = Vec::new();
        write_message_to(&to_smithy(&m), &mut theirs).unwrap();
        // Both encoders produce the same bytes for the same message...
        prop_assert_eq!(&theirs[..], &m.to_bytes().unwrap()[..]);
        // ...and our decoder reads theirs.
        let mut d = Decoder::default();
        d.push(&theirs);
        prop_assert_eq!(d.next_message().unwrap(), Some(m));
    }

    #[test]
    fn streams_agree_in_random_chunks(
        messages in proptest::collection::vec(arb_message(), 1..4),
        chunk in 1usize..97,
    ) {
        let mut stream = BytesMut::new();
        for m in &messages {
            encode(m, &mut stream).unwrap();
        }
        // Smithy's streaming decoder, fed chunk by chunk as a network reader would.
        let mut smithy_decoder = MessageFrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut theirs = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let DecodedFrame::Complete(m) = smithy_decoder.decode_frame(&mut buf).unwrap() {
                theirs.push(from_smithy(&m));
            }
        }
        prop_assert_eq!(&theirs, &messages);
    }

    #[test]
    fn both_reject_corruption(m in arb_message(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = m.to_bytes().unwrap().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let mut d = Decoder::default();
        d.push(&bytes);
        let ours = d.next_message();
        let theirs = read_message_from(&bytes[..]);
        // Any single bit flip breaks a CRC (or, in the prelude, may announce a length we wait
        // for); neither side may accept a corrupted frame.
        prop_assert!(!matches!(ours, Ok(Some(_))), "we accepted a flip at byte {}", i);
        prop_assert!(theirs.is_err(), "smithy accepted a flip at byte {}", i);
    }
}
