use super::canonical::canonical_query;
use super::*;
use kinesis_proto::aws_date::{format_amz_date, parse_amz_date, parse_http_date};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::io;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_DATE: &str = "20150830T123600Z";

/// 2015-08-30T12:36:00Z, the time of every `docs/sigv4.md` §5 vector.
fn suite_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn keys() -> AuthKeys {
    AuthKeys::parse(&format!(
        "[suite]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n\
         [temp]\naws_access_key_id = ASIATEMP\naws_secret_access_key = temp-secret\naws_session_token = tok/en+\n"
    ))
    .unwrap()
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn suite_auth(service: &str, signed: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/{service}/aws4_request, SignedHeaders={signed}, Signature={signature}"
    )
}

// ------------------------------------------------ the `docs/sigv4.md` §5 vectors

// post-vanilla
#[test]
fn vector_post_vanilla() {
    let auth = suite_auth(
        "service",
        "host;x-amz-date",
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    );
    let p = parts(
        "POST",
        "/",
        &[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", SUITE_DATE),
            ("authorization", &auth),
        ],
    );
    let canonical = canonical_request(
        "POST",
        "/",
        "",
        &["host".into(), "x-amz-date".into()],
        |n| header_value(&p, n),
        b"",
    );
    assert_eq!(
        canonical,
        "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        string_to_sign(
            SUITE_DATE,
            "20150830/us-east-1/service/aws4_request",
            &canonical
        ),
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87"
    );
    let caller = keys()
        .verify_for("service", &p, b"", "us-east-1", suite_time())
        .unwrap();
    assert_eq!(
        caller,
        Caller {
            access_key_id: AKID.into(),
            profile: "suite".into(),
            region: "us-east-1".into()
        }
    );
}

// get-vanilla
#[test]
fn vector_get_vanilla() {
    let auth = suite_auth(
        "service",
        "host;x-amz-date",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let p = parts(
        "GET",
        "/",
        &[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", SUITE_DATE),
            ("authorization", &auth),
        ],
    );
    let canonical = canonical_request(
        "GET",
        "/",
        "",
        &["host".into(), "x-amz-date".into()],
        |n| header_value(&p, n),
        b"",
    );
    assert_eq!(
        hex(&Sha256::digest(canonical.as_bytes())),
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
    keys()
        .verify_for("service", &p, b"", "us-east-1", suite_time())
        .unwrap();
}

// form POST
#[test]
fn vector_post_with_body() {
    let auth = suite_auth(
        "service",
        "content-type;host;x-amz-date",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    );
    let p = parts(
        "POST",
        "/",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("host", "example.amazonaws.com"),
            ("x-amz-date", SUITE_DATE),
            ("authorization", &auth),
        ],
    );
    keys()
        .verify_for("service", &p, b"Param1=value1", "us-east-1", suite_time())
        .unwrap();
    // The same request with another body: refused.
    let e = keys()
        .verify_for("service", &p, b"Param1=value2", "us-east-1", suite_time())
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidSignature);
}

fn create_stream_request(extra: &[(&str, &str)]) -> Parts {
    let auth = suite_auth(
        "kinesis",
        "content-type;host;x-amz-date;x-amz-target",
        "7b774b5e27b65075219a631db686f51a1e0a43a9a7908b309c8f2111b02a9fed",
    );
    let mut headers = vec![
        ("content-type", "application/x-amz-json-1.1"),
        ("host", "kinesis.us-east-1.amazonaws.com"),
        ("x-amz-date", SUITE_DATE),
        ("x-amz-target", "Kinesis_20131202.CreateStream"),
        ("authorization", auth.as_str()),
    ];
    headers.extend_from_slice(extra);
    // Later entries for the same name replace earlier ones.
    let mut map: Vec<(&str, &str)> = Vec::new();
    for (k, v) in headers {
        map.retain(|(n, _)| *n != k);
        map.push((k, v));
    }
    parts("POST", "/", &map)
}

const CREATE_STREAM_BODY: &[u8] = br#"{"StreamName":"test-stream","ShardCount":1}"#;

// Kinesis CreateStream, through the public entry point.
#[test]
fn vector_kinesis_create_stream() {
    let p = create_stream_request(&[]);
    let canonical = canonical_request(
        "POST",
        "/",
        "",
        &AuthorizationHeader::parse(p.headers["authorization"].to_str().unwrap())
            .unwrap()
            .signed_headers,
        |n| header_value(&p, n),
        CREATE_STREAM_BODY,
    );
    assert_eq!(
        canonical,
        "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:kinesis.us-east-1.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-target:Kinesis_20131202.CreateStream\n\ncontent-type;host;x-amz-date;x-amz-target\n6eaa29c4eb72de6738a59a6a48d63228be3b777fccd4f369da22e4ba5bf860c5"
    );
    assert_eq!(
        hex(&Sha256::digest(canonical.as_bytes())),
        "e3ba55d837909a6c02ddd1de50736a3079394cc9548b3686e9c1c514faff3a7c"
    );
    let caller = keys()
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
        .unwrap();
    assert_eq!(caller.access_key_id, AKID);
}

// signing key only
#[test]
fn vector_signing_keys() {
    assert_eq!(
        hex(&signing_key(SECRET, "20120215", "us-east-1", "iam")),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
    assert_eq!(
        hex(&signing_key(SECRET, "20150830", "us-east-1", "service")),
        "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75"
    );
    assert_eq!(
        hex(&signing_key(SECRET, "20150830", "us-east-1", "kinesis")),
        "1a8ef0fa45f4fb9b8ca6c755f0b81c00b521d0e7b9564a363d2511b8f4d4bc54"
    );
}

// IAM ListUsers: a GET with a query string.
#[test]
fn vector_iam_list_users_with_query() {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    // Parameters out of order on the wire: the canonical query sorts them.
    let p = parts(
        "GET",
        "/?Version=2010-05-08&Action=ListUsers",
        &[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", SUITE_DATE),
            ("authorization", auth),
        ],
    );
    assert_eq!(
        canonical_query("Version=2010-05-08&Action=ListUsers"),
        "Action=ListUsers&Version=2010-05-08"
    );
    let canonical = canonical_request(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        &["content-type".into(), "host".into(), "x-amz-date".into()],
        |n| header_value(&p, n),
        b"",
    );
    assert_eq!(
        hex(&Sha256::digest(canonical.as_bytes())),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    keys()
        .verify_for("iam", &p, b"", "us-east-1", suite_time())
        .unwrap();
}

// ------------------------------------------------ what is refused, and how

fn refused(p: &Parts, body: &[u8], now: SystemTime) -> KinesisError {
    keys().verify(p, body, "us-east-1", now).unwrap_err()
}

#[test]
fn unsigned_request_is_missing_a_token() {
    let p = parts(
        "POST",
        "/",
        &[
            ("host", "localhost"),
            ("x-amz-target", "Kinesis_20131202.ListStreams"),
        ],
    );
    let e = refused(&p, b"{}", suite_time());
    assert_eq!(e.code, ErrorCode::MissingAuthenticationToken);
    assert_eq!(e.message, "Missing Authentication Token");
}

#[test]
fn incomplete_signatures() {
    let header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date";
    let p = create_stream_request(&[("authorization", header)]);
    let e = refused(&p, CREATE_STREAM_BODY, suite_time());
    assert_eq!(e.code, ErrorCode::IncompleteSignature);
    assert_eq!(
        e.message,
        format!("Authorization header requires 'Signature' parameter. Authorization={header}")
    );

    let p = create_stream_request(&[("authorization", "AWS4-HMAC-SHA256 Signature=abc")]);
    let e = refused(&p, CREATE_STREAM_BODY, suite_time());
    assert_eq!(e.code, ErrorCode::IncompleteSignature);
    assert!(
        e.message.contains("'Credential'") && e.message.contains("'SignedHeaders'"),
        "{}",
        e.message
    );

    for bad in [
        "AWS4-HMAC-SHA256 Credential",
        "AWS3 Credential=a",
        "Bearer xyz",
    ] {
        let p = create_stream_request(&[("authorization", bad)]);
        let e = refused(&p, CREATE_STREAM_BODY, suite_time());
        assert_eq!(e.code, ErrorCode::IncompleteSignature, "{bad}");
    }

    // No X-Amz-Date and no Date.
    let mut p = create_stream_request(&[]);
    p.headers.remove("x-amz-date");
    let e = refused(&p, CREATE_STREAM_BODY, suite_time());
    assert_eq!(e.code, ErrorCode::IncompleteSignature);
    assert!(
        e.message.contains("'X-Amz-Date' or a 'Date' header"),
        "{}",
        e.message
    );

    let p = create_stream_request(&[("x-amz-date", "2015-08-30T12:36:00Z")]);
    let e = refused(&p, CREATE_STREAM_BODY, suite_time());
    assert_eq!(e.code, ErrorCode::IncompleteSignature);
}

#[test]
fn unknown_key_is_unrecognized() {
    let header = "AWS4-HMAC-SHA256 Credential=AKIAUNKNOWN/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=7b774b5e27b65075219a631db686f51a1e0a43a9a7908b309c8f2111b02a9fed";
    let p = create_stream_request(&[("authorization", header)]);
    let e = refused(&p, CREATE_STREAM_BODY, suite_time());
    assert_eq!(e.code, ErrorCode::UnrecognizedClient);
    assert_eq!(
        e.message,
        "The security token included in the request is invalid."
    );
}

#[test]
fn tampering_is_an_invalid_signature() {
    // The body changed after signing.
    let p = create_stream_request(&[]);
    let e = refused(
        &p,
        br#"{"StreamName":"test-stream","ShardCount":9}"#,
        suite_time(),
    );
    assert_eq!(e.code, ErrorCode::InvalidSignature);
    assert!(
        e.message
            .starts_with("The request signature we calculated does not match"),
        "{}",
        e.message
    );
    assert!(
        e.message
            .contains("The Canonical String for this request should have been")
    );
    // A signed header changed after signing.
    let p = create_stream_request(&[("x-amz-target", "Kinesis_20131202.DeleteStream")]);
    let e = refused(&p, CREATE_STREAM_BODY, suite_time());
    assert_eq!(e.code, ErrorCode::InvalidSignature);
    // Sent to another host than signed for.
    let p = create_stream_request(&[("host", "kinesis.eu-west-1.amazonaws.com")]);
    assert_eq!(
        refused(&p, CREATE_STREAM_BODY, suite_time()).code,
        ErrorCode::InvalidSignature
    );
    // Signed with another secret.
    let other = AuthKeys::parse(&format!(
        "[x]\naws_access_key_id={AKID}\naws_secret_access_key=not-the-secret\n"
    ))
    .unwrap();
    let e = other
        .verify(
            &create_stream_request(&[]),
            CREATE_STREAM_BODY,
            "us-east-1",
            suite_time(),
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidSignature);
    // Unsigned headers may change freely.
    let p = create_stream_request(&[("user-agent", "anything")]);
    keys()
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
        .unwrap();
}

#[test]
fn clock_skew_window() {
    let p = create_stream_request(&[]);
    let at = |s: u64| suite_time() + Duration::from_secs(s);
    // 15 minutes either way is fine.
    keys()
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", at(900))
        .unwrap();
    keys()
        .verify(
            &p,
            CREATE_STREAM_BODY,
            "us-east-1",
            suite_time() - Duration::from_secs(900),
        )
        .unwrap();
    // AWS's wording: "<request time> is now earlier than <now - window> (<now> - 15 min.)".
    let e = refused(&p, CREATE_STREAM_BODY, at(1200));
    assert_eq!(e.code, ErrorCode::InvalidSignature);
    assert_eq!(
        e.message,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T125600Z - 15 min.)"
    );
    let e = refused(
        &p,
        CREATE_STREAM_BODY,
        suite_time() - Duration::from_secs(1200),
    );
    assert_eq!(e.code, ErrorCode::InvalidSignature);
    assert_eq!(
        e.message,
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123100Z (20150830T121600Z + 15 min.)"
    );
    // Configurable.
    let tight = keys().with_max_skew(Duration::from_secs(30));
    assert_eq!(tight.max_skew(), Duration::from_secs(30));
    let e = tight
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", at(31))
        .unwrap_err();
    assert!(e.message.ends_with("- 30 sec.)"), "{}", e.message);
    tight
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", at(30))
        .unwrap();
}

#[test]
fn scope_must_match() {
    for (scope, needle) in [
        (
            "20150830/us-east-1/dynamodb/aws4_request",
            "correct service",
        ),
        (
            "20150831/us-east-1/kinesis/aws4_request",
            "Date in Credential scope",
        ),
        ("20150830/us-east-1/kinesis/aws5_request", "terminator"),
    ] {
        let header = format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00"
        );
        let p = create_stream_request(&[("authorization", &header)]);
        let e = refused(&p, CREATE_STREAM_BODY, suite_time());
        assert_eq!(e.code, ErrorCode::InvalidSignature, "{scope}");
        assert!(e.message.contains(needle), "{scope}: {}", e.message);
    }
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20150830/kinesis/aws4_request, SignedHeaders=host, Signature=00"
    );
    let p = create_stream_request(&[("authorization", &header)]);
    assert_eq!(
        refused(&p, CREATE_STREAM_BODY, suite_time()).code,
        ErrorCode::IncompleteSignature
    );
    // `host` must be signed.
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=x-amz-date, Signature=00"
    );
    let p = create_stream_request(&[("authorization", &header)]);
    let e = refused(&p, CREATE_STREAM_BODY, suite_time());
    assert!(e.message.contains("'Host'"), "{}", e.message);
}

#[test]
fn header_forms_clients_use() {
    // Comma without a space, components in another order.
    let header = "AWS4-HMAC-SHA256 Signature=7b774b5e27b65075219a631db686f51a1e0a43a9a7908b309c8f2111b02a9fed,SignedHeaders=content-type;host;x-amz-date;x-amz-target,Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request";
    let p = create_stream_request(&[("authorization", header)]);
    keys()
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
        .unwrap();
    // HTTP/2: no Host header, the signed host is the :authority.
    let mut p = create_stream_request(&[]);
    p.headers.remove("host");
    p.uri = "https://kinesis.us-east-1.amazonaws.com/".parse().unwrap();
    keys()
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
        .unwrap();
    // Header values are trimmed and inner spaces collapsed before signing.
    let mut p = create_stream_request(&[]);
    p.headers.insert(
        "x-amz-target",
        "  Kinesis_20131202.CreateStream ".parse().unwrap(),
    );
    keys()
        .verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
        .unwrap();
    // Both header and query authentication.
    let mut p = create_stream_request(&[]);
    p.uri = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256".parse().unwrap();
    assert_eq!(
        refused(&p, CREATE_STREAM_BODY, suite_time()).code,
        ErrorCode::InvalidSignature
    );
    let mut p = parts(
        "POST",
        "/?X-Amz-Algorithm=AWS4-HMAC-SHA256",
        &[("host", "x")],
    );
    p.headers.remove("authorization");
    assert_eq!(
        refused(&p, b"", suite_time()).code,
        ErrorCode::IncompleteSignature
    );
}

/// Sign a request with this module's own pieces (for cases no vector covers).
fn sign(p: &mut Parts, body: &[u8], akid: &str, secret: &str, date_header: (&str, &str)) {
    p.headers.insert(
        http::HeaderName::from_bytes(date_header.0.as_bytes()).unwrap(),
        date_header.1.parse().unwrap(),
    );
    let mut signed: Vec<String> = p.headers.keys().map(|k| k.as_str().to_string()).collect();
    signed.sort();
    let (amz_date, _) = request_time(&p.headers, "").unwrap();
    let canonical = canonical_request(
        p.method.as_str(),
        p.uri.path(),
        p.uri.query().unwrap_or(""),
        &signed,
        |n| header_value(p, n),
        body,
    );
    let scope = format!("{}/us-east-1/kinesis/aws4_request", &amz_date[..8]);
    let sig = hex(&hmac(
        &signing_key(secret, &amz_date[..8], "us-east-1", "kinesis"),
        string_to_sign(&amz_date, &scope, &canonical).as_bytes(),
    ));
    let header = format!(
        "AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={}, Signature={sig}",
        signed.join(";")
    );
    p.headers.insert("authorization", header.parse().unwrap());
}

#[test]
fn session_tokens_must_match_the_listed_key() {
    let base = || parts("POST", "/", &[("host", "127.0.0.1:4567")]);
    let date = ("x-amz-date", SUITE_DATE);
    // Listed with a token: the right token passes.
    let mut p = base();
    p.headers
        .insert("x-amz-security-token", "tok/en+".parse().unwrap());
    sign(&mut p, b"{}", "ASIATEMP", "temp-secret", date);
    let caller = keys().verify(&p, b"{}", "us-east-1", suite_time()).unwrap();
    assert_eq!(caller.profile, "temp");
    // A wrong or missing token: unrecognized.
    for token in [Some("other"), None] {
        let mut p = base();
        if let Some(t) = token {
            p.headers.insert("x-amz-security-token", t.parse().unwrap());
        }
        sign(&mut p, b"{}", "ASIATEMP", "temp-secret", date);
        let e = refused(&p, b"{}", suite_time());
        assert_eq!(e.code, ErrorCode::UnrecognizedClient, "{token:?}");
    }
    // A token presented for long-term keys: unrecognized too.
    let mut p = base();
    p.headers
        .insert("x-amz-security-token", "t".parse().unwrap());
    sign(&mut p, b"{}", AKID, SECRET, date);
    assert_eq!(
        refused(&p, b"{}", suite_time()).code,
        ErrorCode::UnrecognizedClient
    );
}

#[test]
fn date_header_instead_of_x_amz_date() {
    let mut p = parts("POST", "/", &[("host", "localhost")]);
    sign(
        &mut p,
        b"{}",
        AKID,
        SECRET,
        ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
    );
    keys().verify(&p, b"{}", "us-east-1", suite_time()).unwrap();
    let e = keys()
        .verify(
            &p,
            b"{}",
            "us-east-1",
            suite_time() + Duration::from_secs(3600),
        )
        .unwrap_err();
    assert!(
        e.message.starts_with("Signature expired: 20150830T123600Z"),
        "{}",
        e.message
    );
}

// ------------------------------------------------ the keys file

#[test]
fn keys_file_errors() {
    for bad in [
        "",
        "# only a comment\n",
        "[a]\naws_access_key_id = x\n",
        "[a]\naws_secret_access_key = x\n",
        "[a]\naws_access_key_id=k\naws_secret_access_key=s\n[b]\naws_access_key_id=k\naws_secret_access_key=t\n",
        "aws_access_key_id = x\n",
        "[a]\naws_access_key_id = a/b\naws_secret_access_key = s\n",
    ] {
        let e = AuthKeys::parse(bad).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{bad:?}");
    }
    let k = keys();
    assert_eq!(k.len(), 2);
    assert!(!k.is_empty());
    assert_eq!(k.max_skew(), DEFAULT_MAX_SKEW);
    let debug = format!("{k:?}");
    assert!(
        debug.contains("AKIDEXAMPLE") && !debug.contains(SECRET) && !debug.contains("temp-secret")
    );
    let missing = AuthKeys::from_file(Path::new("/nonexistent/auth.ini")).unwrap_err();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
}

#[test]
fn dates() {
    assert_eq!(parse_amz_date(SUITE_DATE), Some(suite_time()));
    assert_eq!(format_amz_date(suite_time()), SUITE_DATE);
    assert_eq!(
        parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
        Some(suite_time())
    );
    for bad in [
        "",
        "20150830T123600",
        "2015083OT123600Z",
        "20151330T123600Z",
        "20150830T253600Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
    assert_eq!(parse_http_date("Sun, 30 Foo 2015 12:36:00 GMT"), None);
}

proptest! {
    #[test]
    fn amz_dates_round_trip(secs in 0u64..32_503_680_000) {
        let t = UNIX_EPOCH + Duration::from_secs(secs);
        let text = format_amz_date(t);
        prop_assert_eq!(parse_amz_date(&text), Some(t));
    }

    // Whatever the Authorization header, verification answers an error and never panics.
    #[test]
    fn arbitrary_authorization_headers_are_refused(header in "[ -~]{0,200}") {
        let mut p = create_stream_request(&[]);
        if let Ok(v) = header.parse() {
            p.headers.insert("authorization", v);
            prop_assert!(keys().verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time()).is_err());
        }
    }

    #[test]
    fn canonical_query_is_order_independent(
        params in proptest::collection::btree_map("[A-Za-z0-9%-]{1,8}", "[A-Za-z0-9 %+=-]{0,8}", 0..5)
    ) {
        let pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut reversed = pairs.clone();
        reversed.reverse();
        prop_assert_eq!(canonical_query(&pairs.join("&")), canonical_query(&reversed.join("&")));
    }
}

// ------------------------------------------------ hardening

#[test]
fn a_signature_for_another_region_is_refused() {
    // Signed correctly, but for us-east-1: a broker serving eu-west-1 refuses it.
    let p = create_stream_request(&[]);
    let e = keys()
        .verify(&p, CREATE_STREAM_BODY, "eu-west-1", suite_time())
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidSignature);
    assert_eq!(
        e.message,
        "Credential should be scoped to a valid region, not 'us-east-1'."
    );
    let e = keys()
        .check_header(&p, "eu-west-1", suite_time())
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidSignature);
    keys().check_header(&p, "us-east-1", suite_time()).unwrap();
}

#[test]
fn the_date_target_and_content_type_must_be_signed() {
    for (left_out, shown) in [
        ("x-amz-date", "'X-Amz-Date'"),
        ("x-amz-target", "'X-Amz-Target'"),
        ("content-type", "'Content-Type'"),
    ] {
        // A correct signature over every header but `left_out`.
        let mut p = create_stream_request(&[]);
        p.headers.remove("authorization");
        let value = p.headers.remove(left_out).unwrap();
        sign(
            &mut p,
            CREATE_STREAM_BODY,
            AKID,
            SECRET,
            ("x-amz-date", SUITE_DATE),
        );
        keys()
            .verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
            .unwrap();
        // The header is sent, unsigned.
        p.headers
            .insert(http::HeaderName::from_static(left_out), value);
        if left_out == "x-amz-date" {
            // sign() put the date in; keep it, but drop it from SignedHeaders.
            let auth = p.headers["authorization"].to_str().unwrap().to_string();
            let auth = auth.replace(";x-amz-date", "").replace("x-amz-date;", "");
            p.headers.insert("authorization", auth.parse().unwrap());
        }
        let e = keys()
            .verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSignature, "{left_out}");
        assert!(e.message.contains(shown), "{left_out}: {}", e.message);
        let e = keys()
            .check_header(&p, "us-east-1", suite_time())
            .unwrap_err();
        assert!(e.message.contains(shown), "{left_out}: {}", e.message);
    }
    // With only a Date header, the Date header must be signed.
    let mut p = parts("POST", "/", &[("host", "localhost")]);
    sign(
        &mut p,
        b"{}",
        AKID,
        SECRET,
        ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
    );
    let auth = p.headers["authorization"].to_str().unwrap().to_string();
    p.headers
        .insert("authorization", auth.replace("date;", "").parse().unwrap());
    let e = keys()
        .verify(&p, b"{}", "us-east-1", suite_time())
        .unwrap_err();
    assert!(e.message.contains("'Date'"), "{}", e.message);
}

#[test]
fn absurd_dates_are_refused_without_panicking() {
    for date in [
        "Sun, 30 Aug 9223372036854775807 12:36:00 GMT",
        "Sun, 30 Aug -9223372036854775807 12:36:00 GMT",
        "Sun, 30 Aug 99999999999999 12:36:00 GMT",
        "Sun, 30 Aug 292277026596 12:36:00 GMT",
        "Sun, 30 Aug 1 12:36:00 GMT",
    ] {
        let mut p = parts("POST", "/", &[("host", "localhost")]);
        p.headers.insert("date", date.parse().unwrap());
        p.headers.insert(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={AKID}/20150830/us-east-1/kinesis/aws4_request, SignedHeaders=date;host, Signature=00"
            )
            .parse()
            .unwrap(),
        );
        let e = keys()
            .verify(&p, b"{}", "us-east-1", suite_time())
            .unwrap_err();
        assert!(
            matches!(
                e.code,
                ErrorCode::IncompleteSignature | ErrorCode::InvalidSignature
            ),
            "{date}: {e:?}"
        );
    }
    // A skew window so wide that now + window overflows.
    let p = create_stream_request(&[]);
    let wide = keys().with_max_skew(Duration::from_secs(u64::MAX));
    wide.verify(&p, CREATE_STREAM_BODY, "us-east-1", suite_time())
        .unwrap();
}

proptest! {
    // Any Date header: an answer, never a panic.
    #[test]
    fn arbitrary_http_dates_never_panic(
        day in 1i64..=31, year in any::<i64>(), h in 0i64..24, m in 0i64..60, s in 0i64..61
    ) {
        let _ = parse_http_date(&format!("Sun, {day:02} Aug {year} {h:02}:{m:02}:{s:02} GMT"));
    }
}
