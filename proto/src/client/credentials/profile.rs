//! A profile of the shared config files: `~/.aws/credentials` and
//! `~/.aws/config` (or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`),
//! profile `AWS_PROFILE` or `default`.

use super::process::ProcessProvider;
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env, WebIdentityProvider};
use crate::client::ClientError;
use crate::shared_config::{FileKind, Profile, ProfileFile, parse};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Credentials of a named profile in the shared config files.
///
/// Supported: static keys (`aws_access_key_id`, `aws_secret_access_key`,
/// `aws_session_token`), `credential_process`, and `role_arn` with
/// `web_identity_token_file`. Assume-role chains (`source_profile`,
/// `credential_source`) and IAM Identity Center (`sso_*`) are refused with an
/// error that says so. Properties in the credentials file win over the same
/// profile's in the config file.
#[derive(Debug, Clone)]
pub struct ProfileProvider {
    env: Env,
    profile: Option<String>,
    region: Option<String>,
}

impl ProfileProvider {
    /// Read the process environment.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Read these variables (`HOME`, `AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`).
    pub fn with_env(env: Env) -> Self {
        ProfileProvider {
            env,
            profile: None,
            region: None,
        }
    }

    /// Use this profile rather than `AWS_PROFILE` or `default`.
    pub fn profile(mut self, name: impl Into<String>) -> Self {
        self.profile = Some(name.into());
        self
    }

    /// The region for a web-identity profile's STS endpoint.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The profile's merged properties, or why there are none.
    async fn properties(&self) -> Result<(String, BTreeMap<String, String>), ClientError> {
        let (name, explicit) = match (&self.profile, self.env.get("AWS_PROFILE")) {
            (Some(n), _) => (n.clone(), true),
            (None, Some(n)) => (n.trim().to_string(), true),
            (None, None) => ("default".to_string(), false),
        };
        let creds_path = self
            .env
            .path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
        let config_path = self.env.path("AWS_CONFIG_FILE", ".aws/config");
        let creds_file = read(creds_path.as_deref(), FileKind::Credentials).await?;
        let config_file = read(config_path.as_deref(), FileKind::Config).await?;
        let mut props = BTreeMap::new();
        let mut found = false;
        // Config first, so the credentials file's values override.
        for profile in [
            config_file.as_ref().and_then(|f| f.profile(&name)),
            creds_file.as_ref().and_then(|f| f.profile(&name)),
        ]
        .into_iter()
        .flatten()
        {
            found = true;
            extend(&mut props, profile);
        }
        if found {
            return Ok((name, props));
        }
        let shown = |p: &Option<PathBuf>| {
            p.as_ref().map_or("(no home directory)".to_string(), |p| {
                p.display().to_string()
            })
        };
        let why = if creds_file.is_none() && config_file.is_none() {
            format!(
                "profile: neither {} nor {} exists",
                shown(&creds_path),
                shown(&config_path)
            )
        } else {
            format!(
                "profile: no profile `{name}` in {} or {}",
                shown(&creds_path),
                shown(&config_path)
            )
        };
        // A profile asked for by name must exist; the implicit `default` may not.
        if explicit {
            Err(ClientError::Credentials(why.into()))
        } else {
            Err(ClientError::NoCredentials(why.into()))
        }
    }

    async fn load(&self) -> Result<Credentials, ClientError> {
        let (name, p) = self.properties().await?;
        let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let unsupported =
            |what: &str| {
                Err(ClientError::Credentials(format!(
                "profile `{name}`: {what} is not supported by kinesis-proto; export temporary \
                 credentials (e.g. `aws configure export-credentials --format env`) or use a \
                 profile with keys"
            ).into()))
            };
        if let Some(role_arn) = get("role_arn") {
            if let Some(token_file) = get("web_identity_token_file") {
                let mut web = WebIdentityProvider::from_settings(
                    self.env.clone(),
                    self.env.expand_home(token_file).display().to_string(),
                    role_arn,
                    get("role_session_name").map(str::to_string),
                );
                if let Some(region) = get("region").or(self.region.as_deref()) {
                    web = web.region(region);
                }
                return web.credentials().await;
            }
            return unsupported("assuming a role (role_arn with source_profile/credential_source)");
        }
        if get("sso_session").is_some() || get("sso_start_url").is_some() {
            return unsupported("IAM Identity Center (sso_*)");
        }
        if let Some(command) = get("credential_process") {
            return ProcessProvider::new(command).credentials().await;
        }
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => {
                let mut c = Credentials::new(id, secret);
                c.session_token = get("aws_session_token").map(str::to_string);
                Ok(c)
            }
            (Some(_), None) => Err(ClientError::Credentials(
                format!("profile `{name}`: aws_access_key_id without aws_secret_access_key").into(),
            )),
            _ => Err(ClientError::NoCredentials(
                format!("profile `{name}`: no credentials in it").into(),
            )),
        }
    }
}

impl Default for ProfileProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialsProvider for ProfileProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.load())
    }
}

fn extend(props: &mut BTreeMap<String, String>, profile: &Profile) {
    for (k, v) in profile.properties() {
        props.insert(k.to_string(), v.to_string());
    }
}

/// A file's profiles; `None` if it does not exist.
async fn read(path: Option<&Path>, kind: FileKind) -> Result<Option<ProfileFile>, ClientError> {
    let Some(path) = path else { return Ok(None) };
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ClientError::Credentials(
                format!("profile: cannot read {}: {e}", path.display()).into(),
            ));
        }
    };
    parse(&text, kind)
        .map(Some)
        .map_err(|e| ClientError::Credentials(format!("profile: {}: {e}", path.display()).into()))
}
