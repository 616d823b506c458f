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
mod error;
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
use crate::error::{ErrorBody, KinesisError};
use crate::model::*;
use crate::operation_types::{OperationInput, OperationOutput};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use signing::Signer;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Semaphore;

/// The `User-Agent` every request carries.
pub const USER_AGENT: &str = concat!("kinesis-toolkit/", env!("CARGO_PKG_VERSION"));

/// The SigV4 signing name of Kinesis.
const SERVICE: &str = "kinesis";
const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
const X_AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
/// Below the 60 s idle timeout of AWS load balancers, so that a pooled
/// connection is not reused just as the far end closes it (which would turn
/// into a maybe-applied transport error).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(50);
/// HTTP/2 flow-control windows large enough for 10 MiB GetRecords pages
/// (see the h2 note in the toolchain notes).
const H2_STREAM_WINDOW: u32 = 8 << 20;
const H2_CONNECTION_WINDOW: u32 = 16 << 20;
/// How much of an unreadable error body is kept in [`ClientError::Http`].
const ERROR_SNIPPET: usize = 256;

type HttpClient = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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

/// The endpoint, normalised once so that the signed `host` and the sent
/// `Host`/`:authority` are byte-identical.
#[derive(Debug, Clone, PartialEq)]
struct Endpoint {
    /// `scheme://host[:port]/` with a default port dropped.
    uri: Uri,
    uri_str: String,
    /// `host[:port]` with a default port dropped.
    host: String,
    host_header: HeaderValue,
}

impl Endpoint {
    fn parse(raw: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Config(format!("endpoint {raw:?}: {why}"));
        let uri: Uri = raw.trim().parse().map_err(|e| bad(&format!("{e}")))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err(bad("scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user info is not supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("Kinesis endpoints have no path or query"));
        }
        let host = match authority.port_u16() {
            Some(port) if port != default_port => format!("{}:{port}", authority.host()),
            _ => authority.host().to_string(),
        };
        if authority.host().is_empty() {
            return Err(bad("no host"));
        }
        let uri_str = format!("{}://{host}/", uri.scheme_str().unwrap_or("https"));
        let uri: Uri = uri_str.parse().map_err(|e| bad(&format!("{e}")))?;
        let host_header = HeaderValue::from_str(&host).map_err(|e| bad(&format!("{e}")))?;
        Ok(Endpoint {
            uri,
            uri_str,
            host,
            host_header,
        })
    }
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
        let body = self.inner.config.encoding.encode(input);
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

/// The named method of each operation: a thin wrapper over [`Client::call`],
/// for inputs shared by two operations wrapping them into the operation's own.
macro_rules! operations {
    ($( $(#[$doc:meta])* $method:ident($input:ty) -> $output:ty = |$i:ident| $typed:expr; )*) => {
        impl Client {
            $(
                $(#[$doc])*
                pub async fn $method(&self, input: &$input) -> Result<$output, ClientError> {
                    let $i = input;
                    let output = self.call($typed).await?;
                    Ok(output.into_return())
                }
            )*
        }
    };
}

/// Converts an operation's output into what its named method returns: `()`
/// for operations without output members, the output itself otherwise.
trait IntoReturn<R> {
    /// The value the named method returns.
    fn into_return(self) -> R;
}

impl<O: OperationOutput> IntoReturn<O> for O {
    fn into_return(self) -> O {
        self
    }
}

impl IntoReturn<()> for Empty {
    fn into_return(self) {}
}

operations! {
    /// AddTagsToStream.
    add_tags_to_stream(AddTagsToStreamInput) -> () = |i| i;
    /// CreateStream.
    create_stream(CreateStreamInput) -> () = |i| i;
    /// DecreaseStreamRetentionPeriod.
    decrease_stream_retention_period(RetentionPeriodInput) -> () = |i| &DecreaseStreamRetentionPeriodInput(i.clone());
    /// DeleteStream.
    delete_stream(DeleteStreamInput) -> () = |i| i;
    /// DeregisterStreamConsumer.
    deregister_stream_consumer(ConsumerRef) -> () = |i| &DeregisterStreamConsumerInput(i.clone());
    /// DescribeStream (legacy; prefer ListShards and DescribeStreamSummary).
    describe_stream(DescribeStreamInput) -> DescribeStreamOutput = |i| i;
    /// DescribeStreamConsumer.
    describe_stream_consumer(ConsumerRef) -> DescribeStreamConsumerOutput = |i| &DescribeStreamConsumerInput(i.clone());
    /// DescribeStreamSummary.
    describe_stream_summary(DescribeStreamSummaryInput) -> DescribeStreamSummaryOutput = |i| i;
    /// DisableEnhancedMonitoring.
    disable_enhanced_monitoring(EnhancedMonitoringInput) -> EnhancedMonitoringOutput = |i| &DisableEnhancedMonitoringInput(i.clone());
    /// EnableEnhancedMonitoring.
    enable_enhanced_monitoring(EnhancedMonitoringInput) -> EnhancedMonitoringOutput = |i| &EnableEnhancedMonitoringInput(i.clone());
    /// GetRecords.
    get_records(GetRecordsInput) -> GetRecordsOutput = |i| i;
    /// GetShardIterator.
    get_shard_iterator(GetShardIteratorInput) -> GetShardIteratorOutput = |i| i;
    /// IncreaseStreamRetentionPeriod.
    increase_stream_retention_period(RetentionPeriodInput) -> () = |i| &IncreaseStreamRetentionPeriodInput(i.clone());
    /// ListShards (one page).
    list_shards(ListShardsInput) -> ListShardsOutput = |i| i;
    /// ListStreamConsumers (one page).
    list_stream_consumers(ListStreamConsumersInput) -> ListStreamConsumersOutput = |i| i;
    /// ListStreams (one page).
    list_streams(ListStreamsInput) -> ListStreamsOutput = |i| i;
    /// ListTagsForStream (one page).
    list_tags_for_stream(ListTagsForStreamInput) -> ListTagsForStreamOutput = |i| i;
    /// MergeShards.
    merge_shards(MergeShardsInput) -> () = |i| i;
    /// PutRecord; see [`RetryPolicy`] on duplicates.
    put_record(PutRecordInput) -> PutRecordOutput = |i| i;
    /// PutRecords; per-record failures are in the output, not an error. See [`RetryPolicy`] on duplicates.
    put_records(PutRecordsInput) -> PutRecordsOutput = |i| i;
    /// RegisterStreamConsumer.
    register_stream_consumer(RegisterStreamConsumerInput) -> RegisterStreamConsumerOutput = |i| i;
    /// RemoveTagsFromStream.
    remove_tags_from_stream(RemoveTagsFromStreamInput) -> () = |i| i;
    /// SplitShard.
    split_shard(SplitShardInput) -> () = |i| i;
    /// StartStreamEncryption.
    start_stream_encryption(StreamEncryptionInput) -> () = |i| &StartStreamEncryptionInput(i.clone());
    /// StopStreamEncryption.
    stop_stream_encryption(StreamEncryptionInput) -> () = |i| &StopStreamEncryptionInput(i.clone());
    /// UpdateShardCount.
    update_shard_count(UpdateShardCountInput) -> UpdateShardCountOutput = |i| i;
    /// UpdateStreamMode.
    update_stream_mode(UpdateStreamModeInput) -> () = |i| i;
}

impl Client {
    /// DescribeLimits (no input members; sends `{}`).
    pub async fn describe_limits(&self) -> Result<DescribeLimitsOutput, ClientError> {
        self.call(&DescribeLimitsInput {}).await
    }
}

impl Client {
    /// SubscribeToShard: open an event stream of the shard's records for a
    /// registered, ACTIVE consumer.
    ///
    /// The request body is JSON. It goes over HTTP/2 when
    /// [`ClientConfig::http2`] is set (h2c with prior knowledge on `http://`)
    /// or when TLS ALPN selects `h2` on `https://`, else over HTTP/1.1 with a
    /// chunked response. Errors before the stream (unknown consumer or shard,
    /// a consumer not ACTIVE, a second call within 5 s) are
    /// [`ClientError::Service`] as for other calls. Returns once the
    /// `initial-response` event has arrived.
    ///
    /// [`ClientConfig::request_timeout`] bounds everything up to that event;
    /// afterwards [`ClientConfig::subscribe_read_timeout`] bounds each wait
    /// for more bytes. A slot of [`ClientConfig::max_connections`] is held
    /// only until then, so long-lived subscriptions do not starve other
    /// calls. Never retried: AWS allows one call a second per consumer and
    /// shard, so the caller decides when to subscribe again (typically
    /// `AFTER_SEQUENCE_NUMBER` the last `ContinuationSequenceNumber`).
    pub async fn subscribe_to_shard(
        &self,
        input: &SubscribeToShardInput,
    ) -> Result<SubscribeToShardStream, ClientError> {
        let inner = &*self.inner;
        let stream = input.stream().map(str::to_string);
        let body = Encoding::Json.encode(input);
        let _permit = inner
            .limiter
            .acquire()
            .await
            .map_err(|_| ClientError::Config("connection limiter closed".into()))?;
        let mut req = self
            .signed_request(Operation::SubscribeToShard, body, Encoding::Json)
            .await?;
        let http = match &inner.stream_http {
            Some(negotiated) => {
                // HTTP/2 carries the host as :authority; for HTTP/1.1 hyper
                // adds the same Host from the URI.
                req.headers_mut().remove(HOST);
                negotiated
            }
            None => &inner.http,
        };
        let timeout = inner.config.request_timeout;
        let read_timeout = inner.config.subscribe_read_timeout;
        let handshake = async {
            let resp = http.request(req).await.map_err(classify_send_error)?;
            let (parts, incoming) = resp.into_parts();
            if parts.status != http::StatusCode::OK {
                let bytes = incoming
                    .collect()
                    .await
                    .map_err(|e| ClientError::Transport(Detail::caused_by(e)))?
                    .to_bytes();
                return Err(parse_error_response(
                    parts.status.as_u16(),
                    &parts.headers,
                    &bytes,
                    Encoding::Json,
                ));
            }
            if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
                let ct = ct.to_str().unwrap_or("");
                let base = ct.split(';').next().unwrap_or("").trim();
                if !base.eq_ignore_ascii_case(crate::event_stream::CONTENT_TYPE) {
                    return Err(ClientError::Decode(
                        format!(
                            "SubscribeToShard answered with content type {ct:?}, not an event stream"
                        )
                        .into(),
                    ));
                }
            }
            let request_id = parts
                .headers
                .get("x-amzn-requestid")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut stream = SubscribeToShardStream::new(
                incoming,
                parts.version,
                request_id,
                read_timeout,
                stream.clone(),
            );
            stream.read_initial_response().await?;
            Ok(stream)
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|elapsed| ClientError::timeout(timeout, elapsed))
            .and_then(|r| r)
            .map_err(|e| e.in_call(Operation::SubscribeToShard.name(), stream.as_deref()))
    }
}

/// Which HTTP versions a connection pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Versions {
    /// As [`ClientConfig::http2`] says: HTTP/2 only, or HTTP/1.1 only.
    Configured,
    /// Whatever TLS ALPN picks, `h2` preferred (for event streams on `https://`).
    Negotiated,
}

fn build_http_client(config: &ClientConfig, versions: Versions) -> Result<HttpClient, ClientError> {
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
fn tls_config(custom_ca: Option<&[u8]>) -> Result<rustls::ClientConfig, ClientError> {
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

fn response_encoding(headers: &HeaderMap) -> Option<Encoding> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::from_content_type)
}

/// Decode a success body; empty means `{}` (emulators send nothing for empty outputs).
fn decode_output<O: DeserializeOwned>(
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
fn parse_error_response(
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

fn classify_send_error(e: hyper_util::client::legacy::Error) -> ClientError {
    // hyper-util reports "never connected" (DNS, TCP, TLS) as connect errors;
    // everything after that may have reached the server.
    if e.is_connect() {
        ClientError::Connect(Detail::caused_by(e))
    } else {
        ClientError::Transport(Detail::caused_by(e))
    }
}

#[cfg(test)]
mod tests;
