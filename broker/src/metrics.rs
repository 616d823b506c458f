//! Prometheus metrics named after the service's CloudWatch metrics.
//!
//! CloudWatch's `IncomingRecords` becomes `kinesis_incoming_records_total`,
//! `PutRecords.FailedRecords` becomes `kinesis_put_records_failed_records_total`
//! and so on. Per-shard series carry `stream` and `shard` labels (CloudWatch's
//! stream-level numbers are `sum by (stream)`); enhanced fan-out series add
//! `consumer`. Request latency and outcome are kept per operation, and
//! connection counts for the whole broker.
//!
//! Handlers on the hot path resolve a shard's labelled children once with
//! [`Metrics::shard`] and keep the [`ShardMetrics`] handle next to the shard,
//! so a PutRecords of 500 records costs a few atomic increments per shard
//! and no label lookups.
//!
//! [`Metrics::gather_text`] renders the registry in the Prometheus text
//! format for `GET /metrics` (content type [`TEXT_CONTENT_TYPE`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The `Content-Type` of [`Metrics::gather_text`]'s output.
pub const TEXT_CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Latency buckets in seconds: sub-millisecond in-memory calls up to slow
/// fault-injected or throttled ones.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const SHARD_LABELS: &[&str] = &["stream", "shard"];
const CONSUMER_LABELS: &[&str] = &["stream", "shard", "consumer"];

/// The `outcome` label of a successful request in `kinesis_requests_total`.
pub const OUTCOME_SUCCESS: &str = "Success";

/// The `outcome` label of a request whose connection was reset by a fault.
pub const OUTCOME_CONNECTION_RESET: &str = "ConnectionReset";

/// Every broker metric, registered in one registry.
///
/// Cloning is cheap and shares the underlying counters.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    incoming_bytes: IntCounterVec,
    incoming_records: IntCounterVec,
    put_record_success: IntCounterVec,
    put_records_success: IntCounterVec,
    put_records_failed_records: IntCounterVec,
    put_records_throttled_records: IntCounterVec,
    get_records_bytes: IntCounterVec,
    get_records_records: IntCounterVec,
    get_records_success: IntCounterVec,
    get_records_iterator_age: IntGaugeVec,
    write_throttled: IntCounterVec,
    read_throttled: IntCounterVec,
    subscribe_success: IntCounterVec,
    subscribe_event_bytes: IntCounterVec,
    subscribe_event_records: IntCounterVec,
    subscribe_millis_behind: IntGaugeVec,
    request_duration: HistogramVec,
    requests: IntCounterVec,
    open_connections: IntGauge,
    connections: IntCounter,
    connections_cut: IntCounterVec,
    /// (stream, shard, consumer) triples with fan-out series, so that
    /// `forget_shard` can find them (prometheus has no partial-match removal).
    consumers: Arc<Mutex<BTreeSet<(String, String, String)>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Builds and registers collectors; names and label sets are constants, so
/// the only possible failure is a programming error caught by the tests.
struct Builder {
    registry: Registry,
}

impl Builder {
    fn register<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> C {
        self.registry
            .register(Box::new(c.clone()))
            .expect("metric names are unique constants");
        c
    }

    fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.register(
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric definition"),
        )
    }

    fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.register(
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric definition"),
        )
    }
}

impl Metrics {
    /// All metrics, registered in a fresh registry.
    pub fn new() -> Metrics {
        let b = Builder {
            registry: Registry::new(),
        };
        let shard = SHARD_LABELS;
        let consumer = CONSUMER_LABELS;
        Metrics {
            incoming_bytes: b.counter_vec(
                "kinesis_incoming_bytes_total",
                "Bytes (data + partition key) successfully put to the shard (IncomingBytes).",
                shard,
            ),
            incoming_records: b.counter_vec(
                "kinesis_incoming_records_total",
                "Records successfully put to the shard (IncomingRecords).",
                shard,
            ),
            put_record_success: b.counter_vec(
                "kinesis_put_record_success_total",
                "Successful PutRecord calls (PutRecord.Success).",
                shard,
            ),
            put_records_success: b.counter_vec(
                "kinesis_put_records_success_total",
                "PutRecords calls with at least one record accepted by the shard (PutRecords.Success).",
                shard,
            ),
            put_records_failed_records: b.counter_vec(
                "kinesis_put_records_failed_records_total",
                "PutRecords records rejected for internal failures (PutRecords.FailedRecords).",
                shard,
            ),
            put_records_throttled_records: b.counter_vec(
                "kinesis_put_records_throttled_records_total",
                "PutRecords records rejected for throughput (PutRecords.ThrottledRecords).",
                shard,
            ),
            get_records_bytes: b.counter_vec(
                "kinesis_get_records_bytes_total",
                "Bytes returned by GetRecords (GetRecords.Bytes).",
                shard,
            ),
            get_records_records: b.counter_vec(
                "kinesis_get_records_records_total",
                "Records returned by GetRecords (GetRecords.Records).",
                shard,
            ),
            get_records_success: b.counter_vec(
                "kinesis_get_records_success_total",
                "Successful GetRecords calls (GetRecords.Success).",
                shard,
            ),
            get_records_iterator_age: b.gauge_vec(
                "kinesis_get_records_iterator_age_milliseconds",
                "Age of the last record returned by the latest GetRecords (GetRecords.IteratorAgeMilliseconds).",
                shard,
            ),
            write_throttled: b.counter_vec(
                "kinesis_write_provisioned_throughput_exceeded_total",
                "Records refused for exceeding the shard's write limit (WriteProvisionedThroughputExceeded).",
                shard,
            ),
            read_throttled: b.counter_vec(
                "kinesis_read_provisioned_throughput_exceeded_total",
                "GetRecords calls refused for exceeding the shard's read limit (ReadProvisionedThroughputExceeded).",
                shard,
            ),
            subscribe_success: b.counter_vec(
                "kinesis_subscribe_to_shard_success_total",
                "Successful SubscribeToShard calls (SubscribeToShard.Success).",
                consumer,
            ),
            subscribe_event_bytes: b.counter_vec(
                "kinesis_subscribe_to_shard_event_bytes_total",
                "Bytes pushed in SubscribeToShard events (SubscribeToShardEvent.Bytes).",
                consumer,
            ),
            subscribe_event_records: b.counter_vec(
                "kinesis_subscribe_to_shard_event_records_total",
                "Records pushed in SubscribeToShard events (SubscribeToShardEvent.Records).",
                consumer,
            ),
            subscribe_millis_behind: b.gauge_vec(
                "kinesis_subscribe_to_shard_event_millis_behind_latest",
                "MillisBehindLatest of the latest SubscribeToShard event (SubscribeToShardEvent.MillisBehindLatest).",
                consumer,
            ),
            request_duration: b.register(
                HistogramVec::new(
                    HistogramOpts::new(
                        "kinesis_request_duration_seconds",
                        "Time from request received to response written, by operation.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["operation"],
                )
                .expect("valid metric definition"),
            ),
            requests: b.counter_vec(
                "kinesis_requests_total",
                "Requests by operation and outcome (Success or the error code).",
                &["operation", "outcome"],
            ),
            open_connections: b.register(
                IntGauge::new("kinesis_open_connections", "Client connections open now.")
                    .expect("valid metric definition"),
            ),
            connections: b.register(
                IntCounter::new(
                    "kinesis_connections_total",
                    "Client connections accepted since start.",
                )
                .expect("valid metric definition"),
            ),
            connections_cut: b.counter_vec(
                "kinesis_connections_cut_total",
                "Client connections the broker closed to enforce a limit, by limit (max_connections, header_read_timeout, idle_timeout, tls_handshake_timeout).",
                &["limit"],
            ),
            consumers: Arc::default(),
            registry: b.registry,
        }
    }

    /// The registry, for registering further collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The per-shard counters of `stream`/`shard`, resolved once for the hot path.
    pub fn shard(&self, stream: &str, shard: &str) -> ShardMetrics {
        let l = [stream, shard];
        ShardMetrics {
            incoming_bytes: self.incoming_bytes.with_label_values(&l),
            incoming_records: self.incoming_records.with_label_values(&l),
            put_record_success: self.put_record_success.with_label_values(&l),
            put_records_success: self.put_records_success.with_label_values(&l),
            put_records_failed_records: self.put_records_failed_records.with_label_values(&l),
            put_records_throttled_records: self.put_records_throttled_records.with_label_values(&l),
            get_records_bytes: self.get_records_bytes.with_label_values(&l),
            get_records_records: self.get_records_records.with_label_values(&l),
            get_records_success: self.get_records_success.with_label_values(&l),
            get_records_iterator_age: self.get_records_iterator_age.with_label_values(&l),
            write_throttled: self.write_throttled.with_label_values(&l),
            read_throttled: self.read_throttled.with_label_values(&l),
        }
    }

    /// The enhanced fan-out counters of one (stream, shard, consumer).
    pub fn consumer_shard(
        &self,
        stream: &str,
        shard: &str,
        consumer: &str,
    ) -> ConsumerShardMetrics {
        self.consumer_set()
            .insert((stream.to_string(), shard.to_string(), consumer.to_string()));
        let l = [stream, shard, consumer];
        ConsumerShardMetrics {
            subscribe_success: self.subscribe_success.with_label_values(&l),
            event_bytes: self.subscribe_event_bytes.with_label_values(&l),
            event_records: self.subscribe_event_records.with_label_values(&l),
            millis_behind: self.subscribe_millis_behind.with_label_values(&l),
        }
    }

    /// One successful PutRecord of `bytes` (data + partition key); for
    /// callers without a cached [`ShardMetrics`].
    pub fn record_put_record(&self, stream: &str, shard: &str, bytes: u64) {
        self.shard(stream, shard).put_record_succeeded(bytes);
    }

    /// One shard's share of a PutRecords call; see [`ShardMetrics::put_records`].
    pub fn record_put_records(
        &self,
        stream: &str,
        shard: &str,
        accepted: u64,
        accepted_bytes: u64,
        failed: u64,
        throttled: u64,
    ) {
        self.shard(stream, shard)
            .put_records(accepted, accepted_bytes, failed, throttled);
    }

    /// One successful GetRecords; see [`ShardMetrics::get_records_succeeded`].
    pub fn record_get_records(
        &self,
        stream: &str,
        shard: &str,
        records: u64,
        bytes: u64,
        iterator_age_ms: i64,
    ) {
        self.shard(stream, shard)
            .get_records_succeeded(records, bytes, iterator_age_ms);
    }

    /// One request's outcome and duration; `outcome` is [`OUTCOME_SUCCESS`] or
    /// the error's `__type` (e.g. `ErrorCode::as_str()`).
    pub fn observe_request(&self, operation: &str, outcome: &str, seconds: f64) {
        self.request_duration
            .with_label_values(&[operation])
            .observe(seconds);
        self.requests.with_label_values(&[operation, outcome]).inc();
    }

    /// A client connection was accepted.
    pub fn connection_opened(&self) {
        self.connections.inc();
        self.open_connections.inc();
    }

    /// The broker closed a connection to enforce `limit`.
    pub fn connection_cut(&self, limit: &'static str) {
        self.connections_cut.with_label_values(&[limit]).inc();
    }

    /// A client connection was closed.
    pub fn connection_closed(&self) {
        self.open_connections.dec();
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn connection_guard(&self) -> ConnectionGuard {
        self.connection_opened();
        ConnectionGuard {
            open: self.open_connections.clone(),
        }
    }

    /// Drop the series of a shard that no longer exists (its stream was deleted
    /// or it expired), including its consumers' series.
    pub fn forget_shard(&self, stream: &str, shard: &str) {
        let l = [stream, shard];
        for vec in [
            &self.incoming_bytes,
            &self.incoming_records,
            &self.put_record_success,
            &self.put_records_success,
            &self.put_records_failed_records,
            &self.put_records_throttled_records,
            &self.get_records_bytes,
            &self.get_records_records,
            &self.get_records_success,
            &self.write_throttled,
            &self.read_throttled,
        ] {
            // Absent series are fine: the shard may never have been used.
            let _ = vec.remove_label_values(&l);
        }
        let _ = self.get_records_iterator_age.remove_label_values(&l);
        let consumers: Vec<String> = self
            .consumer_set()
            .iter()
            .filter(|(st, sh, _)| st == stream && sh == shard)
            .map(|(_, _, c)| c.clone())
            .collect();
        for consumer in consumers {
            self.forget_consumer_shard(stream, shard, &consumer);
        }
    }

    /// Drop a deregistered consumer's series on one shard.
    pub fn forget_consumer_shard(&self, stream: &str, shard: &str, consumer: &str) {
        self.consumer_set()
            .remove(&(stream.to_string(), shard.to_string(), consumer.to_string()));
        let l = [stream, shard, consumer];
        let _ = self.subscribe_success.remove_label_values(&l);
        let _ = self.subscribe_event_bytes.remove_label_values(&l);
        let _ = self.subscribe_event_records.remove_label_values(&l);
        let _ = self.subscribe_millis_behind.remove_label_values(&l);
    }

    fn consumer_set(&self) -> std::sync::MutexGuard<'_, BTreeSet<(String, String, String)>> {
        // A panic while holding the lock cannot leave the set inconsistent.
        self.consumers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn gather_text(&self) -> String {
        let mut out = Vec::new();
        // Encoding only fails on invalid metric names or a broken writer;
        // neither can happen with constant names and a Vec.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            return format!("# metrics encoding failed: {e}\n");
        }
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// Pre-resolved per-shard counters; cheap to clone, one per shard.
#[derive(Clone, Debug)]
pub struct ShardMetrics {
    incoming_bytes: IntCounter,
    incoming_records: IntCounter,
    put_record_success: IntCounter,
    put_records_success: IntCounter,
    put_records_failed_records: IntCounter,
    put_records_throttled_records: IntCounter,
    get_records_bytes: IntCounter,
    get_records_records: IntCounter,
    get_records_success: IntCounter,
    get_records_iterator_age: IntGauge,
    write_throttled: IntCounter,
    read_throttled: IntCounter,
}

impl ShardMetrics {
    /// A PutRecord of `bytes` (data + partition key) was stored.
    pub fn put_record_succeeded(&self, bytes: u64) {
        self.put_record_success.inc();
        self.incoming_records.inc();
        self.incoming_bytes.inc_by(bytes);
    }

    /// A PutRecord was refused for throughput.
    pub fn put_record_throttled(&self) {
        self.write_throttled.inc();
    }

    /// This shard's share of one PutRecords call: `accepted` records of
    /// `accepted_bytes` stored, `failed` rejected for internal failures and
    /// `throttled` refused for throughput.
    pub fn put_records(&self, accepted: u64, accepted_bytes: u64, failed: u64, throttled: u64) {
        if accepted > 0 {
            self.put_records_success.inc();
            self.incoming_records.inc_by(accepted);
            self.incoming_bytes.inc_by(accepted_bytes);
        }
        if failed > 0 {
            self.put_records_failed_records.inc_by(failed);
        }
        if throttled > 0 {
            self.put_records_throttled_records.inc_by(throttled);
            self.write_throttled.inc_by(throttled);
        }
    }

    /// A GetRecords call returned `records` records of `bytes`, the last one
    /// `iterator_age_ms` behind the tip.
    pub fn get_records_succeeded(&self, records: u64, bytes: u64, iterator_age_ms: i64) {
        self.get_records_success.inc();
        self.get_records_records.inc_by(records);
        self.get_records_bytes.inc_by(bytes);
        self.get_records_iterator_age.set(iterator_age_ms);
    }

    /// A GetRecords call was refused for throughput.
    pub fn get_records_throttled(&self) {
        self.read_throttled.inc();
    }
}

/// Pre-resolved enhanced fan-out counters of one (stream, shard, consumer).
#[derive(Clone, Debug)]
pub struct ConsumerShardMetrics {
    subscribe_success: IntCounter,
    event_bytes: IntCounter,
    event_records: IntCounter,
    millis_behind: IntGauge,
}

impl ConsumerShardMetrics {
    /// A SubscribeToShard call was accepted.
    pub fn subscribed(&self) {
        self.subscribe_success.inc();
    }

    /// One SubscribeToShardEvent of `records` records and `bytes` was pushed.
    pub fn event_pushed(&self, records: u64, bytes: u64, millis_behind_latest: i64) {
        self.event_records.inc_by(records);
        self.event_bytes.inc_by(bytes);
        self.millis_behind.set(millis_behind_latest);
    }
}

/// Keeps `kinesis_open_connections` one higher while it lives.
#[derive(Debug)]
pub struct ConnectionGuard {
    open: IntGauge,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.open.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_value(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn shard_counters_have_cloudwatch_names_and_labels() {
        let m = Metrics::new();
        let s = m.shard("orders", "shardId-000000000001");
        s.put_record_succeeded(100);
        s.put_records(498, 49_800, 1, 1);
        s.put_record_throttled();
        s.get_records_succeeded(10, 1000, 1234);
        s.get_records_throttled();
        let text = m.gather_text();
        let l = r#"{shard="shardId-000000000001",stream="orders"}"#;
        let expect = [
            ("kinesis_incoming_bytes_total", 49_900.0),
            ("kinesis_incoming_records_total", 499.0),
            ("kinesis_put_record_success_total", 1.0),
            ("kinesis_put_records_success_total", 1.0),
            ("kinesis_put_records_failed_records_total", 1.0),
            ("kinesis_put_records_throttled_records_total", 1.0),
            ("kinesis_write_provisioned_throughput_exceeded_total", 2.0),
            ("kinesis_get_records_bytes_total", 1000.0),
            ("kinesis_get_records_records_total", 10.0),
            ("kinesis_get_records_success_total", 1.0),
            ("kinesis_get_records_iterator_age_milliseconds", 1234.0),
            ("kinesis_read_provisioned_throughput_exceeded_total", 1.0),
        ];
        for (name, value) in expect {
            assert_eq!(
                line_value(&text, &format!("{name}{l} ")),
                Some(value),
                "{name} in\n{text}"
            );
        }
        assert!(text.contains("# TYPE kinesis_incoming_records_total counter"));
        assert!(text.contains("# TYPE kinesis_get_records_iterator_age_milliseconds gauge"));
    }

    #[test]
    fn convenience_methods_count_records_and_bytes() {
        let m = Metrics::new();
        m.record_put_record("s", "shardId-000000000000", 42);
        m.record_put_records("s", "shardId-000000000000", 2, 20, 0, 1);
        m.record_get_records("s", "shardId-000000000000", 3, 62, 0);
        let text = m.gather_text();
        let l = r#"{shard="shardId-000000000000",stream="s"} "#;
        assert_eq!(
            line_value(&text, &format!("kinesis_incoming_bytes_total{l}")),
            Some(62.0)
        );
        assert_eq!(
            line_value(&text, &format!("kinesis_incoming_records_total{l}")),
            Some(3.0)
        );
        assert_eq!(
            line_value(&text, &format!("kinesis_put_record_success_total{l}")),
            Some(1.0)
        );
        assert_eq!(
            line_value(&text, &format!("kinesis_put_records_success_total{l}")),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                &format!("kinesis_write_provisioned_throughput_exceeded_total{l}")
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(&text, &format!("kinesis_get_records_bytes_total{l}")),
            Some(62.0)
        );
    }

    #[test]
    fn handles_share_counters() {
        let m = Metrics::new();
        let a = m.shard("s", "shardId-000000000000");
        let b = m.shard("s", "shardId-000000000000");
        a.put_records(3, 30, 0, 0);
        b.put_records(2, 20, 0, 0);
        let text = m.gather_text();
        let l = r#"{shard="shardId-000000000000",stream="s"} "#;
        assert_eq!(
            line_value(&text, &format!("kinesis_incoming_records_total{l}")),
            Some(5.0)
        );
        assert_eq!(
            line_value(&text, &format!("kinesis_put_records_success_total{l}")),
            Some(2.0)
        );
        // Nothing throttled: the series exists at zero.
        assert_eq!(
            line_value(
                &text,
                &format!("kinesis_put_records_throttled_records_total{l}")
            ),
            Some(0.0)
        );
    }

    #[test]
    fn fan_out_counters_carry_consumer() {
        let m = Metrics::new();
        let c = m.consumer_shard("s", "shardId-000000000000", "app");
        c.subscribed();
        c.event_pushed(7, 700, 15);
        let text = m.gather_text();
        let l = r#"{consumer="app",shard="shardId-000000000000",stream="s"} "#;
        for (name, value) in [
            ("kinesis_subscribe_to_shard_success_total", 1.0),
            ("kinesis_subscribe_to_shard_event_bytes_total", 700.0),
            ("kinesis_subscribe_to_shard_event_records_total", 7.0),
            (
                "kinesis_subscribe_to_shard_event_millis_behind_latest",
                15.0,
            ),
        ] {
            assert_eq!(
                line_value(&text, &format!("{name}{l}")),
                Some(value),
                "{name}"
            );
        }
    }

    #[test]
    fn requests_and_connections() {
        let m = Metrics::new();
        m.observe_request("PutRecord", OUTCOME_SUCCESS, 0.002);
        m.observe_request(
            "PutRecord",
            "ProvisionedThroughputExceededException",
            0.0001,
        );
        {
            let _g = m.connection_guard();
            let _h = m.connection_guard();
            let text = m.gather_text();
            assert_eq!(line_value(&text, "kinesis_open_connections "), Some(2.0));
        }
        let text = m.gather_text();
        assert_eq!(line_value(&text, "kinesis_open_connections "), Some(0.0));
        assert_eq!(line_value(&text, "kinesis_connections_total "), Some(2.0));
        assert_eq!(
            line_value(
                &text,
                r#"kinesis_requests_total{operation="PutRecord",outcome="Success"} "#
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                r#"kinesis_requests_total{operation="PutRecord",outcome="ProvisionedThroughputExceededException"} "#
            ),
            Some(1.0)
        );
        assert_eq!(
            line_value(
                &text,
                r#"kinesis_request_duration_seconds_count{operation="PutRecord"} "#
            ),
            Some(2.0)
        );
        assert_eq!(
            line_value(
                &text,
                r#"kinesis_request_duration_seconds_bucket{operation="PutRecord",le="0.0005"} "#
            ),
            Some(1.0)
        );
        assert!(text.contains("# TYPE kinesis_request_duration_seconds histogram"));
    }

    #[test]
    fn forgotten_shards_disappear() {
        let m = Metrics::new();
        m.shard("gone", "shardId-000000000000")
            .put_record_succeeded(1);
        m.consumer_shard("gone", "shardId-000000000000", "app")
            .subscribed();
        m.shard("kept", "shardId-000000000000")
            .put_record_succeeded(1);
        m.forget_shard("gone", "shardId-000000000000");
        let text = m.gather_text();
        assert!(!text.contains(r#"stream="gone""#), "{text}");
        assert!(text.contains(r#"stream="kept""#));
        m.consumer_shard("kept", "shardId-000000000000", "app")
            .subscribed();
        m.forget_consumer_shard("kept", "shardId-000000000000", "app");
        assert!(!m.gather_text().contains(r#"consumer="app""#));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.shard("we\"ird", "shardId-000000000000")
            .put_record_succeeded(1);
        assert!(m.gather_text().contains(r#"stream="we\"ird""#));
    }
}
