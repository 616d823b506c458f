//! Entry points for fuzzing the broker's decoders of outside bytes: segment
//! frames read back from disk, the SigV4 `Authorization` header (with its
//! date), and shard-iterator and pagination tokens.
//!
//! The fuzz crate (`fuzz/`, cargo-fuzz) and this crate's property tests call the
//! same functions. Each panics only when a decoder breaks one of its own
//! promises; malformed input itself must be refused, never panic.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::auth::AuthKeys;
use crate::store::segment::{self, Frame, HEADER_LEN};
use crate::token::TokenSealer;

/// The key every fuzzed request may name.
pub const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// The clock of fuzzed requests: 2015-08-30T12:36:00Z, the AWS test suite's.
pub const NOW_SECS: u64 = 1_440_938_160;

/// Segment bytes read back as the broker reads them: frame after frame until
/// one is incomplete or corrupt. When byte 0 is odd, the rest is one frame
/// whose length and checksum are corrected first, so the body parser is reached.
pub fn segment_frames(data: &[u8]) {
    let Some((&fix, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if fix % 2 == 1 && bytes.len() >= HEADER_LEN {
        let body_len = (bytes.len() - HEADER_LEN) as u32;
        bytes[..4].copy_from_slice(&body_len.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes[..4]);
        h.update(&bytes[HEADER_LEN..]);
        let crc = h.finalize();
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
    }
    let mut buf = Bytes::from(bytes);
    loop {
        match segment::decode(&buf) {
            Frame::Record(record, used) => {
                assert!(
                    (HEADER_LEN..=buf.len()).contains(&used),
                    "a frame of {used} bytes in {}",
                    buf.len()
                );
                let mut again = Vec::new();
                segment::encode(&record, &mut again);
                assert_eq!(&again[..], &buf[..used], "re-encoding changed the frame");
                buf = buf.slice(used..);
            }
            Frame::Incomplete { need } => {
                assert!(
                    need > buf.len(),
                    "incomplete with {} of {need} bytes",
                    buf.len()
                );
                return;
            }
            Frame::Corrupt(_) => return,
        }
    }
}

/// A request's `Authorization` and `X-Amz-Date` headers checked by SigV4
/// verification: the bytes up to the first `\n` are the date, the rest the header.
pub fn sigv4_header(data: &[u8]) {
    let (date, header) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"20150830T123600Z"[..], data),
    };
    let keys = AuthKeys::parse(&format!(
        "[default]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = secret\n"
    ))
    .expect("valid keys");
    let mut request = http::Request::builder()
        .method("POST")
        .uri("/")
        .header("host", "kinesis.us-east-1.amazonaws.com")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        .header("content-type", "application/x-amz-json-1.1");
    // Bytes that cannot be a header value cannot arrive over HTTP either.
    if let Ok(v) = http::HeaderValue::from_bytes(header) {
        request = request.header(http::header::AUTHORIZATION, v);
    }
    if let Ok(v) = http::HeaderValue::from_bytes(date) {
        request = request.header("x-amz-date", v);
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    // Nothing here is signed with the secret: the answer must be a refusal.
    assert!(keys.verify(&parts, b"{}", "us-east-1", now).is_err());
}

/// A client's shard iterator or pagination token: byte 0 picks the kind and
/// whether the rest is sealed with the broker's key first (so the field
/// parsers behind the MAC are reached) or taken as the token text.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealer = TokenSealer::new([7; 32]);
    let text = if mode & 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        sealer.seal_raw(rest.to_vec())
    };
    if mode % 2 == 0 {
        if let Some(p) = sealer.open_iterator(&text) {
            assert_eq!(sealer.open_iterator(&sealer.seal_iterator(&p)), Some(p));
        }
    } else if let Some(p) = sealer.open_page(&text) {
        assert_eq!(sealer.open_page(&sealer.seal_page(&p)), Some(p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LogRecord;
    use crate::token::{IteratorPosition, PageToken};
    use proptest::prelude::*;

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

    /// A header as the AWS SDK sends it (the signature is not valid for any secret).
    const HEADER: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-target, \
        Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_segment_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            segment_frames(&data);
        }

        #[test]
        fn mutated_segments_never_panic(
            keys in proptest::collection::vec("\\PC{0,8}", 1..4),
            data in proptest::collection::vec(any::<u8>(), 0..40),
            edits in edits(),
            fix in any::<u8>(),
        ) {
            let mut frames = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                let record = LogRecord {
                    counter: i as u64,
                    arrival_ms: 1_700_000_000_000 + i as i64,
                    partition_key: key.as_str().into(),
                    data: Bytes::from(data.clone()),
                };
                segment::encode(&record, &mut frames);
            }
            let mut input = vec![fix];
            input.extend_from_slice(&mutate(frames, &edits));
            segment_frames(&input);
        }

        #[test]
        fn arbitrary_authorization_headers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            sigv4_header(&data);
        }

        #[test]
        fn mutated_authorization_headers_never_panic(edits in edits(), date_edits in edits()) {
            let date = mutate(b"20150830T123600Z".to_vec(), &date_edits);
            let mut data = date;
            data.retain(|&b| b != b'\n');
            data.push(b'\n');
            data.extend_from_slice(&mutate(HEADER.as_bytes().to_vec(), &edits));
            sigv4_header(&data);
        }

        #[test]
        fn arbitrary_tokens_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            token(&data);
        }

        #[test]
        fn mutated_tokens_never_panic(
            stream in "\\PC{0,20}",
            numbers in any::<(i64, u32, u64, i64)>(),
            edits in edits(),
            mode in any::<u8>(),
        ) {
            let sealer = TokenSealer::new([7; 32]);
            let (created, shard, from, issued) = numbers;
            let stream_bytes = stream.clone();
            let stream_len = stream_bytes.len();
            let iterator = sealer.seal_iterator(&IteratorPosition {
                stream: stream.clone(),
                stream_created_ms: created,
                shard,
                from_counter: from,
                issued_ms: issued,
            });
            let page = sealer.seal_page(&PageToken { scope: stream.clone(), after: stream, issued_ms: issued });
            for text in [iterator, page] {
                // As text: the MAC must refuse any edit.
                let mut data = vec![mode & !2];
                data.extend_from_slice(&mutate(text.into_bytes(), &edits));
                token(&data);
            }
            // An edited body sealed anew, to reach the field parser.
            let mut body = vec![1 + (mode & 1)];
            body.extend_from_slice(&created.to_be_bytes());
            body.extend_from_slice(&shard.to_be_bytes());
            body.extend_from_slice(&from.to_be_bytes());
            body.extend_from_slice(&issued.to_be_bytes());
            body.extend_from_slice(&(stream_len as u16).to_be_bytes());
            body.extend_from_slice(stream_bytes.as_bytes());
            let mut data = vec![(mode & 1) | 2];
            data.extend_from_slice(&mutate(body, &edits));
            token(&data);
        }
    }

    #[test]
    fn an_untouched_token_and_frame_are_read_back() {
        let sealer = TokenSealer::new([7; 32]);
        let p = PageToken {
            scope: "shards:s".into(),
            after: "shardId-000000000001".into(),
            issued_ms: 5,
        };
        let mut data = vec![1];
        data.extend_from_slice(sealer.seal_page(&p).as_bytes());
        token(&data);
        assert_eq!(
            sealer.open_page(&String::from_utf8_lossy(&data[1..])),
            Some(p)
        );
        let mut frame = vec![0];
        segment::encode(
            &LogRecord {
                counter: 1,
                arrival_ms: 2,
                partition_key: "k".into(),
                data: Bytes::from_static(b"d"),
            },
            &mut frame,
        );
        segment_frames(&frame);
    }
}
