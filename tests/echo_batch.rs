//! Many samples a call (`send_batch`) on both transports and both sockets:
//! every sample reaches the sink whole and in order, each is acknowledged
//! on its own, batches mix with single sends, and a batch that is not
//! whole samples or is larger than the window is refused by name, before
//! anything is sent. The sink takes them as runs (`Sink::push_many`);
//! its bound still holds.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, EchoClientError, GrpcClient, SampleClient, SampleServer, TcpClient};
use rpcplugin::transport::TcpTransport;

const SIZE: usize = 12;
const WINDOW: usize = 64;
const TIMEOUT: Duration = Duration::from_secs(60);

fn spec() -> echo::Spec {
    "uint8[8],float32[]".parse().unwrap()
}

/// Sample `i`: every byte depends on it.
fn sample(i: u32) -> [u8; SIZE] {
    let mut data = [0u8; SIZE];
    data[..4].copy_from_slice(&i.to_le_bytes());
    data[4..8].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
    data[8..].copy_from_slice(&(i as f32).to_le_bytes());
    data
}

/// Samples `from..to` back to back.
fn batch(from: u32, to: u32) -> Bytes {
    let mut data = BytesMut::new();
    for i in from..to {
        data.extend_from_slice(&sample(i));
    }
    data.freeze()
}

/// Streams 5000 samples as batches of 1 to `WINDOW` samples with single
/// sends between them; all acknowledged.
async fn stream<C: SampleClient>(endpoint: &Endpoint) {
    let client = C::connect_to(endpoint, &spec(), WINDOW).await.unwrap();
    let total = 5000u32;
    let (mut next, mut size) = (0u32, 1u32);
    while next < total {
        let end = (next + size).min(total);
        client.send_batch(batch(next, end)).await.unwrap();
        next = end;
        if next < total {
            client
                .send(Bytes::copy_from_slice(&sample(next)))
                .await
                .unwrap();
            next += 1;
        }
        size = (size * 7 + 3) % WINDOW as u32 + 1;
    }
    tokio::time::timeout(TIMEOUT, client.wait())
        .await
        .expect("acks within the timeout")
        .unwrap();
    assert_eq!(client.acknowledged(), u64::from(total));
    client.close().await;
}

/// A server for `spec()` made by `make`, with a consumer checking every
/// sample in order: the server, its endpoint, and the consumer's task,
/// which ends with the count received once the server is gone.
async fn serve<S: SampleServer + 'static>(
    make: impl FnOnce(echo::ChannelSink) -> S,
) -> (S, Endpoint, tokio::task::JoinHandle<u32>) {
    let (sink, mut samples) = echo::channel(spec(), 100);
    let server = make(sink);
    let endpoint = server.start().await.unwrap();
    let consumer = tokio::spawn(async move {
        let mut i = 0u32;
        while let Some(got) = samples.recv().await {
            assert_eq!(got.data.as_ref(), &sample(i)[..], "sample {i}");
            i += 1;
        }
        i
    });
    (server, endpoint, consumer)
}

/// Runs `clients` against a server made by `make`, then checks that the
/// sink received `expected` samples, in order.
async fn served<S: SampleServer + 'static>(
    make: impl FnOnce(echo::ChannelSink) -> S,
    clients: impl AsyncFnOnce(&Endpoint),
    expected: u32,
) {
    let (server, endpoint, consumer) = serve(make).await;
    clients(&endpoint).await;
    server.shutdown().await;
    drop(server);
    let received = tokio::time::timeout(TIMEOUT, consumer)
        .await
        .expect("the consumer ends once the server is gone")
        .unwrap();
    assert_eq!(received, expected);
}

async fn check<C: SampleClient, S: SampleServer + 'static>(
    make: impl FnOnce(echo::ChannelSink) -> S,
) {
    served(make, stream::<C>, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_tcp_v1_on_tcp_and_unix() {
    check::<TcpClient, _>(|sink| echo::TcpServer::new(spec(), sink, TcpTransport::localhost()))
        .await;
    #[cfg(unix)]
    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    check::<TcpClient, _>(|sink| {
        echo::TcpServer::new(
            spec(),
            sink,
            rpcplugin::transport::UnixTransport::in_dir(dir.path()),
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_grpc_on_tcp_and_unix() {
    check::<GrpcClient, _>(|sink| echo::GrpcServer::new(spec(), sink, TcpTransport::localhost()))
        .await;
    #[cfg(unix)]
    let dir = tempfile::tempdir().unwrap();
    #[cfg(unix)]
    check::<GrpcClient, _>(|sink| {
        echo::GrpcServer::new(
            spec(),
            sink,
            rpcplugin::transport::UnixTransport::in_dir(dir.path()),
        )
    })
    .await;
}

/// Refused by name, with nothing sent: the stream goes on afterwards.
async fn refusals<C: SampleClient>(endpoint: &Endpoint) {
    let client = C::connect_to(endpoint, &spec(), WINDOW).await.unwrap();
    let half = batch(0, 2).slice(..SIZE + SIZE / 2);
    match client.send_batch(half).await {
        Err(EchoClientError::PartialBatch { payload, len }) => {
            assert_eq!((payload, len), (SIZE as u64, (SIZE + SIZE / 2) as u64));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.send_batch(Bytes::new()).await,
        Err(EchoClientError::PartialBatch { len: 0, .. })
    ));
    let err = client
        .send_batch(batch(0, WINDOW as u32 + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EchoClientError::BatchTooLarge {
                samples: 65,
                window: 64
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("65 samples"), "{err}");
    // Nothing of those was sent: the next samples are 0, 1, 2.
    client.send_batch(batch(0, 3)).await.unwrap();
    tokio::time::timeout(TIMEOUT, client.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.acknowledged(), 3);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_that_are_not_whole_samples_or_too_large_are_refused() {
    let tcp = |sink| echo::TcpServer::new(spec(), sink, TcpTransport::localhost());
    served(tcp, refusals::<TcpClient>, 3).await;
    let grpc = |sink| echo::GrpcServer::new(spec(), sink, TcpTransport::localhost());
    served(grpc, refusals::<GrpcClient>, 3).await;
}
