//! Benchmark: echo sample streams, Rust clients → Rust server in one
//! process, echo's TCP protocol v1 beside the gRPC transport, over TCP and
//! unix sockets, for 1 KiB, 64 KiB and 4 MiB samples, with 1 and 4
//! concurrent clients, 32 samples in flight per client.
//!
//! ```text
//! cargo bench --bench echo_throughput
//! ECHO_BENCH_SIZES=65536 ECHO_BENCH_CLIENTS=1 cargo bench --bench echo_throughput
//! ```
//!
//! Configurations are interleaved round by round; the table gives medians
//! and, per row, gRPC's rate as a multiple of echo TCP v1's.

use std::time::Instant;

use bytes::Bytes;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, SampleServer as _};
use rpcplugin::transport::{TcpTransport, UnixTransport};

const ROUNDS: usize = 5;
/// Bytes streamed per run: enough for a stable rate, small enough that the
/// whole benchmark takes a few minutes on 2 cores.
const BYTES_PER_RUN: usize = 256 << 20;
/// Samples per run at most: 1 KiB runs would otherwise take seconds each.
const MAX_SAMPLES_PER_RUN: usize = 100_000;
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

async fn run(proto: Proto, socket: Socket, sample_size: usize, clients: usize) -> f64 {
    let spec: echo::Spec = format!("uint8[{sample_size}]").parse().unwrap();
    let (sink, mut samples) = echo::channel(spec.clone(), 256);
    let consumer = tokio::spawn(async move { while samples.recv().await.is_some() {} });
    let dir = tempfile::tempdir().unwrap();
    let count = (BYTES_PER_RUN / sample_size).clamp(200, MAX_SAMPLES_PER_RUN) / clients;
    let sample = Bytes::from(vec![7u8; sample_size]);

    macro_rules! stream {
        ($server:expr, $connect:expr) => {{
            let server = $server;
            let endpoint: Endpoint = server.start().await.unwrap();
            let mut connected = Vec::new();
            for _ in 0..clients {
                connected.push($connect(&endpoint, &spec, MAX_INFLIGHT).await.unwrap());
            }
            let start = Instant::now();
            let mut streams = tokio::task::JoinSet::new();
            for client in connected {
                let sample = sample.clone();
                streams.spawn(async move {
                    for _ in 0..count {
                        client.send(sample.clone()).await.unwrap();
                    }
                    client.wait().await.unwrap();
                    client
                });
            }
            let mut done = Vec::new();
            while let Some(client) = streams.join_next().await {
                done.push(client.unwrap());
            }
            let elapsed = start.elapsed().as_secs_f64();
            for client in done {
                client.close().await;
            }
            server.shutdown().await;
            elapsed
        }};
    }
    let elapsed = match (proto, socket) {
        (Proto::Tcp, Socket::Tcp) => stream!(
            echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost()),
            echo::TcpClient::connect
        ),
        (Proto::Tcp, Socket::Unix) => stream!(
            echo::TcpServer::new(spec.clone(), sink, UnixTransport::in_dir(dir.path())),
            echo::TcpClient::connect
        ),
        (Proto::Grpc, Socket::Tcp) => stream!(
            echo::GrpcServer::new(spec.clone(), sink, TcpTransport::localhost()),
            echo::GrpcClient::connect_endpoint
        ),
        (Proto::Grpc, Socket::Unix) => stream!(
            echo::GrpcServer::new(spec.clone(), sink, UnixTransport::in_dir(dir.path())),
            echo::GrpcClient::connect_endpoint
        ),
    };
    consumer.abort();
    (count * clients) as f64 / elapsed
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A comma-separated list from the environment, or the default.
fn list(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().expect("a number"))
            .collect(),
        Err(_) => default.to_vec(),
    }
}

#[tokio::main]
async fn main() {
    let sizes = list("ECHO_BENCH_SIZES", &[1 << 10, 64 << 10, 4 << 20]);
    let client_counts = list("ECHO_BENCH_CLIENTS", &[1, 4]);
    let mut configs = Vec::new();
    for &size in &sizes {
        for &clients in &client_counts {
            for socket in [Socket::Tcp, Socket::Unix] {
                for proto in [Proto::Tcp, Proto::Grpc] {
                    configs.push((proto, socket, size, clients));
                }
            }
        }
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for round in 0..ROUNDS {
        for (i, &(proto, socket, size, clients)) in configs.iter().enumerate() {
            rates[i].push(run(proto, socket, size, clients).await);
        }
        eprintln!("round {}/{ROUNDS} done", round + 1);
    }
    println!(
        "\n{:<9} {:>7} {:<6} {:>16} {:>10} {:>16} {:>10} {:>7}",
        "sample",
        "clients",
        "socket",
        "TCP v1 samples/s",
        "MB/s",
        "gRPC samples/s",
        "MB/s",
        "gRPC/TCP"
    );
    let medians: Vec<f64> = rates.into_iter().map(median).collect();
    for (pair, rates) in configs.chunks(2).zip(medians.chunks(2)) {
        let (_, socket, size, clients) = pair[0];
        let mb = |rate: f64| rate * size as f64 / 1e6;
        println!(
            "{:<9} {:>7} {:<6} {:>16.0} {:>10.0} {:>16.0} {:>10.0} {:>7.2}",
            if size >= 1 << 20 {
                format!("{} MiB", size >> 20)
            } else {
                format!("{} KiB", size >> 10)
            },
            clients,
            if socket == Socket::Tcp { "tcp" } else { "unix" },
            rates[0],
            mb(rates[0]),
            rates[1],
            mb(rates[1]),
            rates[1] / rates[0],
        );
    }
    println!(
        "\nRust clients and server in one process, {MAX_INFLIGHT} samples in flight per client, medians of {ROUNDS} runs."
    );
}
