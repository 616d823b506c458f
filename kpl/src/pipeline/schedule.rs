//! When each part of the pipeline runs next: every shard buffer, collector, retry queue and
//! map refresh is a [`Target`] with its own timer and dirty flag, so that a poll touches only
//! what changed or is due.

use std::time::Instant;

/// Something with its own schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Target {
    /// A shard buffer: `slot` indexes the stream's shards, [`UNROUTED`] is the no-map buffer;
    /// `generation` ties it to one map.
    Shard {
        stream: u32,
        slot: u32,
        generation: u32,
    },
    Collector(u32),
    Retry(u32),
    Refresh(u32),
}

/// The slot of the buffer for records no map routes.
pub(super) const UNROUTED: u32 = u32::MAX;

/// One target's timer and dirty flag; the heap may hold stale entries, which are skipped.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    at: Option<Instant>,
    pub(super) dirty: bool,
}

impl Schedule {
    /// Whether a heap entry for `t` must be pushed (nothing earlier is scheduled).
    pub(super) fn want(&mut self, t: Instant) -> bool {
        if self.at.is_some_and(|at| at <= t) {
            return false;
        }
        self.at = Some(t);
        true
    }

    /// Whether the heap entry for `t` is the live one; if so it is consumed.
    pub(super) fn fire(&mut self, t: Instant) -> bool {
        if self.at == Some(t) {
            self.at = None;
            true
        } else {
            false
        }
    }
}
