//! Refused calls: why and for how long, and the service's errors for them.

use kinesis_proto::KinesisError;
use kinesis_proto::model::Operation;
use std::fmt;
use std::time::Duration;

/// Why a call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThrottleReason {
    /// Too many calls per second.
    CallRate,
    /// The shard's read bytes are in debt after a large read.
    ReadBytes,
}

/// A refused call, and how long until the same call would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Throttle {
    /// Which budget ran out.
    pub reason: ThrottleReason,
    /// Time until the budget allows the call again.
    pub retry_after: Duration,
}

impl fmt::Display for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            ThrottleReason::CallRate => "call rate exceeded",
            ThrottleReason::ReadBytes => "read throughput exceeded",
        };
        write!(f, "{what}; retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for Throttle {}

/// The service's text for a per-shard throttle, also used as a PutRecords
/// entry's `ErrorMessage`.
pub fn shard_throughput_message(shard_id: &str, stream: &str, account: &str) -> String {
    format!("Rate exceeded for shard {shard_id} in stream {stream} under account {account}.")
}

/// `ProvisionedThroughputExceededException` for a refused PutRecord, GetRecords or GetShardIterator.
pub fn shard_throughput_exceeded(shard_id: &str, stream: &str, account: &str) -> KinesisError {
    KinesisError::throughput_exceeded(shard_throughput_message(shard_id, stream, account))
}

/// `LimitExceededException` for a refused control-plane call; stream-scoped
/// limits name the stream as the service does.
pub fn control_plane_exceeded(
    operation: Operation,
    stream: Option<&str>,
    account: &str,
) -> KinesisError {
    let message = match stream {
        Some(stream) => format!("Rate exceeded for stream {stream} under account {account}."),
        None => format!(
            "Rate exceeded for operation {} under account {account}.",
            operation.name()
        ),
    };
    KinesisError::limit_exceeded(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis_proto::model::Operation;

    #[test]
    fn throttle_errors_have_service_shape() {
        let e = shard_throughput_exceeded("shardId-000000000000", "orders", "123456789012");
        assert_eq!(
            e.code,
            kinesis_proto::ErrorCode::ProvisionedThroughputExceeded
        );
        assert_eq!(
            e.message,
            "Rate exceeded for shard shardId-000000000000 in stream orders under account 123456789012."
        );
        let e = control_plane_exceeded(Operation::ListShards, Some("orders"), "1");
        assert_eq!(e.code, kinesis_proto::ErrorCode::LimitExceeded);
        assert_eq!(
            e.message,
            "Rate exceeded for stream orders under account 1."
        );
        let e = control_plane_exceeded(Operation::CreateStream, None, "1");
        assert!(e.message.contains("CreateStream"));
    }
}
