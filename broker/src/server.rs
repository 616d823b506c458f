//! The HTTP front door: HTTP/1.1 and cleartext HTTP/2 on one port (TLS with
//! ALPN when configured), connection limits, CORS, and routing to the broker's
//! own endpoints or to the Kinesis call pipeline ([`ops::handle`]).

use crate::admin::{self, refused};
use crate::body::BodyBudget;
use crate::config::ConnectionLimits;
use crate::connection::{Activity, ConnectionCap, Counted, Watched};
use crate::metrics::TEXT_CONTENT_TYPE;
use crate::ops;
use crate::response::{Body, request_id, respond};
use crate::service::Service;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

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
            if svc.config().protect_metrics {
                let (parts, _) = req.into_parts();
                let now = SystemTime::now();
                if let Err(r) = admin::check(svc.config(), &parts, now)
                    .and_then(|a| admin::verify_signature(svc.config(), a, &parts, b"", now))
                {
                    return refused(r);
                }
            }
            return respond(
                StatusCode::OK,
                TEXT_CONTENT_TYPE,
                Bytes::from(svc.metrics().gather_text()),
            );
        }
        (_, "/admin/faults") => {
            return crate::admin_faults::handle(&svc, bodies, req).await;
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
    let mut resp = ops::handle(&svc, bodies, req).await;
    if origin {
        add_cors(&mut resp);
    }
    resp
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
        &svc.config().account_id,
        id.to_str().unwrap_or("0"),
        &parts.headers,
        &body,
    );
    let mut r = respond(status, "text/xml", Bytes::from(xml));
    r.headers_mut().insert("x-amzn-RequestId", id);
    r
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
    let limits = svc.config().connection_limits.clone();
    let cap = ConnectionCap::new(limits.max_connections);
    let bodies = BodyBudget::new(
        limits
            .max_inflight_body_bytes
            .max(svc.config().max_body_bytes),
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
                    if svc.config().metrics {
                        svc.metrics().connection_cut("max_connections");
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
                let connection = svc.config().metrics.then(|| svc.metrics().connection_guard());
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
                                    if svc.config().metrics {
                                        svc.metrics().connection_cut("tls_handshake_timeout");
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
                                if watcher.config().metrics {
                                    watcher.metrics().connection_cut(limit);
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
