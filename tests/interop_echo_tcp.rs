//! echo's own Python `TcpClient` (id-echo, from PyPI) streams samples into
//! our echo TCP transport: every sample arrives whole, in order, byte for
//! byte, and is acknowledged.

mod common;

use std::time::Duration;

use rpcplugin::echo::{self, SampleServer};
use rpcplugin::transport::TcpTransport;

const COUNT: usize = 2000;

/// The bytes the client sends for sample `i` (see echo_tcp_client.py).
fn expected(i: usize) -> Vec<u8> {
    let x = i as f32;
    let mut out = Vec::new();
    // Python computes -i on an integer: -0 is +0.0, not -0.0.
    for v in [x, x + 0.25, x + 0.5, x + 0.75, 0.0 - x] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(i as f64 / 2.0).to_le_bytes());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python peers (id-echo): run .ci/install-peers, then cargo test --all-features -- --ignored"]
async fn echos_own_tcp_client_streams_into_our_server() {
    let spec: echo::Spec = "float32[4],float32[1],float64[]".parse().unwrap();
    let (sink, mut samples) = echo::channel(spec.clone(), 64);
    let server = echo::TcpServer::new(spec, sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let (_, port) = endpoint.tcp_parts().unwrap();

    let script = common::crate_dir().join("tests/interop/python/echo_tcp_client.py");
    let client = tokio::process::Command::new(common::peers_python())
        .arg(script)
        .args(["127.0.0.1", &port.to_string(), &COUNT.to_string()])
        .output();
    let mut client = tokio::spawn(client);

    let mut finished = None;
    for i in 0..COUNT {
        let sample = tokio::select! {
            sample = samples.recv() => sample.expect("the sink is open"),
            out = &mut client, if finished.is_none() => {
                let out = out.unwrap().unwrap();
                if !out.status.success() {
                    panic!("client failed before sample {i}: {}", String::from_utf8_lossy(&out.stderr));
                }
                finished = Some(out);
                samples.recv().await.expect("the sink is open")
            }
            () = tokio::time::sleep(Duration::from_secs(30)) => panic!("sample {i} did not arrive"),
        };
        assert_eq!(sample.data.as_ref(), expected(i).as_slice(), "sample {i}");
    }
    let out = match finished {
        Some(out) => out,
        None => client.await.unwrap().unwrap(),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("SENT {COUNT}")),
        "client failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown().await;
    server.shutdown().await;
}

#[test]
#[ignore = "needs the Python peers (id-echo): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn our_tcp_client_streams_into_echos_own_server() {
    use std::io::{BufRead, BufReader};
    let script = common::crate_dir().join("tests/interop/python/echo_tcp_server.py");
    let mut server = std::process::Command::new(common::peers_python())
        .arg(script)
        .arg("5000")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let port_line = lines.next().expect("a port line").unwrap();
    let port = port_line
        .strip_prefix("PORT ")
        .expect("PORT <port>")
        .trim()
        .to_owned();
    let sent = std::process::Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .args([
            "echo",
            "send",
            "--transport",
            "tcp",
            "--connect",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--spec",
            "float32[4],float32[1],float64[]",
            "--count",
            "5000",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&sent.stdout);
    // The server prints its count at most 5 s after its last batch; never
    // wait on it for ever.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(lines.next().and_then(Result::ok).unwrap_or_default());
    });
    let received = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        sent.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    // Every sample sent and acknowledged by echo's server.
    assert!(stdout.contains("sent 5000 samples"), "{stdout}");
    let received: usize = received
        .strip_prefix("RECEIVED ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no RECEIVED line: {received:?}"));
    // echo itself drops up to a connection's queue (producer_queue_size 8)
    // of samples it already acknowledged when the client disconnects (its
    // documented fault, seen here once in CI under load), and its
    // batches of 10 then stop one short: at most one batch may be missing.
    assert!(
        (4990..=5000).contains(&received),
        "echo's server received {received} of 5000"
    );
}
