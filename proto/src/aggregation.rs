//! The KPL aggregated record format: many user records packed into one Kinesis record.
//!
//! Layout: `MAGIC | AggregatedRecord (proto2) | MD5(protobuf bytes)` (see `kpl-aggregation.md`).
//! [`Aggregator`] builds aggregates incrementally and knows their exact size at every step;
//! [`deaggregate`] unpacks them with the KCL's detection rules.
//!
//! ```
//! use kinesis_proto::aggregation::{deaggregate, Aggregator, UserRecord};
//! let mut agg = Aggregator::new(51_200, u64::MAX);
//! for (pk, data) in [("pk-1", "hello"), ("pk-2", "world")] {
//!     let rec = UserRecord::new(pk, data);
//!     assert!(agg.fits(&rec));
//!     agg.push(&rec);
//! }
//! let size = agg.size_bytes();
//! let data = agg.finish().unwrap();
//! assert_eq!(data.len(), size);
//! let records = deaggregate("a", None, data);
//! assert_eq!(&*records[1].partition_key, "pk-2");
//! assert_eq!(records[1].sub_sequence_number, 1);
//! ```

use foldhash::fast::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use md5::{Digest, Md5};
use prost::Message as _;
use prost::encoding::encoded_len_varint;

/// The four bytes that start every aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Length of the MD5 digest that ends every aggregated record.
pub const DIGEST_LEN: usize = 16;
/// Bytes an aggregate adds around its protobuf message (magic and digest).
pub const FIXED_OVERHEAD: usize = MAGIC.len() + DIGEST_LEN;
/// The KPL's default `AggregationMaxSize` (50 KiB).
pub const DEFAULT_MAX_SIZE: usize = 51_200;

// Protobuf field keys: (field_number << 3) | wire_type.
const KEY_PARTITION_KEY_TABLE: u8 = 0x0a;
const KEY_EXPLICIT_HASH_KEY_TABLE: u8 = 0x12;
const KEY_RECORDS: u8 = 0x1a;
const KEY_PARTITION_KEY_INDEX: u8 = 0x08;
const KEY_EXPLICIT_HASH_KEY_INDEX: u8 = 0x10;
const KEY_DATA: u8 = 0x1a;

/// The protobuf `AggregatedRecord` message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AggregatedRecord {
    /// Distinct partition keys, referenced by index.
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    /// Distinct explicit hash keys (decimal strings), referenced by index.
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    /// The user records, in order.
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

/// The protobuf `Record` message: one user record inside an aggregate.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// Index into `partition_key_table`; proto2 `required`, so it is written even when 0.
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    /// Index into `explicit_hash_key_table`; absent means "no explicit hash key".
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    /// The user data; proto2 `required`, so it is written even when empty.
    #[prost(bytes = "bytes", required, tag = "3")]
    pub data: Bytes,
    /// Reserved by the format, never produced or interpreted by the KPL or KCL.
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// The protobuf `Tag` message (unused by the KPL and KCL).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tag {
    /// Tag key.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// Optional tag value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// A record as the producer's user hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserRecord {
    /// Partition key.
    pub partition_key: String,
    /// Explicit hash key as a decimal string, if any.
    pub explicit_hash_key: Option<String>,
    /// Payload.
    pub data: Bytes,
}

impl UserRecord {
    /// A record without an explicit hash key.
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        UserRecord {
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
        }
    }

    /// The same record with an explicit hash key.
    pub fn with_explicit_hash_key(mut self, explicit_hash_key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(explicit_hash_key.into());
        self
    }
}

/// A user record recovered from a Kinesis record by [`deaggregate`].
///
/// Keys are shared with every other user record of the aggregate that names the
/// same table entry (compare with [`Arc::ptr_eq`] to work per distinct key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeaggregatedRecord {
    /// Partition key (the outer record's if it was not aggregated).
    pub partition_key: Arc<str>,
    /// Explicit hash key, present only if the record carried one.
    pub explicit_hash_key: Option<Arc<str>>,
    /// Payload.
    pub data: Bytes,
    /// Position within the aggregate, 0 for non-aggregated records.
    pub sub_sequence_number: u64,
    /// Whether the Kinesis record was an aggregate.
    pub aggregated: bool,
}

/// Builds one aggregated record at a time, tracking its exact encoded size.
///
/// The three protobuf sections are encoded as records arrive into separate buffers, so
/// [`Aggregator::size_bytes`] is exact and [`Aggregator::finish`] only concatenates and hashes.
/// Buffers and maps keep their capacity across [`Aggregator::finish`] to avoid reallocating.
#[derive(Debug, Clone)]
pub struct Aggregator {
    max_size: usize,
    max_count: u64,
    partition_keys: KeyTable,
    explicit_hash_keys: KeyTable,
    records: Vec<u8>,
    count: u64,
    // Keyed per aggregator so that crafted partition keys cannot force hash collisions; a
    // fast keyed hash, since every user record's keys are hashed (SipHash cost about 6 % of
    // the producer's CPU).
    hasher: RandomState,
}

impl Default for Aggregator {
    fn default() -> Self {
        Aggregator::new(DEFAULT_MAX_SIZE, u64::MAX)
    }
}

impl Aggregator {
    /// An empty aggregator whose aggregates hold at most `max_size` bytes and `max_count` records.
    pub fn new(max_size: usize, max_count: u64) -> Self {
        Aggregator {
            max_size,
            max_count,
            partition_keys: KeyTable::new(KEY_PARTITION_KEY_TABLE),
            explicit_hash_keys: KeyTable::new(KEY_EXPLICIT_HASH_KEY_TABLE),
            records: Vec::new(),
            count: 0,
            hasher: RandomState::default(),
        }
    }

    /// Largest aggregate size in bytes, magic and digest included.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Largest number of user records per aggregate.
    pub fn max_count(&self) -> u64 {
        self.max_count
    }

    /// Number of user records in the current aggregate.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the current aggregate holds no user records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Exact length of the aggregate [`Aggregator::finish`] would return now.
    pub fn size_bytes(&self) -> usize {
        FIXED_OVERHEAD
            + self.partition_keys.encoded.len()
            + self.explicit_hash_keys.encoded.len()
            + self.records.len()
    }

    /// Exact length the aggregate would have after pushing `rec`.
    pub fn size_with(&self, rec: &UserRecord) -> usize {
        self.size_bytes() + self.size_increase(rec)
    }

    /// Exact number of bytes pushing `rec` would add (docs/kpl-aggregation.md, "Size").
    pub fn size_increase(&self, rec: &UserRecord) -> usize {
        self.plan(&rec.parts()).added
    }

    /// Looks up a record's keys once, so that checking and pushing do not hash them again.
    fn plan(&self, rec: &Parts) -> Plan {
        let mut added = 0;
        let pk = self.partition_keys.slot(&self.hasher, rec.partition_key);
        if let Slot::New { .. } = pk {
            added += table_entry_len(rec.partition_key);
        }
        let ehk = rec.explicit_hash_key.map(|ehk| {
            let slot = self.explicit_hash_keys.slot(&self.hasher, ehk);
            if let Slot::New { .. } = slot {
                added += table_entry_len(ehk);
            }
            slot
        });
        let body = record_body_len(pk.index(), ehk.map(Slot::index), rec.data.len());
        Plan {
            pk,
            ehk,
            body,
            added: added + 1 + encoded_len_varint(body as u64) + body,
        }
    }

    /// Whether `rec` can be pushed without exceeding the size or count limit.
    ///
    /// A record too large to fit even into an empty aggregate never fits; the KPL sends such
    /// records unaggregated.
    pub fn fits(&self, rec: &UserRecord) -> bool {
        self.fits_plan(&self.plan(&rec.parts()))
    }

    fn fits_plan(&self, plan: &Plan) -> bool {
        self.count < self.max_count && self.size_bytes() + plan.added <= self.max_size
    }

    /// Pushes `rec` if it [fits](Aggregator::fits), returning whether it was pushed.
    pub fn try_push(&mut self, rec: &UserRecord) -> bool {
        let parts = rec.parts();
        let plan = self.plan(&parts);
        let fits = self.fits_plan(&plan);
        if fits {
            self.apply(&parts, plan);
        }
        fits
    }

    /// Appends `rec` regardless of the limits.
    pub fn push(&mut self, rec: &UserRecord) {
        self.push_parts(
            &rec.partition_key,
            rec.explicit_hash_key.as_deref(),
            &rec.data,
        );
    }

    /// Appends a record given by its parts regardless of the limits: for callers that keep
    /// their records in a form of their own.
    pub fn push_parts(
        &mut self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data: &[u8],
    ) {
        let parts = Parts {
            partition_key,
            explicit_hash_key,
            data,
        };
        let plan = self.plan(&parts);
        self.apply(&parts, plan);
    }

    fn apply(&mut self, rec: &Parts, plan: Plan) {
        if let Slot::New { hash, .. } = plan.pk {
            self.partition_keys.insert(rec.partition_key, hash);
        }
        if let (Some(Slot::New { hash, .. }), Some(ehk)) = (plan.ehk, rec.explicit_hash_key) {
            self.explicit_hash_keys.insert(ehk, hash);
        }
        let data = rec.data;
        let out = &mut self.records;
        out.reserve(1 + encoded_len_varint(plan.body as u64) + plan.body);
        out.push(KEY_RECORDS);
        put_varint(out, plan.body as u64);
        out.push(KEY_PARTITION_KEY_INDEX);
        put_varint(out, plan.pk.index());
        if let Some(ehk) = plan.ehk {
            out.push(KEY_EXPLICIT_HASH_KEY_INDEX);
            put_varint(out, ehk.index());
        }
        out.push(KEY_DATA);
        put_varint(out, data.len() as u64);
        out.extend_from_slice(data);
        self.count += 1;
    }

    /// Returns the finished aggregate (magic, protobuf, MD5) and starts a new one; `None` if empty.
    pub fn finish(&mut self) -> Option<Bytes> {
        self.finish_unsealed().map(Unsealed::seal)
    }

    /// Like [`Aggregator::finish`], without the MD5 trailer yet: [`seal_all`] adds it to many
    /// aggregates at once, which hashes several side by side.
    pub fn finish_unsealed(&mut self) -> Option<Unsealed> {
        if self.is_empty() {
            return None;
        }
        let out = Unsealed::new(&[
            &self.partition_keys.encoded,
            &self.explicit_hash_keys.encoded,
            &self.records,
        ]);
        self.clear();
        Some(out)
    }

    /// Drops the current aggregate's records, keeping allocated capacity.
    pub fn clear(&mut self) {
        self.partition_keys.clear();
        self.explicit_hash_keys.clear();
        self.records.clear();
        self.count = 0;
    }
}

/// One deduplicated key table: its encoded protobuf entries plus an index to find keys again.
///
/// Keys are not stored twice: the index maps a key's 64-bit hash to its table position and the
/// key bytes are compared in place, which avoids one allocation and one rehash per new key.
#[derive(Debug, Clone)]
struct KeyTable {
    field: u8,
    encoded: Vec<u8>,
    /// Byte range of each key inside `encoded`, by table index.
    spans: Vec<(usize, usize)>,
    /// First table index seen for each key hash.
    by_hash: HashMap<u64, u64, BuildHasherDefault<PreHashed>>,
}

impl KeyTable {
    fn new(field: u8) -> Self {
        KeyTable {
            field,
            encoded: Vec::new(),
            spans: Vec::new(),
            by_hash: HashMap::default(),
        }
    }

    fn key(&self, index: usize) -> &[u8] {
        let (start, end) = self.spans[index];
        &self.encoded[start..end]
    }

    fn slot(&self, hasher: &RandomState, key: &str) -> Slot {
        self.slot_hashed(key, hasher.hash_one(key))
    }

    fn slot_hashed(&self, key: &str, hash: u64) -> Slot {
        let Some(&first) = self.by_hash.get(&hash) else {
            // Every key ever added has its hash in the map, so a missing hash means a new key.
            return Slot::New {
                index: self.spans.len() as u64,
                hash,
            };
        };
        if self.key(first as usize) == key.as_bytes() {
            return Slot::Existing(first);
        }
        // A genuine 64-bit collision: correct but slow, and unforceable with a keyed hash.
        match (0..self.spans.len()).find(|&i| self.key(i) == key.as_bytes()) {
            Some(i) => Slot::Existing(i as u64),
            None => Slot::New {
                index: self.spans.len() as u64,
                hash,
            },
        }
    }

    fn insert(&mut self, key: &str, hash: u64) {
        let index = self.spans.len() as u64;
        self.by_hash.entry(hash).or_insert(index);
        self.encoded.push(self.field);
        put_varint(&mut self.encoded, key.len() as u64);
        let start = self.encoded.len();
        self.encoded.extend_from_slice(key.as_bytes());
        self.spans.push((start, self.encoded.len()));
    }

    fn clear(&mut self) {
        self.encoded.clear();
        self.spans.clear();
        self.by_hash.clear();
    }
}

/// A `Hasher` for keys that already are uniformly distributed 64-bit hashes.
#[derive(Debug, Default, Clone, Copy)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by the map; this keeps the trait total anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Where a record's key will live in its table.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Already in the table at this index.
    Existing(u64),
    /// Not yet in the table; it will be appended at `index`.
    New { index: u64, hash: u64 },
}

impl Slot {
    fn index(self) -> u64 {
        match self {
            Slot::Existing(index) | Slot::New { index, .. } => index,
        }
    }
}

/// A user record borrowed as the encoder needs it.
struct Parts<'a> {
    partition_key: &'a str,
    explicit_hash_key: Option<&'a str>,
    data: &'a [u8],
}

impl UserRecord {
    fn parts(&self) -> Parts<'_> {
        Parts {
            partition_key: &self.partition_key,
            explicit_hash_key: self.explicit_hash_key.as_deref(),
            data: &self.data,
        }
    }
}

/// The outcome of looking up a record's keys: indices, body length and total size increase.
#[derive(Debug)]
struct Plan {
    pk: Slot,
    ehk: Option<Slot>,
    body: usize,
    added: usize,
}

/// Appends `v` as a protobuf varint.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length of a string entry in a key table: key byte, length varint, bytes.
fn table_entry_len(key: &str) -> usize {
    1 + encoded_len_varint(key.len() as u64) + key.len()
}

/// Length of an encoded `Record` message body without tags.
fn record_body_len(pk_index: u64, ehk_index: Option<u64>, data_len: usize) -> usize {
    1 + encoded_len_varint(pk_index)
        + ehk_index.map_or(0, |i| 1 + encoded_len_varint(i))
        + 1
        + encoded_len_varint(data_len as u64)
        + data_len
}

/// An aggregate (magic and protobuf message) still without its MD5 trailer.
#[derive(Debug)]
pub struct Unsealed(BytesMut);

impl Unsealed {
    /// Magic followed by the protobuf `sections`, with room for the trailer.
    fn new(sections: &[&[u8]]) -> Unsealed {
        let message_len: usize = sections.iter().map(|s| s.len()).sum();
        let mut out = BytesMut::with_capacity(FIXED_OVERHEAD + message_len);
        out.put_slice(&MAGIC);
        for s in sections {
            out.put_slice(s);
        }
        Unsealed(out)
    }

    /// The protobuf message the trailer is the MD5 of.
    fn message(&self) -> &[u8] {
        &self.0[MAGIC.len()..]
    }

    /// Appends `digest` and gives the finished aggregate.
    fn finish(mut self, digest: &[u8]) -> Bytes {
        self.0.put_slice(digest);
        self.0.freeze()
    }

    /// The finished aggregate, its MD5 taken alone.
    pub fn seal(self) -> Bytes {
        let digest = Md5::digest(self.message());
        self.finish(&digest)
    }
}

/// Appends each aggregate's MD5 trailer, hashing several side by side.
pub fn seal_all(unsealed: Vec<Unsealed>) -> Vec<Bytes> {
    let messages: Vec<&[u8]> = unsealed.iter().map(Unsealed::message).collect();
    let digests = crate::md5_lanes::digest_all(&messages);
    unsealed
        .into_iter()
        .zip(digests)
        .map(|(u, digest)| u.finish(&digest))
        .collect()
}

/// Concatenates magic, the protobuf `sections` and their MD5.
fn frame(sections: &[&[u8]]) -> Bytes {
    Unsealed::new(sections).seal()
}

/// Aggregates `records` into one aggregated record, ignoring size limits.
///
/// An empty slice gives the 20-byte `MAGIC + MD5("")`, which consumers treat as not aggregated.
pub fn encode(records: &[UserRecord]) -> Bytes {
    let mut agg = Aggregator::new(usize::MAX, u64::MAX);
    for rec in records {
        agg.push(rec);
    }
    agg.finish().unwrap_or_else(|| frame(&[]))
}

/// Splits `data` into the protobuf message if it passes the magic, length and MD5 checks.
fn checked_message(data: &[u8]) -> Option<std::ops::Range<usize>> {
    // Steps 1 and 2 of docs/kpl-aggregation.md, "Recognising and opening one": magic present, and more than a digest after it.
    if data.len() <= FIXED_OVERHEAD || data[..MAGIC.len()] != MAGIC {
        return None;
    }
    let digest_at = data.len() - DIGEST_LEN;
    let message = MAGIC.len()..digest_at;
    (Md5::digest(&data[message.clone()]).as_slice() == &data[digest_at..]).then_some(message)
}

/// Decode-side mirror of [`AggregatedRecord`] that keeps what prost would hide.
///
/// Same wire format, but every field is optional and strings are raw bytes: prost does not
/// enforce proto2 `required` fields and rejects invalid UTF-8, while protobuf-java (the KCL's
/// parser) rejects messages missing a required field and decodes strings lossily. Mirroring
/// that keeps our "is it aggregated?" answer identical to the KCL's.
#[derive(Clone, PartialEq, prost::Message)]
struct WireAggregatedRecord {
    #[prost(bytes = "vec", repeated, tag = "1")]
    partition_key_table: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    explicit_hash_key_table: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "3")]
    records: Vec<WireRecord>,
}

/// Decode-side mirror of [`Record`].
#[derive(Clone, PartialEq, prost::Message)]
struct WireRecord {
    #[prost(uint64, optional, tag = "1")]
    partition_key_index: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", optional, tag = "3")]
    data: Option<Bytes>,
    #[prost(message, repeated, tag = "4")]
    tags: Vec<WireTag>,
}

/// Decode-side mirror of [`Tag`].
#[derive(Clone, PartialEq, prost::Message)]
struct WireTag {
    #[prost(bytes = "vec", optional, tag = "1")]
    key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "2")]
    value: Option<Vec<u8>>,
}

/// Converts protobuf string bytes the way protobuf-java does: invalid UTF-8 becomes U+FFFD.
fn lossy_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl WireAggregatedRecord {
    /// Applies the required-field and index checks, `None` if the KCL would not deaggregate it.
    fn into_checked(self) -> Option<AggregatedRecord> {
        let pks = self.partition_key_table.len() as u64;
        let ehks = self.explicit_hash_key_table.len() as u64;
        let records = self
            .records
            .into_iter()
            .map(|r| {
                let partition_key_index = r.partition_key_index.filter(|&i| i < pks)?;
                let explicit_hash_key_index = match r.explicit_hash_key_index {
                    Some(i) if i >= ehks => return None,
                    other => other,
                };
                let tags = r
                    .tags
                    .into_iter()
                    .map(|t| {
                        Some(Tag {
                            key: lossy_string(t.key?),
                            value: t.value.map(lossy_string),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Record {
                    partition_key_index,
                    explicit_hash_key_index,
                    data: r.data?,
                    tags,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(AggregatedRecord {
            partition_key_table: self
                .partition_key_table
                .into_iter()
                .map(lossy_string)
                .collect(),
            explicit_hash_key_table: self
                .explicit_hash_key_table
                .into_iter()
                .map(lossy_string)
                .collect(),
            records,
        })
    }
}

/// Parses `data` as an aggregate per docs/kpl-aggregation.md, `None` if it is not one.
///
/// Beyond magic, length, MD5 and protobuf syntax, a record missing a required field or with an
/// index outside its table makes the whole record non-aggregated. Payloads are zero-copy slices
/// of `data`.
pub fn parse(data: &Bytes) -> Option<AggregatedRecord> {
    let message = checked_message(data)?;
    WireAggregatedRecord::decode(data.slice(message))
        .ok()?
        .into_checked()
}

/// Whether `data` is an aggregate that [`deaggregate`] would unpack.
pub fn is_aggregated(data: &[u8]) -> bool {
    checked_message(data)
        .and_then(|m| WireAggregatedRecord::decode(&data[m]).ok())
        .and_then(WireAggregatedRecord::into_checked)
        .is_some()
}

/// Unpacks `data` if it is an aggregate, `None` if it is not.
///
/// Payloads are zero-copy slices of `data`, and each table key is decoded once and
/// shared by every user record that names it: memory grows with the aggregate's
/// size (a small fixed cost per user record), never with the size of what the
/// records would expand to (one 500 KB key named by 80,000 records stays 500 KB).
/// An aggregate without records gives an empty vector.
pub fn try_deaggregate(data: &Bytes) -> Option<Vec<DeaggregatedRecord>> {
    let message = checked_message(data)?;
    let wire = WireAggregatedRecord::decode(data.slice(message)).ok()?;
    let pks = wire.partition_key_table.len() as u64;
    let ehks = wire.explicit_hash_key_table.len() as u64;
    // The same acceptance rules as `parse` (`into_checked`), before anything is built.
    let well_formed = wire.records.iter().all(|r| {
        r.partition_key_index.is_some_and(|i| i < pks)
            && r.explicit_hash_key_index.is_none_or(|i| i < ehks)
            && r.data.is_some()
            && r.tags.iter().all(|t| t.key.is_some())
    });
    if !well_formed {
        return None;
    }
    let shared = |table: Vec<Vec<u8>>| -> Vec<Arc<str>> {
        table
            .into_iter()
            .map(|k| Arc::from(lossy_string(k)))
            .collect()
    };
    let pk_table = shared(wire.partition_key_table);
    let ehk_table = shared(wire.explicit_hash_key_table);
    let records = wire
        .records
        .into_iter()
        .enumerate()
        .map(|(i, r)| DeaggregatedRecord {
            // In range and present: checked above.
            partition_key: Arc::clone(&pk_table[r.partition_key_index.unwrap_or(0) as usize]),
            explicit_hash_key: r
                .explicit_hash_key_index
                .map(|e| Arc::clone(&ehk_table[e as usize])),
            data: r.data.unwrap_or_default(),
            sub_sequence_number: i as u64,
            aggregated: true,
        })
        .collect();
    Some(records)
}

/// Unpacks a Kinesis record's `data`, or passes it through as one non-aggregated record.
///
/// `partition_key` and `explicit_hash_key` are the outer record's, used only for pass-through.
pub fn deaggregate(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    data: Bytes,
) -> Vec<DeaggregatedRecord> {
    try_deaggregate(&data).unwrap_or_else(|| {
        vec![DeaggregatedRecord {
            partition_key: Arc::from(partition_key),
            explicit_hash_key: explicit_hash_key.map(Arc::from),
            data,
            sub_sequence_number: 0,
            aggregated: false,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EHK: &str = "170141183460469231731687303715884105728";
    const VECTOR: &str = "f3899ac20a04706b2d310a04706b2d3212273137303134313138333436303436393233313733313638373330333731353838343130353732381a0908001a0568656c6c6f1a0b080110001a05776f726c641a0508001a01210221d377e9694204a06dd33999bbaff0";
    const MESSAGE_BASE64: &str = "CgRway0xCgRway0yEicxNzAxNDExODM0NjA0NjkyMzE3MzE2ODczMDM3MTU4ODQxMDU3MjgaCQgAGgVoZWxsbxoLCAEQABoFd29ybGQaBQgAGgEh";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn vector_records() -> Vec<UserRecord> {
        vec![
            UserRecord::new("pk-1", "hello"),
            UserRecord::new("pk-2", "world").with_explicit_hash_key(EHK),
            UserRecord::new("pk-1", "!"),
        ]
    }

    fn passthrough(data: &[u8]) -> Vec<DeaggregatedRecord> {
        vec![DeaggregatedRecord {
            partition_key: "outer".into(),
            explicit_hash_key: None,
            data: Bytes::copy_from_slice(data),
            sub_sequence_number: 0,
            aggregated: false,
        }]
    }

    #[test]
    fn spec_vector_encodes_byte_for_byte() {
        let expected = unhex(VECTOR);
        assert_eq!(expected.len(), 104);
        let mut agg = Aggregator::default();
        let mut predicted = FIXED_OVERHEAD;
        for rec in vector_records() {
            assert!(agg.fits(&rec));
            predicted += agg.size_increase(&rec);
            agg.push(&rec);
            assert_eq!(agg.size_bytes(), predicted);
        }
        assert_eq!(agg.len(), 3);
        assert_eq!(agg.size_bytes(), 104);
        let out = agg.finish().unwrap();
        assert_eq!(out[..], expected[..]);
        assert!(agg.is_empty());
        assert_eq!(agg.size_bytes(), FIXED_OVERHEAD);
        assert_eq!(agg.finish(), None);
        assert_eq!(encode(&vector_records())[..], expected[..]);

        use base64::Engine as _;
        let message = base64::engine::general_purpose::STANDARD
            .decode(MESSAGE_BASE64)
            .unwrap();
        assert_eq!(message[..], expected[4..88]);
        assert_eq!(
            hex(&Md5::digest(&message)),
            "0221d377e9694204a06dd33999bbaff0"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn prost_encoding_matches_vector() {
        // Checks the prost schema (required fields written when 0, presence of the EHK index).
        let message = AggregatedRecord {
            partition_key_table: vec!["pk-1".into(), "pk-2".into()],
            explicit_hash_key_table: vec![EHK.into()],
            records: vec![
                Record {
                    partition_key_index: 0,
                    explicit_hash_key_index: None,
                    data: Bytes::from_static(b"hello"),
                    tags: vec![],
                },
                Record {
                    partition_key_index: 1,
                    explicit_hash_key_index: Some(0),
                    data: Bytes::from_static(b"world"),
                    tags: vec![],
                },
                Record {
                    partition_key_index: 0,
                    explicit_hash_key_index: None,
                    data: Bytes::from_static(b"!"),
                    tags: vec![],
                },
            ],
        };
        let bytes = message.encode_to_vec();
        assert_eq!(bytes[..], unhex(VECTOR)[4..88]);
        assert_eq!(
            hex(&message.records[0].encode_to_vec()),
            "08001a0568656c6c6f"
        );
        assert_eq!(AggregatedRecord::decode(&bytes[..]).unwrap(), message);
    }

    #[test]
    fn spec_vector_deaggregates() {
        let data = Bytes::from(unhex(VECTOR));
        assert!(is_aggregated(&data));
        let records = deaggregate("a", Some("273922656776327812788301823748127981641"), data);
        let expected = [
            ("pk-1", None, "hello"),
            ("pk-2", Some(EHK), "world"),
            ("pk-1", None, "!"),
        ];
        assert_eq!(records.len(), 3);
        for (i, (r, (pk, ehk, data))) in records.iter().zip(expected).enumerate() {
            assert_eq!(&*r.partition_key, pk);
            assert_eq!(r.explicit_hash_key.as_deref(), ehk);
            assert_eq!(r.data, data.as_bytes());
            assert_eq!(r.sub_sequence_number, i as u64);
            assert!(r.aggregated);
        }
    }

    #[test]
    fn corrupted_digest_passes_through() {
        let mut data = unhex(VECTOR);
        data[100] ^= 0x01;
        assert!(!is_aggregated(&data));
        assert_eq!(
            deaggregate("outer", None, data.clone().into()),
            passthrough(&data)
        );
    }

    #[test]
    fn magic_plus_digest_only_passes_through() {
        let mut data = MAGIC.to_vec();
        data.extend(Md5::digest(b"").as_slice());
        assert_eq!(data.len(), 20);
        assert!(!is_aggregated(&data));
        assert_eq!(
            deaggregate("outer", None, data.clone().into()),
            passthrough(&data)
        );
        assert_eq!(encode(&[])[..], data[..]);
    }

    #[test]
    fn non_magic_prefix_passes_through() {
        let mut data = unhex(VECTOR);
        data[0] = 0xf2;
        assert_eq!(
            deaggregate("outer", None, data.clone().into()),
            passthrough(&data)
        );
        for short in [&b""[..], b"\xf3", b"\xf3\x89\x9a", b"\xf3\x89\x9a\xc2"] {
            assert_eq!(
                deaggregate("outer", None, Bytes::from(short)),
                passthrough(short)
            );
        }
    }

    #[test]
    fn passthrough_keeps_outer_keys() {
        let records = deaggregate("pk", Some("42"), Bytes::from_static(b"plain"));
        assert_eq!(&*records[0].partition_key, "pk");
        assert_eq!(records[0].explicit_hash_key.as_deref(), Some("42"));
        assert!(!records[0].aggregated);
    }

    /// Wraps an arbitrary protobuf message in magic and a valid digest.
    fn wrap(message: &[u8]) -> Vec<u8> {
        frame(&[message]).to_vec()
    }

    #[test]
    fn unparseable_protobuf_passes_through() {
        // Field 1 with a length running past the end.
        let data = wrap(b"\x0a\x05ab");
        assert!(!is_aggregated(&data));
        assert_eq!(
            deaggregate("outer", None, data.clone().into()),
            passthrough(&data)
        );
    }

    #[test]
    fn out_of_range_indices_pass_through() {
        let bad_pk = AggregatedRecord {
            partition_key_table: vec!["a".into()],
            explicit_hash_key_table: vec![],
            records: vec![Record {
                partition_key_index: 1,
                explicit_hash_key_index: None,
                data: Bytes::new(),
                tags: vec![],
            }],
        };
        let mut bad_ehk = bad_pk.clone();
        bad_ehk.records[0].partition_key_index = 0;
        bad_ehk.records[0].explicit_hash_key_index = Some(0);
        let mut good = bad_ehk.clone();
        good.explicit_hash_key_table.push("7".into());
        for (message, ok) in [(bad_pk, false), (bad_ehk, false), (good, true)] {
            let data = wrap(&message.encode_to_vec());
            assert_eq!(is_aggregated(&data), ok);
            let records = deaggregate("outer", None, data.clone().into());
            assert_eq!(records[0].aggregated, ok);
            if !ok {
                assert_eq!(records, passthrough(&data));
            }
        }
    }

    #[test]
    fn explicit_hash_key_uses_presence() {
        // An EHK table is present but record 0 has no index: it must not get entry 0.
        let data = encode(&[
            UserRecord::new("a", "1"),
            UserRecord::new("b", "2").with_explicit_hash_key("5"),
        ]);
        let records = deaggregate("outer", None, data);
        assert_eq!(records[0].explicit_hash_key, None);
        assert_eq!(records[1].explicit_hash_key.as_deref(), Some("5"));
    }

    #[test]
    fn key_table_survives_hash_collisions() {
        let mut table = KeyTable::new(KEY_PARTITION_KEY_TABLE);
        assert!(matches!(
            table.slot_hashed("a", 7),
            Slot::New { index: 0, hash: 7 }
        ));
        table.insert("a", 7);
        assert!(matches!(table.slot_hashed("a", 7), Slot::Existing(0)));
        // Same hash, different key: found to be new, then found again by its bytes.
        assert!(matches!(
            table.slot_hashed("b", 7),
            Slot::New { index: 1, .. }
        ));
        table.insert("b", 7);
        assert!(matches!(table.slot_hashed("b", 7), Slot::Existing(1)));
        assert!(matches!(table.slot_hashed("a", 7), Slot::Existing(0)));
        assert!(matches!(
            table.slot_hashed("c", 8),
            Slot::New { index: 2, .. }
        ));
        assert_eq!(table.encoded, b"\x0a\x01a\x0a\x01b");
    }

    #[test]
    fn missing_required_fields_pass_through() {
        // Record bodies: `08 00 1a 00` is complete; each case drops or breaks one required part.
        for (body, ok) in [
            (&b"\x08\x00\x1a\x00"[..], true),
            (b"\x1a\x01x", false), // no partition_key_index
            (b"\x08\x00", false),  // no data
            (b"\x08\x00\x1a\x00\x22\x02\x12\x00", false), // tag without key
            (b"\x08\x00\x1a\x00\x22\x03\x0a\x01k", true), // tag with key only
        ] {
            let mut message = b"\x0a\x01a\x1a".to_vec();
            message.push(body.len() as u8);
            message.extend_from_slice(body);
            let data = wrap(&message);
            assert_eq!(is_aggregated(&data), ok, "{body:?}");
            let records = deaggregate("outer", None, data.clone().into());
            assert_eq!(records[0].aggregated, ok, "{body:?}");
        }
    }

    #[test]
    fn invalid_utf8_keys_are_decoded_lossily() {
        // protobuf-java accepts invalid UTF-8 in proto2 strings, so the KCL still deaggregates.
        let data = wrap(b"\x0a\x02a\xff\x1a\x04\x08\x00\x1a\x00");
        let records = deaggregate("outer", None, data.into());
        assert!(records[0].aggregated);
        assert_eq!(&*records[0].partition_key, "a\u{fffd}");
    }

    #[test]
    fn tags_are_ignored() {
        let message = AggregatedRecord {
            partition_key_table: vec!["a".into()],
            explicit_hash_key_table: vec![],
            records: vec![Record {
                partition_key_index: 0,
                explicit_hash_key_index: None,
                data: Bytes::from_static(b"x"),
                tags: vec![Tag {
                    key: "k".into(),
                    value: Some("v".into()),
                }],
            }],
        };
        let records = deaggregate("outer", None, wrap(&message.encode_to_vec()).into());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].data, "x");
        assert!(records[0].aggregated);
    }

    #[test]
    fn limits_are_enforced() {
        let rec = UserRecord::new("pk", vec![0u8; 100]);
        // 20 overhead + 4 table entry + (2 + 2 + 100) record body + 2 record header.
        let one = FIXED_OVERHEAD + 4 + 2 + 104;
        assert_eq!(Aggregator::default().size_with(&rec), one);

        let mut agg = Aggregator::new(one, u64::MAX);
        assert!(agg.try_push(&rec));
        assert!(!agg.fits(&rec));
        assert!(!agg.try_push(&rec));
        assert_eq!(agg.len(), 1);

        let mut agg = Aggregator::new(one - 1, u64::MAX);
        assert!(!agg.try_push(&rec));
        assert!(agg.is_empty());

        let mut agg = Aggregator::new(usize::MAX, 2);
        assert!(agg.try_push(&rec));
        assert!(agg.try_push(&rec));
        assert!(!agg.try_push(&rec));
        assert_eq!(agg.finish().map(|b| b.len()), Some(one + 106));
        // Reusable after finish.
        assert!(agg.try_push(&rec));
        assert_eq!(agg.size_bytes(), one);
    }

    #[test]
    fn index_and_length_varints_grow() {
        // 200 distinct keys push indices past 127 (two-byte varints); 20 000-byte data needs a
        // three-byte length.
        let mut agg = Aggregator::new(usize::MAX, u64::MAX);
        let mut recs = Vec::new();
        for i in 0..200 {
            recs.push(UserRecord::new(format!("k{i}"), vec![i as u8; i]));
        }
        recs.push(UserRecord::new("k150", vec![1u8; 20_000]).with_explicit_hash_key("9"));
        for rec in &recs {
            let expected = agg.size_with(rec);
            agg.push(rec);
            assert_eq!(agg.size_bytes(), expected);
        }
        let size = agg.size_bytes();
        let data = agg.finish().unwrap();
        assert_eq!(data.len(), size);
        let out = try_deaggregate(&data).unwrap();
        assert_eq!(out.len(), recs.len());
        for (o, r) in out.iter().zip(&recs) {
            assert_eq!(&*o.partition_key, r.partition_key.as_str());
            assert_eq!(o.data, r.data);
        }
    }

    /// Release-mode timing: `cargo test -p kinesis-proto --release --lib -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_aggregate_500_x_100_bytes() {
        use std::time::{Duration, Instant};
        // Best of several rounds, so that other processes on the machine do not skew the figure.
        fn best(mut f: impl FnMut()) -> Duration {
            (0..7)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..300 {
                        f();
                    }
                    start.elapsed() / 300
                })
                .min()
                .unwrap()
        }
        let recs: Vec<UserRecord> = (0..500)
            .map(|i| UserRecord::new(format!("partition-key-{i:08}"), vec![i as u8; 100]))
            .collect();
        let mut agg = Aggregator::new(1 << 20, u64::MAX);
        let data = encode(&recs);
        let aggregate = best(|| {
            for rec in &recs {
                assert!(agg.try_push(rec));
            }
            assert_eq!(agg.finish().map(|b| b.len()), Some(data.len()));
        });
        let md5 = best(|| assert_eq!(Md5::digest(&data[4..]).len(), 16));
        let deaggregate = best(|| assert_eq!(try_deaggregate(&data).map(|v| v.len()), Some(500)));
        println!(
            "500 x 100 B -> {} B aggregate: aggregate incl. MD5 {aggregate:?} (MD5 alone {md5:?}), \
             deaggregate {deaggregate:?}",
            data.len()
        );
    }

    fn arb_user_record() -> impl Strategy<Value = UserRecord> {
        (
            prop_oneof!["[a-c]{1,2}", "\\PC{0,20}", "[a-z]{130,140}"],
            proptest::option::of(prop_oneof!["[0-9]{1,2}", "[0-9]{1,39}"]),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..4),
                proptest::collection::vec(any::<u8>(), 0..300),
            ],
        )
            .prop_map(|(pk, ehk, data)| UserRecord {
                partition_key: pk,
                explicit_hash_key: ehk,
                data: data.into(),
            })
    }

    proptest! {
        #[test]
        fn prop_size_accounting_is_exact(recs in proptest::collection::vec(arb_user_record(), 1..60)) {
            let mut agg = Aggregator::new(usize::MAX, u64::MAX);
            for rec in &recs {
                let predicted = agg.size_with(rec);
                agg.push(rec);
                prop_assert_eq!(agg.size_bytes(), predicted);
            }
            let size = agg.size_bytes();
            prop_assert_eq!(agg.finish().unwrap().len(), size);
        }

        #[test]
        fn prop_round_trip(recs in proptest::collection::vec(arb_user_record(), 1..60)) {
            let data = encode(&recs);
            // Our incremental encoder agrees with prost's encoding of the decoded message.
            let message = parse(&data).unwrap();
            prop_assert_eq!(&message.encode_to_vec()[..], &data[4..data.len() - 16]);
            let out = deaggregate("outer", None, data);
            prop_assert_eq!(out.len(), recs.len());
            for (i, (o, r)) in out.iter().zip(&recs).enumerate() {
                prop_assert_eq!(&*o.partition_key, r.partition_key.as_str());
                prop_assert_eq!(o.explicit_hash_key.as_deref(), r.explicit_hash_key.as_deref());
                prop_assert_eq!(&o.data, &r.data);
                prop_assert_eq!(o.sub_sequence_number, i as u64);
                prop_assert!(o.aggregated);
            }
        }

        #[test]
        fn prop_limits_respected(
            recs in proptest::collection::vec(arb_user_record(), 1..80),
            max_size in 64usize..2000,
            max_count in 1u64..10,
        ) {
            let mut agg = Aggregator::new(max_size, max_count);
            let mut outputs = Vec::new();
            for rec in &recs {
                if !agg.try_push(rec) {
                    outputs.extend(agg.finish());
                    if !agg.try_push(rec) {
                        // Too big for an empty aggregate: the caller sends it unaggregated.
                        prop_assert!(FIXED_OVERHEAD + agg.size_increase(rec) > max_size);
                    }
                }
                prop_assert!(agg.size_bytes() <= max_size || agg.is_empty());
                prop_assert!(agg.len() <= max_count);
            }
            outputs.extend(agg.finish());
            for o in outputs {
                prop_assert!(o.len() <= max_size);
            }
        }

        #[test]
        fn prop_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let data = Bytes::from(bytes);
            let out = deaggregate("outer", None, data.clone());
            prop_assert_eq!(out.len(), 1);
            prop_assert_eq!(&out[0].data, &data);
            prop_assert!(!is_aggregated(&data));
        }

        #[test]
        fn prop_random_message_with_valid_digest_never_panics(
            message in proptest::collection::vec(any::<u8>(), 1..256),
        ) {
            // Random bytes behind a correct MD5 reach the protobuf parser and index checks.
            let data = Bytes::from(wrap(&message));
            let out = deaggregate("outer", None, data.clone());
            prop_assert_eq!(is_aggregated(&data), out.first().is_none_or(|r| r.aggregated));
        }
    }
}
