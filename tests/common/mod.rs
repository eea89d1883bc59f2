//! Helpers shared by the process-level tests: our example binaries and the
//! real interop peers (Go programs built from Debian's go-plugin 1.0.1,
//! Python programs in the peers' virtualenv).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How to install the peers, for failure messages.
pub const INSTALL_HINT: &str = "run .ci/install-peers (Debian: golang-go \
    golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev protobuf-compiler \
    golang-goprotobuf-dev; PyPI: pyvider-rpcplugin==0.5.5 id-echo in .venv-peers)";

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    // tests run from target/<profile>/deps/<test-binary>
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// The path of one of our examples, built (once) if it is not there yet.
pub fn example(name: &str) -> PathBuf {
    let path = target_dir().join("examples").join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(crate_dir())
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
    }
    path
}

/// The Go peers, built once per test binary in GOPATH mode, offline.
pub struct GoPeers {
    pub kvhost: PathBuf,
    pub kvplugin: PathBuf,
}

pub fn go_peers() -> &'static GoPeers {
    static PEERS: OnceLock<GoPeers> = OnceLock::new();
    PEERS.get_or_init(build_go_peers)
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}; {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}\n{INSTALL_HINT}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn build_go_peers() -> GoPeers {
    let gopath = target_dir().join("interop-go");
    let _ = std::fs::remove_dir_all(&gopath);
    copy_dir(
        &crate_dir().join("tests/interop/go/src"),
        &gopath.join("src"),
    );
    let stubs = gopath.join("src/kvproto");
    std::fs::create_dir_all(&stubs).unwrap();
    run(
        Command::new("protoc")
            .arg("-I")
            .arg(crate_dir().join("proto/examples"))
            .arg(format!("--go_out=plugins=grpc:{}", stubs.display()))
            .arg(crate_dir().join("proto/examples/kv.proto")),
        "protoc --go_out (Go stubs for kv.proto)",
    );
    let bin = gopath.join("bin");
    for program in ["kvhost", "kvplugin"] {
        run(
            Command::new("go")
                .args(["build", "-o"])
                .arg(bin.join(program))
                .arg(program)
                .env("GO111MODULE", "off")
                .env("GOPROXY", "off")
                .env("GOPATH", format!("{}:/usr/share/gocode", gopath.display()))
                .env("GOCACHE", target_dir().join("go-cache")),
            &format!("go build {program}"),
        );
    }
    GoPeers {
        kvhost: bin.join("kvhost"),
        kvplugin: bin.join("kvplugin"),
    }
}

/// The output of a peer run, for assertions with context.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_pass(&self) {
        assert!(
            self.status.success() && self.stdout.contains("RESULT: PASS"),
            "peer run failed ({}):\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

pub fn run_capture(cmd: &mut Command) -> Run {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {INSTALL_HINT}"));
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
