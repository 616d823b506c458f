//! The checks of a signature's presence that Kinesis makes before verifying anything, also
//! made without `--auth` (docs/validation.md).

use http::request::Parts;
use kinesis_proto::{ErrorCode, KinesisError};

use super::rejection::{incomplete, invalid_sig};

/// The checks Kinesis makes of every request's signature before anything
/// is verified, in its order and words: a signature by header or by query
/// (not both), and the parts each must carry. Without `--auth` these are the
/// only signature checks, so an unsigned client fails here as on AWS
/// (docs/validation.md).
pub fn check_presence(parts: &Parts) -> Result<(), KinesisError> {
    let query: Vec<(&str, &str)> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let header = parts.headers.get(http::header::AUTHORIZATION);
    let query_auth = query.iter().any(|(k, _)| *k == "X-Amz-Algorithm");
    if header.is_some() && query_auth {
        return Err(invalid_sig(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
        ));
    }
    let mut msg = String::new();
    if let Some(header) = header {
        let header = String::from_utf8_lossy(header.as_bytes());
        let params: Vec<(&str, &str)> = header
            .split([',', ' '])
            .skip(1)
            .filter(|p| !p.is_empty())
            .map(|p| p.trim().split_once('=').unwrap_or((p.trim(), "")))
            .collect();
        for name in ["Credential", "Signature", "SignedHeaders"] {
            if !params.iter().any(|(k, v)| *k == name && !v.is_empty()) {
                msg.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if !parts.headers.contains_key("x-amz-date")
            && !parts.headers.contains_key(http::header::DATE)
        {
            msg.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
        }
        if !msg.is_empty() {
            msg.push_str(&format!("Authorization={header}"));
        }
    } else if query_auth {
        for name in [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Signature",
            "X-Amz-SignedHeaders",
            "X-Amz-Date",
        ] {
            if !query.iter().any(|(k, v)| *k == name && !v.is_empty()) {
                msg.push_str(&format!(
                    "AWS query-string parameters must include '{name}'. "
                ));
            }
        }
        if !msg.is_empty() {
            msg.push_str("Re-examine the query-string parameters.");
        }
    } else {
        return Err(KinesisError::new(
            ErrorCode::MissingAuthenticationToken,
            "Missing Authentication Token",
        ));
    }
    if msg.is_empty() {
        Ok(())
    } else {
        Err(incomplete(msg))
    }
}
