#![cfg(feature = "client")]
//! A low-level async Kinesis client: one signed `POST /` per call, typed
//! inputs and outputs from [`crate::model`], and the standard retry policy.
//!
//! Works against the toolkit's broker, kinesalite, kinesis-mock and Amazon
//! Kinesis. It is the transport of the producer (kpl) and consumer (kcl);
//! it does no batching, aggregation or record-level retrying itself.
//! SubscribeToShard returns a [`SubscribeToShardStream`] of events
//! ([`Client::subscribe_to_shard`]).
//!
//! ```no_run
//! use kinesis_proto::client::{Client, ClientConfig, Credentials};
//! use kinesis_proto::model::{ListShardsInput, StreamRef};
//!
//! # async fn demo() -> Result<(), kinesis_proto::client::ClientError> {
//! let client = Client::new(
//!     ClientConfig::builder()
//!         .endpoint("http://127.0.0.1:4567")
//!         .region("us-east-1")
//!         .credentials(Credentials::from_env().unwrap_or_else(Credentials::test))
//!         .build(),
//! )?;
//! let shards = client
//!     .list_shards(&ListShardsInput {
//!         stream: StreamRef::name("orders"),
//!         ..Default::default()
//!     })
//!     .await?;
//! println!("{} shards", shards.shards.len());
//! # Ok(())
//! # }
//! ```
//!
//! Requests are `POST /` with `Content-Type`, `X-Amz-Target`, `Host`,
//! `X-Amz-Date`, `User-Agent`, a SigV4 `Authorization` over the exact body
//! (service `kinesis`) and, for temporary credentials, `X-Amz-Security-Token`.
//!
//! Credentials are fixed keys ([`ClientConfig::credentials`]), any
//! [`CredentialsProvider`] ([`ClientConfig::credentials_provider`], cached and
//! refreshed before expiry), or by default: the standard AWS chain
//! ([`DefaultChain`]) for AWS endpoints and the SigV4 test keys for any other.
//!
//! [`Client::call`] retries per [`RetryPolicy`]: throttling, 5xx, timeouts and
//! connection failures, but never a PutRecord/PutRecords that may already
//! have been stored. Even so, Kinesis writes are at-least-once; the producer
//! uses [`Client::call_once`] (or `max_attempts = 1`) and retries records itself.

mod config;
pub mod credentials;
mod endpoint;
mod error;
mod http_client;
mod operations;
mod response;
mod retry;
mod shard_listing;
mod signing;
mod subscribe_to_shard;

pub use config::{ClientConfig, ClientConfigBuilder};
pub use credentials::{
    CachedProvider, ChainProvider, ContainerProvider, Credentials, CredentialsProvider,
    DefaultChain, Env, EnvironmentProvider, InstanceMetadataProvider, ProfileProvider,
    StaticProvider, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, WebIdentityProvider,
};
pub use error::{ClientError, Detail, Origin, ServiceError, Source};
pub use retry::{Jitter, RetryPolicy};
pub use signing::sign_headers;
pub use subscribe_to_shard::SubscribeToShardStream;

use crate::codec::Encoding;
use crate::model::*;
use crate::operation_types::OperationInput;
use bytes::Bytes;
use endpoint::Endpoint;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use http_client::{HttpClient, Versions, build_http_client};
use response::{classify_send_error, decode_output, parse_error_response};
use signing::Signer;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::Semaphore;

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("kinesis-toolkit/", env!("CARGO_PKG_VERSION"));

/// The SigV4 signing name of Kinesis.
const SERVICE: &str = "kinesis";
const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");

/// A Kinesis client; cheap to clone (all clones share connections and limits).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    endpoint: Endpoint,
    http: HttpClient,
    /// For SubscribeToShard on `https://` without [`ClientConfig::http2`]:
    /// offers `h2` and `http/1.1` by ALPN, since AWS serves event streams
    /// over HTTP/2. `None` when `http` is the one to use.
    stream_http: Option<HttpClient>,
    signer: Signer,
    retry: RetryPolicy,
    content_type: HeaderValue,
    /// Bounds requests in flight; hyper-util's pool only bounds idle connections.
    limiter: Semaphore,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint.uri_str)
            .field("region", &self.inner.config.region)
            .field("encoding", &self.inner.config.encoding)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for this configuration; fails on an invalid endpoint, region,
    /// credentials, limits or CA bundle. Connections are opened lazily.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let endpoint = Endpoint::parse(&config.effective_endpoint())?;
        if config.region.is_empty() || HeaderValue::from_str(&config.region).is_err() {
            return Err(ClientError::Config(format!(
                "invalid region {:?}",
                config.region
            )));
        }
        if config.max_connections == 0 {
            return Err(ClientError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        if config.max_attempts == 0 {
            return Err(ClientError::Config(
                "max_attempts must be at least 1".into(),
            ));
        }
        if config.request_timeout.is_zero() {
            return Err(ClientError::Config(
                "request_timeout must be positive".into(),
            ));
        }
        if config.subscribe_read_timeout.is_zero() {
            return Err(ClientError::Config(
                "subscribe_read_timeout must be positive".into(),
            ));
        }
        let signer = match (config.effective_credentials(), &config.credentials_provider) {
            (Some(creds), _) => {
                if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
                    return Err(ClientError::Config("empty access key id or secret".into()));
                }
                Signer::new(&creds, &config.region, SERVICE)
            }
            (None, Some(provider)) => {
                Signer::with_provider(Arc::clone(provider), &config.region, SERVICE)
            }
            // An AWS endpoint and nothing configured: the standard chain. If it
            // finds nothing, every call fails with NoCredentials saying what was tried.
            (None, None) => Signer::with_provider(
                Arc::new(DefaultChain::builder().region(&config.region).build()),
                &config.region,
                SERVICE,
            ),
        };
        let http = build_http_client(&config, Versions::Configured)?;
        let stream_http = if endpoint.uri.scheme_str() == Some("https") && !config.http2 {
            Some(build_http_client(&config, Versions::Negotiated)?)
        } else {
            None
        };
        Ok(Client {
            inner: Arc::new(Inner {
                endpoint,
                http,
                stream_http,
                signer,
                retry: RetryPolicy {
                    max_attempts: config.max_attempts,
                    base: config.backoff_base,
                    cap: config.backoff_cap,
                },
                content_type: HeaderValue::from_static(config.encoding.content_type()),
                limiter: Semaphore::new(config.max_connections.min(Semaphore::MAX_PERMITS)),
                config,
            }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The retry policy [`call`](Self::call) applies.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// Call the operation `input` is for, with the standard retry policy
    /// (see [`RetryPolicy`]).
    ///
    /// An empty success body decodes as `{}`.
    pub async fn call<I: OperationInput>(&self, input: &I) -> Result<I::Output, ClientError> {
        self.call_with_policy(input, self.inner.retry).await
    }

    /// Call the operation `input` is for exactly once, without retries (the
    /// producer does its own).
    pub async fn call_once<I: OperationInput>(&self, input: &I) -> Result<I::Output, ClientError> {
        let once = RetryPolicy {
            max_attempts: 1,
            ..self.inner.retry
        };
        self.call_with_policy(input, once).await
    }

    /// Call the operation `input` is for with an explicit retry policy.
    pub async fn call_with_policy<I: OperationInput>(
        &self,
        input: &I,
        policy: RetryPolicy,
    ) -> Result<I::Output, ClientError> {
        // Serialized once: every attempt signs and sends these same bytes.
        let body = input.body(self.inner.config.encoding);
        self.send_with_retries(I::OPERATION, body, policy)
            .await
            .and_then(|(headers, bytes)| {
                decode_output(&headers, &bytes, self.inner.config.encoding)
            })
            .map_err(|e| e.in_call(I::NAME, input.stream()))
    }

    /// Call `op` with a body no input type models (a deliberately malformed
    /// request, an operation newer than this crate), with the standard retry policy.
    pub async fn call_untyped<B: serde::Serialize, O: serde::de::DeserializeOwned>(
        &self,
        op: Operation,
        body: &B,
    ) -> Result<O, ClientError> {
        let body = self.inner.config.encoding.encode(body);
        self.send_with_retries(op, body, self.inner.retry)
            .await
            .and_then(|(headers, bytes)| {
                decode_output(&headers, &bytes, self.inner.config.encoding)
            })
            .map_err(|e| e.in_call(op.name(), None))
    }

    // Not generic, so the retry and transport code is compiled once.
    async fn send_with_retries(
        &self,
        op: Operation,
        body: Bytes,
        policy: RetryPolicy,
    ) -> Result<(HeaderMap, Bytes), ClientError> {
        let mut attempts = 0u32;
        let mut jitter: Option<Jitter> = None;
        loop {
            attempts += 1;
            let err = match self.send_once(op, body.clone()).await {
                Ok(ok) => return Ok(ok),
                Err(err) => err,
            };
            if !policy.should_retry(op, &err, attempts) {
                return Err(err);
            }
            let delay = policy.backoff(attempts, jitter.get_or_insert_with(Jitter::from_entropy));
            tracing::debug!(
                op = op.name(),
                attempt = attempts,
                ?delay,
                error = %err,
                "retrying Kinesis call"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        op: Operation,
        body: Bytes,
    ) -> Result<(HeaderMap, Bytes), ClientError> {
        let inner = &*self.inner;
        let _permit = inner
            .limiter
            .acquire()
            .await
            .map_err(|_| ClientError::Config("connection limiter closed".into()))?;
        // Signed after queueing for a slot, so X-Amz-Date is fresh.
        let req = self.signed_request(op, body, inner.config.encoding).await?;
        let timeout = inner.config.request_timeout;
        let exchange = async {
            let resp = inner.http.request(req).await.map_err(classify_send_error)?;
            let (parts, incoming) = resp.into_parts();
            let bytes = incoming
                .collect()
                .await
                .map_err(|e| ClientError::Transport(Detail::caused_by(e)))?
                .to_bytes();
            Ok::<_, ClientError>((parts, bytes))
        };
        let (parts, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|elapsed| ClientError::timeout(timeout, elapsed))??;
        if parts.status.is_success() {
            Ok((parts.headers, bytes))
        } else {
            Err(parse_error_response(
                parts.status.as_u16(),
                &parts.headers,
                &bytes,
                inner.config.encoding,
            ))
        }
    }

    /// The signed request for one attempt, credentials refreshed first if a
    /// provider supplies them (streaming calls such as SubscribeToShard build
    /// their request through this too).
    async fn signed_request(
        &self,
        op: Operation,
        body: Bytes,
        encoding: Encoding,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        self.inner.signer.refresh().await?;
        self.build_request_as(op, body, encoding, SystemTime::now())
    }

    /// The signed request for one attempt, with the credentials as cached
    /// (see [`signed_request`](Self::signed_request)).
    #[cfg(test)]
    fn build_request(
        &self,
        op: Operation,
        body: Bytes,
        time: SystemTime,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        self.build_request_as(op, body, self.inner.config.encoding, time)
    }

    /// [`build_request`](Self::build_request) with a body in `encoding`.
    fn build_request_as(
        &self,
        op: Operation,
        body: Bytes,
        encoding: Encoding,
        time: SystemTime,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let inner = &*self.inner;
        let target = op.target();
        let mut headers = HeaderMap::with_capacity(8);
        inner.signer.sign_into(
            "POST",
            &inner.endpoint.uri_str,
            &[
                ("content-type", encoding.content_type()),
                ("host", &inner.endpoint.host),
                ("x-amz-target", &target),
            ],
            &body,
            time,
            &mut headers,
        )?;
        headers.insert(
            CONTENT_TYPE,
            if encoding == inner.config.encoding {
                inner.content_type.clone()
            } else {
                HeaderValue::from_static(encoding.content_type())
            },
        );
        headers.insert(
            X_AMZ_TARGET,
            HeaderValue::from_str(&target)
                .map_err(|e| ClientError::Config(format!("target header: {e}")))?,
        );
        // Over HTTP/2 the signed host travels as :authority (taken from the
        // URI, whose authority equals it); a Host header there is redundant.
        if !inner.config.http2 {
            headers.insert(HOST, inner.endpoint.host_header.clone());
        }
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = inner.endpoint.uri.clone();
        *req.headers_mut() = headers;
        Ok(req)
    }
}

#[cfg(test)]
mod tests;
