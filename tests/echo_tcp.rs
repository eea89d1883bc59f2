//! echo's TCP protocol v1 on our server, from a raw socket: the spec header
//! first, one `0x01` per sample delivered, a partial sample never delivered,
//! over TCP and unix sockets.

use std::time::Duration;

use rpcplugin::echo::{self, SampleServer};
use rpcplugin::transport::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn exercise(listener: impl rpcplugin::Transport + 'static) {
    let spec: echo::Spec = "uint8[3],int16[]".parse().unwrap();
    let (sink, mut samples) = echo::channel(spec.clone(), 16);
    let server = echo::TcpServer::new(spec.clone(), sink, listener);
    let endpoint = server.start().await.unwrap();
    assert!(matches!(
        server.start().await,
        Err(echo::EchoError::AlreadyStarted)
    ));

    let mut conn = rpcplugin::connect(&endpoint, Duration::from_secs(5))
        .await
        .unwrap();
    let mut header = vec![0u8; spec.to_wire().len()];
    conn.read_exact(&mut header).await.unwrap();
    assert_eq!(
        header,
        spec.to_wire(),
        "the server speaks first, with the spec"
    );

    // Three samples in one write, then half of a fourth.
    let payload: Vec<u8> = (0..15).collect();
    conn.write_all(&payload).await.unwrap();
    conn.write_all(&[100, 101]).await.unwrap();
    let mut acks = [0u8; 3];
    conn.read_exact(&mut acks).await.unwrap();
    assert_eq!(acks, [1, 1, 1], "one ack per delivered sample");
    for i in 0..3u8 {
        let sample = samples.recv().await.unwrap();
        assert_eq!(
            sample.data.as_ref(),
            &[5 * i, 5 * i + 1, 5 * i + 2, 5 * i + 3, 5 * i + 4]
        );
    }
    // The client goes away inside the fourth sample: it is dropped.
    drop(conn);
    server.shutdown().await;
    server.shutdown().await;
    // With the server gone, its sink is too: the receiver ends, and the
    // partial fourth sample was never delivered.
    drop(server);
    assert_eq!(samples.recv().await, None, "a partial sample was delivered");
}

#[tokio::test]
async fn protocol_v1_over_tcp() {
    exercise(TcpTransport::localhost()).await;
}

#[cfg(unix)]
#[tokio::test]
async fn protocol_v1_over_unix() {
    let dir = tempfile::tempdir().unwrap();
    exercise(rpcplugin::transport::UnixTransport::in_dir(dir.path())).await;
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "socket removed on shutdown"
    );
}

#[tokio::test]
async fn our_tcp_client_against_our_tcp_server() {
    let spec: echo::Spec = "uint8[3],int16[]".parse().unwrap();
    let (sink, mut samples) = echo::channel(spec.clone(), 8);
    let server = echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();

    // A client with another spec is refused, naming the leaf.
    let other: echo::Spec = "uint8[4],int16[]".parse().unwrap();
    let err = echo::TcpClient::connect(&endpoint, &other, 4)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("leaf 0"), "{err}");

    let client = echo::TcpClient::connect(&endpoint, &spec, 4).await.unwrap();
    let consumer = tokio::spawn(async move {
        for i in 0..500u16 {
            let got = samples.recv().await.unwrap();
            assert_eq!(
                got.data.as_ref(),
                &[i as u8, 1, 2, (i & 0xff) as u8, (i >> 8) as u8],
                "{i}"
            );
        }
        samples
    });
    for i in 0..500u16 {
        let mut data = vec![i as u8, 1, 2];
        data.extend_from_slice(&i.to_le_bytes());
        client.send(data.into()).await.unwrap();
    }
    client.wait().await.unwrap();
    assert_eq!(client.acknowledged(), 500);
    assert!(matches!(
        client.send(vec![0; 2].into()).await,
        Err(echo::EchoClientError::WrongSize {
            expected: 5,
            actual: 2
        })
    ));
    let _samples = consumer.await.unwrap();

    // The server goes away: wait() fails instead of hanging (echo 0.1.1).
    client.send(vec![0; 5].into()).await.unwrap();
    server.shutdown().await;
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(err) = client.send(vec![0; 5].into()).await {
                return err;
            }
            if let Err(err) = client.wait().await {
                return err;
            }
        }
    })
    .await
    .expect("a closed-connection error, not a hang");
    assert!(
        matches!(waited, echo::EchoClientError::ConnectionClosed { .. }),
        "{waited:?}"
    );
    client.close().await;
    client.close().await;
}

#[tokio::test]
async fn every_acknowledged_sample_reaches_the_sink_after_a_disconnect() {
    // echo 0.1.1 lost acknowledged samples that were still queued when
    // their client disconnected. Here the sink holds 4 and nobody reads
    // yet; the client sends 10, counts the acks it got, and disconnects.
    let spec: echo::Spec = "uint8[4]".parse().unwrap();
    let (sink, mut samples) = echo::channel(spec.clone(), 4);
    let server = echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let mut conn = rpcplugin::connect(&endpoint, Duration::from_secs(5))
        .await
        .unwrap();
    let mut header = vec![0u8; spec.to_wire().len()];
    conn.read_exact(&mut header).await.unwrap();
    for i in 0..10u8 {
        conn.write_all(&[i; 4]).await.unwrap();
    }
    let mut acks = Vec::new();
    let mut buf = [0u8; 16];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        acks.extend_from_slice(&buf[..n]);
    }
    assert!(acks.iter().all(|b| *b == 1));
    let acked = acks.len();
    assert!(acked >= 4, "the sink had room for 4: {acked} acked");
    drop(conn);

    let mut delivered = Vec::new();
    while let Ok(Some(sample)) =
        tokio::time::timeout(Duration::from_millis(300), samples.recv()).await
    {
        delivered.push(sample.data[0]);
    }
    assert!(
        delivered.len() >= acked,
        "{acked} acknowledged, {} delivered",
        delivered.len()
    );
    assert_eq!(
        delivered,
        (0..delivered.len() as u8).collect::<Vec<_>>(),
        "in order, none lost"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_spec_of_empty_samples_is_refused_at_start() {
    let spec: echo::Spec = "uint8[0],float32[2,0]".parse().unwrap();
    let (sink, _rx) = echo::channel(spec.clone(), 4);
    let tcp = echo::TcpServer::new(
        spec.clone(),
        sink.clone(),
        rpcplugin::transport::TcpTransport::localhost(),
    );
    let err = tcp.start().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "the spec uint8[0],float32[2,0] has empty samples (0 bytes); a sample stream needs at least one byte"
    );
    let grpc = echo::GrpcServer::new(spec, sink, rpcplugin::transport::TcpTransport::localhost());
    assert!(matches!(
        grpc.start().await,
        Err(echo::EchoError::EmptySamples { .. })
    ));
}
