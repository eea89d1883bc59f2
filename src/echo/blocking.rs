//! Blocking versions of the sample clients, for code without an async
//! runtime (each owns a small one).
//!
//! ```no_run
//! use rpcplugin::echo::{Spec, blocking};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let spec: Spec = "float32[4],float32[1],float64[]".parse()?;
//! let client = blocking::TcpClient::connect(&"127.0.0.1:7777".parse()?, &spec, 32)?;
//! client.send(vec![0u8; 28].into())?;
//! client.wait()?;
//! client.close();
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;

use super::{EchoClientError, SampleClient, Spec};
use crate::transport::Endpoint;

/// A blocking [`super::TcpClient`].
pub type TcpClient = Client<super::TcpClient>;

/// A blocking [`super::GrpcClient`] over a plaintext connection.
pub type GrpcClient = Client<super::GrpcClient>;

/// A [`SampleClient`] with its own runtime, whose methods block.
#[derive(Debug)]
pub struct Client<C> {
    runtime: tokio::runtime::Runtime,
    inner: C,
}

impl<C: SampleClient> Client<C> {
    /// Connects and checks the server's spec against `spec`.
    ///
    /// # Errors
    ///
    /// As [`SampleClient::connect_to`], and
    /// [`EchoClientError::ConnectionClosed`] when no runtime can be made.
    pub fn connect(
        endpoint: &Endpoint,
        spec: &Spec,
        max_inflight: usize,
    ) -> Result<Self, EchoClientError> {
        // One worker thread keeps acknowledgements flowing between calls.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|err| EchoClientError::ConnectionClosed {
                reason: super::CloseReason::Runtime {
                    source: std::sync::Arc::new(err),
                },
            })?;
        let inner = runtime.block_on(C::connect_to(endpoint, spec, max_inflight))?;
        Ok(Client { runtime, inner })
    }

    /// Lets samples stay outstanding at most `timeout` without an ack
    /// before `send` and `wait` fail (default a minute).
    #[must_use]
    pub fn progress_timeout(self, timeout: Duration) -> Self {
        let Client { runtime, inner } = self;
        Client {
            runtime,
            inner: inner.progress_timeout(timeout),
        }
    }

    /// Sends one sample, blocking at the in-flight limit.
    ///
    /// # Errors
    ///
    /// As [`SampleClient::send`].
    pub fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
        self.runtime.block_on(self.inner.send(sample))
    }

    /// Sends several samples at once (whole samples back to back, at most
    /// the in-flight limit of them), blocking until credits for all of
    /// them are free.
    ///
    /// # Errors
    ///
    /// As [`SampleClient::send_batch`].
    pub fn send_batch(&self, samples: Bytes) -> Result<(), EchoClientError> {
        self.runtime.block_on(self.inner.send_batch(samples))
    }

    /// Blocks until every sample sent is acknowledged.
    ///
    /// # Errors
    ///
    /// As [`SampleClient::wait`].
    pub fn wait(&self) -> Result<(), EchoClientError> {
        self.runtime.block_on(self.inner.wait())
    }

    /// Samples acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.inner.acknowledged()
    }

    /// Closes the stream. Idempotent.
    pub fn close(&self) {
        self.runtime.block_on(self.inner.close())
    }
}
