//! The TCP v1 client's `send` dropped part way (a `tokio::time::timeout`
//! around it, a `select!`): the stream never carries part of a sample, and
//! goes on. (Both clients hand samples to a writer that owns the
//! connection, so a dropped send either queued its whole sample or nothing.)

use std::time::Duration;

use bytes::Bytes;
use rpcplugin::echo::{self, SampleServer};
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
async fn a_dropped_tcp_send_sends_nothing_and_the_stream_goes_on() {
    // A sink that holds one sample and is not read yet: the server stops
    // reading, the socket buffers fill, and sends wait for credits.
    let (sink, mut samples) = echo::channel(spec(), 1);
    let server = echo::TcpServer::new(spec(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let client = echo::TcpClient::connect(&endpoint, &spec(), 8)
        .await
        .unwrap();

    let mut sent = 0u8;
    let cancelled = loop {
        assert!(sent < 100, "sends never had to wait");
        let send = client.send(sample(sent));
        match tokio::time::timeout(Duration::from_millis(300), send).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(err)) => panic!("send {sent} failed: {err}"),
            Err(_) => break sent,
        }
    };

    // Now the consumer reads; the stream goes on after the dropped send,
    // which sent nothing.
    let consumer = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(sample) = samples.recv().await {
            assert_eq!(sample.data.len(), SIZE);
            let first = sample.data[0];
            assert!(
                sample.data.iter().all(|b| *b == first),
                "sample {} is made of several samples",
                got.len()
            );
            got.push(first);
        }
        got
    });
    for i in 1..=3 {
        client.send(sample(cancelled + i)).await.unwrap();
    }
    client.wait().await.unwrap();
    client.close().await;
    server.shutdown().await;
    drop(server);
    let got = consumer.await.unwrap();
    let expected: Vec<u8> = (0..cancelled)
        .chain(cancelled + 1..=cancelled + 3)
        .collect();
    assert_eq!(
        got, expected,
        "every sample sent whole, in order, the dropped one never"
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
