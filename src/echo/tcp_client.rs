//! echo's TCP protocol v1, client side, with the API of echo's Python
//! `TcpClient`: the server's spec is checked on connect, `send` waits at
//! the in-flight limit, `wait` fails (instead of hanging) when the server
//! goes away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};

use super::inflight::{Acks, HalfWritten, Inflight};
use super::{CloseReason, EchoClientError, Spec, WireSpec};
use crate::transport::{Connection, Endpoint};

use super::grpc_client::CONNECT_TIMEOUT;

/// How long the server may take to send its spec header once connected: a
/// server speaks first at once, so this only bounds one that never does.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A sample stream to a server speaking echo's TCP protocol v1 (echo's own
/// server, or [`TcpServer`](super::TcpServer)).
#[derive(Debug)]
pub struct TcpClient {
    inflight: Inflight,
    writer: tokio::sync::Mutex<Option<WriteHalf<Connection>>>,
    reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
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
        let task = tokio::spawn(read_acks(reader, header.len(), acks));
        Ok(TcpClient {
            inflight,
            writer: tokio::sync::Mutex::new(Some(writer)),
            reader: Mutex::new(Some(task)),
        })
    }

    /// Sends one sample, waiting while `max_inflight` are unacknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::WrongSize`]; [`EchoClientError::ConnectionClosed`];
    /// [`EchoClientError::Stalled`] when no ack came for the progress
    /// timeout while it waited.
    ///
    /// A server that neither reads nor acknowledges makes it fail with
    /// [`EchoClientError::Stalled`] after the progress timeout; the
    /// connection is then unusable (a sample may be half written).
    ///
    /// # Cancel safety
    ///
    /// Dropped while it waits for a credit, it sends nothing. Dropped while
    /// its sample is being written, part of the sample may be on the wire:
    /// the stream then fails, and later calls return
    /// [`EchoClientError::ConnectionClosed`] saying so, rather than send a
    /// sample after half of one.
    pub async fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
        let reservation = self.inflight.reserve(sample.len()).await?;
        let mut slot = self.writer.lock().await;
        // Out of the slot while it writes: should the write stop half way
        // (an error, a stall, or this future dropped), nothing may follow.
        let mut writer = slot.take().ok_or_else(|| self.inflight.closed())?;
        let mut half = HalfWritten {
            inflight: &self.inflight,
            armed: true,
        };
        let writing = async {
            writer.write_all(&sample).await.map_err(|e| {
                self.inflight.fail(CloseReason::Write {
                    source: Arc::new(e),
                });
                self.inflight.closed()
            })
        };
        let written = self.inflight.guard(writing).await;
        half.armed = false;
        reservation.commit();
        if written.is_ok() {
            *slot = Some(writer);
        }
        written
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

    /// Closes the connection (both directions). Idempotent.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the stream is marked closed when this is first polled
    /// (later sends fail); dropped while it waits for a send in progress or for
    /// the shutdown of the write side, the connection may stay open, and
    /// calling `close` again finishes closing it.
    pub async fn close(&self) {
        self.inflight.fail(CloseReason::ByClient);
        if let Some(mut writer) = self.writer.lock().await.take() {
            let _ = writer.shutdown().await;
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
    }
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
            Ok(n) => acks.more(buf[..n].iter().filter(|b| **b == 0x01).count() as u64),
            Err(err) => {
                break CloseReason::Read {
                    source: Arc::new(err),
                };
            }
        }
    };
    acks.ended(reason);
}
