//! Where signing credentials come from: explicit keys, the environment, the
//! shared config files, web identity (STS), container and instance metadata,
//! tried in the AWS SDKs' order by [`DefaultChain`], cached and refreshed
//! before they expire by [`CachedProvider`].
//!
//! ```no_run
//! use kinesis_proto::client::{Client, ClientConfig, DefaultChain};
//! # fn demo() -> Result<(), kinesis_proto::client::ClientError> {
//! // What a client against Amazon Kinesis does when given no credentials:
//! let client = Client::new(
//!     ClientConfig::builder()
//!         .region("eu-west-1")
//!         .credentials_provider(DefaultChain::builder().region("eu-west-1").build())
//!         .build(),
//! )?;
//! # Ok(())
//! # }
//! ```

mod container;
mod http;
mod imds;
mod process;
mod profile;
mod web_identity;

pub use container::ContainerProvider;
pub use imds::InstanceMetadataProvider;
pub use profile::ProfileProvider;
pub use web_identity::WebIdentityProvider;

use super::error::ClientError;
use crate::aws_date::parse_rfc3339;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The access key id of the AWS SigV4 test suite, used when no credentials are given.
pub const TEST_ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// The secret access key of the AWS SigV4 test suite, used when no credentials are given.
pub const TEST_SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// AWS credentials used to sign requests.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA…` or `ASIA…`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials; sent as `X-Amz-Security-Token`.
    pub session_token: Option<String>,
    /// When temporary credentials stop working; `None` for long-term keys.
    pub expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Long-term credentials (no session token).
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            expires_at: None,
        }
    }

    /// The same credentials with an expiry time.
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// The same credentials with a session token (temporary credentials).
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// The AWS SigV4 test-suite keys (`AKIDEXAMPLE`): fine for the broker,
    /// kinesalite and kinesis-mock, which do not check signatures by default.
    pub fn test() -> Self {
        Credentials::new(TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY)
    }

    /// Read `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional
    /// `AWS_SESSION_TOKEN`; `None` unless both keys are set and non-empty.
    pub fn from_env() -> Option<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    // Separate from `from_env` so tests need not mutate the process environment
    // (`set_var` is unsafe in edition 2024 and races with other tests).
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        let mut creds = Credentials::new(
            non_empty("AWS_ACCESS_KEY_ID")?,
            non_empty("AWS_SECRET_ACCESS_KEY")?,
        );
        creds.session_token = non_empty("AWS_SESSION_TOKEN");
        Some(creds)
    }
}

impl fmt::Debug for Credentials {
    // Secrets must never reach logs, even at debug level.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "** redacted **"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The future a [`CredentialsProvider`] returns.
pub type CredentialsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, ClientError>> + Send + 'a>>;

/// A source of signing credentials (the AWS SDKs' `ProvideCredentials`).
///
/// A provider with nothing configured answers [`ClientError::NoCredentials`],
/// so that a chain moves on to the next one; any other error (an unreadable
/// file, a failing metadata service) stops the chain.
pub trait CredentialsProvider: Send + Sync + fmt::Debug {
    /// Resolve credentials now (no caching: wrap in [`CachedProvider`]).
    fn credentials(&self) -> CredentialsFuture<'_>;
}

impl<T: CredentialsProvider + ?Sized> CredentialsProvider for Arc<T> {
    fn credentials(&self) -> CredentialsFuture<'_> {
        (**self).credentials()
    }
}

/// Environment variables as providers see them; the process environment, or
/// a fixed map (tests, embedding) so nothing mutates the process environment.
#[derive(Clone)]
pub struct Env {
    lookup: Arc<Lookup>,
}

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Env {
    /// The process environment.
    pub fn process() -> Env {
        Env {
            lookup: Arc::new(|name| std::env::var(name).ok()),
        }
    }

    /// A fixed set of variables; everything else is unset.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Env {
            lookup: Arc::new(move |name| map.get(name).cloned()),
        }
    }

    /// A variable's value; unset and empty are the same (as in the SDKs).
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The home directory (`HOME`, or `USERPROFILE` on Windows).
    fn home(&self) -> Option<PathBuf> {
        self.get("HOME")
            .or_else(|| self.get("USERPROFILE"))
            .map(PathBuf::from)
    }

    /// A file named by `var` (with `~/` expanded), else `~/<default>`.
    fn path(&self, var: &str, default: &str) -> Option<PathBuf> {
        match self.get(var) {
            Some(p) => Some(self.expand_home(&p)),
            None => self.home().map(|h| h.join(default)),
        }
    }

    fn expand_home(&self, path: &str) -> PathBuf {
        match (path.strip_prefix("~/"), self.home()) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(path),
        }
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env")
    }
}

/// Fixed credentials.
#[derive(Debug, Clone)]
pub struct StaticProvider {
    credentials: Credentials,
}

impl StaticProvider {
    /// Always these credentials.
    pub fn new(credentials: Credentials) -> Self {
        StaticProvider { credentials }
    }
}

impl CredentialsProvider for StaticProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        let c = self.credentials.clone();
        Box::pin(async move { Ok(c) })
    }
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional `AWS_SESSION_TOKEN`.
#[derive(Debug, Clone)]
pub struct EnvironmentProvider {
    env: Env,
}

impl EnvironmentProvider {
    /// Read the process environment.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Read these variables.
    pub fn with_env(env: Env) -> Self {
        EnvironmentProvider { env }
    }

    fn load(&self) -> Result<Credentials, ClientError> {
        let id = self.env.get("AWS_ACCESS_KEY_ID");
        let secret = self.env.get("AWS_SECRET_ACCESS_KEY");
        match (id, secret) {
            (None, None) => Err(ClientError::NoCredentials(
                "environment: AWS_ACCESS_KEY_ID is not set".into(),
            )),
            (Some(_), None) => Err(ClientError::Credentials(
                "environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
            )),
            (None, Some(_)) => Err(ClientError::Credentials(
                "environment: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into(),
            )),
            (Some(id), Some(secret)) => {
                let mut c = Credentials::new(id.trim(), secret.trim());
                c.session_token = self.env.get("AWS_SESSION_TOKEN");
                Ok(c)
            }
        }
    }
}

impl Default for EnvironmentProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialsProvider for EnvironmentProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        let r = self.load();
        Box::pin(async move { r })
    }
}

/// Try providers in order: the first that has credentials wins; one that has
/// none configured is skipped; one that fails stops the chain.
#[derive(Debug, Clone, Default)]
pub struct ChainProvider {
    providers: Vec<Arc<dyn CredentialsProvider>>,
}

impl ChainProvider {
    /// An empty chain (it finds nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a provider after those already in the chain.
    pub fn or_else(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.providers.push(Arc::new(provider));
        self
    }
}

impl CredentialsProvider for ChainProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let mut tried = Vec::with_capacity(self.providers.len());
            for p in &self.providers {
                match p.credentials().await {
                    Ok(c) => return Ok(c),
                    Err(ClientError::NoCredentials(why)) => tried.push(why.message().to_string()),
                    Err(e) => return Err(e),
                }
            }
            Err(ClientError::NoCredentials(
                format!(
                    "no AWS credentials found (tried {}); set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, configure a profile in ~/.aws/credentials, \
                 or pass credentials to the client",
                    if tried.is_empty() {
                        "nothing".to_string()
                    } else {
                        tried.join("; ")
                    }
                )
                .into(),
            ))
        })
    }
}

/// When cached credentials are refreshed: [`CachedProvider`]'s defaults.
///
/// 5 minutes before expiry, like the Java SDK's prefetch; long-term keys
/// (no expiry) are re-read every 15 minutes, like the Rust SDK, so an edited
/// credentials file is picked up.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// How long credentials without an expiry are kept before being re-read.
pub const DEFAULT_TTL: Duration = Duration::from_secs(900);
/// Credentials fetched already inside the refresh window (a metadata service
/// hands out the old ones until shortly before expiry) are kept at least
/// this long, so every request does not turn into a metadata call.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
struct Cached {
    credentials: Credentials,
    /// From then on the next call reloads.
    refresh_at: SystemTime,
}

/// How a cached value stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Use it.
    Fresh,
    /// Reload; if reloading fails, it may still be used.
    Stale,
    /// Past its expiry: reload, and fail if that fails.
    Expired,
}

fn refresh_at(
    credentials: &Credentials,
    loaded_at: SystemTime,
    refresh_before: Duration,
    ttl: Duration,
) -> SystemTime {
    match credentials.expires_at {
        // checked: a huge ttl (static keys) must not overflow SystemTime.
        None => loaded_at
            .checked_add(ttl)
            .unwrap_or(loaded_at + Duration::from_secs(100 * 365 * 86_400)),
        Some(expiry) => {
            let early = expiry.checked_sub(refresh_before).unwrap_or(UNIX_EPOCH);
            let soonest = (loaded_at + MIN_RELOAD_INTERVAL).min(expiry);
            early.max(soonest)
        }
    }
}

fn freshness(cached: &Cached, now: SystemTime) -> Freshness {
    if cached.credentials.expires_at.is_some_and(|e| now >= e) {
        Freshness::Expired
    } else if now >= cached.refresh_at {
        Freshness::Stale
    } else {
        Freshness::Fresh
    }
}

/// Caches another provider's credentials and reloads them shortly before
/// they expire; concurrent callers share one reload.
pub struct CachedProvider {
    inner: Arc<dyn CredentialsProvider>,
    refresh_before: Duration,
    ttl: Duration,
    slot: RwLock<Option<Cached>>,
    // Held across a reload so that one caller loads and the others wait.
    loading: tokio::sync::Mutex<()>,
    clock: fn() -> SystemTime,
}

impl fmt::Debug for CachedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedProvider")
            .field("inner", &self.inner)
            .field("refresh_before", &self.refresh_before)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedProvider {
    /// Cache `inner` with the default refresh times.
    pub fn new(inner: impl CredentialsProvider + 'static) -> Self {
        Self::from_arc(Arc::new(inner))
    }

    /// Cache a shared provider.
    pub fn from_arc(inner: Arc<dyn CredentialsProvider>) -> Self {
        CachedProvider {
            inner,
            refresh_before: DEFAULT_REFRESH_BEFORE,
            ttl: DEFAULT_TTL,
            slot: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
            clock: SystemTime::now,
        }
    }

    /// Reload this long before expiry. Default [`DEFAULT_REFRESH_BEFORE`].
    pub fn refresh_before(mut self, d: Duration) -> Self {
        self.refresh_before = d;
        self
    }

    /// Keep credentials without an expiry this long. Default [`DEFAULT_TTL`].
    pub fn ttl(mut self, d: Duration) -> Self {
        self.ttl = d;
        self
    }

    /// Already holding these credentials (e.g. static keys).
    pub(crate) fn preloaded(credentials: Credentials) -> Self {
        let p = Self::new(StaticProvider::new(credentials.clone())).ttl(Duration::MAX);
        let now = SystemTime::now();
        let refresh_at = refresh_at(&credentials, now, p.refresh_before, p.ttl);
        *p.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(Cached {
            credentials,
            refresh_at,
        });
        p
    }

    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }

    /// The cached credentials as they are, without loading (`None` before the first load).
    pub fn current(&self) -> Option<Credentials> {
        self.slot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.credentials.clone())
    }

    fn cached(&self, now: SystemTime) -> Option<(Credentials, Freshness)> {
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .map(|c| (c.credentials.clone(), freshness(c, now)))
    }

    async fn load(&self) -> Result<Credentials, ClientError> {
        if let Some((c, Freshness::Fresh)) = self.cached((self.clock)()) {
            return Ok(c);
        }
        let _guard = self.loading.lock().await;
        // Another caller may have reloaded while this one waited.
        let before = self.cached((self.clock)());
        if let Some((c, Freshness::Fresh)) = &before {
            return Ok(c.clone());
        }
        match self.inner.credentials().await {
            Ok(c) => {
                let now = (self.clock)();
                let refresh_at = refresh_at(&c, now, self.refresh_before, self.ttl);
                *self.slot.write().unwrap_or_else(|e| e.into_inner()) = Some(Cached {
                    credentials: c.clone(),
                    refresh_at,
                });
                Ok(c)
            }
            // A failed early refresh keeps the old credentials until they expire.
            Err(e) => match before {
                Some((c, Freshness::Stale)) => {
                    tracing::warn!(error = %e, "credentials refresh failed; using the cached ones until they expire");
                    Ok(c)
                }
                _ => Err(e),
            },
        }
    }
}

impl CredentialsProvider for CachedProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.load())
    }
}

/// The standard AWS credential chain, cached: environment variables, the
/// shared config files (`AWS_PROFILE`), web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`
/// with `AWS_ROLE_ARN`), container metadata (`AWS_CONTAINER_CREDENTIALS_*_URI`)
/// and EC2 instance metadata (IMDSv2), in the order of the AWS SDK for Rust.
#[derive(Debug)]
pub struct DefaultChain {
    cached: CachedProvider,
}

impl DefaultChain {
    /// The chain over the process environment.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to choose the environment, profile or region.
    pub fn builder() -> DefaultChainBuilder {
        DefaultChainBuilder {
            env: Env::process(),
            profile: None,
            region: None,
        }
    }
}

impl Default for DefaultChain {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialsProvider for DefaultChain {
    fn credentials(&self) -> CredentialsFuture<'_> {
        self.cached.credentials()
    }
}

/// Builds a [`DefaultChain`].
#[derive(Debug, Clone)]
pub struct DefaultChainBuilder {
    env: Env,
    profile: Option<String>,
    region: Option<String>,
}

impl DefaultChainBuilder {
    /// Read these variables instead of the process environment.
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Use this profile instead of `AWS_PROFILE` (or `default`).
    pub fn profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// The region whose STS endpoint web identity uses when `AWS_REGION` is unset.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The chain, its cache empty.
    pub fn build(self) -> DefaultChain {
        let mut profile = ProfileProvider::with_env(self.env.clone());
        if let Some(name) = self.profile {
            profile = profile.profile(name);
        }
        let mut web = WebIdentityProvider::with_env(self.env.clone());
        if let Some(region) = &self.region {
            profile = profile.region(region.clone());
            web = web.region(region.clone());
        }
        let chain = ChainProvider::new()
            .or_else(EnvironmentProvider::with_env(self.env.clone()))
            .or_else(profile)
            .or_else(web)
            .or_else(ContainerProvider::with_env(self.env.clone()))
            .or_else(InstanceMetadataProvider::with_env(self.env));
        DefaultChain {
            cached: CachedProvider::new(chain),
        }
    }
}

/// Credentials from the JSON that container metadata, instance metadata and
/// `credential_process` answer with (`AccessKeyId`, `SecretAccessKey`,
/// `Token`/`SessionToken`, `Expiration`).
fn credentials_from_json(source: &str, body: &[u8]) -> Result<Credentials, ClientError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Doc {
        code: Option<String>,
        message: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        #[serde(alias = "SessionToken")]
        token: Option<String>,
        expiration: Option<String>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|e| {
        ClientError::Credentials(format!("{source}: unreadable answer: {e}").into())
    })?;
    if let Some(code) = doc.code.filter(|c| c != "Success") {
        return Err(ClientError::Credentials(
            format!("{source}: {code}: {}", doc.message.unwrap_or_default()).into(),
        ));
    }
    let (Some(id), Some(secret)) = (
        doc.access_key_id.filter(|s| !s.is_empty()),
        doc.secret_access_key.filter(|s| !s.is_empty()),
    ) else {
        return Err(ClientError::Credentials(
            format!("{source}: the answer has no AccessKeyId or SecretAccessKey").into(),
        ));
    };
    let mut c = Credentials::new(id, secret);
    c.session_token = doc.token.filter(|t| !t.is_empty());
    if let Some(exp) = doc.expiration {
        c.expires_at = Some(parse_rfc3339(&exp).ok_or_else(|| {
            ClientError::Credentials(format!("{source}: unreadable Expiration {exp:?}").into())
        })?);
    }
    Ok(c)
}

#[cfg(test)]
mod tests;
