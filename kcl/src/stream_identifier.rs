//! A stream of a multi-stream application, as the KCL names it in lease keys
//! (docs/kcl3-coordination.md, "Multi-stream"): `account:stream:creationEpoch`, and
//! leases keyed `account:stream:creationEpoch:shardId`.

use std::fmt;

use crate::error::Error;

/// One stream: its owner's account id, its name, and its creation time in epoch seconds
/// (so that a stream deleted and created again under the same name is a new stream).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamIdentifier {
    /// The 12-digit AWS account id (any digits).
    pub account_id: String,
    /// The stream name.
    pub stream_name: String,
    /// Creation time, seconds since the Unix epoch.
    pub creation_epoch: u64,
}

impl StreamIdentifier {
    /// Parse `account:stream:creationEpoch`.
    pub fn parse(serialized: &str) -> Result<Self, Error> {
        let bad = || {
            Error::InvalidConfig(format!(
                "{serialized:?} is not a stream identifier (account:stream:creationEpoch)"
            ))
        };
        let mut parts = serialized.split(':');
        let (Some(account), Some(name), Some(epoch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if account.is_empty() || !account.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
            return Err(bad());
        }
        if !epoch.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(StreamIdentifier {
            account_id: account.to_string(),
            stream_name: name.to_string(),
            creation_epoch: epoch.parse().map_err(|_| bad())?,
        })
    }

    /// From a stream ARN (`arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME`) and its
    /// creation time in epoch seconds.
    pub fn from_arn(arn: &str, creation_epoch: u64) -> Result<Self, Error> {
        let bad = || Error::InvalidConfig(format!("{arn:?} is not a Kinesis stream ARN"));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, service, _, account, resource] = parts[..] else {
            return Err(bad());
        };
        let name = resource.strip_prefix("stream/").ok_or_else(bad)?;
        if service != "kinesis" {
            return Err(bad());
        }
        Self::parse(&format!("{account}:{name}:{creation_epoch}"))
    }

    /// The lease key of `shard_id` in a multi-stream application.
    pub fn lease_key(&self, shard_id: &str) -> String {
        format!("{self}:{shard_id}")
    }

    /// The prefix every lease key of this stream starts with.
    pub fn lease_key_prefix(&self) -> String {
        format!("{self}:")
    }

    /// Split a multi-stream lease key into its stream and shard id.
    pub fn split_lease_key(lease_key: &str) -> Option<(StreamIdentifier, &str)> {
        let (stream, shard) = lease_key.rsplit_once(':')?;
        if shard.is_empty() {
            return None;
        }
        Some((Self::parse(stream).ok()?, shard))
    }
}

impl fmt::Display for StreamIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.account_id, self.stream_name, self.creation_epoch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_and_parses_as_the_kcl_writes_it() {
        let id = StreamIdentifier::parse("123456789012:orders:1700000000").expect("valid");
        assert_eq!(id.stream_name, "orders");
        assert_eq!(id.creation_epoch, 1_700_000_000);
        assert_eq!(id.to_string(), "123456789012:orders:1700000000");
        let key = id.lease_key("shardId-000000000003");
        assert_eq!(key, "123456789012:orders:1700000000:shardId-000000000003");
        assert!(key.starts_with(&id.lease_key_prefix()));
        assert_eq!(
            StreamIdentifier::split_lease_key(&key),
            Some((id, "shardId-000000000003"))
        );
    }

    #[test]
    fn from_an_arn() {
        let id = StreamIdentifier::from_arn(
            "arn:aws:kinesis:eu-west-1:000000000000:stream/my-stream",
            42,
        )
        .expect("valid");
        assert_eq!(id.to_string(), "000000000000:my-stream:42");
        assert!(StreamIdentifier::from_arn("arn:aws:sqs:eu-west-1:0:queue/x", 1).is_err());
        assert!(StreamIdentifier::from_arn("nonsense", 1).is_err());
    }

    #[test]
    fn rejects_malformed_identifiers_and_single_stream_keys() {
        for bad in ["", "a:b:1", "1::1", "1:b", "1:b:x", "1:b:1:extra"] {
            assert!(StreamIdentifier::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            StreamIdentifier::split_lease_key("shardId-000000000000"),
            None
        );
        assert_eq!(StreamIdentifier::split_lease_key("1:s:2:"), None);
    }
}
