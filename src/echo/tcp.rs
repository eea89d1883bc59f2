//! echo's TCP protocol v1, server side: the spec header first, then fixed-
//! size samples from the client, one `0x01` acknowledgement per sample once
//! it reached the sink.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::tcp_conn::{Conn, serve};
use super::tcp_guard::{Budget, DEFAULT_BUFFER_BUDGET, DEFAULT_MAX_CONNECTIONS};
use super::{Sink, Spec};
use crate::transport::{Endpoint, ListenError};

/// How long connections may go on once the server stops, as for the gRPC
/// transport: no sample is pushed after the stop, so this only lets the
/// last acks out to clients that read them. Then every connection is cut,
/// reading or not.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// A failure of a sample transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EchoError {
    /// The listener could not be set up.
    #[error(transparent)]
    Listen(#[from] ListenError),
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
pub trait SampleServer: Send + Sync {
    /// Listens, and reports where.
    ///
    /// # Errors
    ///
    /// [`EchoError`] when the listener cannot be set up (a taken port is an
    /// error, unlike echo 0.1.1, which only printed it).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe for this crate's servers: dropped before it returns, nothing
    /// listens and the server can be started again.
    fn start(&self) -> impl Future<Output = Result<Endpoint, EchoError>> + Send;

    /// Stops accepting, lets every sample already acknowledged reach the
    /// sink (it has: a sample is acknowledged only once delivered), and
    /// closes the connections: at most about a second after it begins,
    /// whatever the clients or the sink do. Idempotent.
    ///
    /// # Cancel safety
    ///
    /// For this crate's servers, dropped before it returns the server still
    /// stops, and every sample acknowledged has reached the sink (a sample is
    /// acknowledged only once delivered). [`TcpServer`] cuts its connections at
    /// once then, without the grace; [`GrpcServer`](super::GrpcServer) drains
    /// in the background, and its unix socket is removed by a later `shutdown`
    /// or when the server is dropped.
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
///
/// Bounded whatever peers do: at most [`max_connections`](Self::max_connections)
/// connections (1024 by default) are served, the rest are closed at once;
/// the connections share a memory budget of
/// [`buffer_budget`](Self::buffer_budget) bytes (192 MiB by default), and a
/// connection whose buffer would need more is closed; a connection that opens with
/// the HTTP/2 preface or a TLS ClientHello is closed before anything
/// reaches the sink. Each refusal is logged (`tracing`, level warn).
#[derive(Debug)]
pub struct TcpServer<T, S> {
    spec: Spec,
    sink: S,
    listener: T,
    max_connections: usize,
    buffer_budget: usize,
    state: Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl<T: crate::transport::Transport + 'static, S: Sink + Clone> TcpServer<T, S> {
    /// Serves `spec` on `listener`, delivering into `sink`.
    pub fn new(spec: Spec, sink: S, listener: T) -> Self {
        TcpServer {
            spec,
            sink,
            listener,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            buffer_budget: DEFAULT_BUFFER_BUDGET,
            state: Mutex::new(None),
        }
    }

    /// Serves at most `n` connections at once (default 1024); a client
    /// beyond them is closed at once, with a log line.
    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Lets the server spend at most `bytes` on its connections (default
    /// 192 MiB): an eighth is kept back for memory no connection accounts
    /// for (the process's own, allocator slack), each connection served is
    /// charged 4 KiB, and the receive buffers holding partial samples share
    /// the rest, but there is always room for one connection's buffer (a
    /// sample plus 64 KiB). A connection that would need more is closed,
    /// with a log line.
    #[must_use]
    pub fn buffer_budget(mut self, bytes: usize) -> Self {
        self.buffer_budget = bytes;
        self
    }
}

impl<T: crate::transport::Transport + 'static, S: Sink + Clone> SampleServer for TcpServer<T, S> {
    async fn start(&self) -> Result<Endpoint, EchoError> {
        if self.state.lock().expect("state lock").is_some() {
            return Err(EchoError::AlreadyStarted);
        }
        check_not_empty(&self.spec)?;
        let (endpoint, mut incoming) = self.listener.listen().await?;
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let (spec, sink) = (self.spec.clone(), self.sink.clone());
        // One connection's largest buffer: a sample and a read beyond it.
        let one = usize::try_from(spec.payload_size())
            .unwrap_or(usize::MAX)
            .saturating_add(64 * 1024);
        let budget = Budget::for_connections(self.buffer_budget, one);
        let max_connections = self.max_connections;
        let accept_stopped = stop.clone();
        let conn_stop = stop.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            let mut stream_id = 0u64;
            loop {
                let conn = tokio::select! {
                    _ = accept_stopped.cancelled() => break,
                    conn = incoming.next() => match conn {
                        Some(Ok(conn)) => conn,
                        _ => break,
                    },
                };
                while connections.try_join_next().is_some() {}
                if connections.len() >= max_connections {
                    tracing::warn!(
                        max_connections,
                        "refused a sample connection: the server serves {max_connections} already"
                    );
                    drop(conn);
                    continue;
                }
                stream_id += 1;
                let ctx = Conn {
                    stream: stream_id,
                    spec: spec.clone(),
                    sink: sink.clone(),
                    stop: conn_stop.clone(),
                    budget: budget.clone(),
                };
                connections.spawn(serve(conn, ctx));
            }
            drop(incoming);
            let finished = {
                let all_done = async { while connections.join_next().await.is_some() {} };
                tokio::pin!(all_done);
                let done = tokio::select! {
                    _ = &mut all_done => true,
                    _ = accept_stopped.cancelled() => false,
                };
                done || tokio::time::timeout(STOP_GRACE, all_done).await.is_ok()
            };
            if !finished {
                tracing::debug!(
                    left = connections.len(),
                    "sample connections cut at the end of the stop grace"
                );
                connections.shutdown().await;
            }
        });
        *self.state.lock().expect("state lock") = Some(Running { stop, tasks });
        Ok(endpoint)
    }

    async fn shutdown(&self) {
        let running = self.state.lock().expect("state lock").take();
        if let Err(err) = self.listener.close().await {
            tracing::warn!(error = %crate::chain::Chain(&err), "closing the sample listener failed");
        }
        if let Some(mut running) = running {
            running.stop.cancel();
            while running.tasks.join_next().await.is_some() {}
        }
    }
}
