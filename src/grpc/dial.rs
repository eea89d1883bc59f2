//! Dialling a gRPC channel through this crate's transports: the socket,
//! then (under AutoMTLS) TLS with the peer's certificate pinned, then
//! HTTP/2, each step under a deadline and named when it stalls.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::{CONNECT_TIMEOUT, CONNECTION_WINDOW, STREAM_WINDOW};
use crate::chain::Chain;
use crate::transport::{ConnectError, Connection, Endpoint};

/// The steps of connecting to a plugin, each with its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectStep {
    /// Opening the socket.
    Connect,
    /// The TLS handshake (AutoMTLS).
    TlsHandshake,
    /// Setting up the HTTP/2 connection.
    Http2,
    /// The first health check.
    HealthCheck,
}

impl std::fmt::Display for ConnectStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConnectStep::Connect => "socket connect",
            ConnectStep::TlsHandshake => "TLS handshake",
            ConnectStep::Http2 => "HTTP/2 connection set-up",
            ConnectStep::HealthCheck => "first health check",
        })
    }
}

/// Why a dial failed.
#[derive(Debug)]
pub(crate) enum Dial {
    /// A step did not finish in the time it was given.
    Stalled(ConnectStep, Duration),
    /// The socket or the TLS handshake failed.
    Failed(ConnectError),
}

impl std::fmt::Display for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dial::Stalled(step, waited) => write!(f, "the {step} did not finish within {waited:?}"),
            Dial::Failed(err) => Chain(err).fmt(f),
        }
    }
}

/// Dials `endpoint` and, with `tls`, completes the TLS handshake (server
/// name `localhost`, the certificate pinned by the config), each step by
/// `deadline`.
pub(crate) async fn dial(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> Result<Connection, Dial> {
    let budget = deadline.saturating_duration_since(Instant::now());
    let conn = match crate::transport::connect(endpoint, budget).await {
        Ok(conn) => conn,
        Err(ConnectError::Timeout { timeout, .. }) => {
            return Err(Dial::Stalled(ConnectStep::Connect, timeout));
        }
        Err(err) => return Err(Dial::Failed(err)),
    };
    let Some(config) = tls else {
        return Ok(conn);
    };
    let waited = deadline.saturating_duration_since(Instant::now());
    let name = ServerName::try_from("localhost").expect("a valid name");
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, conn);
    match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(tls)) => Ok(Connection::from(tls)),
        Ok(Err(source)) => Err(Dial::Failed(ConnectError::Refused {
            endpoint: endpoint.clone(),
            source,
        })),
        Err(_) => Err(Dial::Stalled(ConnectStep::TlsHandshake, waited)),
    }
}

/// The client side of TLS (when `tls` is set) over an opened connection,
/// such as a multiplexed stream, with [`dial`]'s server name; bounded by
/// [`CONNECT_TIMEOUT`].
pub(crate) async fn tls_client(
    conn: Connection,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> io::Result<Connection> {
    let Some(config) = tls else {
        return Ok(conn);
    };
    let name = ServerName::try_from("localhost").expect("a valid name");
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, conn);
    match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(tls)) => Ok(Connection::from(tls)),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the TLS handshake did not finish within {CONNECT_TIMEOUT:?}"),
        )),
    }
}

/// Opens a gRPC channel to `endpoint`, for brokered connections and
/// reconnects: each connection dialled and TLS-handshaken within
/// [`CONNECT_TIMEOUT`], and cut off by `cut` (see [`channel_with`]).
pub(crate) async fn open_channel(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    cut: Option<CancellationToken>,
) -> Result<Channel, tonic::transport::Error> {
    let target = endpoint.clone();
    let open = move || {
        let (target, tls) = (target.clone(), tls.clone());
        async move {
            dial(&target, tls, Instant::now() + CONNECT_TIMEOUT)
                .await
                .map_err(|err| io::Error::other(err.to_string()))
        }
    };
    channel_with(None, open, cut).await
}

/// What a call on a connection [`channel_with`] cut off fails with.
const CUT_OFF: &str = "connection cut off: the process at the other end exited or was killed";

/// A channel whose first connection is `first` (already open), and that
/// makes every other one with `open` (a dial, or a multiplexed stream),
/// with this crate's HTTP/2 windows. With `cut`, each connection fails
/// every read and write once `cut` is cancelled, and the calls on it with
/// them.
pub(crate) async fn channel_with<F, Fut>(
    first: Option<Connection>,
    open: F,
    cut: Option<CancellationToken>,
) -> Result<Channel, tonic::transport::Error>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = io::Result<Connection>> + Send + 'static,
{
    let first = Arc::new(Mutex::new(first));
    let open = Arc::new(open);
    let connector = tower::service_fn(move |_| {
        let opened = first.lock().expect("first connection lock").take();
        let (open, cut) = (open.clone(), cut.clone());
        async move {
            let conn = match opened {
                Some(conn) => conn,
                None => open().await?,
            };
            let conn = match cut {
                Some(cut) => conn.cut_off_by(cut, CUT_OFF),
                None => conn,
            };
            Ok::<_, io::Error>(TokioIo::new(conn))
        }
    });
    tonic::transport::Endpoint::from_static("http://localhost")
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .connect_with_connector(connector)
        .await
}
