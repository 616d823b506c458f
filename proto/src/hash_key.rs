//! Hash-key routing: MD5 of the partition key as an unsigned 128-bit integer,
//! hash-key ranges, and the even split of the hash space.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// The largest hash key, 2^128 − 1.
pub const MAX_HASH_KEY: u128 = u128::MAX;

/// The hash key Kinesis computes for a partition key: MD5 of its UTF-8 bytes, big-endian.
pub fn hash_key_for_partition_key(partition_key: &str) -> u128 {
    let digest = Md5::digest(partition_key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest);
    u128::from_be_bytes(bytes)
}

/// [`hash_key_for_partition_key`] of many keys at once, several hashed side by side
/// ([`crate::md5_lanes`]), in order.
pub fn hash_keys_for_partition_keys(partition_keys: &[&str]) -> Vec<u128> {
    crate::md5_lanes::digest_all(partition_keys)
        .into_iter()
        .map(u128::from_be_bytes)
        .collect()
}

/// Parse an `ExplicitHashKey` / hash-range bound: a decimal string without sign or
/// leading zeros, below 2^128. `None` when it is not one.
pub fn parse_hash_key(s: &str) -> Option<u128> {
    if s.is_empty() || s.len() > 39 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse::<u128>().ok()
}

/// The hash key a record routes by: its explicit hash key if it has one, else MD5 of its key.
/// `None` when the explicit hash key is not a valid 128-bit decimal.
pub fn effective_hash_key(partition_key: &str, explicit_hash_key: Option<&str>) -> Option<u128> {
    match explicit_hash_key {
        Some(ehk) => parse_hash_key(ehk),
        None => Some(hash_key_for_partition_key(partition_key)),
    }
}

/// An inclusive range of hash keys owned by one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashRange {
    /// The lowest hash key in the range.
    pub start: u128,
    /// The highest hash key in the range (inclusive).
    pub end: u128,
}

impl HashRange {
    /// The whole hash space.
    pub const FULL: HashRange = HashRange {
        start: 0,
        end: MAX_HASH_KEY,
    };

    /// A range from `start` to `end`, both inclusive.
    pub fn new(start: u128, end: u128) -> Self {
        HashRange { start, end }
    }

    /// Whether `key` falls in this range.
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }

    /// Whether `other` starts right after this range ends.
    pub fn is_adjacent_below(&self, other: &HashRange) -> bool {
        self.end != MAX_HASH_KEY && self.end + 1 == other.start
    }

    /// The wire form (`{"StartingHashKey": "...", "EndingHashKey": "..."}`).
    pub fn to_wire(&self) -> crate::model::HashKeyRange {
        crate::model::HashKeyRange {
            starting_hash_key: self.start.to_string(),
            ending_hash_key: self.end.to_string(),
        }
    }

    /// Parse the wire form; `None` if a bound is not a valid hash key.
    pub fn from_wire(w: &crate::model::HashKeyRange) -> Option<Self> {
        Some(HashRange {
            start: parse_hash_key(&w.starting_hash_key)?,
            end: parse_hash_key(&w.ending_hash_key)?,
        })
    }
}

/// The even split of the hash space into `n` ranges, as CreateStream and
/// uniform scaling do it: step = floor(2^128 / n), the last range ends at 2^128 − 1.
pub fn even_split(n: u32) -> Vec<HashRange> {
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![HashRange::FULL];
    }
    // floor(2^128 / n) without overflowing u128: 2^128 = (2^128 - 1) + 1.
    let n128 = n as u128;
    let step = MAX_HASH_KEY / n128 + u128::from(MAX_HASH_KEY % n128 == n128 - 1);
    (0..n128)
        .map(|i| {
            let start = i * step;
            let end = if i == n128 - 1 {
                MAX_HASH_KEY
            } else {
                (i + 1) * step - 1
            };
            HashRange { start, end }
        })
        .collect()
}

/// A serde helper for hash keys kept as `u128` but sent as decimal strings.
pub mod as_decimal {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize a `u128` as a decimal string.
    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    /// Deserialize a decimal string into a `u128`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_hash_key(&s).ok_or_else(|| serde::de::Error::custom("invalid hash key"))
    }
}

/// A hash-key range with bounds kept as numbers (for internal tables and leases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumericRange {
    /// Lowest key.
    #[serde(with = "as_decimal")]
    pub start: u128,
    /// Highest key (inclusive).
    #[serde(with = "as_decimal")]
    pub end: u128,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_keys_hash_as_each_alone() {
        let keys: Vec<String> = (0..37).map(|i| "k".repeat(i * 3)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let each: Vec<u128> = keys.iter().map(|k| hash_key_for_partition_key(k)).collect();
        assert_eq!(hash_keys_for_partition_keys(&keys), each);
    }

    #[test]
    fn md5_routing_vectors() {
        let cases: &[(&str, u128, usize, usize)] = &[
            ("a", 16955237001963240173058271559858726497, 0, 0),
            ("pk-1", 273922656776327812788301823748127981641, 2, 3),
            (
                "partitionKey-0",
                283893945402358862714065952676399797471,
                2,
                3,
            ),
            ("héllo", 252973414135665226741597071662034525008, 2, 2),
            ("日本", 103341369634063465466164320543046703539, 0, 1),
        ];
        let three = even_split(3);
        let four = even_split(4);
        for (pk, key, s3, s4) in cases {
            let k = hash_key_for_partition_key(pk);
            assert_eq!(k, *key, "{pk}");
            assert_eq!(three.iter().position(|r| r.contains(k)), Some(*s3), "{pk}");
            assert_eq!(four.iter().position(|r| r.contains(k)), Some(*s4), "{pk}");
        }
    }

    fn ranges(n: u32) -> Vec<(String, String)> {
        even_split(n)
            .into_iter()
            .map(|r| (r.start.to_string(), r.end.to_string()))
            .collect()
    }

    #[test]
    fn even_split_vectors() {
        assert_eq!(
            ranges(1),
            vec![("0".into(), "340282366920938463463374607431768211455".into())]
        );
        assert_eq!(
            ranges(2),
            vec![
                ("0".into(), "170141183460469231731687303715884105727".into()),
                (
                    "170141183460469231731687303715884105728".into(),
                    "340282366920938463463374607431768211455".into()
                )
            ]
        );
        assert_eq!(
            ranges(3),
            vec![
                ("0".into(), "113427455640312821154458202477256070484".into()),
                (
                    "113427455640312821154458202477256070485".into(),
                    "226854911280625642308916404954512140969".into()
                ),
                (
                    "226854911280625642308916404954512140970".into(),
                    "340282366920938463463374607431768211455".into()
                )
            ]
        );
        assert_eq!(
            ranges(4)[3],
            (
                "255211775190703847597530955573826158592".into(),
                "340282366920938463463374607431768211455".into()
            )
        );
        let five = ranges(5);
        assert_eq!(five[1].0, "68056473384187692692674921486353642291");
        assert_eq!(five[3].1, "272225893536750770770699685945414569163");
        assert_eq!(five[4].0, "272225893536750770770699685945414569164");
    }

    #[test]
    fn parse_hash_key_rejects_bad_forms() {
        assert_eq!(parse_hash_key("0"), Some(0));
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        assert_eq!(
            parse_hash_key("340282366920938463463374607431768211456"),
            None
        );
        assert_eq!(parse_hash_key("01"), None);
        assert_eq!(parse_hash_key("-1"), None);
        assert_eq!(parse_hash_key(""), None);
        assert_eq!(parse_hash_key("1e3"), None);
    }

    proptest::proptest! {
        #[test]
        fn even_split_tiles_the_space(n in 1u32..2000) {
            let r = even_split(n);
            proptest::prop_assert_eq!(r.len(), n as usize);
            proptest::prop_assert_eq!(r[0].start, 0);
            proptest::prop_assert_eq!(r[r.len() - 1].end, MAX_HASH_KEY);
            for w in r.windows(2) {
                proptest::prop_assert!(w[0].is_adjacent_below(&w[1]));
            }
        }

        #[test]
        fn hash_key_decimal_round_trip(k in proptest::num::u128::ANY) {
            proptest::prop_assert_eq!(parse_hash_key(&k.to_string()), Some(k));
        }
    }
}
