//! The host side: launch a go-plugin plugin written in any language,
//! connect to it, and end it without leaving a process or a socket behind.

mod connect;
mod error;
pub(crate) mod group;
mod multiplex;
pub(crate) mod owner;
pub(crate) mod pipe;
pub(crate) mod process;
pub(crate) mod stderr;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tonic::transport::Channel;

use crate::broker::{self, Broker};
use crate::handshake::{HandshakeConfig, HandshakeLine, Protocol};
use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use crate::reattach::{ReattachConfig, ReattachError};
use crate::tls::{self, Identity};
use crate::transport::mux::Mux;
use crate::transport::{PortRange, SocketGroup};

pub use crate::grpc::ConnectStep;
#[cfg(feature = "probe")]
pub(crate) use connect::{Liveness, open_plugin_channel, ping_by};
pub use connect::{StdioHandler, StdioSink};
pub use error::ClientError;
pub use multiplex::Multiplex;
use owner::{Owner, PluginSocket, ProvenProcess};
use stderr::Tail;
use tokio::time::Instant;

/// go-plugin's start timeout: how long a plugin may take to print its line.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a plugin may take to exit after `Shutdown` before it is killed:
/// go-plugin's 2 seconds.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How long asking the kernel who listens on a plugin's socket may take: a
/// unix connect completes in the listener's backlog, without the plugin's
/// help, within microseconds; this only bounds a full backlog.
const SOCKET_PROBE: Duration = Duration::from_millis(250);

/// The ports go-plugin hosts offer plugins that listen on TCP.
pub(crate) const DEFAULT_PORTS: (u16, u16) = (10000, 25000);

/// How to launch plugins: the handshake, the app versions offered, AutoMTLS
/// and the environment go-plugin gives a plugin.
///
/// ```no_run
/// use rpcplugin::{ClientConfig, HandshakeConfig};
///
/// # async fn demo() -> Result<(), rpcplugin::ClientError> {
/// let client = ClientConfig::new(HandshakeConfig::basic_example())
///     .start(std::process::Command::new("./kv_plugin"))
///     .await?;
/// let channel = client.channel(); // for your generated clients
/// # drop(channel);
/// client.kill().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    handshake: HandshakeConfig,
    versions: Vec<u32>,
    protocols: Vec<Protocol>,
    auto_mtls: bool,
    start_timeout: Duration,
    kill_grace: Duration,
    ports: PortRange,
    socket_dir: Option<PathBuf>,
    socket_group: Option<SocketGroup>,
    checksum: Option<[u8; 32]>,
    stdio: StdioSink,
    multiplex: Multiplex,
}

impl ClientConfig {
    /// Offers the handshake's protocol version, allows gRPC, AutoMTLS on.
    pub fn new(handshake: HandshakeConfig) -> Self {
        ClientConfig {
            versions: vec![handshake.protocol_version],
            handshake,
            protocols: vec![Protocol::Grpc],
            auto_mtls: true,
            start_timeout: DEFAULT_START_TIMEOUT,
            kill_grace: DEFAULT_KILL_GRACE,
            ports: PortRange::new(DEFAULT_PORTS.0, DEFAULT_PORTS.1).expect("min <= max"),
            socket_dir: None,
            socket_group: None,
            checksum: None,
            stdio: StdioSink::default(),
            multiplex: Multiplex::Off,
        }
    }

    /// The app protocol versions offered (go-plugin's `VersionedPlugins`
    /// keys); the plugin picks one.
    #[must_use]
    pub fn versions(mut self, versions: impl IntoIterator<Item = u32>) -> Self {
        self.versions = versions.into_iter().collect();
        self
    }

    /// The RPC protocols accepted. Only gRPC is spoken here; a `netrpc`
    /// plugin is refused with go-plugin's "Unsupported plugin protocol".
    #[must_use]
    pub fn allowed_protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }

    /// Turns AutoMTLS off: the connection to the plugin is plaintext, and
    /// any local process that can reach its socket can call it.
    #[must_use]
    pub fn danger_disable_auto_mtls(mut self) -> Self {
        self.auto_mtls = false;
        self
    }

    /// How long [`start`](Self::start) (or [`attach`](Self::attach)) may
    /// take in all: the handshake line, then connecting, the TLS handshake,
    /// HTTP/2 and the first health check share this one deadline.
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long [`Client::kill`] waits after `Shutdown` before SIGKILL.
    #[must_use]
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` for plugins that listen on TCP.
    #[must_use]
    pub fn port_range(mut self, ports: PortRange) -> Self {
        self.ports = ports;
        self
    }

    /// `PLUGIN_UNIX_SOCKET_DIR`: where the plugin creates its socket.
    #[must_use]
    pub fn socket_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.socket_dir = Some(dir.into());
        self
    }

    /// `PLUGIN_UNIX_SOCKET_GROUP`: the group of the plugin's socket.
    #[must_use]
    pub fn socket_group(mut self, group: SocketGroup) -> Self {
        self.socket_group = Some(group);
        self
    }

    /// Refuses to run a plugin binary whose SHA-256 differs (go-plugin's
    /// `SecureConfig`), compared in constant time before anything runs.
    #[must_use]
    pub fn checksum_sha256(mut self, sha256: [u8; 32]) -> Self {
        self.checksum = Some(sha256);
        self
    }

    /// Where the plugin's stdout and stderr, streamed by `GRPCStdio`, go.
    #[must_use]
    pub fn stdio(mut self, sink: StdioSink) -> Self {
        self.stdio = sink;
        self
    }

    /// Whether to ask for go-plugin's multiplexed gRPC (see [`Multiplex`];
    /// off by default, as in go-plugin).
    #[must_use]
    pub fn multiplex(mut self, multiplex: Multiplex) -> Self {
        self.multiplex = multiplex;
        self
    }

    /// Starts the plugin as go-plugin does, and connects to it.
    ///
    /// The command's own environment is kept, and go-plugin's is added: the
    /// cookie, `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`, `PLUGIN_PROTOCOL_VERSIONS`,
    /// `PLUGIN_CLIENT_CERT` (AutoMTLS), and the socket directory and group
    /// when set; `PLUGIN_MULTIPLEX_GRPC=true` when [`multiplex`](Self::multiplex)
    /// asks for it, and otherwise removed (the line's seventh field is then
    /// ignored). The plugin runs in its own process group, with stdin
    /// closed. On Windows it runs in a console process group of its own
    /// (Ctrl-C in the host's console does not reach it) and in a job object
    /// of its own, which is what is killed wherever this says process group
    /// (and which Windows kills when the host process ends).
    ///
    /// # Errors
    ///
    /// [`ClientError`]: the checksum, the spawn, the start timeout, an exit
    /// before the handshake line, a line this host refuses (too long, not
    /// UTF-8, malformed, or not negotiable), stdout closed without one,
    /// AutoMTLS, a connection step that failed or stalled, or the health
    /// check. On every error the plugin's process group has been killed and
    /// reaped, and a socket it made removed.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns (a `timeout` or Ctrl-C around it), the
    /// plugin's process group is killed at once, and tokio reaps the process
    /// in the background (best effort); no [`Client`] exists, so nothing
    /// else is left to stop. Once the plugin has announced a unix socket,
    /// the kernel is asked (without waiting) who listens there before the
    /// kill; a socket the plugin's group listened on is removed from a
    /// thread of its own as soon as it stops listening, within 2 s; any
    /// other is left alone.
    pub async fn start(&self, command: std::process::Command) -> Result<Client, ClientError> {
        let deadline = Instant::now() + self.start_timeout;
        if let Some(expected) = &self.checksum {
            process::verify_checksum(&command, expected)?;
        }
        let program = command.get_program().to_string_lossy().into_owned();
        let name = std::path::Path::new(&program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone());
        let identity = if self.auto_mtls {
            Some(Identity::for_launch()?)
        } else {
            None
        };

        let mut cmd = process::plugin_command(
            command,
            &self.handshake,
            &self.versions,
            self.ports,
            identity.as_ref().map(Identity::cert_pem),
        );
        if let Some(dir) = &self.socket_dir {
            cmd.env(crate::env::PLUGIN_UNIX_SOCKET_DIR, dir);
        }
        if let Some(group) = &self.socket_group {
            cmd.env(crate::env::PLUGIN_UNIX_SOCKET_GROUP, group.to_string());
        }
        if self.multiplex.asked() {
            cmd.env(crate::env::PLUGIN_MULTIPLEX_GRPC, "true");
        }
        let mut child = cmd.spawn().map_err(|source| ClientError::Spawn {
            program: program.clone(),
            source,
        })?;
        let mut guard = group::GroupGuard::of(&mut child)
            .await
            .map_err(|source| ClientError::Spawn { program, source })?;
        let pid = guard.pid();
        let liveness = connect::Liveness::new(Some(pid));
        let tail = Tail::default();
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(stderr::relog(name.clone(), stderr, tail.clone()));

        let first = process::first_line(&mut child, deadline, self.start_timeout, &tail).await;
        let (raw_line, stdout) = match first {
            process::FirstLine::Line(line, stdout) => (line, stdout),
            process::FirstLine::Failed(err) => {
                guard.kill_and_reap(&mut child).await;
                return Err(err);
            }
        };
        tokio::spawn(process::drain_stdout(name.clone(), stdout));

        let handshake_err = |source| ClientError::Handshake {
            line: pipe::printable(raw_line.trim_end()).into_owned(),
            source: Box::new(source),
            stderr: tail.lines(),
        };
        // Unless we asked for multiplexing, the seventh field is ignored, as
        // go-plugin's host ignores it.
        let parsed = if self.multiplex.asked() {
            HandshakeLine::parse(&raw_line)
        } else {
            HandshakeLine::parse_unasked(&raw_line)
        };
        let line = match parsed {
            Ok(line) => line,
            Err(err) => {
                guard.kill_and_reap(&mut child).await;
                return Err(handshake_err(err));
            }
        };
        // From here a dropped start removes the socket too, once proven.
        if let Some(path) = line.endpoint().unix_path() {
            guard.socket(path);
        }
        let checked = line
            .check(&self.versions, &self.protocols)
            .and_then(|()| self.multiplex.decide(line.multiplex()));
        let connected = match checked {
            Ok(multiplexed) => {
                self.connect(
                    &raw_line,
                    &line,
                    identity.as_ref(),
                    multiplexed,
                    deadline,
                    liveness.clone(),
                )
                .await
            }
            Err(err) => Err(handshake_err(err)),
        };
        let (channel, broker_tls, listener, mux) = match connected {
            Ok(connected) => connected,
            Err(err) => {
                // A refused or unreachable plugin may still have made its
                // socket: remove it once the plugin is gone, if the kernel
                // says the plugin made it.
                let socket = match line.endpoint().unix_path() {
                    Some(path) => PluginSocket::probe(path, Owner::Group(pid), SOCKET_PROBE).await,
                    None => None,
                };
                guard.kill_and_reap(&mut child).await;
                if let Some(socket) = socket {
                    socket.remove();
                }
                return Err(err);
            }
        };
        let socket = line
            .endpoint()
            .unix_path()
            .and_then(|path| PluginSocket::prove(path, listener, Owner::Group(pid)));
        let connection = Connection {
            line,
            channel,
            tls: broker_tls,
            socket,
            mux,
            liveness,
        };
        // The client's own drop kills the group from here on.
        let group = guard.disarm();
        Ok(self.client(name, pid, connection, Some((child, group)), None))
    }

    /// Attaches to a plugin that is already running (go-plugin's reattach),
    /// from a [`ReattachConfig`] such as one read from
    /// `TF_REATTACH_PROVIDERS`. The connection is plaintext, as in go-plugin:
    /// a reattach configuration carries no certificate. Connecting is
    /// bounded by the start timeout.
    ///
    /// A plugin in test (debug) mode is never killed by [`Client::kill`];
    /// another one is asked to shut down, and SIGKILLed after the grace
    /// period only if it was proven to be the process the configuration
    /// names (never on Windows, where there are no unix sockets): over a
    /// unix socket, the kernel says which process listens
    /// there (`SO_PEERCRED`), and that process, started at the same moment,
    /// must still be the one running. Over TCP, or when the proof fails, a
    /// plugin that ignores `Shutdown` is left running, with a warning:
    /// go-plugin would SIGKILL whatever process has the pid.
    ///
    /// # Errors
    ///
    /// [`ClientError::Reattach`] for a pid no plugin can have, or a version
    /// not offered or protocol not allowed; connection and health errors as
    /// for [`start`](Self::start).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, the connection it was opening is
    /// dropped and the plugin is left as it was.
    pub async fn attach(&self, config: &ReattachConfig) -> Result<Client, ClientError> {
        let pid = config.check_pid(None)?;
        let line = HandshakeLine::attached(config.protocol_version, config.endpoint.clone());
        line.check(&self.versions, &self.protocols)
            .map_err(|source| ReattachError::Refused {
                endpoint: config.endpoint.clone(),
                version: config.protocol_version,
                source: Box::new(source),
            })?;
        let deadline = Instant::now() + self.start_timeout;
        let liveness = connect::Liveness::new(None);
        let (channel, listener) =
            connect::open_plugin_channel(line.endpoint(), None, deadline, liveness.clone()).await?;
        connect::ping_by(channel.clone(), line.endpoint(), deadline).await?;
        let socket = line
            .endpoint()
            .unix_path()
            .and_then(|path| PluginSocket::prove(path, listener, Owner::Process(pid)));
        let process = socket.as_ref().and_then(|_| ProvenProcess::now(pid));
        if process.is_none() && !config.test {
            tracing::warn!(
                pid,
                endpoint = %line.endpoint(),
                "cannot prove that pid {pid} is the plugin listening at {}: it will be asked to shut down but never killed",
                line.endpoint()
            );
        }
        let name = format!("pid {pid}");
        let connection = Connection {
            line,
            channel,
            tls: None,
            socket,
            mux: None,
            liveness,
        };
        let attached = Attached {
            test: config.test,
            process,
        };
        Ok(self.client(name, config.pid, connection, None, Some(attached)))
    }

    /// A connected plugin: forwards its stdio and registers it for
    /// [`cleanup_clients`].
    fn client(
        &self,
        name: String,
        pid: u32,
        connection: Connection,
        child: Option<(tokio::process::Child, group::Group)>,
        attached: Option<Attached>,
    ) -> Client {
        let (child, group) = child.unzip();
        let Connection {
            line,
            channel,
            tls,
            socket,
            mux,
            liveness,
        } = connection;
        tokio::spawn(connect::forward_stdio(
            name.clone(),
            channel.clone(),
            self.stdio.clone(),
        ));
        // Ends with the client's kill or drop.
        liveness.watch();
        let multiplexed = mux.is_some();
        let broker = Broker::new();
        broker.connect(broker::Context {
            listen: match line.endpoint().unix_path() {
                Some(_) => crate::transport::Listen::Unix {
                    dir: self
                        .socket_dir
                        .clone()
                        .unwrap_or_else(crate::transport::socket_dir_from_env),
                    group: self.socket_group.clone(),
                },
                None => crate::transport::Listen::Tcp(self.ports),
            },
            server_tls: tls.as_ref().map(|(server, _)| server.clone()),
            client_tls: tls.map(|(_, client)| client),
            mux,
            cut: Some(liveness.cut()),
        });
        broker.open_stream(name.clone(), channel.clone());
        let inner = Arc::new(Inner {
            name,
            pid,
            line,
            channel,
            broker,
            grace: self.kill_grace,
            child: tokio::sync::Mutex::new(child),
            group,
            status: Mutex::new(None),
            attached,
            socket,
            multiplexed,
            liveness,
        });
        registry()
            .lock()
            .expect("registry lock")
            .push(Arc::downgrade(&inner));
        Client { inner }
    }

    /// Connects to the endpoint of a checked line (`multiplexed` or not),
    /// and pings, by `deadline`. Gives the channel, with AutoMTLS the TLS
    /// configurations for the broker (serving the plugin, our certificate
    /// and the plugin's required; and dialling it), who listens on a unix
    /// socket, and the multiplexed session.
    async fn connect(
        &self,
        raw_line: &str,
        line: &HandshakeLine,
        identity: Option<&Identity>,
        multiplexed: bool,
        deadline: Instant,
        liveness: connect::Liveness,
    ) -> Result<(Channel, Option<BrokerTls>, Option<i32>, Option<Mux>), ClientError> {
        let tls = match identity {
            None => None,
            Some(identity) => {
                let der = line
                    .server_cert()
                    .ok_or_else(|| ClientError::NoServerCertificate {
                        line: pipe::printable(raw_line.trim_end()).into_owned(),
                    })?;
                let cert = rustls::pki_types::CertificateDer::from(der.to_vec());
                Some((
                    tls::server_config(identity, cert.clone())?,
                    tls::client_config(identity, cert)?,
                ))
            }
        };
        let client_tls = tls.as_ref().map(|(_, client)| client.clone());
        let (channel, listener, mux) = if multiplexed {
            let (channel, mux, listener) =
                multiplex::open_multiplexed(line.endpoint(), client_tls, deadline, liveness)
                    .await?;
            (channel, listener, Some(mux))
        } else {
            let (channel, listener) =
                connect::open_plugin_channel(line.endpoint(), client_tls, deadline, liveness)
                    .await?;
            (channel, listener, None)
        };
        if let Err(err) = connect::ping_by(channel.clone(), line.endpoint(), deadline).await {
            return Err(match &mux {
                Some(mux) => multiplex::session_error(mux, line.endpoint(), err, deadline).await,
                None => err,
            });
        }
        tracing::debug!(version = line.app_version(), endpoint = %line.endpoint(), multiplexed, "plugin connected");
        Ok((channel, tls, listener, mux))
    }
}

/// The host's AutoMTLS configurations for brokered connections: serving
/// (the plugin dials us) and dialling.
type BrokerTls = (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>);

/// What a connected plugin gave us.
struct Connection {
    line: HandshakeLine,
    channel: Channel,
    tls: Option<BrokerTls>,
    /// Its unix socket, when proven the plugin's: removed after it.
    socket: Option<PluginSocket>,
    /// The multiplexed session, when multiplexing.
    mux: Option<Mux>,
    /// Ended when the client kills the plugin.
    liveness: connect::Liveness,
}

/// A plugin we attached to rather than started.
#[derive(Debug)]
struct Attached {
    /// Test (debug) mode: a host never kills it.
    test: bool,
    /// The plugin's process, when proven to be the one listening on its
    /// socket: the only process that may be signalled.
    process: Option<ProvenProcess>,
}

/// A running plugin: its gRPC channel, and the means to end it.
///
/// Dropping a `Client` kills the plugin's process group at once (no
/// graceful shutdown) and removes a socket it left behind; call
/// [`kill`](Self::kill) for go-plugin's graceful sequence.
#[derive(Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    pid: u32,
    line: HandshakeLine,
    channel: Channel,
    broker: Broker,
    grace: Duration,
    /// `None` once the plugin was killed and reaped.
    child: tokio::sync::Mutex<Option<tokio::process::Child>>,
    /// The started plugin's process tree (none for a reattached plugin).
    group: Option<group::Group>,
    status: Mutex<Option<ExitStatus>>,
    /// For a reattached plugin (no child of ours).
    attached: Option<Attached>,
    /// The plugin's unix socket, proven its own.
    socket: Option<PluginSocket>,
    /// Whether the connection is multiplexed (yamux).
    multiplexed: bool,
    /// Ended once killed: the channel no longer reconnects; its
    /// connections are cut off a second later, or a second after the
    /// plugin exited.
    liveness: connect::Liveness,
}

impl Client {
    /// A channel to the plugin, for your generated gRPC clients (set
    /// [`MAX_MESSAGE_SIZE`](crate::grpc::MAX_MESSAGE_SIZE) on them, as go-plugin
    /// hosts allow messages of up to 2^31−1 bytes).
    ///
    /// Once a plugin we started has exited, calls on it fail (`Unavailable`
    /// or `Unknown`, the cause saying the connection was cut off) within
    /// about a second, even when a process the plugin left behind still
    /// holds its socket open; the channel never connects again. The same
    /// holds for the channels its [`broker`](Self::broker) dials.
    pub fn channel(&self) -> Channel {
        self.inner.channel.clone()
    }

    /// The host's side of go-plugin's GRPCBroker, opened on connect: serve
    /// callbacks the plugin dials, or dial services the plugin serves.
    /// Brokered listeners use this host's socket directory, group or port
    /// range (as the plugin's own endpoint is unix or TCP) and AutoMTLS.
    /// It closes, removing its sockets, when the plugin is killed.
    pub fn broker(&self) -> Broker {
        self.inner.broker.clone()
    }

    /// The plugin's handshake line: negotiated version, endpoint,
    /// certificate.
    pub fn handshake(&self) -> &HandshakeLine {
        &self.inner.line
    }

    /// Whether the connection is go-plugin's multiplexed gRPC: one socket,
    /// the main and every brokered connection yamux streams of it (then a
    /// brokered server's endpoint is the plugin's own).
    pub fn multiplexed(&self) -> bool {
        self.inner.multiplexed
    }

    /// The negotiated app protocol version.
    pub fn version(&self) -> u32 {
        self.inner.line.app_version()
    }

    /// The plugin's process id (also its process group id on unix).
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Checks the plugin's health (`"plugin"` SERVING).
    ///
    /// # Errors
    ///
    /// [`ClientError::Unhealthy`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it cancels the health call; the client is
    /// unaffected.
    pub async fn ping(&self) -> Result<(), ClientError> {
        connect::ping(self.channel()).await
    }

    /// How a host reattaches to this plugin (`TF_REATTACH_PROVIDERS`).
    pub fn reattach_config(&self) -> ReattachConfig {
        let line = &self.inner.line;
        let test = self.inner.attached.as_ref().is_some_and(|a| a.test);
        ReattachConfig::new(
            line.app_version(),
            line.endpoint().clone(),
            self.inner.pid,
            test,
        )
        .expect("the pid of a started or attached plugin was checked")
    }

    /// Whether the plugin process has exited.
    pub fn exited(&self) -> bool {
        if let Some(attached) = &self.inner.attached {
            return match &attached.process {
                Some(process) => !process.alive(),
                None => !crate::sys::process_runs(self.inner.pid),
            };
        }
        self.exit_status().is_some()
            || self
                .inner
                .child
                .try_lock()
                .is_ok_and(|child| child.is_none())
    }

    /// How the plugin exited, once it has (a plugin we started).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let known = *self.inner.status.lock().expect("status lock");
        // Not reaped until killed, so that its pid stays its own.
        known.or_else(|| match self.inner.child.try_lock() {
            Ok(child) if child.is_some() => crate::sys::exit_status_unreaped(self.inner.pid),
            _ => None,
        })
    }

    /// Ends the plugin as go-plugin does: `GRPCController.Shutdown`, then up
    /// to the kill grace (2 s) for it to exit by itself, then SIGKILL. The
    /// whole process group is killed at the end either way, so no child the
    /// plugin forked survives it, and a socket it left behind is removed.
    /// On Windows the plugin's job object is terminated instead, which ends
    /// every process the plugin started.
    /// Calling it again is harmless. Returns the exit status.
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns, the plugin may still be running (asked to
    /// shut down, or within its grace period): the broker is closed already,
    /// and calling `kill` again goes on from where the plugin is (it is asked
    /// again if it is still running, then killed); dropping the last handle to
    /// the client kills a started plugin's process group at once.
    pub async fn kill(&self) -> Option<ExitStatus> {
        self.inner.kill().await
    }
}

impl Inner {
    async fn kill(&self) -> Option<ExitStatus> {
        // As go-plugin: the broker first, then the plugin.
        self.broker.close().await;
        if let Some(attached) = &self.attached {
            if !attached.test {
                self.kill_attached(attached.process).await;
            }
            self.liveness.end();
            return None;
        }
        let mut guard = self.child.lock().await;
        let Some(child) = guard.as_mut() else {
            return *self.status.lock().expect("status lock");
        };
        if crate::sys::exit_status_unreaped(self.pid).is_none() {
            self.ask_shutdown().await;
            let exit = tokio::time::timeout(self.grace, process::wait_exit(self.pid));
            if exit.await.is_err() {
                tracing::warn!(
                    plugin = self.name,
                    "plugin failed to exit gracefully; killing it"
                );
            }
        }
        // Still unreaped, the plugin's pid names its group and nothing
        // else: kill the group, children it forked included, then reap.
        // From here the pid may be reused: the channel never dials again.
        self.liveness.end();
        let status = match &self.group {
            Some(group) => group.kill_and_reap(child).await,
            None => child.wait().await.ok(),
        };
        *guard = None;
        *self.status.lock().expect("status lock") = status;
        if let Some(socket) = &self.socket {
            socket.remove();
        }
        status
    }

    /// `GRPCController.Shutdown`, for at most the grace period.
    async fn ask_shutdown(&self) {
        let mut controller = GrpcControllerClient::new(self.channel.clone());
        let answer = tokio::time::timeout(self.grace, controller.shutdown(Empty {})).await;
        match answer {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::debug!(plugin = self.name, %err, "GRPCController.Shutdown failed")
            }
            Err(_) => tracing::debug!(plugin = self.name, "GRPCController.Shutdown did not answer"),
        }
    }

    /// Shutdown, then up to the grace period for the process to go, then
    /// SIGKILL, only for a process proven to be the plugin (a reattached
    /// plugin is not our child: neither reaped nor killed as a group).
    async fn kill_attached(&self, process: Option<ProvenProcess>) {
        self.ask_shutdown().await;
        let deadline = tokio::time::Instant::now() + self.grace;
        let alive = || match &process {
            Some(process) => process.alive(),
            None => crate::sys::process_runs(self.pid),
        };
        while alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match process {
            Some(process) if process.alive() => {
                tracing::warn!(
                    plugin = self.name,
                    "reattached plugin did not exit; killing it"
                );
                group::kill_proven(&process);
            }
            None if alive() => tracing::warn!(
                plugin = self.name,
                "reattached plugin did not exit, and pid {} was never proven to be it: not killed",
                self.pid
            ),
            _ => {}
        }
        if let Some(socket) = &self.socket {
            socket.remove();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.liveness.end();
        self.broker
            .close_in_background(crate::broker::CloseReason::ClientDropped);
        let Some(mut child) = self.child.get_mut().take() else {
            return;
        };
        if let Some(group) = &self.group {
            let _ = group.kill();
        }
        let socket = self.socket.take();
        // Reap and clean up off the async runtime: the kill is immediate,
        // the exit follows within milliseconds.
        std::thread::spawn(move || {
            for _ in 0..200 {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Some(socket) = socket {
                socket.remove();
            }
        });
    }
}

fn registry() -> &'static Mutex<Vec<Weak<Inner>>> {
    static CLIENTS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());
    &CLIENTS
}

/// Kills every plugin started by this process that is still running, as
/// go-plugin's `CleanupClients`: call it before the host exits.
///
/// # Cancel safety
///
/// Dropped before it returns, the plugins it had not reached yet are left
/// running, and the one it was killing is left as [`Client::kill`] leaves it;
/// calling it again finishes the job.
pub async fn cleanup_clients() {
    let clients: Vec<Arc<Inner>> = {
        let mut list = registry().lock().expect("registry lock");
        list.retain(|weak| weak.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    };
    for client in clients {
        client.kill().await;
    }
}
