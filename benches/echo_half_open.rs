//! Benchmark: the echo server's memory under half-open gRPC streams.
//!
//! ```text
//! cargo bench --features echo --bench echo_half_open
//! ECHO_HALF_OPEN_STREAMS=50000 cargo bench --features echo --bench echo_half_open
//! ```
//!
//! Starts the release `echo_server` example (spec `uint8[64]`) in a process
//! of its own, then opens `Push` streams on its gRPC port from raw HTTP/2
//! connections (the h2 crate), 16 per connection (the server's limit), and leaves each one
//! half-open: its headers and three bytes of a message prefix, never the
//! rest. Prints the server's resident memory before, with every stream
//! open, and its peak (`VmHWM`), from `/proc/PID/status`. The server
//! serves at most 16 streams per connection, 1024 connections and
//! `echo::DEFAULT_MAX_STREAMS` `Push` streams at once, and refuses more:
//! 50 000 streams are tried on 3125 connections, most of them closed or
//! refused. The bench counts the connections the server took.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Streams per connection: the server's limit.
const PER_CONNECTION: usize = 16;

fn status_kib(pid: u32, field: &str) -> u64 {
    common::status_kib(pid, field).unwrap_or(0)
}

/// One connection holding `streams` half-open `Push` streams; returns the
/// handles that keep them (and the connection) open.
async fn hold(addr: &str, streams: usize) -> Option<Vec<Box<dyn std::any::Any + Send>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    // A connection over the server's cap is closed before it speaks.
    let (mut h2, conn) = tokio::time::timeout(Duration::from_secs(2), h2::client::handshake(tcp))
        .await
        .ok()?
        .ok()?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut kept: Vec<Box<dyn std::any::Any + Send>> = vec![Box::new(AbortOnDrop(driver))];
    for _ in 0..streams {
        h2 = match tokio::time::timeout(Duration::from_secs(2), h2.ready()).await {
            Ok(Ok(h2)) => h2,
            _ => break,
        };
        let request = http::Request::post("/echo.v1.SampleStream/Push")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let Ok((response, mut body)) = h2.send_request(request, false) else {
            break;
        };
        // A message prefix cut short: compressed flag and two of the four
        // length bytes.
        // A stream the server refused at once (over its limit) is closed
        // by now: nothing to send on it.
        let _ = body.send_data(bytes::Bytes::from_static(&[0, 0, 0]), false);
        kept.push(Box::new((response, body)));
    }
    Some(kept)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("ECHO_HALF_OPEN_STREAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000);
    let server_bin = common::example("echo_server");
    let mut server = Command::new(server_bin)
        .args(["--spec", "uint8[64]"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("echo_server starts");
    let pid = server.id();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("echo_server prints its ports").unwrap();
        if let Some(addr) = line.strip_prefix("ECHO_GRPC ") {
            break addr.to_owned();
        }
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = status_kib(pid, "VmRSS:");
    let mut held = Vec::new();
    let mut opened = 0;
    while opened < total {
        let n = PER_CONNECTION.min(total - opened);
        if let Some(kept) = hold(&addr, n).await {
            held.push(kept);
        }
        opened += n;
    }
    // Let the server take in the last headers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let open = status_kib(pid, "VmRSS:");
    let peak = status_kib(pid, "VmHWM:");
    println!(
        "echo gRPC server, {opened} half-open Push streams tried on {} connections \
         (it serves 1024 at once and closes the rest): \
         RSS {:.1} MiB before, {:.1} MiB with them open, peak {:.1} MiB ({:.2} KiB per stream)",
        held.len(),
        before as f64 / 1024.0,
        open as f64 / 1024.0,
        peak as f64 / 1024.0,
        (open.saturating_sub(before)) as f64 / opened as f64,
    );
    drop(held);
    let _ = server.kill();
    let _ = server.wait();
}
