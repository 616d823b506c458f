//! Third-party peers (Python and npm packages) installed on first use into
//! `target/peers/`, so a plain `cargo test` works on a fresh machine that can
//! reach PyPI and npm. A file lock keeps parallel tests from installing twice.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/peers`.
fn peers_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp` for integration tests.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("peers")
}

/// Hold an exclusive lock on `<dir>.lock` while `f` runs.
fn locked<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
    std::fs::create_dir_all(dir).expect("create the peers folder");
    let lock = File::create(dir.with_extension("lock")).expect("create the peers lock file");
    lock.lock().expect("lock the peers folder");
    let out = f();
    let _ = lock.unlock();
    out
}

fn python_can_import(path: &Path, module: &str) -> bool {
    Command::new("python3")
        .arg("-c")
        .arg(format!("import {module}"))
        .env("PYTHONPATH", path)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A folder to put on `PYTHONPATH` in which every package of `packages` (PyPI
/// names; the module is the name with `-` as `_`) can be imported. Packages
/// already importable from the system Python are not installed again.
pub fn python_path_with(packages: &[&str]) -> PathBuf {
    let dir = peers_dir().join("python");
    locked(&dir, || {
        let missing: Vec<&str> = packages
            .iter()
            .copied()
            .filter(|p| !python_can_import(&dir, &p.replace('-', "_")))
            .collect();
        if !missing.is_empty() {
            let status = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--target"])
                .arg(&dir)
                .args(&missing)
                .status()
                .expect("run pip");
            assert!(status.success(), "pip install {missing:?} failed");
        }
    });
    dir
}

/// The AWS CLI: `aws` on PATH, else `python3 -m awscli` with awscli installed
/// (once) under the peers folder, so a machine without the CLI still runs the tests.
pub fn aws_cli() -> Command {
    let on_path = Command::new("aws")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return Command::new("aws");
    }
    let python_path = python_path_with(&["awscli"]);
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "awscli"]).env("PYTHONPATH", python_path);
    cmd
}

/// The installed folder of npm package `name` (`.../node_modules/<name>`).
pub fn npm_package(name: &str) -> PathBuf {
    let prefix = peers_dir().join("node");
    let installed = prefix.join("node_modules").join(name);
    locked(&prefix, || {
        if !installed.join("package.json").exists() {
            let status = Command::new("npm")
                .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg(name)
                .status()
                .expect("run npm");
            assert!(status.success(), "npm install {name} failed");
        }
    });
    installed
}

/// dynalite, a DynamoDB implementation from npm (installed under target/peers), on an
/// ephemeral loopback port; killed when dropped.
pub struct Dynalite {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Dynalite {
    /// Install (once) and start it with no table-state delays.
    pub fn start() -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let package = npm_package("dynalite");
        let script = "require(process.argv[1])({createTableMs:0,deleteTableMs:0,updateTableMs:0})\
            .listen(0,'127.0.0.1',function(){console.log('PORT '+this.address().port)})";
        let mut child = Command::new("node")
            .args(["-e", script])
            .arg(&package)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start dynalite with node");
        let stdout = child.stdout.take().expect("dynalite stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("dynalite port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("dynalite printed {line:?} instead of its port"))
            .to_string();
        Dynalite {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Freeze the process (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} dynalite");
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
