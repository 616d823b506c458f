//! A profile's `credential_process`: a command printing credentials as JSON
//! (`{"Version": 1, "AccessKeyId": …, "SecretAccessKey": …, "SessionToken": …, "Expiration": …}`).

use super::{Credentials, CredentialsFuture, CredentialsProvider, credentials_from_json};
use crate::client::ClientError;

/// Runs a `credential_process` command through the shell, as the AWS CLI does.
#[derive(Debug, Clone)]
pub(super) struct ProcessProvider {
    command: String,
}

impl ProcessProvider {
    pub(super) fn new(command: impl Into<String>) -> Self {
        ProcessProvider {
            command: command.into(),
        }
    }

    async fn load(&self) -> Result<Credentials, ClientError> {
        let command = self.command.clone();
        // The command is short-lived; a blocking thread keeps tokio's
        // "process" feature out of the build.
        let output = tokio::task::spawn_blocking(move || {
            let mut cmd = if cfg!(windows) {
                let mut c = std::process::Command::new("cmd");
                c.arg("/C").arg(&command);
                c
            } else {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(&command);
                c
            };
            cmd.stdin(std::process::Stdio::null()).output()
        })
        .await
        .map_err(|e| ClientError::Credentials(format!("credential_process: {e}").into()))?
        .map_err(|e| {
            ClientError::Credentials(format!("credential_process: cannot run: {e}").into())
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(ClientError::Credentials(
                format!(
                    "credential_process exited with {}: {}",
                    output.status,
                    stderr.trim()
                )
                .into(),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Version {
            #[serde(rename = "Version")]
            version: Option<u64>,
        }
        let v: Version = serde_json::from_slice(&output.stdout).map_err(|e| {
            ClientError::Credentials(format!("credential_process: unreadable output: {e}").into())
        })?;
        if v.version != Some(1) {
            return Err(ClientError::Credentials(
                "credential_process: the output must have \"Version\": 1".into(),
            ));
        }
        credentials_from_json("credential_process", &output.stdout)
    }
}

impl CredentialsProvider for ProcessProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.load())
    }
}
