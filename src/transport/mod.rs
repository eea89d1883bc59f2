//! Socket transports: where a plugin listens and how a host reaches it.
//!
//! A [`Transport`] binds a listener and gives the bound [`Endpoint`] with a
//! stream of accepted [`Connection`]s ([`Incoming`]) that tonic's
//! `serve_with_incoming` takes as it is, so one server code path serves TCP
//! and unix sockets alike.

mod authority;
mod conn;
mod cutoff;
mod endpoint;
mod env;
mod error;
mod hpack_scan;
mod listen;
pub(crate) mod mux;
mod tcp;
#[cfg(unix)]
mod unix;
#[cfg(not(unix))]
#[path = "no_unix.rs"]
mod unix;

use std::future::Future;
use std::time::Duration;

pub use conn::{Connection, ConnectionInfo, Incoming};
pub use endpoint::{Endpoint, EndpointError, Host};
pub(crate) use env::socket_dir_from_env;
pub use env::{PortRange, SocketGroup};
pub use error::{CloseError, ConnectError, EnvError, ListenError};
pub use listen::{AnyTransport, Listen};
pub use tcp::TcpTransport;
pub use unix::{SUN_PATH_MAX, UnixTransport};
#[cfg(unix)]
pub(crate) use unix::{connect_now, is_listening, remove_stale_socket};

/// How long [`Transport::connect`] waits by default: long enough for a
/// loaded 2-core machine to accept on loopback, short enough that a dead
/// endpoint is reported while a person still waits for it.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A socket transport: binds one listener, connects to endpoints, and cleans
/// up after itself.
///
/// ```no_run
/// use rpcplugin::Transport;
/// use rpcplugin::transport::UnixTransport;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = UnixTransport::from_env()?;
/// let (endpoint, incoming) = transport.listen().await?;
/// println!("listening on {endpoint}");
/// // tonic::transport::Server::builder()...serve_with_incoming(incoming)
/// # drop(incoming);
/// transport.close().await?;
/// # Ok(()) }
/// ```
pub trait Transport: Send + Sync {
    /// Binds the listener and reports where it is bound.
    ///
    /// The listener is bound before this returns, so the endpoint can be
    /// announced at once. A transport listens once; close it to stop.
    ///
    /// # Errors
    ///
    /// [`ListenError`] naming the endpoint or path: a bind failure, a
    /// name that does not resolve, no free port in range, a path that is in
    /// use or is not our socket, a path too long for `sun_path`.
    ///
    /// # Cancel safety
    ///
    /// This crate's transports are cancel safe here: dropped before it returns,
    /// nothing listens (a listener bound on the way is closed as it is dropped)
    /// and the transport can listen again.
    fn listen(&self) -> impl Future<Output = Result<(Endpoint, Incoming), ListenError>> + Send;

    /// Connects to `endpoint`, giving up after the transport's connect
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Refused`], [`ConnectError::Timeout`], or
    /// [`ConnectError::WrongNetwork`] for an endpoint of the other kind.
    ///
    /// # Cancel safety
    ///
    /// This crate's transports are cancel safe here: dropped before it returns,
    /// no connection is kept.
    fn connect(
        &self,
        endpoint: &Endpoint,
    ) -> impl Future<Output = Result<Connection, ConnectError>> + Send;

    /// Stops accepting, ends the [`Incoming`] stream and removes what the
    /// transport created. Closing twice is harmless.
    ///
    /// # Errors
    ///
    /// [`CloseError::Remove`] if our own socket file could not be
    /// removed.
    ///
    /// # Cancel safety
    ///
    /// This crate's transports are cancel safe here: the listener is marked
    /// closed and a unix socket removed when this is first polled; dropping the
    /// future only stops waiting for the accept loop, which is then aborted.
    fn close(&self) -> impl Future<Output = Result<(), CloseError>> + Send;
}

/// Connects to any endpoint, TCP or unix, within `timeout`.
///
/// # Errors
///
/// [`ConnectError::Refused`] or [`ConnectError::Timeout`]
/// naming the endpoint; [`ConnectError::Resolve`] for a host name that
/// does not resolve.
///
/// # Cancel safety
///
/// Cancel safe: dropped before it returns, no connection is kept.
pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Connection, ConnectError> {
    match endpoint.unix_path() {
        Some(_) => with_timeout(endpoint, timeout, unix::connect(endpoint)).await,
        None => with_timeout(endpoint, timeout, tcp::connect(endpoint)).await,
    }
}

async fn with_timeout(
    endpoint: &Endpoint,
    timeout: Duration,
    attempt: impl Future<Output = Result<Connection, ConnectError>>,
) -> Result<Connection, ConnectError> {
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Timeout {
                endpoint: endpoint.clone(),
                timeout,
            })
        })
}
