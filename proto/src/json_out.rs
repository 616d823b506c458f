//! Pieces of the JSON bodies written by hand (the broker's GetRecords answer
//! and SubscribeToShard events, a producer's PutRecords request): the generic
//! serializer base64-encodes record data in small pieces and scans each for
//! characters to escape, and the data is most of those bodies.

use base64::Engine as _;

/// Append `,"Name":` (as `key`) and `v` as JSON.
pub fn append_member<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, key: &[u8], v: &T) {
    out.extend_from_slice(key);
    append_json(out, v);
}

/// Append `v` as JSON.
pub fn append_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing plain values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// Append `data` as base64 text (no quotes), encoded in place. The room is
/// made by copying zeroes rather than with `resize`, which is a
/// byte-at-a-time loop in unoptimized (test) builds.
pub fn append_base64(out: &mut Vec<u8>, data: &[u8]) {
    const ZEROES: [u8; 4096] = [0; 4096];
    let start = out.len();
    let mut room = base64::encoded_len(data.len(), true).unwrap_or(0);
    while room > 0 {
        let n = room.min(ZEROES.len());
        out.extend_from_slice(&ZEROES[..n]);
        room -= n;
    }
    let written = crate::codec::BASE64
        .encode_slice(data, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn base64_is_the_standard_encoding(data in proptest::collection::vec(any::<u8>(), 0..10_000)) {
            let mut out = b"x".to_vec();
            append_base64(&mut out, &data);
            let want = base64::engine::general_purpose::STANDARD.encode(&data);
            prop_assert_eq!(&out[1..], want.as_bytes());
        }
    }
}
