//! One test suite for every shard store: each test below runs against the
//! in-memory log and against the durable segment log (with tiny segments and a
//! dense index, so every test crosses segment and index boundaries). The
//! durable log is also checked against the memory log as a reference model,
//! and for what only it does: reopening, cutting a torn tail, deleting expired
//! segments, and keeping only a sparse index in memory.

use bytes::Bytes;
use kinesis_broker::store::commit::FsyncPolicy;
use kinesis_broker::store::durable::{DurableConfig, DurableLog, DurableStorage};
use kinesis_broker::store::{LogRecord, MemoryLog, ShardLog, Storage};
use proptest::prelude::*;
use tempfile::TempDir;

const SMALL_SEGMENT: u64 = 4096;
const SMALL_INTERVAL: u64 = 256;

fn rec(counter: u64, arrival_ms: i64, data: &[u8]) -> LogRecord {
    LogRecord {
        counter,
        arrival_ms,
        partition_key: format!("pk-{counter}").into(),
        data: Bytes::copy_from_slice(data),
    }
}

/// Readers are held back to what is fsynced only under `always`; the log's
/// contract is checked without that (it has a test of its own below).
fn unsynced() -> FsyncPolicy {
    FsyncPolicy::Interval(std::time::Duration::from_secs(3600))
}

fn storage(dir: &TempDir) -> DurableStorage {
    DurableStorage::open(
        DurableConfig::new(dir.path())
            .fsync(unsynced())
            .segment_bytes(SMALL_SEGMENT)
            .index_interval_bytes(SMALL_INTERVAL),
    )
    .unwrap()
}

/// A store under test; `_dir` keeps the durable log's files alive.
struct Harness {
    log: Box<dyn ShardLog>,
    _dir: Option<TempDir>,
}

fn memory() -> Harness {
    Harness {
        log: Box::new(MemoryLog::new()),
        _dir: None,
    }
}

fn durable() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let log = storage(&dir).create_durable_log("s", 1, 0).unwrap();
    Harness {
        log: Box::new(log),
        _dir: Some(dir),
    }
}

/// Everything readable from `from` with this retention floor, page by page.
fn read_all(log: &dyn ShardLog, from: u64, min_arrival: i64, page: usize) -> Vec<LogRecord> {
    let mut out: Vec<LogRecord> = Vec::new();
    let mut next = from;
    for _ in 0..100_000 {
        let b = log.read(next, min_arrival, page, usize::MAX).unwrap();
        let Some(last) = b.records.last() else {
            assert_eq!(b.next_arrival_ms, None);
            return out;
        };
        next = last.counter + 1;
        out.extend(b.records);
    }
    panic!("read did not finish");
}

fn counters(rs: &[LogRecord]) -> Vec<u64> {
    rs.iter().map(|r| r.counter).collect()
}

fn appends_and_reads_back_in_order(log: &mut dyn ShardLog) {
    assert!(log.is_empty());
    assert_eq!(log.last_counter(), None);
    let mut expected = Vec::new();
    let mut c = 10;
    for batch in 0..40i64 {
        let records: Vec<LogRecord> = (0..(batch as u64 % 7 + 1))
            .map(|i| {
                c += 1 + i % 3;
                rec(c, 1_000 + batch, format!("data-{c}").as_bytes())
            })
            .collect();
        expected.extend(records.clone());
        log.append(records).unwrap();
    }
    assert_eq!(log.len(), expected.len());
    assert_eq!(log.last_counter(), expected.last().map(|r| r.counter));
    assert_eq!(log.last_arrival_ms(), Some(1_039));
    for page in [1, 3, 1000] {
        assert_eq!(read_all(log, 0, i64::MIN, page), expected, "page {page}");
    }
    // From the middle, from a counter between two records, and past the end.
    let mid = expected[17].counter;
    assert_eq!(read_all(log, mid, i64::MIN, 5), expected[17..]);
    assert_eq!(read_all(log, mid + 1, i64::MIN, 5), expected[18..]);
    assert!(read_all(log, c + 1, i64::MIN, 5).is_empty());
}

fn honours_record_and_byte_limits(log: &mut dyn ShardLog) {
    let records: Vec<LogRecord> = (1..=20)
        .map(|c| rec(c, 100 + c as i64, b"0123456789"))
        .collect();
    // Each record bills 10 bytes of data plus its key.
    let billed = records[0].billed_size();
    log.append(records).unwrap();
    let b = log.read(0, i64::MIN, 4, usize::MAX).unwrap();
    assert_eq!(counters(&b.records), vec![1, 2, 3, 4]);
    assert_eq!(b.next_arrival_ms, Some(105));
    let b = log.read(0, i64::MIN, 100, billed * 3).unwrap();
    assert_eq!(counters(&b.records), vec![1, 2, 3]);
    // At least one record, however small the byte budget.
    let b = log.read(7, i64::MIN, 100, 1).unwrap();
    assert_eq!(counters(&b.records), vec![7]);
    assert_eq!(b.next_arrival_ms, Some(108));
    let b = log.read(20, i64::MIN, 100, usize::MAX).unwrap();
    assert_eq!(counters(&b.records), vec![20]);
    assert_eq!(b.next_arrival_ms, None);
}

fn retention_hides_then_trims(log: &mut dyn ShardLog) {
    let records: Vec<LogRecord> = (1..=300)
        .map(|c| rec(c, c as i64 * 10, &[c as u8; 40]))
        .collect();
    log.append(records.clone()).unwrap();
    // Records before the floor are hidden from reads starting before them...
    assert_eq!(read_all(log, 0, 1_505, 7), records[150..]);
    // ...and a read starting past the floor is unaffected.
    assert_eq!(read_all(log, 200, 1_505, 7), records[199..]);
    assert_eq!(log.first_at_or_after(0, 1_505).unwrap(), Some(151));
    log.trim(1_505);
    // A store may keep some expired records (whole segments go), never fewer than the live ones.
    assert!(log.len() >= 150 && log.len() <= 300, "{}", log.len());
    assert_eq!(read_all(log, 0, 1_505, 7), records[150..]);
    assert_eq!(log.last_counter(), Some(300));
    log.trim(i64::MAX);
    assert!(read_all(log, 0, i64::MAX, 7).is_empty());
    // Writing goes on after everything expired.
    log.append(vec![rec(301, 5_000, b"late")]).unwrap();
    assert_eq!(counters(&read_all(log, 0, 4_000, 7)), vec![301]);
}

fn at_timestamp_finds_the_first_arrival(log: &mut dyn ShardLog) {
    // Arrivals rise in steps, and step back once (the clock may).
    let arrivals: Vec<i64> = (0..200)
        .map(|i| {
            if (120..125).contains(&i) {
                500
            } else {
                1_000 + (i / 4) * 10
            }
        })
        .collect();
    let records: Vec<LogRecord> = arrivals
        .iter()
        .enumerate()
        .map(|(i, &a)| rec(i as u64 + 1, a, &[7; 30]))
        .collect();
    for chunk in records.chunks(9) {
        log.append(chunk.to_vec()).unwrap();
    }
    for ts in [
        0, 499, 500, 501, 1_000, 1_005, 1_010, 1_295, 1_300, 1_490, 1_491, 9_999,
    ] {
        for min in [i64::MIN, 1_200] {
            let floor = ts.max(min);
            let want = records
                .iter()
                .find(|r| r.arrival_ms >= floor)
                .map(|r| r.counter);
            assert_eq!(
                log.first_at_or_after(ts, min).unwrap(),
                want,
                "ts {ts} min {min}"
            );
        }
    }
}

fn carries_large_records(log: &mut dyn ShardLog) {
    let big = vec![0xAB; 1024 * 1024];
    let records = vec![
        rec(1, 1, b"small"),
        rec(2, 1, &big),
        rec(3, 1, b""),
        rec(4, 1, &big[..300_000]),
    ];
    log.append(records.clone()).unwrap();
    assert_eq!(read_all(log, 0, i64::MIN, 10), records);
    let b = log.read(0, i64::MIN, 10, 1000).unwrap();
    assert_eq!(counters(&b.records), vec![1]);
    let b = log.read(2, i64::MIN, 10, 10).unwrap();
    assert_eq!(counters(&b.records), vec![2]);
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory_store {
            $( #[test] fn $test() { let mut h = super::memory(); super::$test(h.log.as_mut()); } )*
        }
        mod durable_store {
            $( #[test] fn $test() { let mut h = super::durable(); super::$test(h.log.as_mut()); } )*
        }
    };
}

suite!(
    appends_and_reads_back_in_order,
    honours_record_and_byte_limits,
    retention_hides_then_trims,
    at_timestamp_finds_the_first_arrival,
    carries_large_records,
);

// ---- The durable log against the memory log as a model ----

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, usize)>),
    Read {
        from: u64,
        min: i64,
        max: usize,
        bytes: usize,
    },
    At {
        ts: i64,
        min: i64,
    },
    Trim(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec((1u8..4, 0usize..700), 1..12).prop_map(Op::Append),
        3 => (0u64..200, 0i64..400, 1usize..50, 1usize..5000)
            .prop_map(|(from, min, max, bytes)| Op::Read { from, min, max, bytes }),
        1 => (0i64..400, 0i64..400).prop_map(|(ts, min)| Op::At { ts, min }),
        1 => (0i64..400).prop_map(Op::Trim),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn durable_log_matches_the_memory_log(ops in proptest::collection::vec(op(), 1..40)) {
        let mut model = MemoryLog::new();
        let mut h = durable();
        let mut counter = 0u64;
        let mut arrival = 0i64;
        let mut trimmed = i64::MIN;
        for op in ops {
            match op {
                Op::Append(items) => {
                    let batch: Vec<LogRecord> = items.iter().map(|&(step, len)| {
                        counter += u64::from(step);
                        arrival += i64::from(step) * 3;
                        rec(counter, arrival, &vec![step; len])
                    }).collect();
                    model.append(batch.clone()).unwrap();
                    h.log.append(batch).unwrap();
                }
                Op::Read { from, min, max, bytes } => {
                    // The durable log may keep expired records longer: read above the trim floor.
                    let min = min.max(trimmed);
                    let a = model.read(from, min, max, bytes).unwrap();
                    let b = h.log.read(from, min, max, bytes).unwrap();
                    prop_assert_eq!(&a.records, &b.records);
                    prop_assert_eq!(a.next_arrival_ms, b.next_arrival_ms);
                }
                Op::At { ts, min } => {
                    let min = min.max(trimmed);
                    prop_assert_eq!(model.first_at_or_after(ts, min).unwrap(), h.log.first_at_or_after(ts, min).unwrap());
                }
                Op::Trim(t) => {
                    trimmed = trimmed.max(t);
                    model.trim(trimmed);
                    h.log.trim(trimmed);
                }
            }
        }
    }
}

// ---- What only the durable store does ----

fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let shard = dir.join("streams").join("s.1").join("shardId-000000000000");
    let mut files: Vec<_> = std::fs::read_dir(shard)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

fn reopen(dir: &TempDir) -> (DurableLog, Vec<kinesis_broker::store::durable::Damage>) {
    storage(dir).open_log("s", 1, 0).unwrap()
}

#[test]
fn reopening_finds_every_record_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<LogRecord> = (1..=500)
        .map(|c| rec(c, c as i64, &[c as u8; 50]))
        .collect();
    {
        let mut log = storage(&dir).create_durable_log("s", 1, 0).unwrap();
        for chunk in records.chunks(33) {
            log.append(chunk.to_vec()).unwrap();
        }
        assert!(log.segment_count() > 5);
    }
    let (mut log, damage) = reopen(&dir);
    assert!(damage.is_empty(), "{damage:?}");
    assert_eq!(log.len(), 500);
    assert_eq!(log.last_counter(), Some(500));
    assert_eq!(log.durable_end(), 501);
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records);
    assert_eq!(log.first_at_or_after(250, i64::MIN).unwrap(), Some(250));
    log.append(vec![rec(501, 501, b"after")]).unwrap();
    drop(log);
    let (log, _) = reopen(&dir);
    assert_eq!(log.last_counter(), Some(501));
    assert_eq!(read_all(&log, 500, i64::MIN, 64).len(), 2);
}

#[test]
fn a_torn_or_corrupt_last_record_is_dropped_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<LogRecord> = (1..=40).map(|c| rec(c, c as i64, &[c as u8; 30])).collect();
    {
        let mut log = storage(&dir).create_durable_log("s", 1, 0).unwrap();
        log.append(records.clone()).unwrap();
    }
    let last_len = kinesis_broker::store::segment::encoded_len(&records[39]) as u64;
    // Cut the last record at every possible point.
    for cut in 1..last_len {
        let path = segment_files(dir.path()).pop().unwrap();
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() - cut as usize]).unwrap();
        let (mut log, damage) = reopen(&dir);
        assert_eq!(damage.len(), 1, "cut {cut}");
        assert_eq!(damage[0].dropped, last_len - cut);
        assert_eq!(read_all(&log, 0, i64::MIN, 100), records[..39], "cut {cut}");
        // Put it back for the next cut.
        log.append(vec![records[39].clone()]).unwrap();
        drop(log);
        assert!(reopen(&dir).1.is_empty());
    }
    // Flip one byte of the last record's data.
    let path = segment_files(dir.path()).pop().unwrap();
    let mut whole = std::fs::read(&path).unwrap();
    let n = whole.len();
    whole[n - 3] ^= 0xFF;
    std::fs::write(&path, &whole).unwrap();
    let (log, damage) = reopen(&dir);
    assert_eq!(damage.len(), 1);
    assert_eq!(damage[0].reason, "checksum mismatch");
    assert_eq!(read_all(&log, 0, i64::MIN, 100), records[..39]);
    // Garbage appended after a clean end is cut off too.
    drop(log);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0xFF; 5]).unwrap();
    drop(f);
    let (log, damage) = reopen(&dir);
    assert_eq!(damage.len(), 1);
    assert_eq!(log.len(), 39);
}

#[test]
fn retention_deletes_whole_expired_segments_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = storage(&dir).create_durable_log("s", 1, 0).unwrap();
    let records: Vec<LogRecord> = (1..=400).map(|c| rec(c, c as i64, &[1; 100])).collect();
    for chunk in records.chunks(10) {
        log.append(chunk.to_vec()).unwrap();
    }
    let before = segment_files(dir.path());
    assert_eq!(before.len(), log.segment_count());
    assert!(before.len() > 10);
    log.trim(200);
    let after = segment_files(dir.path());
    assert!(after.len() < before.len() && after.len() > 1);
    // Exactly the segments whose newest record expired are gone.
    assert_eq!(
        log.first_at_or_after(0, i64::MIN)
            .unwrap()
            .map(|c| c <= 200),
        Some(true)
    );
    assert_eq!(read_all(&log, 0, 200, 50), records[199..]);
    log.trim(10_000);
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(log.last_counter(), Some(400));
    drop(log);
    // The counter survives on disk through the kept active segment.
    let (log, _) = reopen(&dir);
    assert_eq!(log.last_counter(), Some(400));
}

#[test]
fn memory_is_a_sparse_index_not_the_records() {
    // 64 KiB segments with an index entry per 4 KiB: reading a shard from
    // TRIM_HORIZON walks the files; memory holds ~1 entry per 4 KiB of records.
    let dir = tempfile::tempdir().unwrap();
    let storage = DurableStorage::open(
        DurableConfig::new(dir.path())
            .fsync(unsynced())
            .segment_bytes(64 * 1024)
            .index_interval_bytes(4096),
    )
    .unwrap();
    let mut log = storage.create_durable_log("s", 1, 0).unwrap();
    let n = 40_000u64;
    let mut c = 0;
    while c < n {
        let batch: Vec<LogRecord> = (0..500)
            .map(|_| {
                c += 1;
                rec(c, c as i64, &c.to_le_bytes().repeat(12))
            })
            .collect();
        log.append(batch).unwrap();
    }
    let disk = log.disk_bytes();
    let entries = log.index_entries() as u64;
    assert!(disk > 4 * 1024 * 1024, "{disk}");
    assert!(
        entries <= disk / 4096 + log.segment_count() as u64,
        "{entries} entries"
    );
    assert!(entries * 25 < n, "{entries} entries for {n} records");
    // TRIM_HORIZON to the end, 10 000 records per call as GetRecords allows.
    let mut next = 0;
    let mut seen = 0u64;
    loop {
        let b = log.read(next, i64::MIN, 10_000, 10 * 1024 * 1024).unwrap();
        let Some(last) = b.records.last() else { break };
        for r in &b.records {
            seen += 1;
            assert_eq!(r.counter, seen);
            assert_eq!(&r.data[..8], &seen.to_le_bytes());
        }
        next = last.counter + 1;
    }
    assert_eq!(seen, n);
}

#[test]
fn under_fsync_always_reads_stop_at_the_durable_end() {
    let dir = tempfile::tempdir().unwrap();
    let storage = DurableStorage::open(
        DurableConfig::new(dir.path())
            .segment_bytes(SMALL_SEGMENT)
            .index_interval_bytes(SMALL_INTERVAL),
    )
    .unwrap();
    let mut log = storage.create_durable_log("s", 1, 0).unwrap();
    let records: Vec<LogRecord> = (1..=300).map(|c| rec(c, c as i64, &[7; 40])).collect();
    log.append(records[..200].to_vec()).unwrap();
    // Segments closed by rolls were synced; the active one's records were not.
    let durable = log.durable_end();
    assert!(durable > 1 && durable < 201, "{durable}");
    let b = log.read(0, i64::MIN, 1000, usize::MAX).unwrap();
    assert_eq!(b.records.len() as u64, durable - 1);
    assert!(
        b.next_arrival_ms.is_some(),
        "held-back records are still ahead"
    );
    storage.flush().unwrap();
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records[..200]);
    log.append(records[200..].to_vec()).unwrap();
    let b = log.read(0, i64::MIN, 1000, usize::MAX).unwrap();
    assert!(b.records.len() >= 200 && b.records.len() < 300);
    assert!(b.next_arrival_ms.is_some());
    storage.flush().unwrap();
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records);
}

// ---- Sealed segments open from their index files ----

fn index_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    segment_files(dir)
        .iter()
        .map(|p| p.with_extension("idx"))
        .filter(|p| p.exists())
        .collect()
}

/// 500 records over many sealed segments and one active one; the log is closed.
fn many_segments(dir: &TempDir) -> Vec<LogRecord> {
    let records: Vec<LogRecord> = (1..=500)
        .map(|c| rec(c, 1_000 + (c as i64 % 97), &[c as u8; 50]))
        .collect();
    let mut log = storage(dir).create_durable_log("s", 1, 0).unwrap();
    for chunk in records.chunks(33) {
        log.append(chunk.to_vec()).unwrap();
    }
    assert!(log.segment_count() > 5);
    records
}

#[test]
fn sealed_segments_open_from_their_index_files_and_read_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(&dir);
    let segments = segment_files(dir.path());
    // Every segment but the active one was given an index file when it was sealed.
    assert_eq!(index_files(dir.path()).len(), segments.len() - 1);
    let (mut log, damage) = reopen(&dir);
    assert!(damage.is_empty(), "{damage:?}");
    assert_eq!(log.scanned_segments(), 1, "only the newest segment is read");
    assert_eq!(log.segment_count(), segments.len());
    assert_eq!(log.len(), 500);
    assert_eq!(log.durable_end(), 501);
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records);
    assert_eq!(read_all(&log, 321, i64::MIN, 7), records[320..]);
    // Arrivals step back and forth; the stored run maxima still find the first match.
    let want = records.iter().find(|r| r.arrival_ms >= 1_090).unwrap();
    assert_eq!(
        log.first_at_or_after(1_090, i64::MIN).unwrap(),
        Some(want.counter)
    );
    log.append(vec![rec(501, 5_000, b"after")]).unwrap();
    drop(log);
    let (log, _) = reopen(&dir);
    assert_eq!(log.last_counter(), Some(501));
    assert_eq!(read_all(&log, 0, i64::MIN, 64).len(), 501);
}

#[test]
fn a_torn_tail_of_the_newest_segment_is_cut_behind_indexed_sealed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(&dir);
    let newest = segment_files(dir.path()).pop().unwrap();
    let whole = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &whole[..whole.len() - 3]).unwrap();
    let (log, damage) = reopen(&dir);
    assert_eq!(damage.len(), 1, "{damage:?}");
    assert_eq!(damage[0].path, newest);
    assert_eq!(damage[0].reason, "record cut short");
    assert_eq!(damage[0].quarantined, None);
    assert_eq!(log.scanned_segments(), 1);
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records[..499]);
}

#[test]
fn a_damaged_index_file_falls_back_to_a_scan_and_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(&dir);
    let indexes = index_files(dir.path());
    let mut bytes = std::fs::read(&indexes[2]).unwrap();
    bytes[20] ^= 0x01;
    std::fs::write(&indexes[2], &bytes).unwrap();
    // And one cut short, as if the disk lost its end.
    let bytes = std::fs::read(&indexes[4]).unwrap();
    std::fs::write(&indexes[4], &bytes[..bytes.len() / 2]).unwrap();
    let (log, damage) = reopen(&dir);
    assert!(damage.is_empty(), "{damage:?}");
    assert_eq!(
        log.scanned_segments(),
        3,
        "the newest and the two without a good index"
    );
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records);
    drop(log);
    let (log, _) = reopen(&dir);
    assert_eq!(
        log.scanned_segments(),
        1,
        "the scans wrote fresh index files"
    );
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records);
}

#[test]
fn a_data_dir_from_before_index_files_opens_and_gains_them() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(&dir);
    let segments = segment_files(dir.path()).len();
    for idx in index_files(dir.path()) {
        std::fs::remove_file(idx).unwrap();
    }
    let (log, damage) = reopen(&dir);
    assert!(damage.is_empty(), "{damage:?}");
    assert_eq!(log.scanned_segments(), segments);
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records);
    drop(log);
    assert_eq!(index_files(dir.path()).len(), segments - 1);
    let (log, _) = reopen(&dir);
    assert_eq!(log.scanned_segments(), 1);
    assert_eq!(read_all(&log, 0, i64::MIN, 64), records);
}

#[test]
fn damage_in_an_indexed_sealed_segment_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(&dir);
    let sealed = segment_files(dir.path())[1].clone();
    let first: u64 = sealed
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Flip a byte of the segment's first record: the index file still checks
    // out (length, last records), so start-up does not see it...
    let mut bytes = std::fs::read(&sealed).unwrap();
    bytes[30] ^= 0x20;
    std::fs::write(&sealed, &bytes).unwrap();
    let (log, damage) = reopen(&dir);
    assert!(damage.is_empty(), "{damage:?}");
    assert_eq!(log.scanned_segments(), 1);
    // ...but every read checks each record's CRC: records before it are served,
    // and the read reaching it fails instead of handing out a bad record (one
    // record per read, so the served prefix is exact).
    let mut served = Vec::new();
    let mut next = 0;
    let err = loop {
        match log.read(next, i64::MIN, 1, usize::MAX) {
            Ok(b) => {
                let last = b
                    .records
                    .last()
                    .expect("the damage stops reads first")
                    .counter;
                served.extend(b.records);
                next = last + 1;
            }
            Err(e) => break e,
        }
    };
    // (A read also decodes the record after its last one, to say what comes
    // next, so the intact record just before the damage may be held back too.)
    assert_eq!(served, records[..served.len()]);
    assert!(
        served.len() + 2 >= first as usize,
        "{} served",
        served.len()
    );
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    // Past that segment, reads go on.
    let after = segment_files(dir.path())[2].clone();
    let next: u64 = after
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        read_all(&log, next, i64::MIN, 64),
        records[next as usize - 1..]
    );
}

#[test]
fn a_sealed_segment_that_grew_or_shrank_is_scanned_and_its_damage_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _records = many_segments(&dir);
    let sealed = segment_files(dir.path())[1].clone();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&sealed)
        .unwrap();
    std::io::Write::write_all(&mut f, &[0xAB; 9]).unwrap();
    drop(f);
    // The index no longer matches the file, so it is scanned, and the bytes
    // that do not belong are damage in a sealed segment: refused by default.
    let err = storage(&dir).open_log("s", 1, 0).unwrap_err();
    assert!(err.to_string().contains("--recover-corrupt"), "{err}");
    // Damage in the last indexed run is caught the same way.
    let whole = std::fs::read(&sealed).unwrap();
    std::fs::write(&sealed, &whole[..whole.len() - 9]).unwrap();
    assert!(reopen(&dir).1.is_empty());
    let mut bytes = std::fs::read(&sealed).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x04;
    std::fs::write(&sealed, &bytes).unwrap();
    let err = storage(&dir).open_log("s", 1, 0).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}
