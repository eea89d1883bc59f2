//! Bad input on echo's TCP protocol v1 (our `echo::TcpServer`): junk that is
//! not a whole number of samples, half a sample then EOF or a reset, a
//! client that never reads its acks, a thousand idle connections. Each
//! ends in a clean disconnect or is held back, the server goes on serving
//! the others, no partial sample is ever delivered, and memory stays
//! bounded.

mod bad_input;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bad_input::{
    IDLE_GROWTH_LIMIT_KIB, Server, TIMEOUT, garbage, idle_count, open_idle, unchecked,
    until_stalled, within,
};
use bytes::Bytes;
use rpcplugin::echo::{self, Sample, SampleServer};
use rpcplugin::transport::TcpTransport;
use rpcplugin::{Connection, Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// 28 bytes a sample: `{"obs": float32[4], "reward": float32[1], "t": float64[]}`.
const SPEC: &str = "float32[4],float32[1],float64[]";
const SIZE: usize = 28;

fn spec() -> echo::Spec {
    SPEC.parse().unwrap()
}

/// A good client's sample `i`: recognisable, never all junk.
fn sample(i: u32) -> Bytes {
    let mut data = vec![0x55; SIZE - 4];
    data.extend_from_slice(&i.to_le_bytes());
    data.into()
}

/// Connects with a raw socket and reads the spec header the server sends
/// first; the server has accepted (and numbered) the connection by then.
async fn raw(endpoint: &Endpoint) -> Connection {
    let mut conn = rpcplugin::connect(endpoint, TIMEOUT).await.unwrap();
    let mut header = vec![0u8; spec().to_wire().len()];
    within("the spec header", conn.read_exact(&mut header))
        .await
        .unwrap();
    assert_eq!(header, spec().to_wire());
    conn
}

/// Everything a connection receives until the server closes it.
async fn read_to_end(conn: &mut Connection) -> Vec<u8> {
    let mut got = Vec::new();
    within(
        "the server closing the connection",
        conn.read_to_end(&mut got),
    )
    .await
    .unwrap();
    got
}

/// Connects our client (the server has numbered the connection when this
/// returns), then streams `samples` in a task that waits for every ack.
async fn good_client(
    endpoint: &Endpoint,
    samples: std::ops::Range<u32>,
) -> tokio::task::JoinHandle<()> {
    let client = echo::TcpClient::connect(endpoint, &spec(), 8)
        .await
        .unwrap();
    tokio::spawn(async move {
        for i in samples {
            client.send(sample(i)).await.unwrap();
        }
        within("a good client's acks", client.wait()).await.unwrap();
        client.close().await;
    })
}

/// Collects what the sink receives, by stream, until the server is gone.
fn collect(mut rx: mpsc::Receiver<Sample>) -> tokio::task::JoinHandle<HashMap<u64, Vec<Bytes>>> {
    tokio::spawn(async move {
        let mut by_stream: HashMap<u64, Vec<Bytes>> = HashMap::new();
        while let Some(s) = rx.recv().await {
            by_stream.entry(s.stream).or_default().push(s.data);
        }
        by_stream
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_half_samples_and_resets_never_deliver_a_partial_sample() {
    let (sink, rx) = unchecked(64);
    let collected = collect(rx);
    let server = echo::TcpServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();

    // Stream 1: EOF right after the spec header: a clean close.
    let mut conn = raw(&endpoint).await;
    conn.shutdown().await.unwrap();
    assert!(read_to_end(&mut conn).await.is_empty());
    // Stream 2: a good client, streaming while the others misbehave.
    let good = good_client(&endpoint, 0..3000).await;

    // Stream 3: 10 007 bytes of junk (357 samples and 11 bytes) in odd
    // pieces, then EOF: 357 acks, then the server closes its side.
    let junk = garbage(10_007, 7);
    let mut conn = raw(&endpoint).await;
    for piece in junk.chunks(999) {
        conn.write_all(piece).await.unwrap();
    }
    conn.shutdown().await.unwrap();
    let acks = read_to_end(&mut conn).await;
    assert_eq!(acks, vec![1u8; 357], "one ack per whole sample, then EOF");

    // Stream 4: half a sample, then EOF: no ack, a clean close.
    let mut conn = raw(&endpoint).await;
    conn.write_all(&sample(0)[..SIZE / 2]).await.unwrap();
    conn.shutdown().await.unwrap();
    assert!(read_to_end(&mut conn).await.is_empty());

    // Stream 5: two samples and a half, then a reset instead of a FIN.
    let mut tcp = tokio::net::TcpStream::connect(endpoint.to_string())
        .await
        .unwrap();
    let mut header = vec![0u8; spec().to_wire().len()];
    tcp.read_exact(&mut header).await.unwrap();
    let mut two_and_a_half = [sample(0), sample(1)].concat();
    two_and_a_half.extend_from_slice(&sample(2)[..SIZE / 2]);
    tcp.write_all(&two_and_a_half).await.unwrap();
    let mut acks = [0u8; 2];
    within("two acks", tcp.read_exact(&mut acks)).await.unwrap();
    tcp.set_zero_linger().unwrap();
    drop(tcp);

    // Stream 6: connects and goes away before reading the spec.
    drop(rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap());

    within("the good client", good).await.unwrap();
    // Stream 7: the server still serves new clients afterwards.
    let later = good_client(&endpoint, 3000..3100).await;
    within("a later client", later).await.unwrap();
    server.shutdown().await;
    drop(server);
    let by_stream = within("the sink's end", collected).await.unwrap();

    for (stream, samples) in &by_stream {
        for s in samples {
            assert_eq!(s.len(), SIZE, "stream {stream}: a partial sample");
        }
    }
    let expected: Vec<Bytes> = (0..3000).map(sample).collect();
    assert_eq!(by_stream[&2], expected, "the good client's samples");
    let delivered: Vec<u8> = by_stream[&3].concat();
    assert_eq!(delivered, junk[..357 * SIZE], "the junk's whole samples");
    assert!(!by_stream.contains_key(&4), "half a sample was delivered");
    assert_eq!(by_stream[&5], [sample(0), sample(1)], "before the reset");
    assert!(!by_stream.contains_key(&1) && !by_stream.contains_key(&6));
    let expected: Vec<Bytes> = (3000..3100).map(sample).collect();
    assert_eq!(by_stream[&7], expected, "the later client's samples");
}

/// A field of `/proc/sys/net/ipv4/<name>` (min, default, max).
fn sysctl_field(name: &str, field: usize) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
        .ok()
        .and_then(|v| v.split_whitespace().nth(field)?.parse().ok())
        .unwrap_or(4 << 20)
}

fn sysctl_max(name: &str) -> u64 {
    sysctl_field(name, 2)
}

fn sysctl_default(name: &str) -> u64 {
    sysctl_field(name, 1)
}

#[cfg_attr(
    windows,
    ignore = "Wine 8.0 buffers writes to a peer that never reads without bound (21 MB and growing after a minute); Windows bounds its socket buffers"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_acks_is_held_back_alone() {
    // One-byte samples: one ack byte per byte sent, the most acks a client
    // can make the server owe. A consumer drains the sink all along, so
    // only the unread acks can hold the client back.
    let spec: echo::Spec = "uint8[1]".parse().unwrap();
    let (sink, mut rx) = unchecked(1024);
    let from_reader = Arc::new(AtomicU64::new(0));
    let counted = from_reader.clone();
    let consumer = tokio::spawn(async move {
        let mut others = 0u64;
        while let Some(s) = rx.recv().await {
            if s.stream == 1 {
                counted.fetch_add(1, Ordering::Relaxed);
            } else {
                others += 1;
            }
        }
        others
    });
    let server = echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();

    // The server may owe no more acks than the sockets between it and the
    // client hold: its send buffer and the client's receive buffer (the
    // latter does not grow while nobody reads). Twice that, and some.
    let bound = 2 * (sysctl_max("tcp_wmem") + sysctl_default("tcp_rmem")) + (4 << 20);
    // Stream 1 sends up to twice that and never reads.
    let limit = 2 * bound;
    let mut conn = rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap();
    let mut header = vec![0u8; spec.to_wire().len()];
    conn.read_exact(&mut header).await.unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let written = written.clone();
        async move {
            let chunk = vec![0xaa; 64 * 1024];
            while written.load(Ordering::Relaxed) < limit {
                if conn.write_all(&chunk).await.is_err() {
                    return;
                }
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    });
    // Stalled: neither the client writes nor the server delivers more.
    let progress = || written.load(Ordering::Relaxed) + from_reader.load(Ordering::Relaxed);
    until_stalled(progress, u64::MAX).await;
    let stalled = written.load(Ordering::Relaxed);
    let delivered = from_reader.load(Ordering::Relaxed);
    eprintln!("the non-reader wrote {stalled} bytes; {delivered} samples delivered");
    assert!(
        stalled < limit,
        "the server read {limit} bytes while its acks went unread"
    );
    assert!(
        delivered < bound,
        "{delivered} samples delivered to a client that reads no acks (bound {bound})"
    );

    // Meanwhile another client streams as usual.
    let client = echo::TcpClient::connect(&endpoint, &spec, 8).await.unwrap();
    for i in 0..1000u32 {
        client.send(Bytes::from(vec![i as u8])).await.unwrap();
    }
    within("the other client's acks", client.wait())
        .await
        .unwrap();
    client.close().await;

    // And shutdown does not wait for the non-reader.
    within(
        "shutdown beside a client that reads nothing",
        server.shutdown(),
    )
    .await;
    drop(server);
    let others = within("the sink's end", consumer).await.unwrap();
    assert_eq!(others, 1000);
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_samples_are_refused_by_the_client_before_they_travel() {
    let (sink, rx) = unchecked(64);
    let collected = collect(rx);
    let server = echo::TcpServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let client = echo::TcpClient::connect(&endpoint, &spec(), 8)
        .await
        .unwrap();
    let err = client.send(vec![0u8; 64 << 20].into()).await.unwrap_err();
    assert!(
        matches!(err, echo::EchoClientError::WrongSize { expected: 28, actual } if actual == 64 << 20),
        "{err:?}"
    );
    // Nothing of it went out: the stream is still in step.
    client.send(sample(0)).await.unwrap();
    within("the ack", client.wait()).await.unwrap();
    client.close().await;
    server.shutdown().await;
    drop(server);
    let by_stream = within("the sink's end", collected).await.unwrap();
    assert_eq!(by_stream[&1], [sample(0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_the_other_protocol_fail_clearly() {
    let (sink, rx) = unchecked(64);
    let collected = collect(rx);
    let tcp = echo::TcpServer::new(spec(), sink.clone(), TcpTransport::localhost());
    let grpc = echo::GrpcServer::new(spec(), sink, TcpTransport::localhost());
    let tcp_endpoint = tcp.start().await.unwrap();
    let grpc_endpoint = grpc.start().await.unwrap();

    // Our v1 client at the gRPC port reads HTTP/2 SETTINGS, not "ECHO".
    let err = within(
        "a v1 client at a gRPC port",
        echo::TcpClient::connect(&grpc_endpoint, &spec(), 8),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not an echo server"), "{err}");
    // Our gRPC client at the v1 port reads "ECHO", not HTTP/2.
    let err = within(
        "a gRPC client at a v1 port",
        echo::GrpcClient::connect_endpoint(&tcp_endpoint, &spec(), 8),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, echo::EchoClientError::ConnectionClosed { .. }),
        "{err:?}"
    );
    // Both go on serving their own clients.
    let good = good_client(&tcp_endpoint, 0..100).await;
    within("a v1 client", good).await.unwrap();
    let client = echo::GrpcClient::connect_endpoint(&grpc_endpoint, &spec(), 8)
        .await
        .unwrap();
    client.send(sample(100)).await.unwrap();
    within("a gRPC client's ack", client.wait()).await.unwrap();
    client.close().await;
    tcp.shutdown().await;
    grpc.shutdown().await;
    drop((tcp, grpc));
    let by_stream = within("the sink's end", collected).await.unwrap();
    // The gRPC client opened with the HTTP/2 preface: refused before
    // anything reached the sink. Only the v1 client's samples are there.
    let good: Vec<Bytes> = (0..100).map(sample).collect();
    let v1: Vec<_> = by_stream
        .iter()
        .filter(|(stream, _)| **stream != 0)
        .collect();
    assert_eq!(
        v1.len(),
        1,
        "streams at the v1 port: {:?}",
        by_stream.keys()
    );
    assert_eq!(*v1[0].1, good, "the v1 client's samples");
    assert_eq!(by_stream[&0], [sample(100)]);
}

#[cfg_attr(
    windows,
    ignore = "under Wine 8.0 a server with hundreds of open sockets did not serve a new client within the bound (not known on Windows itself)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_cost_little_and_block_no_one() {
    let server = Server::start("tcp", SPEC, 2000);
    let endpoint: Endpoint = server.endpoint.parse().unwrap();
    let n = idle_count();
    let before = server.rss_kib();
    // Each reads the spec header, so each is accepted and served; then
    // they sit idle.
    let wire = spec().to_wire().len();
    let mut idle = within("idle connections", open_idle(server.addr(), n, wire)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = server.rss_kib();
    // Then each sends half a sample and stops there.
    for conn in &mut idle {
        conn.write_all(&sample(0)[..SIZE / 2]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let half_rss = server.rss_kib();
    eprintln!(
        "server VmRSS: {before} KiB, {idle_rss} KiB with {n} idle connections, \
         {half_rss} KiB once each sent half a sample"
    );
    for rss in [idle_rss, half_rss] {
        assert!(
            rss.saturating_sub(before) < IDLE_GROWTH_LIMIT_KIB,
            "{n} idle connections took the server from {before} to {rss} KiB"
        );
    }

    // A good client streams past them all; the server counts its samples
    // only (no half sample), exits after them, idle connections or not.
    let good = good_client(&endpoint, 0..2000).await;
    within("the good client", good).await.unwrap();
    let (status, out) = server.exit().await;
    assert!(status.success(), "{status}: {out}");
    assert!(out.contains("received 2000 samples, 56000 bytes"), "{out}");
}

/// Sends `opening` on a fresh connection; what the server answers before
/// it closes (nothing: no ack).
async fn refused(endpoint: &Endpoint, opening: &[u8]) -> Vec<u8> {
    let mut conn = raw(endpoint).await;
    conn.write_all(opening).await.unwrap();
    let mut got = Vec::new();
    // The server closes with our bytes unread, which may reset the socket.
    let mut buf = [0u8; 256];
    loop {
        match within("the server's refusal", conn.read(&mut buf)).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_tls_openings_are_refused_before_the_sink() {
    let (sink, rx) = unchecked(64);
    let collected = collect(rx);
    let server = echo::TcpServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    // An HTTP/2 client: preface, SETTINGS, then a HEADERS frame: 8 whole
    // samples' worth of bytes, and more.
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x0c\x04\x00\x00\x00\x00\x00".to_vec();
    h2.extend_from_slice(&[0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xff, 0xff]);
    h2.extend_from_slice(&garbage(200, 7));
    assert_eq!(
        refused(&endpoint, &h2).await,
        b"",
        "acks for an HTTP/2 client"
    );
    // A TLS 1.3 ClientHello: record header, handshake header, body.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0xfc, 0x03, 0x03,
    ];
    hello.extend_from_slice(&garbage(250, 9));
    assert_eq!(
        refused(&endpoint, &hello).await,
        b"",
        "acks for a TLS client"
    );
    // A client whose first sample begins as a ClientHello record would
    // (but for its length, 3) is served, once its opening is unambiguous.
    let mut tricky = sample(0).to_vec();
    tricky[..6].copy_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x03, 0x01]);
    let mut conn = raw(&endpoint).await;
    conn.write_all(&tricky[..4]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    conn.write_all(&tricky[4..]).await.unwrap();
    let mut ack = [0u8; 1];
    within("the tricky sample's ack", conn.read_exact(&mut ack))
        .await
        .unwrap();
    assert_eq!(ack, [1]);
    drop(conn);
    server.shutdown().await;
    drop(server);
    let by_stream = within("the sink's end", collected).await.unwrap();
    let delivered: Vec<_> = by_stream.values().flatten().collect();
    assert_eq!(
        delivered,
        [&Bytes::from(tricky)],
        "only the echo client's sample"
    );
}
