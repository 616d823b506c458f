//! SigV4 signing through the `aws-sigv4` crate.

use super::credentials::Credentials;
use super::credentials::{CachedProvider, CredentialsProvider};
use super::error::ClientError;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::SystemTime;

/// Signs requests for one credentials source, region and service; built once per client.
#[derive(Debug)]
pub(crate) struct Signer {
    credentials: CachedProvider,
    /// Fixed credentials never need [`refresh`](Self::refresh).
    fixed: bool,
    region: String,
    service: &'static str,
}

impl Signer {
    /// A signer for these fixed credentials, region and SigV4 service name.
    pub(crate) fn new(creds: &Credentials, region: &str, service: &'static str) -> Self {
        Signer {
            credentials: CachedProvider::preloaded(creds.clone()),
            fixed: true,
            region: region.to_string(),
            service,
        }
    }

    /// A signer whose credentials come from `provider` (cached here).
    pub(crate) fn with_provider(
        provider: Arc<dyn CredentialsProvider>,
        region: &str,
        service: &'static str,
    ) -> Self {
        Signer {
            credentials: CachedProvider::from_arc(provider),
            fixed: false,
            region: region.to_string(),
            service,
        }
    }

    /// Make sure the cached credentials are loaded and not about to expire;
    /// call before [`sign_into`](Self::sign_into) (cheap when they are fresh).
    pub(crate) async fn refresh(&self) -> Result<(), ClientError> {
        if self.fixed {
            return Ok(());
        }
        self.credentials.credentials().await.map(drop)
    }

    fn identity(&self) -> Result<Identity, ClientError> {
        let creds = self.credentials.current().ok_or_else(|| {
            ClientError::NoCredentials("credentials are not loaded yet (call refresh first)".into())
        })?;
        Ok(aws_credential_types::Credentials::new(
            creds.access_key_id,
            creds.secret_access_key,
            creds.session_token,
            creds.expires_at,
            "kinesis-proto",
        )
        .into())
    }

    /// Sign a request and add `X-Amz-Date`, `Authorization` and, with a
    /// session token, `X-Amz-Security-Token` to `out`.
    ///
    /// `headers` are exactly the headers to sign (lower-case names), `host`
    /// included: passing it explicitly keeps the signed value identical to the
    /// one sent, whatever the URI's port spelling.
    pub(crate) fn sign_into(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        time: SystemTime,
        out: &mut HeaderMap,
    ) -> Result<(), ClientError> {
        let identity = self.identity()?;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ClientError::Config(format!("signing parameters: {e}")))?
            .into();
        let signable = SignableRequest::new(
            method,
            uri,
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| ClientError::Config(format!("cannot sign request: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| ClientError::Config(format!("cannot sign request: {e}")))?
            .into_parts();
        for (name, value) in instructions.headers() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| ClientError::Config(format!("signing header name: {e}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| ClientError::Config(format!("invalid characters in {name}")))?;
            if name == http::header::AUTHORIZATION || name.as_str() == "x-amz-security-token" {
                value.set_sensitive(true);
            }
            out.insert(name, value);
        }
        Ok(())
    }
}

/// Sign one request with fixed credentials: the `x-amz-date`, `authorization`
/// (and `x-amz-security-token`) headers to add to `headers`, which must be
/// exactly the headers to sign, `host` included. For callers that build
/// requests by hand (raw-HTTP tests, tools), not through [`Client`](crate::client::Client).
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    creds: &Credentials,
    region: &str,
    service: &'static str,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>, ClientError> {
    let mut out = HeaderMap::new();
    Signer::new(creds, region, service).sign_into(method, uri, headers, body, time, &mut out)?;
    Ok(out
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// 2015-08-30T12:36:00Z, the time of every AWS test-suite vector.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn authorization(
        service: &'static str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HeaderMap {
        let signer = Signer::new(&Credentials::test(), "us-east-1", service);
        let mut out = HeaderMap::new();
        signer
            .sign_into(method, uri, headers, body, suite_time(), &mut out)
            .expect("sign");
        assert_eq!(out["x-amz-date"], "20150830T123600Z");
        out
    }

    // `docs/sigv4.md` §5: post-vanilla
    #[test]
    fn sigv4_post_vanilla() {
        let out = authorization(
            "service",
            "POST",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
            b"",
        );
        assert_eq!(
            out["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert!(out["authorization"].is_sensitive());
        assert!(!out.contains_key("x-amz-security-token"));
    }

    // `docs/sigv4.md` §5: get-vanilla
    #[test]
    fn sigv4_get_vanilla() {
        let out = authorization(
            "service",
            "GET",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
            b"",
        );
        assert!(out["authorization"].to_str().unwrap().ends_with(
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ));
    }

    // `docs/sigv4.md` §5: form POST
    #[test]
    fn sigv4_post_x_www_form_urlencoded() {
        let out = authorization(
            "service",
            "POST",
            "https://example.amazonaws.com/",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
            ],
            b"Param1=value1",
        );
        assert_eq!(
            out["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        );
    }

    // `docs/sigv4.md` §5, Kinesis CreateStream: the request our client sends, with the spec's inputs.
    #[test]
    fn sigv4_kinesis_create_stream() {
        let body = br#"{"StreamName":"test-stream","ShardCount":1}"#;
        assert_eq!(body.len(), 43);
        let out = authorization(
            "kinesis",
            "POST",
            "https://kinesis.us-east-1.amazonaws.com/",
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("host", "kinesis.us-east-1.amazonaws.com"),
                ("x-amz-target", "Kinesis_20131202.CreateStream"),
            ],
            body,
        );
        assert_eq!(
            out["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=7b774b5e27b65075219a631db686f51a1e0a43a9a7908b309c8f2111b02a9fed"
        );
    }

    // `docs/sigv4.md` §5: signing key only
    #[test]
    fn sigv4_signing_key_derivation() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let key = v4::generate_signing_key(
            crate::client::TEST_SECRET_ACCESS_KEY,
            UNIX_EPOCH + Duration::from_secs(1_329_264_000), // 2012-02-15
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex(key.as_ref()),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        let key = v4::generate_signing_key(
            crate::client::TEST_SECRET_ACCESS_KEY,
            suite_time(),
            "us-east-1",
            "kinesis",
        );
        assert_eq!(
            hex(key.as_ref()),
            "1a8ef0fa45f4fb9b8ca6c755f0b81c00b521d0e7b9564a363d2511b8f4d4bc54"
        );
    }

    // `docs/sigv4.md` §5: GET with a query
    #[test]
    fn sigv4_iam_list_users_with_query() {
        let out = authorization(
            "iam",
            "GET",
            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            &[
                (
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                ),
                ("host", "iam.amazonaws.com"),
            ],
            b"",
        );
        assert_eq!(
            out["authorization"],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let creds = Credentials::test().with_session_token("tok/en+");
        let signer = Signer::new(&creds, "us-east-1", "kinesis");
        let mut out = HeaderMap::new();
        signer
            .sign_into(
                "POST",
                "http://127.0.0.1:4567/",
                &[("host", "127.0.0.1:4567")],
                b"{}",
                suite_time(),
                &mut out,
            )
            .expect("sign");
        assert_eq!(out["x-amz-security-token"], "tok/en+");
        assert!(out["x-amz-security-token"].is_sensitive());
        let auth = out["authorization"].to_str().unwrap();
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token,"),
            "{auth}"
        );
    }
}
