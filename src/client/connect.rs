//! The host's connection to a plugin: the main channel with each step
//! under the start deadline, the first health check, and the plugin's
//! stdio stream.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::ClientError;
use crate::grpc::{self, ConnectStep, Dial};
use crate::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use crate::proto::plugin::stdio_data::Channel as StdioChannel;
use crate::transport::Endpoint;

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
    /// It runs on the runtime: it must not block (hand the bytes to a
    /// channel or a thread of yours if it might).
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

/// Chunks of the plugin's output queued towards the thread that writes
/// them to this process's stdout and stderr ([`StdioSink::Inherit`]).
const INHERIT_QUEUE: usize = 16;

/// Writes the plugin's output to this process's stdout and stderr on a
/// thread of its own: a blocking write must never hold a runtime worker (a
/// host whose stdout is a pipe nobody reads would otherwise stop: timers,
/// health checks and `kill` included). When that thread waits, the queue
/// fills, the stream is no longer read, and HTTP/2 flow control slows the
/// plugin's printing, and nothing else.
fn inherit_writer() -> Option<tokio::sync::mpsc::Sender<(StdioChannel, bytes::Bytes)>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(StdioChannel, bytes::Bytes)>(INHERIT_QUEUE);
    let spawned = std::thread::Builder::new()
        .name("rpcplugin-stdio-sink".into())
        .spawn(move || {
            while let Some((channel, data)) = rx.blocking_recv() {
                let _ = match channel {
                    StdioChannel::Stderr => std::io::stderr().write_all(&data),
                    _ => std::io::stdout().write_all(&data),
                };
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(err) => {
            tracing::warn!(error = %err, "cannot start the thread that forwards the plugin's stdio");
            None
        }
    }
}

/// Whether a client's channel may still connect to its plugin: not once
/// the client killed (or dropped) it, nor once the plugin, our child,
/// exited. A channel otherwise reconnects to its endpoint, where another
/// plugin may listen by then (TCP plugins take the first free port of the
/// range, so reuse is the normal case), and without AutoMTLS nothing would
/// tell them apart. go-plugin closes its connection in `Kill`.
///
/// It also cuts the channel's open connections off once the plugin is gone
/// (see [`watch`](Self::watch)): a plugin's socket that another
/// process still holds (a child it forked, which inherits every
/// descriptor) stays open after the plugin exits, and a call in flight
/// would wait on it for ever.
#[derive(Debug, Clone)]
pub(crate) struct Liveness {
    /// Cancelled when the client kills or drops its plugin.
    ended: CancellationToken,
    /// Cancelled [`CUT_AFTER_EXIT`] after `ended` or the plugin's exit:
    /// what the channel's connections are cut off by.
    cut: CancellationToken,
    /// Our child's pid, checked (without reaping) before each reconnect.
    child: Option<u32>,
}

/// How often the watch of a plugin's exit looks without being woken: on
/// unix SIGCHLD wakes it and this is a backstop only; on Windows, where
/// nothing wakes it, it is how late a call on a connection that outlives
/// its plugin fails (the usual case, a socket that closes with the
/// plugin, fails the call at once). Four looks a second per plugin for
/// its whole life, 25 times fewer than `Client::kill`'s 10 ms poll, which
/// only runs while a kill waits.
const EXIT_WATCH: Duration = Duration::from_millis(250);

/// How long after the plugin's exit (or its kill) its connections are cut
/// off. What it sent before it exited (its last output on `GRPCStdio`, a
/// reply) is in our socket's buffer by then and is read within
/// milliseconds, and a socket that closes with the plugin ends its calls
/// by itself; only a socket that outlives the plugin waits for the cut. A
/// second leaves room for a loaded machine.
const CUT_AFTER_EXIT: Duration = Duration::from_secs(1);

impl Liveness {
    pub(crate) fn new(child: Option<u32>) -> Self {
        Liveness {
            ended: CancellationToken::new(),
            cut: CancellationToken::new(),
            child,
        }
    }

    /// The client killed or dropped its plugin: no reconnect from now on,
    /// and the connections are cut off soon (see [`watch`](Self::watch)).
    pub(crate) fn end(&self) {
        self.ended.cancel();
    }

    /// What the connections to the plugin are cut off by.
    pub(crate) fn cut(&self) -> CancellationToken {
        self.cut.clone()
    }

    /// Cuts the connections off [`CUT_AFTER_EXIT`] after the plugin, our
    /// child, exits, or after [`end`](Self::end) (a task that ends then).
    /// Only once the plugin has started: until `end` the pid is our
    /// unreaped child's, and the watch of it stops there.
    pub(crate) fn watch(&self) {
        let (ended, cut, child) = (self.ended.clone(), self.cut.clone(), self.child);
        tokio::spawn(async move {
            match child {
                Some(pid) => tokio::select! {
                    () = ended.cancelled() => {}
                    () = super::process::wait_exit_every(pid, EXIT_WATCH) => {
                        tracing::debug!(pid, "the plugin exited: its connections are cut off in {CUT_AFTER_EXIT:?}");
                    }
                },
                None => ended.cancelled().await,
            }
            tokio::time::sleep(CUT_AFTER_EXIT).await;
            cut.cancel();
        });
    }

    /// An error naming why the plugin may not be dialled again, if it may
    /// not.
    pub(crate) fn check(&self) -> std::io::Result<()> {
        let gone = |why: String| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!(
                    "{why}: its client's channel no longer connects (another process may listen there now)"
                ),
            ))
        };
        if self.ended.is_cancelled() {
            return gone("the plugin was killed".into());
        }
        if let Some(pid) = self.child
            && let Some(status) = crate::sys::exit_status_unreaped(pid)
        {
            return gone(format!("the plugin (pid {pid}) exited ({status})"));
        }
        Ok(())
    }
}

/// The host's main connection to a plugin: dial, TLS and HTTP/2, each
/// bounded by `deadline` and named when it stalls.
/// Gives the channel and, over a unix socket, the pid of the process that
/// listens there.
/// Reconnects only while `liveness` allows.
pub(crate) async fn open_plugin_channel(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
    liveness: Liveness,
) -> Result<(Channel, Option<i32>), ClientError> {
    let conn = grpc::dial(endpoint, tls.clone(), deadline)
        .await
        .map_err(|err| dial_error(endpoint, err))?;
    let peer_pid = conn.peer_pid();
    let waited = deadline.saturating_duration_since(Instant::now());
    let target = endpoint.clone();
    let cut = liveness.cut();
    let reconnect = move || {
        let (target, tls, liveness) = (target.clone(), tls.clone(), liveness.clone());
        async move {
            liveness.check()?;
            grpc::dial(&target, tls, Instant::now() + grpc::CONNECT_TIMEOUT)
                .await
                .map_err(|err| std::io::Error::other(err.to_string()))
        }
    };
    let channel = match tokio::time::timeout_at(
        deadline,
        grpc::channel_with(Some(conn), reconnect, Some(cut)),
    )
    .await
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

/// A failed [`grpc::dial`] of the plugin at `endpoint`, as the host says it.
pub(crate) fn dial_error(endpoint: &Endpoint, err: Dial) -> ClientError {
    match err {
        Dial::Stalled(step, waited) => ClientError::Stalled {
            step,
            endpoint: endpoint.clone(),
            waited,
        },
        Dial::Failed(err) => ClientError::Unreachable(err),
    }
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
    grpc::ping(channel)
        .await
        .map_err(|status| ClientError::Unhealthy { status })
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
    // The writer's thread starts with the first output, not with the
    // stream: most plugins print nothing, and a thread started here costs
    // the host about 50 µs while the first call is on its way.
    let mut writer = None;
    while let Ok(Some(data)) = stream.message().await {
        let channel = StdioChannel::try_from(data.channel).unwrap_or(StdioChannel::Invalid);
        if let StdioSink::Inherit = sink {
            let Some(writer) = writer.get_or_insert_with(inherit_writer) else {
                return;
            };
            if writer.send((channel, data.data)).await.is_err() {
                return;
            }
        } else if let StdioSink::Handler(handler) = &sink {
            handler(channel, &data.data);
        }
    }
}
