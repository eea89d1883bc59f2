//! Slow-loris connections on the sample servers: many peers that dribble a
//! byte at a time and never finish a sample (or an HTTP/2 preface). The
//! server keeps serving a good client beside them, delivers nothing
//! partial, and its shutdown does not wait for them.

use std::time::Duration;

use bytes::Bytes;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, SampleServer as _};
use rpcplugin::transport::TcpTransport;
use tokio::io::AsyncWriteExt;

/// Slow peers: enough to matter, few enough for a 2-core machine.
const SLOW_PEERS: usize = 200;
/// Each sends one byte this often, for as long as the good client runs.
const DRIP: Duration = Duration::from_millis(50);
/// Bounds every wait, so a hang fails the test instead of the run.
const BOUND: Duration = Duration::from_secs(30);

fn spec() -> echo::Spec {
    "float32[4],float32[1],float64[]".parse().unwrap()
}

/// Peers that connect and send one byte every [`DRIP`] until dropped.
async fn slow_peers(endpoint: &Endpoint) -> Vec<tokio::task::JoinHandle<()>> {
    let addr = endpoint.address();
    let mut peers = Vec::new();
    for _ in 0..SLOW_PEERS {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        peers.push(tokio::spawn(async move {
            loop {
                if conn.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(DRIP).await;
            }
        }));
    }
    peers
}

async fn good_client_then_shutdown(grpc: bool) {
    let spec = spec();
    let (sink, mut samples) = echo::channel(spec.clone(), 1024);
    let count = 5000u64;
    let consumer = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(sample) = samples.recv().await {
            assert_eq!(sample.data.len(), 28, "only whole samples are delivered");
            n += 1;
        }
        n
    });
    macro_rules! run {
        ($server:expr, $connect:expr) => {{
            let server = $server;
            let endpoint = server.start().await.unwrap();
            let peers = slow_peers(&endpoint).await;
            let client = $connect(&endpoint, &spec, 32).await.unwrap();
            let sample = Bytes::from(vec![1u8; 28]);
            tokio::time::timeout(BOUND, async {
                for _ in 0..count {
                    client.send(sample.clone()).await.unwrap();
                }
                client.wait().await.unwrap();
            })
            .await
            .expect("the good client finishes beside the slow peers");
            client.close().await;
            // The slow peers are still dripping: shutdown must not wait
            // for them.
            tokio::time::timeout(BOUND, server.shutdown())
                .await
                .expect("shutdown does not wait for slow peers");
            for peer in peers {
                peer.abort();
            }
        }};
    }
    if grpc {
        run!(
            echo::GrpcServer::new(spec.clone(), sink, TcpTransport::localhost()),
            echo::GrpcClient::connect_endpoint
        );
    } else {
        run!(
            echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost()),
            echo::TcpClient::connect
        );
    }
    let delivered = tokio::time::timeout(BOUND, consumer)
        .await
        .unwrap()
        .unwrap();
    if grpc {
        // Slow peers never finish an HTTP/2 preface: nothing of theirs.
        assert_eq!(delivered, count);
    } else {
        // v1 has no framing: a peer's bytes become samples once there are
        // 28 of them; the good client's all arrive, nothing partial.
        assert!(delivered >= count, "{delivered}");
    }
}

#[cfg_attr(
    windows,
    ignore = "under Wine 8.0 a server with hundreds of open sockets did not serve a new client within the bound (not known on Windows itself)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_on_the_echo_tcp_port() {
    good_client_then_shutdown(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_on_the_grpc_port() {
    good_client_then_shutdown(true).await;
}
