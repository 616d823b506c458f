//! The access keys the broker accepts (`--auth FILE`, the AWS shared-credentials format)
//! and the clock skew it tolerates.

use kinesis_proto::shared_config::{FileKind, parse};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

/// How far a request's `X-Amz-Date` may be from the broker's clock: 15 minutes, as AWS.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// One accepted key.
#[derive(Clone)]
pub(super) struct Key {
    pub(super) secret: String,
    /// Temporary credentials listed with their token must present it.
    pub(super) session_token: Option<String>,
    pub(super) profile: String,
}

/// The access keys the broker accepts, and how much clock skew it tolerates.
#[derive(Clone)]
pub struct AuthKeys {
    pub(super) keys: HashMap<String, Key>,
    pub(super) max_skew: Duration,
}

impl fmt::Debug for AuthKeys {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        f.debug_struct("AuthKeys")
            .field("access_key_ids", &ids)
            .field("max_skew", &self.max_skew)
            .finish()
    }
}

impl AuthKeys {
    /// Keys from the text of a file in the AWS shared-credentials format:
    /// each `[section]` with `aws_access_key_id` and `aws_secret_access_key`
    /// (and optionally `aws_session_token`) lists one accepted key.
    pub fn parse(text: &str) -> io::Result<AuthKeys> {
        let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
        let file = parse(text, FileKind::Credentials).map_err(|e| invalid(e.to_string()))?;
        let mut keys = HashMap::new();
        for (name, profile) in file.profiles() {
            let id = profile.get("aws_access_key_id").map(str::trim);
            let secret = profile.get("aws_secret_access_key").map(str::trim);
            let (Some(id), Some(secret)) = (id, secret) else {
                return Err(invalid(format!(
                    "[{name}]: needs aws_access_key_id and aws_secret_access_key"
                )));
            };
            if id.is_empty() || secret.is_empty() || id.contains(['/', ' ', ',']) {
                return Err(invalid(format!(
                    "[{name}]: invalid access key id or secret"
                )));
            }
            let key = Key {
                secret: secret.to_string(),
                session_token: profile
                    .get("aws_session_token")
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
                profile: name.to_string(),
            };
            if keys.insert(id.to_string(), key).is_some() {
                return Err(invalid(format!("access key id {id} is listed twice")));
            }
        }
        if keys.is_empty() {
            return Err(invalid("no keys listed".into()));
        }
        Ok(AuthKeys {
            keys,
            max_skew: DEFAULT_MAX_SKEW,
        })
    }

    /// Keys from a file (see [`parse`](Self::parse)).
    pub fn from_file(path: &Path) -> io::Result<AuthKeys> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// Tolerate this much clock skew. Default [`DEFAULT_MAX_SKEW`].
    pub fn with_max_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// The tolerated clock skew.
    pub fn max_skew(&self) -> Duration {
        self.max_skew
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is accepted (never true for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
