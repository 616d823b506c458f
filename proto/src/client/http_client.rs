//! The hyper connection pools a client sends through: TCP, TLS and the
//! HTTP versions each pool speaks.

use super::{ClientConfig, ClientError};
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::Arc;
use std::time::Duration;

/// Below the 60 s idle timeout of AWS load balancers, so that a pooled
/// connection is not reused just as the far end closes it (which would turn
/// into a maybe-applied transport error).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// HTTP/2 flow-control windows large enough for 10 MiB GetRecords pages
/// (see the h2 note in the toolchain notes).
const H2_STREAM_WINDOW: u32 = 8 << 20;
const H2_CONNECTION_WINDOW: u32 = 16 << 20;

/// The pool type every request goes through.
pub(super) type HttpClient =
    hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Which HTTP versions a connection pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Versions {
    /// As [`ClientConfig::http2`] says: HTTP/2 only, or HTTP/1.1 only.
    Configured,
    /// Whatever TLS ALPN picks, `h2` preferred (for event streams on `https://`).
    Negotiated,
}

/// A pool for `config` speaking `versions`.
pub(super) fn build_http_client(
    config: &ClientConfig,
    versions: Versions,
) -> Result<HttpClient, ClientError> {
    let tls = tls_config(config.custom_ca.as_deref())?;
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    // Requests are small and latency-bound; Nagle would hold the body back.
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(config.connect_timeout));
    let tls = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let connector = match versions {
        Versions::Negotiated => tls.enable_all_versions().wrap_connector(tcp),
        Versions::Configured if config.http2 => tls.enable_http2().wrap_connector(tcp),
        Versions::Configured => tls.enable_http1().wrap_connector(tcp),
    };
    let mut builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
    builder
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(config.max_connections);
    if config.http2 || versions == Versions::Negotiated {
        builder
            .http2_only(config.http2)
            .timer(TokioTimer::new())
            .http2_initial_stream_window_size(H2_STREAM_WINDOW)
            .http2_initial_connection_window_size(H2_CONNECTION_WINDOW);
    }
    Ok(builder.build(connector))
}

/// The TLS settings, built once per client: Mozilla's roots plus `custom_ca`.
pub(super) fn tls_config(custom_ca: Option<&[u8]>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = custom_ca {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ClientError::Config(format!("custom_ca: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Config(format!("custom_ca: {e}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientError::Config(
                "custom_ca holds no PEM certificate".into(),
            ));
        }
    }
    // An explicit provider: with several rustls backends in one build the
    // process-wide default is ambiguous and `builder()` would panic.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
