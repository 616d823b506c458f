//! The index file of a sealed segment: what recovery would otherwise learn by
//! reading every record of the segment, written once when the segment is
//! closed, so start-up opens a sealed segment without scanning it.
//!
//! `<first counter>.idx` sits beside `<first counter>.seg` and holds, all
//! little-endian (see `docs/durable-store.md`):
//!
//! ```text
//! 8 bytes  magic "KSIDX\0\0\x01" (format version 1)
//! u64      valid bytes of the segment (its exact file length once sealed)
//! u64      records
//! u64      first counter      u64  last counter
//! i64      last arrival       i64  newest arrival
//! u32      sparse index entries, then per entry:
//!          u64 counter | u64 offset | i64 newest arrival of its run
//! u32      CRC-32 of every byte above
//! ```
//!
//! It is written to a temporary name, fsynced and renamed, so it is whole or
//! absent; anything that does not check out (magic, length, checksum, bounds,
//! a segment file of another length) means "scan the segment instead".

use crate::store::segment::{IndexEntry, Segment};
use std::path::{Path, PathBuf};

/// The file extension of index files.
pub const EXTENSION: &str = "idx";
const MAGIC: &[u8; 8] = b"KSIDX\0\0\x01";
const FIXED: usize = 8 + 8 * 6 + 4;
const ENTRY: usize = 24;

/// The index file that belongs beside segment file `segment`.
pub fn path_for(segment: &Path) -> PathBuf {
    segment.with_extension(EXTENSION)
}

/// The bytes of the index file of `seg`, which must be sealed.
pub fn encode(seg: &Segment) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED + seg.index.len() * ENTRY + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seg.size.to_le_bytes());
    out.extend_from_slice(&seg.records.to_le_bytes());
    out.extend_from_slice(&seg.first_counter.to_le_bytes());
    out.extend_from_slice(&seg.last_counter.to_le_bytes());
    out.extend_from_slice(&seg.last_arrival.to_le_bytes());
    out.extend_from_slice(&seg.max_arrival.to_le_bytes());
    out.extend_from_slice(&(seg.index.len() as u32).to_le_bytes());
    for e in &seg.index {
        out.extend_from_slice(&e.counter.to_le_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.max_arrival.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The segment an index file describes (closed: no open file), or why it
/// cannot be trusted.
pub fn decode(path: PathBuf, bytes: &[u8]) -> Result<Segment, &'static str> {
    if bytes.len() < FIXED + 4 || &bytes[..8] != MAGIC {
        return Err("not an index file of this version");
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("checksum mismatch");
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let count = u32::from_le_bytes([body[56], body[57], body[58], body[59]]) as usize;
    if body.len() != FIXED + count * ENTRY {
        return Err("wrong length");
    }
    let mut seg = Segment {
        path,
        file: None,
        size: u64_at(8),
        records: u64_at(16),
        first_counter: u64_at(24),
        last_counter: u64_at(32),
        last_arrival: u64_at(40) as i64,
        max_arrival: u64_at(48) as i64,
        index: Vec::with_capacity(count),
    };
    for i in 0..count {
        let at = FIXED + i * ENTRY;
        seg.index.push(IndexEntry {
            counter: u64_at(at),
            offset: u64_at(at + 8),
            max_arrival: u64_at(at + 16) as i64,
        });
    }
    // A checksum catches damage, not a writer's bug: the bounds reads rely on
    // are checked too, so a bad file can only ever mean "scan instead".
    let ordered = seg
        .index
        .windows(2)
        .all(|w| w[0].counter < w[1].counter && w[0].offset < w[1].offset);
    let bounded = seg
        .index
        .first()
        .is_some_and(|e| e.offset == 0 && e.counter == seg.first_counter)
        && seg
            .index
            .last()
            .is_some_and(|e| e.offset < seg.size && e.counter <= seg.last_counter);
    if seg.records == 0 || seg.first_counter > seg.last_counter || !ordered || !bounded {
        return Err("inconsistent contents");
    }
    Ok(seg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> Segment {
        Segment {
            path: PathBuf::from("/x/00000000000000000005.seg"),
            file: None,
            size: 900,
            records: 30,
            first_counter: 5,
            last_counter: 34,
            last_arrival: -3,
            max_arrival: 1_700_000_000_000,
            index: vec![
                IndexEntry {
                    counter: 5,
                    offset: 0,
                    max_arrival: 7,
                },
                IndexEntry {
                    counter: 20,
                    offset: 450,
                    max_arrival: 1_700_000_000_000,
                },
            ],
        }
    }

    #[test]
    fn round_trips() {
        let seg = sealed();
        let bytes = encode(&seg);
        let back = decode(seg.path.clone(), &bytes).unwrap();
        assert_eq!(back.size, 900);
        assert_eq!(back.records, 30);
        assert_eq!((back.first_counter, back.last_counter), (5, 34));
        assert_eq!(
            (back.last_arrival, back.max_arrival),
            (-3, 1_700_000_000_000)
        );
        assert_eq!(back.index, seg.index);
        assert!(back.file.is_none());
    }

    #[test]
    fn any_flipped_byte_or_cut_is_refused() {
        let bytes = encode(&sealed());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(PathBuf::new(), &bad).is_err(), "flip at {i}");
        }
        for cut in 0..bytes.len() {
            assert!(
                decode(PathBuf::new(), &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn the_index_file_sits_beside_its_segment() {
        assert_eq!(
            path_for(Path::new("/d/00000000000000000005.seg")),
            Path::new("/d/00000000000000000005.idx")
        );
    }
}
