//! A stream's sequence counter: hands out increasing counters and, on a
//! durable store, never one that a restart could hand out again.
//!
//! Records can be read before they are fsynced (`--fsync interval`), and a
//! crash of the machine can then take them back; if their counters were
//! handed out again, a consumer that checkpointed one would skip the new
//! record. So counters are reserved ahead: before a counter at or above the
//! saved ceiling is used, a higher ceiling is saved, and a restart continues
//! above the last saved one.

use crate::store::{Storage, StoreError};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters reserved per saved ceiling: a save every million counters, and a
/// restart skips at most this many.
pub const RESERVE: u64 = 1 << 20;

/// Saves a new ceiling durably (blocking: a small file and its fsyncs).
pub type CeilingKeeper = Box<dyn Fn(u64) -> Result<(), StoreError> + Send + Sync>;

/// The source of every sequence number of a stream.
pub struct StreamCounter {
    next: AtomicU64,
    /// Counters below this are covered by a saved ceiling.
    ceiling: AtomicU64,
    keeper: Option<CeilingKeeper>,
    extending: Mutex<()>,
}

impl std::fmt::Debug for StreamCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamCounter")
            .field("next", &self.peek())
            .field("ceiling", &self.ceiling.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl StreamCounter {
    /// A counter starting at `next` that survives nothing (the in-memory store).
    pub fn in_memory(next: u64) -> Self {
        StreamCounter {
            next: AtomicU64::new(next),
            ceiling: AtomicU64::new(u64::MAX),
            keeper: None,
            extending: Mutex::new(()),
        }
    }

    /// A counter starting at `next` (at least the saved `ceiling`), saving
    /// each new ceiling with `keeper` before using counters below it.
    pub fn durable(next: u64, ceiling: u64, keeper: CeilingKeeper) -> Self {
        StreamCounter {
            next: AtomicU64::new(next.max(ceiling)),
            // Nothing above the restart point is reserved yet.
            ceiling: AtomicU64::new(next.max(ceiling)),
            keeper: Some(keeper),
            extending: Mutex::new(()),
        }
    }

    /// The counter of stream `name` (created at `created_ms`) on `storage`:
    /// durable, saving its ceilings there, when the store persists streams.
    pub fn on_storage(
        storage: &Arc<dyn Storage>,
        name: &str,
        created_ms: i64,
        next: u64,
        ceiling: u64,
    ) -> Self {
        if !storage.persists() {
            return Self::in_memory(next);
        }
        let storage = Arc::clone(storage);
        let name = name.to_string();
        Self::durable(
            next,
            ceiling,
            Box::new(move |c| storage.save_counter_ceiling(&name, created_ms, c)),
        )
    }

    /// The next counter to be handed out.
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Take `n` consecutive counters; the first is returned. Fails only when a
    /// new ceiling cannot be saved (the counters taken are then skipped).
    pub fn take(&self, n: u64) -> Result<u64, StoreError> {
        let first = self.next.fetch_add(n, Ordering::SeqCst);
        let end = first.saturating_add(n);
        if end <= self.ceiling.load(Ordering::Acquire) {
            return Ok(first);
        }
        let Some(keeper) = &self.keeper else {
            return Ok(first);
        };
        let _one_at_a_time = self.extending.lock();
        if end > self.ceiling.load(Ordering::Acquire) {
            let ceiling = end.saturating_add(RESERVE);
            keeper(ceiling)?;
            self.ceiling.store(ceiling, Ordering::Release);
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ceiling_is_saved_before_a_counter_above_the_last_one_is_used() {
        let saved = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&saved);
        let c = StreamCounter::durable(
            5,
            3,
            Box::new(move |ceiling| {
                log.lock().push(ceiling);
                Ok(())
            }),
        );
        assert_eq!(c.take(2).unwrap(), 5);
        assert_eq!(*saved.lock(), vec![7 + RESERVE]);
        assert_eq!(c.take(RESERVE).unwrap(), 7);
        assert_eq!(saved.lock().len(), 1);
        c.take(1).unwrap();
        assert_eq!(saved.lock().len(), 2);
        // A restart resumes at the saved ceiling, whatever the records say.
        let c = StreamCounter::durable(2, 100, Box::new(|_| Ok(())));
        assert_eq!(c.peek(), 100);
        let failing =
            StreamCounter::durable(0, 0, Box::new(|_| Err(StoreError::Io("full".into()))));
        assert!(failing.take(1).is_err());
        assert_eq!(StreamCounter::in_memory(9).take(3).unwrap(), 9);
    }
}
