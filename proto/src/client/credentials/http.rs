//! One-off HTTP exchanges with metadata services and STS (rare: once per
//! credentials refresh), over the client's TLS settings.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Metadata and STS answers are a few KiB; more is not a credentials answer.
const MAX_BODY: usize = 1 << 20;

/// An HTTP answer.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Bytes,
}

/// Why an exchange failed.
#[derive(Debug)]
pub(super) enum FetchError {
    /// Nothing listens there (or DNS/TLS failed): the service is not present.
    Connect(String),
    /// No answer in time.
    Timeout,
    /// The URL or the exchange was broken.
    Failed(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Connect(e) => write!(f, "cannot connect: {e}"),
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::Failed(e) => f.write_str(e),
        }
    }
}

/// Send one request and read the whole answer within `timeout`.
pub(super) async fn fetch(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    timeout: Duration,
) -> Result<Answer, FetchError> {
    let tls = super::super::http_client::tls_config(None)
        .map_err(|e| FetchError::Failed(e.to_string()))?;
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(timeout));
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
    let mut req = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| FetchError::Failed(format!("bad request to {url}: {e}")))?;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| {
            let chain = super::super::error::error_chain(&e);
            if e.is_connect() {
                FetchError::Connect(chain)
            } else {
                FetchError::Failed(chain)
            }
        })?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| FetchError::Failed(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| FetchError::Timeout)?
}
