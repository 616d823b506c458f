use super::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::net::TcpListener;

const T0: u64 = 1_700_000_000;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn env(pairs: &[(&str, &str)]) -> Env {
    Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// JSON credentials as container and instance metadata send them.
fn metadata_json(id: &str, expiration: &str) -> String {
    format!(
        r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"{id}","SecretAccessKey":"secret-{id}","Token":"token-{id}","Expiration":"{expiration}"}}"#
    )
}

// ------------------------------------------------------------ a local server

#[derive(Debug, Clone)]
struct Hit {
    method: ::http::Method,
    path: String,
    headers: ::http::HeaderMap,
    body: Bytes,
}

type Route = dyn Fn(&Hit) -> (u16, String) + Send + Sync;

struct LocalServer {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl LocalServer {
    async fn start(route: impl Fn(&Hit) -> (u16, String) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let route: Arc<Route> = Arc::new(route);
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (h, route) = (h.clone(), route.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: ::http::Request<Incoming>| {
                        let (h, route) = (h.clone(), route.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let hit = Hit {
                                method: parts.method,
                                path: parts.uri.path().to_string(),
                                headers: parts.headers,
                                body,
                            };
                            let (status, text) = route(&hit);
                            h.lock().unwrap().push(hit);
                            let mut resp = ::http::Response::new(Full::new(Bytes::from(text)));
                            *resp.status_mut() = ::http::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        LocalServer { addr, hits }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// A 127.0.0.1 port with nothing listening.
async fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

// ------------------------------------------------------------ environment

#[tokio::test]
async fn environment_provider() {
    let p = EnvironmentProvider::with_env(env(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "s3cret"),
        ("AWS_SESSION_TOKEN", "tok"),
    ]));
    let c = p.credentials().await.unwrap();
    assert_eq!(
        c,
        Credentials::new("AKIAENV", "s3cret").with_session_token("tok")
    );

    let c = EnvironmentProvider::with_env(env(&[
        ("AWS_ACCESS_KEY_ID", "AKIAENV"),
        ("AWS_SECRET_ACCESS_KEY", "s3cret"),
        ("AWS_SESSION_TOKEN", ""),
    ]))
    .credentials()
    .await
    .unwrap();
    assert_eq!(c.session_token, None, "empty means unset");

    let none = EnvironmentProvider::with_env(env(&[])).credentials().await;
    assert!(
        matches!(none, Err(ClientError::NoCredentials(_))),
        "{none:?}"
    );
    let half = EnvironmentProvider::with_env(env(&[("AWS_ACCESS_KEY_ID", "AKIAENV")]))
        .credentials()
        .await;
    assert!(matches!(half, Err(ClientError::Credentials(_))), "{half:?}");
}

// ------------------------------------------------------------ profiles

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(credentials: Option<&str>, config: Option<&str>) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".aws")).unwrap();
        if let Some(text) = credentials {
            std::fs::write(dir.path().join(".aws/credentials"), text).unwrap();
        }
        if let Some(text) = config {
            std::fs::write(dir.path().join(".aws/config"), text).unwrap();
        }
        Home { dir }
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn provider(&self, extra: &[(&str, &str)]) -> ProfileProvider {
        let mut pairs = vec![("HOME".to_string(), self.path())];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        ProfileProvider::with_env(Env::from_pairs(pairs))
    }
}

const CREDENTIALS_FILE: &str = "\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = secret-default

[ci]
aws_access_key_id = AKIACI
aws_secret_access_key = secret-ci
aws_session_token = token-ci

[both]
aws_access_key_id = AKIA-FROM-CREDENTIALS
";

const CONFIG_FILE: &str = "\
[default]
region = us-east-1

[profile dev]
aws_access_key_id = AKIADEV
aws_secret_access_key = secret-dev

[profile both]
aws_access_key_id = AKIA-FROM-CONFIG
aws_secret_access_key = secret-both

[profile half]
aws_access_key_id = AKIAHALF

[profile sso]
sso_session = corp
sso_account_id = 123456789012

[profile assume]
role_arn = arn:aws:iam::123456789012:role/r
source_profile = default
";

#[tokio::test]
async fn profile_from_home_files() {
    let home = Home::new(Some(CREDENTIALS_FILE), Some(CONFIG_FILE));
    let c = home.provider(&[]).credentials().await.unwrap();
    assert_eq!(c, Credentials::new("AKIADEFAULT", "secret-default"));

    let c = home
        .provider(&[("AWS_PROFILE", "ci")])
        .credentials()
        .await
        .unwrap();
    assert_eq!(
        c,
        Credentials::new("AKIACI", "secret-ci").with_session_token("token-ci")
    );

    // `[profile dev]` in the config file.
    let c = home
        .provider(&[])
        .profile("dev")
        .credentials()
        .await
        .unwrap();
    assert_eq!(c.access_key_id, "AKIADEV");

    // The credentials file wins over the config file, property by property.
    let c = home
        .provider(&[])
        .profile("both")
        .credentials()
        .await
        .unwrap();
    assert_eq!(c, Credentials::new("AKIA-FROM-CREDENTIALS", "secret-both"));
}

#[tokio::test]
async fn profile_errors_say_what_is_wrong() {
    let home = Home::new(Some(CREDENTIALS_FILE), Some(CONFIG_FILE));
    let err = |p: ProfileProvider| async move { p.credentials().await.unwrap_err() };

    // A profile asked for by name must exist.
    let e = err(home.provider(&[("AWS_PROFILE", "nope")])).await;
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("`nope`")),
        "{e}"
    );
    let e = err(home.provider(&[]).profile("half")).await;
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("aws_secret_access_key")),
        "{e}"
    );
    let e = err(home.provider(&[]).profile("sso")).await;
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("sso")),
        "{e}"
    );
    let e = err(home.provider(&[]).profile("assume")).await;
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("not supported")),
        "{e}"
    );

    // No files at all, implicit default: nothing configured (the chain goes on).
    let empty = Home::new(None, None);
    let e = err(empty.provider(&[])).await;
    assert!(
        matches!(&e, ClientError::NoCredentials(m) if m.contains("neither")),
        "{e}"
    );
    // A file without the default profile: also nothing configured.
    let other = Home::new(
        Some("[other]\naws_access_key_id=a\naws_secret_access_key=b\n"),
        None,
    );
    let e = err(other.provider(&[])).await;
    assert!(matches!(e, ClientError::NoCredentials(_)), "{e}");
    // A malformed file is an error with its line.
    let bad = Home::new(Some("aws_access_key_id = orphan\n"), None);
    let e = err(bad.provider(&[])).await;
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("line 1")),
        "{e}"
    );
}

#[tokio::test]
async fn profile_file_locations_from_env() {
    let home = Home::new(None, None);
    let dir = home.dir.path();
    std::fs::write(
        dir.join("creds.ini"),
        "[x]\naws_access_key_id=AKIAX\naws_secret_access_key=sx\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.ini"),
        "[profile y]\naws_access_key_id=AKIAY\naws_secret_access_key=sy\n",
    )
    .unwrap();
    let c = home
        .provider(&[
            ("AWS_SHARED_CREDENTIALS_FILE", "~/creds.ini"),
            ("AWS_PROFILE", "x"),
        ])
        .credentials()
        .await
        .unwrap();
    assert_eq!(c.access_key_id, "AKIAX");
    let conf = dir.join("conf.ini").display().to_string();
    let c = home
        .provider(&[("AWS_CONFIG_FILE", conf.as_str()), ("AWS_PROFILE", "y")])
        .credentials()
        .await
        .unwrap();
    assert_eq!(c.access_key_id, "AKIAY");
}

#[cfg(unix)]
#[tokio::test]
async fn profile_credential_process() {
    let config = "[default]\ncredential_process = printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"AKIAPROC\", \"SecretAccessKey\": \"sp\", \"SessionToken\": \"tp\", \"Expiration\": \"2030-01-01T00:00:00Z\"}'\n\
                  [profile failing]\ncredential_process = sh -c 'echo nope >&2; exit 3'\n";
    let home = Home::new(None, Some(config));
    let c = home.provider(&[]).credentials().await.unwrap();
    assert_eq!(c.access_key_id, "AKIAPROC");
    assert_eq!(c.session_token.as_deref(), Some("tp"));
    assert_eq!(c.expires_at, parse_rfc3339("2030-01-01T00:00:00Z"));
    let e = home
        .provider(&[])
        .profile("failing")
        .credentials()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("nope")),
        "{e}"
    );
}

// ------------------------------------------------------------ container

#[tokio::test]
async fn container_provider_with_token() {
    let server = LocalServer::start(|hit| {
        match hit
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            Some("Bearer secret-token") if hit.path == "/creds" => {
                (200, metadata_json("ASIACONTAINER", "2030-01-01T00:00:00Z"))
            }
            _ => (401, "{\"message\":\"unauthorized\"}".into()),
        }
    })
    .await;
    let url = format!("{}/creds", server.url());
    let p = ContainerProvider::with_env(env(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer secret-token"),
    ]));
    let c = p.credentials().await.unwrap();
    assert_eq!(c.access_key_id, "ASIACONTAINER");
    assert_eq!(c.secret_access_key, "secret-ASIACONTAINER");
    assert_eq!(c.session_token.as_deref(), Some("token-ASIACONTAINER"));
    assert_eq!(c.expires_at, Some(at(1_893_456_000)));
    assert_eq!(server.hits()[0].method, ::http::Method::GET);

    // The token file wins over the token variable.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "Bearer secret-token\n").unwrap();
    let file = file.display().to_string();
    let p = ContainerProvider::with_env(env(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.as_str()),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer wrong"),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file.as_str()),
    ]));
    assert!(p.credentials().await.is_ok());

    // Refused: an error naming the status, not "no credentials".
    let p =
        ContainerProvider::with_env(env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.as_str())]));
    let e = p.credentials().await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("401")),
        "{e}"
    );
}

#[tokio::test]
async fn container_provider_bad_answers() {
    let server = LocalServer::start(|hit| match hit.path.as_str() {
        "/garbage" => (200, "not json".into()),
        "/nokeys" => (200, "{\"Token\":\"t\"}".into()),
        _ => (200, metadata_json("A", "yesterday")),
    })
    .await;
    for path in ["/garbage", "/nokeys", "/badtime"] {
        let url = format!("{}{path}", server.url());
        let e = ContainerProvider::with_env(env(&[(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            url.as_str(),
        )]))
        .credentials()
        .await
        .unwrap_err();
        assert!(matches!(e, ClientError::Credentials(_)), "{path}: {e}");
    }
    let none = ContainerProvider::with_env(env(&[])).credentials().await;
    assert!(matches!(none, Err(ClientError::NoCredentials(_))));
}

// ------------------------------------------------------------ IMDSv2

#[tokio::test]
async fn instance_metadata_v2_flow() {
    let server = LocalServer::start(|hit| {
        let token_ok = hit
            .headers
            .get("x-aws-ec2-metadata-token")
            .is_some_and(|v| v == "imds-token");
        match (hit.method.as_str(), hit.path.as_str()) {
            ("PUT", "/latest/api/token")
                if hit
                    .headers
                    .contains_key("x-aws-ec2-metadata-token-ttl-seconds") =>
            {
                (200, "imds-token".into())
            }
            (_, _) if !token_ok => (401, String::new()),
            ("GET", "/latest/meta-data/iam/security-credentials/") => (200, "my-role\n".into()),
            ("GET", "/latest/meta-data/iam/security-credentials/my-role") => {
                (200, metadata_json("ASIAIMDS", "2030-01-01T00:00:00Z"))
            }
            _ => (404, String::new()),
        }
    })
    .await;
    let url = server.url();
    let c = InstanceMetadataProvider::with_env(env(&[(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        url.as_str(),
    )]))
    .credentials()
    .await
    .unwrap();
    assert_eq!(c.access_key_id, "ASIAIMDS");
    assert_eq!(c.session_token.as_deref(), Some("token-ASIAIMDS"));
    let paths: Vec<_> = server.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/latest/api/token",
            "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/iam/security-credentials/my-role"
        ]
    );

    let disabled = InstanceMetadataProvider::with_env(env(&[
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", url.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]))
    .credentials()
    .await;
    assert!(matches!(disabled, Err(ClientError::NoCredentials(_))));
    assert_eq!(server.hits().len(), 3, "disabled: nothing asked");

    // Off EC2 nothing listens: no credentials, not an error.
    let closed = closed_port().await;
    let e = InstanceMetadataProvider::with_env(env(&[(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        closed.as_str(),
    )]))
    .credentials()
    .await
    .unwrap_err();
    assert!(matches!(e, ClientError::NoCredentials(_)), "{e}");
}

#[tokio::test]
async fn instance_without_role() {
    let server = LocalServer::start(|hit| match hit.method.as_str() {
        "PUT" => (200, "t".into()),
        _ => (404, String::new()),
    })
    .await;
    let url = server.url();
    let e = InstanceMetadataProvider::with_env(env(&[(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        url.as_str(),
    )]))
    .credentials()
    .await
    .unwrap_err();
    assert!(
        matches!(&e, ClientError::NoCredentials(m) if m.contains("no IAM role")),
        "{e}"
    );
}

// ------------------------------------------------------------ web identity

const STS_ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>sts-token</SessionToken>
      <SecretAccessKey>sts-secret</SecretAccessKey>
      <Expiration>2030-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIASTS</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

async fn sts_server() -> LocalServer {
    LocalServer::start(|hit| {
        let body = String::from_utf8_lossy(&hit.body);
        if hit.method == ::http::Method::POST
            && body.contains("Action=AssumeRoleWithWebIdentity")
            && body.contains("WebIdentityToken=oidc-token")
        {
            (200, STS_ANSWER.into())
        } else {
            (
                400,
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>\
                 <Message>Couldn&apos;t validate</Message></Error></ErrorResponse>"
                    .into(),
            )
        }
    })
    .await
}

#[tokio::test]
async fn web_identity_against_local_sts() {
    let sts = sts_server().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "oidc-token\n").unwrap();
    let token = token.display().to_string();
    let url = sts.url();
    let p = WebIdentityProvider::with_env(env(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/reader"),
        ("AWS_ROLE_SESSION_NAME", "sess"),
        ("AWS_ENDPOINT_URL_STS", url.as_str()),
    ]));
    let c = p.credentials().await.unwrap();
    assert_eq!(
        c,
        Credentials::new("ASIASTS", "sts-secret")
            .with_session_token("sts-token")
            .with_expiry(at(1_893_456_000))
    );
    let hit = &sts.hits()[0];
    assert_eq!(hit.path, "/");
    assert!(
        hit.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let body = String::from_utf8_lossy(&hit.body);
    assert!(
        body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Freader"),
        "{body}"
    );
    assert!(body.contains("RoleSessionName=sess"), "{body}");
    assert!(
        !hit.headers.contains_key("authorization"),
        "the call is unsigned"
    );

    // STS refuses: the error carries its code and message.
    std::fs::write(&token, "bad").unwrap();
    let e = p.credentials().await.unwrap_err();
    assert!(
        matches!(&e, ClientError::Credentials(m) if m.contains("InvalidIdentityToken") && m.contains("Couldn't validate")),
        "{e}"
    );
    // A token file without a role is a configuration error.
    let e = WebIdentityProvider::with_env(env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", token.as_str())]))
        .credentials()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Credentials(_)), "{e}");
}

#[tokio::test]
async fn web_identity_from_a_profile() {
    let sts = sts_server().await;
    let home = Home::new(None, None);
    std::fs::write(home.dir.path().join("token"), "oidc-token").unwrap();
    std::fs::write(
        home.dir.path().join(".aws/config"),
        "[default]\nrole_arn = arn:aws:iam::123456789012:role/r\nweb_identity_token_file = ~/token\n",
    )
    .unwrap();
    let url = sts.url();
    let c = home
        .provider(&[("AWS_ENDPOINT_URL_STS", url.as_str())])
        .credentials()
        .await
        .unwrap();
    assert_eq!(c.access_key_id, "ASIASTS");
}

// ------------------------------------------------------------ the chain

#[tokio::test]
async fn default_chain_order() {
    let container =
        LocalServer::start(|_| (200, metadata_json("ASIACONTAINER", "2030-01-01T00:00:00Z"))).await;
    let imds_url = closed_port().await;
    let container_url = format!("{}/c", container.url());
    let with_profile = Home::new(Some(CREDENTIALS_FILE), None);
    let no_profile = Home::new(None, None);
    // Every provider configured, pointing at local servers or nowhere.
    let chain = |home: &Home, extra: &[(&str, &str)]| {
        let mut pairs = vec![
            ("HOME".to_string(), home.path()),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string(),
                container_url.clone(),
            ),
            (
                "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_string(),
                imds_url.clone(),
            ),
        ];
        pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let chain = DefaultChain::builder().env(Env::from_pairs(pairs)).build();
        async move { chain.credentials().await }
    };
    // 1. The environment beats everything.
    let c = chain(
        &with_profile,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(c.access_key_id, "AKIAENV");
    // 2. Then the profile.
    let c = chain(&with_profile, &[]).await.unwrap();
    assert_eq!(c.access_key_id, "AKIADEFAULT");
    assert!(container.hits().is_empty(), "later providers are not asked");
    // 3. Then (no web identity configured) the container.
    let c = chain(&no_profile, &[]).await.unwrap();
    assert_eq!(c.access_key_id, "ASIACONTAINER");
    assert_eq!(container.hits().len(), 1);
    // A configured provider that fails stops the chain (no silent fallback).
    let e = chain(&with_profile, &[("AWS_PROFILE", "missing")])
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Credentials(_)), "{e}");
}

#[tokio::test]
async fn default_chain_finds_nothing_and_says_what_it_tried() {
    let home = Home::new(None, None);
    let imds = closed_port().await;
    let chain = DefaultChain::builder()
        .env(env(&[
            ("HOME", home.path().as_str()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.as_str()),
        ]))
        .build();
    let e = chain.credentials().await.unwrap_err();
    let ClientError::NoCredentials(m) = &e else {
        panic!("{e:?}")
    };
    for what in [
        "AWS_ACCESS_KEY_ID",
        "profile",
        "web identity",
        "container",
        "instance metadata",
    ] {
        assert!(m.contains(what), "{what} missing from: {m}");
    }
}

// ------------------------------------------------------------ the cache

#[test]
fn refresh_times() {
    let long_term = Credentials::new("a", "b");
    assert_eq!(
        refresh_at(&long_term, at(T0), DEFAULT_REFRESH_BEFORE, DEFAULT_TTL),
        at(T0 + 900)
    );
    let temp = Credentials::new("a", "b").with_expiry(at(T0 + 3600));
    assert_eq!(
        refresh_at(&temp, at(T0), DEFAULT_REFRESH_BEFORE, DEFAULT_TTL),
        at(T0 + 3300)
    );
    // Already inside the window when fetched: not reloaded on every call.
    let late = Credentials::new("a", "b").with_expiry(at(T0 + 60));
    assert_eq!(
        refresh_at(&late, at(T0), DEFAULT_REFRESH_BEFORE, DEFAULT_TTL),
        at(T0 + 10)
    );
    let dying = Credentials::new("a", "b").with_expiry(at(T0 + 3));
    assert_eq!(
        refresh_at(&dying, at(T0), DEFAULT_REFRESH_BEFORE, DEFAULT_TTL),
        at(T0 + 3)
    );
    let cached = Cached {
        credentials: temp,
        refresh_at: at(T0 + 3300),
    };
    assert_eq!(freshness(&cached, at(T0 + 3299)), Freshness::Fresh);
    assert_eq!(freshness(&cached, at(T0 + 3300)), Freshness::Stale);
    assert_eq!(freshness(&cached, at(T0 + 3600)), Freshness::Expired);
}

#[test]
fn rfc3339_times() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(at(T0)));
    assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123Z"), Some(at(T0)));
    assert_eq!(parse_rfc3339("2023-11-15T00:13:20+02:00"), Some(at(T0)));
    for bad in [
        "",
        "2023-11-14",
        "2023-13-14T22:13:20Z",
        "2023-11-14T22:13:20",
        "x023-11-14T22:13:20Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
}

/// A provider that counts loads and answers from a script.
#[derive(Debug)]
struct Scripted {
    calls: AtomicUsize,
    answers: Mutex<Vec<Result<Credentials, ClientError>>>,
}

impl Scripted {
    fn new(answers: Vec<Result<Credentials, ClientError>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            calls: AtomicUsize::new(0),
            answers: Mutex::new(answers),
        })
    }
}

impl CredentialsProvider for Scripted {
    fn credentials(&self) -> CredentialsFuture<'_> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.answers.lock().unwrap().remove(0);
        Box::pin(async move { next })
    }
}

static CLOCK: AtomicU64 = AtomicU64::new(T0);

fn test_clock() -> SystemTime {
    at(CLOCK.load(Ordering::SeqCst))
}

#[tokio::test]
async fn cache_refreshes_before_expiry() {
    let first = Credentials::new("A1", "s").with_expiry(at(T0 + 3600));
    let second = Credentials::new("A2", "s").with_expiry(at(T0 + 7200));
    let p = Scripted::new(vec![
        Ok(first.clone()),
        Err(ClientError::Credentials("metadata hiccup".into())),
        Ok(second.clone()),
        Err(ClientError::Credentials("down".into())),
    ]);
    CLOCK.store(T0, Ordering::SeqCst);
    let cache = CachedProvider::from_arc(p.clone()).with_clock(test_clock);
    assert_eq!(cache.current(), None);
    assert_eq!(cache.credentials().await.unwrap(), first);
    CLOCK.store(T0 + 1800, Ordering::SeqCst);
    assert_eq!(cache.credentials().await.unwrap(), first);
    assert_eq!(
        p.calls.load(Ordering::SeqCst),
        1,
        "fresh: served from the cache"
    );
    // Inside the 5-minute window: reload; a failed reload keeps the old ones.
    CLOCK.store(T0 + 3400, Ordering::SeqCst);
    assert_eq!(cache.credentials().await.unwrap(), first);
    assert_eq!(p.calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.credentials().await.unwrap(), second);
    assert_eq!(p.calls.load(Ordering::SeqCst), 3);
    assert_eq!(cache.current(), Some(second));
    // Past expiry a failed reload is an error: expired keys are never used.
    CLOCK.store(T0 + 7200, Ordering::SeqCst);
    let e = cache.credentials().await.unwrap_err();
    assert!(matches!(e, ClientError::Credentials(_)));
}

#[tokio::test]
async fn concurrent_callers_share_one_load() {
    let p = Scripted::new(vec![Ok(Credentials::new("A", "s"))]);
    let cache = Arc::new(CachedProvider::from_arc(p.clone()));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.credentials().await.unwrap() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().access_key_id, "A");
    }
    assert_eq!(p.calls.load(Ordering::SeqCst), 1);
}
