//! echo sample streams over gRPC, client side, with the API of echo's
//! Python `TcpClient`: connect with the stream's spec, `send` (which waits
//! at the in-flight limit), `wait`, `close`.

use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::grpc::MESSAGE_BYTES;
use super::inflight::Inflight;
use super::{Spec, SpecError};
use crate::MAX_MESSAGE_SIZE;
use crate::proto::echo::sample_stream_client::SampleStreamClient;
use crate::proto::echo::{GetSpecRequest, PushRequest};

/// echo's default number of unacknowledged samples.
pub const DEFAULT_MAX_INFLIGHT: usize = 32;

/// A failure of a sample client.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EchoClientError {
    /// The server's spec is not the client's; names the leaf.
    #[error("the server's spec differs from this client's: {0}")]
    SpecMismatch(#[source] SpecError),
    /// A sample whose size is not the spec's payload size.
    #[error("sample of {actual} bytes, but the spec's payload is {expected} bytes")]
    WrongSize {
        /// The spec's payload size.
        expected: u64,
        /// The sample's size.
        actual: u64,
    },
    /// The stream is closed: by [`GrpcClient::close`], or because the server
    /// went away or refused it (the reason says which).
    #[error("the sample stream is closed: {reason}")]
    ConnectionClosed {
        /// Why.
        reason: String,
    },
}

/// A sample stream to an echo gRPC server.
///
/// ```no_run
/// use rpcplugin::echo::{GrpcClient, Spec};
///
/// # async fn demo(channel: tonic::transport::Channel) -> Result<(), Box<dyn std::error::Error>> {
/// let spec: Spec = "float32[4],float32[1],float64[]".parse()?;
/// let client = GrpcClient::connect(channel, &spec, 32).await?;
/// client.send(vec![0u8; 28].into()).await?;
/// client.wait().await?; // every sample acknowledged
/// client.close().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GrpcClient {
    inflight: Inflight,
    queue: Mutex<Option<mpsc::Sender<Bytes>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl GrpcClient {
    /// Checks the server's spec against `spec` and opens the stream, with
    /// at most `max_inflight` samples unacknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::SpecMismatch`] naming the leaf that differs;
    /// [`EchoClientError::ConnectionClosed`] when the server cannot be
    /// reached or refuses the stream.
    ///
    /// # Panics
    ///
    /// If `max_inflight` is 0.
    pub async fn connect(
        channel: Channel,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        assert!(
            max_inflight > 0,
            "at least one sample must be allowed in flight"
        );
        let closed = |status: tonic::Status| EchoClientError::ConnectionClosed {
            reason: status.to_string(),
        };
        let mut client = SampleStreamClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let theirs = client
            .get_spec(GetSpecRequest {})
            .await
            .map_err(closed)?
            .into_inner();
        let theirs = Spec::from_proto(&theirs).map_err(EchoClientError::SpecMismatch)?;
        theirs.check(spec).map_err(EchoClientError::SpecMismatch)?;

        let (requests, request_rx) = mpsc::channel(2);
        let hello = PushRequest {
            spec: Some(spec.to_proto()),
            samples: Vec::new(),
        };
        requests.send(hello).await.expect("the receiver is here");
        let mut acks = client
            .push(ReceiverStream::new(request_rx))
            .await
            .map_err(closed)?
            .into_inner();

        let (inflight, ack_side) = Inflight::new(spec.payload_size(), max_inflight);
        let reader = tokio::spawn(async move {
            let reason = loop {
                match acks.message().await {
                    Ok(Some(ack)) => ack_side.total(ack.delivered),
                    Ok(None) => break "the server ended the stream".to_owned(),
                    Err(status) => break status.to_string(),
                }
            };
            ack_side.ended(reason);
        });
        let (queue, queue_rx) = mpsc::channel(max_inflight);
        let per_message =
            (MESSAGE_BYTES / spec.payload_size().max(1) as usize).clamp(1, max_inflight);
        let writer = tokio::spawn(write(queue_rx, requests, per_message));
        Ok(GrpcClient {
            inflight,
            queue: Mutex::new(Some(queue)),
            tasks: Mutex::new(vec![reader, writer]),
        })
    }

    /// [`connect`](Self::connect) over a plaintext connection to
    /// `endpoint` (TCP or unix), through this crate's transports.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_endpoint(
        endpoint: &crate::Endpoint,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        let channel = crate::client::open_plugin_channel(endpoint, None)
            .await
            .map_err(|err| EchoClientError::ConnectionClosed {
                reason: err.to_string(),
            })?;
        Self::connect(channel, spec, max_inflight).await
    }

    /// Sends one sample (its leaves' bytes concatenated), waiting while
    /// `max_inflight` samples are unacknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::WrongSize`] for a sample of the wrong size;
    /// [`EchoClientError::ConnectionClosed`] once the stream is closed.
    pub async fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
        let queue = self.queue.lock().expect("queue lock").clone();
        let queue = queue.ok_or_else(|| self.inflight.closed())?;
        self.inflight.reserve(sample.len()).await?;
        queue.send(sample).await.map_err(|_| self.inflight.closed())
    }

    /// Waits until every sample sent so far is acknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::ConnectionClosed`] when the stream ends first
    /// (echo 0.1.1's `wait` hangs forever then).
    pub async fn wait(&self) -> Result<(), EchoClientError> {
        self.inflight.wait().await
    }

    /// Samples acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.inflight.acknowledged()
    }

    /// Ends the stream after the samples already sent, and waits for the
    /// server to finish it. Idempotent.
    pub async fn close(&self) {
        self.inflight.fail("closed by the client");
        drop(self.queue.lock().expect("queue lock").take());
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().expect("tasks lock").drain(..).collect();
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for GrpcClient {
    fn drop(&mut self) {
        for task in self.tasks.get_mut().expect("tasks lock").drain(..) {
            task.abort();
        }
    }
}

/// Packs whatever samples are queued (up to `per_message`) into one
/// message: an idle client sends each sample at once, a busy one batches.
async fn write(
    mut queue: mpsc::Receiver<Bytes>,
    requests: mpsc::Sender<PushRequest>,
    per_message: usize,
) {
    while let Some(first) = queue.recv().await {
        let mut samples = vec![first];
        while samples.len() < per_message {
            match queue.try_recv() {
                Ok(sample) => samples.push(sample),
                Err(_) => break,
            }
        }
        let request = PushRequest {
            spec: None,
            samples,
        };
        if requests.send(request).await.is_err() {
            return;
        }
    }
}
