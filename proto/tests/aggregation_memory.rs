//! One hostile aggregate must not cost memory in proportion to what it *expands* to:
//! a 1 MiB aggregate holding one 500 KB partition key and ~80,000 empty user
//! records that all point at it would be 40 GB if each user record got its own
//! copy of the key. The allocator of this test binary counts live bytes (and
//! refuses to go past a cap, so a regression fails instead of exhausting the machine).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use kinesis_proto::aggregation::{FIXED_OVERHEAD, MAGIC, deaggregate, try_deaggregate};
use md5::{Digest, Md5};

/// Live bytes above which allocations fail: far above what decoding needs, far
/// below what per-record key copies would take.
const CAP: usize = 512 << 20;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        if live > CAP {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The aggregate of the finding: one 500 KB key, then as many empty records
/// pointing at it as fit in 1 MiB. Written byte by byte: building it with the
/// `Aggregator` would compare the 500 KB key once per record.
fn hostile_aggregate() -> (Bytes, usize) {
    const KEY_LEN: usize = 500_000;
    // A `Record` message: partition_key_index = 0, data = empty.
    const RECORD: [u8; 6] = [0x1a, 0x04, 0x08, 0x00, 0x1a, 0x00];
    let mut message = vec![0x0a];
    let mut n = KEY_LEN;
    while n >= 0x80 {
        message.push(n as u8 | 0x80);
        n >>= 7;
    }
    message.push(n as u8);
    message.extend(std::iter::repeat_n(b'k', KEY_LEN));
    let count = ((1 << 20) - FIXED_OVERHEAD - message.len()) / RECORD.len();
    for _ in 0..count {
        message.extend_from_slice(&RECORD);
    }
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(&message);
    data.extend_from_slice(&Md5::digest(&message));
    (Bytes::from(data), count)
}

#[test]
fn a_500_kb_key_shared_by_80000_records_is_decoded_in_bounded_memory() {
    let (data, count) = hostile_aggregate();
    assert!(data.len() <= 1 << 20);
    assert!(count >= 80_000, "{count} records");
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);

    let records = try_deaggregate(&data).expect("a well-formed aggregate");
    assert_eq!(records.len(), count);
    assert!(records.iter().all(|r| r.partition_key.len() == 500_000));
    let held = LIVE.load(Ordering::Relaxed) - before;
    drop(records);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    eprintln!(
        "{count} records from a {} B aggregate: {held} B held, {peak} B peak",
        data.len()
    );
    // Per-record copies of the key would need count * 500 KB = 40 GB. Shared, the
    // key costs its 500 KB once and each record a small fixed size.
    let bound = 2 * data.len() + count * 256;
    assert!(
        held <= bound,
        "{held} B held for the records (bound {bound} B)"
    );
    assert!(peak <= bound, "{peak} B at the peak (bound {bound} B)");

    // The pass-through entry point shares keys the same way.
    let before = LIVE.load(Ordering::Relaxed);
    let records = deaggregate("outer", None, data.clone());
    let held = LIVE.load(Ordering::Relaxed) - before;
    assert_eq!(records.len(), count);
    assert!(
        held <= bound,
        "{held} B held by deaggregate (bound {bound} B)"
    );
}
