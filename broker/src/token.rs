//! Opaque, tamper-evident tokens: shard iterators and pagination tokens.
//!
//! A token is base64url of `kind | fields | HMAC-SHA256(key, kind | fields)[..16]`.
//! The key is random per broker (or kept in the data dir), so a forged or edited
//! token is refused, and a token names only positions the broker handed out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const MAC_LEN: usize = 16;
const KIND_ITERATOR: u8 = 1;
const KIND_NEXT_TOKEN: u8 = 2;

/// Where a shard iterator points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IteratorPosition {
    /// The stream's name.
    pub stream: String,
    /// The stream's creation time: a re-created stream invalidates old iterators.
    pub stream_created_ms: i64,
    /// Shard index.
    pub shard: u32,
    /// Read records whose counter is at least this.
    pub from_counter: u64,
    /// When the iterator was issued (epoch ms).
    pub issued_ms: i64,
}

/// A pagination token's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// What is being listed (`shards:<stream>`, `streams`, `consumers:<stream>`).
    pub scope: String,
    /// Continue after this key.
    pub after: String,
    /// When the token was issued (epoch ms).
    pub issued_ms: i64,
}

/// Seals and opens tokens with one secret key.
#[derive(Clone)]
pub struct TokenSealer {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSealer(..)")
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

impl TokenSealer {
    /// A sealer with this key.
    pub fn new(key: [u8; 32]) -> Self {
        TokenSealer { key }
    }

    /// A sealer with a fresh random key.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(16) {
            chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        TokenSealer { key }
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        m.update(body);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    fn seal(&self, body: Vec<u8>) -> String {
        let mut body = body;
        let mac = self.mac(&body);
        body.extend_from_slice(&mac);
        URL_SAFE_NO_PAD.encode(body)
    }

    fn open(&self, kind: u8, token: &str) -> Option<Vec<u8>> {
        if token.len() > 1024 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        if raw.len() < 1 + MAC_LEN || raw[0] != kind {
            return None;
        }
        let (body, mac) = raw.split_at(raw.len() - MAC_LEN);
        let expected = self.mac(body);
        // Constant-time compare: the MAC is the only thing standing between a
        // client and an arbitrary read position.
        let diff = expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then(|| body[1..].to_vec())
    }

    /// Seal `body` (its first byte the token kind) as is, so fuzzing reaches the
    /// field parsers behind the MAC.
    #[doc(hidden)]
    pub fn seal_raw(&self, body: Vec<u8>) -> String {
        self.seal(body)
    }

    /// Seal a shard iterator.
    pub fn seal_iterator(&self, p: &IteratorPosition) -> String {
        let mut b = vec![KIND_ITERATOR];
        b.extend_from_slice(&p.stream_created_ms.to_be_bytes());
        b.extend_from_slice(&p.shard.to_be_bytes());
        b.extend_from_slice(&p.from_counter.to_be_bytes());
        b.extend_from_slice(&p.issued_ms.to_be_bytes());
        put_str(&mut b, &p.stream);
        self.seal(b)
    }

    /// Open a shard iterator; `None` if it is not one this broker sealed.
    pub fn open_iterator(&self, token: &str) -> Option<IteratorPosition> {
        let body = self.open(KIND_ITERATOR, token)?;
        let mut r = Reader(&body);
        let p = IteratorPosition {
            stream_created_ms: r.i64()?,
            shard: r.u32()?,
            from_counter: r.u64()?,
            issued_ms: r.i64()?,
            stream: r.string()?,
        };
        r.0.is_empty().then_some(p)
    }

    /// Seal a pagination token.
    pub fn seal_page(&self, p: &PageToken) -> String {
        let mut b = vec![KIND_NEXT_TOKEN];
        b.extend_from_slice(&p.issued_ms.to_be_bytes());
        put_str(&mut b, &p.scope);
        put_str(&mut b, &p.after);
        self.seal(b)
    }

    /// Open a pagination token; `None` if it is not one this broker sealed.
    pub fn open_page(&self, token: &str) -> Option<PageToken> {
        let body = self.open(KIND_NEXT_TOKEN, token)?;
        let mut r = Reader(&body);
        let p = PageToken {
            issued_ms: r.i64()?,
            scope: r.string()?,
            after: r.string()?,
        };
        r.0.is_empty().then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos() -> IteratorPosition {
        IteratorPosition {
            stream: "orders".into(),
            stream_created_ms: 1_700_000_000_000,
            shard: 3,
            from_counter: 42,
            issued_ms: 1_700_000_000_500,
        }
    }

    #[test]
    fn iterator_round_trips_and_fits() {
        let s = TokenSealer::random();
        let t = s.seal_iterator(&pos());
        assert!(t.len() <= 512);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(s.open_iterator(&t), Some(pos()));
        let long = IteratorPosition {
            stream: "x".repeat(128),
            ..pos()
        };
        assert!(s.seal_iterator(&long).len() <= 512);
    }

    #[test]
    fn forged_or_edited_tokens_are_refused() {
        let s = TokenSealer::random();
        let t = s.seal_iterator(&pos());
        let other = TokenSealer::random();
        assert_eq!(other.open_iterator(&t), None);
        let mut bytes = t.clone().into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.open_iterator(std::str::from_utf8(&bytes).unwrap()), None);
        assert_eq!(s.open_iterator("garbage!"), None);
        assert_eq!(s.open_iterator(""), None);
        let page = s.seal_page(&PageToken {
            scope: "streams".into(),
            after: "a".into(),
            issued_ms: 1,
        });
        assert_eq!(s.open_iterator(&page), None);
        assert_eq!(s.open_page(&page).map(|p| p.after), Some("a".to_string()));
    }

    proptest::proptest! {
        #[test]
        fn random_strings_never_open(t in ".{0,200}") {
            let s = TokenSealer::new([7; 32]);
            proptest::prop_assert!(s.open_iterator(&t).is_none());
            proptest::prop_assert!(s.open_page(&t).is_none());
        }
    }
}
