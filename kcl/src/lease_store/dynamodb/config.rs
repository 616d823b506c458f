//! Settings of a [`DynamoDbLeaseStore`](super::DynamoDbLeaseStore), and the bridge that
//! signs its DynamoDB requests with the toolkit's own credential chain.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::{self, ProvideCredentials};
use kinesis_proto::client::{
    CachedProvider, ClientConfig, Credentials, CredentialsProvider, DefaultChain,
};

/// How a table created by the store is billed (KCL `LeaseManagementConfig.billingMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BillingMode {
    /// `PAY_PER_REQUEST`, the KCL's default.
    OnDemand,
    /// `PROVISIONED` with these capacities (KCL `initialLeaseTableReadCapacity` /
    /// `initialLeaseTableWriteCapacity`, 10 and 10 by default); the owner index gets the same.
    Provisioned {
        /// Read capacity units.
        read_capacity: i64,
        /// Write capacity units.
        write_capacity: i64,
    },
}

/// Settings of a DynamoDB lease table; build one with [`DynamoDbConfig::builder`].
#[derive(Clone)]
#[non_exhaustive]
pub struct DynamoDbConfig {
    /// The table (KCL `tableName`, by default the application name).
    pub table_name: String,
    /// Signing region. Default `us-east-1`, or the Kinesis client's with
    /// [`DynamoDbConfigBuilder::client_config`].
    pub region: String,
    /// `http(s)://` URL of DynamoDB. Default (`None`): the region's endpoint
    /// (`https://dynamodb.{region}.amazonaws.com`).
    pub endpoint: Option<String>,
    /// Fixed credentials; `None` (the default) resolves them as the Kinesis client does:
    /// [`credentials_provider`](Self::credentials_provider) if set, the standard AWS chain for
    /// an AWS endpoint, the SigV4 test keys for any other (dynalite, DynamoDB Local).
    pub credentials: Option<Credentials>,
    /// Where credentials come from when not fixed. Default `None`.
    pub credentials_provider: Option<Arc<dyn CredentialsProvider>>,
    /// Billing of a table the store creates; an existing table is used as it is.
    /// Default [`BillingMode::OnDemand`].
    pub billing_mode: BillingMode,
    /// Limit on one request attempt (KCL `dynamoDbRequestTimeout` bounds the whole call).
    /// Default 2 s: a lease write that takes longer is of no use to a renewer working in
    /// thirds of the failover time.
    pub attempt_timeout: Duration,
    /// Attempts per call for throttles, 5xx answers, timeouts and connection failures
    /// (a refused condition is never retried). Default 5.
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry, doubled per retry with full jitter. Default 50 ms.
    pub backoff_base: Duration,
    /// Upper bound of one backoff. Default 1 s.
    pub backoff_cap: Duration,
    /// How long [`DynamoDbLeaseStore::open`](super::DynamoDbLeaseStore::open) waits for a
    /// new table to become ACTIVE (KCL `waitUntilLeaseTableExists`, 10 min). Default 10 min.
    pub table_active_timeout: Duration,
}

impl fmt::Debug for DynamoDbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbConfig")
            .field("table_name", &self.table_name)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials.as_ref().map(|_| "<fixed>"))
            .field("credentials_provider", &self.credentials_provider)
            .field("billing_mode", &self.billing_mode)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl DynamoDbConfig {
    /// A builder for the table `table_name`, every other setting at its default.
    pub fn builder(table_name: impl Into<String>) -> DynamoDbConfigBuilder {
        DynamoDbConfigBuilder {
            config: DynamoDbConfig {
                table_name: table_name.into(),
                region: "us-east-1".to_string(),
                endpoint: None,
                credentials: None,
                credentials_provider: None,
                billing_mode: BillingMode::OnDemand,
                attempt_timeout: Duration::from_secs(2),
                max_attempts: 5,
                backoff_base: Duration::from_millis(50),
                backoff_cap: Duration::from_secs(1),
                table_active_timeout: Duration::from_secs(600),
            },
        }
    }

    /// The endpoint in effect: the configured one, or the region's.
    pub fn effective_endpoint(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("https://dynamodb.{}.amazonaws.com", self.region),
        }
    }

    /// The credentials provider the SDK client is given.
    pub(super) fn sdk_credentials(&self) -> SdkCredentials {
        // The same resolution as the Kinesis client's, judged on DynamoDB's endpoint.
        let probe = ClientConfig::builder()
            .region(self.region.clone())
            .endpoint(self.effective_endpoint())
            .build();
        let provider: Arc<dyn CredentialsProvider> =
            match (&self.credentials, &self.credentials_provider) {
                (Some(fixed), _) => {
                    Arc::new(kinesis_proto::client::StaticProvider::new(fixed.clone()))
                }
                (None, Some(p)) => Arc::new(CachedProvider::from_arc(Arc::clone(p))),
                (None, None) => match probe.effective_credentials() {
                    Some(test_keys) => {
                        Arc::new(kinesis_proto::client::StaticProvider::new(test_keys))
                    }
                    None => Arc::new(CachedProvider::new(
                        DefaultChain::builder().region(&self.region).build(),
                    )),
                },
            };
        SdkCredentials { provider }
    }
}

/// Builder of a [`DynamoDbConfig`].
#[derive(Debug, Clone)]
pub struct DynamoDbConfigBuilder {
    config: DynamoDbConfig,
}

impl DynamoDbConfigBuilder {
    /// Take the region and credentials of the Kinesis client's settings, so one
    /// configuration serves Kinesis and DynamoDB (the endpoint is not taken: it is Kinesis's).
    pub fn client_config(mut self, kinesis: &ClientConfig) -> Self {
        self.config.region = kinesis.region.clone();
        self.config.credentials = kinesis.credentials.clone();
        self.config.credentials_provider = kinesis.credentials_provider.clone();
        self
    }

    /// Signing region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.config.region = region.into();
        self
    }

    /// DynamoDB's URL (dynalite, DynamoDB Local, a VPC endpoint).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.endpoint = Some(endpoint.into());
        self
    }

    /// Fixed credentials.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.config.credentials = Some(credentials);
        self.config.credentials_provider = None;
        self
    }

    /// A credentials provider.
    pub fn credentials_provider(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.config.credentials_provider = Some(Arc::new(provider));
        self.config.credentials = None;
        self
    }

    /// Billing of a table the store creates.
    pub fn billing_mode(mut self, mode: BillingMode) -> Self {
        self.config.billing_mode = mode;
        self
    }

    /// Limit on one request attempt.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.config.attempt_timeout = timeout;
        self
    }

    /// Attempts per call (1 = no retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts;
        self
    }

    /// Backoff of the first retry and the cap of any backoff.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.config.backoff_base = base;
        self.config.backoff_cap = cap;
        self
    }

    /// How long to wait for a new table to become ACTIVE.
    pub fn table_active_timeout(mut self, timeout: Duration) -> Self {
        self.config.table_active_timeout = timeout;
        self
    }

    /// The settings.
    pub fn build(self) -> DynamoDbConfig {
        self.config
    }
}

/// The toolkit's credentials, offered to the AWS SDK's DynamoDB client.
#[derive(Debug, Clone)]
pub(super) struct SdkCredentials {
    provider: Arc<dyn CredentialsProvider>,
}

impl ProvideCredentials for SdkCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            let c = self
                .provider
                .credentials()
                .await
                .map_err(|e| provider::error::CredentialsError::provider_error(Box::new(e)))?;
            Ok(aws_credential_types::Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                c.session_token,
                c.expires_at,
                "kinesis-toolkit",
            ))
        })
    }
}
