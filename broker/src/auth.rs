//! Request authentication (`--auth FILE`): the access keys the broker
//! accepts, and SigV4 verification of every request against them with the
//! errors Amazon Kinesis answers.
//!
//! The canonical request is rebuilt from what was received: the method, the
//! path and query, the headers the client listed in `SignedHeaders` with
//! their received values (`host` from `Host`, or HTTP/2's `:authority`) and
//! the exact body, so any change after signing fails the check.
//!
//! ```
//! use kinesis_broker::auth::AuthKeys;
//! let keys = AuthKeys::parse(
//!     "[ci]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n",
//! )
//! .unwrap();
//! assert_eq!(keys.len(), 1);
//! ```

use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use http::request::Parts;
use kinesis_proto::aws_date::{format_amz_date, parse_amz_date, parse_http_date};
use kinesis_proto::shared_config::{FileKind, parse};
use kinesis_proto::{ErrorCode, KinesisError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a request's `X-Amz-Date` may be from the broker's clock: 15 minutes, as AWS.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "kinesis";
const UNKNOWN_KEY: &str = "The security token included in the request is invalid.";

/// One accepted key.
#[derive(Clone)]
struct Key {
    secret: String,
    /// Temporary credentials listed with their token must present it.
    session_token: Option<String>,
    profile: String,
}

/// The access keys the broker accepts, and how much clock skew it tolerates.
#[derive(Clone)]
pub struct AuthKeys {
    keys: HashMap<String, Key>,
    max_skew: Duration,
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

/// Who signed an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key id.
    pub access_key_id: String,
    /// The section of the auth file that listed it.
    pub profile: String,
    /// The region of the credential scope.
    pub region: String,
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

    /// Check a request's signature at time `now` for a broker serving
    /// `region`; the error is what Kinesis answers.
    pub fn verify(
        &self,
        parts: &Parts,
        body: &[u8],
        region: &str,
        now: SystemTime,
    ) -> Result<Caller, KinesisError> {
        self.verify_for(SERVICE, parts, body, region, now)
    }

    /// Everything [`verify`](Self::verify) checks that does not need the
    /// body: the header's form, a listed key, the credential scope, the
    /// clock, the session token and which headers are signed. The broker
    /// runs it before reading a body, so that nobody without a listed key
    /// can make it buffer one.
    pub fn check_header(
        &self,
        parts: &Parts,
        region: &str,
        now: SystemTime,
    ) -> Result<(), KinesisError> {
        self.presented(SERVICE, parts, region, now).map(|_| ())
    }

    /// [`verify`](Self::verify) for any SigV4 service name (the AWS test
    /// suite signs for `service` and `iam`).
    fn verify_for(
        &self,
        expected_service: &str,
        parts: &Parts,
        body: &[u8],
        region: &str,
        now: SystemTime,
    ) -> Result<Caller, KinesisError> {
        let p = self.presented(expected_service, parts, region, now)?;
        let canonical = canonical_request(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &p.auth.signed_headers,
            |name| header_value(parts, name),
            body,
        );
        let scope = format!("{}/{region}/{expected_service}/aws4_request", p.date);
        let to_sign = string_to_sign(&p.amz_date, &scope, &canonical);
        let expected = hex(&hmac(
            &signing_key(&p.key.secret, &p.date, region, expected_service),
            to_sign.as_bytes(),
        ));
        if !constant_time_eq(expected.as_bytes(), p.auth.signature.as_bytes()) {
            return Err(invalid_sig(&format!(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service \
                 documentation for details.\n\nThe Canonical String for this request should have \
                 been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
            )));
        }
        Ok(Caller {
            access_key_id: p.access_key_id,
            profile: p.key.profile.clone(),
            region: region.to_string(),
        })
    }

    /// The checks of [`check_header`](Self::check_header), and what the
    /// signature computation needs from them.
    fn presented(
        &self,
        expected_service: &str,
        parts: &Parts,
        expected_region: &str,
        now: SystemTime,
    ) -> Result<Presented<'_>, KinesisError> {
        let headers = &parts.headers;
        let query = parts.uri.query().unwrap_or("");
        let query_auth = query
            .split('&')
            .any(|p| p.split('=').next() == Some("X-Amz-Algorithm"));
        let Some(header) = headers.get(http::header::AUTHORIZATION) else {
            if query_auth {
                return Err(incomplete(
                    "Query-string (presigned) authentication is not supported by this broker; \
                     sign with the Authorization header."
                        .into(),
                ));
            }
            return Err(KinesisError::new(
                ErrorCode::MissingAuthenticationToken,
                "Missing Authentication Token",
            ));
        };
        if query_auth {
            return Err(invalid_sig(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.",
            ));
        }
        let header = header
            .to_str()
            .map_err(|_| incomplete("The Authorization header is not ASCII.".into()))?;
        let auth = AuthorizationHeader::parse(header)?;
        let (amz_date, time) = request_time(headers, header)?;

        // Credential = AKID/YYYYMMDD/region/service/aws4_request
        let scope: Vec<&str> = auth.credential.split('/').collect();
        let [akid, date, region, service, terminator] = scope[..] else {
            return Err(incomplete(format!(
                "Credential should have 5 '/'-separated parts (AKID/date/region/service/aws4_request), \
                 found '{}'. Authorization={header}",
                auth.credential
            )));
        };
        if terminator != "aws4_request" {
            return Err(invalid_sig(&format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
            )));
        }
        if service != expected_service {
            return Err(invalid_sig(&format!(
                "Credential should be scoped to correct service: '{expected_service}'."
            )));
        }
        let amz_day = amz_date.get(..8).unwrap_or(&amz_date);
        if date != amz_day {
            return Err(invalid_sig(&format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{amz_day}', from '{amz_date}'."
            )));
        }
        if region.is_empty() {
            return Err(invalid_sig(
                "Credential should be scoped to a valid region.",
            ));
        }
        // A signature is only good in the region it was made for.
        if region != expected_region {
            return Err(invalid_sig(&format!(
                "Credential should be scoped to a valid region, not '{region}'."
            )));
        }
        let Some(key) = self.keys.get(akid) else {
            return Err(KinesisError::new(
                ErrorCode::UnrecognizedClient,
                UNKNOWN_KEY,
            ));
        };
        check_skew(time, now, self.max_skew)?;
        let presented = headers.get("x-amz-security-token").map(|v| v.as_bytes());
        let token_ok = match (&key.session_token, presented) {
            (None, None) => true,
            (Some(expected), Some(got)) => constant_time_eq(expected.as_bytes(), got),
            _ => false,
        };
        if !token_ok {
            return Err(KinesisError::new(
                ErrorCode::UnrecognizedClient,
                UNKNOWN_KEY,
            ));
        }
        let signed = |name: &str| auth.signed_headers.iter().any(|h| h == name);
        if !signed("host") {
            return Err(invalid_sig(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        // Unsigned, these could be changed in flight: the time (replaying an
        // old request), the operation, or how the body is read.
        let time_header = if headers.contains_key("x-amz-date") {
            ("x-amz-date", "X-Amz-Date")
        } else {
            ("date", "Date")
        };
        for (name, shown) in [
            time_header,
            ("x-amz-target", "X-Amz-Target"),
            ("content-type", "Content-Type"),
        ] {
            if headers.contains_key(name) && !signed(name) {
                return Err(invalid_sig(&format!(
                    "'{shown}' must be a 'SignedHeader' in the AWS Authorization."
                )));
            }
        }
        Ok(Presented {
            access_key_id: akid.to_string(),
            date: date.to_string(),
            amz_date,
            key,
            auth,
        })
    }
}

/// A request's credentials that passed every check short of the signature.
struct Presented<'a> {
    access_key_id: String,
    date: String,
    amz_date: String,
    key: &'a Key,
    auth: AuthorizationHeader,
}

fn incomplete(message: String) -> KinesisError {
    KinesisError::new(ErrorCode::IncompleteSignature, message)
}

fn invalid_sig(message: &str) -> KinesisError {
    KinesisError::new(ErrorCode::InvalidSignature, message)
}

/// The three components of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug)]
struct AuthorizationHeader {
    credential: String,
    signed_headers: Vec<String>,
    signature: String,
}

impl AuthorizationHeader {
    fn parse(header: &str) -> Result<Self, KinesisError> {
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

/// The request time as `X-Amz-Date` text and as a time, from `X-Amz-Date` or `Date`.
fn request_time(headers: &HeaderMap, header: &str) -> Result<(String, SystemTime), KinesisError> {
    if let Some(v) = headers.get("x-amz-date") {
        let text = v.to_str().unwrap_or("").trim().to_string();
        let time = parse_amz_date(&text).ok_or_else(|| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{text}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?;
        return Ok((text, time));
    }
    if let Some(v) = headers.get(http::header::DATE) {
        let text = v.to_str().unwrap_or("").trim();
        let time = parse_http_date(text)
            .ok_or_else(|| incomplete(format!("Unreadable Date header '{text}'.")))?;
        return Ok((format_amz_date(time), time));
    }
    Err(incomplete(format!(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
    )))
}

fn check_skew(time: SystemTime, now: SystemTime, max: Duration) -> Result<(), KinesisError> {
    let window = if max.as_secs().is_multiple_of(60) {
        format!("{} min.", max.as_secs() / 60)
    } else {
        format!("{} sec.", max.as_secs())
    };
    let earliest = now.checked_sub(max).unwrap_or(UNIX_EPOCH);
    if time < earliest {
        return Err(invalid_sig(&format!(
            "Signature expired: {} is now earlier than {} ({} - {window})",
            format_amz_date(time),
            format_amz_date(earliest),
            format_amz_date(now)
        )));
    }
    // A window too wide to add to now accepts any later time.
    let latest = now.checked_add(max);
    if let Some(latest) = latest.filter(|l| time > *l) {
        return Err(invalid_sig(&format!(
            "Signature not yet current: {} is still later than {} ({} + {window})",
            format_amz_date(time),
            format_amz_date(latest),
            format_amz_date(now)
        )));
    }
    Ok(())
}

/// A signed header's canonical value: all received values joined by `,`,
/// each trimmed with inner runs of spaces collapsed; `host` falls back to
/// the URI authority (HTTP/2 `:authority`).
fn header_value(parts: &Parts, name: &str) -> String {
    let values: Vec<String> = parts
        .headers
        .get_all(name)
        .iter()
        .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
        .collect();
    if values.is_empty() && name == "host" {
        return parts
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
    }
    values.join(",")
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The SigV4 canonical request (`docs/sigv4.md` §2).
fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    signed_headers: &[String],
    value: impl Fn(&str) -> String,
    body: &[u8],
) -> String {
    let mut names: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::with_capacity(256);
    out.push_str(method);
    out.push('\n');
    out.push_str(&canonical_uri(path));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in &names {
        out.push_str(name);
        out.push(':');
        out.push_str(&value(name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(&hex(&Sha256::digest(body)));
    out
}

/// The path normalised (`.`, `..`, repeated slashes) and each segment
/// URI-encoded once more, as the SDKs do for every service but S3.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s.as_bytes()))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// The query parameters decoded, re-encoded canonically and sorted.
fn canonical_query(query: &str) -> String {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    params.sort();
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hexval = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    out
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    m.update(data);
    m.finalize().into_bytes().into()
}

/// kSigning = HMAC chain over date, region, service and "aws4_request" (`docs/sigv4.md` §3).
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Equal in time independent of where the inputs differ (lengths aside).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
