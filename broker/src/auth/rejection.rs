//! The errors Kinesis answers a badly signed request with.

use kinesis_proto::{ErrorCode, KinesisError};

/// `IncompleteSignature`: a part of the signature is missing or unreadable.
pub(super) fn incomplete(message: String) -> KinesisError {
    KinesisError::new(ErrorCode::IncompleteSignature, message)
}

/// `InvalidSignature`: the parts are there but do not check out.
pub(super) fn invalid_sig(message: &str) -> KinesisError {
    KinesisError::new(ErrorCode::InvalidSignature, message)
}
