//! echo sample streams over gRPC, client side, with the API of echo's
//! Python `TcpClient`: connect with the stream's spec, `send` (which waits
//! at the in-flight limit), `wait`, `close`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::codec::{Codec as _, Streaming};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::ServiceExt as _;

use super::grpc::MESSAGE_BYTES;
use super::grpc_wire::{PUSH_PATH, WireError, encode_push};
use super::inflight::{Inflight, Reservation};
use super::{Spec, SpecError};
use crate::grpc::MAX_MESSAGE_SIZE;
use crate::proto::echo::sample_stream_client::SampleStreamClient;
use crate::proto::echo::{Ack, GetSpecRequest, PushRequest};
use crate::transport::{ConnectError, Endpoint};

/// echo's default number of unacknowledged samples.
pub const DEFAULT_MAX_INFLIGHT: usize = 32;

/// The bytes a default window keeps in flight, at least: see
/// [`default_window`].
pub const DEFAULT_WINDOW_BYTES: usize = 256 << 10;

/// The most samples a default window holds: see [`default_window`].
pub const MAX_DEFAULT_WINDOW: usize = 4096;

/// The window (samples in flight) for `spec` when the user names none:
/// enough samples for [`DEFAULT_WINDOW_BYTES`], between echo's 32
/// ([`DEFAULT_MAX_INFLIGHT`]) and [`MAX_DEFAULT_WINDOW`]. "In flight" keeps
/// echo's meaning, unacknowledged samples; only the default grows for
/// small samples, which 32 starved: with one client
/// (`ECHO_BENCH_WINDOWS=32,256,1024,4096 cargo bench --features echo --bench
/// echo_throughput`), gRPC sent 0.49–0.63 M/s of 64 B samples with 32 in
/// flight and 1.6–1.9 M/s with 256 or more; 0.49–0.50 M/s of 1 KiB
/// samples with 32 and 1.16–1.29 M/s with 256 (1.09–1.53 with 4096). From
/// 16 KiB up, 16 to 64 in flight made no steady difference, so 32 stays.
///
/// ```
/// use rpcplugin::echo::{Spec, default_window};
/// let small: Spec = "float32[4],float32[1],float64[]".parse()?;
/// assert_eq!(default_window(&small), 4096);
/// let kib: Spec = "uint8[1024]".parse()?;
/// assert_eq!(default_window(&kib), 256);
/// let large: Spec = "uint8[65536]".parse()?;
/// assert_eq!(default_window(&large), 32);
/// # Ok::<(), rpcplugin::echo::SpecError>(())
/// ```
pub fn default_window(spec: &Spec) -> usize {
    let payload = usize::try_from(spec.payload_size())
        .unwrap_or(usize::MAX)
        .max(1);
    (DEFAULT_WINDOW_BYTES / payload).clamp(DEFAULT_MAX_INFLIGHT, MAX_DEFAULT_WINDOW)
}

/// How long a sample client lets samples stay outstanding without a single
/// ack before it gives up on the server (see `progress_timeout`). A
/// full sink holds acks back on purpose (a learner busy with a training
/// step), so this is far beyond such pauses: a minute without any ack is a
/// stuck or silently vanished server, not back-pressure.
pub const DEFAULT_PROGRESS_TIMEOUT: Duration = Duration::from_secs(60);

/// How long connecting may take: the connection, the spec, opening the
/// stream. A server that answers at all does so in milliseconds.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failure of a sample client.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EchoClientError {
    /// The server's spec is not the client's; names the leaf.
    #[error(transparent)]
    SpecMismatch(SpecError),
    /// A sample whose size is not the spec's payload size.
    #[error("sample of {actual} bytes, but the spec's payload is {expected} bytes")]
    WrongSize {
        /// The spec's payload size.
        expected: u64,
        /// The sample's size.
        actual: u64,
    },
    /// A batch that is not whole samples: empty, or a length that is not a
    /// multiple of the spec's payload size.
    #[error("a batch of {len} bytes is not a whole number of {payload}-byte samples")]
    PartialBatch {
        /// The spec's payload size.
        payload: u64,
        /// The batch's length.
        len: u64,
    },
    /// A batch of more samples than may be in flight at once: it could
    /// never be sent whole. Send it in parts of at most `window`.
    #[error("a batch of {samples} samples, but at most {window} may be in flight")]
    BatchTooLarge {
        /// Samples in the batch.
        samples: usize,
        /// The client's in-flight limit.
        window: usize,
    },
    /// The stream is closed: by [`GrpcClient::close`], or because the server
    /// went away or refused it (the reason, its source, says which).
    #[error("the sample stream is closed")]
    ConnectionClosed {
        /// Why.
        #[source]
        reason: CloseReason,
    },
    /// No acknowledgement came for the progress timeout while samples were
    /// outstanding: the server is stuck, or gone without closing. The
    /// stream is closed; later calls fail with
    /// [`ConnectionClosed`](Self::ConnectionClosed) giving this reason.
    #[error(
        "no acknowledgement from the server for {after:?} with {outstanding} samples outstanding"
    )]
    Stalled {
        /// Samples sent and not acknowledged.
        outstanding: u64,
        /// The progress timeout.
        after: Duration,
    },
}

/// Why a sample stream closed (or never opened): the source of
/// [`EchoClientError::ConnectionClosed`]. The first reason wins.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client's `close` was called.
    #[error("closed by the client")]
    ByClient,
    /// No acknowledgement came for the progress timeout
    /// ([`EchoClientError::Stalled`]).
    #[error(
        "no acknowledgement from the server for {after:?} with {outstanding} samples outstanding"
    )]
    Stalled {
        /// Samples sent and not acknowledged.
        outstanding: u64,
        /// The progress timeout.
        after: Duration,
    },
    /// The server cannot be reached (TCP).
    #[error("cannot connect to the server")]
    Connect {
        /// The transport's error.
        source: Arc<ConnectError>,
    },
    /// No gRPC connection to the server could be made.
    #[error("no connection to {endpoint}")]
    Channel {
        /// The server's endpoint.
        endpoint: Endpoint,
        /// tonic's error.
        source: Arc<tonic::transport::Error>,
    },
    /// No connection to the server within the connect timeout.
    #[error("no connection to {endpoint} within {waited:?}")]
    ConnectTimeout {
        /// The server's endpoint.
        endpoint: Endpoint,
        /// How long it waited.
        waited: Duration,
    },
    /// The server did not answer a call (`GetSpec`, `Push`) in time.
    #[error("the server did not answer {call} within {waited:?}")]
    NoAnswer {
        /// The call.
        call: &'static str,
        /// How long it waited.
        waited: Duration,
    },
    /// The server refused a call (`GetSpec`, `Push`).
    #[error("the server refused {call}")]
    Refused {
        /// The call.
        call: &'static str,
        /// The server's answer.
        source: tonic::Status,
    },
    /// The spec cannot be sent in one gRPC message.
    #[error("the spec does not fit a message")]
    SpecTooLarge {
        /// The framing's error.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// The server sent no complete spec header in time (TCP).
    #[error("the server sent no complete spec header within {waited:?}")]
    NoSpecHeader {
        /// How long it waited.
        waited: Duration,
    },
    /// The server closed the connection before its spec header (TCP).
    #[error("the server closed the connection before its spec")]
    ClosedBeforeSpec,
    /// The server acknowledged more samples than were sent: it is not
    /// acknowledging what it received, so no ack of it can be trusted.
    /// The stream ends; `wait` does not report the samples as delivered.
    #[error("the server acknowledged {acknowledged} samples, but only {sent} were sent")]
    TooManyAcks {
        /// Samples the server's acks add up to.
        acknowledged: u64,
        /// Samples sent on the stream.
        sent: u64,
    },
    /// The server closed the connection (TCP).
    #[error("the server closed the connection")]
    ServerClosed,
    /// The server ended the stream (gRPC).
    #[error("the server ended the stream")]
    ServerEnded,
    /// The stream failed (gRPC).
    #[error("the stream failed")]
    Failed {
        /// tonic's status.
        source: tonic::Status,
    },
    /// Reading from the connection failed (TCP).
    #[error("reading from the server failed")]
    Read {
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// Writing to the connection failed (TCP).
    #[error("writing to the server failed")]
    Write {
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// The blocking client could not start its runtime.
    #[error("cannot start a runtime")]
    Runtime {
        /// The operating system's error.
        source: Arc<std::io::Error>,
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
    /// reached, refuses the stream, or does not answer within 10 s.
    ///
    /// # Panics
    ///
    /// If `max_inflight` is 0.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, the stream it was opening is
    /// reset and no client exists.
    pub async fn connect(
        channel: Channel,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        assert!(
            max_inflight > 0,
            "at least one sample must be allowed in flight"
        );
        let closed = |reason: CloseReason| EchoClientError::ConnectionClosed { reason };
        let refused = |call: &'static str| {
            move |source: tonic::Status| closed(CloseReason::Refused { call, source })
        };
        let mut client = SampleStreamClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let silent = |call: &'static str| {
            closed(CloseReason::NoAnswer {
                call,
                waited: CONNECT_TIMEOUT,
            })
        };
        let theirs = tokio::time::timeout(CONNECT_TIMEOUT, client.get_spec(GetSpecRequest {}))
            .await
            .map_err(|_| silent("GetSpec"))?
            .map_err(refused("GetSpec"))?
            .into_inner();
        let theirs = Spec::from_proto(&theirs).map_err(EchoClientError::SpecMismatch)?;
        theirs.check(spec).map_err(EchoClientError::SpecMismatch)?;

        let (queue, queue_rx) = mpsc::channel(max_inflight);
        let per_message =
            (MESSAGE_BYTES / spec.payload_size().max(1) as usize).clamp(1, max_inflight);
        let payload = usize::try_from(spec.payload_size()).unwrap_or(usize::MAX);
        let body =
            PushBody::new(&spec.to_proto(), queue_rx, per_message, payload).map_err(|err| {
                closed(CloseReason::SpecTooLarge {
                    source: Arc::new(err),
                })
            })?;
        let mut acks = tokio::time::timeout(CONNECT_TIMEOUT, open_push(channel, body))
            .await
            .map_err(|_| silent("Push"))?
            .map_err(refused("Push"))?;

        let (inflight, ack_side) = Inflight::new(spec.payload_size(), max_inflight);
        let reader = tokio::spawn(async move {
            let reason = loop {
                match acks.message().await {
                    Ok(Some(ack)) => {
                        if let Err(reason) = ack_side.total(ack.delivered) {
                            break reason;
                        }
                    }
                    Ok(None) => break CloseReason::ServerEnded,
                    Err(source) => break CloseReason::Failed { source },
                }
            };
            ack_side.ended(reason);
        });
        Ok(GrpcClient {
            inflight,
            queue: Mutex::new(Some(queue)),
            tasks: Mutex::new(vec![reader]),
        })
    }

    /// [`connect`](Self::connect) over a plaintext connection to
    /// `endpoint` (TCP or unix), through this crate's transports.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`connect`](Self::connect).
    pub async fn connect_endpoint(
        endpoint: &crate::transport::Endpoint,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        let opening = crate::grpc::open_channel(endpoint, None, None);
        let channel = tokio::time::timeout(CONNECT_TIMEOUT, opening)
            .await
            .map_err(|_| EchoClientError::ConnectionClosed {
                reason: CloseReason::ConnectTimeout {
                    endpoint: endpoint.clone(),
                    waited: CONNECT_TIMEOUT,
                },
            })?
            .map_err(|source| EchoClientError::ConnectionClosed {
                reason: CloseReason::Channel {
                    endpoint: endpoint.clone(),
                    source: Arc::new(source),
                },
            })?;
        Self::connect(channel, spec, max_inflight).await
    }

    /// Sends one sample (its leaves' bytes concatenated), waiting while
    /// `max_inflight` samples are unacknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::WrongSize`] for a sample of the wrong size;
    /// [`EchoClientError::ConnectionClosed`] once the stream is closed;
    /// [`EchoClientError::Stalled`] when no ack came for the progress
    /// timeout while it waited.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, the sample is not sent (it is
    /// queued only when the send completes) and the credit it took is given
    /// back.
    pub async fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
        let len = sample.len();
        self.enqueue(sample, self.inflight.reserve(len)).await
    }

    /// Sends several samples at once: `samples` holds whole samples back to
    /// back (each the spec's payload size, as [`send`](Self::send) takes
    /// one). Takes one credit per sample, all at once, waiting while they
    /// are not free; the samples travel packed into messages as queued
    /// ones do, and each is acknowledged on its own.
    ///
    /// For many small samples this is the fast way: the client's work is
    /// per batch, not per sample.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::PartialBatch`] for an empty batch or one that
    /// ends inside a sample; [`EchoClientError::BatchTooLarge`] for more
    /// samples than the in-flight limit; otherwise as [`send`](Self::send).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, nothing of the batch is sent
    /// and its credits are given back.
    pub async fn send_batch(&self, samples: Bytes) -> Result<(), EchoClientError> {
        let len = samples.len();
        self.enqueue(samples, self.inflight.reserve_batch(len))
            .await
    }

    /// Queues `data` once `reserve` has its credits; a send dropped before
    /// it is queued gives them back.
    async fn enqueue<'a>(
        &'a self,
        data: Bytes,
        reserve: impl Future<Output = Result<Reservation<'a>, EchoClientError>>,
    ) -> Result<(), EchoClientError> {
        let queue = self.queue.lock().expect("queue lock").clone();
        let queue = queue.ok_or_else(|| self.inflight.closed())?;
        let reservation = reserve.await?;
        let queued = async { queue.send(data).await.map_err(|_| self.inflight.closed()) };
        let queued = self.inflight.guard(queued).await;
        if queued.is_ok() {
            reservation.commit();
        }
        queued
    }

    /// Lets samples stay outstanding at most `timeout` without an ack
    /// (default [`DEFAULT_PROGRESS_TIMEOUT`], a minute) before `send` and
    /// `wait` fail with [`EchoClientError::Stalled`].
    #[must_use]
    pub fn progress_timeout(mut self, timeout: Duration) -> Self {
        self.inflight.set_progress_timeout(timeout);
        self
    }

    /// Waits until every sample sent so far is acknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::ConnectionClosed`] when the stream ends first
    /// (echo 0.1.1's `wait` hangs forever then);
    /// [`EchoClientError::Stalled`] when no ack comes for the progress
    /// timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits; dropping it loses nothing (a stall it
    /// detected before being dropped has failed the stream already).
    pub async fn wait(&self) -> Result<(), EchoClientError> {
        self.inflight.wait().await
    }

    /// Samples acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.inflight.acknowledged()
    }

    /// Ends the stream after the samples already sent, and waits for the
    /// server to finish it, at most the progress timeout. Idempotent.
    ///
    /// # Cancel safety
    ///
    /// The stream is ended when this is first polled, after the samples already
    /// queued, so dropping the future does not keep it open; it only stops
    /// waiting for the server to finish the stream, and the task reading acks
    /// then runs on until the server does.
    pub async fn close(&self) {
        self.inflight.fail(CloseReason::ByClient);
        drop(self.queue.lock().expect("queue lock").take());
        let tasks: Vec<JoinHandle<()>> = self.tasks.lock().expect("tasks lock").drain(..).collect();
        for mut task in tasks {
            let finished = tokio::time::timeout(self.inflight.progress_timeout(), &mut task).await;
            if finished.is_err() {
                task.abort();
            }
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

/// Opens the `Push` call with `body` as its request stream, as tonic's
/// generated client does (same headers), and returns its acks.
///
/// # Errors
///
/// The call's status when the server refuses it from the start (a
/// trailers-only response, e.g. `FAILED_PRECONDITION` for another spec),
/// or the connection's failure.
async fn open_push(channel: Channel, body: PushBody) -> Result<Streaming<Ack>, Status> {
    let request = http::Request::post(PUSH_PATH)
        .version(http::Version::HTTP_2)
        .header(
            http::header::CONTENT_TYPE,
            tonic::metadata::GRPC_CONTENT_TYPE,
        )
        .header(http::header::TE, "trailers")
        .body(tonic::body::Body::new(body))
        .expect("a valid request");
    let response = channel
        .oneshot(request)
        .await
        .map_err(|err| Status::from_error(err.into()))?;
    // grpc-status among the headers: the whole answer, without a body.
    let decoder = tonic_prost::ProstCodec::<PushRequest, Ack>::default().decoder();
    match Status::from_header_map(response.headers()) {
        Some(status) if status.code() != Code::Ok => Err(status),
        Some(_) => Ok(Streaming::new_empty(decoder, response.into_body())),
        None => {
            let code = response.status();
            let body = response.into_body();
            Ok(Streaming::new_response(
                decoder,
                body,
                code,
                None,
                Some(MAX_MESSAGE_SIZE),
            ))
        }
    }
}

/// The request stream of `Push`: the spec-only first message, then the
/// queued samples, packed up to `per_message` to a message (an idle client
/// sends each sample at once, a busy one batches), each large sample as a
/// chunk of its own, uncopied. A queued batch (`send_batch`) is cut into
/// its samples, across messages when it holds more than one message's
/// worth. Ends when the queue is closed.
struct PushBody {
    queue: mpsc::Receiver<Bytes>,
    per_message: usize,
    /// The spec's payload size: where a batch is cut.
    size: usize,
    /// What is left of a batch that did not fit the last message.
    rest: Option<Bytes>,
    /// Chunks encoded, not yet handed to HTTP/2.
    chunks: VecDeque<Bytes>,
}

impl PushBody {
    fn new(
        spec: &crate::proto::echo::Spec,
        queue: mpsc::Receiver<Bytes>,
        per_message: usize,
        payload: usize,
    ) -> Result<Self, WireError> {
        let mut chunks = VecDeque::new();
        encode_push(Some(spec), Vec::new(), &mut chunks)?;
        Ok(PushBody {
            queue,
            per_message,
            size: payload,
            rest: None,
            chunks,
        })
    }
}

impl http_body::Body for PushBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.chunks.is_empty() {
            let (mut runs, mut count) = (Vec::new(), 0);
            while count < this.per_message {
                let mut queued = match this.rest.take() {
                    Some(rest) => rest,
                    None if runs.is_empty() => match std::task::ready!(this.queue.poll_recv(cx)) {
                        Some(queued) => queued,
                        None => return Poll::Ready(None),
                    },
                    None => match this.queue.try_recv() {
                        Ok(queued) => queued,
                        Err(_) => break,
                    },
                };
                // One sample, or a batch of whole ones (checked by
                // send_batch): what does not fit this message waits.
                let (room, size) = (this.per_message - count, this.size.max(1));
                let samples = (queued.len() / size).max(1);
                if samples > room {
                    this.rest = Some(queued.split_off(room * size));
                }
                count += samples.min(room);
                runs.push((queued, this.size));
            }
            // Only a sample over 2 GiB fails here: the call then fails
            // with OUT_OF_RANGE, as tonic's encoder would make it.
            if let Err(err) = encode_push(None, runs, &mut this.chunks) {
                return Poll::Ready(Some(Err(err.into_status())));
            }
        }
        let chunk = this.chunks.pop_front().expect("a chunk was encoded");
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}
