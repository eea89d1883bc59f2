//! Load on the echo sample transports (`TcpServer` with `TcpClient`,
//! `GrpcServer` with `GrpcClient`), on 127.0.0.1 and unix sockets:
//! many concurrent connections with exact accounting (each sample carries
//! its connection and sequence number; every one arrives exactly once, in
//! order per connection, and is acknowledged exactly once), and a stalled
//! sink that holds every producer back with bounded memory.

// Unix only: glibc's allocator.
#![cfg(unix)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, SampleReceiver, SampleServer};
use rpcplugin::transport::{TcpTransport, UnixTransport};

/// Memory is process-wide and the harness runs tests on parallel threads:
/// the tests of this file take turns, so that RSS figures are our own.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Small samples: room for the (connection, sequence) header, a copy of it
/// as a trailer, and filler.
const SMALL: usize = 64;

/// The sink of the throughput runs: enough to decouple the consumer from
/// 64 producers without hiding back-pressure.
const THROUGHPUT_SINK: usize = 1024;

/// The sink of the stalled runs: small, so that it fills at once.
const STALLED_SINK: usize = 16;

/// How long a stalled stream may take to fill the sink: a bound against
/// hangs, not an expectation (it fills in milliseconds).
const FILL_LIMIT: Duration = Duration::from_secs(30);

/// How many times the bounds are checked once the sink is full, 10 ms
/// apart: the stall lasts at least this long.
const STALL_CHECKS: usize = 50;

/// The RSS growth allowed while the large-sample stall lasts. The
/// transports may hold 16 MiB in the sink plus 8 clients × 4 in flight ×
/// 1 MiB = 48 MiB of samples; one sample in flight may exist several times
/// over (the client's copy, gRPC's encoded message, HTTP/2 buffers, the
/// server's decoded copy), so about 4 × 48 MiB, plus allocator slack; well
/// below the 512 MiB the producers would make if nothing held them back.
const LARGE_RSS_BOUND: u64 = 256 << 20;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Tcp,
    Grpc,
}

#[derive(Debug, Clone, Copy)]
enum Over {
    Loopback,
    Unix,
}

/// One run: `clients` producers each send `per_client` samples of `size`
/// bytes, `inflight` unacknowledged at most, into a sink of `capacity`;
/// with `stall`, nobody reads the sink until it is full and stayed full
/// for [`STALL_CHECKS`] checks.
#[derive(Debug, Clone, Copy)]
struct Load {
    kind: Kind,
    over: Over,
    size: usize,
    clients: usize,
    per_client: u32,
    inflight: usize,
    capacity: usize,
    stall: bool,
}

impl Load {
    /// A stalled run on 127.0.0.1.
    fn stalled(kind: Kind, size: usize, clients: usize, per_client: u32, inflight: usize) -> Self {
        let (over, capacity, stall) = (Over::Loopback, STALLED_SINK, true);
        Load {
            kind,
            over,
            size,
            clients,
            per_client,
            inflight,
            capacity,
            stall,
        }
    }
}

/// What a run saw.
#[derive(Debug, Default)]
struct Seen {
    elapsed: Duration,
    /// While stalled: samples acknowledged in all, i.e. in the sink.
    in_sink: u64,
    /// While stalled: sends completed in all.
    completed: u64,
    /// While stalled: the largest RSS growth, in MiB.
    rss_growth_mib: u64,
}

fn spec(size: usize) -> echo::Spec {
    format!("uint8[{size}]").parse().unwrap()
}

fn filler(conn: usize, seq: u32) -> u8 {
    (conn as u8) ^ (seq as u8) | 1
}

/// Sample `seq` of connection `conn`: the header (conn, seq as u32 LE),
/// filler, the header again at the end, so that a torn sample shows.
fn sample(conn: usize, seq: u32, size: usize) -> Bytes {
    let mut data = vec![filler(conn, seq); size];
    let header = (conn as u64 | u64::from(seq) << 32).to_le_bytes();
    data[..8].copy_from_slice(&header);
    data[size - 8..].copy_from_slice(&header);
    data.into()
}

/// Receives exactly `total` samples, checking that each is the next of its
/// connection (so none is lost, duplicated or reordered) and intact; gives
/// the per-connection counts.
async fn consume(rx: &mut SampleReceiver, conns: usize, total: u64) -> Vec<u32> {
    let mut next = vec![0u32; conns];
    for received in 0..total {
        let data = rx.recv().await.expect("a sample").data;
        let word = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let (conn, seq) = (word(0) as usize, word(4));
        assert!(conn < conns, "sample {received}: connection {conn}?");
        assert_eq!(
            seq, next[conn],
            "connection {conn}: sample lost or duplicated"
        );
        assert_eq!(data[..8], data[data.len() - 8..], "{conn}/{seq}: torn");
        let stride = (data.len() / 64).max(1); // every byte of small samples
        let body = &data[8..data.len() - 8];
        assert!(body.iter().step_by(stride).all(|b| *b == filler(conn, seq)));
        next[conn] += 1;
    }
    next
}

/// Either client, with the API they share.
enum Client {
    Tcp(echo::TcpClient),
    Grpc(echo::GrpcClient),
}

/// `$body` with `$c` bound to whichever client `$client` is.
macro_rules! either {
    ($client:expr, $c:ident => $body:expr) => {
        match $client {
            Client::Tcp($c) => $body,
            Client::Grpc($c) => $body,
        }
    };
}

impl Client {
    async fn connect(kind: Kind, at: &Endpoint, spec: &echo::Spec, inflight: usize) -> Self {
        use echo::{GrpcClient as Grpc, TcpClient as Tcp};
        match kind {
            Kind::Tcp => Client::Tcp(Tcp::connect(at, spec, inflight).await.unwrap()),
            Kind::Grpc => Client::Grpc(Grpc::connect_endpoint(at, spec, inflight).await.unwrap()),
        }
    }

    /// Waits for every ack, closes, and gives the count acknowledged.
    async fn finish(&self) -> u64 {
        either!(self, c => (c.wait().await.unwrap(), c.close().await));
        either!(self, c => c.acknowledged())
    }
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib = line.split_whitespace().nth(1).unwrap();
    kib.parse::<u64>().unwrap() << 10
}

/// Runs `load` on a fresh server and sink; checks afterwards that nothing
/// beyond the samples sent reached the sink and that no socket is left.
async fn exercise(load: Load) -> Seen {
    let (sink, rx) = echo::channel(spec(load.size), load.capacity);
    let dir = tempfile::tempdir().unwrap();
    let seen = match load.over {
        Over::Loopback => on(load, TcpTransport::localhost(), sink, rx).await,
        Over::Unix => on(load, UnixTransport::in_dir(dir.path()), sink, rx).await,
    };
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "socket left"
    );
    seen
}

async fn on<L>(load: Load, listener: L, sink: echo::ChannelSink, rx: SampleReceiver) -> Seen
where
    L: rpcplugin::Transport + 'static,
{
    let spec = spec(load.size);
    match load.kind {
        Kind::Tcp => drive(load, echo::TcpServer::new(spec, sink, listener), rx).await,
        Kind::Grpc => drive(load, echo::GrpcServer::new(spec, sink, listener), rx).await,
    }
}

async fn drive(load: Load, server: impl SampleServer, mut rx: SampleReceiver) -> Seen {
    let Load {
        kind,
        clients,
        per_client,
        inflight,
        capacity,
        ..
    } = load;
    let endpoint = server.start().await.unwrap();
    let mut connected = Vec::new();
    for _ in 0..clients {
        connected.push(Arc::new(
            Client::connect(kind, &endpoint, &spec(load.size), inflight).await,
        ));
    }
    let completed: Arc<Vec<AtomicU64>> =
        Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
    // Freed heap pages back to the system first, so that memory a previous
    // run left in the allocator does not hide this run's growth.
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        nix::libc::malloc_trim(0);
    }
    let rss_before = rss();
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for (conn, client) in connected.iter().cloned().enumerate() {
        let completed = completed.clone();
        senders.spawn(async move {
            for seq in 0..per_client {
                either!(&*client, c => c.send(sample(conn, seq, load.size)).await.unwrap());
                completed[conn].fetch_add(1, Ordering::SeqCst);
            }
            (conn, client.finish().await)
        });
    }
    // Checked all along: no send completes more than `inflight` past its
    // client's acks (completions are read first: acks only grow, so each
    // bound read afterwards is at least the one the send completed under);
    // while nobody reads, the acks never exceed the sink's capacity, as a
    // sample is acknowledged only once in the sink.
    let check = |stalled: bool| {
        let done: Vec<u64> = completed.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        let acked: Vec<u64> = connected
            .iter()
            .map(|c| either!(&**c, c => c.acknowledged()))
            .collect();
        for conn in 0..clients {
            let (done, acked) = (done[conn], acked[conn]);
            assert!(
                done <= acked + inflight as u64,
                "{kind:?}: client {conn}: {done} sent, {acked} acked"
            );
        }
        let (in_sink, done) = (acked.iter().sum::<u64>(), done.iter().sum::<u64>());
        assert!(
            !stalled || in_sink <= capacity as u64,
            "{kind:?}: {in_sink} in a sink of {capacity}"
        );
        (in_sink, done)
    };
    let mut seen = Seen::default();
    if load.stall {
        // Full: the sink holds `capacity`, every client `inflight` more.
        let full = (capacity as u64, (capacity + clients * inflight) as u64);
        let (deadline, mut peak) = (Instant::now() + FILL_LIMIT, rss());
        while check(true) != full {
            assert!(
                Instant::now() < deadline,
                "{kind:?}: not full: {:?}",
                check(true)
            );
            peak = peak.max(rss());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for _ in 0..STALL_CHECKS {
            tokio::time::sleep(Duration::from_millis(10)).await;
            (seen.in_sink, seen.completed) = check(true);
            peak = peak.max(rss());
        }
        seen.rss_growth_mib = peak.saturating_sub(rss_before) >> 20;
        assert!(
            senders.try_join_next().is_none(),
            "{kind:?}: a producer finished while stalled"
        );
    }
    let next = consume(&mut rx, clients, clients as u64 * u64::from(per_client)).await;
    while let Some(done) = senders.join_next().await {
        let (conn, acked) = done.unwrap();
        assert_eq!(
            acked,
            u64::from(per_client),
            "{kind:?}: acks of client {conn}"
        );
    }
    seen.elapsed = started.elapsed();
    check(false);
    assert!(next.iter().all(|n| *n == per_client), "{kind:?}: {next:?}");
    server.shutdown().await;
    drop(server);
    assert!(
        rx.recv().await.is_none(),
        "{kind:?}: a sample beyond those sent"
    );
    seen
}

/// `clients` connections each stream `per_client` samples of [`SMALL`]
/// bytes, echo's default in-flight limit, the sink read all along.
async fn stream(kind: Kind, over: Over, clients: usize, per_client: u32) {
    let (inflight, capacity) = (echo::DEFAULT_MAX_INFLIGHT, THROUGHPUT_SINK);
    let load = Load {
        kind,
        over,
        size: SMALL,
        clients,
        per_client,
        inflight,
        capacity,
        stall: false,
    };
    let seen = exercise(load).await;
    let total = clients as u64 * u64::from(per_client);
    let rate = total as f64 / seen.elapsed.as_secs_f64();
    println!(
        "load_echo: {kind:?} over {over:?}: {total} samples of {SMALL} B on {clients} connections \
         in {:.2?}: {rate:.0} samples/s, {:.1} MB/s; each once, in order, acknowledged",
        seen.elapsed,
        rate * SMALL as f64 / 1e6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_connections_of_2000_samples_exactly_once_on_both_transports() {
    let _turn = SERIAL.lock().await;
    for kind in [Kind::Tcp, Kind::Grpc] {
        for over in [Over::Loopback, Over::Unix] {
            stream(kind, over, 8, 2000).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load: 10^6 samples on 64 connections, 127.0.0.1 and unix; run explicitly"]
async fn a_million_samples_on_64_connections_exactly_once_over_tcp_transport() {
    let _turn = SERIAL.lock().await;
    for over in [Over::Loopback, Over::Unix] {
        stream(Kind::Tcp, over, 64, 15_625).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load: 10^6 samples on 64 connections, 127.0.0.1 and unix; run explicitly"]
async fn a_million_samples_on_64_connections_exactly_once_over_grpc_transport() {
    let _turn = SERIAL.lock().await;
    for over in [Over::Loopback, Over::Unix] {
        stream(Kind::Grpc, over, 64, 15_625).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_holds_every_producer_at_its_inflight_limit() {
    let _turn = SERIAL.lock().await;
    // 4 producers, 8 in flight each, a sink of 16: 200 samples each is far
    // more than the 16 + 4 × 8 sends that may complete while stalled.
    for kind in [Kind::Tcp, Kind::Grpc] {
        let load = Load::stalled(kind, SMALL, 4, 200, 8);
        let seen = exercise(load).await;
        println!("load_echo: {kind:?}, stalled sink of 16, 4 producers × 8 in flight: {seen:?}");
        assert_eq!(
            (seen.in_sink, seen.completed),
            (16, 48),
            "{kind:?}: the limits were not reached"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sink_of_large_samples_keeps_memory_bounded() {
    let _turn = SERIAL.lock().await;
    // 1 MiB samples, 8 producers × 4 in flight, a sink of 16, 64 samples
    // each: see LARGE_RSS_BOUND.
    for kind in [Kind::Tcp, Kind::Grpc] {
        let load = Load::stalled(kind, 1 << 20, 8, 64, 4);
        let seen = exercise(load).await;
        println!(
            "load_echo: {kind:?}, stalled sink of 16 × 1 MiB, 8 producers × 4 in flight: {seen:?} \
             (RSS bound {} MiB)",
            LARGE_RSS_BOUND >> 20
        );
        assert!(
            seen.rss_growth_mib < LARGE_RSS_BOUND >> 20,
            "{kind:?}: {seen:?}"
        );
    }
}
