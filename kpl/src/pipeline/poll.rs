//! Polling: run every target that is due or dirty, then hand out sealed requests while
//! connections are free.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Instant;

use super::schedule::{Target, UNROUTED};
use super::{Actions, Batch, Pipeline};
use crate::aggregator::KinesisRecord;
use crate::config::Ordering;
use crate::retrier::expired;

impl Pipeline {
    /// Does everything due at `now`.
    pub(crate) fn poll(&mut self, now: Instant, out: &mut Actions) {
        while let Some(Reverse((t, target))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            if self.schedule_of(target).is_some_and(|s| s.fire(t)) {
                self.mark(target);
            }
        }
        // Retries and maps first, so that retries reach their buffers before the shards run;
        // shards feed collectors, so collectors marked while shards run are handled too.
        self.dirty.sort_by_key(|t| match t {
            Target::Refresh(_) | Target::Retry(_) => 0,
            Target::Shard { .. } => 1,
            Target::Collector(_) => 2,
        });
        let mut i = 0;
        while i < self.dirty.len() {
            let target = self.dirty[i];
            i += 1;
            let Some(sched) = self.schedule_of(target) else {
                continue;
            };
            sched.dirty = false;
            let next = match target {
                Target::Shard { stream, slot, .. } => {
                    self.poll_shard(stream as usize, slot, now, out)
                }
                Target::Collector(s) => {
                    let st = &mut self.streams[s as usize];
                    st.collector.poll(now, self.flush_seq);
                    st.collector.next_due()
                }
                Target::Retry(s) => self.poll_retries(s as usize, now),
                Target::Refresh(s) => {
                    let st = &mut self.streams[s as usize];
                    if st.map.start_refresh(now) {
                        out.refresh.push((s as usize, Arc::clone(&st.name)));
                    }
                    st.map.next_refresh()
                }
            };
            if let Some(t) = next
                && let Some(sched) = self.schedule_of(target)
                && sched.want(t)
            {
                self.timers.push(Reverse((t, target)));
            }
        }
        self.dirty.clear();
        out.confirmed.append(&mut self.confirmed);
        out.wrong_shard.append(&mut self.wrong_shard);
        self.dispatch(now, out);
    }

    fn poll_shard(
        &mut self,
        stream: usize,
        slot: u32,
        now: Instant,
        out: &mut Actions,
    ) -> Option<Instant> {
        let config = Arc::clone(&self.config);
        let ordered = config.ordering == Ordering::PerPartitionKey;
        let flush_seq = self.flush_seq;
        // Without a map records are held until their deadline (the map may arrive meanwhile)
        // and then sent unaggregated, as the KPL does.
        let unrouted = slot == UNROUTED;
        let hold = unrouted || config.aggregation_enabled;
        let aggregate = !unrouted && config.aggregation_enabled;
        let st = &mut self.streams[stream];
        let blocked = ordered && st.pending_map.is_some();
        // While the first map is being fetched, even a flush waits for it (up to the records'
        // deadline), so that the first records are aggregated too.
        let flush_seq = if unrouted && st.routing.is_none() && st.map.is_fetching() {
            0
        } else {
            flush_seq
        };
        let sh = if unrouted {
            &mut st.unrouted
        } else {
            &mut st.shards[slot as usize]
        };
        let mut expired_now = Vec::new();
        sh.buffer.expire_front(now, &config, &mut expired_now);
        for mut rec in expired_now {
            let last = rec.attempts().last().and_then(|a| a.error_code.clone());
            let failure = expired(&mut rec, last.as_deref());
            out.expired.push((rec, failure));
        }
        let mut emitted = false;
        let mut next = None;
        loop {
            if (ordered && sh.busy) || blocked {
                break;
            }
            if !sh.buffer.is_due(now, flush_seq, hold, &config) {
                next = sh.buffer.next_due(flush_seq, hold, &config);
                break;
            }
            if let Some(limiter) = &mut sh.limiter {
                let wait = limiter.wait(now);
                if !wait.is_zero() {
                    next = sh
                        .buffer
                        .front()
                        .map(|f| (now + wait).min(f.expiration(&config)));
                    break;
                }
            }
            let Some(kr) = sh
                .buffer
                .take(aggregate, sh.id.clone(), now, &config, &mut self.spare)
            else {
                break;
            };
            if let Some(limiter) = &mut sh.limiter {
                limiter.take(kr.size, now);
            }
            sh.busy = ordered;
            st.collector.add(kr);
            emitted = true;
        }
        if emitted {
            self.mark(Target::Collector(stream as u32));
        }
        next
    }

    /// Hands out sealed requests while connections are free, streams taking turns; records
    /// that expired on the way are failed rather than sent.
    fn dispatch(&mut self, now: Instant, out: &mut Actions) {
        let n = self.streams.len();
        let mut idle_streams = 0;
        while self.in_flight < self.config.max_connections && idle_streams < n {
            let s = self.round_robin % n.max(1);
            self.round_robin = self.round_robin.wrapping_add(1);
            let Some(records) = self.streams[s].collector.pop_ready() else {
                idle_streams += 1;
                continue;
            };
            idle_streams = 0;
            let mut kept = Vec::with_capacity(records.len());
            for kr in records {
                if kr.records.iter().all(|r| r.expiration(&self.config) > now) {
                    kept.push(kr);
                    continue;
                }
                let predicted = kr.predicted.clone();
                let mut live = Vec::with_capacity(kr.records.len());
                for mut rec in kr.records {
                    if rec.expiration(&self.config) > now {
                        live.push(rec);
                    } else {
                        let last = rec.attempts().last().and_then(|a| a.error_code.clone());
                        let failure = expired(&mut rec, last.as_deref());
                        out.expired.push((rec, failure));
                    }
                }
                if live.is_empty() {
                    if self.config.ordering == Ordering::PerPartitionKey {
                        self.release(s, predicted.as_deref());
                    }
                } else {
                    kept.push(KinesisRecord::new(live, predicted, &self.config));
                }
            }
            if kept.is_empty() {
                continue;
            }
            let st = &mut self.streams[s];
            st.in_flight += 1;
            self.in_flight += 1;
            self.next_batch += 1;
            out.batches.push(Batch {
                id: self.next_batch,
                stream: s,
                name: Arc::clone(&st.name),
                records: kept,
                map: st.routing.clone(),
            });
        }
        // Releases above may have made shards due again.
        if !self.dirty.is_empty() {
            self.poll(now, out);
        }
    }
}
