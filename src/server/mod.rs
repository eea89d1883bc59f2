//! The plugin side: [`ServeConfig::serve`] a set of tonic services the way a
//! go-plugin plugin does, so that any go-plugin host can launch the binary.

mod at_exit;
mod controller;
mod error;
mod panic;
mod parent;
mod signals;
mod stdio;

use std::collections::BTreeMap;
use std::io::Write;

use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::broker::{self, Broker};
use crate::env;
use crate::grpc::{CONNECTION_WINDOW, DRAIN_LIMIT, HEALTH_SERVICES, STREAM_WINDOW};
use crate::handshake::{HandshakeConfig, HandshakeLine, negotiate_version_from_env};
use crate::proto::plugin::grpc_controller_server::GrpcControllerServer;
use crate::tls::{self, Identity, TlsError};
use crate::transport::mux::Mux;
use crate::transport::{Incoming, Listen, Transport};

pub use crate::grpc::MAX_MESSAGE_SIZE;
pub use error::ServeError;
use stdio::Stdio;
use tokio_util::sync::CancellationToken;

/// Which socket the plugin listens on. The default is go-plugin's: a unix
/// socket on unix, TCP on Windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Network {
    /// A unix socket in `PLUGIN_UNIX_SOCKET_DIR` or the temp dir (go-plugin's
    /// default on unix; on Windows serving fails with
    /// [`ListenError::UnixUnsupported`](crate::transport::ListenError::UnixUnsupported)).
    Unix,
    /// 127.0.0.1, on the first free port of `PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT`
    /// (go-plugin's default on Windows).
    Tcp,
}

impl Default for Network {
    fn default() -> Self {
        if cfg!(windows) {
            Network::Tcp
        } else {
            Network::Unix
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    /// `unix` or `tcp`, as go-plugin names them (for command lines).
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "unix" => Ok(Network::Unix),
            "tcp" => Ok(Network::Tcp),
            other => Err(format!(
                "{other:?} is not a network: expected \"unix\" or \"tcp\""
            )),
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Network::Unix => "unix",
            Network::Tcp => "tcp",
        })
    }
}

/// How a plugin serves: its handshake, its services per app protocol
/// version, and its socket.
///
/// ```no_run
/// use demo_proto::kv::kv_server::{Kv, KvServer};
/// use rpcplugin::{HandshakeConfig, MAX_MESSAGE_SIZE, ServeConfig};
/// # struct MyKv;
/// # #[tonic::async_trait] impl Kv for MyKv {
/// #   async fn get(&self, _: tonic::Request<demo_proto::kv::GetRequest>) -> Result<tonic::Response<demo_proto::kv::GetResponse>, tonic::Status> { todo!() }
/// #   async fn put(&self, _: tonic::Request<demo_proto::kv::PutRequest>) -> Result<tonic::Response<demo_proto::kv::Empty>, tonic::Status> { todo!() }
/// # }
///
/// # #[tokio::main] async fn main() -> Result<(), rpcplugin::ServeError> {
/// let kv = KvServer::new(MyKv).max_decoding_message_size(MAX_MESSAGE_SIZE);
/// ServeConfig::new(HandshakeConfig::basic_example()).service(kv).serve().await
/// # }
/// ```
#[derive(Debug)]
pub struct ServeConfig {
    handshake: HandshakeConfig,
    versions: BTreeMap<u32, Routes>,
    network: Network,
    exit_on_cookie_mismatch: bool,
    capture_stdio: bool,
    debug: Option<String>,
    broker: Broker,
    exit_with_host: bool,
    /// A Terraform provider service added under another version than its
    /// own, reported by `serve`.
    mispaired: Option<ServeError>,
}

/// The protocol version a Terraform service belongs to, by gRPC name.
fn terraform_version_of(service: &str) -> Option<u32> {
    match service.split_once('.')?.0 {
        "tfplugin5" => Some(5),
        "tfplugin6" => Some(6),
        _ => None,
    }
}

impl ServeConfig {
    /// A plugin with this handshake and no services yet.
    pub fn new(handshake: HandshakeConfig) -> Self {
        ServeConfig {
            handshake,
            versions: BTreeMap::new(),
            network: Network::default(),
            exit_on_cookie_mismatch: true,
            capture_stdio: true,
            debug: None,
            broker: Broker::new(),
            exit_with_host: true,
            mispaired: None,
        }
    }

    /// With `true` (the default), the plugin stops, as on `Shutdown`, when
    /// the process that launched it dies without calling `Shutdown` (a host
    /// that was SIGKILLed or crashed): it notices within 100 ms that it was
    /// re-parented (on Windows, that its parent process ended), and removes
    /// its socket. go-plugin's plugins live on
    /// instead. Not in debug mode, where a person started the plugin.
    #[must_use]
    pub fn exit_with_host(mut self, exit: bool) -> Self {
        self.exit_with_host = exit;
        self
    }

    /// The plugin's side of go-plugin's GRPCBroker, to hand to the
    /// services that dial the host's brokered services or serve their own.
    /// It works once [`serve`](Self::serve) is serving: brokered listeners
    /// use the plugin's network, socket directory, group, port range and
    /// AutoMTLS. It closes, removing its sockets, when the plugin shuts
    /// down or the host ends the broker stream.
    pub fn broker(&self) -> Broker {
        self.broker.clone()
    }

    /// Adds a service to the handshake's own protocol version.
    ///
    /// A Terraform provider service (`tfplugin5.Provider`,
    /// `tfplugin6.Provider`) must be added under its own protocol version:
    /// otherwise [`serve`](Self::serve) fails with
    /// [`ServeError::ProviderVersion`]. With the `terraform` feature,
    /// `terraform_v5` and `terraform_v6` add one where it belongs.
    pub fn service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let version = self.handshake.protocol_version;
        if let Some(expected) = terraform_version_of(S::NAME)
            && expected != version
        {
            self.mispaired.get_or_insert(ServeError::ProviderVersion {
                service: S::NAME,
                version,
                expected,
            });
        }
        self.add_to(version, service);
        self
    }

    /// Adds `service` to the routes of app protocol `version`.
    fn add_to<S>(&mut self, version: u32, service: S)
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let routes = self.versions.remove(&version).unwrap_or_default();
        self.versions.insert(version, routes.add_service(service));
    }

    /// Serves a Terraform provider speaking protocol 5 (`tfplugin5`) as app
    /// protocol version 5, and only as 5, whatever the handshake's own
    /// version: a host that negotiates 6 is not offered it. A provider
    /// that also speaks another version adds that version's services with
    /// [`version`](Self::version).
    ///
    /// ```
    /// use rpcplugin::proto::tfplugin5::provider_server::{Provider, ProviderServer};
    /// use rpcplugin::{HandshakeConfig, ServeConfig};
    ///
    /// struct Empty;
    /// // Every RPC answers UNIMPLEMENTED until implemented.
    /// impl Provider for Empty {}
    ///
    /// let config = ServeConfig::new(HandshakeConfig::terraform(5))
    ///     .terraform_v5(ProviderServer::new(Empty));
    /// # drop(config);
    /// ```
    #[cfg(feature = "terraform")]
    #[cfg_attr(docsrs, doc(cfg(feature = "terraform")))]
    #[must_use]
    pub fn terraform_v5<T>(
        mut self,
        provider: crate::proto::tfplugin5::provider_server::ProviderServer<T>,
    ) -> Self
    where
        T: crate::proto::tfplugin5::provider_server::Provider,
    {
        self.add_to(5, provider);
        self
    }

    /// Serves a Terraform provider speaking protocol 6 (`tfplugin6`) as app
    /// protocol version 6, and only as 6, whatever the handshake's own
    /// version: a host that negotiates 5 is not offered it. A provider
    /// that also speaks another version adds that version's services with
    /// [`version`](Self::version).
    ///
    /// ```
    /// use rpcplugin::proto::tfplugin6::provider_server::{Provider, ProviderServer};
    /// use rpcplugin::{HandshakeConfig, ServeConfig};
    ///
    /// struct Empty;
    /// // Every RPC answers UNIMPLEMENTED until implemented.
    /// impl Provider for Empty {}
    ///
    /// let config = ServeConfig::new(HandshakeConfig::terraform(6))
    ///     .terraform_v6(ProviderServer::new(Empty));
    /// # drop(config);
    /// ```
    #[cfg(feature = "terraform")]
    #[cfg_attr(docsrs, doc(cfg(feature = "terraform")))]
    #[must_use]
    pub fn terraform_v6<T>(
        mut self,
        provider: crate::proto::tfplugin6::provider_server::ProviderServer<T>,
    ) -> Self
    where
        T: crate::proto::tfplugin6::provider_server::Provider,
    {
        self.add_to(6, provider);
        self
    }

    /// The services of one app protocol version (go-plugin's
    /// `VersionedPlugins`): the version negotiated with the host is served.
    #[must_use]
    pub fn version(mut self, version: u32, routes: Routes) -> Self {
        self.versions.insert(version, routes);
        self
    }

    /// Listens on a unix socket (the default) or TCP.
    #[must_use]
    pub fn network(mut self, network: Network) -> Self {
        self.network = network;
        self
    }

    /// Debug (reattach) mode, for running the plugin under a debugger: no
    /// cookie check, no AutoMTLS, no stdio capture; instead of the handshake
    /// line, prints for a person the `TF_REATTACH_PROVIDERS` configuration
    /// under `name` (e.g. `registry.terraform.io/example/kv`), serves until
    /// Ctrl-C, SIGTERM or `GRPCController.Shutdown`. Also turned on by the
    /// environment variable [`RPCPLUGIN_DEBUG`](crate::env::RPCPLUGIN_DEBUG) (its value is the name).
    #[must_use]
    pub fn debug(mut self, name: impl Into<String>) -> Self {
        self.debug = Some(name.into());
        self
    }

    /// With `false`, fds 1 and 2 are left alone after the handshake line
    /// and `GRPCStdio` streams nothing. By default they are captured and
    /// streamed to the host, as go-plugin does.
    #[must_use]
    pub fn capture_stdio(mut self, capture: bool) -> Self {
        self.capture_stdio = capture;
        self
    }

    /// With `false`, a wrong or missing cookie makes [`serve`](Self::serve)
    /// return [`ServeError::Cookie`] instead of printing go-plugin's text
    /// and exiting with status 1. For embedders and tests.
    #[must_use]
    pub fn exit_on_cookie_mismatch(mut self, exit: bool) -> Self {
        self.exit_on_cookie_mismatch = exit;
        self
    }

    /// Serves until the host calls `GRPCController.Shutdown` or sends
    /// SIGTERM (on Windows: until `Shutdown`, or the console's close,
    /// logoff or shutdown event; Ctrl-C is ignored there as on unix), as
    /// go-plugin's `plugin.Serve` does: checks the cookie,
    /// negotiates the version, listens, prints the handshake line on stdout,
    /// then serves the negotiated services beside health (`"plugin"`) and
    /// `plugin.GRPCController`. AutoMTLS is on when the host sets
    /// `PLUGIN_CLIENT_CERT`. On return the socket is removed.
    ///
    /// Nothing is written to stdout before the handshake line.
    ///
    /// # Errors
    ///
    /// [`ServeError`] naming what failed: the cookie (only with
    /// [`exit_on_cookie_mismatch(false)`](Self::exit_on_cookie_mismatch)),
    /// no services, the host's certificate (not PEM, expired or not valid
    /// yet), the socket (unknown group,
    /// unwritable directory, path too long), stdout, or the server.
    ///
    /// # Cancel safety
    ///
    /// Not meant to be dropped: it is the plugin's main loop, and it stops on
    /// its own when asked. If its future is dropped anyway, serving stops and
    /// the main socket is removed as the listener is dropped, but the broker is
    /// not closed (brokered servers serve on until it is, or the runtime ends),
    /// and stdout and stderr, if captured, are not put back: they stay pipes,
    /// passed on to the original descriptors by tasks that end with the
    /// runtime. The signal handlers stay installed until the runtime ends.
    pub async fn serve(mut self) -> Result<(), ServeError> {
        if let Some(mispaired) = self.mispaired.take() {
            return Err(mispaired);
        }
        if self.debug.is_none() {
            self.debug = std::env::var(env::RPCPLUGIN_DEBUG)
                .ok()
                .filter(|name| !name.is_empty());
        }
        if self.debug.is_some() {
            return self.serve_debug().await;
        }
        if let Err(err) = self.handshake.check_cookie() {
            if self.exit_on_cookie_mismatch {
                eprint!("{}", crate::handshake::COOKIE_MISMATCH_TEXT);
                std::process::exit(1);
            }
            return Err(err.into());
        }
        let ours: Vec<u32> = self.versions.keys().copied().collect();
        if ours.is_empty() {
            return Err(ServeError::NoServices);
        }
        let version = negotiate_version_from_env(&ours).version;
        let routes = self
            .versions
            .remove(&version)
            .expect("a negotiated version is ours");
        let tls = match std::env::var(env::PLUGIN_CLIENT_CERT) {
            Ok(pem) if !pem.is_empty() => {
                let host_cert = tls::parse_pem_cert(env::PLUGIN_CLIENT_CERT, &pem)?;
                // An expired certificate would fail every connection later.
                tls::check_validity(
                    env::PLUGIN_CLIENT_CERT,
                    &host_cert,
                    std::time::SystemTime::now(),
                )?;
                // Our key pair, certificate and both configs are made on
                // a runtime worker while this task listens and sets the
                // server up: before the handshake line the host waits, so
                // the second core is free.
                Some(tokio::spawn(async move { PluginTls::new(host_cert) }))
            }
            _ => None,
        };
        let plugin = Plugin {
            version,
            routes,
            tls,
            capture_stdio: self.capture_stdio,
            debug: None,
            broker: self.broker,
            exit_with_host: self.exit_with_host,
        };
        plugin.run_on(self.network).await
    }

    async fn serve_debug(mut self) -> Result<(), ServeError> {
        let ours: Vec<u32> = self.versions.keys().copied().collect();
        // A person, not a host, started us: serve the newest version unless
        // PLUGIN_PROTOCOL_VERSIONS says otherwise.
        let version = match std::env::var_os(env::PLUGIN_PROTOCOL_VERSIONS) {
            Some(_) => negotiate_version_from_env(&ours).version,
            None => *ours.last().ok_or(ServeError::NoServices)?,
        };
        let routes = self
            .versions
            .remove(&version)
            .ok_or(ServeError::NoServices)?;
        let plugin = Plugin {
            version,
            routes,
            tls: None,
            capture_stdio: false,
            debug: self.debug,
            broker: self.broker,
            exit_with_host: false,
        };
        plugin.run_on(self.network).await
    }
}

/// What `serve` has settled before it listens.
struct Plugin {
    version: u32,
    routes: Routes,
    tls: Option<tokio::task::JoinHandle<Result<PluginTls, TlsError>>>,
    capture_stdio: bool,
    /// In debug mode, the name to print the reattach configuration under.
    debug: Option<String>,
    broker: Broker,
    /// Whether to stop when the host process dies.
    exit_with_host: bool,
}

/// AutoMTLS on the plugin side: our certificate, and configurations
/// pinned to the host's certificate for serving and (broker) dialling.
struct PluginTls {
    identity: Identity,
    server: std::sync::Arc<rustls::ServerConfig>,
    client: std::sync::Arc<rustls::ClientConfig>,
}

impl PluginTls {
    /// A fresh identity, for a host that presents `host_cert`.
    fn new(host_cert: rustls::pki_types::CertificateDer<'static>) -> Result<Self, TlsError> {
        let identity = Identity::generate()?;
        Ok(PluginTls {
            server: tls::server_config(&identity, host_cert.clone())?,
            // For dialling the host's brokered services.
            client: tls::client_config(&identity, host_cert)?,
            identity,
        })
    }
}

impl Plugin {
    async fn run_on(self, network: Network) -> Result<(), ServeError> {
        match network {
            Network::Unix => self.run(Listen::unix_from_env()?).await,
            Network::Tcp => self.run(Listen::tcp_from_env()?).await,
        }
    }

    /// Serves on a fresh listener where `listen` says; brokered listeners go
    /// there too.
    async fn run(self, listen: Listen) -> Result<(), ServeError> {
        let transport = listen.transport();
        let shutdown = CancellationToken::new();
        signals::install(&shutdown, self.debug.is_some())
            .map_err(|source| ServeError::Signals { source })?;
        if self.exit_with_host {
            parent::watch(&shutdown);
        }

        let (endpoint, incoming) = transport.listen().await?;
        let tls = match self.tls {
            Some(making) => Some(
                making
                    .await
                    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))?,
            ),
            None => None,
        };
        let mut line = HandshakeLine::new(self.version, endpoint.clone())?;
        // go-plugin ≥ 1.6 hosts that want multiplexed gRPC set
        // PLUGIN_MULTIPLEX_GRPC=true. Any non-empty value gets the seventh
        // field `true` ("supported"), as go-plugin 1.8.0's plugins print it;
        // older hosts never set it (they would glue the field onto the
        // certificate). Only a value that Go parses as true multiplexes: the
        // host then runs one yamux session over its one connection, and the
        // main and brokered connections are its streams.
        let (incoming, mux) = match multiplex_from_env() {
            Some(multiplex) if self.debug.is_none() => {
                line = line.with_multiplex(true);
                if multiplex {
                    let (mux, streams) = Mux::serve(incoming, endpoint.clone());
                    (streams, Some(mux))
                } else {
                    (incoming, None)
                }
            }
            _ => (incoming, None),
        };
        self.broker.connect(broker::Context {
            listen,
            server_tls: tls.as_ref().map(|tls| tls.server.clone()),
            client_tls: tls.as_ref().map(|tls| tls.client.clone()),
            mux: mux.clone(),
            cut: None,
        });
        let incoming: Incoming = match tls {
            Some(tls) => {
                line = line.with_server_cert(tls.identity.cert_der().to_vec());
                incoming.with_tls(tls.server)
            }
            None => incoming,
        };
        // grpcio hosts dialling a unix socket send an `:authority` that h2
        // rejects; TCP peers send `host:port`, which it accepts.
        let incoming = match endpoint.unix_path() {
            Some(_) => incoming.with_authority_fix(),
            None => incoming,
        };

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in HEALTH_SERVICES {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let controller = GrpcControllerServer::new(controller::Controller {
            shutdown: shutdown.clone(),
        });
        let stdio = Stdio::new(shutdown.clone());
        let server = Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .max_concurrent_streams(crate::grpc::MAX_CONCURRENT_STREAMS)
            .add_routes(self.routes)
            .add_service(health_service)
            .add_service(controller)
            .add_service(stdio.service())
            .add_service(self.broker.service());

        match &self.debug {
            None => print_line(&line)?,
            Some(name) => print_reattach(name, self.version, &endpoint)?,
        }
        let capture = match self.capture_stdio {
            true => Some(
                stdio
                    .redirect()
                    .map_err(|source| ServeError::Stdio { source })?,
            ),
            false => None,
        };
        tracing::debug!(network = endpoint.network(), address = %endpoint.address(), "plugin address");

        let stopping = async {
            shutdown.cancelled().await;
            for name in HEALTH_SERVICES {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            // End the stdio stream, so that it does not hold up the drain.
            stdio.end_stream();
            // End the broker stream and remove brokered sockets.
            self.broker.close().await;
            // Stop accepting and remove the socket at once; in-flight calls
            // on accepted connections still finish.
            if let Err(err) = transport.close().await {
                tracing::warn!(error = %crate::chain::Chain(&err), "closing the listener failed");
            }
        };
        // As brokered and echo servers: calls still running the drain
        // limit after shutdown began are cut, not left running.
        let result = crate::grpc::serve_draining(server, incoming, stopping, DRAIN_LIMIT)
            .await
            .map_err(|source| ServeError::Server { source });
        if let Some(mux) = mux {
            // yamux GoAway, then the host's connection is closed.
            mux.close();
        }
        if let Some(capture) = capture {
            capture.restore().await;
        }
        transport.close().await?;
        result
    }
}

/// `PLUGIN_MULTIPLEX_GRPC` as go-plugin 1.8.0's plugins read it: `None`
/// when unset or empty; else whether it parses as true with Go's
/// `strconv.ParseBool` (`1`, `t`, `T`, `TRUE`, `true`, `True`; anything
/// else, even unparsable, is false).
fn multiplex_from_env() -> Option<bool> {
    let value = std::env::var(env::PLUGIN_MULTIPLEX_GRPC).ok()?;
    if value.is_empty() {
        return None;
    }
    Some(matches!(
        value.as_str(),
        "1" | "t" | "T" | "TRUE" | "true" | "True"
    ))
}

/// Prints, for a person, how to attach a host to this plugin.
fn print_reattach(
    name: &str,
    version: u32,
    endpoint: &crate::transport::Endpoint,
) -> Result<(), ServeError> {
    let config =
        crate::reattach::ReattachConfig::new(version, endpoint.clone(), std::process::id(), true)
            .expect("our own pid is a valid pid");
    let providers = crate::reattach::ReattachProviders([(name.to_owned(), config)].into());
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "Plugin started in debug mode. To attach a host, set {}:\n\n\t{}='{}'\n\nStop it with Ctrl-C.",
        env::TF_REATTACH_PROVIDERS,
        env::TF_REATTACH_PROVIDERS,
        providers.to_json()
    )
    .and_then(|()| stdout.flush())
    .map_err(|source| ServeError::Stdout { source })
}

/// Prints the handshake line and flushes, so the host reads it at once.
fn print_line(line: &HandshakeLine) -> Result<(), ServeError> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|source| ServeError::Stdout { source })
}
