//! One Kinesis call from HTTP request to HTTP response. The HTTP layer
//! ([`crate::server`]) hands each call to [`handle`] and sends back what it
//! returns; everything between (protocol precedence, auth, faults, limits,
//! the operation, durability, encoding, request metrics) happens here, in
//! one place and one order.

use crate::body::{BodyBudget, BodyError, announced_length};
use crate::fault::FaultOutcome;
use crate::metrics::{OUTCOME_CONNECTION_RESET, OUTCOME_SUCCESS};
use crate::response::{
    Body, InjectedReset, cut_after_first_frame, cut_off, error_response, event_stream_response,
    respond,
};
use crate::service::Service;
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, header};
use kinesis_proto::codec::Encoding;
use kinesis_proto::model::Operation;
use kinesis_proto::{ErrorCode, KinesisError};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Whether the request named an operation at all (`X-Amz-Target`), known or not.
#[derive(Clone, Copy)]
enum Target {
    /// No target header.
    Missing,
    /// A target header, which may name no known operation.
    Present,
}

/// Handle one Kinesis call: answer it with AWS's protocol-level error
/// precedence and the operation's result, and count it in the request
/// metrics. The operation is read from `X-Amz-Target` once, here.
pub async fn handle<B>(svc: &Arc<Service>, bodies: &BodyBudget, req: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let target_text = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let op = target_text.and_then(Operation::from_target);
    let target = match target_text {
        Some(_) => Target::Present,
        None => Target::Missing,
    };
    let resp = answer(svc, bodies, parts, body, target, op).await;
    if svc.config().metrics {
        let status = resp.status();
        let outcome = match resp.headers().get("x-amzn-ErrorType") {
            _ if resp.extensions().get::<InjectedReset>().is_some() => OUTCOME_CONNECTION_RESET,
            Some(code) => code.to_str().unwrap_or("Unknown"),
            None if status.is_success() => OUTCOME_SUCCESS,
            None => status.as_str(),
        };
        let operation = op.map_or("Unknown", |op| op.name());
        svc.metrics()
            .observe_request(operation, outcome, started.elapsed().as_secs_f64());
    }
    resp
}

/// The answer to one Kinesis call, in the service's order: the protocol's
/// front door (method, content type, body size, empty body), the signature's
/// header, the body, its shape and operation, the signature, injected faults,
/// then the operation (validation, admission, decode, handler), the
/// durability wait and the encoded result.
async fn answer<B>(
    svc: &Arc<Service>,
    bodies: &BodyBudget,
    parts: Parts,
    body: B,
    target: Target,
    op: Option<Operation>,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if parts.method != Method::POST {
        return xml(
            StatusCode::FORBIDDEN,
            "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n",
        );
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let encoding = Encoding::from_content_type(content_type);
    let reply_enc = encoding.unwrap_or(Encoding::Cbor);
    let max = svc.config().max_body_bytes;
    // Refuse a body announced too large before reading it.
    let announced = announced_length(&parts);
    let too_large = || {
        let mut r = error_response(
            encoding.unwrap_or(Encoding::Json),
            &KinesisError::invalid(format!(
                "The request body exceeds the maximum size of {max} bytes."
            )),
        );
        *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        r
    };
    if announced.is_some_and(|n| n > max as u64) {
        return too_large();
    }
    // An empty body is answered on the headers alone.
    if http_body::Body::is_end_stream(&body) {
        return empty_body(op, encoding);
    }
    let legacy = content_type
        .split(';')
        .next()
        .is_some_and(|base| base.trim().eq_ignore_ascii_case(LEGACY_JSON));
    let Some(enc) = encoding.or(legacy.then_some(Encoding::Json)) else {
        return match target {
            Target::Missing => xml(
                StatusCode::FORBIDDEN,
                "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n",
            ),
            Target::Present => xml(StatusCode::NOT_FOUND, "<UnknownOperationException/>\n"),
        };
    };
    // Step 6 of the precedence: with `--auth`, the signature's header is
    // checked before any body is read, so that nobody without a listed key
    // can make the broker buffer one (docs/fidelity.md).
    let now = SystemTime::now();
    if let Some(keys) = &svc.config().auth
        && !legacy
    {
        let Some(op) = op else {
            return error_response(enc, &KinesisError::new(ErrorCode::UnknownOperation, ""));
        };
        if let Err(e) = keys.check_header(&parts, &svc.config().region, now) {
            return auth_refused(op, enc, &e);
        }
    }
    let held = match bodies
        .read(
            body,
            announced,
            max,
            svc.config().connection_limits.body_read_timeout,
        )
        .await
    {
        Ok(held) => held,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Busy) => {
            return error_response(
                enc,
                &KinesisError::new(
                    ErrorCode::ServiceUnavailable,
                    "The broker is reading as many request bodies as it allows; retry shortly.",
                ),
            );
        }
        Err(BodyError::TimedOut) => {
            return error_response(
                reply_enc,
                &KinesisError::serialization(
                    "Failed to read the request body: it did not arrive in time.",
                ),
            );
        }
        Err(BodyError::Read(e)) => {
            return error_response(
                reply_enc,
                &KinesisError::serialization(format!("Failed to read the request body: {e}")),
            );
        }
    };
    // The body's share of the in-flight budget is held until the answer.
    let body = held.bytes.clone();
    let _reserved = held;
    if body.is_empty() {
        return empty_body(op, encoding);
    }
    // Steps 4 and 5: a body that is not a structure, then the operation.
    // A PutRecords body in the plain form is read once, here: reading it shows it is a
    // structure (without a second pass over megabytes of base64), and dispatch uses it.
    let read = op.and_then(|op| super::read_put_records(op, enc, &body));
    let structure = read.is_some() || kinesis_proto::shape::is_structure(enc, &body);
    if legacy {
        // The legacy protocol goes no further than this.
        return if structure {
            legacy_json(StatusCode::NOT_FOUND, "UnknownOperationException")
        } else {
            legacy_json(StatusCode::BAD_REQUEST, "SerializationException")
        };
    }
    if !structure {
        return error_response(enc, &KinesisError::serialization(""));
    }
    let Some(op) = op else {
        return error_response(enc, &KinesisError::new(ErrorCode::UnknownOperation, ""));
    };
    match &svc.config().auth {
        Some(keys) => {
            if let Err(e) = keys.verify(&parts, &body, &svc.config().region, now) {
                return auth_refused(op, enc, &e);
            }
        }
        // Without `--auth` no key is checked, but a request must still be
        // signed as Kinesis requires.
        None => {
            if let Err(e) = crate::auth::check_presence(&parts) {
                return auth_refused(op, enc, &e);
            }
        }
    }
    let fault = svc.faults().decide(op.name());
    if let Some(delay) = fault.delay {
        tokio::time::sleep(delay).await;
    }
    if let FaultOutcome::Fail(e) = &fault.outcome {
        tracing::debug!(operation = op.name(), error = %e, "injected fault");
        return error_response(enc, e);
    }
    if op == Operation::SubscribeToShard {
        return match super::subscribe(svc, enc, &body) {
            Ok(events) if fault.outcome == FaultOutcome::ResetConnection => {
                cut_after_first_frame(event_stream_response(events.into_body()))
            }
            Ok(events) => event_stream_response(events.into_body()),
            Err(e) => {
                tracing::debug!(operation = op.name(), error = %e, "request failed");
                error_response(enc, &e)
            }
        };
    }
    match super::dispatch_off_runtime(svc, op, enc, body.clone(), read).await {
        Ok(out) => {
            // With `--fsync always`, a write is answered only once it is on disk.
            if matches!(op, Operation::PutRecord | Operation::PutRecords)
                && let Some(ticket) = svc.commit_ticket()
                && let Err(e) = ticket.wait().await
            {
                let e =
                    KinesisError::internal(format!("The records could not be made durable: {e}"));
                return error_response(enc, &e);
            }
            if fault.outcome == FaultOutcome::ResetConnection {
                return cut_off(
                    respond(StatusCode::OK, enc.content_type(), Bytes::new()),
                    out,
                );
            }
            respond(StatusCode::OK, enc.content_type(), out)
        }
        Err(e) => {
            tracing::debug!(operation = op.name(), error = %e, "request failed");
            if fault.outcome == FaultOutcome::ResetConnection {
                let body = enc.encode(&e.body());
                return cut_off(error_response(enc, &e), body);
            }
            error_response(enc, &e)
        }
    }
}

/// An answer of the service's front door in XML, which it sends without a
/// `Content-Type` (docs/validation.md).
fn xml(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = respond(status, "", Bytes::from_static(body.as_bytes()));
    r.headers_mut().remove(header::CONTENT_TYPE);
    r
}

/// The content type of the service's legacy JSON protocol, answered with its
/// `{"Output":…,"Version":"1.0"}` envelope.
const LEGACY_JSON: &str = "application/json";

/// An answer in the legacy JSON envelope.
fn legacy_json(status: StatusCode, error: &str) -> Response<Body> {
    let body =
        format!(r#"{{"Output":{{"__type":"com.amazon.coral.service#{error}"}},"Version":"1.0"}}"#);
    respond(status, LEGACY_JSON, Bytes::from(body))
}

/// Step 2 of the precedence: an empty body (answered without a message).
fn empty_body(op: Option<Operation>, encoding: Option<Encoding>) -> Response<Body> {
    let err = match op {
        Some(_) => KinesisError::serialization(""),
        None => KinesisError::new(ErrorCode::UnknownOperation, ""),
    };
    let enc = if encoding == Some(Encoding::Json) {
        Encoding::Json
    } else {
        Encoding::Cbor
    };
    error_response(enc, &err)
}

/// A Kinesis call refused by `--auth`.
fn auth_refused(op: Operation, enc: Encoding, e: &KinesisError) -> Response<Body> {
    tracing::debug!(operation = op.name(), error = %e, "request refused by --auth");
    let mut r = error_response(enc, e);
    // Kinesis answers a missing token with 400 only for JSON requests.
    if e.code == ErrorCode::MissingAuthenticationToken && enc != Encoding::Json {
        *r.status_mut() = StatusCode::FORBIDDEN;
    }
    r
}
