//! What both sample clients do, so that code (and the blocking wrapper)
//! can take either.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::{EchoClientError, GrpcClient, Spec, TcpClient};
use crate::transport::Endpoint;

/// A sample client with the API of echo's Python `TcpClient`:
/// [`TcpClient`] (echo's TCP protocol v1) and [`GrpcClient`].
///
/// ```no_run
/// use rpcplugin::echo::{SampleClient, Spec, TcpClient};
///
/// async fn stream<C: SampleClient>(client: &C, n: usize) -> Result<(), rpcplugin::echo::EchoClientError> {
///     for _ in 0..n {
///         client.send(vec![0u8; 28].into()).await?;
///     }
///     client.wait().await // every sample acknowledged
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let spec: Spec = "float32[4],float32[1],float64[]".parse()?;
/// let client = TcpClient::connect_to(&"127.0.0.1:7777".parse()?, &spec, 32).await?;
/// stream(&client, 1000).await?;
/// client.close().await;
/// # Ok(()) }
/// ```
pub trait SampleClient: Sized + Send + Sync {
    /// Connects over a plaintext connection and checks the server's spec
    /// against `spec`; at most `max_inflight` samples go unacknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::SpecMismatch`] naming the leaf that differs;
    /// [`EchoClientError::ConnectionClosed`] when the server cannot be
    /// reached or refuses the stream.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe for this crate's clients: dropped before it returns, no
    /// connection is kept.
    fn connect_to(
        endpoint: &Endpoint,
        spec: &Spec,
        max_inflight: usize,
    ) -> impl Future<Output = Result<Self, EchoClientError>> + Send;

    /// Lets samples stay outstanding at most `timeout` without an ack
    /// before `send` and `wait` fail.
    #[must_use]
    fn progress_timeout(self, timeout: Duration) -> Self;

    /// Sends one sample, waiting while `max_inflight` are unacknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::WrongSize`], [`EchoClientError::Stalled`], or
    /// [`EchoClientError::ConnectionClosed`].
    ///
    /// # Cancel safety
    ///
    /// Dropped while it waits for a credit, it sends nothing. Dropped while the
    /// sample is on its way, [`GrpcClient`](super::GrpcClient) has not queued
    /// it, and [`TcpClient`](super::TcpClient) fails the stream if part of it
    /// was written (see [`TcpClient::send`](super::TcpClient::send)): a sample
    /// is never sent in part before another.
    fn send(&self, sample: Bytes) -> impl Future<Output = Result<(), EchoClientError>> + Send;

    /// Sends several samples at once: `samples` holds whole samples back to
    /// back, at most the in-flight limit of them. The fast way for many
    /// small samples: the work is per batch, not per sample.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::PartialBatch`], [`EchoClientError::BatchTooLarge`],
    /// or as [`send`](Self::send).
    ///
    /// # Cancel safety
    ///
    /// Dropped while it waits for credits, it sends nothing; once it has
    /// them, the whole batch is queued.
    fn send_batch(
        &self,
        samples: Bytes,
    ) -> impl Future<Output = Result<(), EchoClientError>> + Send;

    /// Waits until every sample sent is acknowledged.
    ///
    /// # Errors
    ///
    /// [`EchoClientError::Stalled`] or
    /// [`EchoClientError::ConnectionClosed`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    fn wait(&self) -> impl Future<Output = Result<(), EchoClientError>> + Send;

    /// Samples acknowledged so far.
    fn acknowledged(&self) -> u64;

    /// Closes the stream. Idempotent.
    ///
    /// # Cancel safety
    ///
    /// The stream is closed when this is first polled; dropping the future only
    /// stops waiting for the end (see each client's `close`).
    fn close(&self) -> impl Future<Output = ()> + Send;
}

impl SampleClient for TcpClient {
    async fn connect_to(
        endpoint: &Endpoint,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        TcpClient::connect(endpoint, spec, max_inflight).await
    }

    fn progress_timeout(self, timeout: Duration) -> Self {
        TcpClient::progress_timeout(self, timeout)
    }

    async fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
        TcpClient::send(self, sample).await
    }

    async fn send_batch(&self, samples: Bytes) -> Result<(), EchoClientError> {
        TcpClient::send_batch(self, samples).await
    }

    async fn wait(&self) -> Result<(), EchoClientError> {
        TcpClient::wait(self).await
    }

    fn acknowledged(&self) -> u64 {
        TcpClient::acknowledged(self)
    }

    async fn close(&self) {
        TcpClient::close(self).await
    }
}

impl SampleClient for GrpcClient {
    async fn connect_to(
        endpoint: &Endpoint,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        GrpcClient::connect_endpoint(endpoint, spec, max_inflight).await
    }

    fn progress_timeout(self, timeout: Duration) -> Self {
        GrpcClient::progress_timeout(self, timeout)
    }

    async fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
        GrpcClient::send(self, sample).await
    }

    async fn send_batch(&self, samples: Bytes) -> Result<(), EchoClientError> {
        GrpcClient::send_batch(self, samples).await
    }

    async fn wait(&self) -> Result<(), EchoClientError> {
        GrpcClient::wait(self).await
    }

    fn acknowledged(&self) -> u64 {
        GrpcClient::acknowledged(self)
    }

    async fn close(&self) {
        GrpcClient::close(self).await
    }
}
