//! Prometheus metrics named as the KPL's CloudWatch metrics (`docs/kpl-behaviour.md` §3), in
//! the producer's own [`Registry`] for the application to expose.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `UserRecordsReceived` | counter | stream | user records accepted by `put` |
//! | `UserRecordsPending` | gauge | | user records buffered or in flight |
//! | `UserRecordsPut` | counter | stream, shard | user records put |
//! | `UserRecordsDataPut` | counter | stream, shard | bytes of user records put (data) |
//! | `KinesisRecordsPut` | counter | stream, shard | Kinesis records put |
//! | `KinesisRecordsDataPut` | counter | stream, shard | bytes of Kinesis records put (data and partition key) |
//! | `ErrorsByCode` | counter | stream, shard, error_code | failed Kinesis records (user records for `Expired` and `Wrong Shard`) by error |
//! | `AllErrors` | counter | stream | the same, all codes |
//! | `UserRecordExpired` | counter | stream | user records failed by `RecordTtl` |
//! | `RetriesPerRecord` | histogram | stream | retries of each user record, when it completes |
//! | `BufferingTime` | histogram (ms) | stream | `put` to first send |
//! | `RequestTime` | histogram (ms) | stream | PutRecords latency |
//! | `UserRecordsPerKinesisRecord` | histogram | stream | aggregation factor |
//! | `KinesisRecordsPerPutRecordsRequest` | histogram | stream | |
//! | `UserRecordsPerPutRecordsRequest` | histogram | stream | |
//!
//! Shard labels are shard ids (`unknown` when no shard map predicted one and the request
//! failed).

use crate::error::{RecordFailure, WRONG_SHARD};
use crate::handle::PutResult;
use crate::record::UserRecord;
use crate::retrier::Verdicts;
use prometheus::core::Collector;
use prometheus::local::LocalHistogram;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The producer's metrics and their registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub(crate) user_records_received: IntCounterVec,
    pub(crate) user_records_pending: IntGauge,
    pub(crate) user_records_put: IntCounterVec,
    pub(crate) user_records_data_put: IntCounterVec,
    pub(crate) kinesis_records_put: IntCounterVec,
    pub(crate) kinesis_records_data_put: IntCounterVec,
    pub(crate) errors_by_code: IntCounterVec,
    pub(crate) all_errors: IntCounterVec,
    pub(crate) user_record_expired: IntCounterVec,
    pub(crate) retries_per_record: HistogramVec,
    pub(crate) buffering_time: HistogramVec,
    pub(crate) request_time: HistogramVec,
    pub(crate) user_records_per_kinesis_record: HistogramVec,
    pub(crate) kinesis_records_per_put_records_request: HistogramVec,
    pub(crate) user_records_per_put_records_request: HistogramVec,
}

const MS_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];
const COUNT_BUCKETS: &[f64] = &[
    0.0, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0, 50000.0,
];

impl Metrics {
    /// Fresh metrics in a new registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        fn reg<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            // Names are fixed and distinct, so registration cannot collide.
            let _ = r.register(Box::new(c.clone()));
            c
        }
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels)
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
            )
        };
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                    &["stream"],
                )
                .unwrap_or_else(|e| panic!("{name}: {e}")),
            )
        };
        let shard = &["stream", "shard"][..];
        Metrics {
            user_records_received: counter(
                "UserRecordsReceived",
                "User records accepted by put.",
                &["stream"],
            ),
            user_records_pending: reg(
                &registry,
                IntGauge::new("UserRecordsPending", "User records buffered or in flight.")
                    .unwrap_or_else(|e| panic!("UserRecordsPending: {e}")),
            ),
            user_records_put: counter("UserRecordsPut", "User records put.", shard),
            user_records_data_put: counter(
                "UserRecordsDataPut",
                "Bytes of user record data put.",
                shard,
            ),
            kinesis_records_put: counter("KinesisRecordsPut", "Kinesis records put.", shard),
            kinesis_records_data_put: counter(
                "KinesisRecordsDataPut",
                "Bytes of Kinesis records put (data and partition key).",
                shard,
            ),
            errors_by_code: counter(
                "ErrorsByCode",
                "Failed Kinesis records (user records for Expired and Wrong Shard) by error code.",
                &["stream", "shard", "error_code"],
            ),
            all_errors: counter(
                "AllErrors",
                "All errors counted in ErrorsByCode.",
                &["stream"],
            ),
            user_record_expired: counter(
                "UserRecordExpired",
                "User records failed by RecordTtl.",
                &["stream"],
            ),
            retries_per_record: histogram(
                "RetriesPerRecord",
                "Retries of each user record at completion.",
                COUNT_BUCKETS,
            ),
            buffering_time: histogram(
                "BufferingTime",
                "Milliseconds from put to first send.",
                MS_BUCKETS,
            ),
            request_time: histogram(
                "RequestTime",
                "PutRecords latency in milliseconds.",
                MS_BUCKETS,
            ),
            user_records_per_kinesis_record: histogram(
                "UserRecordsPerKinesisRecord",
                "User records per Kinesis record.",
                COUNT_BUCKETS,
            ),
            kinesis_records_per_put_records_request: histogram(
                "KinesisRecordsPerPutRecordsRequest",
                "Kinesis records per PutRecords request.",
                COUNT_BUCKETS,
            ),
            user_records_per_put_records_request: histogram(
                "UserRecordsPerPutRecordsRequest",
                "User records per PutRecords request.",
                COUNT_BUCKETS,
            ),
            registry,
        }
    }

    /// The registry holding every metric, to expose or gather.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric in the Prometheus text format.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The sum of a counter over every label set whose labels include all of `labels`
    /// (convenient in tests and dashboards-by-code).
    pub fn counter_sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric())
            .filter(|m| {
                labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The shard label of metrics whose shard is not known.
const UNKNOWN_SHARD: &str = "unknown";

/// How the producer's events are counted: one method per event, so the pipeline and request
/// code say what happened and this module decides which metrics that moves.
impl Metrics {
    /// Counts a request's outcome in the metrics.
    pub(crate) fn observe_request(
        &self,
        stream: &str,
        v: &Verdicts,
        request_time: Duration,
        kinesis: usize,
        users: usize,
    ) {
        let m = self;
        m.request_time
            .with_label_values(&[stream])
            .observe(request_time.as_secs_f64() * 1000.0);
        m.kinesis_records_per_put_records_request
            .with_label_values(&[stream])
            .observe(kinesis as f64);
        m.user_records_per_put_records_request
            .with_label_values(&[stream])
            .observe(users as f64);
        let per_kinesis = m
            .user_records_per_kinesis_record
            .with_label_values(&[stream]);
        let mut put: HashMap<&str, (u64, u64, u64, u64)> = HashMap::new();
        let mut errors = 0;
        for k in &v.kinesis {
            let shard = k.shard.as_deref().unwrap_or(UNKNOWN_SHARD);
            match &k.error_code {
                None => {
                    per_kinesis.observe(k.user_records as f64);
                    let e = put.entry(shard).or_default();
                    e.2 += 1;
                    e.3 += k.bytes as u64;
                }
                Some(code) => {
                    errors += 1;
                    m.errors_by_code
                        .with_label_values(&[stream, shard, code])
                        .inc();
                }
            }
        }
        for (shard, n) in &v.wrong_shard {
            errors += *n as u64;
            m.errors_by_code
                .with_label_values(&[stream, shard, WRONG_SHARD])
                .inc_by(*n as u64);
        }
        for landed in &v.succeeded {
            let e = put.entry(&*landed.shard_id).or_default();
            e.0 += landed.records.len() as u64;
            e.1 += landed
                .records
                .iter()
                .map(|r| r.data.len() as u64)
                .sum::<u64>();
        }
        for (shard, (users, user_bytes, krs, kr_bytes)) in put {
            let labels = [stream, shard];
            m.user_records_put.with_label_values(&labels).inc_by(users);
            m.user_records_data_put
                .with_label_values(&labels)
                .inc_by(user_bytes);
            m.kinesis_records_put.with_label_values(&labels).inc_by(krs);
            m.kinesis_records_data_put
                .with_label_values(&labels)
                .inc_by(kr_bytes);
        }
        if errors > 0 {
            m.all_errors.with_label_values(&[stream]).inc_by(errors);
        }
    }

    /// Counts records confirmed after a shard map refresh as put.
    pub(crate) fn observe_confirmed(&self, confirmed: &[(UserRecord, PutResult)]) {
        let m = self;
        for (rec, r) in confirmed {
            let labels = [&*rec.stream, &*r.shard_id];
            m.user_records_put.with_label_values(&labels).inc();
            m.user_records_data_put
                .with_label_values(&labels)
                .inc_by(rec.data.len() as u64);
        }
    }

    /// Counts records that expired (or failed) outside a request.
    pub(crate) fn observe_expired(&self, failed: &[(UserRecord, RecordFailure)]) {
        let m = self;
        for (rec, f) in failed {
            let stream = &*rec.stream;
            m.errors_by_code
                .with_label_values(&[stream, UNKNOWN_SHARD, &f.code])
                .inc();
            m.all_errors.with_label_values(&[stream]).inc();
            if f.is_expired() {
                m.user_record_expired.with_label_values(&[stream]).inc();
            }
        }
    }

    /// Counts a user record found on a shard not owning its hash key.
    pub(crate) fn observe_wrong_shard(&self, stream: &str, shard: &str) {
        self.errors_by_code
            .with_label_values(&[stream, shard, WRONG_SHARD])
            .inc();
        self.all_errors.with_label_values(&[stream]).inc();
    }

    /// Counts the expired records among a request's failures (the request's own errors are
    /// counted by [`observe_request`](Self::observe_request)).
    pub(crate) fn observe_request_failures(&self, failed: &[(UserRecord, RecordFailure)]) {
        for (rec, f) in failed {
            if f.is_expired() {
                self.user_record_expired
                    .with_label_values(&[&*rec.stream])
                    .inc();
            }
        }
    }
}

/// `UserRecordsReceived` per stream index, counted locally and added to the counters once
/// per pipeline wake-up rather than once per record.
#[derive(Debug, Default)]
pub(crate) struct ReceivedCounts(Vec<(IntCounter, u64)>);

impl ReceivedCounts {
    /// Counts one record of stream index `stream`; `name` gives a stream index's name.
    pub(crate) fn count<'a>(
        &mut self,
        metrics: &Metrics,
        stream: usize,
        name: impl Fn(usize) -> &'a str,
    ) {
        while self.0.len() <= stream {
            let counter = metrics
                .user_records_received
                .with_label_values(&[name(self.0.len())]);
            self.0.push((counter, 0));
        }
        self.0[stream].1 += 1;
    }

    /// Adds the local counts to the counters.
    pub(crate) fn flush(&mut self) {
        for (counter, n) in &mut self.0 {
            if *n > 0 {
                counter.inc_by(*n);
                *n = 0;
            }
        }
    }
}

/// `RetriesPerRecord` observed into a local histogram per stream, flushed when the stream
/// changes or the batch ends: one atomic flush per run of records instead of per record.
pub(crate) struct RetriesPerRecord<'a> {
    metrics: &'a Metrics,
    current: Option<(Arc<str>, LocalHistogram)>,
}

impl<'a> RetriesPerRecord<'a> {
    /// Nothing observed yet.
    pub(crate) fn new(metrics: &'a Metrics) -> Self {
        RetriesPerRecord {
            metrics,
            current: None,
        }
    }

    /// Counts a completed record of `stream` that took `retries` retries.
    pub(crate) fn observe(&mut self, stream: &Arc<str>, retries: usize) {
        let hist = match &self.current {
            Some((s, h)) if Arc::ptr_eq(s, stream) => h,
            // The replaced histogram flushes on drop.
            _ => {
                let h = self
                    .metrics
                    .retries_per_record
                    .with_label_values(&[&**stream])
                    .local();
                &self.current.insert((Arc::clone(stream), h)).1
            }
        };
        hist.observe(retries as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kpl_metric_is_registered() {
        let m = Metrics::new();
        m.user_records_received.with_label_values(&["s"]).inc_by(3);
        m.errors_by_code
            .with_label_values(&[
                "s",
                "shardId-000000000000",
                "ProvisionedThroughputExceededException",
            ])
            .inc();
        m.user_records_pending.set(2);
        for h in [
            &m.retries_per_record,
            &m.buffering_time,
            &m.request_time,
            &m.user_records_per_kinesis_record,
            &m.kinesis_records_per_put_records_request,
            &m.user_records_per_put_records_request,
        ] {
            h.with_label_values(&["s"]).observe(1.0);
        }
        for c in [
            &m.user_records_put,
            &m.user_records_data_put,
            &m.kinesis_records_put,
            &m.kinesis_records_data_put,
        ] {
            c.with_label_values(&["s", "x"]).inc();
        }
        m.all_errors.with_label_values(&["s"]).inc();
        m.user_record_expired.with_label_values(&["s"]).inc();
        let text = m.to_text();
        for name in [
            "UserRecordsReceived",
            "UserRecordsPending",
            "UserRecordsPut",
            "UserRecordsDataPut",
            "KinesisRecordsPut",
            "KinesisRecordsDataPut",
            "ErrorsByCode",
            "AllErrors",
            "RetriesPerRecord",
            "BufferingTime",
            "RequestTime",
            "UserRecordsPerKinesisRecord",
            "KinesisRecordsPerPutRecordsRequest",
            "UserRecordsPerPutRecordsRequest",
            "UserRecordExpired",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        }
        assert_eq!(m.counter_sum("UserRecordsReceived", &[("stream", "s")]), 3);
        assert_eq!(
            m.counter_sum(
                "ErrorsByCode",
                &[("error_code", "ProvisionedThroughputExceededException")]
            ),
            1
        );
    }
}
