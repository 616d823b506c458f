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

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

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
