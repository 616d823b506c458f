//! Broker settings, with defaults chosen so tests run fast.

use crate::fault::{FaultPlan, FaultPlanError};
use crate::limiter::{LimitProfile, LimitsConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// TLS files for serving HTTPS (HTTP/2 by ALPN, and HTTP/1.1).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Bounds on what clients can make the broker hold before and while it
/// serves them: connections, body bytes, HTTP/2 streams, and how long a
/// connection may take or sit idle. The defaults keep a flood of slow or
/// unauthenticated clients from exhausting memory or descriptors.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionLimits {
    /// Most connections served at once; a connection over it is closed as
    /// soon as it is accepted. Default 4096.
    pub max_connections: usize,
    /// Most request-body bytes held by all requests together; a request that
    /// cannot reserve its body within a second is answered
    /// ServiceUnavailable without its body being read. Raised to at least
    /// `max_body_bytes`. Default 64 MiB.
    pub max_inflight_body_bytes: usize,
    /// Most concurrent HTTP/2 streams per connection. Default 100.
    pub h2_max_concurrent_streams: u32,
    /// How long a connection with no request in progress (just accepted, or
    /// done with its last request) may take to send a complete request head
    /// before it is closed; on HTTP/1.1 this also bounds keep-alive idling.
    /// Default 30 s.
    pub header_read_timeout: Duration,
    /// How long a request body may take to arrive in full. Default 60 s.
    pub body_read_timeout: Duration,
    /// How long a connection may move no bytes at all, even mid-request
    /// (a stalled upload, a client that stopped reading). Default 300 s.
    pub idle_timeout: Duration,
    /// How long a TLS handshake may take. Default 10 s.
    pub tls_handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            max_inflight_body_bytes: 64 * 1024 * 1024,
            h2_max_concurrent_streams: 100,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(300),
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
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
    /// How long one SubscribeToShard response pushes events before it ends and
    /// the consumer must subscribe again. Default 5 minutes, as the service.
    pub subscription_lifetime: Duration,
    /// How long a running subscription is protected: a second SubscribeToShard
    /// for the same consumer and shard within it is refused, a later one takes
    /// over. Default 5 s, as the service.
    pub subscription_takeover: Duration,
    /// Longest quiet time on a subscription before an event without records
    /// (carrying the current ContinuationSequenceNumber) is sent. Default 5 s.
    pub subscription_heartbeat: Duration,
    /// Throughput and control-plane limits (`--limits`): the service's numbers
    /// (`aws`), none (`off`), or scaled (`scale=10`), with per-stream overrides.
    /// Default `aws`, as the service.
    pub limits: LimitsConfig,
    /// Faults to inject from the start (`--faults FILE`); `PUT /admin/faults`
    /// replaces them at run time. Default none.
    pub faults: Option<FaultPlan>,
    /// Keep the Prometheus metrics served at `GET /metrics`. Default true;
    /// turning it off only serves to measure what they cost.
    pub metrics: bool,
    /// Keep streams and records in a data dir (`--data-dir`, `--fsync`) so they
    /// survive restarts. Default none: everything in memory.
    pub durable: Option<crate::store::durable::DurableConfig>,
    /// Verify every request's SigV4 signature against these keys (`--auth FILE`,
    /// `--auth-max-skew-secs`). Default none: any signature or none is accepted,
    /// as kinesalite and kinesis-mock do.
    pub auth: Option<crate::auth::AuthKeys>,
    /// A bearer token that opens `/admin/faults` (and a protected
    /// `/metrics`), with or without `--auth`. Default none.
    pub admin_token: Option<crate::admin_token::AdminToken>,
    /// Serve `/metrics` only to requests `/admin/faults` would accept
    /// (`--protect-metrics`). Default false.
    pub protect_metrics: bool,
    /// Connection, body and timeout bounds. Default [`ConnectionLimits::default`].
    pub connection_limits: ConnectionLimits,
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
            subscription_lifetime: Duration::from_secs(300),
            subscription_takeover: Duration::from_secs(5),
            subscription_heartbeat: Duration::from_secs(5),
            limits: LimitsConfig::default(),
            faults: None,
            metrics: true,
            durable: None,
            auth: None,
            admin_token: None,
            protect_metrics: false,
            connection_limits: ConnectionLimits::default(),
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

    kinesis_proto::config_setters! {
        /// Listen on this port (0 = any free port).
        port(port: u16);
        /// Serve `/metrics` only to requests `/admin/faults` would accept.
        protect_metrics(on: bool);
        /// Bound connections, body bytes and timeouts this way.
        connection_limits(limits: ConnectionLimits);
        /// How long a new stream stays CREATING.
        create_delay(d: Duration);
        /// How long a resharded stream stays UPDATING.
        update_delay(d: Duration);
        /// How long a deleted stream stays DELETING.
        delete_delay(d: Duration);
        /// Shard iterator lifetime.
        iterator_ttl(d: Duration);
        /// Pagination token lifetime.
        next_token_ttl(d: Duration);
        /// The length of one hour of retention (tests shrink it).
        retention_hour(d: Duration);
        /// Open-shard quota.
        shard_limit(n: u32);
        /// Largest request body accepted.
        max_body_bytes(n: usize);
        /// Enforce these limits (default `aws`).
        limits(limits: LimitsConfig);
        /// Keep Prometheus metrics (default true).
        metrics(on: bool);
        /// How long one SubscribeToShard response lasts (tests shrink it).
        subscription_lifetime(d: Duration);
        /// How long a running subscription is protected from takeover.
        subscription_takeover(d: Duration);
        /// Longest quiet time before an event without records is sent.
        subscription_heartbeat(d: Duration);
    }

    /// Accept only requests signed with these keys.
    pub fn auth(mut self, keys: crate::auth::AuthKeys) -> Self {
        self.config.auth = Some(keys);
        self
    }

    /// Open `/admin/faults` (and a protected `/metrics`) to this bearer token.
    pub fn admin_token(mut self, token: crate::admin_token::AdminToken) -> Self {
        self.config.admin_token = Some(token);
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

    /// Enforce one limit profile on every stream.
    pub fn limit_profile(mut self, profile: LimitProfile) -> Self {
        self.config.limits = LimitsConfig::uniform(profile);
        self
    }

    /// Inject these faults from the start.
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.config.faults = Some(plan);
        self
    }

    /// Inject the faults of a JSON plan file (the `--faults FILE` flag).
    pub fn faults_file(self, path: &Path) -> Result<Self, FaultPlanError> {
        Ok(self.faults(FaultPlan::from_file(path)?))
    }

    /// Keep streams and records on disk as `durable` says.
    pub fn durable(mut self, durable: crate::store::durable::DurableConfig) -> Self {
        self.config.durable = Some(durable);
        self
    }

    /// The finished config.
    pub fn build(self) -> BrokerConfig {
        self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultOutcome;
    use kinesis_proto::ErrorCode;

    #[test]
    fn defaults_are_the_services_limits_and_no_faults() {
        let c = BrokerConfig::default();
        assert_eq!(c.limits, LimitsConfig::uniform(LimitProfile::Aws));
        assert_eq!(c.faults, None);
        assert!(c.metrics);
    }

    #[test]
    fn faults_file_loads_a_plan_or_names_the_file() {
        let dir =
            std::env::temp_dir().join(format!("kinesis-broker-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("faults.json");
        std::fs::write(
            &path,
            r#"{"seed": 7, "rules": [{"operation": "PutRecord", "error_rate": 1.0, "error": "KMSThrottlingException"}]}"#,
        )
        .unwrap();
        let config = BrokerConfig::builder().faults_file(&path).unwrap().build();
        let plan = config.faults.expect("a plan");
        assert_eq!(plan.seed, 7);
        let injector = crate::fault::FaultInjector::new(plan);
        match injector.decide("PutRecord").outcome {
            FaultOutcome::Fail(e) => assert_eq!(e.code, ErrorCode::KmsThrottling),
            other => panic!("expected a failure, got {other:?}"),
        }

        std::fs::write(&path, r#"{"rules": [{"error_rate": 2}]}"#).unwrap();
        let err = BrokerConfig::builder().faults_file(&path).unwrap_err();
        assert!(err.to_string().contains("faults.json"), "{err}");
        let missing = BrokerConfig::builder().faults_file(&dir.join("absent.json"));
        assert!(missing.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
