//! Status changes that wait out a delay (a stream CREATING or UPDATING becomes
//! ACTIVE, a DELETING stream goes, a consumer becomes ACTIVE or goes, an
//! accepted reshard is carried out), kept as deadlines that the broker's
//! background tick applies once they pass, rather than one sleeping task each.

use crate::stream::{ConsumerStatus, Stream, StreamStatus};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the background tick looks for deadlines that passed: short next
/// to the state delays (100 ms by default, 50 ms in tests).
pub const TICK: Duration = Duration::from_millis(5);

/// What happens when a deadline passes.
pub enum Due {
    /// The stream moves to `then`, unless its status changed since `epoch`.
    Status {
        /// The stream.
        stream: Arc<Stream>,
        /// Its status epoch when the change was scheduled.
        epoch: u64,
        /// The status it moves to.
        then: StreamStatus,
    },
    /// The DELETING stream is removed, if it is still the one by its name.
    Remove {
        /// The stream.
        stream: Arc<Stream>,
    },
    /// The consumer `name` with ARN `arn` moves to `to`, or goes with `None`.
    Consumer {
        /// The consumer's stream.
        stream: Arc<Stream>,
        /// The consumer's name.
        name: String,
        /// The consumer's ARN: a consumer re-registered meanwhile is left alone.
        arn: String,
        /// The status it moves to; `None` removes it.
        to: Option<ConsumerStatus>,
    },
    /// The stream's saved pending reshard is carried out, unless its status
    /// changed since `epoch`.
    Reshard {
        /// The stream.
        stream: Arc<Stream>,
        /// Its status epoch when the reshard was accepted.
        epoch: u64,
    },
}

/// Deadlines by when they pass, then by order of scheduling, with the next
/// scheduling number.
type Queue = (BTreeMap<(Instant, u64), Due>, u64);

/// Deadlines not yet passed, in the order they pass.
#[derive(Default)]
pub struct Deadlines {
    /// By deadline, then by order of scheduling (which keeps deadlines at the
    /// same instant apart), with the next scheduling number.
    queue: Mutex<Queue>,
}

impl Deadlines {
    /// No deadlines.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply `due` once `delay` from now has passed.
    pub fn schedule(&self, delay: Duration, due: Due) {
        let mut queue = self.queue.lock();
        let (map, next) = &mut *queue;
        *next += 1;
        map.insert((Instant::now() + delay, *next), due);
    }

    /// Whether some deadline has passed by `now`.
    pub fn any_due(&self, now: Instant) -> bool {
        self.queue
            .lock()
            .0
            .first_key_value()
            .is_some_and(|((at, _), _)| *at <= now)
    }

    /// Take every deadline passed by `now`, earliest first.
    pub fn take_due(&self, now: Instant) -> Vec<Due> {
        let mut queue = self.queue.lock();
        let mut due = Vec::new();
        while let Some(entry) = queue.0.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        due
    }
}
