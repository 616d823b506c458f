//! The HTTP front door: HTTP/1.1 and cleartext HTTP/2 on one port (TLS with
//! ALPN when configured), AWS's protocol-level error precedence, and dispatch.

use crate::ops;
use crate::service::Service;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kinesis_proto::codec::Encoding;
use kinesis_proto::model::Operation;
use kinesis_proto::{ErrorCode, KinesisError};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The response body type: whole bodies now, streamed event streams later.
pub type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn request_id() -> HeaderValue {
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
        .unwrap_or(HeaderValue::from_static("0"))
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
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
    let mut r = respond(status, enc.content_type(), enc.encode(&err.body()));
    // smithy-based SDKs read this header first.
    if let Ok(v) = HeaderValue::from_str(err.code.as_str()) {
        r.headers_mut().insert("x-amzn-ErrorType", v);
    }
    r
}

fn xml(status: StatusCode, body: &'static str) -> Response<Body> {
    respond(
        status,
        "application/xml",
        Bytes::from_static(body.as_bytes()),
    )
}

/// Handle one HTTP request.
pub async fn handle(svc: Arc<Service>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    if parts.method == Method::GET {
        match parts.uri.path() {
            "/health" | "/healthz" => {
                return respond(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n"));
            }
            _ => {}
        }
    }
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
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
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
    let body = match Limited::new(body, max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                return too_large();
            }
            return error_response(
                reply_enc,
                &KinesisError::serialization(format!("Failed to read the request body: {e}")),
            );
        }
    };
    if body.is_empty() {
        let err = match op {
            Some(_) => {
                KinesisError::serialization("Start of structure or map found where not expected.")
            }
            None => KinesisError::new(ErrorCode::UnknownOperation, ""),
        };
        let enc = if encoding == Some(Encoding::Json) {
            Encoding::Json
        } else {
            Encoding::Cbor
        };
        return error_response(enc, &err);
    }
    let Some(enc) = encoding else {
        return match target {
            None => xml(
                StatusCode::FORBIDDEN,
                "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n",
            ),
            Some(_) => xml(StatusCode::NOT_FOUND, "<UnknownOperationException/>\n"),
        };
    };
    let Some(op) = op else {
        return error_response(enc, &KinesisError::new(ErrorCode::UnknownOperation, ""));
    };
    match ops::dispatch(&svc, op, enc, &body) {
        Ok(out) => respond(StatusCode::OK, enc.content_type(), out),
        Err(e) => {
            tracing::debug!(operation = op.name(), error = %e, "request failed");
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

fn connection_builder() -> hyper_util::server::conn::auto::Builder<TokioExecutor> {
    let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Large windows: PutRecords bodies are megabytes, and fan-out pushes many events.
    b.http2()
        .initial_stream_window_size(8 * 1024 * 1024)
        .initial_connection_window_size(16 * 1024 * 1024)
        .max_frame_size(1024 * 1024 - 1)
        .max_concurrent_streams(1000);
    b
}

/// Accept connections until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    svc: Arc<Service>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let svc = Arc::clone(&svc);
                let tls = tls.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req| {
                        let svc = Arc::clone(&svc);
                        async move { Ok::<_, Infallible>(handle(svc, req).await) }
                    });
                    let result = match tls {
                        Some(acceptor) => match acceptor.accept(tcp).await {
                            Ok(stream) => connection_builder().serve_connection(TokioIo::new(stream), service).await,
                            Err(e) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                        None => connection_builder().serve_connection(TokioIo::new(tcp), service).await,
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    conns.abort_all();
}
