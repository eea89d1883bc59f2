//! Raw gRPC and HTTP/2 for the gRPC transport's bad-input tests: stubs
//! that skip our client's checks, hand-made frames, a client that never
//! reads its acks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use prost::Message as _;
use rpcplugin::echo::Sample;
use rpcplugin::proto::echo::sample_stream_client::SampleStreamClient;
use rpcplugin::proto::echo::{self as proto, PushRequest};
use rpcplugin::{Endpoint, MAX_MESSAGE_SIZE};
use tokio::sync::mpsc;
use tonic::Status;

use super::within;

/// The HTTP/2 client preface and an empty SETTINGS frame: a handshake
/// that opens no stream.
pub const HELLO: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// A spec as the wire carries it, from `dtype[dims]` pairs.
pub fn proto_spec(leaves: &[(&str, &[u32])]) -> proto::Spec {
    proto::Spec {
        leaves: leaves
            .iter()
            .map(|(dtype, shape)| proto::Leaf {
                dtype: (*dtype).to_owned(),
                shape: shape.to_vec(),
                path: String::new(),
            })
            .collect(),
    }
}

pub fn message(spec: Option<proto::Spec>, samples: Vec<Bytes>) -> PushRequest {
    PushRequest { spec, samples }
}

/// A raw stub, with no limits of its own on message sizes.
pub async fn stub(endpoint: &Endpoint) -> SampleStreamClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    SampleStreamClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// Pushes `messages` as one stream; the status it ends with (OK for a
/// stream the server accepted and finished).
pub async fn push_all(endpoint: &Endpoint, messages: Vec<PushRequest>) -> Status {
    let mut stub = stub(endpoint).await;
    let acks = within("push", stub.push(tokio_stream::iter(messages))).await;
    let mut acks = match acks {
        Ok(acks) => acks.into_inner(),
        Err(status) => return status,
    };
    loop {
        match within("an ack", acks.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => return Status::ok(""),
            Err(status) => return status,
        }
    }
}

/// Collects what the sink receives, until the server is gone.
pub fn collect(mut rx: mpsc::Receiver<Sample>) -> tokio::task::JoinHandle<Vec<Bytes>> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(s) = rx.recv().await {
            got.push(s.data);
        }
        got
    })
}

/// The error code of the first GOAWAY frame among HTTP/2 `frames`.
pub fn goaway(mut frames: &[u8]) -> Option<u32> {
    while frames.len() >= 9 {
        let len = u32::from_be_bytes([0, frames[0], frames[1], frames[2]]) as usize;
        let body = frames.get(9..9 + len)?;
        if frames[3] == 0x7 {
            return Some(u32::from_be_bytes(body.get(4..8)?.try_into().unwrap()));
        }
        frames = &frames[9 + len..];
    }
    None
}

/// The request line of a raw `Push`.
pub fn push_request(endpoint: &Endpoint) -> http::Request<()> {
    http::Request::post(format!("http://{endpoint}/echo.v1.SampleStream/Push"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// A message in gRPC's length-prefixed framing.
pub fn frame(message: &PushRequest) -> Bytes {
    let body = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    framed.into()
}

/// A raw HTTP/2 client that pushes `first`, then `each` again and again
/// as fast as the server's flow control lets it, and never reads an ack.
pub struct NonReader {
    sent: Arc<AtomicU64>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl NonReader {
    pub async fn start(
        endpoint: &Endpoint,
        first: &PushRequest,
        each: &PushRequest,
        limit: u64,
    ) -> NonReader {
        let tcp = tokio::net::TcpStream::connect(endpoint.to_string())
            .await
            .unwrap();
        // h2 would close the connection itself, unread acks being many
        // small frames; a client of another make may not.
        let (mut h2, conn) = h2::client::Builder::new()
            .data_frame_budget(1 << 30)
            .handshake(tcp)
            .await
            .unwrap();
        let driver = tokio::spawn(async move { drop(conn.await) });
        let (unread, mut stream) = h2.send_request(push_request(endpoint), false).unwrap();
        let sent = Arc::new(AtomicU64::new(0));
        let counted = sent.clone();
        let (mut next, each) = (frame(first), frame(each));
        let writer = tokio::spawn(async move {
            let _unread = (unread, h2);
            while counted.load(Ordering::Relaxed) < limit {
                stream.reserve_capacity(next.len());
                while stream.capacity() < next.len() {
                    let more = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await;
                    if !matches!(more, Some(Ok(_))) {
                        return;
                    }
                }
                if stream.send_data(next.clone(), false).is_err() {
                    return;
                }
                counted.fetch_add(1, Ordering::Relaxed);
                next = each.clone();
            }
        });
        NonReader {
            sent,
            tasks: [writer, driver],
        }
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Whether its connection is closed.
    pub fn disconnected(&self) -> bool {
        self.tasks[1].is_finished()
    }
}

impl Drop for NonReader {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}
