//! The Maven project in `interop/java/` (drivers around AWS's Java SDK v2, KCL
//! and KPL), built once under the Cargo target dir and run as a child process.
//! A file lock keeps parallel tests from building it twice; Maven's own
//! repository (~/.m2) keeps the downloads for later runs.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Whether `KINESIS_TEST_SKIP` (comma-separated) names `java`.
pub fn skipped() -> bool {
    std::env::var("KINESIS_TEST_SKIP")
        .is_ok_and(|v| v.split(',').any(|s| s.trim().eq_ignore_ascii_case("java")))
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The built drivers, or `None` when `KINESIS_TEST_SKIP=java` is set. Panics,
/// naming what to install, when `java` (17+) or `mvn` is missing.
pub fn drivers() -> Option<&'static Drivers> {
    if skipped() {
        eprintln!("KINESIS_TEST_SKIP names java: this Java interop test does nothing");
        return None;
    }
    static BUILT: OnceLock<Drivers> = OnceLock::new();
    Some(BUILT.get_or_init(build))
}

/// Where the Maven project's sources are.
fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/java")
}

/// A fingerprint of the project's sources: paths, sizes and modification times.
fn fingerprint(dir: &Path, out: &mut String) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read interop/java")
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        let name = e.file_name();
        if name == "target" {
            continue;
        }
        let meta = e.metadata().expect("stat interop/java");
        if meta.is_dir() {
            fingerprint(&path, out);
        } else {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            out.push_str(&format!("{} {} {}\n", path.display(), meta.len(), modified));
        }
    }
}

fn build() -> Drivers {
    assert!(
        runs("java", "-version"),
        "the Java interop tests need a Java 17+ JDK on PATH (Debian: `apt-get install \
         openjdk-17-jdk-headless`); set KINESIS_TEST_SKIP=java to skip them"
    );
    assert!(
        runs("mvn", "-v"),
        "the Java interop tests need Apache Maven on PATH (Debian: `apt-get install maven`); \
         set KINESIS_TEST_SKIP=java to skip them"
    );
    // CARGO_TARGET_TMPDIR is `<target>/tmp` for integration tests.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.parent().unwrap_or(tmp).join("java-interop");
    std::fs::create_dir_all(&out).expect("create the Java build folder");
    let lock = File::create(out.with_extension("lock")).expect("create the Java build lock");
    lock.lock().expect("lock the Java build");
    let mut stamp = String::new();
    fingerprint(&project_dir(), &mut stamp);
    let stamp_file = out.join("sources.stamp");
    let fresh = std::fs::read_to_string(&stamp_file).is_ok_and(|s| s == stamp)
        && out.join("classes").is_dir()
        && out.join("lib").is_dir()
        && out.join("kpl-lib").is_dir();
    if !fresh {
        // The first build downloads the SDK, KCL and KPL from Maven Central (~170 MB).
        let _ = std::fs::remove_dir_all(out.join("lib"));
        let output = Command::new("mvn")
            .args(["-B", "-q", "package"])
            .arg(format!("-DbuildDirectory={}", out.display()))
            .current_dir(project_dir())
            .stdin(Stdio::null())
            .output()
            .expect("run mvn");
        assert!(
            output.status.success(),
            "mvn package in interop/java failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&stamp_file, stamp).expect("write the Java build stamp");
    }
    let _ = lock.unlock();
    Drivers { dir: out }
}

/// The built Maven project.
pub struct Drivers {
    dir: PathBuf,
}

impl Drivers {
    /// `java ... interop.Main <driver> <args>`, stdio unset. Short-run JVM
    /// settings: C1 only and the serial collector start fastest on two cores.
    pub fn command(&self, driver: &str, args: &[String]) -> Command {
        // The KPL's protobuf 3 classes need the protobuf 3 runtime ahead of the KCL's.
        let kpl_first = if driver == "kpl" {
            format!("{}:", self.dir.join("kpl-lib").join("*").display())
        } else {
            String::new()
        };
        let classpath = format!(
            "{}:{kpl_first}{}",
            self.dir.join("classes").display(),
            self.dir.join("lib").join("*").display()
        );
        let mut cmd = Command::new("java");
        cmd.args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss512k"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-Daws.region=us-east-1")
            .arg(format!(
                "-Dkpl.log={}",
                std::env::var("KPL_LOG").unwrap_or("warning".into())
            ))
            // Extra JVM options for a closer look, e.g. a logger at debug level.
            .args(
                std::env::var("JAVA_INTEROP_OPTS")
                    .unwrap_or_default()
                    .split_whitespace(),
            )
            .args(["-cp", &classpath, "interop.Main", driver])
            .args(args)
            // Nothing from the machine's own AWS set-up may reach a driver.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_ENDPOINT_URL_KINESIS")
            .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials",
            );
        cmd
    }
}
