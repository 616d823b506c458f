//! The HTTP response type every endpoint answers with, and the builders the
//! broker's answers share (request ids, content types, AWS error bodies).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
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

/// A SubscribeToShard response: `200`, then the event stream as it is produced
/// (chunked on HTTP/1.1, DATA frames on HTTP/2).
pub fn event_stream_response(events: Body) -> Response<Body> {
    let mut r = Response::new(events);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kinesis_proto::event_stream::CONTENT_TYPE),
    );
    h.insert("x-amzn-RequestId", request_id());
    r
}

/// Answer with `resp`'s status and headers, send half of `body`, then fail
/// the body so hyper aborts the connection (HTTP/1.1) or resets the stream
/// (HTTP/2): the client sees a transport error after the operation took effect.
pub fn cut_off(mut resp: Response<Body>, body: Bytes) -> Response<Body> {
    let half = body.slice(..body.len() / 2);
    // Announce more than is sent even for an empty body, so the client waits
    // for bytes that never come.
    let announced = body.len().max(1);
    let frames = futures::stream::iter([
        Ok(Frame::data(half)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        )),
    ]);
    *resp.body_mut() = BodyExt::boxed(StreamBody::new(frames));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    resp.extensions_mut().insert(InjectedReset);
    resp
}

/// Pass the first frame of `resp`'s body (for an event stream, its
/// initial-response event), then fail the body as [`cut_off`] does.
pub fn cut_after_first_frame(resp: Response<Body>) -> Response<Body> {
    use futures::StreamExt;
    let (mut parts, body) = resp.into_parts();
    let reset = futures::stream::once(async {
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    });
    let frames = http_body_util::BodyStream::new(body).take(1).chain(reset);
    parts.extensions.insert(InjectedReset);
    Response::from_parts(parts, BodyExt::boxed(StreamBody::new(frames)))
}

/// Marks a response [`cut_off`] will abort, for the request metrics.
#[derive(Clone, Copy)]
pub struct InjectedReset;
