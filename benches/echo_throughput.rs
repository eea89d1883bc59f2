//! Benchmark: echo sample streams, Rust clients → Rust server in one
//! process, echo's TCP protocol v1 beside the gRPC transport, over TCP and
//! unix sockets, for 1 KiB, 64 KiB and 4 MiB samples, with 1 and 4
//! concurrent clients, 32 samples in flight per client.
//!
//! ```text
//! cargo bench --features echo --bench echo_throughput
//! ECHO_BENCH_SIZES=65536 ECHO_BENCH_CLIENTS=1 cargo bench --features echo --bench echo_throughput
//! ECHO_BENCH_SIZES=16,64,1024 ECHO_BENCH_WINDOWS=32,4096 cargo bench --features echo --bench echo_throughput
//! ECHO_BENCH_BATCH=1024 ECHO_BENCH_SIZES=64 ECHO_BENCH_WINDOWS=4096 cargo bench --features echo --bench echo_throughput
//! ```
//!
//! `ECHO_BENCH_BATCH=k` has the clients send k samples a call
//! (`send_batch`, at most the window) instead of one (`send`), and the
//! consumer take them k at a time (`SampleReceiver::recv_batch`, stacked
//! as a learner takes them); with `ECHO_BENCH_CONSUME=sample` as well, the
//! consumer takes them one by one (`SampleReceiver::recv`).
//!
//! Each row also runs a bare socket loop: the same bytes written in
//! 256 KiB batches on one connection and read back, no framing, the
//! physical limit the protocols are measured against.
//!
//! Configurations are interleaved round by round; the table gives medians
//! and, per row, gRPC's rate as a multiple of echo TCP v1's.
//! `ECHO_BENCH_PROTOS=grpc` (or `tcp`) runs one transport alone;
//! `ECHO_BENCH_SPREAD=1` prints every round's rate of each row, sorted;
//! `ECHO_BENCH_MB=n` streams n MiB a run instead of 256.
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

/// [`BYTES_PER_RUN`], or `ECHO_BENCH_MB` megabytes (MiB): longer runs
/// steady large samples, whose 256 MiB run lasts about 0.1 s.
fn bytes_per_run() -> usize {
    std::env::var("ECHO_BENCH_MB")
        .ok()
        .and_then(|mb| mb.parse::<usize>().ok())
        .map_or(BYTES_PER_RUN, |mb| mb << 20)
}
/// Samples per run at most: 1 KiB runs would otherwise take seconds each.
const MAX_SAMPLES_PER_RUN: usize = 100_000;
/// Samples per run at most when clients send batches (`ECHO_BENCH_BATCH`):
/// 100 000 of 64 B took 4 ms, too short to time.
const MAX_BATCHED_SAMPLES_PER_RUN: usize = 4_000_000;

fn max_samples_per_run() -> usize {
    match std::env::var("ECHO_BENCH_BATCH") {
        Ok(_) => MAX_BATCHED_SAMPLES_PER_RUN,
        Err(_) => MAX_SAMPLES_PER_RUN,
    }
}

/// `ECHO_BENCH_BATCH`, the samples a batch holds, if set.
fn batch_size() -> Option<usize> {
    std::env::var("ECHO_BENCH_BATCH")
        .ok()
        .map(|k| k.parse::<usize>().expect("ECHO_BENCH_BATCH: a number"))
}

/// The clients' window (samples in flight) unless `ECHO_BENCH_WINDOWS` says.
const MAX_INFLIGHT: usize = 32;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Proto {
    Tcp,
    Grpc,
    /// No protocol: the same bytes written in 256 KiB batches on one
    /// connection and read back, the socket's own limit.
    Bare,
}

/// The socket kinds measured: unix sockets too where there are some.
#[cfg(unix)]
const SOCKETS: [Socket; 2] = [Socket::Tcp, Socket::Unix];
#[cfg(not(unix))]
const SOCKETS: [Socket; 1] = [Socket::Tcp];

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
async fn run(
    proto: Proto,
    socket: Socket,
    sample_size: usize,
    clients: usize,
    window: usize,
) -> (f64, f64) {
    if proto == Proto::Bare {
        return bare(socket, sample_size, clients).await;
    }
    let spec: echo::Spec = format!("uint8[{sample_size}]").parse().unwrap();
    let (sink, mut samples) = echo::channel(spec.clone(), 256);
    let batch = batch_size();
    let consume_batch =
        batch.filter(|k| *k > 1 && std::env::var("ECHO_BENCH_CONSUME").as_deref() != Ok("sample"));
    let consumer = tokio::spawn(async move {
        match consume_batch {
            Some(k) => while samples.recv_batch(k).await.is_some() {},
            None => while samples.recv().await.is_some() {},
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let count = (bytes_per_run() / sample_size).clamp(200, max_samples_per_run()) / clients;
    let sample = Bytes::from(vec![7u8; sample_size]);
    // ECHO_BENCH_BATCH=k: send k samples a call (send_batch), at most the window.
    let batch = batch
        .map(|k| k.min(window))
        .filter(|k| *k > 1)
        .map(|k| Bytes::from(vec![7u8; k * sample_size]));

    macro_rules! stream {
        ($server:expr, $connect:expr) => {{
            let server = $server;
            let endpoint: Endpoint = server.start().await.unwrap();
            let mut connected = Vec::new();
            for _ in 0..clients {
                connected.push($connect(&endpoint, &spec, window).await.unwrap());
            }
            let (start, cpu) = (Instant::now(), cpu_seconds());
            let mut streams = tokio::task::JoinSet::new();
            for client in connected {
                let sample = sample.clone();
                let batch = batch.clone();
                streams.spawn(async move {
                    match &batch {
                        Some(batch) => {
                            let per = batch.len() / sample.len();
                            let mut left = count;
                            while left > 0 {
                                let n = left.min(per);
                                client
                                    .send_batch(batch.slice(..n * sample.len()))
                                    .await
                                    .unwrap();
                                left -= n;
                            }
                        }
                        None => {
                            for _ in 0..count {
                                client.send(sample.clone()).await.unwrap();
                            }
                        }
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
        (Proto::Bare, _) => unreachable!("the bare loop returned above"),
    };
    consumer.abort();
    let (seconds, cpu) = elapsed;
    let bytes = (count * clients * sample_size) as f64;
    ((count * clients) as f64 / seconds, cpu / (bytes / 1e9))
}

/// The bare socket loop: as many bytes as the clients' samples of a run,
/// written in 256 KiB batches on one connection, read back into a 1 MiB
/// buffer and dropped. (Reads of 256 KiB made it slower than TCP v1 at
/// 64 KiB over unix: 2.2-2.5 GB/s against 6.3 GB/s with 1 MiB reads.)
/// Samples per second in sample-size units, and CPU seconds per GB.
async fn bare(socket: Socket, sample_size: usize, clients: usize) -> (f64, f64) {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    const BATCH: usize = 256 << 10;
    let count =
        (bytes_per_run() / sample_size).clamp(200, max_samples_per_run()) / clients * clients;
    let total = count * sample_size;
    async fn pump(
        mut tx: impl AsyncWrite + Unpin + Send + 'static,
        mut rx: impl AsyncRead + Unpin,
        total: usize,
    ) {
        let writer = tokio::spawn(async move {
            let chunk = vec![7u8; BATCH];
            let mut left = total;
            while left > 0 {
                let n = left.min(BATCH);
                tx.write_all(&chunk[..n]).await.unwrap();
                left -= n;
            }
            tx
        });
        let mut buf = vec![0u8; 4 * BATCH];
        let mut read = 0;
        while read < total {
            let n = rx.read(&mut buf).await.unwrap();
            assert!(n > 0, "the bare loop's writer went away");
            read += n;
        }
        drop(writer.await.unwrap());
    }
    let (start, cpu) = match socket {
        Socket::Tcp => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tx = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            tx.set_nodelay(true).unwrap();
            let (rx, _) = listener.accept().await.unwrap();
            let started = (Instant::now(), cpu_seconds());
            pump(tx, rx, total).await;
            started
        }
        #[cfg(not(unix))]
        Socket::Unix => unreachable!("no unix sockets on Windows"),
        #[cfg(unix)]
        Socket::Unix => {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bare.sock");
            let listener = tokio::net::UnixListener::bind(&path).unwrap();
            let tx = tokio::net::UnixStream::connect(&path).await.unwrap();
            let (rx, _) = listener.accept().await.unwrap();
            let started = (Instant::now(), cpu_seconds());
            pump(tx, rx, total).await;
            started
        }
    };
    let (seconds, cpu) = (start.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    (count as f64 / seconds, cpu / (total as f64 / 1e9))
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
fn run_apart(
    proto: Proto,
    socket: Socket,
    size: usize,
    clients: usize,
    window: usize,
) -> (f64, f64) {
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let output = std::process::Command::new(exe)
        .env(
            ONE,
            format!("{proto:?} {socket:?} {size} {clients} {window}"),
        )
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
    let proto = match parts[0] {
        "Tcp" => Proto::Tcp,
        "Grpc" => Proto::Grpc,
        _ => Proto::Bare,
    };
    let socket = if parts[1] == "Tcp" {
        Socket::Tcp
    } else {
        Socket::Unix
    };
    let number = |i: usize| parts[i].parse::<usize>().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (rate, per_gb) = runtime.block_on(run(proto, socket, number(2), number(3), number(4)));
    println!("{rate} {per_gb}");
    true
}

fn main() {
    if run_one() {
        return;
    }
    let sizes = list("ECHO_BENCH_SIZES", &[1 << 10, 64 << 10, 4 << 20]);
    let client_counts = list("ECHO_BENCH_CLIENTS", &[1, 4]);
    let windows = list("ECHO_BENCH_WINDOWS", &[MAX_INFLIGHT]);
    let protos = std::env::var("ECHO_BENCH_PROTOS").unwrap_or_default();
    let runs = |proto: Proto| {
        let name = match proto {
            Proto::Tcp => "tcp",
            Proto::Grpc => "grpc",
            Proto::Bare => "bare",
        };
        protos.is_empty() || protos.split(',').any(|p| p.trim() == name)
    };
    const PROTOS: [Proto; 3] = [Proto::Tcp, Proto::Grpc, Proto::Bare];
    let mut rows = Vec::new();
    for &size in &sizes {
        for &clients in &client_counts {
            for socket in SOCKETS {
                for &window in &windows {
                    rows.push((socket, size, clients, window));
                }
            }
        }
    }
    let cells = rows.len() * PROTOS.len();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cells];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); cells];
    for round in 0..ROUNDS {
        for (r, &(socket, size, clients, window)) in rows.iter().enumerate() {
            for (p, &proto) in PROTOS.iter().enumerate() {
                let (rate, per_gb) = match runs(proto) {
                    true => run_apart(proto, socket, size, clients, window),
                    false => (f64::NAN, f64::NAN),
                };
                rates[r * PROTOS.len() + p].push(rate);
                cpu[r * PROTOS.len() + p].push(per_gb);
            }
        }
        eprintln!("round {}/{ROUNDS} done", round + 1);
    }
    println!(
        "\n{:<7} {:>7} {:<6} {:>6} {:>13} {:>8} {:>8} {:>13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "sample",
        "clients",
        "socket",
        "window",
        "TCP v1 /s",
        "MB/s",
        "CPU s/GB",
        "gRPC /s",
        "MB/s",
        "CPU s/GB",
        "bare MB/s",
        "gRPC/TCP",
        "TCP/bare",
        "gRPC/bare"
    );
    let spread = std::env::var("ECHO_BENCH_SPREAD").is_ok_and(|v| v == "1");
    if spread {
        // Every round's rate, to see how steady a row is.
        for (r, &(socket, size, clients, window)) in rows.iter().enumerate() {
            for (p, name) in ["TCP v1", "gRPC", "bare"].into_iter().enumerate() {
                let mut runs = rates[r * PROTOS.len() + p].clone();
                runs.sort_by(f64::total_cmp);
                let mb: Vec<String> = runs
                    .iter()
                    .map(|rate| format!("{:.0}", rate * size as f64 / 1e6))
                    .collect();
                eprintln!(
                    "{size} B, {clients} client(s), {socket:?}, window {window}, {name}: MB/s {}",
                    mb.join(" ")
                );
            }
        }
    }
    let rates: Vec<f64> = rates.into_iter().map(median).collect();
    let cpu: Vec<f64> = cpu.into_iter().map(median).collect();
    for (r, &(socket, size, clients, window)) in rows.iter().enumerate() {
        let at = r * PROTOS.len();
        let (tcp, grpc, bare) = (rates[at], rates[at + 1], rates[at + 2]);
        let mb = |rate: f64| rate * size as f64 / 1e6;
        println!(
            "{:<7} {:>7} {:<6} {:>6} {:>13.0} {:>8.0} {:>8.3} {:>13.0} {:>8.0} {:>8.3} {:>8.0} {:>8.2} {:>8.2} {:>9.2}",
            if size >= 1 << 20 {
                format!("{} MiB", size >> 20)
            } else if size >= 1 << 10 {
                format!("{} KiB", size >> 10)
            } else {
                format!("{size} B")
            },
            clients,
            if socket == Socket::Tcp { "tcp" } else { "unix" },
            window,
            tcp,
            mb(tcp),
            cpu[at],
            grpc,
            mb(grpc),
            cpu[at + 1],
            mb(bare),
            grpc / tcp,
            tcp / bare,
            grpc / bare,
        );
    }
    println!(
        "\nRust clients and server in one process per run, medians of {ROUNDS} runs; window: samples in flight per client; CPU s/GB: the process's CPU time (all threads) per GB streamed; bare: the same bytes in 256 KiB writes on one connection, no protocol."
    );
}
