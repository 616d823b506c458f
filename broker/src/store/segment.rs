//! One segment file of a shard's durable log: its record framing, its sparse
//! index, and a cursor that reads records back by seeking.
//!
//! A segment is a plain concatenation of frames:
//!
//! ```text
//! u32 LE  body length
//! u32 LE  CRC-32 of (length bytes ‖ body)
//! body:   u64 LE counter | i64 LE arrival ms | u16 LE key length | key | data
//! ```
//!
//! The checksum covers the length too, so a torn or garbled header is caught as
//! surely as a torn body. A segment is named for the counter of its first record
//! (20 zero-padded digits, so names sort like the counters).

use crate::store::{LogRecord, PartitionKey};
use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes before a record's body: length and checksum.
pub const HEADER_LEN: usize = 8;
/// Fixed part of a body: counter, arrival and key length.
const BODY_FIXED: usize = 8 + 8 + 2;
/// Largest body accepted when reading: far above any record the service takes,
/// so a garbled length is recognised without trying to allocate it.
pub const MAX_BODY: usize = 16 * 1024 * 1024;
/// The file extension of segment files.
pub const EXTENSION: &str = "seg";
/// How much a cursor reads from disk at once.
const CHUNK: usize = 256 * 1024;

/// Bytes a record takes on disk.
pub fn encoded_len(r: &LogRecord) -> usize {
    HEADER_LEN + BODY_FIXED + r.partition_key.len() + r.data.len()
}

/// Append one framed record to `out`.
pub fn encode(r: &LogRecord, out: &mut Vec<u8>) {
    let key = r.partition_key.as_bytes();
    // Keys are at most 256 characters; a longer one is cut rather than wrapping
    // the length field (validation refuses them long before this).
    let key = &key[..key.len().min(usize::from(u16::MAX))];
    let body_len = BODY_FIXED + key.len() + r.data.len();
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&r.counter.to_le_bytes());
    out.extend_from_slice(&r.arrival_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&r.data);
    let crc = checksum(&out[start..start + 4], &out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len: &[u8], body: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(body);
    h.finalize()
}

/// What decoding the bytes at a position found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole, valid record and the bytes it took.
    Record(LogRecord, usize),
    /// The buffer ends inside the frame; `need` bytes in all would complete it.
    Incomplete {
        /// Total bytes the frame needs from its start.
        need: usize,
    },
    /// The bytes are not a valid frame.
    Corrupt(&'static str),
}

/// Decode the frame at the start of `buf`. Data and key are sliced from `buf`, not copied.
pub fn decode(buf: &Bytes) -> Frame {
    if buf.len() < HEADER_LEN {
        return Frame::Incomplete { need: HEADER_LEN };
    }
    let body_len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if !(BODY_FIXED..=MAX_BODY).contains(&body_len) {
        return Frame::Corrupt("impossible record length");
    }
    let total = HEADER_LEN + body_len;
    if buf.len() < total {
        return Frame::Incomplete { need: total };
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let body = &buf[HEADER_LEN..total];
    if checksum(&buf[..4], body) != crc {
        return Frame::Corrupt("checksum mismatch");
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[i..i + 8]);
        b
    };
    let counter = u64::from_le_bytes(u64_at(0));
    let arrival_ms = i64::from_le_bytes(u64_at(8));
    let key_len = usize::from(u16::from_le_bytes([body[16], body[17]]));
    if BODY_FIXED + key_len > body_len {
        return Frame::Corrupt("key longer than the record");
    }
    let key_start = HEADER_LEN + BODY_FIXED;
    // Sliced from the read buffer like the data: no allocation per key.
    let Some(key) = PartitionKey::from_utf8(buf.slice(key_start..key_start + key_len)) else {
        return Frame::Corrupt("partition key is not UTF-8");
    };
    let data = buf.slice(HEADER_LEN + BODY_FIXED + key_len..total);
    Frame::Record(
        LogRecord {
            counter,
            arrival_ms,
            partition_key: key,
            data,
        },
        total,
    )
}

/// The file name of the segment whose first record has `counter`.
pub fn file_name(counter: u64) -> String {
    format!("{counter:020}.{EXTENSION}")
}

/// The first counter a segment file name carries, if it is one.
pub fn parse_file_name(path: &Path) -> Option<u64> {
    if path.extension()? != EXTENSION {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// One sparse index point: where a run of records starts, and the newest
/// arrival in that run (arrival can step back with the clock, so the run's
/// maximum is what lets a timestamp search skip it safely).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Counter of the run's first record.
    pub counter: u64,
    /// File offset of the run's first record.
    pub offset: u64,
    /// Newest arrival among the run's records.
    pub max_arrival: i64,
}

/// A segment as the log keeps it in memory: file handle, bounds and sparse
/// index — never the records themselves.
#[derive(Debug)]
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// Open for reading (by offset) and appending while the segment is active;
    /// a sealed segment is opened per read, so a store of many segments does
    /// not hold a descriptor for each.
    pub file: Option<Arc<File>>,
    /// Valid bytes: everything past this is not part of the log.
    pub size: u64,
    /// Records held.
    pub records: u64,
    /// Counter of the first record.
    pub first_counter: u64,
    /// Counter of the newest record.
    pub last_counter: u64,
    /// Arrival of the newest record.
    pub last_arrival: i64,
    /// Newest arrival of any record (retention deletes the segment once it expires).
    pub max_arrival: i64,
    /// Sparse index, one entry per `index_interval` bytes or so.
    pub index: Vec<IndexEntry>,
}

impl Segment {
    /// An empty segment over an open file.
    pub fn new(path: PathBuf, file: Arc<File>) -> Self {
        Segment {
            path,
            file: Some(file),
            size: 0,
            records: 0,
            first_counter: 0,
            last_counter: 0,
            last_arrival: i64::MIN,
            max_arrival: i64::MIN,
            index: Vec::new(),
        }
    }

    /// Account for a record written at `offset` taking `len` bytes, adding an
    /// index entry when the last one is `interval` bytes behind.
    pub fn note(&mut self, counter: u64, arrival_ms: i64, offset: u64, len: u64, interval: u64) {
        if self.records == 0 {
            self.first_counter = counter;
        }
        match self.index.last_mut() {
            Some(e) if offset - e.offset < interval => {
                e.max_arrival = e.max_arrival.max(arrival_ms)
            }
            _ => self.index.push(IndexEntry {
                counter,
                offset,
                max_arrival: arrival_ms,
            }),
        }
        self.records += 1;
        self.last_counter = counter;
        self.last_arrival = arrival_ms;
        self.max_arrival = self.max_arrival.max(arrival_ms);
        self.size = offset + len;
    }

    /// The index run that holds `counter` (or the first run).
    pub fn run_for_counter(&self, counter: u64) -> usize {
        self.index
            .partition_point(|e| e.counter <= counter)
            .saturating_sub(1)
    }

    /// The file to read from: the open one, or the sealed one opened afresh.
    pub fn reader(&self) -> std::io::Result<Arc<File>> {
        match &self.file {
            Some(f) => Ok(Arc::clone(f)),
            None => File::open(&self.path).map(Arc::new),
        }
    }

    /// Where index run `run` starts (the segment end past the last run).
    pub fn run_start(&self, run: usize) -> u64 {
        self.index.get(run).map_or(self.size, |e| e.offset)
    }

    /// End offset of index run `run` (the next run's start, or the segment end).
    pub fn run_end(&self, run: usize) -> u64 {
        self.index.get(run + 1).map_or(self.size, |e| e.offset)
    }
}

/// Why a cursor stopped before the end of its range.
#[derive(Debug)]
pub enum CursorError {
    /// Reading the file failed.
    Io(std::io::Error),
    /// The bytes at `offset` are not a whole valid record.
    Damaged {
        /// Where the bad frame starts.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Reads records one after another from a byte range of a file, by offset
/// (no shared seek position, so readers do not disturb each other or the writer).
pub struct Cursor<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    chunk: Bytes,
    chunk_start: u64,
}

impl<'a> Cursor<'a> {
    /// Records in `[pos, end)` of `file`.
    pub fn new(file: &'a File, pos: u64, end: u64) -> Self {
        Cursor {
            file,
            pos,
            end,
            chunk: Bytes::new(),
            chunk_start: pos,
        }
    }

    /// Offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Make `[pos, pos + need)` buffered, reading at least a chunk.
    fn fill(&mut self, need: usize) -> std::io::Result<()> {
        let have_from = self.pos - self.chunk_start;
        if self.pos >= self.chunk_start && have_from as usize + need <= self.chunk.len() {
            return Ok(());
        }
        // Callers never ask past `end`, so this is at least `need`.
        let want = need.max(CHUNK).min((self.end - self.pos) as usize);
        let mut buf = BytesMut::zeroed(want);
        read_exact_at(self.file, &mut buf, self.pos)?;
        self.chunk = buf.freeze();
        self.chunk_start = self.pos;
        Ok(())
    }

    /// The next record and the offset it starts at; `None` at the end of the range.
    pub fn next_record(&mut self) -> Result<Option<(u64, LogRecord)>, CursorError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let left = (self.end - self.pos) as usize;
        let mut need = HEADER_LEN;
        loop {
            if need > left {
                return Err(CursorError::Damaged {
                    offset: self.pos,
                    reason: "record cut short",
                });
            }
            self.fill(need).map_err(CursorError::Io)?;
            let from = (self.pos - self.chunk_start) as usize;
            match decode(&self.chunk.slice(from..)) {
                Frame::Record(r, len) => {
                    let at = self.pos;
                    self.pos += len as u64;
                    return Ok(Some((at, r)));
                }
                Frame::Incomplete { need: n } => need = n,
                Frame::Corrupt(reason) => {
                    return Err(CursorError::Damaged {
                        offset: self.pos,
                        reason,
                    });
                }
            }
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What scanning a segment file at start-up found.
#[derive(Debug)]
pub struct Scan {
    /// The segment, indexed, covering every valid record.
    pub segment: Segment,
    /// Bytes in the file past the last valid record, and why, if any.
    pub damage: Option<(u64, &'static str)>,
}

/// Read a whole segment file, checking every record and rebuilding the sparse index.
/// Records must have counters above `after`; the first one that does not, or
/// that is cut short or fails its checksum, ends the valid part.
pub fn scan(
    path: PathBuf,
    file: Arc<File>,
    after: Option<u64>,
    interval: u64,
) -> std::io::Result<Scan> {
    let len = file.metadata()?.len();
    let mut segment = Segment::new(path, Arc::clone(&file));
    let mut cursor = Cursor::new(&file, 0, len);
    let mut last = after;
    let damage = loop {
        match cursor.next_record() {
            Ok(None) => break None,
            Ok(Some((offset, r))) => {
                if last.is_some_and(|l| r.counter <= l) {
                    break Some((offset, "sequence out of order"));
                }
                last = Some(r.counter);
                segment.note(
                    r.counter,
                    r.arrival_ms,
                    offset,
                    encoded_len(&r) as u64,
                    interval,
                );
            }
            Err(CursorError::Damaged { offset, reason }) => break Some((offset, reason)),
            Err(CursorError::Io(e)) => return Err(e),
        }
    };
    Ok(Scan { segment, damage })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rec(counter: u64, arrival_ms: i64, key: &str, data: &[u8]) -> LogRecord {
        LogRecord {
            counter,
            arrival_ms,
            partition_key: key.into(),
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn frames_round_trip_and_report_their_length() {
        let r = rec(7, 1_700_000_000_000, "pk", b"hello");
        let mut out = Vec::new();
        encode(&r, &mut out);
        assert_eq!(out.len(), encoded_len(&r));
        assert_eq!(out.len(), 8 + 18 + 2 + 5);
        let n = out.len();
        assert_eq!(decode(&Bytes::from(out)), Frame::Record(r, n));
    }

    #[test]
    fn torn_and_garbled_frames_are_recognised() {
        let mut out = Vec::new();
        encode(&rec(1, 2, "k", b"abc"), &mut out);
        let whole = Bytes::from(out.clone());
        for cut in 0..out.len() {
            assert!(
                matches!(decode(&whole.slice(..cut)), Frame::Incomplete { .. }),
                "cut at {cut}"
            );
        }
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            assert!(
                !matches!(decode(&Bytes::from(bad)), Frame::Record(..)),
                "flip at {i}"
            );
        }
    }

    #[test]
    fn file_names_sort_like_counters() {
        assert_eq!(file_name(42), "00000000000000000042.seg");
        assert_eq!(
            parse_file_name(Path::new("/x/00000000000000000042.seg")),
            Some(42)
        );
        assert_eq!(parse_file_name(Path::new("42.seg")), None);
        assert_eq!(parse_file_name(Path::new("00000000000000000042.tmp")), None);
        assert!(file_name(9) < file_name(10));
    }

    proptest! {
        #[test]
        fn any_record_round_trips(
            counter in any::<u64>(),
            arrival in any::<i64>(),
            key in "\\PC{0,64}",
            data in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let r = rec(counter, arrival, &key, &data);
            let mut out = Vec::new();
            encode(&r, &mut out);
            let n = out.len();
            prop_assert_eq!(decode(&Bytes::from(out)), Frame::Record(r, n));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&Bytes::from(bytes));
        }
    }
}
