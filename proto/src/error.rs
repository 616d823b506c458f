//! Kinesis error codes, their HTTP statuses, and AWS's error body shape.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Every error name the Kinesis API (and its HTTP front door) can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Stream, shard or consumer does not exist (or is not readable yet).
    ResourceNotFound,
    /// The resource exists but is busy or in the wrong state.
    ResourceInUse,
    /// A semantically invalid parameter.
    InvalidArgument,
    /// A model constraint was violated.
    Validation,
    /// A per-shard data-plane rate was exceeded.
    ProvisionedThroughputExceeded,
    /// A control-plane rate or a quota was exceeded.
    LimitExceeded,
    /// The shard iterator is older than five minutes.
    ExpiredIterator,
    /// The pagination token is older than five minutes.
    ExpiredNextToken,
    /// The KMS key is disabled.
    KmsDisabled,
    /// The KMS key is in an invalid state.
    KmsInvalidState,
    /// Access to the KMS key was denied.
    KmsAccessDenied,
    /// The KMS key was not found.
    KmsNotFound,
    /// The account is not subscribed to KMS.
    KmsOptInRequired,
    /// KMS throttled the request.
    KmsThrottling,
    /// IAM (or the HTTP front door) refused the request.
    AccessDenied,
    /// An unknown server-side failure.
    InternalFailure,
    /// The service is temporarily unavailable.
    ServiceUnavailable,
    /// The body is not valid JSON or CBOR, or a member has the wrong type.
    Serialization,
    /// The `X-Amz-Target` names no known operation.
    UnknownOperation,
    /// The request carries no signature.
    MissingAuthenticationToken,
    /// The signature header lacks a required part.
    IncompleteSignature,
    /// The signature does not match.
    InvalidSignature,
    /// The access key id is unknown.
    UnrecognizedClient,
    /// A `DryRun` request would have succeeded.
    DryRunOperation,
}

impl ErrorCode {
    /// All codes, for tables and tests.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::ResourceNotFound,
        ErrorCode::ResourceInUse,
        ErrorCode::InvalidArgument,
        ErrorCode::Validation,
        ErrorCode::ProvisionedThroughputExceeded,
        ErrorCode::LimitExceeded,
        ErrorCode::ExpiredIterator,
        ErrorCode::ExpiredNextToken,
        ErrorCode::KmsDisabled,
        ErrorCode::KmsInvalidState,
        ErrorCode::KmsAccessDenied,
        ErrorCode::KmsNotFound,
        ErrorCode::KmsOptInRequired,
        ErrorCode::KmsThrottling,
        ErrorCode::AccessDenied,
        ErrorCode::InternalFailure,
        ErrorCode::ServiceUnavailable,
        ErrorCode::Serialization,
        ErrorCode::UnknownOperation,
        ErrorCode::MissingAuthenticationToken,
        ErrorCode::IncompleteSignature,
        ErrorCode::InvalidSignature,
        ErrorCode::UnrecognizedClient,
        ErrorCode::DryRunOperation,
    ];

    /// The `__type` string AWS puts in the error body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::ResourceInUse => "ResourceInUseException",
            ErrorCode::InvalidArgument => "InvalidArgumentException",
            ErrorCode::Validation => "ValidationException",
            ErrorCode::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorCode::LimitExceeded => "LimitExceededException",
            ErrorCode::ExpiredIterator => "ExpiredIteratorException",
            ErrorCode::ExpiredNextToken => "ExpiredNextTokenException",
            ErrorCode::KmsDisabled => "KMSDisabledException",
            ErrorCode::KmsInvalidState => "KMSInvalidStateException",
            ErrorCode::KmsAccessDenied => "KMSAccessDeniedException",
            ErrorCode::KmsNotFound => "KMSNotFoundException",
            ErrorCode::KmsOptInRequired => "KMSOptInRequired",
            ErrorCode::KmsThrottling => "KMSThrottlingException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            // The HTTP error; PutRecords entries carry the bare `InternalFailure`.
            ErrorCode::InternalFailure => "InternalFailureException",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::Serialization => "SerializationException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorCode::IncompleteSignature => "IncompleteSignatureException",
            ErrorCode::InvalidSignature => "InvalidSignatureException",
            ErrorCode::UnrecognizedClient => "UnrecognizedClientException",
            ErrorCode::DryRunOperation => "DryRunOperationException",
        }
    }

    /// Parse a `__type` the way the SDKs do: keep what follows the last `#`
    /// and precedes the first `:`; accept the `…Exception`-less aliases too.
    pub fn parse(raw: &str) -> Option<ErrorCode> {
        let name = raw.rsplit('#').next().unwrap_or(raw);
        let name = name.split(':').next().unwrap_or(name).trim();
        match name {
            "InternalFailure" => return Some(ErrorCode::InternalFailure),
            "ServiceUnavailableException" => return Some(ErrorCode::ServiceUnavailable),
            "ThrottlingException" => return Some(ErrorCode::LimitExceeded),
            _ => {}
        }
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// The HTTP status the service answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InternalFailure => 500,
            ErrorCode::ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// Whether the AWS SDKs' standard retry mode retries this error.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::ProvisionedThroughputExceeded
                | ErrorCode::LimitExceeded
                | ErrorCode::InternalFailure
                | ErrorCode::ServiceUnavailable
                | ErrorCode::KmsThrottling
        )
    }

    /// Whether this error means "slow down" rather than "something broke".
    pub fn is_throttling(self) -> bool {
        matches!(
            self,
            ErrorCode::ProvisionedThroughputExceeded
                | ErrorCode::LimitExceeded
                | ErrorCode::KmsThrottling
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kinesis error: its code and the service's human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct KinesisError {
    /// Which error.
    pub code: ErrorCode,
    /// What went wrong, in words.
    pub message: String,
}

/// The error body shape AWS uses in JSON and CBOR alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error code (`__type`).
    #[serde(rename = "__type")]
    pub error_type: String,
    /// The message; some services spell it `Message`.
    #[serde(alias = "Message", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// An error body as the service writes it; see [`KinesisError::wire_body`].
#[derive(Debug)]
pub struct WireErrorBody<'a>(&'a KinesisError);

impl Serialize for WireErrorBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.0;
        let with_message = !e.message.is_empty();
        let mut map = s.serialize_map(Some(1 + usize::from(with_message)))?;
        map.serialize_entry("__type", e.code.as_str())?;
        if with_message {
            let key = if e.code == ErrorCode::Serialization {
                "Message"
            } else {
                "message"
            };
            map.serialize_entry(key, &e.message)?;
        }
        map.end()
    }
}

impl KinesisError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        KinesisError {
            code,
            message: message.into(),
        }
    }

    /// `ResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }

    /// `ResourceInUseException`.
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceInUse, message)
    }

    /// `InvalidArgumentException`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// `ValidationException` in AWS's "N validation error(s) detected" form.
    pub fn validation(items: &[String]) -> Self {
        let n = items.len();
        let plural = if n == 1 { "error" } else { "errors" };
        let shown: Vec<&str> = items.iter().take(10).map(String::as_str).collect();
        Self::new(
            ErrorCode::Validation,
            format!("{n} validation {plural} detected: {}", shown.join("; ")),
        )
    }

    /// `SerializationException`.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Serialization, message)
    }

    /// `LimitExceededException`.
    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::LimitExceeded, message)
    }

    /// `ProvisionedThroughputExceededException`.
    pub fn throughput_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ProvisionedThroughputExceeded, message)
    }

    /// `InternalFailure`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalFailure, message)
    }

    /// The body AWS would send for this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error_type: self.code.as_str().to_string(),
            message: Some(self.message.clone()),
        }
    }

    /// The body as the service writes it: the message under `message`, but
    /// under `Message` for a `SerializationException`, and no message member
    /// at all when there is no message (docs/validation.md).
    pub fn wire_body(&self) -> WireErrorBody<'_> {
        WireErrorBody(self)
    }

    /// Rebuild an error from a response body; unknown codes become `InternalFailure`
    /// for 5xx statuses and `InvalidArgument` otherwise, keeping the raw name in the message.
    pub fn from_body(status: u16, body: &ErrorBody) -> Self {
        let message = body.message.clone().unwrap_or_default();
        match ErrorCode::parse(&body.error_type) {
            Some(code) => Self::new(code, message),
            None if status >= 500 => Self::new(
                ErrorCode::InternalFailure,
                format!("{}: {message}", body.error_type),
            ),
            None => Self::new(
                ErrorCode::InvalidArgument,
                format!("{}: {message}", body.error_type),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_name() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn parse_strips_namespace_and_suffix() {
        assert_eq!(
            ErrorCode::parse("com.amazonaws.kinesis#ResourceNotFoundException:http://x"),
            Some(ErrorCode::ResourceNotFound)
        );
        assert_eq!(
            ErrorCode::parse("InternalFailureException"),
            Some(ErrorCode::InternalFailure)
        );
        assert_eq!(ErrorCode::parse("Nope"), None);
    }

    #[test]
    fn statuses_match_the_service() {
        assert_eq!(ErrorCode::InternalFailure.http_status(), 500);
        assert_eq!(ErrorCode::ServiceUnavailable.http_status(), 503);
        assert_eq!(ErrorCode::ResourceNotFound.http_status(), 400);
        assert!(ErrorCode::ProvisionedThroughputExceeded.is_retryable());
        assert!(!ErrorCode::ResourceNotFound.is_retryable());
    }

    #[test]
    fn validation_message_has_aws_shape() {
        let e = KinesisError::validation(&[
            "Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000".into(),
        ]);
        assert_eq!(e.code, ErrorCode::Validation);
        assert!(
            e.message
                .starts_with("1 validation error detected: Value '10001'")
        );
    }

    #[test]
    fn wire_body_names_the_message_as_the_service_does() {
        let e = KinesisError::serialization("Expected map or null");
        assert_eq!(
            serde_json::to_string(&e.wire_body()).unwrap(),
            r#"{"__type":"SerializationException","Message":"Expected map or null"}"#
        );
        let e = KinesisError::new(ErrorCode::UnknownOperation, "");
        assert_eq!(
            serde_json::to_string(&e.wire_body()).unwrap(),
            r#"{"__type":"UnknownOperationException"}"#
        );
        let e = KinesisError::invalid("x");
        assert_eq!(
            serde_json::to_string(&e.wire_body()).unwrap(),
            r#"{"__type":"InvalidArgumentException","message":"x"}"#
        );
    }

    #[test]
    fn body_serializes_as_aws_does() {
        let e = KinesisError::not_found("Stream foo under account 123456789012 not found.");
        let json = serde_json::to_string(&e.body()).unwrap();
        assert_eq!(
            json,
            r#"{"__type":"ResourceNotFoundException","message":"Stream foo under account 123456789012 not found."}"#
        );
        let back: ErrorBody =
            serde_json::from_str(r#"{"__type":"X#LimitExceededException","Message":"m"}"#).unwrap();
        let e = KinesisError::from_body(400, &back);
        assert_eq!(e.code, ErrorCode::LimitExceeded);
        assert_eq!(e.message, "m");
    }
}
