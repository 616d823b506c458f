//! Retries: failed records wait out their backoff, in a per-stream queue (best-effort
//! ordering) or at the front of their shard's buffer (per-key ordering).

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::Instant;

use super::schedule::Target;
use super::{Pipeline, Waiting};
use crate::config::Ordering;
use crate::record::UserRecord;

impl Pipeline {
    /// Sends `retries` again after their backoff.
    pub(super) fn schedule_retries(
        &mut self,
        stream: usize,
        retries: Vec<UserRecord>,
        now: Instant,
    ) {
        let ordered = self.config.ordering == Ordering::PerPartitionKey;
        if !retries.is_empty() {
            let mut by_slot: HashMap<u32, Vec<UserRecord>> = HashMap::new();
            for mut rec in retries {
                let n = rec.attempts().len() as u32;
                let ready = (now + self.backoff.delay(n)).min(rec.expiration(&self.config));
                let retry = rec.retry_mut();
                retry.not_before = ready;
                retry.deadline = Some(ready);
                if ordered {
                    let slot = self.route(stream, rec.hash_key);
                    by_slot.entry(slot).or_default().push(rec);
                } else {
                    self.streams[stream]
                        .retries
                        .push(Reverse(Waiting(ready, rec)));
                }
            }
            for (slot, mut recs) in by_slot {
                recs.sort_by_key(|r| r.seq);
                self.shard_mut(stream, slot).buffer.merge_front(recs);
                self.mark_shard(stream, slot);
            }
            self.mark(Target::Retry(stream as u32));
        }
    }

    pub(super) fn poll_retries(&mut self, stream: usize, now: Instant) -> Option<Instant> {
        let mut by_slot: HashMap<u32, Vec<UserRecord>> = HashMap::new();
        loop {
            let st = &mut self.streams[stream];
            match st.retries.peek() {
                Some(Reverse(Waiting(t, _))) if *t <= now => {}
                Some(Reverse(Waiting(t, _))) => {
                    let t = *t;
                    self.merge_retries(stream, by_slot);
                    return Some(t);
                }
                None => break,
            }
            if let Some(Reverse(Waiting(_, rec))) = st.retries.pop() {
                let slot = self.route(stream, rec.hash_key);
                by_slot.entry(slot).or_default().push(rec);
            }
        }
        self.merge_retries(stream, by_slot);
        None
    }

    fn merge_retries(&mut self, stream: usize, by_slot: HashMap<u32, Vec<UserRecord>>) {
        for (slot, mut recs) in by_slot {
            recs.sort_by_key(|r| r.seq);
            self.shard_mut(stream, slot).buffer.merge_front(recs);
            self.mark_shard(stream, slot);
        }
    }
}
