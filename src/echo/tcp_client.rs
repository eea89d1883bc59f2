//! echo's TCP protocol v1, client side, with the API of echo's Python
//! `TcpClient`: the server's spec is checked on connect, `send` waits at
//! the in-flight limit, `wait` fails (instead of hanging) when the server
//! goes away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::inflight::{Acks, Failer, Inflight};
use super::{CloseReason, EchoClientError, Spec, WireSpec};
use crate::transport::{Connection, Endpoint};

use super::grpc_client::CONNECT_TIMEOUT;

/// How long the server may take to send its spec header once connected: a
/// server speaks first at once, so this only bounds one that never does.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Samples smaller than this are copied into one buffer with the samples
/// queued behind them and written together; larger ones are written as
/// they are. The wire is samples back to back either way.
const COPY_BELOW: usize = 16 * 1024;

/// Bytes gathered into one write at most: samples queued while a write was
/// under way go out together in the next one.
const MAX_BATCH: usize = 256 * 1024;

/// A sample stream to a server speaking echo's TCP protocol v1 (echo's own
/// server, or [`TcpServer`](super::TcpServer)).
#[derive(Debug)]
pub struct TcpClient {
    inflight: Inflight,
    /// Samples for the writer task; `None` once closed.
    queue: Mutex<Option<mpsc::Sender<Bytes>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl TcpClient {
    /// Connects, reads the server's spec header and checks it against
    /// `spec`.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::SpecMismatch`] naming the leaf (or "not an echo
    /// server"); [`EchoClientError::ConnectionClosed`] when the server
    /// cannot be reached, or sends no spec header within 5 s.
    ///
    /// # Panics
    ///
    /// If `max_inflight` is 0.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, the connection is closed and no
    /// client exists.
    pub async fn connect(
        endpoint: &Endpoint,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        assert!(
            max_inflight > 0,
            "at least one sample must be allowed in flight"
        );
        let closed = |reason: CloseReason| EchoClientError::ConnectionClosed { reason };
        let mut conn = crate::transport::connect(endpoint, CONNECT_TIMEOUT)
            .await
            .map_err(|e| {
                closed(CloseReason::Connect {
                    source: Arc::new(e),
                })
            })?;
        let mut header = BytesMut::new();
        let deadline = tokio::time::Instant::now() + HEADER_TIMEOUT;
        let wire = loop {
            if let Some((wire, used)) =
                WireSpec::decode(&header).map_err(EchoClientError::SpecMismatch)?
            {
                let _ = header.split_to(used);
                break wire;
            }
            let n = tokio::time::timeout_at(deadline, conn.read_buf(&mut header))
                .await
                .map_err(|_| {
                    closed(CloseReason::NoSpecHeader {
                        waited: HEADER_TIMEOUT,
                    })
                })?
                .map_err(|e| {
                    closed(CloseReason::Read {
                        source: Arc::new(e),
                    })
                })?;
            if n == 0 {
                return Err(closed(CloseReason::ClosedBeforeSpec));
            }
        };
        spec.check_wire(&wire)
            .map_err(EchoClientError::SpecMismatch)?;
        let (reader, writer) = tokio::io::split(conn);
        let (inflight, acks) = Inflight::new(spec.payload_size(), max_inflight);
        let failed = acks.failer();
        let task = tokio::spawn(read_acks(reader, header.len(), acks));
        // A credit is taken before a sample is queued, so the queue never
        // holds more than the in-flight limit: `try_send` always has room.
        let (queue, samples) = mpsc::channel(max_inflight);
        let writing = tokio::spawn(write_samples(writer, samples, failed));
        Ok(TcpClient {
            inflight,
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(writing)),
            reader: Mutex::new(Some(task)),
        })
    }

    /// Sends one sample, waiting while `max_inflight` are unacknowledged.
    ///
    /// The sample is handed to the client's writer, which writes samples
    /// queued together in one system call: a stream of small samples does
    /// not cost a write each. `wait` returns once they are acknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::WrongSize`]; [`EchoClientError::ConnectionClosed`];
    /// [`EchoClientError::Stalled`] when no ack came for the progress
    /// timeout while it waited (a server that neither reads nor
    /// acknowledges).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped while it waits for a credit, it sends nothing;
    /// once it has the credit it queues the sample without waiting. A
    /// sample is always written whole.
    pub async fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
        let reservation = self.inflight.reserve(sample.len()).await?;
        self.enqueue(sample, reservation)
    }

    /// Sends several samples at once: `samples` holds whole samples back to
    /// back (each the spec's payload size, as [`send`](Self::send) takes
    /// one), and is written as it is, in one piece. Takes one credit per
    /// sample, all at once, waiting while they are not free; each sample is
    /// acknowledged on its own, as if sent by `send`.
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
    /// Cancel safe: dropped while it waits for credits, it sends nothing;
    /// once it has them it queues the whole batch without waiting.
    pub async fn send_batch(&self, samples: Bytes) -> Result<(), EchoClientError> {
        let reservation = self.inflight.reserve_batch(samples.len()).await?;
        self.enqueue(samples, reservation)
    }

    fn enqueue(
        &self,
        data: Bytes,
        reservation: super::inflight::Reservation<'_>,
    ) -> Result<(), EchoClientError> {
        let queue = self.queue.lock().expect("queue lock");
        let queued = match queue.as_ref() {
            Some(queue) => queue.try_send(data).is_ok(),
            None => false,
        };
        if !queued {
            // Closed, or the writer ended on a failed write.
            return Err(self.inflight.closed());
        }
        reservation.commit();
        Ok(())
    }

    /// Lets samples stay outstanding at most `timeout` without an ack
    /// (default [`DEFAULT_PROGRESS_TIMEOUT`](super::DEFAULT_PROGRESS_TIMEOUT),
    /// a minute) before `send` and `wait` fail with
    /// [`EchoClientError::Stalled`].
    #[must_use]
    pub fn progress_timeout(mut self, timeout: Duration) -> Self {
        self.inflight.set_progress_timeout(timeout);
        self
    }

    /// Waits until every sample sent so far is acknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::ConnectionClosed`] when the server goes away
    /// first; [`EchoClientError::Stalled`] when no ack comes for the
    /// progress timeout.
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

    /// Closes the connection (both directions), after writing the samples
    /// already sent. Idempotent.
    ///
    /// # Cancel safety
    ///
    /// The stream is closed to new samples when this is first polled;
    /// dropped while the writer finishes, the writer goes on in the
    /// background (for at most the progress timeout) and then closes the
    /// connection.
    pub async fn close(&self) {
        drop(self.queue.lock().expect("queue lock").take());
        self.inflight.fail(CloseReason::ByClient);
        let writer = self.writer.lock().expect("writer lock").take();
        if let Some(mut writer) = writer {
            let timeout = self.inflight.progress_timeout();
            if tokio::time::timeout(timeout, &mut writer).await.is_err() {
                writer.abort();
            }
        }
        let reader = self.reader.lock().expect("reader lock").take();
        if let Some(reader) = reader {
            reader.abort();
            let _ = reader.await;
        }
    }
}

impl Drop for TcpClient {
    /// A client dropped without [`close`](TcpClient::close) stops reading
    /// acks and closes its connection, as `GrpcClient` does: the task that
    /// reads acks holds the read half, and would otherwise keep the
    /// connection open until the server closed it.
    fn drop(&mut self) {
        if let Some(reader) = self.reader.get_mut().expect("reader lock").take() {
            reader.abort();
        }
        if let Some(writer) = self.writer.get_mut().expect("writer lock").take() {
            writer.abort();
        }
    }
}

/// Writes the queued samples, those queued together in one write, until
/// the queue is closed (then shuts the write side down) or a write fails
/// (then fails the stream: later sends and waits say why).
async fn write_samples(
    mut writer: WriteHalf<Connection>,
    mut samples: mpsc::Receiver<Bytes>,
    failed: Failer,
) {
    let mut batch = BytesMut::new();
    while let Some(first) = samples.recv().await {
        let mut next = Some(first);
        while let Some(sample) = next.take() {
            if sample.len() >= COPY_BELOW {
                if let Err(err) = flush(&mut writer, &mut batch).await {
                    return failed.fail(err);
                }
                if let Err(err) = writer.write_all(&sample).await {
                    return failed.fail(err);
                }
            } else {
                batch.extend_from_slice(&sample);
            }
            if batch.len() < MAX_BATCH {
                next = samples.try_recv().ok();
            }
        }
        if let Err(err) = flush(&mut writer, &mut batch).await {
            return failed.fail(err);
        }
    }
    let _ = writer.shutdown().await;
}

/// Writes what `batch` holds and empties it.
async fn flush(writer: &mut WriteHalf<Connection>, batch: &mut BytesMut) -> std::io::Result<()> {
    if !batch.is_empty() {
        writer.write_all(batch).await?;
        batch.clear();
    }
    Ok(())
}

/// Counts `0x01` acks (any other byte is ignored, as echo's client does)
/// and returns credits; records why the connection ended.
async fn read_acks(mut reader: ReadHalf<Connection>, early: usize, acks: Acks) {
    if early > 0 {
        tracing::debug!(
            bytes = early,
            "bytes after the spec header before any sample"
        );
    }
    let mut buf = [0u8; 4096];
    let reason = loop {
        match reader.read(&mut buf).await {
            Ok(0) => break CloseReason::ServerClosed,
            Ok(n) => {
                let count = buf[..n].iter().filter(|b| **b == 0x01).count() as u64;
                if let Err(reason) = acks.more(count) {
                    break reason;
                }
            }
            Err(err) => {
                break CloseReason::Read {
                    source: Arc::new(err),
                };
            }
        }
    };
    acks.ended(reason);
}
