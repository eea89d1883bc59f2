//! A sample server's `shutdown` ends about a second after it begins (the
//! README's bound), on both transports, whatever holds a connection: a
//! full sink that nobody reads, clients that never read their acks,
//! partial samples in flight. And no sample it acknowledged is missing
//! from the sink afterwards.

mod bad_input;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bad_input::grpc::{NonReader, frame, message, proto_spec, push_request};
use bad_input::{TIMEOUT, until_stalled, within};
use bytes::Bytes;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, SampleServer};
use rpcplugin::transport::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The stop grace of both transports (1 s), plus room for a busy 2-core
/// machine to schedule the last tasks. A transport that waits on its
/// clients or its sink takes forever, not 3 s.
const STOP_BOUND: Duration = Duration::from_secs(3);

/// Clients that never read their acks: enough that the server has several
/// blocked at once, few enough that their acks fill the socket buffers in
/// seconds (the 20 of the issue are `tests/cli_echo.rs`'s Ctrl-C case).
const NON_READERS: usize = 6;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Tcp,
    Grpc,
}

/// Starts a server of `kind` for `spec` with a sink of `capacity` that
/// nobody reads (until the test drains it).
async fn server(
    kind: Kind,
    spec: &echo::Spec,
    capacity: usize,
) -> (Box<dyn Stop>, Endpoint, echo::SampleReceiver) {
    let (sink, rx) = echo::channel(spec.clone(), capacity);
    let server: Box<dyn Stop> = match kind {
        Kind::Tcp => Box::new(echo::TcpServer::new(
            spec.clone(),
            sink,
            TcpTransport::localhost(),
        )),
        Kind::Grpc => Box::new(echo::GrpcServer::new(
            spec.clone(),
            sink,
            TcpTransport::localhost(),
        )),
    };
    let endpoint = server.start_boxed().await;
    (server, endpoint, rx)
}

/// Either transport, behind one object.
trait Stop: Send + Sync {
    fn start_boxed(&self) -> std::pin::Pin<Box<dyn Future<Output = Endpoint> + Send + '_>>;
    fn stop_boxed(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<T: SampleServer> Stop for T {
    fn start_boxed(&self) -> std::pin::Pin<Box<dyn Future<Output = Endpoint> + Send + '_>> {
        Box::pin(async { self.start().await.unwrap() })
    }
    fn stop_boxed(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.shutdown())
    }
}

/// Shuts `server` down, asserting the bound; drops it, and gives every
/// sample left in the sink.
async fn stop_within_bound(
    what: &str,
    server: Box<dyn Stop>,
    mut rx: echo::SampleReceiver,
) -> Vec<Bytes> {
    let started = Instant::now();
    within(what, server.stop_boxed()).await;
    let took = started.elapsed();
    assert!(took < STOP_BOUND, "{what}: shutdown took {took:?}");
    drop(server);
    let mut left = Vec::new();
    while let Some(sample) = within("the sink's end", rx.recv()).await {
        left.push(sample.data);
    }
    left
}

/// Sample `i` of a good client: its index, then filler.
fn numbered(i: u32, size: usize) -> Bytes {
    let mut data = vec![0x5a; size];
    data[..4].copy_from_slice(&i.to_le_bytes());
    data.into()
}

async fn full_sink(kind: Kind) {
    let spec: echo::Spec = "uint8[32]".parse().unwrap();
    let (server, endpoint, rx) = server(kind, &spec, 8).await;
    // Good clients, blocked by the full sink at their in-flight limit.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client: Arc<dyn AckCount> = match kind {
            Kind::Tcp => Arc::new(
                echo::TcpClient::connect(&endpoint, &spec, 32)
                    .await
                    .unwrap(),
            ),
            Kind::Grpc => Arc::new(
                echo::GrpcClient::connect_endpoint(&endpoint, &spec, 32)
                    .await
                    .unwrap(),
            ),
        };
        clients.push(client);
    }
    let sent = Arc::new(AtomicU64::new(0));
    let mut senders = tokio::task::JoinSet::new();
    for client in &clients {
        let (client, sent) = (client.clone(), sent.clone());
        senders.spawn(async move {
            for i in 0.. {
                if client.send_one(numbered(i, 32)).await.is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // On TCP, one more that writes 3000 samples at once and reads acks.
    let raw = match kind {
        Kind::Tcp => {
            let mut conn = rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap();
            conn.read_exact(&mut vec![0u8; spec.to_wire().len()])
                .await
                .unwrap();
            let burst: Vec<u8> = (0..3000).flat_map(|i| numbered(i, 32).to_vec()).collect();
            Some(tokio::spawn(async move {
                let (mut reader, mut writer) = tokio::io::split(conn);
                let writing = tokio::spawn(async move { writer.write_all(&burst).await });
                let mut acks = Vec::new();
                let _ = reader.read_to_end(&mut acks).await;
                writing.abort();
                acks.len()
            }))
        }
        Kind::Grpc => None,
    };
    until_stalled(|| sent.load(Ordering::Relaxed), u64::MAX).await;
    let left = stop_within_bound(&format!("{kind:?} with a full sink"), server, rx).await;
    senders.shutdown().await;
    let mut acked: u64 = clients.iter().map(|c| c.acks()).sum();
    if let Some(raw) = raw {
        acked += within("the raw client's end", raw).await.unwrap() as u64;
    }
    assert!(
        acked <= left.len() as u64,
        "{kind:?}: {acked} acknowledged, {} in the sink",
        left.len()
    );
    assert_eq!(left.len(), 8, "{kind:?}: the sink held 8");
}

/// What the test needs of either client.
trait AckCount: Send + Sync {
    fn send_one(
        &self,
        sample: Bytes,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), echo::EchoClientError>> + Send + '_>>;
    fn acks(&self) -> u64;
}

impl AckCount for echo::TcpClient {
    fn send_one(
        &self,
        sample: Bytes,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), echo::EchoClientError>> + Send + '_>>
    {
        Box::pin(self.send(sample))
    }
    fn acks(&self) -> u64 {
        self.acknowledged()
    }
}

impl AckCount for echo::GrpcClient {
    fn send_one(
        &self,
        sample: Bytes,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<(), echo::EchoClientError>> + Send + '_>>
    {
        Box::pin(self.send(sample))
    }
    fn acks(&self) -> u64 {
        self.acknowledged()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_shutdown_is_bounded_with_a_full_sink() {
    full_sink(Kind::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_shutdown_is_bounded_with_a_full_sink() {
    full_sink(Kind::Grpc).await;
}

async fn non_readers(kind: Kind) {
    // One-byte samples on TCP: one ack byte per byte read, so that the
    // unread acks fill the client's socket buffers soon.
    let spec: echo::Spec = match kind {
        Kind::Tcp => "uint8[1]",
        Kind::Grpc => "uint8[64]",
    }
    .parse()
    .unwrap();
    let (server, endpoint, mut rx) = server(kind, &spec, 1024).await;
    let counted = Arc::new(AtomicU64::new(0));
    let (done, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let reading = tokio::spawn({
        let counted = counted.clone();
        async move {
            loop {
                tokio::select! {
                    _ = &mut done_rx => return rx,
                    sample = rx.recv() => match sample {
                        Some(_) => counted.fetch_add(1, Ordering::Relaxed),
                        None => return rx,
                    },
                };
            }
        }
    });
    let written = Arc::new(AtomicU64::new(0));
    let mut keep = Vec::new();
    let mut grpc = Vec::new();
    for _ in 0..NON_READERS {
        match kind {
            Kind::Tcp => {
                // A small receive buffer: the server's acks soon block.
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.set_recv_buffer_size(4096).unwrap();
                let addr = endpoint.to_string().parse().unwrap();
                let mut conn = socket.connect(addr).await.unwrap();
                conn.read_exact(&mut vec![0u8; spec.to_wire().len()])
                    .await
                    .unwrap();
                let written = written.clone();
                keep.push(tokio::spawn(async move {
                    let chunk = vec![0xaa; 64 * 1024];
                    while conn.write_all(&chunk).await.is_ok() {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            Kind::Grpc => {
                let first = message(Some(proto_spec(&[("uint8", &[64])])), vec![]);
                let each = message(None, vec![vec![0xaa; 64].into(); 32]);
                grpc.push(NonReader::start(&endpoint, &first, &each, u64::MAX).await);
            }
        }
    }
    let progress = || {
        written.load(Ordering::Relaxed)
            + grpc.iter().map(NonReader::sent).sum::<u64>()
            + counted.load(Ordering::Relaxed)
    };
    until_stalled(progress, u64::MAX).await;
    // The sink is drained: only the unread acks hold the connections.
    done.send(()).unwrap();
    let rx = reading.await.unwrap();
    let what = format!("{kind:?} beside {NON_READERS} clients that never read");
    stop_within_bound(&what, server, rx).await;
    keep.iter().for_each(|t| t.abort());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_shutdown_is_bounded_beside_clients_that_never_read() {
    non_readers(Kind::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_shutdown_is_bounded_beside_clients_that_never_read() {
    non_readers(Kind::Grpc).await;
}

async fn partial_samples(kind: Kind) {
    const SIZE: usize = 1 << 20;
    let spec: echo::Spec = format!("uint8[{SIZE}]").parse().unwrap();
    let (server, endpoint, rx) = server(kind, &spec, 16).await;
    let half = vec![0x33u8; SIZE / 2];
    let mut held = Vec::new();
    for _ in 0..8 {
        match kind {
            Kind::Tcp => {
                let mut conn = rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap();
                conn.read_exact(&mut vec![0u8; spec.to_wire().len()])
                    .await
                    .unwrap();
                conn.write_all(&half).await.unwrap();
                held.push(tokio::spawn(async move {
                    let _ = conn.read_to_end(&mut Vec::new()).await;
                }));
            }
            Kind::Grpc => held.push(grpc_half_message(&endpoint, SIZE).await),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let what = format!("{kind:?} with 8 partial samples in flight");
    let left = stop_within_bound(&what, server, rx).await;
    assert!(left.is_empty(), "{kind:?}: a partial sample was delivered");
    held.iter().for_each(|t| t.abort());
}

/// A raw HTTP/2 `Push` that sends its spec, then half of a message with
/// one sample of `size` bytes, and waits.
async fn grpc_half_message(endpoint: &Endpoint, size: usize) -> tokio::task::JoinHandle<()> {
    let tcp = tokio::net::TcpStream::connect(endpoint.to_string())
        .await
        .unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move { drop(conn.await) });
    let (response, mut stream) = h2.send_request(push_request(endpoint), false).unwrap();
    let first = frame(&message(
        Some(proto_spec(&[("uint8", &[size as u32])])),
        vec![],
    ));
    let sample = frame(&message(None, vec![vec![0x33; size].into()]));
    let half = sample.slice(..sample.len() / 2);
    tokio::spawn(async move {
        let _keep = (response, driver, h2);
        for data in [first, half] {
            stream.reserve_capacity(data.len());
            while stream.capacity() < data.len() {
                let more = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await;
                if !matches!(more, Some(Ok(_))) {
                    return;
                }
            }
            if stream.send_data(data, false).is_err() {
                return;
            }
        }
        std::future::pending::<()>().await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_shutdown_is_bounded_with_partial_samples_in_flight() {
    partial_samples(Kind::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_shutdown_is_bounded_with_partial_samples_in_flight() {
    partial_samples(Kind::Grpc).await;
}
