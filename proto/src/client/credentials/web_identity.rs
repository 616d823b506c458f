//! Web identity: an OIDC token file exchanged for role credentials with STS
//! `AssumeRoleWithWebIdentity` (EKS IRSA, GitHub Actions OIDC, …).

use super::http::fetch;
use super::{Credentials, CredentialsFuture, CredentialsProvider, Env, parse_rfc3339};
use crate::client::ClientError;
use bytes::Bytes;
use http::Method;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// STS answers within seconds; this bounds a hung exchange.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Role credentials for a web identity token.
///
/// From the environment: `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, the
/// optional `AWS_ROLE_SESSION_NAME`; or from a profile's
/// `web_identity_token_file` and `role_arn`. The STS endpoint is
/// `AWS_ENDPOINT_URL_STS` if set, else the regional one
/// (`https://sts.{region}.amazonaws.com`, region from `AWS_REGION`,
/// `AWS_DEFAULT_REGION` or [`region`](Self::region)), else the global one.
#[derive(Debug, Clone)]
pub struct WebIdentityProvider {
    env: Env,
    region: Option<String>,
    /// Set when built from a profile; otherwise read from the environment.
    explicit: Option<(String, String, Option<String>)>,
}

impl WebIdentityProvider {
    /// Read the process environment.
    pub fn new() -> Self {
        Self::with_env(Env::process())
    }

    /// Read these variables.
    pub fn with_env(env: Env) -> Self {
        WebIdentityProvider {
            env,
            region: None,
            explicit: None,
        }
    }

    /// A fixed token file, role and optional session name (a profile's settings).
    pub fn from_settings(
        env: Env,
        token_file: impl Into<String>,
        role_arn: impl Into<String>,
        session_name: Option<String>,
    ) -> Self {
        WebIdentityProvider {
            env,
            region: None,
            explicit: Some((token_file.into(), role_arn.into(), session_name)),
        }
    }

    /// The region whose STS endpoint to use when `AWS_REGION` is unset.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    fn settings(&self) -> Result<(String, String, Option<String>), ClientError> {
        if let Some(s) = &self.explicit {
            return Ok(s.clone());
        }
        let file = self.env.get("AWS_WEB_IDENTITY_TOKEN_FILE");
        let role = self.env.get("AWS_ROLE_ARN");
        match (file, role) {
            (None, _) => Err(ClientError::NoCredentials(
                "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set".into(),
            )),
            (Some(_), None) => Err(ClientError::Credentials(
                "web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not".into(),
            )),
            (Some(f), Some(r)) => Ok((f, r, self.env.get("AWS_ROLE_SESSION_NAME"))),
        }
    }

    fn sts_endpoint(&self) -> String {
        if let Some(e) = self.env.get("AWS_ENDPOINT_URL_STS") {
            return e.trim().trim_end_matches('/').to_string();
        }
        let region = self
            .env
            .get("AWS_REGION")
            .or_else(|| self.env.get("AWS_DEFAULT_REGION"))
            .or_else(|| self.region.clone());
        match region {
            Some(r) if r.starts_with("cn-") => format!("https://sts.{r}.amazonaws.com.cn"),
            Some(r) => format!("https://sts.{r}.amazonaws.com"),
            None => "https://sts.amazonaws.com".into(),
        }
    }

    async fn load(&self) -> Result<Credentials, ClientError> {
        let (file, role_arn, session) = self.settings()?;
        let token = tokio::fs::read_to_string(&file).await.map_err(|e| {
            ClientError::Credentials(
                format!("web identity: cannot read token file {file}: {e}").into(),
            )
        })?;
        let session = session.unwrap_or_else(|| {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            format!("kinesis-toolkit-{ms}")
        });
        let body = assume_role_body(&role_arn, &session, token.trim());
        let url = format!("{}/", self.sts_endpoint());
        let answer = fetch(
            Method::POST,
            &url,
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            Bytes::from(body),
            TIMEOUT,
        )
        .await
        .map_err(|e| ClientError::Credentials(format!("web identity: STS {url}: {e}").into()))?;
        let text = String::from_utf8_lossy(&answer.body);
        if answer.status != 200 {
            let code = xml_text(&text, "Code").unwrap_or_default();
            let message = xml_text(&text, "Message").unwrap_or_default();
            return Err(ClientError::Credentials(format!(
                "web identity: STS AssumeRoleWithWebIdentity answered HTTP {}: {code}: {message}",
                answer.status
            ).into()));
        }
        parse_assume_role_answer(&text)
    }
}

impl Default for WebIdentityProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialsProvider for WebIdentityProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.load())
    }
}

/// The form body of `AssumeRoleWithWebIdentity` (an unsigned Query API call).
fn assume_role_body(role_arn: &str, session: &str, token: &str) -> String {
    format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName={}&WebIdentityToken={}",
        form_encode(role_arn),
        form_encode(session),
        form_encode(token)
    )
}

/// Percent-encode all but RFC 3986's unreserved characters.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_assume_role_answer(xml: &str) -> Result<Credentials, ClientError> {
    let field = |tag: &str| {
        xml_text(xml, tag).ok_or_else(|| {
            ClientError::Credentials(format!("web identity: the STS answer has no <{tag}>").into())
        })
    };
    let mut c = Credentials::new(field("AccessKeyId")?, field("SecretAccessKey")?)
        .with_session_token(field("SessionToken")?);
    let exp = field("Expiration")?;
    c.expires_at = Some(parse_rfc3339(&exp).ok_or_else(|| {
        ClientError::Credentials(format!("web identity: unreadable Expiration {exp:?}").into())
    })?);
    Ok(c)
}

/// The text of the first `<tag>…</tag>`, entities decoded. STS answers are
/// flat and attribute-free where it matters, so no XML parser is needed.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let raw = xml[start..end].trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#xA;", "\n")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_body_is_form_encoded() {
        assert_eq!(
            assume_role_body("arn:aws:iam::123456789012:role/r", "s 1", "a.b+c/="),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15\
             &RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr\
             &RoleSessionName=s%201&WebIdentityToken=a.b%2Bc%2F%3D"
        );
    }

    #[test]
    fn answer_is_parsed() {
        let xml = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>tok&amp;en</SessionToken>
      <SecretAccessKey>secret</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASIA1</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;
        let c = parse_assume_role_answer(xml).unwrap();
        assert_eq!(c.access_key_id, "ASIA1");
        assert_eq!(c.secret_access_key, "secret");
        assert_eq!(c.session_token.as_deref(), Some("tok&en"));
        assert_eq!(
            c.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_414_191_623))
        );
        assert!(parse_assume_role_answer("<x/>").is_err());
    }

    #[test]
    fn endpoint_choice() {
        let p = |pairs: &[(&str, &str)], region: Option<&str>| {
            let mut p = WebIdentityProvider::with_env(Env::from_pairs(pairs.iter().copied()));
            if let Some(r) = region {
                p = p.region(r);
            }
            p.sts_endpoint()
        };
        assert_eq!(p(&[], None), "https://sts.amazonaws.com");
        assert_eq!(
            p(&[], Some("eu-west-1")),
            "https://sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            p(&[("AWS_REGION", "cn-north-1")], Some("eu-west-1")),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            p(&[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/")], None),
            "http://127.0.0.1:9"
        );
    }
}
