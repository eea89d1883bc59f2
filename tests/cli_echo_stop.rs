//! `rpcplugin echo serve` keeps its promise on every stop path: after
//! `--count N` and after Ctrl-C it exits (within the transports' stop
//! bound, whatever the clients do) and its summary counts every sample it
//! acknowledged, and none it did not.

// Unix only: signals.
#![cfg(unix)]

mod bad_input;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bad_input::{Server, TIMEOUT, within};
use bytes::Bytes;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, EchoClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SPEC: &str = "float32[4],float32[1],float64[]";
const SIZE: usize = 28;

fn spec() -> echo::Spec {
    SPEC.parse().unwrap()
}

/// The sample count of the server's summary line.
fn received(summary: &str) -> u64 {
    let rest = summary
        .split("received ")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary: {summary:?}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

/// A raw v1 client that writes `samples` samples in one write and reads
/// acks until the server closes; the number of acks.
async fn burst(endpoint: &Endpoint, samples: usize) -> tokio::task::JoinHandle<usize> {
    let mut conn = rpcplugin::connect(endpoint, TIMEOUT).await.unwrap();
    conn.read_exact(&mut vec![0u8; spec().to_wire().len()])
        .await
        .unwrap();
    tokio::spawn(async move {
        let (mut reader, mut writer) = tokio::io::split(conn);
        let data = vec![0x11u8; samples * SIZE];
        let writing = tokio::spawn(async move { writer.write_all(&data).await });
        let mut acks = Vec::new();
        // A reset after the last acks is fine: they were read already.
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf).await {
            acks.extend_from_slice(&buf[..n]);
        }
        writing.abort();
        assert!(acks.iter().all(|b| *b == 1), "only ack bytes");
        acks.len()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_serve_count_acknowledges_exactly_what_it_counts() {
    let server = Server::start("tcp", SPEC, 10);
    let endpoint: Endpoint = server.endpoint.parse().unwrap();
    let acks = burst(&endpoint, 3000).await;
    let (status, out) = server.exit().await;
    assert!(status.success(), "{status}: {out}");
    let acks = within("the client's end", acks).await.unwrap() as u64;
    assert_eq!(received(&out), 10, "{out}");
    assert_eq!(acks, 10, "acknowledged, but the server counted 10: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_serve_count_acknowledges_exactly_what_it_counts() {
    let server = Server::start("grpc", SPEC, 10);
    let endpoint: Endpoint = server.endpoint.parse().unwrap();
    let client = echo::GrpcClient::connect_endpoint(&endpoint, &spec(), 64)
        .await
        .unwrap();
    let sent = async {
        for _ in 0..3000 {
            client.send(Bytes::from(vec![0x11u8; SIZE])).await?;
        }
        client.wait().await
    };
    let err = within("the stream's end", sent).await.unwrap_err();
    assert!(
        matches!(err, EchoClientError::ConnectionClosed { .. }),
        "{err:?}"
    );
    let (status, out) = server.exit().await;
    assert!(status.success(), "{status}: {out}");
    assert_eq!(received(&out), 10, "{out}");
    assert_eq!(client.acknowledged(), 10, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_serve_ctrl_c_beside_senders_that_never_read_counts_every_ack() {
    let server = Server::start("tcp", SPEC, u64::MAX);
    let endpoint: Endpoint = server.endpoint.parse().unwrap();
    // 20 fast senders that never read their acks.
    let mut non_readers = Vec::new();
    for _ in 0..20 {
        let mut conn = rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap();
        conn.read_exact(&mut vec![0u8; spec().to_wire().len()])
            .await
            .unwrap();
        non_readers.push(tokio::spawn(async move {
            let chunk = vec![0x22u8; 64 * SIZE];
            while conn.write_all(&chunk).await.is_ok() {}
        }));
    }
    // 8 that read: every ack they get must be in the summary.
    let stop = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..8 {
        let client = echo::TcpClient::connect(&endpoint, &spec(), 32)
            .await
            .unwrap();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            while stop.load(Ordering::Relaxed) == 0 {
                if client.send(Bytes::from(vec![0x33u8; SIZE])).await.is_err() {
                    break;
                }
            }
            // Whatever the stream's end, acks read are counted.
            let _ = client.wait().await;
            client.acknowledged()
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = nix::unistd::Pid::from_raw(server.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let (status, out) = server.exit().await;
    stop.store(1, Ordering::Relaxed);
    assert!(status.success(), "{status}: {out}");
    let mut acked = 0;
    for reader in readers {
        acked += within("a reading client's end", reader).await.unwrap();
    }
    non_readers.iter().for_each(|t| t.abort());
    assert!(acked > 0, "the readers got acks");
    let counted = received(&out);
    assert!(
        acked <= counted,
        "{acked} acknowledged to the readers alone, {counted} counted: {out}"
    );
}

/// A child process killed when dropped, so that a failed test leaves no
/// server behind.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `examples/echo_server` with a small queue; its child and v1 endpoint.
fn echo_server(args: &[&str]) -> (Reaped, Endpoint) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(common::example("echo_server"))
        .args(["--spec", SPEC, "--queue", "4"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("ECHO_TCP ").unwrap().to_owned();
    // The rest (the gRPC line, then the summary) is read at the end.
    child.stdout = Some(stdout.into_inner());
    (Reaped(child), Endpoint::tcp(addr.parse().unwrap()))
}

/// Waits for the example to exit by itself; its `RECEIVED` count.
async fn exit_count(mut child: Reaped) -> u64 {
    let status = within("echo_server's exit", async {
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status}: {out}");
    let line = out.lines().find(|l| l.starts_with("RECEIVED ")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_server_example_stops_after_expect_with_a_full_queue() {
    let (child, endpoint) = echo_server(&["--expect", "10"]);
    let acks = burst(&endpoint, 3000).await;
    let counted = exit_count(child).await;
    let acks = within("the client's end", acks).await.unwrap() as u64;
    assert!(counted >= 10, "{counted}");
    assert!(acks <= counted, "{acks} acknowledged, {counted} counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_server_example_obeys_sigterm_with_a_full_queue() {
    let (child, endpoint) = echo_server(&[]);
    let acks = burst(&endpoint, 3000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let counted = exit_count(child).await;
    let acks = within("the client's end", acks).await.unwrap() as u64;
    assert!(acks <= counted, "{acks} acknowledged, {counted} counted");
}
