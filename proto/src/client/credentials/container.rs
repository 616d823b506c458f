//! Container credentials (ECS task roles, EKS Pod Identity):
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` or `_FULL_URI`, with an
//! optional `AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE)`.

use super::http::{FetchError, fetch};
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env, credentials_from_json};
use crate::client::ClientError;
use bytes::Bytes;
use http::{Method, Uri};
use std::net::IpAddr;
use std::time::Duration;

/// The ECS agent's address, prefixed to a relative URI.
const ECS_HOST: &str = "http://169.254.170.2";
/// The SDKs' limit on one container-metadata exchange.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Credentials from the container credentials endpoint.
#[derive(Debug, Clone)]
pub struct ContainerProvider {
    env: Env,
}

impl ContainerProvider {
    /// Read the process environment.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Read these variables.
    pub fn with_env(env: Env) -> Self {
        ContainerProvider { env }
    }

    /// The endpoint to ask, if one is configured.
    fn url(&self) -> Result<Option<String>, ClientError> {
        if let Some(rel) = self.env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            let sep = if rel.starts_with('/') { "" } else { "/" };
            return Ok(Some(format!("{ECS_HOST}{sep}{}", rel.trim())));
        }
        let Some(full) = self.env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
            return Ok(None);
        };
        let full = full.trim().to_string();
        let uri: Uri = full.parse().map_err(|e| {
            ClientError::Credentials(
                format!("container: AWS_CONTAINER_CREDENTIALS_FULL_URI {full:?}: {e}").into(),
            )
        })?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if uri.host().is_some_and(allowed_http_host) => {}
            _ => {
                return Err(ClientError::Credentials(
                    format!(
                        "container: AWS_CONTAINER_CREDENTIALS_FULL_URI {full:?} must be https, \
                     or http to a loopback address or the ECS/EKS agent"
                    )
                    .into(),
                ));
            }
        }
        Ok(Some(full))
    }

    async fn token(&self) -> Result<Option<String>, ClientError> {
        if let Some(path) = self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            let token =
                tokio::fs::read_to_string(&path).await.map_err(|e| {
                    ClientError::Credentials(format!(
                    "container: cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {path}: {e}"
                ).into())
                })?;
            return Ok(Some(token.trim().to_string()));
        }
        Ok(self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
    }

    async fn load(&self) -> Result<Credentials, ClientError> {
        let Some(url) = self.url()? else {
            return Err(ClientError::NoCredentials(
                "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI are not set".into(),
            ));
        };
        let token = self.token().await?;
        if token.as_deref().is_some_and(|t| t.contains(['\r', '\n'])) {
            return Err(ClientError::Credentials(
                "container: the authorization token contains a line break".into(),
            ));
        }
        let mut headers = vec![("accept", "application/json")];
        if let Some(t) = &token {
            headers.push(("authorization", t.as_str()));
        }
        let answer = fetch(Method::GET, &url, &headers, Bytes::new(), TIMEOUT)
            .await
            .map_err(|e: FetchError| {
                ClientError::Credentials(format!("container: {url}: {e}").into())
            })?;
        if answer.status != 200 {
            return Err(ClientError::Credentials(
                format!(
                    "container: {url} answered HTTP {}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body[..answer.body.len().min(256)])
                )
                .into(),
            ));
        }
        credentials_from_json("container", &answer.body)
    }
}

impl Default for ContainerProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialsProvider for ContainerProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.load())
    }
}

/// Plain HTTP only to this machine or the ECS/EKS agents (as the SDKs allow).
fn allowed_http_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match bare.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => true,
        Ok(ip) => ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"]
            .iter()
            .any(|a| a.parse::<IpAddr>().is_ok_and(|a| a == ip)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_only_to_loopback_or_agents() {
        for ok in [
            "127.0.0.1",
            "127.1.2.3",
            "localhost",
            "[::1]",
            "169.254.170.2",
            "169.254.170.23",
            "[fd00:ec2::23]",
        ] {
            assert!(allowed_http_host(ok), "{ok}");
        }
        for bad in ["10.0.0.1", "example.com", "169.254.169.254"] {
            assert!(!allowed_http_host(bad), "{bad}");
        }
    }

    #[test]
    fn url_from_env() {
        let p = |pairs: &[(&str, &str)]| {
            ContainerProvider::with_env(Env::from_pairs(pairs.iter().copied())).url()
        };
        assert_eq!(
            p(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds")]).unwrap(),
            Some("http://169.254.170.2/v2/creds".into())
        );
        assert_eq!(
            p(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c")]).unwrap(),
            Some("http://127.0.0.1:9/c".into())
        );
        assert!(p(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.1.1/c")]).is_err());
        assert_eq!(p(&[]).unwrap(), None);
    }
}
