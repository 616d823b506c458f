//! Prometheus metrics of one worker, named after KCL's CloudWatch metrics
//! (docs/kcl-behaviour.md §8): per shard `MillisBehindLatest`, `RecordsProcessed`,
//! `DataBytesProcessed` and `RecordProcessor.processRecords.Time`; per worker
//! `CurrentLeases`, `TakenLeases`, stolen and `LostLeases`.
//!
//! Each [`Metrics`] owns its own [`Registry`], so several workers in one process
//! do not collide; expose it with [`Metrics::render`] or register its collectors
//! elsewhere through [`Metrics::registry`].

/// The `prometheus` crate these metrics are built with, for registering or encoding them.
pub use prometheus;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::error::Error;

/// The metrics of one worker (cheap to clone; clones share the series).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `MillisBehindLatest` per shard, as of the last batch read.
    pub millis_behind_latest: IntGaugeVec,
    /// `RecordsProcessed`: user records delivered to processors, per shard.
    pub records_processed: IntCounterVec,
    /// `DataBytesProcessed`: payload bytes delivered to processors, per shard.
    pub data_bytes_processed: IntCounterVec,
    /// `RecordProcessor.processRecords.Time`, per shard, in seconds.
    pub process_records_time: HistogramVec,
    /// User records dropped because their hash key lies outside their shard, per shard.
    pub records_dropped_out_of_range: IntCounterVec,
    /// User records reported to the processor as rejected instead of delivered, per shard.
    pub records_rejected: IntCounterVec,
    /// `ExpiredIterator`: iterators renewed after expiring, per shard.
    pub expired_iterators: IntCounterVec,
    /// GetRecords calls that were throttled, per shard.
    pub get_records_throttled: IntCounterVec,
    /// GetRecords calls answered with records (or none), per shard: with the throttled ones,
    /// the throttles per call.
    pub get_records_calls: IntCounterVec,
    /// Bytes of Kinesis records read (data and partition keys), per shard: against the
    /// shard's 2 MiB/s, its read utilisation.
    pub get_records_bytes: IntCounterVec,
    /// Fan-out: SubscribeToShard subscriptions that ended, per shard and `outcome`
    /// (`expired`: the response ended normally; `failed`: the call or its stream failed).
    pub subscriptions_ended: IntCounterVec,
    /// `CurrentLeases`: leases this worker holds.
    pub leases_held: IntGauge,
    /// `TakenLeases`: leases taken (unowned or expired ones, and stolen ones).
    pub leases_taken: IntCounter,
    /// Leases taken from a live worker to balance the load.
    pub leases_stolen: IntCounter,
    /// `LostLeases`: leases lost to another worker or to expiry.
    pub leases_lost: IntCounter,
    /// Leases given up on graceful shutdown.
    pub leases_released: IntCounter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Fresh series in a new registry, each labelled `worker` = `worker_id`.
    pub fn new(worker_id: &str) -> Result<Self, Error> {
        let registry = Registry::new();
        let metric = |e: prometheus::Error| Error::InvalidConfig(format!("metrics: {e}"));
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("worker", worker_id);
        let shard = &["shard_id"];
        let m = Metrics {
            millis_behind_latest: IntGaugeVec::new(
                opts(
                    "kcl_millis_behind_latest",
                    "MillisBehindLatest of the last batch read",
                ),
                shard,
            )
            .map_err(metric)?,
            records_processed: IntCounterVec::new(
                opts(
                    "kcl_records_processed_total",
                    "User records delivered to processors",
                ),
                shard,
            )
            .map_err(metric)?,
            data_bytes_processed: IntCounterVec::new(
                opts(
                    "kcl_data_bytes_processed_total",
                    "Payload bytes delivered to processors",
                ),
                shard,
            )
            .map_err(metric)?,
            process_records_time: HistogramVec::new(
                HistogramOpts::new(
                    "kcl_process_records_seconds",
                    "Time spent in ShardRecordProcessor::process_records",
                )
                .const_label("worker", worker_id)
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                shard,
            )
            .map_err(metric)?,
            records_dropped_out_of_range: IntCounterVec::new(
                opts(
                    "kcl_records_dropped_out_of_range_total",
                    "User records dropped because their hash key is outside their shard",
                ),
                shard,
            )
            .map_err(metric)?,
            records_rejected: IntCounterVec::new(
                opts(
                    "kcl_records_rejected_total",
                    "User records reported as rejected (e.g. a partition key over Kinesis's limit)",
                ),
                shard,
            )
            .map_err(metric)?,
            expired_iterators: IntCounterVec::new(
                opts(
                    "kcl_expired_iterators_total",
                    "Shard iterators that expired and were renewed",
                ),
                shard,
            )
            .map_err(metric)?,
            get_records_throttled: IntCounterVec::new(
                opts(
                    "kcl_get_records_throttled_total",
                    "GetRecords calls that were throttled",
                ),
                shard,
            )
            .map_err(metric)?,
            get_records_calls: IntCounterVec::new(
                opts(
                    "kcl_get_records_calls_total",
                    "GetRecords calls answered (not throttled or failed)",
                ),
                shard,
            )
            .map_err(metric)?,
            get_records_bytes: IntCounterVec::new(
                opts(
                    "kcl_get_records_bytes_total",
                    "Bytes of Kinesis records read (data and partition keys)",
                ),
                shard,
            )
            .map_err(metric)?,
            subscriptions_ended: IntCounterVec::new(
                opts(
                    "kcl_subscriptions_ended_total",
                    "Fan-out subscriptions that ended, by outcome (expired or failed)",
                ),
                &["shard_id", "outcome"],
            )
            .map_err(metric)?,
            leases_held: IntGauge::with_opts(opts("kcl_leases_held", "Leases this worker holds"))
                .map_err(metric)?,
            leases_taken: IntCounter::with_opts(opts(
                "kcl_leases_taken_total",
                "Leases taken by this worker, stolen ones included",
            ))
            .map_err(metric)?,
            leases_stolen: IntCounter::with_opts(opts(
                "kcl_leases_stolen_total",
                "Leases taken from another live worker",
            ))
            .map_err(metric)?,
            leases_lost: IntCounter::with_opts(opts(
                "kcl_leases_lost_total",
                "Leases lost to another worker or to expiry",
            ))
            .map_err(metric)?,
            leases_released: IntCounter::with_opts(opts(
                "kcl_leases_released_total",
                "Leases given up on graceful shutdown",
            ))
            .map_err(metric)?,
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.millis_behind_latest.clone()),
            Box::new(m.records_processed.clone()),
            Box::new(m.data_bytes_processed.clone()),
            Box::new(m.process_records_time.clone()),
            Box::new(m.records_dropped_out_of_range.clone()),
            Box::new(m.records_rejected.clone()),
            Box::new(m.expired_iterators.clone()),
            Box::new(m.get_records_throttled.clone()),
            Box::new(m.get_records_calls.clone()),
            Box::new(m.get_records_bytes.clone()),
            Box::new(m.subscriptions_ended.clone()),
            Box::new(m.leases_held.clone()),
            Box::new(m.leases_taken.clone()),
            Box::new(m.leases_stolen.clone()),
            Box::new(m.leases_lost.clone()),
            Box::new(m.leases_released.clone()),
        ];
        for c in collectors {
            m.registry.register(c).map_err(metric)?;
        }
        Ok(m)
    }

    /// The registry holding every series.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every series in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding gathered families into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_named_series() {
        let m = Metrics::new("w1").expect("metrics");
        m.records_processed
            .with_label_values(&["shardId-000000000000"])
            .inc_by(3);
        m.millis_behind_latest
            .with_label_values(&["shardId-000000000000"])
            .set(42);
        m.leases_taken.inc();
        let text = m.render();
        assert!(text.contains(
            "kcl_records_processed_total{shard_id=\"shardId-000000000000\",worker=\"w1\"} 3"
        ));
        assert!(text.contains(
            "kcl_millis_behind_latest{shard_id=\"shardId-000000000000\",worker=\"w1\"} 42"
        ));
        assert!(text.contains("kcl_leases_taken_total{worker=\"w1\"} 1"));
        // Two workers in one process keep separate registries.
        assert!(Metrics::new("w2").is_ok());
    }
}
