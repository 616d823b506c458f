//! The scheduler's settings, with KCL's names and defaults (docs/kcl-behaviour.md): what
//! `ConfigsBuilder`, `LeaseManagementConfig`, `CoordinatorConfig`,
//! `ProcessorConfig` and `PollingConfig` hold between them.

use std::time::Duration;

use kinesis_proto::codec::Timestamp;

use crate::error::Error;
use crate::extended_sequence::ExtendedSequenceNumber;
use crate::lease_config::LeaseConfig;
use crate::polling_config::PollingConfig;

/// Where processing starts in a shard that has no checkpoint yet
/// (KCL `InitialPositionInStreamExtended`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialPositionInStream {
    /// `LATEST`: only records put after the lease is first read (KCL's default).
    #[default]
    Latest,
    /// `TRIM_HORIZON`: the oldest record still retained.
    TrimHorizon,
    /// `AT_TIMESTAMP`: the first record at or after this time.
    AtTimestamp(Timestamp),
}

impl InitialPositionInStream {
    /// The checkpoint sentinel a new lease starts with.
    pub fn checkpoint(&self) -> ExtendedSequenceNumber {
        match self {
            InitialPositionInStream::Latest => ExtendedSequenceNumber::Latest,
            InitialPositionInStream::TrimHorizon => ExtendedSequenceNumber::TrimHorizon,
            InitialPositionInStream::AtTimestamp(_) => ExtendedSequenceNumber::AtTimestamp,
        }
    }

    /// The timestamp of `AT_TIMESTAMP`, if that is the position.
    pub fn timestamp(&self) -> Option<Timestamp> {
        match self {
            InitialPositionInStream::AtTimestamp(t) => Some(*t),
            _ => None,
        }
    }
}

/// How shards are read (KCL `RetrievalConfig.retrievalSpecificConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Retrieval {
    /// `PollingConfig`: GetRecords, with the settings in [`Config::polling`] (the default).
    #[default]
    Polling,
    /// `FanOutConfig`: enhanced fan-out with SubscribeToShard as the consumer
    /// `consumer_name` (`consumerName`), registered if needed. Backoffs use
    /// [`Config::polling`]'s retry settings.
    FanOut {
        /// The stream consumer's name.
        consumer_name: String,
    },
}

/// Which lease protocol the workers speak (KCL 3.x `CoordinatorConfig.clientVersionConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coordination {
    /// `CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X`: leases are taken and stolen; a
    /// stolen lease is simply lost by its owner, which reprocesses what followed its
    /// last checkpoint.
    Kcl2,
    /// `CLIENT_VERSION_CONFIG_3X` (the default): an elected leader moves leases by
    /// graceful hand-off, the owner checkpointing before it passes the lease on
    /// (docs/kcl3-coordination.md).
    #[default]
    Kcl3,
}

/// Everything a [`Scheduler`](crate::scheduler::Scheduler) needs to know besides its
/// clients; build one with [`Config::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `streamName`: the stream to consume.
    pub stream_name: String,
    /// `applicationName`: names the lease table; workers with the same name share the shards.
    pub application_name: String,
    /// `workerIdentifier`: unique per worker (default `worker-` and 16 random hex digits,
    /// where KCL uses a random UUID).
    pub worker_identifier: String,
    /// `initialPositionInStreamExtended` (default `LATEST`).
    pub initial_position_in_stream: InitialPositionInStream,
    /// `LeaseManagementConfig`: failover time, epsilon, lease limits (KCL defaults).
    pub lease: LeaseConfig,
    /// How often the lease taker runs. Default `None`: KCL's
    /// `(failoverTimeMillis + epsilonMillis) × 2`. Not a KCL setting; shorten it to
    /// pick up released or new leases sooner without shortening the failover time.
    pub lease_taker_interval: Option<Duration>,
    /// `shardSyncIntervalMillis`: how often shards are listed and leases created (default 60 s).
    pub shard_sync_interval: Duration,
    /// `parentShardPollIntervalMillis`: how often a child re-checks that its parents
    /// reached `SHARD_END` (default 10 s).
    pub parent_shard_poll_interval: Duration,
    /// `shardConsumerDispatchPollIntervalMillis`: how often held leases are matched with
    /// shard consumers when nothing signalled a change (default 1 s).
    pub shard_consumer_dispatch_poll_interval: Duration,
    /// `cleanupLeasesUponShardCompletion`: delete a finished parent's lease once
    /// its children have started (default true).
    pub cleanup_leases_upon_shard_completion: bool,
    /// `listShardsBackoffTimeInMillis`: wait between failed ListShards (default 1 500 ms).
    pub list_shards_backoff_time: Duration,
    /// `maxListShardsRetryAttempts`: attempts at the start-up shard sync (default 50).
    pub max_list_shards_retry_attempts: u32,
    /// `callProcessRecordsEvenForEmptyRecordList` (default false).
    pub call_process_records_even_for_empty_record_list: bool,
    /// `PollingConfig`: how shards are read when polling; its retry backoff also
    /// paces fan-out re-subscriptions.
    pub polling: PollingConfig,
    /// Polling (default) or enhanced fan-out.
    pub retrieval: Retrieval,
    /// `clientVersionConfig`: the lease protocol (default [`Coordination::Kcl3`]).
    pub coordination: Coordination,
}

impl Config {
    /// A builder for consuming `stream_name` as application `application_name`, with KCL defaults.
    pub fn builder(
        stream_name: impl Into<String>,
        application_name: impl Into<String>,
    ) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                stream_name: stream_name.into(),
                application_name: application_name.into(),
                worker_identifier: format!("worker-{:016x}", rand::random::<u64>()),
                initial_position_in_stream: InitialPositionInStream::default(),
                lease: LeaseConfig::default(),
                lease_taker_interval: None,
                shard_sync_interval: Duration::from_secs(60),
                parent_shard_poll_interval: Duration::from_secs(10),
                shard_consumer_dispatch_poll_interval: Duration::from_secs(1),
                cleanup_leases_upon_shard_completion: true,
                list_shards_backoff_time: Duration::from_millis(1_500),
                max_list_shards_retry_attempts: 50,
                call_process_records_even_for_empty_record_list: false,
                polling: PollingConfig::default(),
                retrieval: Retrieval::Polling,
                coordination: Coordination::default(),
            },
        }
    }

    /// The lease taker's period in effect.
    pub fn effective_lease_taker_interval(&self) -> Duration {
        self.lease_taker_interval
            .unwrap_or_else(|| self.lease.taker_interval())
    }

    /// Reject settings that cannot work.
    pub fn validate(&self) -> Result<(), Error> {
        if self.stream_name.is_empty() {
            return Err(Error::InvalidConfig("the stream name is empty".into()));
        }
        if self.application_name.is_empty() {
            return Err(Error::InvalidConfig("the application name is empty".into()));
        }
        if self.worker_identifier.is_empty() {
            return Err(Error::InvalidConfig(
                "the worker identifier is empty".into(),
            ));
        }
        self.lease.validate()?;
        self.polling.validate()?;
        if let Retrieval::FanOut { consumer_name } = &self.retrieval
            && (consumer_name.is_empty() || consumer_name.len() > 128)
        {
            return Err(Error::InvalidConfig(
                "the fan-out consumer name must have 1 to 128 characters".into(),
            ));
        }
        for (name, d) in [
            (
                "lease_taker_interval",
                self.effective_lease_taker_interval(),
            ),
            ("shard_sync_interval", self.shard_sync_interval),
            (
                "parent_shard_poll_interval",
                self.parent_shard_poll_interval,
            ),
            (
                "shard_consumer_dispatch_poll_interval",
                self.shard_consumer_dispatch_poll_interval,
            ),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidConfig(format!("{name} must be positive")));
            }
        }
        if self.max_list_shards_retry_attempts == 0 {
            return Err(Error::InvalidConfig(
                "max_list_shards_retry_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Builder of a [`Config`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    kinesis_proto::config_setters! {
        /// Set [`Config::initial_position_in_stream`].
        initial_position_in_stream: InitialPositionInStream;
        /// Set [`Config::lease`].
        lease: LeaseConfig;
        /// Set [`Config::shard_sync_interval`].
        shard_sync_interval: Duration;
        /// Set [`Config::parent_shard_poll_interval`].
        parent_shard_poll_interval: Duration;
        /// Set [`Config::shard_consumer_dispatch_poll_interval`].
        shard_consumer_dispatch_poll_interval: Duration;
        /// Set [`Config::cleanup_leases_upon_shard_completion`].
        cleanup_leases_upon_shard_completion: bool;
        /// Set [`Config::list_shards_backoff_time`].
        list_shards_backoff_time: Duration;
        /// Set [`Config::max_list_shards_retry_attempts`].
        max_list_shards_retry_attempts: u32;
        /// Set [`Config::call_process_records_even_for_empty_record_list`].
        call_process_records_even_for_empty_record_list: bool;
        /// Set [`Config::polling`].
        polling: PollingConfig;
        /// Set [`Config::retrieval`].
        retrieval: Retrieval;
        /// Set [`Config::coordination`].
        coordination: Coordination;
        /// Set `failoverTimeMillis` ([`LeaseConfig::failover_time`]).
        failover_time(failover: Duration) => lease.failover_time;
        /// Set `maxLeasesForWorker` ([`LeaseConfig::max_leases_for_worker`]).
        max_leases_for_worker(n: usize) => lease.max_leases_for_worker;
        /// Set `maxLeasesToStealAtOneTime` ([`LeaseConfig::max_leases_to_steal_at_one_time`]).
        max_leases_to_steal_at_one_time(n: usize) => lease.max_leases_to_steal_at_one_time;
        /// Set `gracefulLeaseHandoffTimeoutMillis` ([`LeaseConfig::graceful_lease_handoff_timeout`]).
        graceful_lease_handoff_timeout(timeout: Duration) => lease.graceful_lease_handoff_timeout;
        /// Set `workerMetricsReporterFreqInMillis` ([`LeaseConfig::worker_metrics_reporter_interval`]).
        worker_metrics_reporter_interval(interval: Duration) => lease.worker_metrics_reporter_interval;
        /// Set `maxRecords` ([`PollingConfig::max_records`]).
        max_records(n: u32) => polling.max_records;
        /// Set `idleTimeBetweenReadsInMillis` ([`PollingConfig::idle_time_between_reads`]).
        idle_time_between_reads(idle: Duration) => polling.idle_time_between_reads;
    }

    /// Read with enhanced fan-out as consumer `consumer_name` ([`Retrieval::FanOut`]).
    pub fn fan_out(mut self, consumer_name: impl Into<String>) -> Self {
        self.config.retrieval = Retrieval::FanOut {
            consumer_name: consumer_name.into(),
        };
        self
    }

    /// Set [`Config::worker_identifier`].
    pub fn worker_identifier(mut self, id: impl Into<String>) -> Self {
        self.config.worker_identifier = id.into();
        self
    }

    /// Set [`Config::lease_taker_interval`].
    pub fn lease_taker_interval(mut self, interval: Duration) -> Self {
        self.config.lease_taker_interval = Some(interval);
        self
    }

    /// Set `dynamoDbLockBasedLeaderLeaseDurationInMillis` and
    /// `dynamoDbLockBasedLeaderHeartbeatPeriodInMillis` ([`LeaseConfig::leader_lease_duration`],
    /// [`LeaseConfig::leader_heartbeat_period`]).
    pub fn leader_lock(mut self, lease_duration: Duration, heartbeat_period: Duration) -> Self {
        self.config.lease.leader_lease_duration = lease_duration;
        self.config.lease.leader_heartbeat_period = heartbeat_period;
        self
    }

    /// The configuration, validated.
    pub fn build(self) -> Result<Config, Error> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kcl() {
        let c = Config::builder("s", "app").build().expect("valid");
        assert_eq!(
            c.initial_position_in_stream,
            InitialPositionInStream::Latest
        );
        assert_eq!(c.shard_sync_interval, Duration::from_secs(60));
        assert_eq!(c.parent_shard_poll_interval, Duration::from_secs(10));
        assert_eq!(
            c.shard_consumer_dispatch_poll_interval,
            Duration::from_secs(1)
        );
        assert_eq!(c.list_shards_backoff_time, Duration::from_millis(1_500));
        assert_eq!(c.max_list_shards_retry_attempts, 50);
        assert!(c.cleanup_leases_upon_shard_completion);
        assert!(!c.call_process_records_even_for_empty_record_list);
        assert_eq!(c.coordination, Coordination::Kcl3);
        assert_eq!(
            c.effective_lease_taker_interval(),
            Duration::from_millis(20_050)
        );
        assert!(c.worker_identifier.starts_with("worker-"));
        assert_ne!(
            c.worker_identifier,
            Config::builder("s", "app")
                .build()
                .expect("valid")
                .worker_identifier
        );
    }

    #[test]
    fn builder_sets_and_validates() {
        let c = Config::builder("s", "app")
            .worker_identifier("w1")
            .failover_time(Duration::from_secs(2))
            .lease_taker_interval(Duration::from_millis(300))
            .idle_time_between_reads(Duration::from_millis(200))
            .initial_position_in_stream(InitialPositionInStream::TrimHorizon)
            .build()
            .expect("valid");
        assert_eq!(c.worker_identifier, "w1");
        assert_eq!(c.lease.failover_time, Duration::from_secs(2));
        assert_eq!(
            c.effective_lease_taker_interval(),
            Duration::from_millis(300)
        );
        assert_eq!(
            c.initial_position_in_stream.checkpoint(),
            ExtendedSequenceNumber::TrimHorizon
        );
        assert!(Config::builder("", "app").build().is_err());
        assert!(Config::builder("s", "").build().is_err());
        assert!(
            Config::builder("s", "a")
                .worker_identifier("")
                .build()
                .is_err()
        );
        assert!(Config::builder("s", "a").max_records(0).build().is_err());
        assert!(Config::builder("s", "a").fan_out("").build().is_err());
        assert_eq!(
            Config::builder("s", "a")
                .fan_out("c")
                .build()
                .expect("valid")
                .retrieval,
            Retrieval::FanOut {
                consumer_name: "c".into()
            }
        );
        assert_eq!(
            Config::builder("s", "a").build().expect("valid").retrieval,
            Retrieval::Polling
        );
        assert!(
            Config::builder("s", "a")
                .shard_sync_interval(Duration::ZERO)
                .build()
                .is_err()
        );
    }

    #[test]
    fn at_timestamp_carries_its_time() {
        let p = InitialPositionInStream::AtTimestamp(Timestamp::from_millis(5));
        assert_eq!(p.checkpoint(), ExtendedSequenceNumber::AtTimestamp);
        assert_eq!(p.timestamp(), Some(Timestamp::from_millis(5)));
        assert_eq!(InitialPositionInStream::Latest.timestamp(), None);
    }
}
