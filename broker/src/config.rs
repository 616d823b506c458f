//! Broker settings, with defaults chosen so tests run fast.

use std::path::PathBuf;
use std::time::Duration;

/// TLS files for serving HTTPS (HTTP/2 by ALPN, and HTTP/1.1).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// How the broker runs. Build with [`BrokerConfig::builder`].
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Address to listen on. Default `127.0.0.1`.
    pub host: String,
    /// Port; 0 picks a free one. Default 4567.
    pub port: u16,
    /// Serve TLS with these files. Default none (cleartext HTTP/1.1 and h2c).
    pub tls: Option<TlsFiles>,
    /// How long a new stream stays CREATING. Default 100 ms (the service takes seconds).
    pub create_delay: Duration,
    /// How long a resharded or updated stream stays UPDATING. Default 100 ms.
    pub update_delay: Duration,
    /// How long a deleted stream stays DELETING. Default 100 ms.
    pub delete_delay: Duration,
    /// How long a consumer stays CREATING (or DELETING). Default 100 ms.
    pub consumer_delay: Duration,
    /// Shard iterator lifetime. Default 300 s, as the service.
    pub iterator_ttl: Duration,
    /// Pagination token lifetime. Default 300 s, as the service.
    pub next_token_ttl: Duration,
    /// The length of one "hour" of retention. Default one real hour; tests shrink
    /// it to watch records expire.
    pub retention_hour: Duration,
    /// Region used in ARNs. Default `us-east-1`.
    pub region: String,
    /// Account id used in ARNs and messages. Default `000000000000`.
    pub account_id: String,
    /// Open-shard quota for the whole broker. Default 10 000.
    pub shard_limit: u32,
    /// Largest request body accepted; larger ones are refused before being buffered.
    /// Default 12 MiB (a 5 MiB PutRecords grows by a third in base64).
    pub max_body_bytes: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            host: "127.0.0.1".to_string(),
            port: 4567,
            tls: None,
            create_delay: Duration::from_millis(100),
            update_delay: Duration::from_millis(100),
            delete_delay: Duration::from_millis(100),
            consumer_delay: Duration::from_millis(100),
            iterator_ttl: Duration::from_secs(300),
            next_token_ttl: Duration::from_secs(300),
            retention_hour: Duration::from_secs(3600),
            region: "us-east-1".to_string(),
            account_id: "000000000000".to_string(),
            shard_limit: 10_000,
            max_body_bytes: 12 * 1024 * 1024,
        }
    }
}

impl BrokerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> BrokerConfigBuilder {
        BrokerConfigBuilder {
            config: BrokerConfig::default(),
        }
    }
}

/// Builds a [`BrokerConfig`].
#[derive(Debug, Clone)]
pub struct BrokerConfigBuilder {
    config: BrokerConfig,
}

impl BrokerConfigBuilder {
    /// Listen on this host.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config.host = host.into();
        self
    }

    /// Listen on this port (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    /// Serve TLS with these files.
    pub fn tls(mut self, tls: TlsFiles) -> Self {
        self.config.tls = Some(tls);
        self
    }

    /// Set the CREATING, UPDATING, DELETING and consumer delays at once.
    pub fn state_delays(mut self, d: Duration) -> Self {
        self.config.create_delay = d;
        self.config.update_delay = d;
        self.config.delete_delay = d;
        self.config.consumer_delay = d;
        self
    }

    /// How long a new stream stays CREATING.
    pub fn create_delay(mut self, d: Duration) -> Self {
        self.config.create_delay = d;
        self
    }

    /// How long a resharded stream stays UPDATING.
    pub fn update_delay(mut self, d: Duration) -> Self {
        self.config.update_delay = d;
        self
    }

    /// How long a deleted stream stays DELETING.
    pub fn delete_delay(mut self, d: Duration) -> Self {
        self.config.delete_delay = d;
        self
    }

    /// Shard iterator lifetime.
    pub fn iterator_ttl(mut self, d: Duration) -> Self {
        self.config.iterator_ttl = d;
        self
    }

    /// Pagination token lifetime.
    pub fn next_token_ttl(mut self, d: Duration) -> Self {
        self.config.next_token_ttl = d;
        self
    }

    /// The length of one hour of retention (tests shrink it).
    pub fn retention_hour(mut self, d: Duration) -> Self {
        self.config.retention_hour = d;
        self
    }

    /// Region used in ARNs.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = region.into();
        self
    }

    /// Account id used in ARNs.
    pub fn account_id(mut self, id: impl Into<String>) -> Self {
        self.config.account_id = id.into();
        self
    }

    /// Open-shard quota.
    pub fn shard_limit(mut self, n: u32) -> Self {
        self.config.shard_limit = n;
        self
    }

    /// Largest request body accepted.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.config.max_body_bytes = n;
        self
    }

    /// The finished config.
    pub fn build(self) -> BrokerConfig {
        self.config
    }
}
