//! go-plugin's handshake: the magic cookie, app protocol version
//! negotiation, and the line a plugin prints on stdout.

mod config;
mod error;
mod line;
mod negotiate;

pub use config::{COOKIE_MISMATCH_TEXT, HandshakeConfig, TERRAFORM_PROTOCOL_VERSIONS};
pub use error::HandshakeError;
pub use line::{CORE_PROTOCOL_VERSION, HandshakeLine, Protocol};
pub use negotiate::{Negotiated, negotiate_version, negotiate_version_from_env};

/// `PLUGIN_PROTOCOL_VERSIONS`: the app versions a host offers.
pub(crate) const ENV_PROTOCOL_VERSIONS: &str = "PLUGIN_PROTOCOL_VERSIONS";
/// `PLUGIN_MULTIPLEX_GRPC`: set by go-plugin ≥ 1.6 hosts that multiplex the
/// broker; a plugin then prints a seventh handshake field.
pub(crate) const ENV_MULTIPLEX_GRPC: &str = "PLUGIN_MULTIPLEX_GRPC";
