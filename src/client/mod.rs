//! The host side: launch a go-plugin plugin written in any language,
//! connect to it, and end it without leaving a process or a socket behind.

mod connect;
mod error;
pub(crate) mod process;
pub(crate) mod stderr;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tonic::transport::Channel;

use crate::broker::{self, Broker};
use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use crate::tls::{self, Identity};
use crate::{HandshakeConfig, HandshakeLine, PortRange, Protocol, ReattachConfig, SocketGroup};

pub use connect::{StdioHandler, StdioSink};
pub(crate) use connect::{open_channel, open_plugin_channel, ping};
pub use error::ClientError;
pub(crate) use error::chain;
use stderr::Tail;

/// go-plugin's start timeout: how long a plugin may take to print its line.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a plugin may take to exit after `Shutdown` before it is killed:
/// go-plugin's 2 seconds.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

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
        }
    }

    /// The app protocol versions offered (go-plugin's `VersionedPlugins`
    /// keys); the plugin picks one.
    pub fn versions(mut self, versions: impl IntoIterator<Item = u32>) -> Self {
        self.versions = versions.into_iter().collect();
        self
    }

    /// The RPC protocols accepted. Only gRPC is spoken here; a `netrpc`
    /// plugin is refused with go-plugin's "Unsupported plugin protocol".
    pub fn allowed_protocols(mut self, protocols: impl IntoIterator<Item = Protocol>) -> Self {
        self.protocols = protocols.into_iter().collect();
        self
    }

    /// Turns AutoMTLS off: the connection to the plugin is plaintext, and
    /// any local process that can reach its socket can call it.
    pub fn danger_disable_auto_mtls(mut self) -> Self {
        self.auto_mtls = false;
        self
    }

    /// How long the plugin may take to print its handshake line.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// How long [`Client::kill`] waits after `Shutdown` before SIGKILL.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT` for plugins that listen on TCP.
    pub fn port_range(mut self, ports: PortRange) -> Self {
        self.ports = ports;
        self
    }

    /// `PLUGIN_UNIX_SOCKET_DIR`: where the plugin creates its socket.
    pub fn socket_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.socket_dir = Some(dir.into());
        self
    }

    /// `PLUGIN_UNIX_SOCKET_GROUP`: the group of the plugin's socket.
    pub fn socket_group(mut self, group: SocketGroup) -> Self {
        self.socket_group = Some(group);
        self
    }

    /// Refuses to run a plugin binary whose SHA-256 differs (go-plugin's
    /// `SecureConfig`), compared in constant time before anything runs.
    pub fn checksum_sha256(mut self, sha256: [u8; 32]) -> Self {
        self.checksum = Some(sha256);
        self
    }

    /// Where the plugin's stdout and stderr, streamed by `GRPCStdio`, go.
    pub fn stdio(mut self, sink: StdioSink) -> Self {
        self.stdio = sink;
        self
    }

    /// Starts the plugin as go-plugin does, and connects to it.
    ///
    /// The command's own environment is kept, and go-plugin's is added: the
    /// cookie, `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`, `PLUGIN_PROTOCOL_VERSIONS`,
    /// `PLUGIN_CLIENT_CERT` (AutoMTLS), and the socket directory and group
    /// when set. The plugin runs in its own process group, with stdin closed.
    ///
    /// # Errors
    ///
    /// [`ClientError`]: the checksum, the spawn, the start timeout, an exit
    /// before the handshake line, a line this host refuses, AutoMTLS, the
    /// connection, or the health check. On every error the plugin's process
    /// group has been killed and reaped.
    pub async fn start(self, command: std::process::Command) -> Result<Client, ClientError> {
        if let Some(expected) = &self.checksum {
            process::verify_checksum(std::path::Path::new(command.get_program()), expected)?;
        }
        let program = command.get_program().to_string_lossy().into_owned();
        let name = std::path::Path::new(&program)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone());
        let identity = if self.auto_mtls {
            Some(Identity::generate()?)
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
            cmd.env("PLUGIN_UNIX_SOCKET_DIR", dir);
        }
        if let Some(group) = &self.socket_group {
            cmd.env("PLUGIN_UNIX_SOCKET_GROUP", group.to_string());
        }
        let mut child = cmd.spawn().map_err(|source| ClientError::Spawn {
            program: program.clone(),
            source,
        })?;
        let pid = child.id().expect("a running child has a pid");
        let tail = Tail::default();
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(stderr::relog(name.clone(), stderr, tail.clone()));

        let (raw_line, stdout) =
            match process::first_line(&mut child, self.start_timeout, &tail).await {
                process::FirstLine::Line(line, stdout) => (line, stdout),
                process::FirstLine::Failed(err) => {
                    process::kill_and_reap(&mut child, pid).await;
                    return Err(err);
                }
            };
        tokio::spawn(process::drain_stdout(name.clone(), stdout));

        let line = match self.check_line(&raw_line, &tail) {
            Ok(line) => line,
            Err(err) => {
                process::kill_and_reap(&mut child, pid).await;
                return Err(err);
            }
        };
        let (channel, broker_tls) = match self
            .connect(&name, &raw_line, &line, identity.as_ref())
            .await
        {
            Ok(connected) => connected,
            Err(err) => {
                process::kill_and_reap(&mut child, pid).await;
                if let Some(path) = line.endpoint().unix_path() {
                    remove_stale_socket(path);
                }
                return Err(err);
            }
        };
        let connection = Connection {
            line,
            channel,
            tls: broker_tls,
        };
        Ok(self.client(name, pid, connection, Some(child), None))
    }

    /// Attaches to a plugin that is already running (go-plugin's reattach),
    /// from a [`ReattachConfig`] such as one read from
    /// `TF_REATTACH_PROVIDERS`. The connection is plaintext, as in go-plugin:
    /// a reattach configuration carries no certificate. A plugin in test
    /// (debug) mode is never killed by [`Client::kill`]; another one is asked
    /// to shut down, then killed after the grace period.
    ///
    /// # Errors
    ///
    /// [`ClientError::Handshake`] when the version is not offered or the
    /// protocol not allowed; connection and health errors as for
    /// [`start`](Self::start).
    pub async fn attach(&self, config: &ReattachConfig) -> Result<Client, ClientError> {
        let line = HandshakeLine::new(config.protocol_version, config.endpoint.clone());
        let line = line.and_then(|line| line.check(&self.versions, &self.protocols).map(|()| line));
        let line = line.map_err(|source| ClientError::Handshake {
            line: format!("{config:?}"),
            source: Box::new(source),
            stderr: Vec::new(),
        })?;
        let channel = connect::open_plugin_channel(line.endpoint(), None).await?;
        connect::ping(channel.clone()).await?;
        let name = format!("pid {}", config.pid);
        let connection = Connection {
            line,
            channel,
            tls: None,
        };
        Ok(self.client(name, config.pid, connection, None, Some(config.test)))
    }

    /// A connected plugin: forwards its stdio and registers it for
    /// [`cleanup_clients`].
    fn client(
        &self,
        name: String,
        pid: u32,
        connection: Connection,
        child: Option<tokio::process::Child>,
        attached: Option<bool>,
    ) -> Client {
        let Connection { line, channel, tls } = connection;
        tokio::spawn(connect::forward_stdio(
            name.clone(),
            channel.clone(),
            self.stdio.clone(),
        ));
        let broker = Broker::new();
        broker.connect(broker::Context {
            listen: match line.endpoint().unix_path() {
                Some(_) => broker::Listen::Unix {
                    dir: self
                        .socket_dir
                        .clone()
                        .unwrap_or_else(crate::transport::socket_dir_from_env),
                    group: self.socket_group.clone(),
                },
                None => broker::Listen::Tcp(self.ports),
            },
            server_tls: tls.as_ref().map(|(server, _)| server.clone()),
            client_tls: tls.map(|(_, client)| client),
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
            status: Mutex::new(None),
            attached,
        });
        registry()
            .lock()
            .expect("registry lock")
            .push(Arc::downgrade(&inner));
        Client { inner }
    }

    /// Parses the handshake line and checks it against what this host
    /// offers and allows.
    fn check_line(&self, raw_line: &str, tail: &Tail) -> Result<HandshakeLine, ClientError> {
        let handshake_err = |source| ClientError::Handshake {
            line: raw_line.trim_end().to_owned(),
            source: Box::new(source),
            stderr: tail.lines(),
        };
        let line = HandshakeLine::parse(raw_line).map_err(handshake_err)?;
        line.check(&self.versions, &self.protocols)
            .map_err(handshake_err)?;
        Ok(line)
    }

    /// Connects to the endpoint of a checked line, and pings. Gives the
    /// channel and, with AutoMTLS, the TLS configurations for the broker:
    /// serving the plugin (our certificate, the plugin's required) and
    /// dialling it.
    async fn connect(
        &self,
        name: &str,
        raw_line: &str,
        line: &HandshakeLine,
        identity: Option<&Identity>,
    ) -> Result<(Channel, Option<BrokerTls>), ClientError> {
        let tls = match identity {
            None => None,
            Some(identity) => {
                let der = line
                    .server_cert()
                    .ok_or_else(|| ClientError::NoServerCertificate {
                        line: raw_line.trim_end().to_owned(),
                    })?;
                let cert = rustls::pki_types::CertificateDer::from(der.to_vec());
                Some((
                    tls::server_config(identity, cert.clone())?,
                    tls::client_config(identity, cert)?,
                ))
            }
        };
        let client_tls = tls.as_ref().map(|(_, client)| client.clone());
        let channel = connect::open_plugin_channel(line.endpoint(), client_tls).await?;
        connect::ping(channel.clone()).await?;
        tracing::debug!(plugin = name, version = line.app_version(), endpoint = %line.endpoint(), "plugin connected");
        Ok((channel, tls))
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
    status: Mutex<Option<ExitStatus>>,
    /// For a reattached plugin (no child of ours): whether it is in test
    /// mode, where a host never kills it.
    attached: Option<bool>,
}

impl Client {
    /// A channel to the plugin, for your generated gRPC clients (set
    /// [`MAX_MESSAGE_SIZE`](crate::MAX_MESSAGE_SIZE) on them, as go-plugin
    /// hosts allow messages of up to 2^31−1 bytes).
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

    /// The negotiated app protocol version.
    pub fn version(&self) -> u32 {
        self.inner.line.app_version()
    }

    /// The plugin's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Checks the plugin's health (`"plugin"` SERVING).
    ///
    /// # Errors
    ///
    /// [`ClientError::Unhealthy`].
    pub async fn ping(&self) -> Result<(), ClientError> {
        connect::ping(self.channel()).await
    }

    /// How a host reattaches to this plugin (`TF_REATTACH_PROVIDERS`).
    pub fn reattach_config(&self) -> ReattachConfig {
        let line = &self.inner.line;
        let test = self.inner.attached.unwrap_or(false);
        ReattachConfig::new(
            line.app_version(),
            line.endpoint().clone(),
            self.inner.pid,
            test,
        )
    }

    /// Whether the plugin process has exited.
    pub fn exited(&self) -> bool {
        if self.exit_status().is_some() {
            return true;
        }
        if self.inner.attached.is_some() {
            return !process::pid_alive(self.inner.pid);
        }
        match self.inner.child.try_lock() {
            Ok(mut child) => match child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => {
                    *self.inner.status.lock().expect("status lock") = Some(status);
                    true
                }
                Some(Ok(None)) => false,
                Some(Err(_)) | None => true,
            },
            // A kill is under way.
            Err(_) => false,
        }
    }

    /// How the plugin exited, once it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.inner.status.lock().expect("status lock")
    }

    /// Ends the plugin as go-plugin does: `GRPCController.Shutdown`, then up
    /// to the kill grace (2 s) for it to exit by itself, then SIGKILL. The
    /// whole process group is killed at the end either way, so no child the
    /// plugin forked survives it, and a socket it left behind is removed.
    /// Calling it again is harmless. Returns the exit status.
    pub async fn kill(&self) -> Option<ExitStatus> {
        self.inner.kill().await
    }
}

impl Inner {
    async fn kill(&self) -> Option<ExitStatus> {
        // As go-plugin: the broker first, then the plugin.
        self.broker.close().await;
        if let Some(test) = self.attached {
            if !test {
                self.kill_attached().await;
            }
            return None;
        }
        let mut guard = self.child.lock().await;
        let Some(child) = guard.as_mut() else {
            return *self.status.lock().expect("status lock");
        };
        let status = match child.try_wait() {
            Ok(Some(status)) => Some(status),
            _ => {
                let mut controller = GrpcControllerClient::new(self.channel.clone());
                let shutdown = tokio::time::timeout(self.grace, controller.shutdown(Empty {}));
                let answer = shutdown.await.unwrap_or_else(|_| {
                    Err(tonic::Status::deadline_exceeded("Shutdown did not answer"))
                });
                if let Err(err) = answer {
                    tracing::debug!(plugin = self.name, %err, "GRPCController.Shutdown failed");
                }
                match tokio::time::timeout(self.grace, child.wait()).await {
                    Ok(Ok(status)) => Some(status),
                    _ => {
                        tracing::warn!(
                            plugin = self.name,
                            "plugin failed to exit gracefully; killing it"
                        );
                        process::kill_and_reap(child, self.pid).await
                    }
                }
            }
        };
        // Children the plugin forked share its process group.
        let _ = process::kill_group(self.pid);
        *guard = None;
        *self.status.lock().expect("status lock") = status;
        if let Some(path) = self.line.endpoint().unix_path() {
            remove_stale_socket(path);
        }
        status
    }
}

impl Inner {
    /// Shutdown, then up to the grace period for the process to go, then
    /// SIGKILL: for a reattached plugin, which is not our child (so neither
    /// waited for nor killed as a group).
    async fn kill_attached(&self) {
        let mut controller = GrpcControllerClient::new(self.channel.clone());
        let _ = tokio::time::timeout(self.grace, controller.shutdown(Empty {})).await;
        let deadline = tokio::time::Instant::now() + self.grace;
        while process::pid_alive(self.pid) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if process::pid_alive(self.pid) {
            tracing::warn!(
                plugin = self.name,
                "reattached plugin did not exit; killing it"
            );
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(path) = self.line.endpoint().unix_path() {
            remove_stale_socket(path);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.broker
            .close_in_background("the plugin's client was dropped");
        let Some(mut child) = self.child.get_mut().take() else {
            return;
        };
        let _ = process::kill_group(self.pid);
        let socket = self.line.endpoint().unix_path().map(PathBuf::from);
        // Reap and clean up off the async runtime: the kill is immediate,
        // the exit follows within milliseconds.
        std::thread::spawn(move || {
            for _ in 0..200 {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Some(path) = socket {
                remove_stale_socket(&path);
            }
        });
    }
}

/// Removes the socket a killed plugin left behind, if nobody listens on it.
fn remove_stale_socket(path: &std::path::Path) {
    if let Err(err) = crate::transport::remove_stale_socket(path) {
        tracing::debug!(path = %path.display(), %err, "plugin socket not removed");
    }
}

fn registry() -> &'static Mutex<Vec<Weak<Inner>>> {
    static CLIENTS: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());
    &CLIENTS
}

/// Kills every plugin started by this process that is still running, as
/// go-plugin's `CleanupClients`: call it before the host exits.
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
