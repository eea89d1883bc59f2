//! Our Python `GrpcClient` (python/echo_grpc_client.py, on grpcio) streams
//! samples into the `echo_server` example's gRPC transport: every sample
//! arrives and is acknowledged, a mismatched sample is refused naming the
//! leaf before anything is sent, the server's refusals reach grpcio with
//! their status, and `wait()` fails instead of hanging when the server goes
//! away.

// Unix only: signals (and its Python peers are installed on Linux).
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rpcplugin::echo::{self, Sample, SampleServer as _, Sink, SinkError};
use rpcplugin::transport::TcpTransport;

/// The spec of the "test" and "mismatch" sample kinds of echo_grpc_send.py.
const TEST_SPEC: &str = "float32[4],float32[1],float64[]";

/// Drains a pipe into a shared string, in the background.
fn drain(pipe: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
    })
}

/// The echo_server example, running; ended (SIGTERM, then SIGKILL) when
/// dropped, so that no test leaves it behind, whatever fails.
struct EchoServer {
    child: Child,
    tcp_port: u16,
    grpc_port: u16,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl EchoServer {
    fn start(spec: &str, expect: Option<u64>) -> EchoServer {
        let mut cmd = Command::new(common::example("echo_server"));
        cmd.args(["--spec", spec])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = expect {
            cmd.args(["--expect", &n.to_string()]);
        }
        let mut child = cmd.spawn().expect("echo_server starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            drain(child.stdout.take().unwrap(), stdout.clone()),
            drain(child.stderr.take().unwrap(), stderr.clone()),
        ];
        let mut server = EchoServer {
            child,
            tcp_port: 0,
            grpc_port: 0,
            stdout,
            stderr,
            readers,
        };
        let start = Instant::now();
        while server.tcp_port == 0 || server.grpc_port == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "echo_server printed no ports within 30 s: {}\nstderr:\n{}",
                server.stdout(),
                server.stderr()
            );
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("echo_server exited ({status}): {}", server.stderr());
            }
            for line in server.stdout().lines() {
                let port = |line: &str| line.rsplit(':').next().unwrap().trim().parse().unwrap();
                if line.starts_with("ECHO_TCP ") {
                    server.tcp_port = port(line);
                } else if line.starts_with("ECHO_GRPC ") {
                    server.grpc_port = port(line);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits up to `limit` for the server to exit by itself.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                for reader in self.readers.drain(..) {
                    let _ = reader.join();
                }
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asks the server to stop (SIGTERM), as a person would with Ctrl-C.
    fn terminate(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }

    /// The `RECEIVED <samples> <bytes> <seconds>` line: (samples, bytes),
    /// once the server has exited with success within `limit`.
    fn received(&mut self, limit: Duration) -> (u64, u64) {
        let status = self.wait_exit(limit).unwrap_or_else(|| {
            panic!(
                "echo_server still running after {limit:?}: {}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            )
        });
        let stdout = self.stdout();
        assert!(
            status.success(),
            "echo_server failed ({status}): {stdout}\nstderr:\n{}",
            self.stderr()
        );
        let line = stdout
            .lines()
            .find(|l| l.starts_with("RECEIVED "))
            .unwrap_or_else(|| panic!("no RECEIVED line: {stdout}"));
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(2)
            .map(|f| f.parse().unwrap())
            .collect();
        (fields[0], fields[1])
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
            if self.wait_exit(Duration::from_secs(2)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
    }
}

/// Runs echo_grpc_send.py against `server` with `args` after the ports,
/// killing it after `limit`.
fn send(server: &EchoServer, args: &[&str], limit: Duration) -> common::Run {
    send_to(server.tcp_port, server.grpc_port, args, limit)
}

/// Runs echo_grpc_send.py against the given ports with `args` after them,
/// killing it after `limit`.
fn send_to(tcp_port: u16, grpc_port: u16, args: &[&str], limit: Duration) -> common::Run {
    let script = common::crate_dir().join("tests/interop/python/echo_grpc_send.py");
    let mut child = Command::new(common::peers_python())
        .arg(script)
        .arg("127.0.0.1")
        .arg(tcp_port.to_string())
        .arg(grpc_port.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the peers' Python: {e}; {}",
                common::INSTALL_HINT
            )
        });
    let stdout = Arc::new(Mutex::new(String::new()));
    let stderr = Arc::new(Mutex::new(String::new()));
    let readers = [
        drain(child.stdout.take().unwrap(), stdout.clone()),
        drain(child.stderr.take().unwrap(), stderr.clone()),
    ];
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "echo_grpc_send.py {args:?} still running after {limit:?}: {}\nstderr:\n{}",
                stdout.lock().unwrap(),
                stderr.lock().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    for reader in readers {
        let _ = reader.join();
    }
    common::Run {
        status,
        stdout: stdout.lock().unwrap().clone(),
        stderr: stderr.lock().unwrap().clone(),
        label: String::new(),
    }
}

fn assert_sent(run: &common::Run, count: u64) {
    assert!(
        run.status.success() && run.stdout.lines().any(|l| l == format!("SENT {count}")),
        "the client failed ({}):\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

#[test]
#[ignore = "needs the Python peers (id-echo, grpcio): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn python_grpc_client_streams_5000_small_samples() {
    let mut server = EchoServer::start("float32[256]", Some(5000));
    let run = send(
        &server,
        &["5000", "small", "--transport", "grpc"],
        Duration::from_secs(120),
    );
    assert_sent(&run, 5000);
    assert!(run.stdout.contains("GRPC samples/s="), "{}", run.stdout);
    assert_eq!(
        server.received(Duration::from_secs(30)),
        (5000, 5000 * 1024)
    );
}

#[test]
#[ignore = "needs the Python peers (id-echo, grpcio): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn python_grpc_and_tcp_clients_stream_into_one_server() {
    // echo's TcpClient and ours, one after the other, into the same sink.
    let mut server = EchoServer::start(TEST_SPEC, Some(4000));
    let run = send(&server, &["2000", "test"], Duration::from_secs(120));
    assert!(
        run.status.success()
            && run.stdout.contains("GRPC samples/s=")
            && run.stdout.contains("TCP samples/s=")
            && run.stdout.matches("SENT 2000").count() == 2,
        "the clients failed ({}):\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    assert_eq!(server.received(Duration::from_secs(30)), (4000, 4000 * 28));
}

#[test]
#[ignore = "needs the Python peers (id-echo, grpcio): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn python_grpc_client_streams_large_samples() {
    // 64 KiB samples travel four to a message, 1 MiB ones alone.
    for (kind, spec, count, size) in [
        ("large", "float32[16384]", 400u64, 65536u64),
        ("huge", "float32[262144]", 40, 1 << 20),
    ] {
        let mut server = EchoServer::start(spec, Some(count));
        let run = send(
            &server,
            &[&count.to_string(), kind, "--transport", "grpc"],
            Duration::from_secs(120),
        );
        assert_sent(&run, count);
        assert_eq!(
            server.received(Duration::from_secs(30)),
            (count, count * size),
            "{kind}"
        );
    }
}

#[test]
#[ignore = "needs the Python peers (id-echo, grpcio): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn python_grpc_client_refuses_a_mismatched_sample_naming_the_leaf() {
    let mut server = EchoServer::start(TEST_SPEC, None);
    // {"obs": float32[4], "reward": float64[1], "t": float64[]}: leaf 1 differs.
    let run = send(
        &server,
        &["10", "mismatch", "--transport", "grpc"],
        Duration::from_secs(60),
    );
    assert!(
        !run.status.success(),
        "the mismatch went unnoticed: {}",
        run.stdout
    );
    let error = run
        .stdout
        .lines()
        .find(|l| l.starts_with("ERROR GRPC"))
        .unwrap_or_else(|| panic!("no error line: {}\nstderr:\n{}", run.stdout, run.stderr));
    for part in [
        "SpecMismatchError",
        "leaf 1",
        "reward",
        "server has float32[1]",
        "data_sample has float64[1]",
    ] {
        assert!(error.contains(part), "{part:?} not in {error:?}");
    }
    assert!(!run.stdout.contains("SENT"), "{}", run.stdout);
    // Nothing was sent.
    server.terminate();
    assert_eq!(server.received(Duration::from_secs(10)), (0, 0));
}

#[test]
#[ignore = "needs the Python peers (id-echo, grpcio): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn server_refusals_reach_grpcio_with_their_status() {
    let mut server = EchoServer::start(TEST_SPEC, None);
    let status = |args: &[&str]| {
        let run = send(&server, args, Duration::from_secs(60));
        assert!(
            run.status.success(),
            "{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        run.stdout
            .lines()
            .find(|l| l.starts_with("STATUS "))
            .unwrap_or_else(|| panic!("no status: {}", run.stdout))
            .to_owned()
    };
    // A client that skips the spec check: the server names the leaf.
    let line = status(&["0", "test", "--raw-spec", "float32[4],float64[1],float64[]"]);
    assert!(
        line.starts_with("STATUS FAILED_PRECONDITION") && line.contains("leaf 1"),
        "{line}"
    );
    assert!(
        line.contains("float32[1]") && line.contains("float64[1]"),
        "{line}"
    );
    let line = status(&["0", "test", "--raw-spec", "float32[4],float32[1]"]);
    assert!(
        line.starts_with("STATUS FAILED_PRECONDITION") && line.contains("leaf 2"),
        "{line}"
    );
    // A sample of the wrong size.
    let line = status(&["0", "test", "--raw-spec", TEST_SPEC, "--raw-size", "27"]);
    assert!(
        line.starts_with("STATUS INVALID_ARGUMENT") && line.contains("27 bytes"),
        "{line}"
    );
    // The right size: delivered, acknowledged, the stream ends cleanly.
    let line = status(&["0", "test", "--raw-spec", TEST_SPEC, "--raw-size", "28"]);
    assert_eq!(line, "STATUS OK ");
    server.terminate();
    assert_eq!(server.received(Duration::from_secs(10)), (1, 28));
}

#[test]
#[ignore = "needs the Python peers (id-echo, grpcio): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn python_grpc_client_wait_fails_when_the_server_goes_away() {
    // The server stops after 1000 samples; the client has a million to send.
    let mut server = EchoServer::start("float32[256]", Some(1000));
    let run = send(
        &server,
        &["1000000", "small", "--transport", "grpc", "--expect-closed"],
        Duration::from_secs(60),
    );
    let closed = run.stdout.lines().find(|l| l.starts_with("CLOSED "));
    assert!(
        run.status.success() && closed.is_some_and(|l| l.contains("UNAVAILABLE")),
        "the client did not see the stream end ({}):\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    let acked: u64 = closed
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let (received, _) = server.received(Duration::from_secs(30));
    // Every sample the client saw acknowledged reached the server's sink
    // (the example drains its sink before it reports), and a message cut
    // short by the shutdown was not acknowledged.
    assert!(received >= 1000, "received {received}");
    assert!(
        acked > 0 && acked <= received,
        "acked {acked}, received {received}"
    );
}

/// A sink that never takes a sample: the gRPC server accepts the stream and
/// acknowledges its spec, then never acknowledges a sample.
#[derive(Debug, Clone)]
struct Stuck;

impl Sink for Stuck {
    async fn push(&self, _: Sample) -> Result<(), SinkError> {
        std::future::pending().await
    }
}

#[test]
#[ignore = "needs the Python peers (id-echo, grpcio): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn python_grpc_client_fails_when_acks_stop() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let spec: echo::Spec = "float32[256]".parse().unwrap();
    let server = echo::GrpcServer::new(spec, Stuck, TcpTransport::localhost());
    let endpoint = runtime.block_on(server.start()).unwrap();
    let (_, port) = endpoint.tcp_parts().expect("a TCP endpoint");
    // 4 in flight, then send() blocks on credits that never come back.
    let run = send_to(
        port,
        port,
        &[
            "100",
            "small",
            "--transport",
            "grpc",
            "--max-inflight",
            "4",
            "--progress-timeout",
            "2",
            "--expect-stalled",
        ],
        Duration::from_secs(60),
    );
    let stalled = run.stdout.lines().find(|l| l.starts_with("STALLED "));
    let fields: Vec<&str> = stalled.map_or(vec![], |l| l.split_whitespace().collect());
    assert!(
        run.status.success()
            && fields.len() > 3
            && fields[1] == "4"
            && stalled.is_some_and(|l| l.contains("with 4 samples outstanding")),
        "the client did not report a stall with 4 outstanding ({}):\n{}\nstderr:\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    // Within the deadline: not before it, and not long after (the
    // interpreter's start and the connection take a moment too).
    let seconds: f64 = fields[2].parse().unwrap();
    assert!((2.0..8.0).contains(&seconds), "stalled after {seconds} s");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("THEN ConnectionClosedError")
                && l.contains("4 samples outstanding")),
        "send() after the stall:\n{}",
        run.stdout
    );
    let bounded = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await });
    assert!(bounded.is_ok(), "the server did not stop");
}
