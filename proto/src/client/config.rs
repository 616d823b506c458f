//! Client settings.

use super::credentials::{Credentials, CredentialsProvider};
use crate::codec::Encoding;
use std::sync::Arc;
use std::time::Duration;

/// Settings of a [`Client`](super::Client); build one with [`ClientConfig::builder`].
///
/// Defaults follow the native KPL where it has an equivalent setting
/// (`RequestTimeout`, `ConnectTimeout`, `MaxConnections`) and the AWS SDKs'
/// standard retry mode otherwise.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// `http://` or `https://` URL of the service, without a path. Default
    /// (`None`): `https://kinesis.{region}.amazonaws.com`.
    pub endpoint: Option<String>,
    /// Signing region. Default `us-east-1`.
    pub region: String,
    /// Fixed signing credentials. Default (`None`): those of
    /// [`credentials_provider`](Self::credentials_provider) if set; otherwise,
    /// for an AWS endpoint (`*.amazonaws.com`, `*.amazonaws.com.cn`,
    /// `*.api.aws`), the standard credential chain ([`DefaultChain`](super::DefaultChain)),
    /// and for any other endpoint (the broker, kinesalite, kinesis-mock) the
    /// SigV4 test keys ([`Credentials::test`]).
    pub credentials: Option<Credentials>,
    /// Where credentials come from when they are not fixed: asked before each
    /// request through a cache that refreshes them before they expire
    /// (the AWS SDKs' `credentials_provider`). Default `None` (see
    /// [`credentials`](Self::credentials)). Setting one clears `credentials`
    /// and vice versa.
    pub credentials_provider: Option<Arc<dyn CredentialsProvider>>,
    /// Body encoding of requests (responses are decoded per their content type).
    /// Default JSON.
    pub encoding: Encoding,
    /// Limit on one attempt, from sending the request to reading the whole
    /// response (queueing for a connection slot is not counted). Default 6 s,
    /// the KPL's `RequestTimeout`.
    pub request_timeout: Duration,
    /// Limit on establishing a TCP connection. Default 6 s, the KPL's `ConnectTimeout`.
    pub connect_timeout: Duration,
    /// Maximum requests in flight at once (and idle connections kept) to the
    /// endpoint; further calls wait for a slot. Default 24, the KPL's
    /// `MaxConnections`. With [`http2`](Self::http2) this bounds concurrent streams.
    pub max_connections: usize,
    /// Total attempts per call under the standard retry policy (1 = no retries).
    /// Default 3. See [`RetryPolicy`](super::RetryPolicy) for what is retried.
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; it doubles per retry. Default 100 ms.
    pub backoff_base: Duration,
    /// Upper bound of any backoff delay. Default 20 s.
    pub backoff_cap: Duration,
    /// Extra trust anchors (PEM, one or more certificates) added to the
    /// built-in Mozilla roots, e.g. a test broker's self-signed CA. Default none.
    pub custom_ca: Option<Vec<u8>>,
    /// Speak HTTP/2 only: ALPN `h2` on `https://`, prior-knowledge h2c on
    /// `http://`. Default false (HTTP/1.1, as the native KPL does).
    pub http2: bool,
    /// Longest wait for more bytes of an open SubscribeToShard event stream
    /// (after its `initial-response`; [`request_timeout`](Self::request_timeout)
    /// bounds the call until then). Default 30 s, the Java SDK's Netty
    /// `readTimeout` that the KCL's fan-out client runs with; the service
    /// sends an event at least every few seconds, even on an idle shard.
    pub subscribe_read_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            endpoint: None,
            region: "us-east-1".to_string(),
            credentials: None,
            credentials_provider: None,
            encoding: Encoding::Json,
            request_timeout: Duration::from_secs(6),
            connect_timeout: Duration::from_secs(6),
            max_connections: 24,
            max_attempts: 3,
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(20),
            custom_ca: None,
            http2: false,
            subscribe_read_timeout: Duration::from_secs(30),
        }
    }
}

impl ClientConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder {
            config: ClientConfig::default(),
        }
    }

    /// The endpoint in effect: the configured one, or the region's AWS endpoint.
    pub fn effective_endpoint(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("https://kinesis.{}.amazonaws.com", self.region),
        }
    }

    /// The fixed credentials in effect: the configured ones, or the SigV4 test
    /// keys for an endpoint that is not AWS's; `None` when credentials come
    /// from a provider (the configured one, or the standard chain for AWS).
    pub fn effective_credentials(&self) -> Option<Credentials> {
        match (&self.credentials, &self.credentials_provider) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => None,
            (None, None) if self.is_aws_endpoint() => None,
            (None, None) => Some(Credentials::test()),
        }
    }

    /// Whether the endpoint in effect is Amazon's (where the test keys would
    /// only earn `UnrecognizedClientException`).
    pub fn is_aws_endpoint(&self) -> bool {
        let endpoint = self.effective_endpoint();
        let host = endpoint.parse::<http::Uri>().ok().and_then(|u| {
            u.host()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        });
        host.is_some_and(|h| {
            h.ends_with(".amazonaws.com")
                || h.ends_with(".amazonaws.com.cn")
                || h.ends_with(".api.aws")
        })
    }
}

/// Builder of a [`ClientConfig`].
#[derive(Debug, Clone)]
pub struct ClientConfigBuilder {
    config: ClientConfig,
}

impl ClientConfigBuilder {
    /// Set [`ClientConfig::endpoint`].
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.endpoint = Some(endpoint.into());
        self
    }

    /// Set [`ClientConfig::region`].
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = region.into();
        self
    }

    /// Set [`ClientConfig::credentials`] (and clear the provider).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.config.credentials = Some(credentials);
        self.config.credentials_provider = None;
        self
    }

    /// Set [`ClientConfig::credentials_provider`] (and clear fixed credentials).
    /// Share one provider between clients by passing an `Arc` of it.
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.config.credentials_provider = Some(Arc::new(provider));
        self.config.credentials = None;
        self
    }

    crate::config_setters! {
        /// Set [`ClientConfig::encoding`].
        encoding(encoding: Encoding);
        /// Set [`ClientConfig::request_timeout`].
        request_timeout(timeout: Duration);
        /// Set [`ClientConfig::connect_timeout`].
        connect_timeout(timeout: Duration);
        /// Set [`ClientConfig::max_connections`].
        max_connections(n: usize);
        /// Set [`ClientConfig::max_attempts`].
        max_attempts(n: u32);
        /// Set [`ClientConfig::http2`].
        http2(on: bool);
        /// Set [`ClientConfig::subscribe_read_timeout`].
        subscribe_read_timeout(timeout: Duration);
    }

    /// Set [`ClientConfig::backoff_base`] and [`ClientConfig::backoff_cap`].
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_cap = cap;
        self
    }

    /// Set [`ClientConfig::custom_ca`].
    pub fn custom_ca(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config.custom_ca = Some(pem.into());
        self
    }

    /// The finished config (validated by [`Client::new`](super::Client::new)).
    pub fn build(self) -> ClientConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_documented_values() {
        let c = ClientConfig::default();
        assert_eq!(
            c.effective_endpoint(),
            "https://kinesis.us-east-1.amazonaws.com"
        );
        // Against AWS the test keys are never used: the chain resolves credentials.
        assert!(c.is_aws_endpoint());
        assert_eq!(c.effective_credentials(), None);
        let local = ClientConfig::builder()
            .endpoint("http://127.0.0.1:4567")
            .build();
        assert!(!local.is_aws_endpoint());
        assert_eq!(local.effective_credentials(), Some(Credentials::test()));
        for aws in [
            "https://kinesis.cn-north-1.amazonaws.com.cn",
            "https://kinesis-fips.us-east-1.api.aws",
            "https://vpce-1-ab.kinesis.us-east-1.vpce.amazonaws.com",
        ] {
            assert!(
                ClientConfig::builder()
                    .endpoint(aws)
                    .build()
                    .is_aws_endpoint(),
                "{aws}"
            );
        }
        let both = ClientConfig::builder()
            .credentials_provider(super::super::StaticProvider::new(Credentials::test()))
            .credentials(Credentials::new("a", "b"))
            .build();
        assert!(both.credentials_provider.is_none());
        assert_eq!(
            both.effective_credentials(),
            Some(Credentials::new("a", "b"))
        );
        assert_eq!(c.encoding, Encoding::Json);
        assert_eq!(c.request_timeout, Duration::from_secs(6));
        assert_eq!(c.max_connections, 24);
        assert_eq!(c.max_attempts, 3);
        assert_eq!(c.subscribe_read_timeout, Duration::from_secs(30));
        let c = ClientConfig::builder().region("eu-west-1").build();
        assert_eq!(
            c.effective_endpoint(),
            "https://kinesis.eu-west-1.amazonaws.com"
        );
    }

    #[test]
    fn credentials_from_env_lookup() {
        let env: HashMap<&str, &str> = [
            ("AWS_ACCESS_KEY_ID", "AKIA1"),
            ("AWS_SECRET_ACCESS_KEY", "s3cret"),
            ("AWS_SESSION_TOKEN", ""),
        ]
        .into();
        let get = |k: &str| env.get(k).map(|v| v.to_string());
        let c = Credentials::from_lookup(get).expect("credentials");
        assert_eq!(c, Credentials::new("AKIA1", "s3cret"));
        assert!(
            Credentials::from_lookup(|k| (k == "AWS_ACCESS_KEY_ID").then(|| "x".into())).is_none()
        );
        let c = Credentials::from_lookup(|k| Some(format!("v-{k}"))).expect("credentials");
        assert_eq!(c.session_token.as_deref(), Some("v-AWS_SESSION_TOKEN"));
        assert!(!format!("{c:?}").contains("v-AWS_SECRET_ACCESS_KEY"));
    }
}
