//! Body encodings the SDKs use (JSON 1.1 and CBOR 1.1), and the two wire types
//! whose form differs between them: blobs and timestamps.

use crate::error::KinesisError;
use base64::Engine as _;
use base64::engine::general_purpose::PAD;
use base64::engine::simd::Simd;
use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;
use std::fmt;
use std::sync::LazyLock;

/// Blobs' base64: the standard alphabet, padding required on decode (the service is strict),
/// with SIMD where the CPU has it (the engine picks once, at first use). Every record's data
/// passes through it on both sides of a JSON request.
pub static BASE64: LazyLock<Simd> = LazyLock::new(|| Simd::standard(PAD));

thread_local! {
    /// Set while a CBOR body is encoded or decoded on this thread. `#[serde(flatten)]`
    /// hides the real (de)serializer behind serde's buffering one, which always
    /// claims to be human-readable, so `is_human_readable` alone would send blobs
    /// and timestamps of flattened structs the JSON way.
    static BINARY: Cell<bool> = const { Cell::new(false) };
}

struct BinaryScope(bool);

impl BinaryScope {
    fn enter(on: bool) -> Self {
        BinaryScope(BINARY.with(|b| b.replace(on)))
    }
}

impl Drop for BinaryScope {
    fn drop(&mut self) {
        let prev = self.0;
        BINARY.with(|b| b.set(prev));
    }
}

fn is_binary(human_readable: bool) -> bool {
    !human_readable || BINARY.with(Cell::get)
}

/// `application/x-amz-json-1.1`.
pub const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// `application/x-amz-cbor-1.1`.
pub const CBOR_CONTENT_TYPE: &str = "application/x-amz-cbor-1.1";
/// The `X-Amz-Target` prefix of every Kinesis operation.
pub const TARGET_PREFIX: &str = "Kinesis_20131202.";

/// How a request or response body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// JSON 1.1: boto3, the AWS CLI, aws-sdk-kinesis, the KPL daemon.
    Json,
    /// CBOR 1.1: the AWS Java SDKs' default.
    Cbor,
}

impl Encoding {
    /// The content type naming this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => JSON_CONTENT_TYPE,
            Encoding::Cbor => CBOR_CONTENT_TYPE,
        }
    }

    /// The encoding a content type names (parameters such as `; charset` ignored).
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        if base.eq_ignore_ascii_case(JSON_CONTENT_TYPE) {
            Some(Encoding::Json)
        } else if base.eq_ignore_ascii_case(CBOR_CONTENT_TYPE) {
            Some(Encoding::Cbor)
        } else {
            None
        }
    }

    /// Decode a body; any syntax or type error is a `SerializationException`.
    pub fn decode<T: DeserializeOwned>(self, body: &[u8]) -> Result<T, KinesisError> {
        let _scope = BinaryScope::enter(self == Encoding::Cbor);
        match self {
            Encoding::Json => serde_json::from_slice(body).map_err(|e| {
                KinesisError::serialization(format!("Failed to parse JSON body: {e}"))
            }),
            Encoding::Cbor => {
                // Fast path: most bodies carry no tags and decode straight into `T`.
                if let Ok(v) = ciborium::from_reader::<T, _>(body) {
                    return Ok(v);
                }
                // The Java SDK wraps timestamps in tag 1; strip tags so plain
                // serde types see the numbers underneath.
                let value: ciborium::Value = ciborium::from_reader(body).map_err(|e| {
                    KinesisError::serialization(format!("Failed to parse CBOR body: {e}"))
                })?;
                untag(value).deserialized().map_err(|e| {
                    KinesisError::serialization(format!("Failed to parse CBOR body: {e}"))
                })
            }
        }
    }

    /// Encode a body.
    pub fn encode<T: Serialize>(self, value: &T) -> Bytes {
        let _scope = BinaryScope::enter(self == Encoding::Cbor);
        match self {
            Encoding::Json => {
                // Serializing our own types to JSON cannot fail (string keys only).
                Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
            }
            Encoding::Cbor => {
                let mut out = Vec::new();
                if ciborium::into_writer(value, &mut out).is_err() {
                    out = vec![0xa0];
                }
                Bytes::from(out)
            }
        }
    }
}

fn untag(v: ciborium::Value) -> ciborium::Value {
    use ciborium::Value;
    match v {
        Value::Tag(_, inner) => untag(*inner),
        Value::Array(items) => Value::Array(items.into_iter().map(untag).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (untag(k), untag(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Binary data: base64 text in JSON, a byte string in CBOR.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Bytes);

impl Blob {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes (after base64 decoding).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl From<Bytes> for Blob {
    fn from(b: Bytes) -> Self {
        Blob(b)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(b: Vec<u8>) -> Self {
        Blob(Bytes::from(b))
    }
}

impl From<&'static [u8]> for Blob {
    fn from(b: &'static [u8]) -> Self {
        Blob(Bytes::from_static(b))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !is_binary(s.is_human_readable()) {
            // Stream the base64 text into the output instead of building a String per record.
            s.collect_str(&base64::display::Base64Display::new(&self.0, &*BASE64))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

struct BlobVisitor;

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("base64 text or a byte string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
        // The service is strict: padding required, no line breaks.
        BASE64
            .decode(v)
            .map(|b| Blob(Bytes::from(b)))
            .map_err(|_| E::custom("Base64 encoded data is invalid"))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Blob, E> {
        Ok(Blob(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
        Ok(Blob(Bytes::from(v)))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        if !is_binary(d.is_human_readable()) {
            d.deserialize_str(BlobVisitor)
        } else {
            d.deserialize_byte_buf(BlobVisitor)
        }
    }
}

/// A point in time with millisecond precision: epoch seconds (with a fraction)
/// in JSON, epoch milliseconds in CBOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The current time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !is_binary(s.is_human_readable()) {
            // Whole seconds plus exactly the millisecond fraction, e.g. 1700000000.123.
            s.serialize_f64(self.0 as f64 / 1000.0)
        } else {
            // UNVERIFIED how the real service encodes output timestamps in CBOR;
            // the Java SDK v2 reads plain integers as epoch milliseconds, which
            // is what kinesis-mock sends and what its Java KCL tests accept.
            s.serialize_i64(self.0)
        }
    }
}

struct TimestampVisitor {
    millis: bool,
}

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds (JSON) or milliseconds (CBOR) since the epoch")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        let ms = if self.millis {
            Some(v)
        } else {
            v.checked_mul(1000)
        };
        ms.map(Timestamp)
            .ok_or_else(|| E::custom("timestamp out of range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        let v = i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))?;
        self.visit_i64(v)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Timestamp, E> {
        let v = i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))?;
        self.visit_i64(v)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Timestamp, E> {
        let v = i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))?;
        self.visit_i64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
        let ms = if self.millis { v } else { v * 1000.0 };
        if !ms.is_finite() || ms.abs() > 9.0e15 {
            return Err(E::custom("timestamp out of range"));
        }
        // Round to whole microseconds first to drop float noise
        // (1700000000.123 * 1000 = 1700000000122.9998), then keep whole
        // milliseconds as the service does.
        let micros = (ms * 1000.0).round();
        Ok(Timestamp((micros / 1000.0).floor() as i64))
    }

    fn visit_str<E: de::Error>(self, _v: &str) -> Result<Timestamp, E> {
        Err(E::custom(
            "class java.lang.String can not be converted to milliseconds since epoch",
        ))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let millis = is_binary(d.is_human_readable());
        d.deserialize_any(TimestampVisitor { millis })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    proptest! {
        /// The SIMD engine answers exactly as the scalar standard one, valid text or not.
        #[test]
        fn base64_engine_agrees_with_the_scalar_standard(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            noise in proptest::collection::vec((any::<usize>(), prop::sample::select(b"A+/=\n -_*".to_vec())), 0..3),
        ) {
            let text = STANDARD.encode(&data);
            prop_assert_eq!(BASE64.encode(&data), text.clone());
            let mut bytes = text.into_bytes();
            for (at, b) in noise {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = b;
                }
            }
            prop_assert_eq!(BASE64.decode(&bytes).ok(), STANDARD.decode(&bytes).ok());
            let cut = &bytes[..bytes.len().saturating_sub(1)];
            prop_assert_eq!(BASE64.decode(cut).ok(), STANDARD.decode(cut).ok());
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Put {
        stream_name: String,
        data: Blob,
        partition_key: String,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct At {
        shard_iterator_type: String,
        timestamp: Timestamp,
    }

    #[test]
    fn cbor_put_record_vector() {
        let bytes =
            hex("a36a53747265616d4e616d65617364446174614268696c506172746974696f6e4b6579616b");
        let p: Put = Encoding::Cbor.decode(&bytes).unwrap();
        assert_eq!(p.stream_name, "s");
        assert_eq!(p.data.as_bytes(), b"hi");
        assert_eq!(p.partition_key, "k");
        assert_eq!(Encoding::Cbor.encode(&p).to_vec(), bytes);
    }

    #[test]
    fn cbor_tagged_timestamp_is_milliseconds() {
        let bytes = hex(
            "a27153686172644974657261746f72547970656c41545f54494d455354414d506954696d657374616d70c11b0000018bcfe5687b",
        );
        let a: At = Encoding::Cbor.decode(&bytes).unwrap();
        assert_eq!(a.timestamp, Timestamp(1_700_000_000_123));
    }

    #[test]
    fn cbor_inside_flattened_structs_keeps_binary_forms() {
        use crate::model::{
            GetShardIteratorInput, PutRecordsInput, PutRecordsRequestEntry, StreamRef,
        };
        let input = GetShardIteratorInput {
            stream: StreamRef::name("s"),
            shard_id: Some("shardId-000000000000".into()),
            shard_iterator_type: Some("AT_TIMESTAMP".into()),
            starting_sequence_number: None,
            timestamp: Some(Timestamp(1_700_000_000_123)),
        };
        let bytes = Encoding::Cbor.encode(&input);
        // The timestamp is written as integer milliseconds, not float seconds.
        assert!(
            bytes
                .windows(8)
                .any(|w| w == 1_700_000_000_123u64.to_be_bytes())
        );
        let back: GetShardIteratorInput = Encoding::Cbor.decode(&bytes).unwrap();
        assert_eq!(back, input);
        let tagged = hex(
            "a36a53747265616d4e616d6561737153686172644974657261746f72547970656c41545f54494d455354414d506954696d657374616d70c11b0000018bcfe5687b",
        );
        let at: GetShardIteratorInput = Encoding::Cbor.decode(&tagged).unwrap();
        assert_eq!(at.timestamp, Some(Timestamp(1_700_000_000_123)));
        let put = PutRecordsInput {
            records: Some(vec![PutRecordsRequestEntry {
                data: Some(Blob::from(vec![1, 2, 3])),
                explicit_hash_key: None,
                partition_key: Some("k".into()),
            }]),
            stream: StreamRef::name("s"),
        };
        let bytes = Encoding::Cbor.encode(&put);
        assert!(
            bytes.windows(4).any(|w| w == [0x43, 1, 2, 3]),
            "data is a CBOR byte string"
        );
        assert_eq!(
            Encoding::Cbor.decode::<PutRecordsInput>(&bytes).unwrap(),
            put
        );
    }

    #[test]
    fn json_blob_is_base64_and_strict() {
        let p: Put = Encoding::Json
            .decode(br#"{"StreamName":"s","Data":"aGVsbG8=","PartitionKey":"k","Extra":1}"#)
            .unwrap();
        assert_eq!(p.data.as_bytes(), b"hello");
        let j = String::from_utf8(
            Encoding::Json
                .encode(&Put {
                    stream_name: "s".into(),
                    data: Blob::from(vec![0x00, 0xff, 0x10]),
                    partition_key: "k".into(),
                })
                .to_vec(),
        )
        .unwrap();
        assert!(j.contains(r#""Data":"AP8Q""#), "{j}");
        for bad in ["aGVsbG8", "aGV*bG8=", "aGVs\nbG8="] {
            let body = format!(r#"{{"StreamName":"s","Data":"{bad}","PartitionKey":"k"}}"#);
            let err = Encoding::Json.decode::<Put>(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::Serialization, "{bad}");
        }
    }

    #[test]
    fn json_timestamps_are_seconds() {
        for (text, ms) in [
            ("1700000000", 1_700_000_000_000),
            ("1700000000.123", 1_700_000_000_123),
            ("1700000000.123456", 1_700_000_000_123),
            ("1.7e9", 1_700_000_000_000),
        ] {
            let body = format!(r#"{{"ShardIteratorType":"AT_TIMESTAMP","Timestamp":{text}}}"#);
            let a: At = Encoding::Json.decode(body.as_bytes()).unwrap();
            assert_eq!(a.timestamp.millis(), ms, "{text}");
        }
        let err = Encoding::Json
            .decode::<At>(br#"{"ShardIteratorType":"AT_TIMESTAMP","Timestamp":"1700000000"}"#)
            .unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::Serialization);
        let out = Encoding::Json.encode(&At {
            shard_iterator_type: "X".into(),
            timestamp: Timestamp(1_700_000_000_123),
        });
        assert!(
            std::str::from_utf8(&out)
                .unwrap()
                .contains("1700000000.123")
        );
    }

    #[test]
    fn garbage_is_a_serialization_error() {
        assert_eq!(
            Encoding::Json.decode::<Put>(b"{nope").unwrap_err().code,
            crate::ErrorCode::Serialization
        );
        assert_eq!(
            Encoding::Cbor
                .decode::<Put>(&[0xff, 0x00])
                .unwrap_err()
                .code,
            crate::ErrorCode::Serialization
        );
        assert_eq!(
            Encoding::Json
                .decode::<Put>(br#"{"StreamName":5,"Data":"","PartitionKey":"k"}"#)
                .unwrap_err()
                .code,
            crate::ErrorCode::Serialization
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type("application/x-amz-json-1.1; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type(CBOR_CONTENT_TYPE),
            Some(Encoding::Cbor)
        );
        assert_eq!(Encoding::from_content_type("application/json"), None);
    }

    proptest::proptest! {
        #[test]
        fn blob_round_trips_in_both_encodings(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300), ms in 0i64..4_000_000_000_000) {
            #[derive(Debug, Serialize, Deserialize, PartialEq)]
            struct R { d: Blob, t: Timestamp }
            let r = R { d: Blob::from(data), t: Timestamp(ms) };
            for enc in [Encoding::Json, Encoding::Cbor] {
                let back: R = enc.decode(&enc.encode(&r)).unwrap();
                proptest::prop_assert_eq!(&back, &r);
            }
        }
    }
}
