//! Blocking versions of the sample clients, for code without an async
//! runtime (each owns a small one).

use bytes::Bytes;

use super::{EchoClientError, Spec};
use crate::transport::Endpoint;

/// One worker thread keeps acknowledgements flowing between calls.
fn runtime() -> Result<tokio::runtime::Runtime, EchoClientError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|err| EchoClientError::ConnectionClosed {
            reason: format!("cannot start a runtime: {err}"),
        })
}

macro_rules! blocking_client {
    ($(#[$doc:meta])* $name:ident, $inner:ty, $connect:path) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            runtime: tokio::runtime::Runtime,
            inner: $inner,
        }

        impl $name {
            /// Connects and checks the server's spec against `spec`.
            ///
            /// # Errors
            ///
            /// As the async client's `connect`.
            pub fn connect(endpoint: &Endpoint, spec: &Spec, max_inflight: usize) -> Result<Self, EchoClientError> {
                let runtime = runtime()?;
                let inner = runtime.block_on($connect(endpoint, spec, max_inflight))?;
                Ok($name { runtime, inner })
            }

            /// Lets samples stay outstanding at most `timeout` without an
            /// ack before `send` and `wait` fail (default a minute).
            pub fn with_progress_timeout(self, timeout: std::time::Duration) -> Self {
                let $name { runtime, inner } = self;
                $name { runtime, inner: inner.with_progress_timeout(timeout) }
            }

            /// Sends one sample, blocking at the in-flight limit.
            ///
            /// # Errors
            ///
            /// As the async client's `send`.
            pub fn send(&self, sample: Bytes) -> Result<(), EchoClientError> {
                self.runtime.block_on(self.inner.send(sample))
            }

            /// Blocks until every sample sent is acknowledged.
            ///
            /// # Errors
            ///
            /// As the async client's `wait`.
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
    };
}

blocking_client!(
    /// A blocking [`super::TcpClient`].
    TcpClient,
    super::TcpClient,
    super::TcpClient::connect
);

blocking_client!(
    /// A blocking [`super::GrpcClient`] over a plaintext connection.
    GrpcClient,
    super::GrpcClient,
    super::GrpcClient::connect_endpoint
);
