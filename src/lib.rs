//! # rpcplugin
//!
//! HashiCorp go-plugin's gRPC protocol for Rust: plugins that Go hosts
//! (Terraform, Vault, Packer, Nomad, any go-plugin host) launch as
//! subprocesses, and hosts that launch go-plugin plugins written in any
//! language.
//!
//! This release holds the foundation the plugin and host sides stand on:
//!
//! - **Transports** ([`Transport`], [`TcpTransport`], [`UnixTransport`]):
//!   listeners bound before their address is announced, go-plugin's
//!   environment (`PLUGIN_MIN_PORT`, `PLUGIN_MAX_PORT`,
//!   `PLUGIN_UNIX_SOCKET_DIR`, `PLUGIN_UNIX_SOCKET_GROUP`), safe stale-socket
//!   cleanup, socket mode 0660 and group, `sun_path` checks.
//! - **Endpoints** ([`Endpoint`]): `unix:`, `unix://`, paths, `host:port`,
//!   `[v6]:port` and `tcp://`, parsed, normalized and printed canonically.
//! - **Handshake** ([`HandshakeConfig`], [`negotiate_version`],
//!   [`HandshakeLine`]): the magic cookie, app version negotiation as
//!   go-plugin does it, and the stdout line, formatted and parsed with
//!   go-plugin's rules and error wording.
//! - **Protocol types** ([`proto`]): go-plugin's GRPCController, GRPCStdio
//!   and GRPCBroker services, and go-plugin's KV example service, generated
//!   without a system `protoc`.
//!
//! ## Example: what a plugin does before it serves
//!
//! ```no_run
//! use rpcplugin::{HandshakeConfig, HandshakeLine, Transport, UnixTransport};
//! use rpcplugin::negotiate_version_from_env;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handshake = HandshakeConfig::basic_example();
//! handshake.enforce_cookie(); // exits 1 with go-plugin's text if started by hand
//! let version = negotiate_version_from_env(&[1]).version;
//!
//! let transport = UnixTransport::from_env()?;
//! let (endpoint, incoming) = transport.listen().await?; // bound before printing
//! println!("{}", HandshakeLine::new(version, endpoint)?);
//! // tonic::transport::Server::builder()...serve_with_incoming(incoming).await?;
//! # drop(incoming);
//! transport.close().await?; // removes the socket, if it is still ours
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod handshake;
mod log;
mod server;
mod tls;
mod transport;

pub mod proto;
mod reattach;

pub use handshake::{
    COOKIE_MISMATCH_TEXT, CORE_PROTOCOL_VERSION, HandshakeConfig, HandshakeError, HandshakeLine,
    Negotiated, Protocol, TERRAFORM_PROTOCOL_VERSIONS, negotiate_version,
    negotiate_version_from_env,
};
pub use log::{HclogLayer, LOG_ENV, LogError, init_logging};
pub use reattach::{ReattachConfig, ReattachError, ReattachProviders, TF_REATTACH_PROVIDERS};
pub use server::{DEBUG_ENV, MAX_MESSAGE_SIZE, Network, ServeConfig, ServeError};
pub use tls::{Identity, TlsError};
pub use transport::{
    Connection, ConnectionInfo, DEFAULT_CONNECT_TIMEOUT, Endpoint, EndpointError, Host, Incoming,
    PortRange, SUN_PATH_MAX, SocketGroup, TcpTransport, Transport, TransportError, UnixTransport,
    connect,
};
