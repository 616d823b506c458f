//! Polling retrieval settings, mirroring KCL's `PollingConfig` (docs/kcl-behaviour.md §6).

use std::time::Duration;

use crate::error::Error;

/// The most records one GetRecords may ask for (the service's limit).
pub const MAX_RECORDS_LIMIT: u32 = kinesis_proto::limits::MAX_GET_RECORDS_LIMIT;

/// The shortest idle time between reads: Kinesis allows five GetRecords per second per shard.
pub const MIN_IDLE_TIME_BETWEEN_READS: Duration = Duration::from_millis(200);

/// How a shard is read with GetRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollingConfig {
    /// `maxRecords`: the `Limit` of each GetRecords, 1 … 10 000 (default 10 000).
    pub max_records: u32,
    /// `idleTimeBetweenReadsInMillis`: the least time between the starts of two
    /// GetRecords on one shard, at least 200 ms (default 1 500 ms).
    pub idle_time_between_reads: Duration,
    /// `maxPendingProcessRecordsInput`: fetched batches buffered ahead of the
    /// processor, at least 1 (default 4).
    pub max_pending_process_records_input: usize,
    /// Backoff after the first throttled (`ProvisionedThroughputExceeded`) or failed
    /// read; it doubles per consecutive failure (default 500 ms; not a KCL setting).
    pub retry_backoff_base: Duration,
    /// The longest backoff between failed reads (default 10 s; not a KCL setting).
    pub retry_backoff_cap: Duration,
}

impl Default for PollingConfig {
    fn default() -> Self {
        PollingConfig {
            max_records: MAX_RECORDS_LIMIT,
            idle_time_between_reads: Duration::from_millis(1_500),
            max_pending_process_records_input: 4,
            retry_backoff_base: Duration::from_millis(500),
            retry_backoff_cap: Duration::from_secs(10),
        }
    }
}

impl PollingConfig {
    /// Reject values Kinesis or the prefetcher cannot work with.
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=MAX_RECORDS_LIMIT).contains(&self.max_records) {
            return Err(Error::InvalidConfig(format!(
                "max_records must be between 1 and {MAX_RECORDS_LIMIT}, not {}",
                self.max_records
            )));
        }
        if self.idle_time_between_reads < MIN_IDLE_TIME_BETWEEN_READS {
            return Err(Error::InvalidConfig(format!(
                "idle_time_between_reads must be at least {MIN_IDLE_TIME_BETWEEN_READS:?} \
                 (Kinesis allows 5 GetRecords per second per shard), not {:?}",
                self.idle_time_between_reads
            )));
        }
        if self.max_pending_process_records_input == 0 {
            return Err(Error::InvalidConfig(
                "max_pending_process_records_input must be at least 1".into(),
            ));
        }
        if self.retry_backoff_base.is_zero() || self.retry_backoff_cap < self.retry_backoff_base {
            return Err(Error::InvalidConfig(
                "retry backoff must be positive with cap >= base".into(),
            ));
        }
        Ok(())
    }

    /// The wait after `failures` consecutive failed reads (1 = the first).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(20);
        self.retry_backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.retry_backoff_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_kcl() {
        let c = PollingConfig::default();
        assert_eq!(c.max_records, 10_000);
        assert_eq!(c.idle_time_between_reads, Duration::from_millis(1_500));
        assert_eq!(c.max_pending_process_records_input, 4);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn rejects_out_of_range_values() {
        for bad in [
            PollingConfig {
                max_records: 0,
                ..PollingConfig::default()
            },
            PollingConfig {
                max_records: 10_001,
                ..PollingConfig::default()
            },
            PollingConfig {
                idle_time_between_reads: Duration::from_millis(199),
                ..PollingConfig::default()
            },
            PollingConfig {
                max_pending_process_records_input: 0,
                ..PollingConfig::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidConfig(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = PollingConfig::default();
        assert_eq!(c.backoff(1), Duration::from_millis(500));
        assert_eq!(c.backoff(2), Duration::from_secs(1));
        assert_eq!(c.backoff(5), Duration::from_secs(8));
        assert_eq!(c.backoff(6), Duration::from_secs(10));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(10));
    }
}
