//! Who may use the broker's own endpoints: `/admin/faults` (which can fail or
//! delay every call), and `/metrics` under `--protect-metrics`.
//!
//! With neither `--auth` nor `--admin-token` they are open, as before. With
//! either, a request must present `Authorization: Bearer <admin token>`, or
//! (under `--auth`) a SigV4 signature from a listed key, checked exactly as a
//! Kinesis call's (`kinesis` service, the broker's region).

pub use crate::admin_token::AdminToken;
use crate::config::BrokerConfig;
use crate::response::{Body, respond};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use std::time::SystemTime;

/// How a request to a protected endpoint was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing to check against: the endpoints are open.
    Open,
    /// The admin token.
    Token,
    /// A SigV4 header that passed every check short of the signature, which
    /// needs the body: finish with [`verify_signature`].
    Signed,
}

/// Why a request to a protected endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials at all (HTTP 401).
    Unauthenticated,
    /// Credentials that do not open it (HTTP 403), and why.
    Forbidden(String),
}

/// Whether the endpoints need credentials under this config.
pub fn is_protected(config: &BrokerConfig) -> bool {
    config.auth.is_some() || config.admin_token.is_some()
}

/// Check the credentials a request presents, before its body is read.
pub fn check(config: &BrokerConfig, parts: &Parts, now: SystemTime) -> Result<Access, Refusal> {
    if !is_protected(config) {
        return Ok(Access::Open);
    }
    let Some(header) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Err(Refusal::Unauthenticated);
    };
    let header = header.to_str().unwrap_or_default().trim();
    if let Some(presented) = header.strip_prefix("Bearer ") {
        return match &config.admin_token {
            Some(token) if token.matches(presented.trim()) => Ok(Access::Token),
            _ => Err(Refusal::Forbidden("the admin token is not valid".into())),
        };
    }
    match &config.auth {
        Some(keys) => keys
            .check_header(parts, &config.region, now)
            .map(|()| Access::Signed)
            .map_err(|e| Refusal::Forbidden(format!("{}: {}", e.code.as_str(), e.message))),
        None => Err(Refusal::Forbidden(
            "this broker accepts only its admin token here (Authorization: Bearer <token>)".into(),
        )),
    }
}

/// Finish an [`Access::Signed`] check with the body; other accesses pass.
pub fn verify_signature(
    config: &BrokerConfig,
    access: Access,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Refusal> {
    match (access, &config.auth) {
        (Access::Signed, Some(keys)) => keys
            .verify(parts, body, &config.region, now)
            .map(drop)
            .map_err(|e| Refusal::Forbidden(format!("{}: {}", e.code.as_str(), e.message))),
        (Access::Signed, None) => Err(Refusal::Forbidden("no keys are listed".into())),
        _ => Ok(()),
    }
}

/// A request to a protected endpoint without the credentials it needs.
pub fn refused(r: Refusal) -> Response<Body> {
    match r {
        Refusal::Unauthenticated => {
            let mut resp = respond(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                Bytes::from_static(
                    b"this endpoint needs Authorization: Bearer <admin token>, or a SigV4 signature from a listed key\n",
                ),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kinesis-broker\""),
            );
            resp
        }
        Refusal::Forbidden(why) => respond(
            StatusCode::FORBIDDEN,
            "text/plain",
            Bytes::from(format!("{why}\n")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = http::Request::builder()
            .method("GET")
            .uri("/admin/faults")
            .header("host", "localhost");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn tokens() {
        assert_eq!(AdminToken::new("  "), None);
        let token = AdminToken::new("s3cret").unwrap();
        assert!(!format!("{token:?}").contains("s3cret"));
        let config = BrokerConfig::builder().admin_token(token).build();
        let now = SystemTime::now();
        assert_eq!(
            check(&config, &parts(None), now),
            Err(Refusal::Unauthenticated)
        );
        assert_eq!(
            check(&config, &parts(Some("Bearer s3cret")), now),
            Ok(Access::Token)
        );
        for bad in ["Bearer s3cre", "Bearer s3cret2", "Bearer ", "s3cret"] {
            assert!(
                matches!(
                    check(&config, &parts(Some(bad)), now),
                    Err(Refusal::Forbidden(_))
                ),
                "{bad}"
            );
        }
        // Nothing configured: open.
        let open = BrokerConfig::default();
        assert_eq!(check(&open, &parts(None), now), Ok(Access::Open));
    }
}
