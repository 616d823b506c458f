//! Outstanding user records per flush epoch: `flush()` waits until every record accepted
//! before it has resolved, without waiting for records put after it (which could keep a busy
//! producer from ever reaching zero).

use parking_lot::Mutex;
use std::collections::VecDeque;
use tokio::sync::Notify;

/// Counts of unresolved records per epoch, and a wake-up for waiters.
#[derive(Debug, Default)]
pub(crate) struct Outstanding {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// The epoch `counts[0]` belongs to; every earlier epoch is fully resolved.
    first: u64,
    counts: VecDeque<i64>,
}

impl State {
    fn slot(&mut self, epoch: u64) -> Option<&mut i64> {
        let i = usize::try_from(epoch.checked_sub(self.first)?).ok()?;
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts.get_mut(i)
    }

    fn done_through(&self, epoch: u64) -> bool {
        let Some(n) = epoch.checked_sub(self.first) else {
            return true;
        };
        let n = n.saturating_add(1);
        self.counts
            .iter()
            .take(usize::try_from(n).unwrap_or(usize::MAX))
            .all(|&c| c <= 0)
    }
}

impl Outstanding {
    /// `n` more records belong to `epoch`.
    pub(crate) fn add(&self, epoch: u64, n: u64) {
        if n == 0 {
            return;
        }
        let mut s = self.state.lock();
        if let Some(c) = s.slot(epoch) {
            *c += n as i64;
        }
    }

    /// `n` records of `epoch` resolved.
    pub(crate) fn resolved(&self, epoch: u64, n: u64) {
        let mut s = self.state.lock();
        let Some(c) = s.slot(epoch) else {
            return;
        };
        *c -= n as i64;
        if *c <= 0 {
            drop(s);
            self.notify.notify_waiters();
        }
    }

    /// Forgets fully resolved epochs before `current` (they can gain no records).
    pub(crate) fn compact(&self, current: u64) {
        let mut s = self.state.lock();
        while s.first < current && s.counts.front().is_some_and(|&c| c <= 0) {
            s.counts.pop_front();
            s.first += 1;
        }
        if s.counts.is_empty() && s.first < current {
            s.first = current;
        }
    }

    /// Whether every record of `epoch` and earlier has resolved.
    pub(crate) fn done_through(&self, epoch: u64) -> bool {
        self.state.lock().done_through(epoch)
    }

    /// Waits until every record of `epoch` and earlier has resolved.
    pub(crate) async fn wait_through(&self, epoch: u64) {
        loop {
            let notified = self.notify.notified();
            if self.done_through(epoch) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_resolve_independently() {
        let o = Outstanding::default();
        o.add(0, 2);
        o.add(1, 1);
        assert!(!o.done_through(0));
        o.resolved(1, 1);
        assert!(!o.done_through(1), "epoch 0 still open");
        o.resolved(0, 2);
        assert!(o.done_through(1));
        o.compact(2);
        o.add(2, 1);
        assert!(o.done_through(1));
        assert!(!o.done_through(2));
    }
}
