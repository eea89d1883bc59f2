//! echo sample streams over gRPC: our server and client over TCP and unix
//! sockets, spec checks naming the leaf, payload sizes, back-pressure from
//! a full sink, and shutdown in the middle of a stream.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rpcplugin::echo::{self, EchoClientError, GrpcClient, SampleServer};
use rpcplugin::transport::TcpTransport;

fn spec() -> echo::Spec {
    "uint8[8],float32[]".parse().unwrap()
}

fn sample(i: u32) -> Bytes {
    let mut data = vec![(i % 251) as u8; 8];
    data.extend_from_slice(&(i as f32).to_le_bytes());
    data.into()
}

async fn stream_over(listener: impl rpcplugin::Transport + 'static) {
    let (sink, mut samples) = echo::channel(spec(), 64);
    let server = echo::GrpcServer::new(spec(), sink, listener);
    let endpoint = server.start().await.unwrap();
    let client = GrpcClient::connect(common::channel_to(endpoint).await, &spec(), 32)
        .await
        .unwrap();
    let count = 2000u32;
    let consumer = tokio::spawn(async move {
        for i in 0..count {
            let got = samples.recv().await.expect("a sample");
            assert_eq!(got.data, sample(i), "sample {i}");
        }
        samples
    });
    for i in 0..count {
        client.send(sample(i)).await.unwrap();
    }
    client.wait().await.unwrap();
    assert_eq!(client.acknowledged(), u64::from(count));
    client.close().await;
    client.close().await;
    assert!(matches!(
        client.send(sample(0)).await,
        Err(EchoClientError::ConnectionClosed { .. })
    ));
    let _samples = consumer.await.unwrap();
    server.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn samples_flow_in_order_over_tcp() {
    stream_over(TcpTransport::localhost()).await;
}

#[cfg(unix)]
#[tokio::test]
async fn samples_flow_in_order_over_unix() {
    let dir = tempfile::tempdir().unwrap();
    stream_over(rpcplugin::transport::UnixTransport::in_dir(dir.path())).await;
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "socket removed on shutdown"
    );
}

#[tokio::test]
async fn spec_mismatch_names_the_leaf_and_sizes_are_checked() {
    let (sink, _samples) = echo::channel(spec(), 4);
    let server = echo::GrpcServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let other: echo::Spec = "uint8[8],float64[]".parse().unwrap();
    let err = GrpcClient::connect(common::channel_to(endpoint.clone()).await, &other, 8)
        .await
        .unwrap_err();
    assert!(matches!(&err, EchoClientError::SpecMismatch(_)), "{err:?}");
    assert!(
        err.to_string().contains("leaf 1") && err.to_string().contains("float64[]"),
        "{err}"
    );

    let client = GrpcClient::connect(common::channel_to(endpoint).await, &spec(), 8)
        .await
        .unwrap();
    let err = client
        .send(Bytes::from_static(&[1, 2, 3]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EchoClientError::WrongSize {
                expected: 12,
                actual: 3
            }
        ),
        "{err:?}"
    );
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_full_sink_holds_the_sender_at_the_inflight_limit() {
    let (sink, mut samples) = echo::channel(spec(), 4);
    let server = echo::GrpcServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let client = Arc::new(
        GrpcClient::connect(common::channel_to(endpoint).await, &spec(), 8)
            .await
            .unwrap(),
    );
    let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
    let sender = tokio::spawn({
        let client = client.clone();
        async move {
            for i in 0..40 {
                client.send(sample(i)).await.unwrap();
                let _ = done_tx.send(i);
            }
        }
    });
    // Nobody consumes: the sink holds 4, the client may have 8 more in
    // flight, so at most 12 sends complete and then the sender waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut completed = 0;
    while done.try_recv().is_ok() {
        completed += 1;
    }
    assert!(
        completed <= 12,
        "{completed} sends completed past the in-flight limit"
    );
    assert!(!sender.is_finished());
    // Consuming releases everything.
    for i in 0..40 {
        assert_eq!(samples.recv().await.unwrap().data, sample(i));
    }
    sender.await.unwrap();
    client.wait().await.unwrap();
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_mid_stream_closes_the_client_and_keeps_every_acked_sample() {
    let (sink, mut samples) = echo::channel(spec(), 1024);
    let server = echo::GrpcServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let client = GrpcClient::connect(common::channel_to(endpoint).await, &spec(), 16)
        .await
        .unwrap();
    for i in 0..100 {
        client.send(sample(i)).await.unwrap();
    }
    client.wait().await.unwrap();
    server.shutdown().await;
    let err = async {
        for i in 100..10_000 {
            client.send(sample(i)).await?;
        }
        client.wait().await
    }
    .await
    .unwrap_err();
    assert!(
        matches!(&err, EchoClientError::ConnectionClosed { .. }),
        "{err:?}"
    );
    let acked = client.acknowledged();
    let mut delivered = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), samples.recv()).await {
        delivered += 1;
    }
    assert!(
        delivered >= acked,
        "{acked} acknowledged but only {delivered} delivered"
    );
}

#[test]
fn blocking_clients_over_both_transports() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sink, mut samples) = echo::channel(spec(), 1024);
    let tcp = echo::TcpServer::new(spec(), sink.clone(), TcpTransport::localhost());
    let grpc = echo::GrpcServer::new(spec(), sink, TcpTransport::localhost());
    let tcp_endpoint = runtime.block_on(tcp.start()).unwrap();
    let grpc_endpoint = runtime.block_on(grpc.start()).unwrap();

    let client = echo::blocking::TcpClient::connect(&tcp_endpoint, &spec(), 8).unwrap();
    for i in 0..100 {
        client.send(sample(i)).unwrap();
    }
    client.wait().unwrap();
    client.close();
    client.close();
    let client = echo::blocking::GrpcClient::connect(&grpc_endpoint, &spec(), 8).unwrap();
    for i in 100..200 {
        client.send(sample(i)).unwrap();
    }
    client.wait().unwrap();
    assert_eq!(client.acknowledged(), 100);
    client.close();
    for i in 0..200 {
        assert_eq!(runtime.block_on(samples.recv()).unwrap().data, sample(i));
    }
    runtime.block_on(async {
        tcp.shutdown().await;
        grpc.shutdown().await;
    });
}

/// A service given a spec of empty samples (served on a router of the
/// user's, where no server checks the spec before it listens) refuses
/// every push by name instead of taking samples it cannot tell apart.
#[tokio::test]
async fn a_service_of_empty_samples_refuses_pushes() {
    let empty: echo::Spec = "float32[4,0]".parse().unwrap();
    let (sink, _samples) = echo::channel(empty.clone(), 8);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(echo::GrpcService::new(empty.clone(), sink).into_server())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = common::channel_to(rpcplugin::Endpoint::tcp(addr)).await;
    let err = GrpcClient::connect(channel, &empty, 8).await.unwrap_err();
    let EchoClientError::ConnectionClosed {
        reason: echo::CloseReason::Refused {
            call: "Push",
            source,
        },
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(source.code(), tonic::Code::FailedPrecondition, "{source}");
    assert!(source.message().contains("empty samples"), "{source}");
}
