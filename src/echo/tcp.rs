//! echo's TCP protocol v1, server side: the spec header first, then fixed-
//! size samples from the client, one `0x01` acknowledgement per sample once
//! it reached the sink.

use std::future::Future;
use std::sync::Mutex;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;

use super::{Sample, Sink, SinkError, Spec};
use crate::{Connection, Endpoint, TransportError};

/// The acknowledgement byte of protocol v1.
const ACK: u8 = 0x01;

/// Bytes read from a connection at a time, at least, once samples flow:
/// small samples arrive many per read, large ones in few reads.
const READ_CHUNK: usize = 64 * 1024;

/// Buffer of a connection before its first sample bytes arrive, so that
/// many idle connections hold little memory.
const IDLE_READ: usize = 512;

/// A failure of a sample transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EchoError {
    /// The listener could not be set up.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// `start` on a transport that was started already.
    #[error("this sample transport was already started")]
    AlreadyStarted,
    /// The spec's samples are empty (a zero dimension), so a stream could
    /// carry nothing but acknowledgements.
    #[error("the spec {spec} has empty samples (0 bytes); a sample stream needs at least one byte")]
    EmptySamples {
        /// The spec.
        spec: String,
    },
}

/// Refuses a spec whose samples hold no bytes.
pub(crate) fn check_not_empty(spec: &Spec) -> Result<(), EchoError> {
    match spec.payload_size() {
        0 => Err(EchoError::EmptySamples {
            spec: spec.to_string(),
        }),
        _ => Ok(()),
    }
}

/// A sample transport, as echo's `Transport` trait: it receives samples and
/// pushes them into a [`Sink`].
pub trait Transport: Send + Sync {
    /// Listens, and reports where.
    ///
    /// # Errors
    ///
    /// [`EchoError`] when the listener cannot be set up (a taken port is an
    /// error, unlike echo 0.1.1, which only printed it).
    fn start(&self) -> impl Future<Output = Result<Endpoint, EchoError>> + Send;

    /// Stops accepting, lets every sample already acknowledged reach the
    /// sink (it has: a sample is acknowledged only once delivered), and
    /// closes the connections. Idempotent.
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}

/// echo's TCP protocol v1 served over any socket transport of this crate
/// (TCP or unix), so that echo's own Python `TcpClient` works unchanged.
///
/// Each connection gets the spec header, then sends samples of exactly the
/// spec's payload size; each whole sample is pushed into the sink and then
/// acknowledged with one `0x01` byte (acks for samples that arrived
/// together go out in one write). A connection that ends inside a sample
/// drops that partial sample: it is never delivered.
#[derive(Debug)]
pub struct TcpTransport<T, S> {
    spec: Spec,
    sink: S,
    listener: T,
    state: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl<T: crate::Transport + 'static, S: Sink + Clone> TcpTransport<T, S> {
    /// Serves `spec` on `listener`, delivering into `sink`.
    pub fn new(spec: Spec, sink: S, listener: T) -> Self {
        TcpTransport {
            spec,
            sink,
            listener,
            state: Mutex::new(None),
        }
    }
}

impl<T: crate::Transport + 'static, S: Sink + Clone> Transport for TcpTransport<T, S> {
    async fn start(&self) -> Result<Endpoint, EchoError> {
        if self.state.lock().expect("state lock").is_some() {
            return Err(EchoError::AlreadyStarted);
        }
        check_not_empty(&self.spec)?;
        let (endpoint, mut incoming) = self.listener.listen().await?;
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let (spec, sink) = (self.spec.clone(), self.sink.clone());
        let mut accept_stopped = stopped.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            let mut stream_id = 0u64;
            loop {
                let conn = tokio::select! {
                    _ = accept_stopped.wait_for(|s| *s) => break,
                    conn = incoming.next() => match conn {
                        Some(Ok(conn)) => conn,
                        _ => break,
                    },
                };
                stream_id += 1;
                let task = serve(conn, stream_id, spec.clone(), sink.clone(), stopped.clone());
                connections.spawn(task);
            }
            while connections.join_next().await.is_some() {}
        });
        *self.state.lock().expect("state lock") = Some(Running { stop, tasks });
        Ok(endpoint)
    }

    async fn shutdown(&self) {
        let running = self.state.lock().expect("state lock").take();
        if let Err(err) = self.listener.close().await {
            tracing::warn!(%err, "closing the sample listener failed");
        }
        if let Some(mut running) = running {
            running.stop.send_replace(true);
            while running.tasks.join_next().await.is_some() {}
        }
    }
}

/// One connection: spec header, then samples until EOF or shutdown.
async fn serve<S: Sink>(
    mut conn: Connection,
    stream: u64,
    spec: Spec,
    sink: S,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(err) = conn.write_all(&spec.to_wire()).await {
        tracing::debug!(stream, %err, "sample client went away before the spec");
        return;
    }
    let size = spec.payload_size() as usize;
    let mut buf = BytesMut::with_capacity(IDLE_READ);
    let mut flowing = false;
    loop {
        // Deliver every whole sample buffered, then acknowledge them at once.
        let mut acks = 0usize;
        while buf.len() >= size {
            let sample = Sample {
                stream,
                data: buf.split_to(size).freeze(),
            };
            let mut push = std::pin::pin!(sink.push(sample));
            let pushed = match std::future::poll_fn(|cx| Poll::Ready(push.as_mut().poll(cx))).await
            {
                Poll::Ready(pushed) => pushed,
                Poll::Pending => {
                    // The sink is full: acknowledge what it took so far
                    // before waiting, so the client does not wait on us.
                    if !acknowledge(&mut conn, acks, &mut stop).await {
                        return;
                    }
                    acks = 0;
                    push.await
                }
            };
            match pushed {
                Ok(()) => acks += 1,
                Err(SinkError::Closed) => return,
                Err(err) => {
                    tracing::warn!(stream, %err, "sample refused by the sink");
                    return;
                }
            }
        }
        if !acknowledge(&mut conn, acks, &mut stop).await {
            return;
        }
        if flowing && buf.capacity() - buf.len() < READ_CHUNK.min(size.max(1)) {
            buf.reserve(READ_CHUNK.max(size - buf.len()));
        }
        let read = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            read = conn.read_buf(&mut buf) => read,
        };
        match read {
            Ok(0) => {
                if !buf.is_empty() {
                    tracing::debug!(
                        stream,
                        bytes = buf.len(),
                        "connection ended inside a sample; partial sample dropped"
                    );
                }
                return;
            }
            Ok(_) => flowing = true,
            Err(err) => {
                tracing::debug!(stream, %err, "sample connection failed");
                return;
            }
        }
    }
}

/// Writes `n` acks; false when the connection is done. Gives up at
/// shutdown only while the write is blocked: a client that reads no acks
/// blocks it once the socket buffers are full, and must not hold shutdown
/// back; a client that reads gets its acks even during shutdown.
async fn acknowledge(conn: &mut Connection, n: usize, stop: &mut watch::Receiver<bool>) -> bool {
    if n == 0 {
        return true;
    }
    let acks = vec![ACK; n];
    tokio::select! {
        biased;
        written = conn.write_all(&acks) => written.is_ok(),
        _ = stop.wait_for(|s| *s) => false,
    }
}
