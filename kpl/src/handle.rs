//! The per-record future `put` returns, and what it resolves to.

pub use crate::attempt::Attempt;
use crate::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

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
    pub attempts: Vec<Attempt>,
}

impl PutResult {
    /// Whether an earlier failed attempt may have stored the record too (a duplicate).
    pub fn possible_duplicate(&self) -> bool {
        self.attempts.iter().any(|a| a.possibly_stored)
    }
}

/// What a handle resolves to.
pub type PutOutcome = Result<PutResult, Error>;

/// Resolves once the record is put or has failed; dropping it does not cancel the record.
#[derive(Debug)]
#[must_use = "a handle reports whether the record was put; drop it to ignore the outcome"]
pub struct PutHandle {
    rx: oneshot::Receiver<PutOutcome>,
}

impl Future for PutHandle {
    type Output = PutOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PutOutcome> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            // The pipeline resolves every record before it lets go of it; a closed channel
            // means the runtime went away underneath it.
            r.unwrap_or(Err(Error::ShutDown))
        })
    }
}

/// The sending side of a handle, carried by the record through the pipeline.
#[derive(Debug)]
pub(crate) struct Completion(oneshot::Sender<PutOutcome>);

impl Completion {
    /// A connected completion and handle.
    pub(crate) fn channel() -> (Completion, PutHandle) {
        let (tx, rx) = oneshot::channel();
        (Completion(tx), PutHandle { rx })
    }

    /// Resolves the handle; gives the outcome back if the handle was dropped.
    pub(crate) fn send(self, outcome: PutOutcome) -> Result<(), PutOutcome> {
        self.0.send(outcome)
    }
}
