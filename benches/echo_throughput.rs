//! Benchmark: echo sample streams, Rust client → Rust server in one
//! process, echo's TCP protocol v1 beside the gRPC transport, over TCP and
//! unix sockets, for 1 KiB, 64 KiB and 1 MiB samples, 32 in flight.
//!
//! ```text
//! cargo bench --bench echo_throughput
//! ```
//!
//! Configurations are interleaved round by round; the table gives medians.

use std::time::Instant;

use bytes::Bytes;
use rpcplugin::echo::{self, Transport as _};
use rpcplugin::{Endpoint, TcpTransport, UnixTransport};

const ROUNDS: usize = 3;
/// Bytes streamed per run: enough for a stable rate, small enough that the
/// whole benchmark takes a minute or two on 2 cores.
const BYTES_PER_RUN: usize = 512 << 20;
const MAX_INFLIGHT: usize = 32;

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Tcp,
    Grpc,
}

#[derive(Clone, Copy, PartialEq)]
enum Socket {
    Tcp,
    Unix,
}

async fn run(proto: Proto, socket: Socket, sample_size: usize) -> f64 {
    let spec: echo::Spec = format!("uint8[{sample_size}]").parse().unwrap();
    let (sink, mut samples) = echo::channel(spec.clone(), 256);
    let consumer = tokio::spawn(async move { while samples.recv().await.is_some() {} });
    let dir = tempfile::tempdir().unwrap();
    let count = (BYTES_PER_RUN / sample_size).max(1000);
    let sample = Bytes::from(vec![7u8; sample_size]);

    macro_rules! stream {
        ($server:expr, $connect:expr) => {{
            let server = $server;
            let endpoint: Endpoint = server.start().await.unwrap();
            let client = $connect(&endpoint, &spec, MAX_INFLIGHT).await.unwrap();
            let start = Instant::now();
            for _ in 0..count {
                client.send(sample.clone()).await.unwrap();
            }
            client.wait().await.unwrap();
            let elapsed = start.elapsed().as_secs_f64();
            client.close().await;
            server.shutdown().await;
            elapsed
        }};
    }
    let elapsed = match (proto, socket) {
        (Proto::Tcp, Socket::Tcp) => stream!(
            echo::TcpTransport::new(spec.clone(), sink, TcpTransport::localhost()),
            echo::TcpClient::connect
        ),
        (Proto::Tcp, Socket::Unix) => stream!(
            echo::TcpTransport::new(spec.clone(), sink, UnixTransport::in_dir(dir.path())),
            echo::TcpClient::connect
        ),
        (Proto::Grpc, Socket::Tcp) => stream!(
            echo::GrpcTransport::new(spec.clone(), sink, TcpTransport::localhost()),
            echo::GrpcClient::connect_endpoint
        ),
        (Proto::Grpc, Socket::Unix) => stream!(
            echo::GrpcTransport::new(spec.clone(), sink, UnixTransport::in_dir(dir.path())),
            echo::GrpcClient::connect_endpoint
        ),
    };
    consumer.abort();
    count as f64 / elapsed
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() {
    // ECHO_BENCH_SIZES=65536,1048576 runs only those sample sizes.
    let sizes: Vec<usize> = match std::env::var("ECHO_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().expect("a byte count"))
            .collect(),
        Err(_) => vec![1 << 10, 64 << 10, 1 << 20],
    };
    let mut configs = Vec::new();
    for &size in &sizes {
        for socket in [Socket::Tcp, Socket::Unix] {
            for proto in [Proto::Tcp, Proto::Grpc] {
                configs.push((proto, socket, size));
            }
        }
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for round in 0..ROUNDS {
        for (i, &(proto, socket, size)) in configs.iter().enumerate() {
            rates[i].push(run(proto, socket, size).await);
        }
        eprintln!("round {}/{ROUNDS} done", round + 1);
    }
    println!(
        "\n{:<10} {:<7} {:<15} {:>14} {:>10}",
        "sample", "socket", "protocol", "samples/s", "MB/s"
    );
    for ((proto, socket, size), rates) in configs.iter().zip(rates) {
        let rate = median(rates);
        println!(
            "{:<10} {:<7} {:<15} {:>14.0} {:>10.0}",
            format!("{} KiB", size >> 10),
            if *socket == Socket::Tcp {
                "tcp"
            } else {
                "unix"
            },
            if *proto == Proto::Tcp {
                "echo TCP v1"
            } else {
                "gRPC"
            },
            rate,
            rate * *size as f64 / 1e6,
        );
    }
    println!(
        "\nRust client and server in one process, {MAX_INFLIGHT} samples in flight, medians of {ROUNDS} runs."
    );
}
