//! Producer settings. Each field names the KPL key it mirrors and keeps the KPL's default
//! (`docs/kpl-behaviour.md` §1); the memory budget, ordering and retry backoff have no KPL
//! equivalent and say so.

use crate::error::Error;
use kinesis_proto::client::{Credentials, CredentialsProvider};
use std::sync::Arc;
use std::time::Duration;

pub use kinesis_proto::limits::MAX_PARTITION_KEY_CHARS;
use kinesis_proto::limits::{MAX_PUT_RECORDS_BYTES, MAX_PUT_RECORDS_ENTRIES};

/// The largest Kinesis record the classic limits allow (data plus partition key).
pub const MAX_RECORD_SIZE: usize = kinesis_proto::limits::MAX_RECORD_BYTES;
/// The largest record size newer streams can be configured for (`MaxRecordSizeInKiB`).
pub const MAX_LARGE_RECORD_SIZE: usize = kinesis_proto::limits::MAX_LARGE_RECORD_BYTES;
/// Kinesis's own per-shard write limit in records per second (RateLimit's 100 %).
pub const SHARD_RECORDS_PER_SEC: f64 = kinesis_proto::limits::SHARD_WRITE_RECORDS_PER_SEC;
/// Kinesis's own per-shard write limit in bytes per second (RateLimit's 100 %).
pub const SHARD_BYTES_PER_SEC: f64 = kinesis_proto::limits::SHARD_WRITE_BYTES_PER_SEC;

/// Whether retries may reorder the records of one partition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Ordering {
    /// The KPL's behaviour: failed records are retried while later ones go on, so per-key
    /// order is best effort (within about 2 × `RecordMaxBufferedTime` absent retries).
    #[default]
    BestEffort,
    /// Retries never reorder records of one partition key: each shard has at most one
    /// Kinesis record in flight, and a failed one is resent before anything later.
    /// Costs throughput when aggregation is off (one record per shard per round trip).
    PerPartitionKey,
}

/// Settings of a [`Producer`](crate::Producer); build with [`Config::builder`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// `http://` or `https://` URL of Kinesis. KPL `KinesisEndpoint` + `KinesisPort` (which take
    /// a host name and always use TLS). Default `None`: `https://kinesis.{region}.amazonaws.com`.
    pub endpoint: Option<String>,
    /// Signing region. KPL `Region`. Default `us-east-1`.
    pub region: String,
    /// Fixed signing credentials. KPL's credentials provider. Default `None`: those of
    /// `credentials_provider`, else the standard AWS chain for an AWS endpoint and the SigV4
    /// test keys (fine for the broker and emulators) for any other.
    pub credentials: Option<Credentials>,
    /// Where credentials come from when `credentials` is unset (refreshed before they expire).
    /// KPL's credentials provider. Default `None`: the standard AWS chain for an AWS endpoint,
    /// the SigV4 test keys for any other.
    pub credentials_provider: Option<Arc<dyn CredentialsProvider>>,
    /// Extra trust anchors (PEM) added to the built-in roots, e.g. a test broker's self-signed
    /// certificate. No KPL equivalent. Default none.
    pub custom_ca: Option<Vec<u8>>,
    /// Pack user records into KPL aggregated records. KPL `AggregationEnabled`. Default true.
    pub aggregation_enabled: bool,
    /// Largest number of user records per aggregated record. KPL `AggregationMaxCount`.
    /// Default 4 294 967 295.
    pub aggregation_max_count: u64,
    /// Largest aggregated record in bytes; a user record too large to be aggregated within it is
    /// sent on its own. KPL `AggregationMaxSize`. Default 51 200; range 64 … 10 MiB.
    pub aggregation_max_size: usize,
    /// Largest number of Kinesis records per PutRecords. KPL `CollectionMaxCount`. Default 500.
    pub collection_max_count: usize,
    /// Largest PutRecords in bytes (data plus partition keys). KPL `CollectionMaxSize`.
    /// Default 5 MiB; at least 52 224.
    pub collection_max_size: usize,
    /// Longest time a user record waits in buffers before it is sent. KPL
    /// `RecordMaxBufferedTime`. Default 100 ms.
    pub record_max_buffered_time: Duration,
    /// A user record not put within this time after `put` fails with `Expired`. KPL
    /// `RecordTtl`. Default 30 s; at least 100 ms.
    pub record_ttl: Duration,
    /// Per-shard client-side rate limit in percent of Kinesis's 1000 records/s and 1 MiB/s.
    /// KPL `RateLimit`. Default 150 (lets one producer saturate a shard). With
    /// [`adaptive_rate`](Self::adaptive_rate) it is the ceiling the adaptation stays under.
    pub rate_limit: u64,
    /// Adapt each shard's rate to what the shard accepts: start at its limit, climb while
    /// saturated and unthrottled, back off on throttles (docs/kpl-rate.md). No KPL
    /// equivalent (the KPL sends at a fixed `RateLimit`). Default true; false sends at
    /// `rate_limit` as the KPL does.
    pub adaptive_rate: bool,
    /// Fail a record at once on `ProvisionedThroughputExceededException` instead of retrying.
    /// KPL `FailIfThrottled`. Default false.
    pub fail_if_throttled: bool,
    /// Most PutRecords requests in flight (and HTTP connections kept). KPL `MaxConnections`.
    /// Default 24; range 1 … 256.
    pub max_connections: usize,
    /// Limit on one HTTP request; a timed-out request may have been stored (possible
    /// duplicates). KPL `RequestTimeout`. Default 6 s; range 100 ms … 600 s.
    pub request_timeout: Duration,
    /// Limit on opening a connection. KPL `ConnectTimeout`. Default 6 s.
    pub connect_timeout: Duration,
    /// Largest accepted user record: data plus partition key, as Kinesis counts it. KPL
    /// `MaxUserRecordSize` (which counts data only). Default 1 MiB; range 64 … 10 MiB.
    pub max_user_record_size: usize,
    /// Memory budget: bytes of user records (data, partition key, explicit hash key) buffered or
    /// in flight. `put` waits for room; `try_put` refuses. No KPL equivalent (the KPL's memory is
    /// unbounded). Default 128 MiB; at least `max_user_record_size + 300`.
    pub max_buffered_bytes: usize,
    /// Memory budget: user records buffered or in flight. No KPL equivalent. Default 1 000 000.
    pub max_buffered_records: usize,
    /// Ordering of retries. No KPL equivalent (the KPL is always best effort). Default
    /// [`Ordering::BestEffort`].
    pub ordering: Ordering,
    /// Ceiling of the first retry's random delay; doubles per retry. The KPL instead retries
    /// after `RecordMaxBufferedTime / 2`. Default 100 ms.
    pub retry_backoff_base: Duration,
    /// Upper bound of any retry delay. No KPL equivalent. Default 5 s.
    pub retry_backoff_cap: Duration,
    /// Most failed records kept for [`ShutdownReport`](crate::ShutdownReport) among those
    /// whose handle was dropped before they failed. No KPL equivalent. Default 100 000.
    pub max_reported_failures: usize,
    /// Seed of the retry jitter, for reproducible runs. Default `None`: from the OS.
    pub seed: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            endpoint: None,
            region: "us-east-1".to_string(),
            credentials: None,
            credentials_provider: None,
            custom_ca: None,
            aggregation_enabled: true,
            aggregation_max_count: 4_294_967_295,
            aggregation_max_size: 51_200,
            collection_max_count: MAX_PUT_RECORDS_ENTRIES,
            collection_max_size: MAX_PUT_RECORDS_BYTES,
            record_max_buffered_time: Duration::from_millis(100),
            record_ttl: Duration::from_secs(30),
            rate_limit: 150,
            adaptive_rate: true,
            fail_if_throttled: false,
            max_connections: 24,
            request_timeout: Duration::from_secs(6),
            connect_timeout: Duration::from_secs(6),
            max_user_record_size: MAX_RECORD_SIZE,
            max_buffered_bytes: 128 * 1024 * 1024,
            max_buffered_records: 1_000_000,
            ordering: Ordering::BestEffort,
            retry_backoff_base: Duration::from_millis(100),
            retry_backoff_cap: Duration::from_secs(5),
            max_reported_failures: 100_000,
            seed: None,
        }
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
        }
    }

    /// Checks every setting against the KPL's ranges (plus our own budget rules).
    pub fn validate(&self) -> Result<(), Error> {
        fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), Error> {
            if ok {
                Ok(())
            } else {
                Err(Error::Config(msg()))
            }
        }
        let ms = Duration::from_millis;
        check(self.aggregation_max_count >= 1, || {
            "aggregation_max_count must be at least 1".into()
        })?;
        check(
            (64..=MAX_LARGE_RECORD_SIZE).contains(&self.aggregation_max_size),
            || {
                format!(
                    "aggregation_max_size must be in 64..={MAX_LARGE_RECORD_SIZE}, got {}",
                    self.aggregation_max_size
                )
            },
        )?;
        check(
            (1..=MAX_PUT_RECORDS_ENTRIES).contains(&self.collection_max_count),
            || {
                format!(
                    "collection_max_count must be in 1..={MAX_PUT_RECORDS_ENTRIES}, got {}",
                    self.collection_max_count
                )
            },
        )?;
        check(self.collection_max_size >= 52_224, || {
            format!(
                "collection_max_size must be at least 52224, got {}",
                self.collection_max_size
            )
        })?;
        check(self.record_ttl >= ms(100), || {
            "record_ttl must be at least 100 ms".into()
        })?;
        check(self.rate_limit >= 1, || {
            "rate_limit must be at least 1 %".into()
        })?;
        check((1..=256).contains(&self.max_connections), || {
            format!(
                "max_connections must be in 1..=256, got {}",
                self.max_connections
            )
        })?;
        check(
            (ms(100)..=Duration::from_secs(600)).contains(&self.request_timeout),
            || "request_timeout must be between 100 ms and 600 s".into(),
        )?;
        check(!self.connect_timeout.is_zero(), || {
            "connect_timeout must be positive".into()
        })?;
        check(
            (64..=MAX_LARGE_RECORD_SIZE).contains(&self.max_user_record_size),
            || {
                format!(
                    "max_user_record_size must be in 64..={MAX_LARGE_RECORD_SIZE}, got {}",
                    self.max_user_record_size
                )
            },
        )?;
        check(self.max_buffered_records >= 1, || {
            "max_buffered_records must be at least 1".into()
        })?;
        // A record's budget cost also counts its explicit hash key (≤ 39 bytes); the largest
        // admissible record must fit into an empty budget, or `put` would wait forever.
        check(
            self.max_buffered_bytes >= self.max_user_record_size + 64,
            || {
                format!(
                    "max_buffered_bytes ({}) must exceed max_user_record_size ({}) by at least 64",
                    self.max_buffered_bytes, self.max_user_record_size
                )
            },
        )?;
        check(
            !self.retry_backoff_base.is_zero() && self.retry_backoff_cap >= self.retry_backoff_base,
            || "retry_backoff_base must be positive and at most retry_backoff_cap".into(),
        )?;
        check(!self.region.is_empty(), || {
            "region must not be empty".into()
        })?;
        Ok(())
    }

    /// How much later than its records' deadline a Kinesis record may leave the collector, so
    /// that requests fill up: `min(50 ms, RecordMaxBufferedTime / 5)` with aggregation (KPL).
    pub(crate) fn collection_extension(&self) -> Duration {
        if self.aggregation_enabled {
            (self.record_max_buffered_time / 5).min(Duration::from_millis(50))
        } else {
            Duration::ZERO
        }
    }
}

/// Builder of a [`Config`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Set [`Config::endpoint`].
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.endpoint = Some(endpoint.into());
        self
    }

    /// Set [`Config::region`].
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = region.into();
        self
    }

    /// Set [`Config::credentials_provider`].
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.config.credentials_provider = Some(Arc::new(provider));
        self
    }

    /// Set [`Config::custom_ca`].
    pub fn custom_ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config.custom_ca = Some(pem.into());
        self
    }

    /// Set [`Config::credentials`].
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.config.credentials = Some(credentials);
        self
    }

    /// Set [`Config::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = Some(seed);
        self
    }

    kinesis_proto::config_setters! {
        /// Set [`Config::aggregation_enabled`].
        aggregation_enabled: bool;
        /// Set [`Config::aggregation_max_count`].
        aggregation_max_count: u64;
        /// Set [`Config::aggregation_max_size`].
        aggregation_max_size: usize;
        /// Set [`Config::collection_max_count`].
        collection_max_count: usize;
        /// Set [`Config::collection_max_size`].
        collection_max_size: usize;
        /// Set [`Config::record_max_buffered_time`].
        record_max_buffered_time: Duration;
        /// Set [`Config::record_ttl`].
        record_ttl: Duration;
        /// Set [`Config::rate_limit`].
        rate_limit: u64;
        /// Set [`Config::adaptive_rate`].
        adaptive_rate: bool;
        /// Set [`Config::fail_if_throttled`].
        fail_if_throttled: bool;
        /// Set [`Config::max_connections`].
        max_connections: usize;
        /// Set [`Config::request_timeout`].
        request_timeout: Duration;
        /// Set [`Config::connect_timeout`].
        connect_timeout: Duration;
        /// Set [`Config::max_user_record_size`].
        max_user_record_size: usize;
        /// Set [`Config::max_buffered_bytes`].
        max_buffered_bytes: usize;
        /// Set [`Config::max_buffered_records`].
        max_buffered_records: usize;
        /// Set [`Config::ordering`].
        ordering: Ordering;
        /// Set [`Config::max_reported_failures`].
        max_reported_failures: usize;
    }

    /// Set [`Config::retry_backoff_base`] and [`Config::retry_backoff_cap`].
    pub fn retry_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.retry_backoff_base = base;
        self.config.retry_backoff_cap = cap;
        self
    }

    /// The finished config (validated by [`Producer::new`](crate::Producer::new)).
    pub fn build(self) -> Config {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_kpl_defaults() {
        let c = Config::default();
        assert!(c.aggregation_enabled);
        assert_eq!(c.aggregation_max_count, 4_294_967_295);
        assert_eq!(c.aggregation_max_size, 51_200);
        assert_eq!(c.collection_max_count, 500);
        assert_eq!(c.collection_max_size, 5_242_880);
        assert_eq!(c.record_max_buffered_time, Duration::from_millis(100));
        assert_eq!(c.record_ttl, Duration::from_secs(30));
        assert_eq!(c.rate_limit, 150);
        assert!(!c.fail_if_throttled);
        assert_eq!(c.max_connections, 24);
        assert_eq!(c.request_timeout, Duration::from_secs(6));
        assert_eq!(c.max_user_record_size, 1_048_576);
        assert_eq!(c.ordering, Ordering::BestEffort);
        c.validate().unwrap();
        assert_eq!(c.collection_extension(), Duration::from_millis(20));
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let bad = [
            Config::builder().aggregation_max_size(63).build(),
            Config::builder().collection_max_count(501).build(),
            Config::builder().collection_max_count(0).build(),
            Config::builder().collection_max_size(1000).build(),
            Config::builder()
                .record_ttl(Duration::from_millis(99))
                .build(),
            Config::builder().rate_limit(0).build(),
            Config::builder().max_connections(0).build(),
            Config::builder().max_connections(257).build(),
            Config::builder()
                .request_timeout(Duration::from_millis(10))
                .build(),
            Config::builder().max_user_record_size(10).build(),
            Config::builder().max_buffered_bytes(1000).build(),
            Config::builder().max_buffered_records(0).build(),
            Config::builder()
                .retry_backoff(Duration::ZERO, Duration::from_secs(1))
                .build(),
            Config::builder().region("").build(),
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(Error::Config(_))), "{c:?}");
        }
    }
}
