//! The gRPC sample transport frames `Push` by hand (so that large samples
//! are not copied); these tests pin its wire to standard gRPC by putting
//! tonic's own codec on the other side: our client into a plain tonic
//! `SampleStream` server, tonic's generated client into our server, with
//! small (packed), medium and large samples, and a push refused from the
//! start (a trailers-only response).

use std::pin::Pin;

use bytes::Bytes;
use rpcplugin::MAX_MESSAGE_SIZE;
use rpcplugin::echo::{self, EchoClientError, GrpcClient, SampleServer};
use rpcplugin::proto::echo::sample_stream_client::SampleStreamClient;
use rpcplugin::proto::echo::sample_stream_server::{SampleStream, SampleStreamServer};
use rpcplugin::proto::echo::{self as proto, Ack, GetSpecRequest, PushRequest};
use rpcplugin::transport::TcpTransport;
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

/// Sample `i` of `size` bytes: every byte depends on both.
fn sample(size: usize, i: u32) -> Bytes {
    (0..size)
        .map(|j| (j as u32).wrapping_mul(31).wrapping_add(i * 7) as u8)
        .collect()
}

/// The wire form of the spec `uint8[size]`.
fn wire_spec(size: usize) -> proto::Spec {
    proto::Spec {
        leaves: vec![proto::Leaf {
            dtype: "uint8".into(),
            shape: vec![size as u32],
            path: String::new(),
        }],
    }
}

/// How [`Plain`] answers a push.
#[derive(Clone, Copy, PartialEq)]
enum Acking {
    /// Acks what each message delivered.
    Honest,
    /// Refuses every push.
    Refuse,
    /// Acks `u64::MAX` samples once a message carries samples: a server
    /// that is not acknowledging what it received.
    Overack,
}

/// A `SampleStream` on tonic's codec alone: checks nothing but whether it
/// refuses every push, acks each message ([`Acking`]), hands the samples on.
struct Plain {
    spec: proto::Spec,
    acking: Acking,
    samples: mpsc::UnboundedSender<Bytes>,
}

type Acks = Pin<Box<dyn Stream<Item = Result<Ack, Status>> + Send>>;

#[tonic::async_trait]
impl SampleStream for Plain {
    async fn get_spec(&self, _: Request<GetSpecRequest>) -> Result<Response<proto::Spec>, Status> {
        Ok(Response::new(self.spec.clone()))
    }

    type PushStream = Acks;

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<Acks>, Status> {
        if self.acking == Acking::Refuse {
            return Err(Status::failed_precondition("leaf 0 differs (refused)"));
        }
        let (samples, acking) = (self.samples.clone(), self.acking);
        let mut delivered = 0u64;
        let acks = request.into_inner().map(move |message| {
            let message = message?;
            for data in message.samples {
                delivered += 1;
                samples.send(data).unwrap();
            }
            match acking {
                Acking::Overack if delivered > 0 => Ok(Ack {
                    delivered: u64::MAX,
                }),
                _ => Ok(Ack { delivered }),
            }
        });
        Ok(Response::new(Box::pin(acks)))
    }
}

/// Serves `Plain` on a local port; its address and what it receives.
async fn plain_server(size: usize, acking: Acking) -> (String, mpsc::UnboundedReceiver<Bytes>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let service = SampleStreamServer::new(Plain {
        spec: wire_spec(size),
        acking,
        samples: tx,
    })
    .max_decoding_message_size(MAX_MESSAGE_SIZE);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    (format!("http://{addr}"), rx)
}

async fn channel(uri: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(uri)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_streams_into_a_plain_tonic_server() {
    // Packed into one buffer; each its own chunk; larger than h2's frames.
    for (size, count) in [(100, 3000u32), (64 << 10, 300), (3 << 20, 12)] {
        let spec: echo::Spec = format!("uint8[{size}]").parse().unwrap();
        let (uri, mut received) = plain_server(size, Acking::Honest).await;
        let client = GrpcClient::connect(channel(uri).await, &spec, 8)
            .await
            .unwrap();
        for i in 0..count {
            client.send(sample(size, i)).await.unwrap();
        }
        client.wait().await.unwrap();
        assert_eq!(client.acknowledged(), u64::from(count));
        client.close().await;
        for i in 0..count {
            let got = received.recv().await.unwrap();
            assert!(got == sample(size, i), "{size} bytes: sample {i} differs");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_refused_from_the_start_closes_the_client_with_the_status() {
    let spec: echo::Spec = "uint8[8]".parse().unwrap();
    let (uri, _received) = plain_server(8, Acking::Refuse).await;
    let err = GrpcClient::connect(channel(uri).await, &spec, 8)
        .await
        .unwrap_err();
    let EchoClientError::ConnectionClosed {
        reason: echo::CloseReason::Refused { call: "Push", .. },
    } = &err
    else {
        panic!("{err:?}");
    };
    let reason = rpcplugin::log::Chain(&err).to_string();
    assert!(
        // tonic's words for FAILED_PRECONDITION, and the server's message.
        reason.contains("not in a state required") && reason.contains("leaf 0 differs (refused)"),
        "{reason}"
    );
}

/// A server whose cumulative ack claims more samples than were sent (here
/// `u64::MAX`) ends the stream with `TooManyAcks`: before, the ack task
/// panicked turning it into credits (tokio's semaphore limit), and `wait`
/// hung until the progress timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_acking_more_than_was_sent_ends_the_stream() {
    let spec: echo::Spec = "uint8[8]".parse().unwrap();
    let (uri, _received) = plain_server(8, Acking::Overack).await;
    let client = GrpcClient::connect(channel(uri).await, &spec, 8)
        .await
        .unwrap();
    client.send(sample(8, 0)).await.unwrap();
    let waited = tokio::time::timeout(std::time::Duration::from_secs(10), client.wait()).await;
    let err = waited.expect("wait ends at once").unwrap_err();
    let EchoClientError::ConnectionClosed {
        reason: echo::CloseReason::TooManyAcks { acknowledged, sent },
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*acknowledged, *sent), (u64::MAX, 1));
    assert_eq!(client.acknowledged(), 0, "no ack of it is counted");
    let text = rpcplugin::log::Chain(&err).to_string();
    assert!(
        text.contains(&format!(
            "acknowledged {} samples, but only 1 were sent",
            u64::MAX
        )),
        "{text}"
    );
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tonic_client_streams_into_our_server() {
    for (size, per_message, messages) in [(100, 500, 6u32), (64 << 10, 4, 40), (3 << 20, 1, 8)] {
        let spec: echo::Spec = format!("uint8[{size}]").parse().unwrap();
        let (sink, mut received) = echo::channel(spec.clone(), 4096);
        let server = echo::GrpcServer::new(spec.clone(), sink, TcpTransport::localhost());
        let endpoint = server.start().await.unwrap();
        let mut stub = SampleStreamClient::new(channel(format!("http://{endpoint}")).await)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let mut requests = vec![PushRequest {
            spec: Some(wire_spec(size)),
            samples: vec![],
        }];
        requests.extend((0..messages).map(|m| {
            PushRequest {
                spec: None,
                samples: (0..per_message)
                    .map(|k| sample(size, m * per_message + k))
                    .collect(),
            }
        }));
        let mut acks = stub
            .push(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let mut last = 0;
        while let Some(ack) = acks.message().await.unwrap() {
            last = ack.delivered;
        }
        assert_eq!(last, u64::from(messages * per_message));
        for i in 0..messages * per_message {
            let got = received.recv().await.unwrap();
            assert!(
                got.data == sample(size, i),
                "{size} bytes: sample {i} differs"
            );
        }
        server.shutdown().await;
    }
}
