//! The per-record future `put` returns, and what it resolves to.
//!
//! A handle and the record's completion share one slot. The records of one `put_all` chunk
//! share one allocation of slots, so resolving a record costs a lock of its slot and no
//! allocation of its own: a channel per record (allocated by the caller's thread, freed by
//! whichever thread let go last) was a tenth of the producer's CPU.

pub use crate::attempt::{Attempt, Attempts};
use crate::error::Error;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Where a user record was put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// The shard that stored it.
    pub shard_id: Arc<str>,
    /// The sequence number of the Kinesis record holding it.
    pub sequence_number: Arc<str>,
    /// Its position inside that Kinesis record (0 when not aggregated).
    pub sub_sequence_number: u64,
    /// Every attempt, the last one successful.
    pub attempts: Attempts,
}

impl PutResult {
    /// Whether an earlier failed attempt may have stored the record too (a duplicate).
    pub fn possible_duplicate(&self) -> bool {
        self.attempts.iter().any(|a| a.possibly_stored)
    }
}

/// What a handle resolves to.
pub type PutOutcome = Result<PutResult, Error>;

/// Where a record's outcome meets its handle.
#[derive(Debug)]
enum Slot {
    /// Not resolved; the waker of the task awaiting the handle, if it has been polled.
    Pending(Option<Waker>),
    /// Resolved, not yet taken by the handle. The error is boxed: failures are rare, and a
    /// chunk's slots are allocated and touched fresh for every chunk.
    Ready(Result<PutResult, Box<Error>>),
    /// The handle took the outcome, or was dropped.
    Closed,
}

/// The slots of records submitted together, behind one thin pointer: every record carries
/// one, and a slice's pointer would be twice its size. The first slot is inline, so a record
/// put alone costs one allocation.
#[derive(Debug)]
struct Chunk {
    first: Mutex<Slot>,
    rest: Box<[Mutex<Slot>]>,
}

impl Chunk {
    fn slot(&self, index: u32) -> &Mutex<Slot> {
        match index.checked_sub(1) {
            None => &self.first,
            Some(i) => &self.rest[i as usize],
        }
    }

    fn len(&self) -> usize {
        1 + self.rest.len()
    }
}

type Slots = Arc<Chunk>;

/// Resolves once the record is put or has failed; dropping it does not cancel the record.
#[derive(Debug)]
#[must_use = "a handle reports whether the record was put; drop it to ignore the outcome"]
pub struct PutHandle {
    slots: Slots,
    index: u32,
    /// The outcome was handed out: dropping needs no lock.
    taken: bool,
}

impl Future for PutHandle {
    type Output = PutOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PutOutcome> {
        if self.taken {
            // Polled again after it resolved: the outcome was handed out once.
            return Poll::Ready(Err(Error::ShutDown));
        }
        let this = &mut *self;
        let mut slot = this.slots.slot(this.index).lock();
        match std::mem::replace(&mut *slot, Slot::Closed) {
            Slot::Pending(waker) => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *slot = Slot::Pending(Some(waker));
                Poll::Pending
            }
            Slot::Ready(outcome) => {
                this.taken = true;
                Poll::Ready(outcome.map_err(|e| *e))
            }
            Slot::Closed => Poll::Ready(Err(Error::ShutDown)),
        }
    }
}

impl Drop for PutHandle {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        // An outcome nobody will take is freed now rather than with the last slot of its
        // chunk; a record still pending learns that its handle is gone.
        let old = std::mem::replace(&mut *self.slots.slot(self.index).lock(), Slot::Closed);
        drop(old);
    }
}

/// The sending side of a handle, carried by the record through the pipeline. The default is
/// one already sent (taken out of a record that is being dropped).
#[derive(Debug, Default)]
pub(crate) struct Completion {
    /// `None` once sent.
    slots: Option<Slots>,
    index: u32,
}

impl Completion {
    /// A connected completion and handle.
    pub(crate) fn channel() -> (Completion, PutHandle) {
        Completions::new(1).next_pair()
    }

    /// Resolves the handle; gives the outcome back if the handle was dropped.
    // Handed back by value, as `try_put` hands back its record: boxing would allocate.
    #[allow(clippy::result_large_err)]
    pub(crate) fn send(mut self, outcome: PutOutcome) -> Result<(), PutOutcome> {
        match self.slots.take() {
            Some(slots) => resolve(slots.slot(self.index), outcome),
            None => Err(outcome),
        }
    }
}

/// Puts `outcome` in `slot` and wakes its handle's task; gives it back if the handle is gone.
#[allow(clippy::result_large_err)]
fn resolve(slot: &Mutex<Slot>, outcome: PutOutcome) -> Result<(), PutOutcome> {
    let waker = {
        let mut slot = slot.lock();
        match &mut *slot {
            Slot::Pending(waker) => {
                let waker = waker.take();
                *slot = Slot::Ready(outcome.map_err(Box::new));
                waker
            }
            _ => return Err(outcome),
        }
    };
    if let Some(w) = waker {
        w.wake();
    }
    Ok(())
}

impl Drop for Completion {
    fn drop(&mut self) {
        // Dropped unsent: the pipeline resolves every record before it lets go of it, so the
        // runtime went away underneath it.
        if let Some(slots) = self.slots.take() {
            let _ = resolve(slots.slot(self.index), Err(Error::ShutDown));
        }
    }
}

/// Completions and handles for records submitted together, sharing one allocation.
pub(crate) struct Completions {
    slots: Slots,
    next: u32,
}

impl Completions {
    /// Room for `n` records, at least one (`put_all` asks for at most a block of 1,024 at a
    /// time, far below the `u32` index).
    pub(crate) fn new(n: usize) -> Self {
        Completions {
            slots: Arc::new(Chunk {
                first: Mutex::new(Slot::Pending(None)),
                rest: (1..n).map(|_| Mutex::new(Slot::Pending(None))).collect(),
            }),
            next: 0,
        }
    }

    /// Whether every slot has been handed out.
    pub(crate) fn is_full(&self) -> bool {
        self.next as usize >= self.slots.len()
    }

    /// The next record's completion and handle.
    ///
    /// # Panics
    /// When called more than `n` times.
    pub(crate) fn next_pair(&mut self) -> (Completion, PutHandle) {
        let index = self.next;
        assert!(
            (index as usize) < self.slots.len(),
            "more records than slots"
        );
        self.next += 1;
        (
            Completion {
                slots: Some(Arc::clone(&self.slots)),
                index,
            },
            PutHandle {
                slots: Arc::clone(&self.slots),
                index,
                taken: false,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(n: u64) -> PutResult {
        PutResult {
            shard_id: "shardId-000000000000".into(),
            sequence_number: "1".into(),
            sub_sequence_number: n,
            attempts: Vec::new().into(),
        }
    }

    #[test]
    fn a_slot_is_no_larger_than_a_result() {
        // One per record, allocated fresh with every chunk.
        assert!(std::mem::size_of::<Mutex<Slot>>() <= std::mem::size_of::<PutResult>() + 8);
    }

    #[tokio::test]
    async fn each_handle_of_a_chunk_gets_its_own_outcome_in_any_order() {
        let mut c = Completions::new(3);
        let pairs: Vec<_> = (0..3).map(|_| c.next_pair()).collect();
        let (completions, handles): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let mut handles: Vec<_> = handles.into_iter().map(Some).collect();
        // The middle one is awaited before it resolves.
        let waiter = tokio::spawn(handles[1].take().expect("handle"));
        tokio::task::yield_now().await;
        for (i, completion) in completions.into_iter().enumerate().rev() {
            completion.send(Ok(result(i as u64))).expect("handle alive");
        }
        assert_eq!(
            waiter
                .await
                .expect("task")
                .expect("put")
                .sub_sequence_number,
            1
        );
        for (i, h) in handles.into_iter().enumerate() {
            if let Some(h) = h {
                assert_eq!(h.await.expect("put").sub_sequence_number, i as u64);
            }
        }
    }

    #[tokio::test]
    async fn a_dropped_handle_gives_the_outcome_back_and_a_dropped_completion_shuts_down() {
        let mut c = Completions::new(2);
        let (first, handle) = c.next_pair();
        drop(handle);
        assert!(first.send(Ok(result(0))).is_err());
        let (second, handle) = c.next_pair();
        drop(second);
        assert!(matches!(handle.await, Err(Error::ShutDown)));
    }
}
