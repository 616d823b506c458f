//! Extended sequence numbers: a position in a shard, down to one user record
//! inside a KPL aggregate, plus the sentinels a lease checkpoint can hold.
//!
//! The order is `AT_TIMESTAMP < TRIM_HORIZON < LATEST < every real position <
//! SHARD_END`; real positions compare by sequence number as a big integer, then
//! by sub-sequence number. The derived `Ord` gives exactly that because the
//! variants are declared in that order and [`SequenceNumber`] compares numerically.

use std::fmt;

use kinesis_proto::sequence::SequenceNumber;

/// A string that is neither a decimal sequence number nor a checkpoint sentinel.
///
/// Its own type rather than [`Error`](crate::error::Error), which holds positions and so
/// depends on this module; it converts into `Error::InvalidSequenceNumber`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a sequence number or checkpoint sentinel")]
pub struct InvalidSequenceNumber(pub String);

/// A checkpointable position in a shard (KCL `ExtendedSequenceNumber`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtendedSequenceNumber {
    /// Start from a configured timestamp (sentinel −3, stored as `AT_TIMESTAMP`).
    AtTimestamp,
    /// Start from the oldest record (sentinel −2, stored as `TRIM_HORIZON`).
    TrimHorizon,
    /// Start after the newest record (sentinel −1, stored as `LATEST`).
    Latest,
    /// A real record: its sequence number and its position inside an aggregate.
    Sequence {
        /// The Kinesis record's sequence number.
        sequence_number: SequenceNumber,
        /// The user record's index inside a KPL aggregate; 0 for plain records.
        sub_sequence_number: u64,
    },
    /// The shard has been read to its end (stored as `SHARD_END`).
    ShardEnd,
}

impl ExtendedSequenceNumber {
    /// The `checkpoint` string of [`ExtendedSequenceNumber::AtTimestamp`].
    pub const AT_TIMESTAMP: &'static str = "AT_TIMESTAMP";
    /// The `checkpoint` string of [`ExtendedSequenceNumber::TrimHorizon`].
    pub const TRIM_HORIZON: &'static str = "TRIM_HORIZON";
    /// The `checkpoint` string of [`ExtendedSequenceNumber::Latest`].
    pub const LATEST: &'static str = "LATEST";
    /// The `checkpoint` string of [`ExtendedSequenceNumber::ShardEnd`].
    pub const SHARD_END: &'static str = "SHARD_END";

    /// The position of a real record.
    pub fn new(sequence_number: SequenceNumber, sub_sequence_number: u64) -> Self {
        ExtendedSequenceNumber::Sequence {
            sequence_number,
            sub_sequence_number,
        }
    }

    /// Parse a `checkpoint` string (decimal or sentinel name) with its sub-sequence number.
    ///
    /// Sentinels carry no sub-sequence, so `sub_sequence_number` is ignored for them
    /// (KCL stores 0 there).
    pub fn parse(
        checkpoint: &str,
        sub_sequence_number: u64,
    ) -> Result<Self, InvalidSequenceNumber> {
        Ok(match checkpoint {
            Self::AT_TIMESTAMP => ExtendedSequenceNumber::AtTimestamp,
            Self::TRIM_HORIZON => ExtendedSequenceNumber::TrimHorizon,
            Self::LATEST => ExtendedSequenceNumber::Latest,
            Self::SHARD_END => ExtendedSequenceNumber::ShardEnd,
            digits => {
                let sequence_number = SequenceNumber::parse(digits)
                    .ok_or_else(|| InvalidSequenceNumber(digits.to_string()))?;
                Self::new(sequence_number, sub_sequence_number)
            }
        })
    }

    /// The lease's `checkpoint` attribute: the decimal sequence number or the sentinel name.
    pub fn checkpoint_str(&self) -> &str {
        match self {
            ExtendedSequenceNumber::AtTimestamp => Self::AT_TIMESTAMP,
            ExtendedSequenceNumber::TrimHorizon => Self::TRIM_HORIZON,
            ExtendedSequenceNumber::Latest => Self::LATEST,
            ExtendedSequenceNumber::Sequence {
                sequence_number, ..
            } => sequence_number.as_str(),
            ExtendedSequenceNumber::ShardEnd => Self::SHARD_END,
        }
    }

    /// The lease's `checkpointSubSequenceNumber` attribute (0 for sentinels).
    pub fn sub_sequence_number(&self) -> u64 {
        match self {
            ExtendedSequenceNumber::Sequence {
                sub_sequence_number,
                ..
            } => *sub_sequence_number,
            _ => 0,
        }
    }

    /// The record's sequence number, `None` for sentinels.
    pub fn sequence_number(&self) -> Option<&SequenceNumber> {
        match self {
            ExtendedSequenceNumber::Sequence {
                sequence_number, ..
            } => Some(sequence_number),
            _ => None,
        }
    }

    /// Whether this is one of the four sentinels rather than a real record.
    pub fn is_sentinel(&self) -> bool {
        !matches!(self, ExtendedSequenceNumber::Sequence { .. })
    }

    /// Whether this is [`ExtendedSequenceNumber::ShardEnd`].
    pub fn is_shard_end(&self) -> bool {
        matches!(self, ExtendedSequenceNumber::ShardEnd)
    }
}

impl fmt::Display for ExtendedSequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtendedSequenceNumber::Sequence {
                sequence_number,
                sub_sequence_number,
            } => write!(f, "{sequence_number}:{sub_sequence_number}"),
            sentinel => f.write_str(sentinel.checkpoint_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn real(s: &str, sub: u64) -> ExtendedSequenceNumber {
        ExtendedSequenceNumber::parse(s, sub).expect("valid test sequence number")
    }

    #[test]
    fn sentinels_order_around_real_positions() {
        use ExtendedSequenceNumber::*;
        let smallest_real = real("0", 0);
        let big = real(
            "49600871682957036442365024926191073437251060580128653314",
            7,
        );
        let order = [
            AtTimestamp,
            TrimHorizon,
            Latest,
            smallest_real,
            big,
            ShardEnd,
        ];
        for w in order.windows(2) {
            assert!(w[0] < w[1], "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn real_positions_compare_as_integers_then_sub_sequence() {
        assert!(real("9", 5) < real("10", 0));
        assert!(real("10", 0) < real("10", 1));
        assert_eq!(real("10", 3), real("10", 3));
        assert!(
            real(
                "49600871682957036442365024926191073437251060580128653314",
                99
            ) < real(
                "49600871682957036442365024926191073437251060580128653315",
                0
            )
        );
    }

    #[test]
    fn lease_strings_round_trip() {
        for (s, sub) in [
            ("AT_TIMESTAMP", 0),
            ("TRIM_HORIZON", 0),
            ("LATEST", 0),
            ("SHARD_END", 0),
            ("123", 4),
        ] {
            let e = real(s, sub);
            assert_eq!(e.checkpoint_str(), s);
            assert_eq!(e.sub_sequence_number(), sub);
        }
        assert_eq!(real("SHARD_END", 9), ExtendedSequenceNumber::ShardEnd);
        assert_eq!(real("SHARD_END", 9).sub_sequence_number(), 0);
    }

    #[test]
    fn rejects_non_numbers() {
        for bad in ["", "01", "-1", "12a", "trim_horizon", "1.5"] {
            assert!(
                matches!(
                    ExtendedSequenceNumber::parse(bad, 0),
                    Err(InvalidSequenceNumber(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn accessors_and_display() {
        let e = real("42", 3);
        assert_eq!(e.sequence_number().map(SequenceNumber::as_str), Some("42"));
        assert!(!e.is_sentinel());
        assert_eq!(e.to_string(), "42:3");
        assert!(ExtendedSequenceNumber::Latest.is_sentinel());
        assert!(ExtendedSequenceNumber::ShardEnd.is_shard_end());
        assert_eq!(
            ExtendedSequenceNumber::TrimHorizon.to_string(),
            "TRIM_HORIZON"
        );
        assert_eq!(ExtendedSequenceNumber::Latest.sequence_number(), None);
    }

    /// A big number `hi * 10^38 + lo` (up to 58 digits), kept with its parts so the
    /// expected order is plain tuple order.
    fn big_number() -> impl Strategy<Value = ((u64, u128), String)> {
        let lo = 0u128..10u128.pow(38);
        (prop_oneof![Just(0u64), any::<u64>()], lo).prop_map(|(hi, lo)| {
            let s = if hi == 0 {
                lo.to_string()
            } else {
                format!("{hi}{lo:038}")
            };
            ((hi, lo), s)
        })
    }

    /// Any position with a key whose tuple order is the intended order.
    fn any_position() -> impl Strategy<Value = ((u8, u64, u128, u64), ExtendedSequenceNumber)> {
        prop_oneof![
            Just(((0, 0, 0, 0), ExtendedSequenceNumber::AtTimestamp)),
            Just(((1, 0, 0, 0), ExtendedSequenceNumber::TrimHorizon)),
            Just(((2, 0, 0, 0), ExtendedSequenceNumber::Latest)),
            Just(((4, 0, 0, 0), ExtendedSequenceNumber::ShardEnd)),
            (big_number(), 0u64..4)
                .prop_map(|(((hi, lo), s), sub)| ((3, hi, lo, sub), real(&s, sub))),
            (big_number(), any::<u64>())
                .prop_map(|(((hi, lo), s), sub)| ((3, hi, lo, sub), real(&s, sub))),
        ]
    }

    proptest! {
        #[test]
        fn order_matches_big_integer_order((ka, a) in any_position(), (kb, b) in any_position()) {
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            prop_assert_eq!(a == b, ka == kb);
            prop_assert_eq!(b.cmp(&a), a.cmp(&b).reverse());
        }

        #[test]
        fn order_is_transitive(
            (_, a) in any_position(), (_, b) in any_position(), (_, c) in any_position()
        ) {
            let mut v = [a, b, c];
            v.sort();
            prop_assert!(v[0] <= v[1] && v[1] <= v[2] && v[0] <= v[2]);
        }

        #[test]
        fn lease_form_round_trips((_, a) in any_position()) {
            let back = ExtendedSequenceNumber::parse(a.checkpoint_str(), a.sub_sequence_number());
            prop_assert_eq!(back.ok(), Some(a));
        }
    }
}
