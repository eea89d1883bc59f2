//! The host's connection to a plugin: a tonic channel through our
//! transports (TLS pinned to the plugin's certificate when AutoMTLS is on),
//! the health ping, and the plugin's stdio stream.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use tokio::time::Instant;

use super::{ClientError, ConnectStep, chain};
use crate::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use crate::proto::plugin::stdio_data::Channel as StdioChannel;
use crate::{Connection, Endpoint, TransportError};

/// How long dialling (and the TLS handshake of) a reconnect or a brokered
/// connection may take: the plugin listens before it prints its line, so
/// this only bounds a peer that died or stalled.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 windows of the host's connection, as on the plugin side: several
/// MiB, so large messages flow without waiting for WINDOW_UPDATE frames.
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 8 << 20;

/// A function that receives the plugin's stdio: the channel (`Stdout` or
/// `Stderr`) and the bytes.
pub type StdioHandler = Arc<dyn Fn(StdioChannel, &[u8]) + Send + Sync>;

/// Where the plugin's own stdout and stderr (streamed by `GRPCStdio`) go.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum StdioSink {
    /// To this process's stdout and stderr (the default, as go-plugin's
    /// `SyncStdout`/`SyncStderr` set to `os.Stdout`/`os.Stderr`).
    #[default]
    Inherit,
    /// Nowhere.
    Discard,
    /// To a function, with the channel (`Stdout` or `Stderr`) and the bytes.
    Handler(StdioHandler),
}

impl std::fmt::Debug for StdioSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StdioSink::Inherit => "Inherit",
            StdioSink::Discard => "Discard",
            StdioSink::Handler(_) => "Handler(..)",
        })
    }
}

impl StdioSink {
    fn write(&self, channel: StdioChannel, data: &[u8]) {
        match self {
            StdioSink::Inherit => {
                let _ = match channel {
                    StdioChannel::Stderr => std::io::stderr().write_all(data),
                    _ => std::io::stdout().write_all(data),
                };
            }
            StdioSink::Discard => {}
            StdioSink::Handler(handler) => handler(channel, data),
        }
    }
}

/// Dials `endpoint` and, with `tls`, completes the TLS handshake (server
/// name `localhost`, the certificate pinned by the config), each step by
/// `deadline`.
async fn dial(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> Result<Connection, ClientError> {
    let stalled = |step| ClientError::Stalled {
        step,
        endpoint: endpoint.clone(),
        waited: deadline.saturating_duration_since(Instant::now()),
    };
    let budget = deadline.saturating_duration_since(Instant::now());
    let conn = match crate::connect(endpoint, budget).await {
        Ok(conn) => conn,
        Err(TransportError::ConnectTimeout { timeout, .. }) => {
            return Err(ClientError::Stalled {
                step: ConnectStep::Connect,
                endpoint: endpoint.clone(),
                waited: timeout,
            });
        }
        Err(err) => return Err(err.into()),
    };
    let Some(config) = tls else {
        return Ok(conn);
    };
    let waited = stalled(ConnectStep::TlsHandshake);
    let name = ServerName::try_from("localhost").expect("a valid name");
    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, conn);
    match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(tls)) => Ok(Connection::from(tls)),
        Ok(Err(source)) => Err(TransportError::Connect {
            endpoint: endpoint.clone(),
            source,
        }
        .into()),
        Err(_) => Err(waited),
    }
}

/// Opens a gRPC channel to `endpoint`, for brokered connections and
/// reconnects: each connection dialled and TLS-handshaken within
/// [`CONNECT_TIMEOUT`].
pub(crate) async fn open_channel(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Channel, tonic::transport::Error> {
    channel(endpoint, tls, None).await
}

/// A channel whose first connection is `first` (already open), and whose
/// reconnects dial anew.
async fn channel(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    first: Option<Connection>,
) -> Result<Channel, tonic::transport::Error> {
    let target = endpoint.clone();
    let first = Arc::new(std::sync::Mutex::new(first));
    let connector = tower::service_fn(move |_| {
        let (target, tls, first) = (target.clone(), tls.clone(), first.clone());
        async move {
            let opened = first.lock().expect("first connection lock").take();
            let conn = match opened {
                Some(conn) => conn,
                None => dial(&target, tls, Instant::now() + CONNECT_TIMEOUT)
                    .await
                    .map_err(|err| io::Error::other(chain(&err)))?,
            };
            Ok::<_, io::Error>(TokioIo::new(conn))
        }
    });
    let scheme = "http://localhost";
    tonic::transport::Endpoint::from_static(scheme)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .connect_with_connector(connector)
        .await
}

/// The host's main connection to a plugin: dial, TLS and HTTP/2, each
/// bounded by `deadline` and named when it stalls.
/// Gives the channel and, over a unix socket, the pid of the process that
/// listens there.
pub(crate) async fn open_plugin_channel(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
) -> Result<(Channel, Option<i32>), ClientError> {
    let conn = dial(endpoint, tls.clone(), deadline).await?;
    let peer_pid = conn.peer_pid();
    let waited = deadline.saturating_duration_since(Instant::now());
    let channel = match tokio::time::timeout_at(deadline, channel(endpoint, tls, Some(conn))).await
    {
        Ok(Ok(channel)) => channel,
        Ok(Err(source)) => {
            return Err(ClientError::Connect {
                endpoint: endpoint.clone(),
                source,
            });
        }
        Err(_) => {
            return Err(ClientError::Stalled {
                step: ConnectStep::Http2,
                endpoint: endpoint.clone(),
                waited,
            });
        }
    };
    Ok((channel, peer_pid))
}

/// [`ping`], by `deadline`: the first health check of a connection.
pub(crate) async fn ping_by(
    channel: Channel,
    endpoint: &Endpoint,
    deadline: Instant,
) -> Result<(), ClientError> {
    let waited = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout_at(deadline, ping(channel)).await {
        Ok(answer) => answer,
        Err(_) => Err(ClientError::Stalled {
            step: ConnectStep::HealthCheck,
            endpoint: endpoint.clone(),
            waited,
        }),
    }
}

/// go-plugin's ping: `grpc.health.v1.Health/Check` on service `"plugin"`.
pub(crate) async fn ping(channel: Channel) -> Result<(), ClientError> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .map_err(|status| ClientError::Unhealthy { status })?;
    let status = response.into_inner().status;
    if status != ServingStatus::Serving as i32 {
        let name = ServingStatus::try_from(status)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        return Err(ClientError::Unhealthy {
            status: tonic::Status::unavailable(format!("service \"plugin\" is {name}")),
        });
    }
    Ok(())
}

/// Streams the plugin's stdout and stderr into `sink` until the stream
/// ends. A plugin without `GRPCStdio` gets a log line, as go-plugin does.
pub(crate) async fn forward_stdio(plugin: String, channel: Channel, sink: StdioSink) {
    let mut stream = match GrpcStdioClient::new(channel).stream_stdio(()).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            tracing::warn!(
                plugin,
                "the plugin does not serve GRPCStdio; its stdout and stderr are not forwarded"
            );
            return;
        }
        Err(status) => {
            tracing::debug!(plugin, %status, "GRPCStdio stream not opened");
            return;
        }
    };
    while let Ok(Some(data)) = stream.message().await {
        let channel = StdioChannel::try_from(data.channel).unwrap_or(StdioChannel::Invalid);
        sink.write(channel, &data.data);
    }
}
