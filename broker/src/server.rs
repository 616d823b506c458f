//! The HTTP front door: HTTP/1.1 and cleartext HTTP/2 on one port (TLS with
//! ALPN when configured), AWS's protocol-level error precedence, and dispatch.

use crate::admin::{self, Refusal};
use crate::body::{BodyBudget, BodyError};
use crate::config::ConnectionLimits;
use crate::connection::{Activity, ConnectionCap, Counted, Watched};
use crate::fault::{FaultOutcome, FaultPlan};
use crate::metrics::{OUTCOME_SUCCESS, TEXT_CONTENT_TYPE};
use crate::ops;
use crate::response::{Body, error_response, request_id, respond};
use crate::service::Service;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use kinesis_proto::codec::Encoding;
use kinesis_proto::model::Operation;
use kinesis_proto::{ErrorCode, KinesisError};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

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

/// What a browser's CORS preflight (`OPTIONS` with an `Origin`) gets: 200,
/// any origin, the asked-for headers and method, cached for two days.
fn cors_preflight(headers: &http::HeaderMap) -> Response<Body> {
    let mut r = respond(StatusCode::OK, "", Bytes::new());
    let h = r.headers_mut();
    h.remove(header::CONTENT_TYPE);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(v) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
    }
    if let Some(v) = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v.clone());
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("172800"),
    );
    r
}

/// The CORS headers of an answer to a request with an `Origin`.
fn add_cors(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(
            "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date",
        ),
    );
}

/// Largest fault plan `PUT /admin/faults` accepts.
const MAX_FAULT_PLAN_BYTES: usize = 1024 * 1024;

/// A request to a protected endpoint without the credentials it needs.
fn refused(r: Refusal) -> Response<Body> {
    match r {
        Refusal::Unauthenticated => {
            let mut resp = respond(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                Bytes::from_static(
                    b"this endpoint needs Authorization: Bearer <admin token>, or a SigV4 signature from a listed key\n",
                ),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kinesis-broker\""),
            );
            resp
        }
        Refusal::Forbidden(why) => respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            Bytes::from(format!("{why}\n")),
        ),
    }
}

/// The `Content-Length` a request announces, if any.
fn announced_length(parts: &http::request::Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// `GET /admin/faults`, `PUT /admin/faults` (replace the plan, restarting its
/// random streams) and `DELETE /admin/faults` (no faults); under `--auth` or
/// `--admin-token` only with the credentials [`admin`] asks for.
async fn admin_faults(
    svc: &Service,
    bodies: &BodyBudget,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let now = SystemTime::now();
    let access = match admin::check(&svc.config, &parts, now) {
        Ok(a) => a,
        Err(r) => return refused(r),
    };
    let text = match bodies
        .read(
            body,
            announced_length(&parts),
            MAX_FAULT_PLAN_BYTES,
            svc.config.connection_limits.body_read_timeout,
        )
        .await
    {
        Ok(b) => b.bytes,
        Err(e) => {
            return respond(
                StatusCode::BAD_REQUEST,
                "text/plain",
                Bytes::from(format!("cannot read the fault plan: {e}\n")),
            );
        }
    };
    if let Err(r) = admin::verify_signature(&svc.config, access, &parts, &text, now) {
        return refused(r);
    }
    let plan_json = |plan: &FaultPlan| {
        respond(
            StatusCode::OK,
            "application/json",
            Bytes::from(plan.to_json()),
        )
    };
    match parts.method {
        Method::GET => plan_json(&svc.faults.plan()),
        Method::DELETE => {
            svc.faults.replace(FaultPlan::none());
            plan_json(&FaultPlan::none())
        }
        Method::PUT => {
            let plan = match std::str::from_utf8(&text)
                .map_err(|e| e.to_string())
                .and_then(|t| FaultPlan::from_json(t).map_err(|e| e.to_string()))
            {
                Ok(plan) => plan,
                Err(e) => {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        "text/plain",
                        Bytes::from(format!("{e}\n")),
                    );
                }
            };
            tracing::info!(
                seed = plan.seed,
                rules = plan.rules.len(),
                "fault plan replaced"
            );
            svc.faults.replace(plan.clone());
            plan_json(&plan)
        }
        _ => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"use GET, PUT or DELETE\n"),
        ),
    }
}

/// Answer with `resp`'s status and headers, send half of `body`, then fail
/// the body so hyper aborts the connection (HTTP/1.1) or resets the stream
/// (HTTP/2): the client sees a transport error after the operation took effect.
fn cut_off(mut resp: Response<Body>, body: Bytes) -> Response<Body> {
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
fn cut_after_first_frame(resp: Response<Body>) -> Response<Body> {
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
struct InjectedReset;

/// The `outcome` label of a request whose connection was reset by a fault.
pub const OUTCOME_CONNECTION_RESET: &str = "ConnectionReset";

/// Handle one HTTP request: the broker's own endpoints (`/health`,
/// `/metrics`, `/admin/faults`), else a Kinesis call, timed and counted.
/// Request bodies are read within `bodies`.
pub async fn handle(
    svc: Arc<Service>,
    bodies: &BodyBudget,
    req: Request<Incoming>,
) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/health" | "/healthz") => {
            return respond(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n"));
        }
        (&Method::GET, "/metrics") => {
            if svc.config.protect_metrics {
                let (parts, _) = req.into_parts();
                let now = SystemTime::now();
                if let Err(r) = admin::check(&svc.config, &parts, now)
                    .and_then(|a| admin::verify_signature(&svc.config, a, &parts, b"", now))
                {
                    return refused(r);
                }
            }
            return respond(
                StatusCode::OK,
                TEXT_CONTENT_TYPE,
                Bytes::from(svc.metrics.gather_text()),
            );
        }
        (_, "/admin/faults") => {
            return admin_faults(&svc, bodies, req).await;
        }
        (_, path) if crate::console::is_console_path(path) => {
            return crate::console::handle(&svc, bodies, req).await;
        }
        _ if crate::sts::is_sts_request(req.headers()) => return sts(&svc, req).await,
        _ => {}
    }
    let origin = req.headers().contains_key(header::ORIGIN);
    if origin && req.method() == Method::OPTIONS {
        return cors_preflight(req.headers());
    }
    let started = Instant::now();
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(Operation::from_target);
    let mut resp = handle_kinesis(&svc, bodies, req).await;
    if origin {
        add_cors(&mut resp);
    }
    if svc.config.metrics {
        let status = resp.status();
        let outcome = match resp.headers().get("x-amzn-ErrorType") {
            _ if resp.extensions().get::<InjectedReset>().is_some() => OUTCOME_CONNECTION_RESET,
            Some(code) => code.to_str().unwrap_or("Unknown"),
            None if status.is_success() => OUTCOME_SUCCESS,
            None => status.as_str(),
        };
        let operation = op.map_or("Unknown", |op| op.name());
        svc.metrics
            .observe_request(operation, outcome, started.elapsed().as_secs_f64());
    }
    resp
}

/// A SubscribeToShard response: `200`, then the event stream as it is produced
/// (chunked on HTTP/1.1, DATA frames on HTTP/2).
fn event_stream_response(events: ops::SubscribeToShardStream) -> Response<Body> {
    let mut r = Response::new(events.into_body());
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kinesis_proto::event_stream::CONTENT_TYPE),
    );
    h.insert("x-amzn-RequestId", request_id());
    r
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

/// An STS call (the Java KPL's `GetCallerIdentity`), answered in XML.
async fn sts(svc: &Service, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = http_body_util::Limited::new(body, crate::sts::MAX_BODY_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let id = request_id();
    let (status, xml) = crate::sts::answer(
        &svc.config.account_id,
        id.to_str().unwrap_or("0"),
        &parts.headers,
        &body,
    );
    let mut r = respond(status, "text/xml", Bytes::from(xml));
    r.headers_mut().insert("x-amzn-RequestId", id);
    r
}

/// Handle one Kinesis call with AWS's protocol-level error precedence.
async fn handle_kinesis(
    svc: &Arc<Service>,
    bodies: &BodyBudget,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
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
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let op = target.and_then(Operation::from_target);
    let max = svc.config.max_body_bytes;
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
            None => xml(
                StatusCode::FORBIDDEN,
                "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n",
            ),
            Some(_) => xml(StatusCode::NOT_FOUND, "<UnknownOperationException/>\n"),
        };
    };
    // Step 6 of the precedence: with `--auth`, the signature's header is
    // checked before any body is read, so that nobody without a listed key
    // can make the broker buffer one (docs/fidelity.md).
    let now = SystemTime::now();
    if let Some(keys) = &svc.config.auth
        && !legacy
    {
        let Some(op) = op else {
            return error_response(enc, &KinesisError::new(ErrorCode::UnknownOperation, ""));
        };
        if let Err(e) = keys.check_header(&parts, &svc.config.region, now) {
            return auth_refused(op, enc, &e);
        }
    }
    let held = match bodies
        .read(
            body,
            announced,
            max,
            svc.config.connection_limits.body_read_timeout,
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
    let structure = kinesis_proto::shape::is_structure(enc, &body);
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
    match &svc.config.auth {
        Some(keys) => {
            if let Err(e) = keys.verify(&parts, &body, &svc.config.region, now) {
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
    let fault = svc.faults.decide(op.name());
    if let Some(delay) = fault.delay {
        tokio::time::sleep(delay).await;
    }
    if let FaultOutcome::Fail(e) = &fault.outcome {
        tracing::debug!(operation = op.name(), error = %e, "injected fault");
        return error_response(enc, e);
    }
    if op == Operation::SubscribeToShard {
        return match ops::subscribe(svc, enc, &body) {
            Ok(events) if fault.outcome == FaultOutcome::ResetConnection => {
                cut_after_first_frame(event_stream_response(events))
            }
            Ok(events) => event_stream_response(events),
            Err(e) => {
                tracing::debug!(operation = op.name(), error = %e, "request failed");
                error_response(enc, &e)
            }
        };
    }
    match ops::dispatch_off_runtime(svc, op, enc, body.clone()).await {
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

/// Load a TLS acceptor from PEM files, offering h2 and http/1.1 by ALPN.
pub fn tls_acceptor(files: &crate::config::TlsFiles) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use std::io::{BufReader, Error, ErrorKind};
    let mut certs_reader = BufReader::new(std::fs::File::open(&files.cert)?);
    let certs = rustls_pemfile::certs(&mut certs_reader).collect::<Result<Vec<_>, _>>()?;
    let mut key_reader = BufReader::new(std::fs::File::open(&files.key)?);
    let key = rustls_pemfile::private_key(&mut key_reader)?
        .ok_or_else(|| Error::new(ErrorKind::InvalidData, "no private key in the key file"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::new(ErrorKind::InvalidInput, e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

fn connection_builder(
    limits: &ConnectionLimits,
) -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Request heads beyond this do not fit (clients send a few KiB); it bounds
    // what a connection can make the broker buffer before a request starts.
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HTTP1_BUFFER);
    // Receive windows and frames sized for megabyte PutRecords bodies, but
    // small enough that what a peer may send before the broker reads (at most
    // the connection window, plus one frame) stays a few MiB per connection.
    b.http2()
        .timer(TokioTimer::new())
        .initial_stream_window_size(1024 * 1024)
        .initial_connection_window_size(2 * 1024 * 1024)
        .max_frame_size(256 * 1024)
        .max_concurrent_streams(limits.h2_max_concurrent_streams);
    b
}

/// The largest HTTP/1.1 read buffer, and so the largest request head.
const MAX_HTTP1_BUFFER: usize = 32 * 1024;

/// How long a connection closed for overstaying gets to finish what is in
/// progress.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How long the accept loop pauses after a failed accept.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A connection's byte stream, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Accept connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    svc: Arc<Service>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = svc.config.connection_limits.clone();
    let cap = ConnectionCap::new(limits.max_connections);
    let bodies = BodyBudget::new(
        limits
            .max_inflight_body_bytes
            .max(svc.config.max_body_bytes),
    );
    let builder = Arc::new(connection_builder(&limits));
    let mut last_refusal_log: Option<Instant> = None;
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors, say: pause instead of spinning on
                        // the same error until connections close.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                // Over the cap, close at once: the client learns right away
                // and the listen backlog does not fill with waiting clients.
                let Some(slot) = cap.admit() else {
                    drop(tcp);
                    if svc.config.metrics {
                        svc.metrics.connection_cut("max_connections");
                    }
                    if last_refusal_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        last_refusal_log = Some(Instant::now());
                        tracing::warn!(
                            max_connections = limits.max_connections,
                            "connection limit reached; closing new connections"
                        );
                    }
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let svc = Arc::clone(&svc);
                let tls = tls.clone();
                let bodies = bodies.clone();
                let builder = Arc::clone(&builder);
                let limits = limits.clone();
                let connection = svc.config.metrics.then(|| svc.metrics.connection_guard());
                conns.spawn(async move {
                    let _slot = slot;
                    let _connection = connection;
                    let io: Box<dyn Io> = match tls {
                        Some(acceptor) => {
                            match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
                                Ok(Ok(stream)) => Box::new(stream),
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    if svc.config.metrics {
                                        svc.metrics.connection_cut("tls_handshake_timeout");
                                    }
                                    return;
                                }
                            }
                        }
                        None => Box::new(tcp),
                    };
                    let activity = Activity::new();
                    let watcher = Arc::clone(&svc);
                    let service = {
                        let activity = Arc::clone(&activity);
                        service_fn(move |req| {
                            let svc = Arc::clone(&svc);
                            let bodies = bodies.clone();
                            let request = activity.request();
                            async move {
                                let resp = handle(svc, &bodies, req).await;
                                Ok::<_, Infallible>(resp.map(|b| Counted::new(b, request)))
                            }
                        })
                    };
                    let conn = builder.serve_connection(
                        TokioIo::new(Watched::new(io, Arc::clone(&activity))),
                        service,
                    );
                    tokio::pin!(conn);
                    let result = loop {
                        let deadline = activity.deadline(&limits);
                        tokio::select! {
                            r = conn.as_mut() => break r,
                            _ = tokio::time::sleep_until(deadline) => {
                                let Some(limit) = activity.overstayed(&limits, tokio::time::Instant::now()) else {
                                    continue;
                                };
                                tracing::debug!(%peer, limit, "closing a connection that sent no request head, or no bytes, in time");
                                if watcher.config.metrics {
                                    watcher.metrics.connection_cut(limit);
                                }
                                conn.as_mut().graceful_shutdown();
                                break tokio::time::timeout(CLOSE_GRACE, conn.as_mut())
                                    .await
                                    .unwrap_or(Ok(()));
                            }
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    conns.abort_all();
    // Wait for the aborted connections to be dropped: they hold the service
    // (and through it the data dir's lock) until then.
    while conns.join_next().await.is_some() {}
}
