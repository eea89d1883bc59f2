//! The host's connection to a plugin: a tonic channel through our
//! transports (TLS pinned to the plugin's certificate when AutoMTLS is on),
//! the health ping, and the plugin's stdio stream.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::ClientError;
use crate::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use crate::proto::plugin::stdio_data::Channel as StdioChannel;
use crate::{Connection, Endpoint, TransportError};

/// How long dialling the plugin may take: it listens before it prints its
/// line, so this only bounds a plugin that died in between.
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

/// Opens a gRPC channel to `endpoint`; with `tls`, each connection is TLS
/// with server name `localhost`, the certificate pinned by the config.
pub(crate) async fn open_channel(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Channel, tonic::transport::Error> {
    let target = endpoint.clone();
    let connector = tower::service_fn(move |_| {
        let (target, tls) = (target.clone(), tls.clone());
        async move {
            let conn = crate::connect(&target, CONNECT_TIMEOUT).await?;
            let conn = match tls {
                None => conn,
                Some(config) => {
                    let name = ServerName::try_from("localhost").expect("a valid name");
                    let tls = tokio_rustls::TlsConnector::from(config)
                        .connect(name, conn)
                        .await
                        .map_err(|source| TransportError::Connect {
                            endpoint: target.clone(),
                            source,
                        })?;
                    Connection::from(tls)
                }
            };
            Ok::<_, TransportError>(TokioIo::new(conn))
        }
    });
    let scheme = "http://localhost";
    tonic::transport::Endpoint::from_static(scheme)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .connect_with_connector(connector)
        .await
}

/// [`open_channel`] for the host's main connection.
pub(crate) async fn open_plugin_channel(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Channel, ClientError> {
    open_channel(endpoint, tls)
        .await
        .map_err(|source| ClientError::Connect {
            endpoint: endpoint.clone(),
            source,
        })
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
