//! What a call can fail with, where it failed (operation and stream), what
//! caused it underneath, and how the failure bears on retrying.

use crate::error::{ErrorCode, KinesisError};
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The error underneath a transport failure (hyper, io, TLS, a timer), shared
/// so that a [`ClientError`] stays cheap to clone.
pub type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// Where an error came from: the call's operation and the stream its input
/// names, and the lower-level error that caused it, if any.
#[derive(Clone, Default)]
pub struct Origin {
    operation: Option<&'static str>,
    stream: Option<String>,
    source: Option<Source>,
}

impl Origin {
    /// An origin with only the lower-level cause; the call fills in the rest.
    pub fn caused_by(source: impl StdError + Send + Sync + 'static) -> Self {
        Origin {
            source: Some(Arc::new(source)),
            ..Origin::default()
        }
    }

    /// The operation that failed (its `X-Amz-Target` name).
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    /// The stream the failed call named (its name, else its ARN).
    pub fn stream(&self) -> Option<&str> {
        self.stream.as_deref()
    }

    /// The lower-level error, if there was one.
    pub fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }

    /// Records the call, keeping what an inner layer already recorded.
    fn set_call(&mut self, operation: &'static str, stream: Option<&str>) {
        self.operation.get_or_insert(operation);
        if self.stream.is_none() {
            self.stream = stream.map(str::to_string);
        }
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin")
            .field("operation", &self.operation)
            .field("stream", &self.stream)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

/// Two origins are equal when they name the same call; the causes are not
/// compared (lower-level errors have no equality).
impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        self.operation == other.operation && self.stream == other.stream
    }
}

impl Eq for Origin {}

/// `"<Operation> on stream <stream>: "`, or less, as a prefix for messages.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.operation, &self.stream) {
            (Some(op), Some(s)) => write!(f, "{op} on stream {s}: "),
            (Some(op), None) => write!(f, "{op}: "),
            (None, Some(s)) => write!(f, "stream {s}: "),
            (None, None) => Ok(()),
        }
    }
}

/// A failure described by a message, with where it came from.
///
/// The message spells out the lower-level error chain too, so that logging
/// the error with `%` alone stays informative; `source()` still hands the
/// typed error to callers that inspect or downcast it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    message: String,
    origin: Origin,
}

impl Detail {
    /// A detail caused by `source`, its message the whole chain of causes.
    pub fn caused_by(source: impl StdError + Send + Sync + 'static) -> Self {
        Detail {
            message: error_chain(&source),
            origin: Origin::caused_by(source),
        }
    }

    /// A detail with its own message, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Detail {
            message: message.into(),
            origin: Origin::caused_by(source),
        }
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where it went wrong.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
}

/// Reads as its message, as the `String` it replaced did (`m.contains(..)`).
impl std::ops::Deref for Detail {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

/// The message alone; the enclosing [`ClientError`] adds where it came from.
impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for Detail {
    fn from(message: String) -> Self {
        Detail {
            message,
            origin: Origin::default(),
        }
    }
}

impl From<&str> for Detail {
    fn from(message: &str) -> Self {
        Detail::from(message.to_string())
    }
}

/// An error answer of the service, with the call it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    error: KinesisError,
    origin: Origin,
}

impl ServiceError {
    /// The service's error.
    pub fn error(&self) -> &KinesisError {
        &self.error
    }

    /// The call it answered.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The service's error, without the call.
    pub fn into_error(self) -> KinesisError {
        self.error
    }
}

/// Reads as the [`KinesisError`] it wraps (`e.code`, `e.message`), as it did
/// before the call was recorded alongside.
impl std::ops::Deref for ServiceError {
    type Target = KinesisError;
    fn deref(&self) -> &KinesisError {
        &self.error
    }
}

/// The service's error, as the service worded it.
impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl From<KinesisError> for ServiceError {
    fn from(error: KinesisError) -> Self {
        ServiceError {
            error,
            origin: Origin::default(),
        }
    }
}

/// Why a [`Client`](super::Client) call failed. Errors returned by a call
/// name its operation and stream ([`operation`](Self::operation),
/// [`stream`](Self::stream)); transport failures keep their cause as
/// [`source`](std::error::Error::source).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The service answered with a Kinesis error (`__type` in the body or `x-amzn-ErrorType`).
    Service(ServiceError),
    /// A non-success status whose body named no error (e.g. a proxy's 502 page).
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the body, lossily decoded as UTF-8.
        body: String,
        /// Where it came from.
        origin: Origin,
    },
    /// The attempt did not complete in time; the request may or may not have been applied.
    Timeout {
        /// The configured request timeout.
        after: Duration,
        /// Where it came from (the timer's error as its cause).
        origin: Origin,
    },
    /// No connection could be established; the request was not sent.
    Connect(Detail),
    /// The connection failed after the request started (reset, closed
    /// mid-response, protocol error): the request may or may not have been applied.
    Transport(Detail),
    /// A success response whose body could not be decoded (so it was applied).
    Decode(Detail),
    /// The client configuration or a request header value is invalid.
    Config(String),
    /// No credentials were found: the provider (or every provider of a chain)
    /// had none configured. A chain moves on to its next provider.
    NoCredentials(Detail),
    /// A credentials provider is configured but failed (unreadable file,
    /// a metadata service or STS refused); the request was not sent.
    Credentials(Detail),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The service's message usually names the stream already.
            ClientError::Service(e) => fmt::Display::fmt(e, f),
            ClientError::Http {
                status,
                body,
                origin,
            } => write!(
                f,
                "{origin}HTTP {status} without a Kinesis error body: {body}"
            ),
            ClientError::Timeout { after, origin } => {
                write!(f, "{origin}request timed out after {after:?}")
            }
            ClientError::Connect(d) => write!(f, "{}connect error: {}", d.origin, d.message),
            ClientError::Transport(d) => write!(f, "{}transport error: {}", d.origin, d.message),
            ClientError::Decode(d) => {
                write!(f, "{}cannot decode response: {}", d.origin, d.message)
            }
            ClientError::Config(m) => write!(f, "invalid configuration: {m}"),
            ClientError::NoCredentials(d) => write!(f, "{}{}", d.origin, d.message),
            ClientError::Credentials(d) => {
                write!(f, "{}cannot load credentials: {}", d.origin, d.message)
            }
        }
    }
}

impl StdError for ClientError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.origin().and_then(Origin::source)
    }
}

impl From<KinesisError> for ClientError {
    fn from(e: KinesisError) -> Self {
        ClientError::Service(e.into())
    }
}

impl ClientError {
    /// A timeout after `after`, caused by `source` (the timer's error).
    pub(crate) fn timeout(after: Duration, source: impl StdError + Send + Sync + 'static) -> Self {
        ClientError::Timeout {
            after,
            origin: Origin::caused_by(source),
        }
    }

    /// Where the error came from; `None` for configuration errors.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            ClientError::Service(e) => Some(&e.origin),
            ClientError::Http { origin, .. } | ClientError::Timeout { origin, .. } => Some(origin),
            ClientError::Connect(d)
            | ClientError::Transport(d)
            | ClientError::Decode(d)
            | ClientError::NoCredentials(d)
            | ClientError::Credentials(d) => Some(&d.origin),
            ClientError::Config(_) => None,
        }
    }

    fn origin_mut(&mut self) -> Option<&mut Origin> {
        match self {
            ClientError::Service(e) => Some(&mut e.origin),
            ClientError::Http { origin, .. } | ClientError::Timeout { origin, .. } => Some(origin),
            ClientError::Connect(d)
            | ClientError::Transport(d)
            | ClientError::Decode(d)
            | ClientError::NoCredentials(d)
            | ClientError::Credentials(d) => Some(&mut d.origin),
            ClientError::Config(_) => None,
        }
    }

    /// The error, recorded as coming from a call of `operation` naming `stream`.
    pub(crate) fn in_call(mut self, operation: &'static str, stream: Option<&str>) -> Self {
        if let Some(origin) = self.origin_mut() {
            origin.set_call(operation, stream);
        }
        self
    }

    /// The operation whose call failed, for errors returned by a call.
    pub fn operation(&self) -> Option<&'static str> {
        self.origin().and_then(Origin::operation)
    }

    /// The stream the failed call named (its name, else its ARN), if it named one.
    pub fn stream(&self) -> Option<&str> {
        self.origin().and_then(Origin::stream)
    }

    /// Whether the attempt timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }

    /// Whether no connection could be established.
    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect(_))
    }

    /// Whether the connection failed after the request started.
    pub fn is_transport(&self) -> bool {
        matches!(self, ClientError::Transport(_))
    }

    /// The Kinesis error code, for service errors.
    pub fn code(&self) -> Option<ErrorCode> {
        self.service_error().map(|e| e.code)
    }

    /// The Kinesis error, for service errors.
    pub fn service_error(&self) -> Option<&KinesisError> {
        match self {
            ClientError::Service(e) => Some(&e.error),
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
            ClientError::Service(e) => e.error.code.is_retryable(),
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
            ClientError::Service(e) => e.error.code.is_throttling(),
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
            ClientError::Service(e) => e.error.code.http_status() >= 500,
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

/// `e` and its causes, `": "`-separated.
pub(super) fn error_chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let svc = |c| ClientError::Service(KinesisError::new(c, "m").into());
        let http = |s| ClientError::Http {
            status: s,
            body: String::new(),
            origin: Origin::default(),
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
                    origin: Origin::default(),
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
