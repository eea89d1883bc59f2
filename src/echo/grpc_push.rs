//! The `Push` call of the gRPC sample server, served without tonic's
//! codec: messages are read frame by frame ([`MessageReader`]), so that a
//! sample lying whole in an HTTP/2 DATA frame reaches the sink as a slice
//! of that frame, uncopied; acks go out as standard gRPC messages and the
//! call ends with grpc-status trailers.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::grpc::{GrpcService, message_limit};
use super::grpc_wire::{MessageReader, PushIn, SampleRun, frame_message};
use super::{Sink, SinkError, Spec};
use crate::proto::echo::Ack;

/// Acks queued towards a client: acks are cumulative, so a slow reader
/// only needs the latest; a few smooth bursts.
const ACK_QUEUE: usize = 4;

/// Serves one `Push` call: checks the client's spec from its first message
/// (a refusal is a trailers-only response, as tonic gives), then streams
/// acks while a task delivers the samples.
pub(super) async fn push<S: Sink + Clone>(
    service: GrpcService<S>,
    request: http::Request<tonic::body::Body>,
    permit: OwnedSemaphorePermit,
) -> http::Response<tonic::body::Body> {
    match start(service, request, permit).await {
        Ok(acks) => {
            let mut response = http::Response::new(tonic::body::Body::new(AckBody {
                acks,
                trailers: None,
                done: false,
            }));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                tonic::metadata::GRPC_CONTENT_TYPE,
            );
            response
        }
        Err(status) => status.into_http(),
    }
}

/// Reads and checks the first message (the client's spec), then starts
/// the task that delivers the samples; the receiver of its acks.
async fn start<S: Sink + Clone>(
    service: GrpcService<S>,
    request: http::Request<tonic::body::Body>,
    permit: OwnedSemaphorePermit,
) -> Result<mpsc::Receiver<Result<Ack, Status>>, Status> {
    if service.stop.is_cancelled() {
        return Err(shutting_down());
    }
    // No compression is offered (no grpc-accept-encoding), so none may be
    // used: UNIMPLEMENTED, the code tonic gives too.
    if let Some(encoding) = request.headers().get("grpc-encoding")
        && encoding != "identity"
    {
        return Err(Status::unimplemented(format!(
            "messages compressed with {:?}: this server takes them uncompressed only",
            String::from_utf8_lossy(encoding.as_bytes())
        )));
    }
    // A server refuses such a spec before it listens; a service given one
    // (beside other services in a plugin) refuses each push.
    super::tcp::check_not_empty(&service.spec)
        .map_err(|err| Status::failed_precondition(err.to_string()))?;
    let limit = message_limit(service.spec.payload_size());
    let mut requests = MessageReader::new(request.into_body(), limit);
    let first = match requests.next_push().await {
        Ok(Some(first)) => first,
        Ok(None) => return Err(Status::invalid_argument("the stream ended before its spec")),
        Err(err) => return Err(err.into_status()),
    };
    let theirs = first.spec.as_ref().ok_or_else(|| {
        Status::invalid_argument("the first message must carry the client's spec")
    })?;
    let theirs =
        Spec::from_proto(theirs).map_err(|err| Status::invalid_argument(err.to_string()))?;
    service
        .spec
        .check(&theirs)
        .map_err(|err| Status::failed_precondition(err.to_string()))?;

    let (tx, rx) = mpsc::channel(ACK_QUEUE);
    tokio::spawn(async move {
        // The stream counts against the server's limit until it ends.
        let _permit = permit;
        stream(service, requests, first, tx).await;
    });
    Ok(rx)
}

/// Delivers the samples of each message and acknowledges them, until the
/// client ends its side, a message is refused, or the server stops.
async fn stream<S: Sink + Clone>(
    service: GrpcService<S>,
    mut requests: MessageReader,
    first: PushIn,
    tx: mpsc::Sender<Result<Ack, Status>>,
) {
    let (sink, payload) = (&service.sink, service.spec.payload_size());
    let stop = service.stop.clone();
    let mut delivered = 0u64;
    let mut message = Some(first);
    loop {
        if let Some(request) = message.take() {
            let delivering = deliver(sink, &request.runs, payload, &mut delivered, &tx);
            // Biased: a sample that can go in goes in, and its ack out,
            // even when shutdown has begun.
            let answer = tokio::select! {
                biased;
                delivered = delivering => delivered,
                // A full sink must not hold up shutdown.
                _ = stop.cancelled() => Err(shutting_down()),
            };
            if answer.is_err() {
                // The samples the sink took before the refusal (or the
                // stop) are acknowledged all the same, before the status.
                tokio::select! {
                    biased;
                    _ = tx.send(Ok(Ack { delivered })) => {}
                    _ = stop.cancelled() => {}
                }
            }
            let answer = answer.map(|()| Ack { delivered });
            let failed = answer.is_err();
            // A client that reads no acks must not hold it up either.
            let sent = tokio::select! {
                biased;
                sent = tx.send(answer) => sent.is_ok(),
                _ = stop.cancelled() => false,
            };
            if failed || !sent {
                return;
            }
        }
        let next = tokio::select! {
            _ = stop.cancelled() => None,
            next = requests.next_push() => Some(next),
        };
        let Some(next) = next else {
            return end(&tx, shutting_down(), &stop).await;
        };
        match next {
            Ok(Some(request)) => message = Some(request),
            // The client closed its side: the stream is done.
            Ok(None) => return,
            Err(err) => {
                let status = err.into_status();
                tracing::debug!(%status, "sample stream failed");
                // A refused message gets its status; a reset stream has
                // no one to read it.
                return end(&tx, status, &stop).await;
            }
        }
    }
}

/// Ends the call with `status`, unless the client reads nothing (its acks
/// fill the queue) and the server stops.
async fn end(tx: &mpsc::Sender<Result<Ack, Status>>, status: Status, stop: &CancellationToken) {
    tokio::select! {
        biased;
        _ = tx.send(Err(status)) => {}
        _ = stop.cancelled() => {}
    }
}

fn shutting_down() -> Status {
    Status::unavailable("the sample server is shutting down")
}

/// Pushes a message's samples into the sink, as many at a time as it
/// takes, counting them. When the sink is full, acknowledges what it took
/// so far before waiting, so that the client's credits come back as soon
/// as samples are delivered. A sample of the wrong size refuses the whole
/// message, before any of it is delivered.
async fn deliver<S: Sink>(
    sink: &S,
    runs: &[SampleRun],
    payload: u64,
    delivered: &mut u64,
    acks: &mpsc::Sender<Result<Ack, Status>>,
) -> Result<(), Status> {
    let mut index = *delivered;
    for run in runs {
        if run.size as u64 != payload {
            return Err(Status::invalid_argument(format!(
                "sample {index} is {} bytes; the spec's payload is {payload} bytes",
                run.size
            )));
        }
        index += run.count as u64;
    }
    // Not 0: `start` refused a spec of empty samples.
    let size = usize::try_from(payload).unwrap_or(usize::MAX);
    for run in runs {
        let mut left = run.data.clone();
        while !left.is_empty() {
            let pushed = {
                let mut push = std::pin::pin!(sink.push_many(0, &left, size));
                match std::future::poll_fn(|cx| Poll::Ready(push.as_mut().poll(cx))).await {
                    Poll::Ready(pushed) => pushed,
                    Poll::Pending => {
                        // Acks are cumulative: a full queue only means a
                        // later one will carry this count.
                        let _ = acks.try_send(Ok(Ack {
                            delivered: *delivered,
                        }));
                        push.await
                    }
                }
            };
            match pushed {
                Ok(n) => {
                    *delivered += n as u64;
                    let _ = left.split_to(n * size);
                }
                Err(SinkError::Closed) => {
                    return Err(Status::unavailable("the sample sink is closed"));
                }
                Err(err) => return Err(Status::invalid_argument(err.to_string())),
            }
        }
    }
    Ok(())
}

/// The response body: the acks as gRPC messages (those queued together in
/// one DATA frame), then trailers with the call's status: OK when the
/// client ended its side, the refusal otherwise.
struct AckBody {
    acks: mpsc::Receiver<Result<Ack, Status>>,
    /// A status received behind acks, for the frame after them.
    trailers: Option<Status>,
    done: bool,
}

impl http_body::Body for AckBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(status) = self.trailers.take() {
            return Poll::Ready(Some(Ok(self.end(status))));
        }
        let first = match std::task::ready!(self.acks.poll_recv(cx)) {
            Some(Ok(ack)) => ack,
            Some(Err(status)) => return Poll::Ready(Some(Ok(self.end(status)))),
            None => return Poll::Ready(Some(Ok(self.end(Status::ok(""))))),
        };
        let mut data = BytesMut::new();
        frame_message(&first, &mut data);
        while let Ok(next) = self.acks.try_recv() {
            match next {
                Ok(ack) => frame_message(&ack, &mut data),
                Err(status) => {
                    self.trailers = Some(status);
                    break;
                }
            }
        }
        Poll::Ready(Some(Ok(Frame::data(data.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl AckBody {
    /// The trailers frame for `status`; the body ends after it.
    fn end(&mut self, status: Status) -> Frame<Bytes> {
        self.done = true;
        let mut trailers = HeaderMap::new();
        if let Err(unsendable) = status.add_header(&mut trailers) {
            tracing::debug!(%unsendable, "a status that does not fit a trailer");
            trailers.clear();
            let _ = Status::internal("the status did not fit a trailer").add_header(&mut trailers);
        }
        Frame::trailers(trailers)
    }
}
