//! Shutting a sample server down beside bad clients: one that never reads
//! its acks (so the server cannot write them), and idle connections. A
//! transport's `shutdown` must not wait for them, or `rpcplugin echo serve
//! --count N` never exits.

mod bad_input;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bad_input::grpc::{HELLO, NonReader, message, proto_spec};
use bad_input::{TIMEOUT, open_idle, unchecked, until_stalled, within};
use rpcplugin::echo::{self, SampleServer};
use rpcplugin::transport::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_shutdown_does_not_wait_for_bad_clients() {
    let spec: echo::Spec = "uint8[1]".parse().unwrap();
    let (sink, mut rx) = unchecked(1024);
    let _drained = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let server = echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let header = spec.to_wire().len();
    // An idle connection.
    let _idle = open_idle(endpoint.to_string().parse().unwrap(), 1, header).await;
    // One that sends and never reads: the server blocks writing its acks.
    let mut conn = rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap();
    conn.read_exact(&mut vec![0u8; header]).await.unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let _writer = tokio::spawn({
        let written = written.clone();
        async move {
            let chunk = vec![0xaa; 64 * 1024];
            while conn.write_all(&chunk).await.is_ok() {
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    });
    until_stalled(|| written.load(Ordering::Relaxed), u64::MAX).await;
    within("shutdown beside bad clients", server.shutdown()).await;
}

/// A gRPC sample server whose sink is drained, and where it listens.
async fn grpc_server() -> (
    echo::GrpcServer<TcpTransport, bad_input::Unchecked>,
    rpcplugin::Endpoint,
) {
    let spec: echo::Spec = "uint8[8],float32[]".parse().unwrap();
    let (sink, mut rx) = unchecked(1024);
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let server = echo::GrpcServer::new(spec, sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    (server, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_shutdown_does_not_wait_for_a_client_that_never_reads() {
    let (server, endpoint) = grpc_server().await;
    let spec = proto_spec(&[("uint8", &[8]), ("float32", &[])]);
    let first = message(Some(spec), vec![]);
    let each = message(None, vec![vec![0xaa; 12].into(); 32]);
    let non_reader = NonReader::start(&endpoint, &first, &each, u64::MAX).await;
    until_stalled(|| non_reader.sent(), u64::MAX).await;
    assert!(!non_reader.disconnected(), "held back, not disconnected");
    within(
        "shutdown beside a client that reads nothing",
        server.shutdown(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_shutdown_does_not_wait_for_idle_connections() {
    let (server, endpoint) = grpc_server().await;
    // One that never sends the HTTP/2 preface (a port probe, a stuck
    // client), one that sends it and then answers nothing (no PING ack).
    let mut idle = open_idle(endpoint.to_string().parse().unwrap(), 2, 9).await;
    idle[1].write_all(HELLO).await.unwrap();
    within("shutdown beside idle connections", server.shutdown()).await;
}
