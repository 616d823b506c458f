//! Sequence numbers: decimal strings compared as big integers, and the layout
//! our broker uses to mint them.
//!
//! Real Kinesis numbers are 56 decimal digits (a 186-bit integer), more than a
//! `u128` holds, so clients keep them as canonical strings and compare by length
//! then digits. The broker mints 56-digit numbers too, so that user code comparing
//! them as strings keeps working, with the shard index embedded so a number used
//! on the wrong shard is recognised.

use std::cmp::Ordering;
use std::fmt;

/// A sequence number as the service sends it: a decimal without sign or leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// Parse a sequence number; `None` unless it matches `^(0|([1-9]\d{0,128}))$`.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 129
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        ok.then(|| SequenceNumber(s.to_string()))
    }

    /// The decimal string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        compare(&self.0, &other.0)
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Compare two canonical decimal strings numerically.
pub fn compare(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The broker's layout: `4` followed by 55 zero-padded digits of
/// `counter << 64 | shard_index`. The counter is per stream, so numbers are unique
/// per stream, increase per shard, and a child shard's are above its parents'.
pub mod layout {
    /// Digits in every number the broker mints.
    pub const WIDTH: usize = 56;

    /// The number for `counter` on shard `shard_index`.
    pub fn encode(counter: u64, shard_index: u32) -> String {
        let digits = encode_digits(counter, shard_index);
        std::str::from_utf8(&digits)
            .map(str::to_owned)
            .unwrap_or_default()
    }

    /// [`encode`]'s ASCII digits, for writers that need no string.
    pub fn encode_digits(counter: u64, shard_index: u32) -> [u8; WIDTH] {
        // Every record read or written gets one of these: the formatter's
        // zero padding goes one character at a time, so the digits are
        // written here in three 19-digit groups instead.
        const GROUP: u128 = 10_000_000_000_000_000_000;
        fn digits(slots: &mut [u8], mut g: u64) {
            for slot in slots.iter_mut().rev() {
                *slot = b'0' + (g % 10) as u8;
                g /= 10;
            }
        }
        let v = (u128::from(counter) << 64) | u128::from(shard_index);
        let mut buf = [b'0'; WIDTH];
        buf[0] = b'4';
        // A u128 has at most 39 digits: the top group fits the 17 slots left.
        digits(&mut buf[WIDTH - 19..], (v % GROUP) as u64);
        digits(&mut buf[WIDTH - 38..WIDTH - 19], (v / GROUP % GROUP) as u64);
        digits(&mut buf[1..WIDTH - 38], (v / GROUP / GROUP) as u64);
        buf
    }

    /// The counter and shard index a broker-minted number carries; `None` for
    /// anything the broker did not mint.
    pub fn decode(s: &str) -> Option<(u64, u32)> {
        if s.len() != WIDTH || !s.starts_with('4') || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: u128 = s[1..].parse().ok()?;
        let low = v as u64;
        if low > u64::from(u32::MAX) {
            return None;
        }
        Some(((v >> 64) as u64, low as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn encode_is_the_zero_padded_decimal(counter: u64, shard: u32) {
            let v = (u128::from(counter) << 64) | u128::from(shard);
            proptest::prop_assert_eq!(layout::encode(counter, shard), format!("4{v:055}"));
            proptest::prop_assert_eq!(layout::decode(&layout::encode(counter, shard)), Some((counter, shard)));
        }
    }

    #[test]
    fn encode_at_the_extremes() {
        for (c, s) in [(0, 0), (u64::MAX, u32::MAX), (u64::MAX, 0), (1, 1)] {
            let v = (u128::from(c) << 64) | u128::from(s);
            assert_eq!(layout::encode(c, s), format!("4{v:055}"));
        }
    }

    #[test]
    fn parse_accepts_only_canonical_decimals() {
        assert!(SequenceNumber::parse("0").is_some());
        assert!(
            SequenceNumber::parse("49600871682957036442365024926191073437251060580128653314")
                .is_some()
        );
        assert!(SequenceNumber::parse("01").is_none());
        assert!(SequenceNumber::parse("").is_none());
        assert!(SequenceNumber::parse("12a").is_none());
        assert!(SequenceNumber::parse(&"1".repeat(130)).is_none());
    }

    #[test]
    fn compares_as_big_integers() {
        let a = SequenceNumber::parse("9").unwrap();
        let b = SequenceNumber::parse("10").unwrap();
        assert!(a < b);
        let c = SequenceNumber::parse("49600871682957036442365024926191073437251060580128653314")
            .unwrap();
        let d = SequenceNumber::parse("49600871682957036442365024926191073437251060580128653315")
            .unwrap();
        assert!(c < d);
    }

    #[test]
    fn layout_round_trips_and_is_fixed_width() {
        let s = layout::encode(0, 0);
        assert_eq!(s.len(), 56);
        assert_eq!(layout::decode(&s), Some((0, 0)));
        let s = layout::encode(u64::MAX, u32::MAX);
        assert_eq!(s.len(), 56);
        assert_eq!(layout::decode(&s), Some((u64::MAX, u32::MAX)));
        assert_eq!(
            layout::decode("49600871682957036442365024926191073437251060580128653314"),
            None
        );
        assert_eq!(layout::decode("4"), None);
    }

    proptest::proptest! {
        #[test]
        fn layout_order_follows_counter(a in 0u64..u64::MAX, b in 0u64..u64::MAX, sa in 0u32..1000, sb in 0u32..1000) {
            let x = SequenceNumber::parse(&layout::encode(a, sa)).unwrap();
            let y = SequenceNumber::parse(&layout::encode(b, sb)).unwrap();
            if a < b { proptest::prop_assert!(x < y); }
            if a == b && sa == sb { proptest::prop_assert_eq!(&x, &y); }
            proptest::prop_assert_eq!(layout::decode(x.as_str()), Some((a, sa)));
        }
    }
}
