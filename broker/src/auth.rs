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

mod authorization_header;
mod canonical;
mod keys;
mod presence;
mod rejection;
mod request_time;
mod signature;

use http::request::Parts;
use kinesis_proto::{ErrorCode, KinesisError};
use std::time::SystemTime;

use authorization_header::AuthorizationHeader;
use canonical::{canonical_request, header_value};
use keys::Key;
pub use keys::{AuthKeys, DEFAULT_MAX_SKEW};
pub use presence::check_presence;
use rejection::{incomplete, invalid_sig};
use request_time::{check_skew, request_time};
use signature::{constant_time_eq, hex, hmac, signing_key, string_to_sign};

const SERVICE: &str = "kinesis";
const UNKNOWN_KEY: &str = "The security token included in the request is invalid.";

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

#[cfg(test)]
mod tests;
