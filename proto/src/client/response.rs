//! Reading a response: a success body into the output, anything else into
//! the [`ClientError`] it stands for.

use super::{ClientError, Detail, Origin};
use crate::codec::Encoding;
use crate::error::{ErrorBody, KinesisError};
use http::header::{CONTENT_TYPE, HeaderMap};
use serde::de::DeserializeOwned;

const X_AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
/// How much of an unreadable error body is kept in [`ClientError::Http`].
pub(super) const ERROR_SNIPPET: usize = 256;

fn response_encoding(headers: &HeaderMap) -> Option<Encoding> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::from_content_type)
}

/// Decode a success body; empty means `{}` (emulators send nothing for empty outputs).
pub(super) fn decode_output<O: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    fallback: Encoding,
) -> Result<O, ClientError> {
    let result = if body.is_empty() {
        Encoding::Json.decode(b"{}")
    } else {
        response_encoding(headers).unwrap_or(fallback).decode(body)
    };
    result.map_err(|e| ClientError::Decode(Detail::with_source(e.message.clone(), e)))
}

/// Turn a non-success response into an error: the `x-amzn-ErrorType` header
/// (smithy SDKs read it first) or the body's `__type`, plus the body's message.
pub(super) fn parse_error_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    fallback: Encoding,
) -> ClientError {
    // `ErrorBody` requires `__type`; this accepts a message-only body too,
    // as when the type travels in the header.
    #[derive(serde::Deserialize)]
    struct LenientErrorBody {
        #[serde(rename = "__type", default)]
        error_type: Option<String>,
        #[serde(alias = "Message", default)]
        message: Option<String>,
    }
    let header_type = headers
        .get(X_AMZN_ERROR_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let parsed: Option<LenientErrorBody> = if body.is_empty() {
        None
    } else {
        let encoding = response_encoding(headers).unwrap_or(if body.first() == Some(&b'{') {
            Encoding::Json
        } else {
            fallback
        });
        encoding.decode(body).ok()
    };
    let (body_type, message) = match parsed {
        Some(p) => (p.error_type.filter(|t| !t.is_empty()), p.message),
        None => (None, None),
    };
    match header_type.map(str::to_string).or(body_type) {
        Some(error_type) => ClientError::from(KinesisError::from_body(
            status,
            &ErrorBody {
                error_type,
                message,
            },
        )),
        None => {
            let end = body.len().min(ERROR_SNIPPET);
            ClientError::Http {
                status,
                body: String::from_utf8_lossy(&body[..end]).into_owned(),
                origin: Origin::default(),
            }
        }
    }
}

/// A failed send as a connect error (nothing reached the server) or a
/// transport error (the request may have been applied).
pub(super) fn classify_send_error(e: hyper_util::client::legacy::Error) -> ClientError {
    // hyper-util reports "never connected" (DNS, TCP, TLS) as connect errors;
    // everything after that may have reached the server.
    if e.is_connect() {
        ClientError::Connect(Detail::caused_by(e))
    } else {
        ClientError::Transport(Detail::caused_by(e))
    }
}
