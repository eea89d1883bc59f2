//! echo sample streams over gRPC, server side: `echo.v1.SampleStream`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxFuture;
use tonic::server::NamedService;
use tonic::{Request, Response, Status, Streaming};

use super::grpc_wire::PUSH_PATH;
use super::{EchoError, SampleServer, Sink, Spec};
use crate::grpc::MAX_MESSAGE_SIZE;
use crate::proto::echo::sample_stream_server::{
    SERVICE_NAME, SampleStream, SampleStreamServer as TonicServer,
};
use crate::proto::echo::{Ack, GetSpecRequest, PushRequest};
use crate::transport::Endpoint;

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
pub(super) fn message_limit(payload: u64) -> usize {
    let payload = usize::try_from(payload).unwrap_or(usize::MAX);
    let samples = (MESSAGE_BYTES / payload.max(1)).max(1);
    // Each sample costs a tag and a length varint: at most 11 bytes.
    payload
        .max(MESSAGE_BYTES)
        .saturating_add(samples * 11)
        .saturating_add(MESSAGE_SLACK)
        .min(MAX_MESSAGE_SIZE)
}

/// SETTINGS_MAX_FRAME_SIZE for samples up to 1 MiB: with h2's default of
/// 16 KiB a 256 KiB message travels in 16 DATA frames; 1 MiB frames carry
/// a whole message of small samples in one.
const MIN_FRAME: u32 = 1 << 20;

/// The most HTTP/2 allows for SETTINGS_MAX_FRAME_SIZE (RFC 9113 §6.5.2).
const MAX_FRAME: u32 = (1 << 24) - 1;

/// HTTP/2 windows for samples up to 1 MiB: large enough that many small
/// samples flow without waiting for WINDOW_UPDATE frames.
const MIN_STREAM_WINDOW: u32 = 8 << 20;

/// The largest stream window: what one stream may make the server buffer
/// before it reads (twice that for a connection).
const MAX_STREAM_WINDOW: u32 = 64 << 20;

/// Frames of a whole sample that a stream's window holds, at least. h2
/// sends what the window allows, so once the window is used up, samples
/// are split at its edge, and a split sample is gathered (copied) on
/// arrival. Measured here with 4 MiB samples: a window of 2 frames split
/// about 80% of them, 4 frames 12–15%, 8 frames 1–3% (and streamed 10%
/// faster than 4).
const FRAMES_PER_WINDOW: u32 = 8;

/// HTTP/2 settings of the transport's own server for samples of `payload`
/// bytes: frames large enough for a whole sample (our client sends each
/// large sample as a body chunk of its own), so that it reaches the sink
/// as a slice of its frame, uncopied; windows of several such frames.
/// Samples up to 1 MiB get 1 MiB frames and 8 / 16 MiB windows. A frame
/// is buffered whole before it is handed on, so the frame size is raised
/// no further than the spec needs: a peer's frame header claiming more is
/// refused at once (FRAME_SIZE_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Http2Sizes {
    max_frame: u32,
    stream_window: u32,
    connection_window: u32,
}

impl Http2Sizes {
    fn for_payload(payload: u64) -> Self {
        let frame = u32::try_from(payload).unwrap_or(MAX_FRAME);
        let max_frame = frame.clamp(MIN_FRAME, MAX_FRAME);
        let stream_window = max_frame
            .saturating_mul(FRAMES_PER_WINDOW)
            .clamp(MIN_STREAM_WINDOW, MAX_STREAM_WINDOW);
        Http2Sizes {
            max_frame,
            stream_window,
            connection_window: 2 * stream_window,
        }
    }
}

/// echo sample streams over gRPC, on any socket transport of this crate
/// (TCP or unix, with TLS when served inside a plugin with AutoMTLS).
///
/// [`start`](SampleServer::start) serves it on its own listener;
/// [`service`](Self::service) gives the tonic service to serve beside
/// others, e.g. in a plugin's [`ServeConfig`](crate::server::ServeConfig).
#[derive(Debug)]
pub struct GrpcServer<T, S> {
    service: GrpcService<S>,
    listener: T,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    max_connections: usize,
}

/// `Push` streams a [`GrpcService`] serves at once unless told otherwise
/// ([`GrpcService::max_streams`], [`GrpcServer::max_streams`]): twice the
/// connections a server takes ([`DEFAULT_MAX_CONNECTIONS`](super::DEFAULT_MAX_CONNECTIONS)),
/// each client streaming on one. One more is refused at once with
/// `RESOURCE_EXHAUSTED`. A stream held open costs the server about 3.7 KiB
/// before its first message (`cargo bench --features echo --bench
/// echo_half_open`): 50 000 half-open streams on 50 connections took an
/// uncapped server to 179 MiB.
pub const DEFAULT_MAX_STREAMS: usize = 2048;

/// HTTP/2 streams open at once on one connection to a [`GrpcServer`]: a
/// sample client needs two at most (`GetSpec`, then its `Push`; a client
/// that wants more waits for a free one, as HTTP/2 clients do). h2 keeps
/// about 1.4 KiB for every stream a connection ever had open at once, for
/// the connection's life, so this and the connection cap bound what
/// half-open streams can hold: with 1024 (the limit of our other servers),
/// 30 000 half-open streams on 30 connections still held 66 MiB, refused
/// as they were beyond [`DEFAULT_MAX_STREAMS`]; with 64, 50 000 on 782
/// connections 80 MiB (`cargo bench --features echo --bench
/// echo_half_open`).
const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// The `SampleStream` service.
#[derive(Debug, Clone)]
pub struct GrpcService<S> {
    pub(super) spec: Spec,
    pub(super) sink: S,
    pub(super) stop: CancellationToken,
    /// One permit per `Push` stream open.
    pub(super) streams: Arc<Semaphore>,
}

/// The `SampleStream` service as a tower service, to serve in a tonic
/// router: `Push` is served by this crate (without copying large
/// samples), `GetSpec` by tonic.
#[derive(Debug, Clone)]
pub struct SampleStreamServer<S> {
    service: GrpcService<S>,
    tonic: TonicServer<SpecOnly>,
}

/// `GetSpec`, for tonic to serve.
#[derive(Debug)]
struct SpecOnly(crate::proto::echo::Spec);

impl<T: crate::transport::Transport + 'static, S: Sink + Clone> GrpcServer<T, S> {
    /// Serves `spec` on `listener`, delivering into `sink`.
    pub fn new(spec: Spec, sink: S, listener: T) -> Self {
        GrpcServer {
            service: GrpcService::new(spec, sink),
            listener,
            server: Mutex::new(None),
            max_connections: super::DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Serves at most `n` connections at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`](super::DEFAULT_MAX_CONNECTIONS), as the
    /// TCP v1 server); one more is closed as it arrives. With HTTP/2's
    /// limit of 1024 streams per connection, this bounds the streams a
    /// server holds open.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Serves at most `n` `Push` streams at once, over all connections
    /// (default [`DEFAULT_MAX_STREAMS`]); one more is refused with
    /// `RESOURCE_EXHAUSTED` as it arrives.
    #[must_use]
    pub fn max_streams(mut self, n: usize) -> Self {
        self.service = self.service.max_streams(n);
        self
    }
}

impl<S: Sink + Clone> GrpcService<S> {
    /// The service alone, for serving beside others.
    pub fn new(spec: Spec, sink: S) -> Self {
        GrpcService {
            spec,
            sink,
            stop: CancellationToken::new(),
            streams: Arc::new(Semaphore::new(DEFAULT_MAX_STREAMS)),
        }
    }

    /// Serves at most `n` `Push` streams at once, over all connections
    /// (default [`DEFAULT_MAX_STREAMS`]); one more is refused with
    /// `RESOURCE_EXHAUSTED` as it arrives. Set it before serving: clones
    /// made earlier keep the limit they had.
    #[must_use]
    pub fn max_streams(mut self, n: usize) -> Self {
        self.streams = Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS)));
        self
    }

    /// The service to add to a tonic router. It reads messages up to what
    /// a client may pack for this spec (at most 256 KiB of samples, or one
    /// sample when larger), so that a stream cannot make it buffer more.
    pub fn into_server(self) -> SampleStreamServer<S> {
        let spec = SpecOnly(self.spec.to_proto());
        SampleStreamServer {
            service: self,
            tonic: TonicServer::new(spec).max_encoding_message_size(MAX_MESSAGE_SIZE),
        }
    }

    /// Ends every stream: samples already acknowledged have reached the
    /// sink; clients get `UNAVAILABLE`.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl<T: crate::transport::Transport + 'static, S: Sink + Clone> GrpcServer<T, S> {
    /// The service, to serve beside other services.
    pub fn service(&self) -> SampleStreamServer<S> {
        self.service.clone().into_server()
    }
}

impl<T: crate::transport::Transport + 'static, S: Sink + Clone> SampleServer for GrpcServer<T, S> {
    async fn start(&self) -> Result<Endpoint, EchoError> {
        if self.server.lock().expect("server lock").is_some() {
            return Err(EchoError::AlreadyStarted);
        }
        super::tcp::check_not_empty(&self.service.spec)?;
        let (endpoint, incoming) = self.listener.listen().await?;
        let incoming = incoming.with_limit(self.max_connections);
        let stopped = self.service.stop.clone();
        let sizes = Http2Sizes::for_payload(self.service.spec.payload_size());
        let router = tonic::transport::Server::builder()
            .initial_stream_window_size(sizes.stream_window)
            .initial_connection_window_size(sizes.connection_window)
            .max_frame_size(sizes.max_frame)
            .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
            .add_service(self.service());
        let stop = async move {
            stopped.cancelled().await;
        };
        let server = crate::grpc::serve_draining(router, incoming, stop, STOP_GRACE);
        let task = tokio::spawn(async move {
            if let Err(err) = server.await {
                tracing::warn!(error = %crate::chain::Chain(&err), "the sample server failed");
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
            tracing::warn!(error = %crate::chain::Chain(&err), "closing the sample listener failed");
        }
    }
}

impl<S: Sink + Clone> tower::Service<http::Request<tonic::body::Body>> for SampleStreamServer<S> {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if request.uri().path() == PUSH_PATH {
            let service = self.service.clone();
            match service.streams.clone().try_acquire_owned() {
                Ok(permit) => {
                    Box::pin(
                        async move { Ok(super::grpc_push::push(service, request, permit).await) },
                    )
                }
                // Refused before anything is kept for the stream.
                Err(_) => {
                    let status = Status::resource_exhausted(
                        "too many sample streams are open on this server at once",
                    );
                    Box::pin(std::future::ready(Ok(status.into_http())))
                }
            }
        } else {
            self.tonic.call(request)
        }
    }
}

impl<S> NamedService for SampleStreamServer<S> {
    const NAME: &'static str = SERVICE_NAME;
}

#[tonic::async_trait]
impl SampleStream for SpecOnly {
    async fn get_spec(
        &self,
        _: Request<GetSpecRequest>,
    ) -> Result<Response<crate::proto::echo::Spec>, Status> {
        Ok(Response::new(self.0.clone()))
    }

    type PushStream = Streaming<Ack>;

    /// Never called: [`SampleStreamServer`] serves `Push` before tonic sees it.
    async fn push(
        &self,
        _: Request<Streaming<PushRequest>>,
    ) -> Result<Response<Self::PushStream>, Status> {
        Err(Status::internal("Push is served beside tonic"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_sizes_follow_the_sample_size() {
        let sizes = |payload: u64| {
            let s = Http2Sizes::for_payload(payload);
            (s.max_frame, s.stream_window, s.connection_window)
        };
        const MIB: u32 = 1 << 20;
        // Small samples: the settings this transport always had.
        assert_eq!(sizes(12), (MIB, 8 * MIB, 16 * MIB));
        assert_eq!(sizes(1 << 20), (MIB, 8 * MIB, 16 * MIB));
        assert_eq!(sizes(4 << 20), (4 * MIB, 32 * MIB, 64 * MIB));
        assert_eq!(sizes(64 << 20), (MAX_FRAME, 64 * MIB, 128 * MIB));
        assert_eq!(sizes(u64::MAX), (MAX_FRAME, 64 * MIB, 128 * MIB));
    }
}
