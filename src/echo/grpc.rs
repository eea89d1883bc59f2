//! echo sample streams over gRPC, server side: `echo.v1.SampleStream`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{EchoError, Sample, Sink, SinkError, Spec, Transport};
use crate::proto::echo::sample_stream_server::{SampleStream, SampleStreamServer};
use crate::proto::echo::{Ack, GetSpecRequest, PushRequest};
use crate::{Endpoint, MAX_MESSAGE_SIZE};

/// Most bytes of samples a client packs into one message, or one sample
/// when that is larger (the contract of `echo.v1.PushRequest`): small
/// samples travel many to a message (grpcio manages only a few thousand
/// messages a second here), large ones one to a message.
pub(crate) const MESSAGE_BYTES: usize = 256 * 1024;

/// Room in a message for the spec and protobuf framing beyond the samples.
const MESSAGE_SLACK: usize = 64 * 1024;

/// How long calls may go on once the server stops: acknowledged samples
/// are in the sink already; this only lets the last acks out. Then the
/// connections are cut, idle or not reading or not.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The largest message the server reads for samples of `payload` bytes:
/// what a client may pack, plus framing. A larger one is refused from its
/// length prefix, before it is buffered (`OUT_OF_RANGE`).
fn message_limit(payload: u64) -> usize {
    let payload = usize::try_from(payload).unwrap_or(usize::MAX);
    let samples = (MESSAGE_BYTES / payload.max(1)).max(1);
    // Each sample costs a tag and a length varint: at most 11 bytes.
    payload
        .max(MESSAGE_BYTES)
        .saturating_add(samples * 11)
        .saturating_add(MESSAGE_SLACK)
        .min(MAX_MESSAGE_SIZE)
}

/// Acks queued towards a client: acks are cumulative, so a slow reader
/// only needs the latest; a few smooth bursts.
const ACK_QUEUE: usize = 4;

/// HTTP/2 windows for bulk sample transfer: large enough that a
/// multi-megabyte sample, or many small ones, flow without waiting for
/// WINDOW_UPDATE frames.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;

/// Largest HTTP/2 frame the server accepts (what clients may send): with
/// h2's default of 16 KiB a 1 MiB sample travels in 64 DATA frames; 1 MiB
/// frames cut that per-frame work for large samples.
const MAX_FRAME: u32 = 1 << 20;

/// echo sample streams over gRPC, on any socket transport of this crate
/// (TCP or unix, with TLS when served inside a plugin with AutoMTLS).
///
/// [`start`](Transport::start) serves it on its own listener;
/// [`service`](Self::service) gives the tonic service to serve beside
/// others, e.g. in a plugin's [`ServeConfig`](crate::ServeConfig).
#[derive(Debug)]
pub struct GrpcTransport<T, S> {
    service: Service<S>,
    listener: T,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The `SampleStream` service.
#[derive(Debug, Clone)]
pub struct Service<S> {
    spec: Spec,
    sink: S,
    stop: watch::Sender<bool>,
}

impl<T: crate::Transport + 'static, S: Sink + Clone> GrpcTransport<T, S> {
    /// Serves `spec` on `listener`, delivering into `sink`.
    pub fn new(spec: Spec, sink: S, listener: T) -> Self {
        GrpcTransport {
            service: Service {
                spec,
                sink,
                stop: watch::channel(false).0,
            },
            listener,
            server: Mutex::new(None),
        }
    }
}

impl<S: Sink + Clone> Service<S> {
    /// The service alone, for serving beside others.
    pub fn new(spec: Spec, sink: S) -> Self {
        Service {
            spec,
            sink,
            stop: watch::channel(false).0,
        }
    }

    /// The tonic server, reading messages up to what a client may pack
    /// for this spec (at most 256 KiB of samples, or one sample when
    /// larger), so that a stream cannot make it buffer more.
    pub fn into_server(self) -> SampleStreamServer<Self> {
        let limit = message_limit(self.spec.payload_size());
        SampleStreamServer::new(self)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// Ends every stream: samples already acknowledged have reached the
    /// sink; clients get `UNAVAILABLE`.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

impl<T: crate::Transport + 'static, S: Sink + Clone> GrpcTransport<T, S> {
    /// The tonic service, to serve beside other services.
    pub fn service(&self) -> SampleStreamServer<Service<S>> {
        self.service.clone().into_server()
    }
}

impl<T: crate::Transport + 'static, S: Sink + Clone> Transport for GrpcTransport<T, S> {
    async fn start(&self) -> Result<Endpoint, EchoError> {
        if self.server.lock().expect("server lock").is_some() {
            return Err(EchoError::AlreadyStarted);
        }
        super::tcp::check_not_empty(&self.service.spec)?;
        let (endpoint, incoming) = self.listener.listen().await?;
        let mut stopped = self.service.stop.subscribe();
        let router = tonic::transport::Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_frame_size(MAX_FRAME)
            .add_service(self.service());
        let stop = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        let server = crate::server::serve_draining(router, incoming, stop, STOP_GRACE);
        let task = tokio::spawn(async move {
            if let Err(err) = server.await {
                tracing::warn!(%err, "the sample server failed");
            }
        });
        *self.server.lock().expect("server lock") = Some(task);
        Ok(endpoint)
    }

    async fn shutdown(&self) {
        self.service.stop();
        let task = self.server.lock().expect("server lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        if let Err(err) = self.listener.close().await {
            tracing::warn!(%err, "closing the sample listener failed");
        }
    }
}

type AckStream = Pin<Box<dyn Stream<Item = Result<Ack, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Sink + Clone> SampleStream for Service<S> {
    async fn get_spec(
        &self,
        _: Request<GetSpecRequest>,
    ) -> Result<Response<crate::proto::echo::Spec>, Status> {
        Ok(Response::new(self.spec.to_proto()))
    }

    type PushStream = AckStream;

    async fn push(
        &self,
        request: Request<Streaming<PushRequest>>,
    ) -> Result<Response<AckStream>, Status> {
        if *self.stop.borrow() {
            return Err(Status::unavailable("the sample server is shutting down"));
        }
        let mut requests = request.into_inner();
        let first = requests
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("the stream ended before its spec"))?;
        let theirs = first.spec.as_ref().ok_or_else(|| {
            Status::invalid_argument("the first message must carry the client's spec")
        })?;
        let theirs =
            Spec::from_proto(theirs).map_err(|err| Status::invalid_argument(err.to_string()))?;
        self.spec
            .check(&theirs)
            .map_err(|err| Status::failed_precondition(err.to_string()))?;

        let (tx, rx) = mpsc::channel(ACK_QUEUE);
        let (sink, payload, mut stop) = (
            self.sink.clone(),
            self.spec.payload_size(),
            self.stop.subscribe(),
        );
        tokio::spawn(async move {
            let mut delivered = 0u64;
            let mut message = Some(first);
            loop {
                if let Some(request) = message.take() {
                    let delivering = deliver(&sink, &request.samples, payload, &mut delivered, &tx);
                    // Biased: a sample that can go in goes in, and its
                    // ack out, even when shutdown has begun.
                    let answer = tokio::select! {
                        biased;
                        delivered = delivering => delivered,
                        // A full sink must not hold up shutdown.
                        _ = stop.wait_for(|s| *s) => Err(shutting_down()),
                    };
                    let answer = answer.map(|()| Ack { delivered });
                    let failed = answer.is_err();
                    // A client that reads no acks must not hold it up either.
                    let sent = tokio::select! {
                        biased;
                        sent = tx.send(answer) => sent.is_ok(),
                        _ = stop.wait_for(|s| *s) => false,
                    };
                    if failed || !sent {
                        return;
                    }
                }
                let next = tokio::select! {
                    _ = stop.wait_for(|s| *s) => None,
                    next = requests.next() => Some(next),
                };
                let Some(next) = next else {
                    let _ = tx.try_send(Err(shutting_down()));
                    return;
                };
                match next {
                    Some(Ok(request)) => message = Some(request),
                    // The client closed its side: the stream is done.
                    None => return,
                    Some(Err(status)) => {
                        tracing::debug!(%status, "sample stream failed");
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

fn shutting_down() -> Status {
    Status::unavailable("the sample server is shutting down")
}

/// Pushes a message's samples into the sink, counting them. When the sink
/// is full, acknowledges what it took so far before waiting, so that the
/// client's credits come back as soon as samples are delivered.
async fn deliver<S: Sink>(
    sink: &S,
    samples: &[bytes::Bytes],
    payload: u64,
    delivered: &mut u64,
    acks: &mpsc::Sender<Result<Ack, Status>>,
) -> Result<(), Status> {
    for (i, data) in samples.iter().enumerate() {
        if data.len() as u64 != payload {
            return Err(Status::invalid_argument(format!(
                "sample {} is {} bytes; the spec's payload is {payload} bytes",
                *delivered + i as u64,
                data.len()
            )));
        }
    }
    for data in samples {
        let sample = Sample {
            stream: 0,
            data: data.clone(),
        };
        let mut push = std::pin::pin!(sink.push(sample));
        let pushed = match std::future::poll_fn(|cx| Poll::Ready(push.as_mut().poll(cx))).await {
            Poll::Ready(pushed) => pushed,
            Poll::Pending => {
                // Acks are cumulative: a full queue only means a later one
                // will carry this count.
                let _ = acks.try_send(Ok(Ack {
                    delivered: *delivered,
                }));
                push.await
            }
        };
        match pushed {
            Ok(()) => *delivered += 1,
            Err(SinkError::Closed) => return Err(Status::unavailable("the sample sink is closed")),
            Err(err) => return Err(Status::invalid_argument(err.to_string())),
        }
    }
    Ok(())
}
