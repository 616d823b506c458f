//! The endpoint, parsed and normalised once per client.

use super::ClientError;
use http::Uri;
use http::header::HeaderValue;

/// The endpoint, normalised once so that the signed `host` and the sent
/// `Host`/`:authority` are byte-identical.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Endpoint {
    /// `scheme://host[:port]/` with a default port dropped.
    pub(super) uri: Uri,
    /// `uri` as text: the URL that is signed.
    pub(super) uri_str: String,
    /// `host[:port]` with a default port dropped.
    pub(super) host: String,
    /// `host` as the `Host` header value.
    pub(super) host_header: HeaderValue,
}

impl Endpoint {
    /// Parse and normalise a configured endpoint; only `http(s)://host[:port][/]`.
    pub(super) fn parse(raw: &str) -> Result<Self, ClientError> {
        let bad = |why: &str| ClientError::Config(format!("endpoint {raw:?}: {why}"));
        let uri: Uri = raw.trim().parse().map_err(|e| bad(&format!("{e}")))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => return Err(bad("scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user info is not supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(bad("Kinesis endpoints have no path or query"));
        }
        let host = match authority.port_u16() {
            Some(port) if port != default_port => format!("{}:{port}", authority.host()),
            _ => authority.host().to_string(),
        };
        if authority.host().is_empty() {
            return Err(bad("no host"));
        }
        let uri_str = format!("{}://{host}/", uri.scheme_str().unwrap_or("https"));
        let uri: Uri = uri_str.parse().map_err(|e| bad(&format!("{e}")))?;
        let host_header = HeaderValue::from_str(&host).map_err(|e| bad(&format!("{e}")))?;
        Ok(Endpoint {
            uri,
            uri_str,
            host,
            host_header,
        })
    }
}
