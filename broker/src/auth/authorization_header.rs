//! The `Authorization` header's three components, read in Kinesis's order and words.

use kinesis_proto::KinesisError;

use super::rejection::incomplete;
use super::signature::ALGORITHM;

/// The three components of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug)]
pub(super) struct AuthorizationHeader {
    pub(super) credential: String,
    pub(super) signed_headers: Vec<String>,
    pub(super) signature: String,
}

impl AuthorizationHeader {
    pub(super) fn parse(header: &str) -> Result<Self, KinesisError> {
        let header = header.trim();
        let (algorithm, rest) = header.split_once(' ').unwrap_or((header, ""));
        if algorithm != ALGORITHM {
            return Err(incomplete(format!(
                "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM}). Authorization={header}"
            )));
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        // Components are separated by "," or ", " and may come in any order.
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(incomplete(format!(
                    "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'"
                )));
            };
            match k.trim() {
                "Credential" => credential = Some(v.trim().to_string()),
                "SignedHeaders" => signed = Some(v.trim().to_string()),
                "Signature" => signature = Some(v.trim().to_string()),
                _ => {}
            }
        }
        let mut missing = String::new();
        for (name, value) in [
            ("Credential", &credential),
            ("Signature", &signature),
            ("SignedHeaders", &signed),
        ] {
            if value.as_deref().is_none_or(str::is_empty) {
                missing.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if !missing.is_empty() {
            return Err(incomplete(format!("{missing}Authorization={header}")));
        }
        let signed_headers = signed
            .unwrap_or_default()
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        Ok(AuthorizationHeader {
            credential: credential.unwrap_or_default(),
            signed_headers,
            signature: signature.unwrap_or_default(),
        })
    }
}
