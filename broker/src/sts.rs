//! The one STS call a Kinesis client makes of its own accord: the Java KPL asks
//! `GetCallerIdentity` for the account id to build the stream's ARN before it
//! puts anything, so a KPL pointed at the broker points its STS endpoint here too.
//! STS speaks the AWS Query protocol: a form-encoded POST, answered in XML.

use http::{HeaderMap, StatusCode, header};

/// Largest STS request body read; `GetCallerIdentity` is a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Whether this request is an STS (Query protocol) call rather than a Kinesis one:
/// a form-encoded body and no `X-Amz-Target`.
pub fn is_sts_request(headers: &HeaderMap) -> bool {
    headers.get("x-amz-target").is_none()
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            })
}

/// The value of form field `name` in `body` (`a=1&b=2`), undecoded.
fn form_field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The access key id named in a SigV4 `Authorization` header, if any.
fn access_key_id(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let key = credential.split('/').next()?;
    let valid = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| key.to_string())
}

/// Answer one STS call: status and XML body.
pub fn answer(
    account_id: &str,
    request_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String) {
    let body = String::from_utf8_lossy(body);
    let action = form_field(&body, "Action").unwrap_or_default();
    if action != "GetCallerIdentity" {
        let (code, message) = if action.is_empty() {
            ("MissingAction", "Missing Action".to_string())
        } else {
            (
                "InvalidAction",
                "Could not find operation on this endpoint".to_string(),
            )
        };
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
                 <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  \
                 </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
            ),
        );
    }
    let user = access_key_id(headers).unwrap_or_else(|| "broker".to_string());
    (
        StatusCode::OK,
        format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  \
             <GetCallerIdentityResult>\n    <Arn>arn:aws:iam::{account_id}:user/{user}</Arn>\n    \
             <UserId>{user}</UserId>\n    <Account>{account_id}</Account>\n  \
             </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  \
             </ResponseMetadata>\n</GetCallerIdentityResponse>\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/us-east-1/sts/aws4_request, \
                 SignedHeaders=host, Signature=00",
            ),
        );
        h
    }

    #[test]
    fn get_caller_identity_names_the_brokers_account() {
        let h = form_headers();
        assert!(is_sts_request(&h));
        let (status, xml) = answer(
            "123456789012",
            "rid",
            &h,
            b"Action=GetCallerIdentity&Version=2011-06-15",
        );
        assert_eq!(status, StatusCode::OK);
        assert!(xml.contains("<Account>123456789012</Account>"), "{xml}");
        assert!(
            xml.contains("<Arn>arn:aws:iam::123456789012:user/AKIDEXAMPLE</Arn>"),
            "{xml}"
        );
        assert!(xml.contains("<RequestId>rid</RequestId>"), "{xml}");
    }

    #[test]
    fn other_actions_and_kinesis_calls_are_not_sts() {
        let h = form_headers();
        let (status, xml) = answer("1", "rid", &h, b"Action=AssumeRole&Version=2011-06-15");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(xml.contains("<Code>InvalidAction</Code>"), "{xml}");
        let (status, xml) = answer("1", "rid", &h, b"");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(xml.contains("<Code>MissingAction</Code>"), "{xml}");
        let mut k = h.clone();
        k.insert(
            "x-amz-target",
            HeaderValue::from_static("Kinesis_20131202.ListShards"),
        );
        assert!(!is_sts_request(&k));
        let mut j = HeaderMap::new();
        j.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        assert!(!is_sts_request(&j));
    }
}
