//! The TCP v1 client's `send` dropped part way (a `tokio::time::timeout`
//! around it, a `select!`): the stream never carries a sample written after
//! half of one. (The gRPC client's `send` only waits for a credit, and its
//! queue has a slot for every credit, so a dropped send sent nothing.)

use std::time::Duration;

use bytes::Bytes;
use rpcplugin::echo::{self, EchoClientError, SampleServer};
use rpcplugin::transport::TcpTransport;

/// 1 MiB samples: a few fill the loopback socket buffers.
const SIZE: usize = 1 << 20;

fn spec() -> echo::Spec {
    format!("uint8[{SIZE}]").parse().unwrap()
}

/// Sample `i`: every byte `i`, so that a sample made of two halves shows.
fn sample(i: u8) -> Bytes {
    Bytes::from(vec![i; SIZE])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_send_dropped_mid_sample_ends_the_stream_instead_of_misframing_it() {
    // A sink that holds one sample and is not read: the server stops
    // reading, and the socket buffers fill.
    let (sink, mut samples) = echo::channel(spec(), 1);
    let server = echo::TcpServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let client = echo::TcpClient::connect(&endpoint, &spec(), 256)
        .await
        .unwrap();

    let mut sent = 0u8;
    let cancelled = loop {
        assert!(sent < 200, "the socket never filled");
        let send = client.send(sample(sent));
        match tokio::time::timeout(Duration::from_millis(300), send).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(err)) => panic!("send {sent} failed: {err}"),
            Err(_) => break sent,
        }
    };

    // The next send must not write a whole sample after a partial one.
    let err = client.send(sample(cancelled + 1)).await.unwrap_err();
    match &err {
        EchoClientError::ConnectionClosed {
            reason: echo::CloseReason::SendCancelled,
        } => {}
        other => panic!("expected a closed stream, got {other:?}"),
    }
    assert!(client.wait().await.is_err(), "wait on a failed stream");
    client.close().await;

    // What the server delivers is whole samples, in order, each one of
    // ours: never a mix of the cancelled one and a later one.
    server.shutdown().await;
    drop(server);
    let mut delivered = 0u8;
    while let Some(got) = samples.recv().await {
        assert_eq!(got.data.len(), SIZE);
        assert!(
            got.data.iter().all(|b| *b == delivered),
            "sample {delivered} is not the one sent"
        );
        delivered += 1;
    }
    assert!(
        delivered <= cancelled,
        "{delivered} delivered, {cancelled} sent whole"
    );
}

/// A `TcpClient` dropped without `close` closes its connection: the server
/// sees the end of the stream, instead of a connection held open by the
/// task that read acks until the server itself gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_tcp_client_closes_its_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let spec: echo::Spec = "uint8[4]".parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint: rpcplugin::Endpoint = listener.local_addr().unwrap().to_string().parse().unwrap();
    let header = spec.to_wire();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.write_all(&header).await.unwrap();
        // One sample, acknowledged; then wait for the client to go.
        let mut sample = [0u8; 4];
        socket.read_exact(&mut sample).await.unwrap();
        socket.write_all(&[0x01]).await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut rest))
            .await
            .map(|read| read.map(|_| rest.len()))
    });
    let client = echo::TcpClient::connect(&endpoint, &spec, 8).await.unwrap();
    client
        .send(Bytes::from_static(&[1, 2, 3, 4]))
        .await
        .unwrap();
    client.wait().await.unwrap();
    drop(client);
    let ended = server.await.unwrap();
    assert!(
        matches!(ended, Ok(Ok(0))),
        "the server should see the connection end within 5 s of the drop: {ended:?}"
    );
}
