//! EC2 instance metadata (IMDSv2): a session token, then the instance
//! profile's role name, then its credentials.

use super::http::{FetchError, fetch};
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env, credentials_from_json};
use crate::client::ClientError;
use bytes::Bytes;
use http::Method;
use std::time::Duration;

const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
const DEFAULT_ENDPOINT_V6: &str = "http://[fd00:ec2::254]";
/// The SDKs' IMDS limit: off EC2 nothing answers, and the chain must end quickly.
const TIMEOUT: Duration = Duration::from_secs(1);
const CREDENTIALS_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// Credentials of the EC2 instance profile, through IMDSv2.
///
/// Honours `AWS_EC2_METADATA_DISABLED`, `AWS_EC2_METADATA_SERVICE_ENDPOINT`
/// and `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` (`IPv4`/`IPv6`).
/// An unreachable service means "not on EC2": no credentials, not an error.
#[derive(Debug, Clone)]
pub struct InstanceMetadataProvider {
    env: Env,
}

impl InstanceMetadataProvider {
    /// Read the process environment.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Read these variables.
    pub fn with_env(env: Env) -> Self {
        InstanceMetadataProvider { env }
    }

    fn endpoint(&self) -> String {
        if let Some(e) = self.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
            return e.trim().trim_end_matches('/').to_string();
        }
        match self.env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") {
            Some(m) if m.trim().eq_ignore_ascii_case("ipv6") => DEFAULT_ENDPOINT_V6.into(),
            _ => DEFAULT_ENDPOINT.into(),
        }
    }

    async fn load(&self) -> Result<Credentials, ClientError> {
        if self
            .env
            .get("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Err(ClientError::NoCredentials(
                "instance metadata: disabled by AWS_EC2_METADATA_DISABLED".into(),
            ));
        }
        let base = self.endpoint();
        let unreachable = |e: FetchError| match e {
            FetchError::Connect(_) | FetchError::Timeout => ClientError::NoCredentials(
                format!("instance metadata: no service at {base} ({e})").into(),
            ),
            FetchError::Failed(_) => {
                ClientError::Credentials(format!("instance metadata: {base}: {e}").into())
            }
        };
        let token = fetch(
            Method::PUT,
            &format!("{base}/latest/api/token"),
            &[("x-aws-ec2-metadata-token-ttl-seconds", "21600")],
            Bytes::new(),
            TIMEOUT,
        )
        .await
        .map_err(unreachable)?;
        if token.status != 200 {
            return Err(ClientError::Credentials(
                format!(
                    "instance metadata: the IMDSv2 token request answered HTTP {}",
                    token.status
                )
                .into(),
            ));
        }
        let token = String::from_utf8_lossy(&token.body).trim().to_string();
        let headers = [("x-aws-ec2-metadata-token", token.as_str())];
        let roles = fetch(
            Method::GET,
            &format!("{base}{CREDENTIALS_PATH}"),
            &headers,
            Bytes::new(),
            TIMEOUT,
        )
        .await
        .map_err(unreachable)?;
        if roles.status == 404 {
            return Err(ClientError::NoCredentials(
                "instance metadata: the instance has no IAM role".into(),
            ));
        }
        if roles.status != 200 {
            return Err(ClientError::Credentials(
                format!(
                    "instance metadata: listing roles answered HTTP {}",
                    roles.status
                )
                .into(),
            ));
        }
        let roles = String::from_utf8_lossy(&roles.body);
        let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
            return Err(ClientError::NoCredentials(
                "instance metadata: the instance has no IAM role".into(),
            ));
        };
        if role.contains(['/', '?', '#']) {
            return Err(ClientError::Credentials(
                format!("instance metadata: unexpected role name {role:?}").into(),
            ));
        }
        let creds = fetch(
            Method::GET,
            &format!("{base}{CREDENTIALS_PATH}{role}"),
            &headers,
            Bytes::new(),
            TIMEOUT,
        )
        .await
        .map_err(unreachable)?;
        if creds.status != 200 {
            return Err(ClientError::Credentials(
                format!(
                    "instance metadata: credentials of role {role} answered HTTP {}",
                    creds.status
                )
                .into(),
            ));
        }
        credentials_from_json("instance metadata", &creds.body)
    }
}

impl Default for InstanceMetadataProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialsProvider for InstanceMetadataProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.load())
    }
}
