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
//! `ECHO_BENCH_PROTOS=grpc` (or `tcp`) runs one transport alone.
//!
//! Each run is a fresh process (this binary, started again for one
//! configuration): glibc's malloc raises its mmap threshold to the largest
//! block freed so far, so in one process a run inherited the allocator
//! that the runs before it left. gRPC with 4 MiB samples over unix cost
//! 0.39 CPU s/GB after TCP v1 runs that had freed 4 MiB + 64 KiB buffers
//! and 0.50–0.58 after runs that had freed exactly 4 MiB ones (or alone),
//! which read as a 30% loss of gRPC's speed when TCP v1's buffers changed.
//! With the threshold pinned (`GLIBC_TUNABLES=glibc.malloc.mmap_threshold`)
//! both builds gave the same 0.52–0.62.

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

#[derive(Clone, Copy, PartialEq, Debug)]
enum Proto {
    Tcp,
    Grpc,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Socket {
    Tcp,
    Unix,
}

/// CPU seconds this process has used, all threads, user and system (from
/// `/proc/self/stat`, in clock ticks of 10 ms). A rate falls when another
/// process takes the cores; CPU per byte does not, so the two together
/// tell a slower stream from a busier machine.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime: fields 14 and 15 of the line, from 0 after the name (field 3 on) 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// One run: samples per second, and CPU seconds per GB streamed.
async fn run(proto: Proto, socket: Socket, sample_size: usize, clients: usize) -> (f64, f64) {
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
            let (start, cpu) = (Instant::now(), cpu_seconds());
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
            let elapsed = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
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
    let (seconds, cpu) = elapsed;
    let bytes = (count * clients * sample_size) as f64;
    ((count * clients) as f64 / seconds, cpu / (bytes / 1e9))
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

/// The variable that makes this binary run one configuration and print
/// its rate and CPU per GB.
const ONE: &str = "ECHO_BENCH_ONE";

/// One run in a fresh process: this binary again, told the configuration.
fn run_apart(proto: Proto, socket: Socket, size: usize, clients: usize) -> (f64, f64) {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let output = std::process::Command::new(exe)
        .env(ONE, format!("{proto:?} {socket:?} {size} {clients}"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the benchmark runs itself");
    assert!(output.status.success(), "a run failed: {}", output.status);
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .split_whitespace()
        .map(|n| n.parse::<f64>().expect("a number"));
    (
        numbers.next().expect("a rate"),
        numbers.next().expect("CPU per GB"),
    )
}

/// The run [`ONE`] asks for, if any: prints its rate and CPU per GB.
fn run_one() -> bool {
    let Ok(config) = std::env::var(ONE) else {
        return false;
    };
    let parts: Vec<&str> = config.split_whitespace().collect();
    let proto = if parts[0] == "Tcp" {
        Proto::Tcp
    } else {
        Proto::Grpc
    };
    let socket = if parts[1] == "Tcp" {
        Socket::Tcp
    } else {
        Socket::Unix
    };
    let (size, clients) = (parts[2].parse().unwrap(), parts[3].parse().unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (rate, per_gb) = runtime.block_on(run(proto, socket, size, clients));
    println!("{rate} {per_gb}");
    true
}

fn main() {
    if run_one() {
        return;
    }
    let sizes = list("ECHO_BENCH_SIZES", &[1 << 10, 64 << 10, 4 << 20]);
    let client_counts = list("ECHO_BENCH_CLIENTS", &[1, 4]);
    let protos = std::env::var("ECHO_BENCH_PROTOS").unwrap_or_default();
    let runs = |proto: Proto| {
        let name = if proto == Proto::Tcp { "tcp" } else { "grpc" };
        protos.is_empty() || protos.split(',').any(|p| p.trim() == name)
    };
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
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for round in 0..ROUNDS {
        for (i, &(proto, socket, size, clients)) in configs.iter().enumerate() {
            let (rate, per_gb) = match runs(proto) {
                true => run_apart(proto, socket, size, clients),
                false => (f64::NAN, f64::NAN),
            };
            rates[i].push(rate);
            cpu[i].push(per_gb);
        }
        eprintln!("round {}/{ROUNDS} done", round + 1);
    }
    println!(
        "\n{:<9} {:>7} {:<6} {:>16} {:>10} {:>8} {:>16} {:>10} {:>8} {:>8}",
        "sample",
        "clients",
        "socket",
        "TCP v1 samples/s",
        "MB/s",
        "CPU s/GB",
        "gRPC samples/s",
        "MB/s",
        "CPU s/GB",
        "gRPC/TCP"
    );
    let rates: Vec<f64> = rates.into_iter().map(median).collect();
    let cpu: Vec<f64> = cpu.into_iter().map(median).collect();
    for (i, pair) in configs.chunks(2).enumerate() {
        let (_, socket, size, clients) = pair[0];
        let (tcp, grpc) = (rates[2 * i], rates[2 * i + 1]);
        let mb = |rate: f64| rate * size as f64 / 1e6;
        println!(
            "{:<9} {:>7} {:<6} {:>16.0} {:>10.0} {:>8.3} {:>16.0} {:>10.0} {:>8.3} {:>8.2}",
            if size >= 1 << 20 {
                format!("{} MiB", size >> 20)
            } else if size >= 1 << 10 {
                format!("{} KiB", size >> 10)
            } else {
                format!("{size} B")
            },
            clients,
            if socket == Socket::Tcp { "tcp" } else { "unix" },
            tcp,
            mb(tcp),
            cpu[2 * i],
            grpc,
            mb(grpc),
            cpu[2 * i + 1],
            grpc / tcp,
        );
    }
    println!(
        "\nRust clients and server in one process per run, {MAX_INFLIGHT} samples in flight per client, medians of {ROUNDS} runs; CPU s/GB: the process's CPU time (all threads) per GB streamed."
    );
}
