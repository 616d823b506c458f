//! The HTTP response type every endpoint answers with, and the builders the
//! broker's answers share (request ids, content types, AWS error bodies).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use kinesis_proto::KinesisError;
use kinesis_proto::codec::Encoding;
use std::convert::Infallible;

/// The response body type: whole bodies now, streamed event streams later.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A whole body.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A fresh `x-amzn-RequestId` value.
pub fn request_id() -> HeaderValue {
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
        .unwrap_or(HeaderValue::from_static("0"))
}

/// A whole-body answer with a content type and a request id.
pub fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("x-amzn-RequestId", request_id());
    r
}

/// An AWS error response in the request's encoding.
pub fn error_response(enc: Encoding, err: &KinesisError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = respond(status, enc.content_type(), enc.encode(&err.wire_body()));
    // smithy-based SDKs read this header first.
    if let Ok(v) = HeaderValue::from_str(err.code.as_str()) {
        r.headers_mut().insert("x-amzn-ErrorType", v);
    }
    r
}
