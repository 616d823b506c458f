//! What a call can fail with, and how the failure bears on retrying.

use crate::error::{ErrorCode, KinesisError};
use std::time::Duration;

/// Why a [`Client`](super::Client) call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The service answered with a Kinesis error (`__type` in the body or `x-amzn-ErrorType`).
    #[error("{0}")]
    Service(#[from] KinesisError),
    /// A non-success status whose body named no error (e.g. a proxy's 502 page).
    #[error("HTTP {status} without a Kinesis error body: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the body, lossily decoded as UTF-8.
        body: String,
    },
    /// The attempt did not complete in time; the request may or may not have been applied.
    #[error("request timed out after {after:?}")]
    Timeout {
        /// The configured request timeout.
        after: Duration,
    },
    /// No connection could be established; the request was not sent.
    #[error("connect error: {0}")]
    Connect(String),
    /// The connection failed after the request started (reset, closed
    /// mid-response, protocol error): the request may or may not have been applied.
    #[error("transport error: {0}")]
    Transport(String),
    /// A success response whose body could not be decoded (so it was applied).
    #[error("cannot decode response: {0}")]
    Decode(String),
    /// The client configuration or a request header value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No credentials were found: the provider (or every provider of a chain)
    /// had none configured. A chain moves on to its next provider.
    #[error("{0}")]
    NoCredentials(String),
    /// A credentials provider is configured but failed (unreadable file,
    /// a metadata service or STS refused); the request was not sent.
    #[error("cannot load credentials: {0}")]
    Credentials(String),
}

impl ClientError {
    /// The Kinesis error code, for service errors.
    pub fn code(&self) -> Option<ErrorCode> {
        self.service_error().map(|e| e.code)
    }

    /// The Kinesis error, for service errors.
    pub fn service_error(&self) -> Option<&KinesisError> {
        match self {
            ClientError::Service(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the error has this Kinesis error code.
    pub fn is_code(&self, code: ErrorCode) -> bool {
        self.code() == Some(code)
    }

    /// The HTTP status, when the service answered with a non-success status
    /// whose body named no error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ClientError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the AWS SDKs' standard retry mode would retry this error:
    /// throttling and transient service errors, 5xx and 429 statuses,
    /// timeouts, connect and transport errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Service(e) => e.code.is_retryable(),
            ClientError::Http { status, .. } => *status >= 500 || *status == 429,
            ClientError::Timeout { .. } | ClientError::Connect(_) | ClientError::Transport(_) => {
                true
            }
            ClientError::Decode(_)
            | ClientError::Config(_)
            | ClientError::NoCredentials(_)
            | ClientError::Credentials(_) => false,
        }
    }

    /// Whether the error means "slow down" (throughput or rate limits, HTTP 429).
    pub fn is_throttling(&self) -> bool {
        match self {
            ClientError::Service(e) => e.code.is_throttling(),
            ClientError::Http { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// Whether the service may have applied the request despite the error, so
    /// that repeating a non-idempotent call (PutRecord, PutRecords) could
    /// apply it twice.
    ///
    /// Conservative: 4xx answers and connect failures are "not applied";
    /// server faults (5xx), timeouts, transport errors and undecodable
    /// success bodies are "maybe applied".
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            ClientError::Service(e) => e.code.http_status() >= 500,
            ClientError::Http { status, .. } => *status >= 500,
            ClientError::Timeout { .. } | ClientError::Transport(_) | ClientError::Decode(_) => {
                true
            }
            ClientError::Connect(_)
            | ClientError::Config(_)
            | ClientError::NoCredentials(_)
            | ClientError::Credentials(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let svc = |c| ClientError::Service(KinesisError::new(c, "m"));
        let http = |s| ClientError::Http {
            status: s,
            body: String::new(),
        };
        // (error, retryable, throttling, may have been applied)
        let table = [
            (
                svc(ErrorCode::ProvisionedThroughputExceeded),
                true,
                true,
                false,
            ),
            (svc(ErrorCode::LimitExceeded), true, true, false),
            (svc(ErrorCode::KmsThrottling), true, true, false),
            (svc(ErrorCode::InternalFailure), true, false, true),
            (svc(ErrorCode::ServiceUnavailable), true, false, true),
            (svc(ErrorCode::ResourceNotFound), false, false, false),
            (svc(ErrorCode::ExpiredIterator), false, false, false),
            (svc(ErrorCode::Validation), false, false, false),
            (http(502), true, false, true),
            (http(429), true, true, false),
            (http(403), false, false, false),
            (
                ClientError::Timeout {
                    after: Duration::from_secs(1),
                },
                true,
                false,
                true,
            ),
            (ClientError::Connect("refused".into()), true, false, false),
            (ClientError::Transport("reset".into()), true, false, true),
            (ClientError::Decode("bad".into()), false, false, true),
            (ClientError::Config("bad".into()), false, false, false),
            (
                ClientError::NoCredentials("none".into()),
                false,
                false,
                false,
            ),
            (ClientError::Credentials("sts".into()), false, false, false),
        ];
        for (e, retry, throttle, applied) in table {
            assert_eq!(e.is_retryable(), retry, "{e:?}");
            assert_eq!(e.is_throttling(), throttle, "{e:?}");
            assert_eq!(e.may_have_been_applied(), applied, "{e:?}");
        }
        let e = svc(ErrorCode::ResourceNotFound);
        assert_eq!(e.code(), Some(ErrorCode::ResourceNotFound));
        assert!(e.is_code(ErrorCode::ResourceNotFound));
        assert_eq!(e.to_string(), "ResourceNotFoundException: m");
        assert_eq!(http(502).http_status(), Some(502));
    }
}
