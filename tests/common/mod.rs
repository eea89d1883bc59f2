//! Helpers shared by the process-level tests: our example binaries and the
//! real interop peers (Go programs built from Debian's go-plugin 1.0.1,
//! Python programs in the peers' virtualenv).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How to install the peers, for failure messages.
pub const INSTALL_HINT: &str = "run .ci/install-peers (Debian: openssl golang-go \
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

/// The path of one of our examples, built (once per test binary) so that
/// it is never stale, even when only one test target was asked for.
pub fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|n| n == name) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "--example", name]);
        if target_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.current_dir(crate_dir()).status().unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_owned());
    }
    target_dir().join("examples").join(name)
}

/// The Go peers, built once per test binary in GOPATH mode, offline.
pub struct GoPeers {
    pub kvhost: PathBuf,
    pub kvplugin: PathBuf,
    /// The GRPCBroker ("bidirectional") counter example's host and plugin.
    pub counterhost: PathBuf,
    pub counterplugin: PathBuf,
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
    // Each proto's stubs go to the Go package directory its programs import.
    for (proto, package) in [("kv.proto", "kvproto"), ("counter.proto", "counterproto")] {
        let stubs = gopath.join("src").join(package);
        std::fs::create_dir_all(&stubs).unwrap();
        run(
            Command::new("protoc")
                .arg("-I")
                .arg(crate_dir().join("proto/examples"))
                .arg(format!("--go_out=plugins=grpc:{}", stubs.display()))
                .arg(crate_dir().join("proto/examples").join(proto)),
            &format!("protoc --go_out (Go stubs for {proto})"),
        );
    }
    let bin = gopath.join("bin");
    for program in ["kvhost", "kvplugin", "counterhost", "counterplugin"] {
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
        counterhost: bin.join("counterhost"),
        counterplugin: bin.join("counterplugin"),
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

/// A plugin process started the way a go-plugin host starts it, with its
/// handshake line read. A minimal stand-in for the host side in tests of the
/// plugin side.
pub struct Launched {
    pub child: std::process::Child,
    pub line: rpcplugin::HandshakeLine,
    pub raw_line: String,
    /// stdout after the handshake line, drained in the background.
    pub stdout_rest: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

/// Spawns `program` with the basic example's cookie and `env`, and reads
/// its first stdout line (within 10 s).
pub fn launch(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Launched {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("BASIC_PLUGIN", "hello")
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let rest = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rest2 = rest.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            rest2.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let raw_line = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the plugin printed its handshake line within 10 s");
    let line = rpcplugin::HandshakeLine::parse(&raw_line)
        .unwrap_or_else(|e| panic!("bad handshake line {raw_line:?}: {e}"));
    Launched {
        child,
        line,
        raw_line,
        stdout_rest: rest,
    }
}

impl Launched {
    /// A plaintext tonic channel to the plugin, through our transports.
    pub async fn channel(&self) -> tonic::transport::Channel {
        channel_to(self.line.endpoint().clone()).await
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        None
    }

    /// The plugin's stderr, once it has exited.
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for Launched {
    /// Ends the plugin as a host would, so that tests leave no socket
    /// behind: SIGTERM (a graceful stop that removes the socket), then
    /// SIGKILL after 2 s, then the socket removed if it is stale.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            if self.wait_exit(std::time::Duration::from_secs(2)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if let Some(path) = self.line.endpoint().unix_path() {
            let refused = std::os::unix::net::UnixStream::connect(path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
            if refused {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// The Python of the peers' virtualenv (`.venv-peers`, made by
/// `.ci/install-peers`), or `RPCPLUGIN_PEERS_PYTHON`.
pub fn peers_python() -> PathBuf {
    let python = std::env::var_os("RPCPLUGIN_PEERS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join(".venv-peers/bin/python"));
    assert!(python.exists(), "no {}; {INSTALL_HINT}", python.display());
    python
}

/// A plaintext tonic channel whose connections come from our transport
/// layer (`rpcplugin::connect`), for any endpoint.
pub async fn channel_to(endpoint: rpcplugin::Endpoint) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_static("http://plugin")
        .connect_with_connector(tower::service_fn(move |_| {
            let endpoint = endpoint.clone();
            async move {
                let conn = rpcplugin::connect(&endpoint, std::time::Duration::from_secs(5)).await?;
                Ok::<_, rpcplugin::TransportError>(hyper_util::rt::TokioIo::new(conn))
            }
        }))
        .await
        .unwrap()
}

/// Starts `kv_plugin --debug` as a person would (no cookie) and reads the
/// reattach configuration it prints.
pub fn launch_debug() -> (std::process::Child, rpcplugin::ReattachConfig) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(example("kv_plugin"))
        .arg("--debug")
        .env_remove("BASIC_PLUGIN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let json = loop {
        let line = lines.next().expect("a reattach line").unwrap();
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            break rest.trim_end_matches('\'').to_owned();
        }
    };
    let mut providers = rpcplugin::ReattachProviders::from_json(&json).unwrap();
    (
        child,
        providers.0.remove("kv").expect("a provider named kv"),
    )
}

/// Whether a process still exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Waits up to `limit` for a process to be gone.
pub fn wait_gone(pid: u32, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if !alive(pid) {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
