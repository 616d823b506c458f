//! The `application/vnd.amazon.eventstream` binary framing used by SubscribeToShard.
//!
//! A frame is `total_length | headers_length | prelude_crc | headers | payload | message_crc`,
//! all integers big-endian, both CRCs CRC-32/ISO-HDLC (see `docs/event-stream.md` §1–§2). This module
//! only frames messages; the JSON event payloads are modelled elsewhere.
//!
//! ```
//! use kinesis_proto::event_stream::{Decoder, Message};
//! let frame = Message::event("initial-response", "{}").to_bytes().unwrap();
//! let mut decoder = Decoder::default();
//! decoder.push(&frame[..10]);
//! assert!(decoder.next_message().unwrap().is_none());
//! decoder.push(&frame[10..]);
//! let message = decoder.next_message().unwrap().unwrap();
//! assert_eq!(message.event_type(), Some("initial-response"));
//! ```

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// HTTP `Content-Type` of an event-stream response body.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// Length of the prelude: `total_length`, `headers_length` and `prelude_crc`.
pub const PRELUDE_LEN: usize = 12;
/// Smallest possible frame: prelude plus message CRC, no headers and no payload.
pub const MIN_FRAME_LEN: usize = PRELUDE_LEN + 4;
/// Default largest frame the [`Decoder`] accepts (16 MiB).
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;
/// Longest header name in bytes (the length is one byte).
pub const MAX_HEADER_NAME_LEN: usize = 255;
/// Longest string or byte-array header value the encoder writes.
///
/// The wire allows a `u16` length, but the CRT and smithy-rs encoders and decoders cap values at
/// `i16::MAX`, so we never send more than they accept; the decoder still reads up to `u16::MAX`.
pub const MAX_HEADER_VALUE_LEN: usize = i16::MAX as usize;

/// Header name of the message type (`event`, `exception` or `error`).
pub const MESSAGE_TYPE: &str = ":message-type";
/// Header name of the event type of an `event` message.
pub const EVENT_TYPE: &str = ":event-type";
/// Header name of the exception shape name of an `exception` message.
pub const EXCEPTION_TYPE: &str = ":exception-type";
/// Header name of the payload content type.
pub const CONTENT_TYPE_HEADER: &str = ":content-type";
/// Header name of the error code of an `error` message.
pub const ERROR_CODE: &str = ":error-code";
/// Header name of the error message of an `error` message.
pub const ERROR_MESSAGE: &str = ":error-message";

const TYPE_TRUE: u8 = 0;
const TYPE_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_INT16: u8 = 3;
const TYPE_INT32: u8 = 4;
const TYPE_INT64: u8 = 5;
const TYPE_BYTE_ARRAY: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// Why a message could not be encoded or a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventStreamError {
    /// The CRC of the first 8 bytes does not match the prelude CRC.
    #[error("prelude CRC mismatch: computed {computed:#010x}, frame says {expected:#010x}")]
    PreludeCrcMismatch {
        /// CRC computed over the received bytes.
        computed: u32,
        /// CRC carried by the frame.
        expected: u32,
    },
    /// The CRC of the whole frame does not match the message CRC.
    #[error("message CRC mismatch: computed {computed:#010x}, frame says {expected:#010x}")]
    MessageCrcMismatch {
        /// CRC computed over the received bytes.
        computed: u32,
        /// CRC carried by the frame.
        expected: u32,
    },
    /// `total_length` is below the 16-byte minimum.
    #[error("frame length {0} is below the 16-byte minimum")]
    FrameTooShort(u32),
    /// `total_length` exceeds the decoder's limit, or a message is too large to encode.
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    FrameTooLong {
        /// Announced or required frame length.
        len: u64,
        /// Largest accepted frame length.
        max: u64,
    },
    /// `headers_length` is 1 or does not fit inside the frame.
    #[error("invalid headers length {headers_length} for frame length {total_length}")]
    InvalidHeadersLength {
        /// Announced header block length.
        headers_length: u32,
        /// Announced frame length.
        total_length: u32,
    },
    /// A header record runs past the end of the header block.
    #[error("header record truncated at offset {0} of the header block")]
    TruncatedHeader(usize),
    /// A header name is empty or longer than 255 bytes.
    #[error("header name length {0} is outside 1..=255")]
    InvalidHeaderNameLength(usize),
    /// A string or byte-array header value is longer than the encoder allows.
    #[error("header {name:?} value is {len} bytes, more than {MAX_HEADER_VALUE_LEN}")]
    HeaderValueTooLong {
        /// Name of the offending header.
        name: String,
        /// Length of its value in bytes.
        len: usize,
    },
    /// A header value type byte outside 0..=9.
    #[error("unknown header value type {0}")]
    UnknownHeaderType(u8),
    /// A header name or string value is not UTF-8.
    #[error("header name or string value is not valid UTF-8")]
    InvalidUtf8,
}

/// A typed header value; the variants map one-to-one onto wire types 0..=9.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2, a signed byte.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6, up to [`MAX_HEADER_VALUE_LEN`] bytes.
    ByteArray(Bytes),
    /// Type 7, up to [`MAX_HEADER_VALUE_LEN`] UTF-8 bytes.
    String(String),
    /// Type 8, milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9, 16 raw bytes.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// Returns the string if this is a [`HeaderValue::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Number of bytes the value occupies on the wire, including its type byte.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            HeaderValue::Bool(_) => 0,
            HeaderValue::Byte(_) => 1,
            HeaderValue::Int16(_) => 2,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) | HeaderValue::Timestamp(_) => 8,
            HeaderValue::ByteArray(b) => 2 + b.len(),
            HeaderValue::String(s) => 2 + s.len(),
            HeaderValue::Uuid(_) => 16,
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(s: &str) -> Self {
        HeaderValue::String(s.to_owned())
    }
}

impl From<String> for HeaderValue {
    fn from(s: String) -> Self {
        HeaderValue::String(s)
    }
}

/// One named header of a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header name, 1..=255 UTF-8 bytes; names starting with `:` are protocol headers.
    pub name: String,
    /// Typed value.
    pub value: HeaderValue,
}

impl Header {
    /// Builds a header from a name and anything convertible into a value.
    pub fn new(name: impl Into<String>, value: impl Into<HeaderValue>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    /// Number of bytes the header occupies in the header block.
    pub fn encoded_len(&self) -> usize {
        1 + self.name.len() + self.value.encoded_len()
    }
}

/// One event-stream message: ordered headers (duplicates allowed) and an opaque payload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<Header>,
    /// Payload bytes.
    pub payload: Bytes,
}

impl Message {
    /// Builds a message from headers and payload.
    pub fn new(headers: Vec<Header>, payload: impl Into<Bytes>) -> Self {
        Message {
            headers,
            payload: payload.into(),
        }
    }

    /// An `event` message with a JSON payload, headers ordered as in spec vectors (c) and (d).
    pub fn event(event_type: &str, payload: impl Into<Bytes>) -> Self {
        Message::new(
            vec![
                Header::new(MESSAGE_TYPE, "event"),
                Header::new(EVENT_TYPE, event_type),
                Header::new(CONTENT_TYPE_HEADER, "application/json"),
            ],
            payload,
        )
    }

    /// A modelled `exception` message with a JSON payload, headers ordered as in vector (e).
    pub fn exception(exception_type: &str, json_payload: impl Into<Bytes>) -> Self {
        Message::new(
            vec![
                Header::new(MESSAGE_TYPE, "exception"),
                Header::new(EXCEPTION_TYPE, exception_type),
                Header::new(CONTENT_TYPE_HEADER, "application/json"),
            ],
            json_payload,
        )
    }

    /// An unmodelled `error` message with an empty payload, headers ordered as in vector (f).
    pub fn error(code: &str, message: &str) -> Self {
        Message::new(
            vec![
                Header::new(MESSAGE_TYPE, "error"),
                Header::new(ERROR_CODE, code),
                Header::new(ERROR_MESSAGE, message),
            ],
            Bytes::new(),
        )
    }

    /// Value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }

    /// Value of the first header called `name` if it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// The `:message-type` header.
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(MESSAGE_TYPE)
    }

    /// The `:event-type` header.
    pub fn event_type(&self) -> Option<&str> {
        self.header_str(EVENT_TYPE)
    }

    /// The `:exception-type` header.
    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(EXCEPTION_TYPE)
    }

    /// The `:content-type` header.
    pub fn content_type(&self) -> Option<&str> {
        self.header_str(CONTENT_TYPE_HEADER)
    }

    /// The `:error-code` header.
    pub fn error_code(&self) -> Option<&str> {
        self.header_str(ERROR_CODE)
    }

    /// The `:error-message` header.
    pub fn error_message(&self) -> Option<&str> {
        self.header_str(ERROR_MESSAGE)
    }

    /// Length of the header block in bytes.
    pub fn headers_len(&self) -> usize {
        self.headers.iter().map(Header::encoded_len).sum()
    }

    /// Length of the whole encoded frame in bytes.
    pub fn encoded_len(&self) -> usize {
        MIN_FRAME_LEN + self.headers_len() + self.payload.len()
    }

    /// Encodes the message into a new buffer.
    pub fn to_bytes(&self) -> Result<Bytes, EventStreamError> {
        let mut buf = BytesMut::new();
        encode(self, &mut buf)?;
        Ok(buf.freeze())
    }
}

/// Appends one encoded frame to `dst`; on error nothing is appended.
pub fn encode(message: &Message, dst: &mut BytesMut) -> Result<(), EventStreamError> {
    // Validate everything first so that a failure never leaves half a frame in `dst`.
    for h in &message.headers {
        if h.name.is_empty() || h.name.len() > MAX_HEADER_NAME_LEN {
            return Err(EventStreamError::InvalidHeaderNameLength(h.name.len()));
        }
        let value_len = match &h.value {
            HeaderValue::ByteArray(b) => b.len(),
            HeaderValue::String(s) => s.len(),
            _ => 0,
        };
        if value_len > MAX_HEADER_VALUE_LEN {
            return Err(EventStreamError::HeaderValueTooLong {
                name: h.name.clone(),
                len: value_len,
            });
        }
    }
    let headers_len = message.headers_len();
    let total = message.encoded_len();
    let (Ok(total32), Ok(headers32)) = (u32::try_from(total), u32::try_from(headers_len)) else {
        return Err(EventStreamError::FrameTooLong {
            len: total as u64,
            max: u64::from(u32::MAX),
        });
    };

    let start = dst.len();
    dst.reserve(total);
    dst.put_u32(total32);
    dst.put_u32(headers32);
    let prelude_crc = crc32fast::hash(&dst[start..start + 8]);
    dst.put_u32(prelude_crc);
    for h in &message.headers {
        // Lengths were validated above, so these narrowing casts cannot truncate.
        dst.put_u8(h.name.len() as u8);
        dst.put_slice(h.name.as_bytes());
        match &h.value {
            HeaderValue::Bool(true) => dst.put_u8(TYPE_TRUE),
            HeaderValue::Bool(false) => dst.put_u8(TYPE_FALSE),
            HeaderValue::Byte(v) => {
                dst.put_u8(TYPE_BYTE);
                dst.put_i8(*v);
            }
            HeaderValue::Int16(v) => {
                dst.put_u8(TYPE_INT16);
                dst.put_i16(*v);
            }
            HeaderValue::Int32(v) => {
                dst.put_u8(TYPE_INT32);
                dst.put_i32(*v);
            }
            HeaderValue::Int64(v) => {
                dst.put_u8(TYPE_INT64);
                dst.put_i64(*v);
            }
            HeaderValue::ByteArray(b) => {
                dst.put_u8(TYPE_BYTE_ARRAY);
                dst.put_u16(b.len() as u16);
                dst.put_slice(b);
            }
            HeaderValue::String(s) => {
                dst.put_u8(TYPE_STRING);
                dst.put_u16(s.len() as u16);
                dst.put_slice(s.as_bytes());
            }
            HeaderValue::Timestamp(ms) => {
                dst.put_u8(TYPE_TIMESTAMP);
                dst.put_i64(*ms);
            }
            HeaderValue::Uuid(u) => {
                dst.put_u8(TYPE_UUID);
                dst.put_slice(u);
            }
        }
    }
    dst.put_slice(&message.payload);
    let message_crc = crc32fast::hash(&dst[start..]);
    dst.put_u32(message_crc);
    debug_assert_eq!(dst.len() - start, total);
    Ok(())
}

/// Incremental frame decoder: feed it bytes as they arrive, take out whole messages.
///
/// Errors are sticky: the offending bytes stay buffered, so every later call reports the same
/// error. A stream with a bad frame cannot be resynchronised and should be dropped.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_frame_len: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl Decoder {
    /// A decoder that refuses frames longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        Decoder {
            buf: BytesMut::new(),
            max_frame_len,
        }
    }

    /// Largest frame this decoder accepts.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Appends received bytes to the internal buffer.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Number of buffered bytes not yet returned as messages.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next complete message out of the internal buffer, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, EventStreamError> {
        decode_frame(&mut self.buf, self.max_frame_len)
    }

    /// Like [`Decoder::next_message`] but on a caller-owned buffer (e.g. a framed reader's).
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Message>, EventStreamError> {
        decode_frame(src, self.max_frame_len)
    }
}

/// Removes and decodes the first frame of `src`; `Ok(None)` and `src` untouched if it is incomplete.
pub fn decode_frame(
    src: &mut BytesMut,
    max_frame_len: usize,
) -> Result<Option<Message>, EventStreamError> {
    if src.len() < PRELUDE_LEN {
        return Ok(None);
    }
    let mut prelude = &src[..PRELUDE_LEN];
    let total_length = prelude.get_u32();
    let headers_length = prelude.get_u32();
    let expected = prelude.get_u32();
    // Lengths are only meaningful once the prelude CRC vouches for them.
    let computed = crc32fast::hash(&src[..8]);
    if computed != expected {
        return Err(EventStreamError::PreludeCrcMismatch { computed, expected });
    }
    let total = total_length as usize;
    if total < MIN_FRAME_LEN {
        return Err(EventStreamError::FrameTooShort(total_length));
    }
    if total > max_frame_len {
        return Err(EventStreamError::FrameTooLong {
            len: u64::from(total_length),
            max: max_frame_len as u64,
        });
    }
    let headers_len = headers_length as usize;
    if headers_len == 1 || headers_len > total - MIN_FRAME_LEN {
        return Err(EventStreamError::InvalidHeadersLength {
            headers_length,
            total_length,
        });
    }
    if src.len() < total {
        // Reserve only up to the (already bounded) frame length, never more than announced.
        src.reserve(total - src.len());
        return Ok(None);
    }
    let body_end = total - 4;
    let expected = (&src[body_end..total]).get_u32();
    let computed = crc32fast::hash(&src[..body_end]);
    if computed != expected {
        return Err(EventStreamError::MessageCrcMismatch { computed, expected });
    }
    // Parse before consuming so that a bad header block leaves the buffer (and error) in place.
    let headers_end = PRELUDE_LEN + headers_len;
    let headers = parse_headers(&src[PRELUDE_LEN..headers_end])?;
    let frame = src.split_to(total).freeze();
    let payload = frame.slice(headers_end..body_end);
    Ok(Some(Message { headers, payload }))
}

fn parse_headers(mut block: &[u8]) -> Result<Vec<Header>, EventStreamError> {
    let block_len = block.len();
    let mut headers = Vec::new();
    while !block.is_empty() {
        let offset = block_len - block.len();
        let truncated = EventStreamError::TruncatedHeader(offset);
        let name_len = usize::from(block.get_u8());
        if name_len == 0 {
            return Err(EventStreamError::InvalidHeaderNameLength(0));
        }
        // Name plus at least the type byte must follow.
        if block.len() <= name_len {
            return Err(truncated);
        }
        let name = std::str::from_utf8(&block[..name_len])
            .map_err(|_| EventStreamError::InvalidUtf8)?
            .to_owned();
        block.advance(name_len);
        let value_type = block.get_u8();
        let fixed = match value_type {
            TYPE_TRUE | TYPE_FALSE => 0,
            TYPE_BYTE => 1,
            TYPE_INT16 | TYPE_BYTE_ARRAY | TYPE_STRING => 2,
            TYPE_INT32 => 4,
            TYPE_INT64 | TYPE_TIMESTAMP => 8,
            TYPE_UUID => 16,
            other => return Err(EventStreamError::UnknownHeaderType(other)),
        };
        if block.len() < fixed {
            return Err(truncated);
        }
        let value = match value_type {
            TYPE_TRUE => HeaderValue::Bool(true),
            TYPE_FALSE => HeaderValue::Bool(false),
            TYPE_BYTE => HeaderValue::Byte(block.get_i8()),
            TYPE_INT16 => HeaderValue::Int16(block.get_i16()),
            TYPE_INT32 => HeaderValue::Int32(block.get_i32()),
            TYPE_INT64 => HeaderValue::Int64(block.get_i64()),
            TYPE_TIMESTAMP => HeaderValue::Timestamp(block.get_i64()),
            TYPE_UUID => {
                let mut uuid = [0u8; 16];
                block.copy_to_slice(&mut uuid);
                HeaderValue::Uuid(uuid)
            }
            _ => {
                let len = usize::from(block.get_u16());
                if block.len() < len {
                    return Err(truncated);
                }
                let raw = &block[..len];
                let value = if value_type == TYPE_STRING {
                    HeaderValue::String(
                        std::str::from_utf8(raw)
                            .map_err(|_| EventStreamError::InvalidUtf8)?
                            .to_owned(),
                    )
                } else {
                    HeaderValue::ByteArray(Bytes::copy_from_slice(raw))
                };
                block.advance(len);
                value
            }
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode_all(bytes: &[u8]) -> Message {
        let mut d = Decoder::default();
        d.push(bytes);
        let m = d.next_message().unwrap().expect("complete frame");
        assert_eq!(d.buffered_len(), 0);
        m
    }

    fn crc_at(bytes: &[u8], at: usize) -> u32 {
        (&bytes[at..at + 4]).get_u32()
    }

    const FOO_BAR: &[u8] = b"{'foo':'bar'}";
    const VEC_A: &str = "0000001d00000000fd528c5a7b27666f6f273a27626172277dc3653936";
    const VEC_B: &str = "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b27666f6f273a27626172277d8d9c08b1";
    const VEC_C: &str = "
        00 00 00 68 00 00 00 56 4e 68 17 24 0d 3a 6d 65
        73 73 61 67 65 2d 74 79 70 65 07 00 05 65 76 65
        6e 74 0b 3a 65 76 65 6e 74 2d 74 79 70 65 07 00
        10 69 6e 69 74 69 61 6c 2d 72 65 73 70 6f 6e 73
        65 0d 3a 63 6f 6e 74 65 6e 74 2d 74 79 70 65 07
        00 10 61 70 70 6c 69 63 61 74 69 6f 6e 2f 6a 73
        6f 6e 7b 7d fe 94 2c 1d";
    const VEC_D: &str = "
        00 00 01 8a 00 00 00 5b a9 91 2c 83 0d 3a 6d 65
        73 73 61 67 65 2d 74 79 70 65 07 00 05 65 76 65
        6e 74 0b 3a 65 76 65 6e 74 2d 74 79 70 65 07 00
        15 53 75 62 73 63 72 69 62 65 54 6f 53 68 61 72
        64 45 76 65 6e 74 0d 3a 63 6f 6e 74 65 6e 74 2d
        74 79 70 65 07 00 10 61 70 70 6c 69 63 61 74 69
        6f 6e 2f 6a 73 6f 6e 7b 22 43 6f 6e 74 69 6e 75
        61 74 69 6f 6e 53 65 71 75 65 6e 63 65 4e 75 6d
        62 65 72 22 3a 22 34 39 36 30 30 38 37 31 36 38
        32 39 35 37 30 33 36 34 34 32 33 36 35 30 32 34
        39 32 36 31 39 31 30 37 33 34 33 37 32 35 31 30
        36 30 35 38 30 31 32 38 36 35 33 33 31 34 22 2c
        22 4d 69 6c 6c 69 73 42 65 68 69 6e 64 4c 61 74
        65 73 74 22 3a 30 2c 22 52 65 63 6f 72 64 73 22
        3a 5b 7b 22 41 70 70 72 6f 78 69 6d 61 74 65 41
        72 72 69 76 61 6c 54 69 6d 65 73 74 61 6d 70 22
        3a 31 37 30 30 30 30 30 30 30 30 2e 31 32 33 2c
        22 44 61 74 61 22 3a 22 61 47 56 73 62 47 38 3d
        22 2c 22 50 61 72 74 69 74 69 6f 6e 4b 65 79 22
        3a 22 70 6b 2d 31 22 2c 22 53 65 71 75 65 6e 63
        65 4e 75 6d 62 65 72 22 3a 22 34 39 36 30 30 38
        37 31 36 38 32 39 35 37 30 33 36 34 34 32 33 36
        35 30 32 34 39 32 36 31 39 31 30 37 33 34 33 37
        32 35 31 30 36 30 35 38 30 31 32 38 36 35 33 33
        31 34 22 7d 5d 7d 43 c9 80 30";
    const PAYLOAD_D: &str = r#"{"ContinuationSequenceNumber":"49600871682957036442365024926191073437251060580128653314","MillisBehindLatest":0,"Records":[{"ApproximateArrivalTimestamp":1700000000.123,"Data":"aGVsbG8=","PartitionKey":"pk-1","SequenceNumber":"49600871682957036442365024926191073437251060580128653314"}]}"#;
    const VEC_E: &str = "000000c000000064c6e892f30d3a6d6573736167652d74797065070009657863657074696f6e0f3a657863657074696f6e2d747970650700165265736f75726365496e557365457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e7b226d657373616765223a22416e6f746865722061637469766520737562736372697074696f6e2065786973747320666f72207468697320636f6e73756d657220616e64207368617264227d9d335d77";
    const PAYLOAD_E: &str =
        r#"{"message":"Another active subscription exists for this consumer and shard"}"#;
    const VEC_F: &str = "0000005a0000004a8188a08d0d3a6d6573736167652d747970650700056572726f720b3a6572726f722d636f646507000f496e7465726e616c4661696c7572650e3a6572726f722d6d657373616765070004626f6f6dd78e0703";
    const VEC_ALL_HEADERS: &str = "
        000000cc000000af0fae64ca0a6576656e742d74797065040000a00c0c636f6e74656e742d74797065
        0700106170706c69636174696f6e2f6a736f6e0a626f6f6c2066616c73650109626f6f6c2074727565
        00046279746502cf08627974652062756606001449276d2061206c6974746c6520746561706f742109
        74696d657374616d70080000000000845fed05696e74313603002a05696e7436340500000000028757
        b2047575696409000102030405060708090a0b0c0d0e0f7b27666f6f273a27626172277de743ec71";

    /// Decodes `hex`, checks it equals `expected`, and re-encodes it byte for byte.
    fn check_vector(hex: &str, expected: &Message) {
        let bytes = unhex(hex);
        let decoded = decode_all(&bytes);
        assert_eq!(&decoded, expected);
        assert_eq!(expected.to_bytes().unwrap()[..], bytes[..]);
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn vector_a_no_headers() {
        let m = Message::new(vec![], FOO_BAR);
        check_vector(VEC_A, &m);
        let bytes = unhex(VEC_A);
        assert_eq!(bytes.len(), 29);
        assert_eq!(crc_at(&bytes, 8), 0xfd52_8c5a);
        assert_eq!(crc_at(&bytes, 25), 0xc365_3936);
    }

    #[test]
    fn vector_b_one_string_header() {
        let m = Message::new(
            vec![Header::new("content-type", "application/json")],
            FOO_BAR,
        );
        check_vector(VEC_B, &m);
        assert_eq!(m.encoded_len(), 61);
        assert_eq!(m.headers_len(), 32);
    }

    #[test]
    fn vector_c_initial_response() {
        let m = Message::event("initial-response", "{}");
        check_vector(VEC_C, &m);
        let bytes = unhex(VEC_C);
        assert_eq!(bytes.len(), 104);
        assert_eq!(crc_at(&bytes, 8), 0x4e68_1724);
        assert_eq!(crc_at(&bytes, 100), 0xfe94_2c1d);
        let d = decode_all(&bytes);
        assert_eq!(d.message_type(), Some("event"));
        assert_eq!(d.event_type(), Some("initial-response"));
        assert_eq!(d.content_type(), Some("application/json"));
        assert_eq!(&d.payload[..], b"{}");
    }

    #[test]
    fn vector_d_subscribe_to_shard_event() {
        assert_eq!(PAYLOAD_D.len(), 287);
        let m = Message::event("SubscribeToShardEvent", PAYLOAD_D);
        check_vector(VEC_D, &m);
        let bytes = unhex(VEC_D);
        assert_eq!((bytes.len(), m.headers_len()), (394, 91));
        assert_eq!(crc_at(&bytes, 8), 0xa991_2c83);
        assert_eq!(crc_at(&bytes, 390), 0x43c9_8030);
    }

    #[test]
    fn vector_e_exception() {
        assert_eq!(PAYLOAD_E.len(), 76);
        let m = Message::exception("ResourceInUseException", PAYLOAD_E);
        check_vector(VEC_E, &m);
        let d = decode_all(&unhex(VEC_E));
        assert_eq!(d.message_type(), Some("exception"));
        assert_eq!(d.exception_type(), Some("ResourceInUseException"));
        assert_eq!((d.encoded_len(), d.headers_len()), (192, 100));
    }

    #[test]
    fn vector_f_error() {
        let m = Message::error("InternalFailure", "boom");
        check_vector(VEC_F, &m);
        let d = decode_all(&unhex(VEC_F));
        assert_eq!(d.message_type(), Some("error"));
        assert_eq!(d.error_code(), Some("InternalFailure"));
        assert_eq!(d.error_message(), Some("boom"));
        assert!(d.payload.is_empty());
        assert_eq!((d.encoded_len(), d.headers_len()), (90, 74));
    }

    fn all_headers_message() -> Message {
        let uuid: [u8; 16] = std::array::from_fn(|i| i as u8);
        Message::new(
            vec![
                Header::new("event-type", HeaderValue::Int32(40972)),
                Header::new("content-type", "application/json"),
                Header::new("bool false", HeaderValue::Bool(false)),
                Header::new("bool true", HeaderValue::Bool(true)),
                Header::new("byte", HeaderValue::Byte(0xCFu8 as i8)),
                Header::new(
                    "byte buf",
                    HeaderValue::ByteArray(Bytes::from_static(b"I'm a little teapot!")),
                ),
                Header::new("timestamp", HeaderValue::Timestamp(8_675_309)),
                Header::new("int16", HeaderValue::Int16(42)),
                Header::new("int64", HeaderValue::Int64(42_424_242)),
                Header::new("uuid", HeaderValue::Uuid(uuid)),
            ],
            FOO_BAR,
        )
    }

    #[test]
    fn vector_all_header_types_layout() {
        // Per the spec note only lengths and the prelude CRC are trusted, not the published
        // message CRC (3758045736); the hex below is the spec author's own re-encoding.
        let m = all_headers_message();
        let ours = m.to_bytes().unwrap();
        assert_eq!(ours.len(), 204);
        assert_eq!(m.headers_len(), 175);
        assert_eq!(crc_at(&ours, 8), 263_087_306);
        assert_eq!(ours[..], unhex(VEC_ALL_HEADERS)[..]);
        assert_eq!(decode_all(&ours), m);
    }

    #[test]
    fn corrupted_prelude_crc_rejected() {
        let mut bytes = unhex(VEC_C);
        bytes[11] ^= 1;
        let mut d = Decoder::default();
        d.push(&bytes[..PRELUDE_LEN]);
        // Detected as soon as the prelude is in, before waiting for the announced length.
        assert!(matches!(
            d.next_message(),
            Err(EventStreamError::PreludeCrcMismatch { .. })
        ));
        // A flipped length bit is caught by the prelude CRC too.
        let mut bytes = unhex(VEC_C);
        bytes[2] ^= 0x80;
        let mut d = Decoder::default();
        d.push(&bytes);
        assert!(matches!(
            d.next_message(),
            Err(EventStreamError::PreludeCrcMismatch { .. })
        ));
        // Errors are sticky.
        assert!(d.next_message().is_err());
    }

    #[test]
    fn corrupted_message_crc_rejected() {
        for at in [20, 100, 103] {
            let mut bytes = unhex(VEC_C);
            bytes[at] ^= 0x10;
            let mut d = Decoder::default();
            d.push(&bytes);
            assert!(
                matches!(
                    d.next_message(),
                    Err(EventStreamError::MessageCrcMismatch { .. })
                ),
                "byte {at}"
            );
        }
    }

    #[test]
    fn truncated_input_waits() {
        let bytes = unhex(VEC_D);
        for cut in 0..bytes.len() {
            let mut d = Decoder::default();
            d.push(&bytes[..cut]);
            assert_eq!(d.next_message(), Ok(None), "cut at {cut}");
            assert_eq!(d.buffered_len(), cut);
            d.push(&bytes[cut..]);
            assert_eq!(
                d.next_message().unwrap().unwrap().event_type(),
                Some("SubscribeToShardEvent")
            );
        }
    }

    #[test]
    fn byte_at_a_time() {
        let mut stream = Vec::new();
        for hex in [VEC_A, VEC_B, VEC_C, VEC_D, VEC_E, VEC_F, VEC_ALL_HEADERS] {
            stream.extend(unhex(hex));
        }
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 7);
        assert_eq!(got[2], Message::event("initial-response", "{}"));
        assert_eq!(got[5], Message::error("InternalFailure", "boom"));
        assert_eq!(got[6], all_headers_message());
        assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn decode_on_caller_buffer() {
        let mut buf = BytesMut::from(&unhex(&format!("{VEC_A}{VEC_F}"))[..]);
        buf.extend_from_slice(&unhex(VEC_B)[..5]);
        let d = Decoder::default();
        assert_eq!(d.decode(&mut buf).unwrap().unwrap().payload, FOO_BAR);
        assert_eq!(
            d.decode(&mut buf).unwrap().unwrap().error_code(),
            Some("InternalFailure")
        );
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 5);
    }

    /// A valid prelude announcing `total` bytes with `headers` bytes of headers.
    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend(total.to_be_bytes());
        p.extend(headers.to_be_bytes());
        p.extend(crc32fast::hash(&p).to_be_bytes());
        p
    }

    #[test]
    fn oversized_frame_refused() {
        let mut d = Decoder::new(1024);
        d.push(&prelude(u32::MAX, 0));
        assert_eq!(
            d.next_message(),
            Err(EventStreamError::FrameTooLong {
                len: u64::from(u32::MAX),
                max: 1024
            })
        );
        // Nothing close to the announced size was allocated.
        assert!(d.buf.capacity() < 1024);

        let m = Message::new(vec![], vec![7u8; 2000]);
        let mut d = Decoder::new(1024);
        d.push(&m.to_bytes().unwrap());
        assert!(matches!(
            d.next_message(),
            Err(EventStreamError::FrameTooLong { len: 2016, .. })
        ));
        let mut d = Decoder::new(2016);
        d.push(&m.to_bytes().unwrap());
        assert_eq!(d.next_message().unwrap(), Some(m));
    }

    #[test]
    fn bad_lengths_rejected() {
        let cases = [
            (prelude(15, 0), EventStreamError::FrameTooShort(15)),
            (prelude(0, 0), EventStreamError::FrameTooShort(0)),
            (
                prelude(20, 1),
                EventStreamError::InvalidHeadersLength {
                    headers_length: 1,
                    total_length: 20,
                },
            ),
            (
                prelude(20, 5),
                EventStreamError::InvalidHeadersLength {
                    headers_length: 5,
                    total_length: 20,
                },
            ),
        ];
        for (bytes, err) in cases {
            let mut d = Decoder::default();
            d.push(&bytes);
            assert_eq!(d.next_message(), Err(err));
        }
    }

    /// Builds a CRC-valid frame around a raw header block.
    fn frame_with_header_block(block: &[u8]) -> Vec<u8> {
        let mut f = prelude(16 + block.len() as u32, block.len() as u32);
        f.extend_from_slice(block);
        f.extend(crc32fast::hash(&f).to_be_bytes());
        f
    }

    #[test]
    fn bad_header_blocks_rejected() {
        let cases: [(&[u8], EventStreamError); 6] = [
            (b"\x01a\x0a", EventStreamError::UnknownHeaderType(10)),
            (b"\x00\x00", EventStreamError::InvalidHeaderNameLength(0)),
            (b"\x05ab", EventStreamError::TruncatedHeader(0)),
            (b"\x01a\x04\x00\x00", EventStreamError::TruncatedHeader(0)),
            (
                b"\x01a\x00\x01b\x07\x00\x05abc",
                EventStreamError::TruncatedHeader(3),
            ),
            (b"\x01a\x07\x00\x01\xff", EventStreamError::InvalidUtf8),
        ];
        for (block, err) in cases {
            let mut d = Decoder::default();
            d.push(&frame_with_header_block(block));
            assert_eq!(d.next_message(), Err(err), "{block:?}");
        }
    }

    #[test]
    fn encode_refuses_unencodable_headers() {
        let long_name = Message::new(vec![Header::new("n".repeat(256), true_value())], "");
        assert_eq!(
            long_name.to_bytes(),
            Err(EventStreamError::InvalidHeaderNameLength(256))
        );
        let empty_name = Message::new(vec![Header::new("", true_value())], "");
        assert!(empty_name.to_bytes().is_err());
        let long_value = Message::new(
            vec![Header::new("v", "x".repeat(MAX_HEADER_VALUE_LEN + 1))],
            "",
        );
        let mut buf = BytesMut::from(&b"keep"[..]);
        assert!(matches!(
            encode(&long_value, &mut buf),
            Err(EventStreamError::HeaderValueTooLong { len: 32768, .. })
        ));
        assert_eq!(&buf[..], b"keep");
        // The longest allowed value and name round-trip.
        let max = Message::new(
            vec![Header::new(
                "n".repeat(255),
                HeaderValue::ByteArray(vec![1u8; MAX_HEADER_VALUE_LEN].into()),
            )],
            "",
        );
        assert_eq!(decode_all(&max.to_bytes().unwrap()), max);
    }

    fn true_value() -> HeaderValue {
        HeaderValue::Bool(true)
    }

    #[test]
    fn decoder_accepts_u16_length_values() {
        // Longer than we send, but within the wire's u16 length: accept it.
        let mut block = vec![1, b'v', TYPE_BYTE_ARRAY, 0xff, 0xff];
        block.extend(vec![9u8; 0xffff]);
        let m = decode_all(&frame_with_header_block(&block));
        assert_eq!(
            m.header("v"),
            Some(&HeaderValue::ByteArray(vec![9u8; 0xffff].into()))
        );
    }

    fn arb_header_value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            any::<bool>().prop_map(HeaderValue::Bool),
            any::<i8>().prop_map(HeaderValue::Byte),
            any::<i16>().prop_map(HeaderValue::Int16),
            any::<i32>().prop_map(HeaderValue::Int32),
            any::<i64>().prop_map(HeaderValue::Int64),
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|v| HeaderValue::ByteArray(v.into())),
            ".{0,20}".prop_map(HeaderValue::String),
            any::<i64>().prop_map(HeaderValue::Timestamp),
            any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
        ]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let name = ":?[a-zA-Z0-9é中-]{1,40}";
        let header = (name, arb_header_value()).prop_map(|(n, v)| Header::new(n, v));
        (
            proptest::collection::vec(header, 0..8),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(headers, payload)| Message::new(headers, payload))
    }

    proptest! {
        #[test]
        fn prop_round_trip_in_random_chunks(
            messages in proptest::collection::vec(arb_message(), 1..5),
            chunk_sizes in proptest::collection::vec(1usize..64, 1..50),
        ) {
            let mut stream = BytesMut::new();
            for m in &messages {
                encode(m, &mut stream).unwrap();
            }
            prop_assert_eq!(
                stream.len(),
                messages.iter().map(Message::encoded_len).sum::<usize>()
            );
            let mut d = Decoder::default();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            let mut sizes = chunk_sizes.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                d.push(&rest[..n]);
                rest = &rest[n..];
                while let Some(m) = d.next_message().unwrap() {
                    got.push(m);
                }
            }
            prop_assert_eq!(got, messages);
            prop_assert_eq!(d.buffered_len(), 0);
        }

        #[test]
        fn prop_random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            max in 0usize..600,
        ) {
            let mut d = Decoder::new(max);
            d.push(&bytes);
            for _ in 0..4 {
                if !matches!(d.next_message(), Ok(Some(_))) {
                    break;
                }
            }
        }

        #[test]
        fn prop_valid_prelude_random_body_never_panics(
            headers_len in 0u32..64,
            body in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            // Random bytes almost never pass the prelude CRC; this reaches the header parser.
            let total = 16 + body.len() as u32;
            let mut f = prelude(total, headers_len.min(body.len() as u32));
            f.extend_from_slice(&body);
            f.extend(crc32fast::hash(&f).to_be_bytes());
            let mut d = Decoder::default();
            d.push(&f);
            let _ = d.next_message();
        }
    }
}
