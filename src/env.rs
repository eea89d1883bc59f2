//! The environment variables that go-plugin, Terraform and rpcplugin read,
//! named once. Where a variable is read is said beside it.
//!
//! A host sets go-plugin's variables for the plugin it launches
//! ([`ClientConfig::start`](crate::client::ClientConfig::start)); a plugin
//! reads them in [`ServeConfig::serve`](crate::server::ServeConfig::serve)
//! and the transports' `from_env`. The magic cookie's variable is not here:
//! each application picks its own
//! ([`HandshakeConfig`](crate::handshake::HandshakeConfig)).

/// `PLUGIN_MIN_PORT`: the lowest TCP port a plugin may listen on.
pub const PLUGIN_MIN_PORT: &str = "PLUGIN_MIN_PORT";

/// `PLUGIN_MAX_PORT`: the highest TCP port a plugin may listen on.
pub const PLUGIN_MAX_PORT: &str = "PLUGIN_MAX_PORT";

/// `PLUGIN_UNIX_SOCKET_DIR`: the directory of a plugin's unix sockets.
pub const PLUGIN_UNIX_SOCKET_DIR: &str = "PLUGIN_UNIX_SOCKET_DIR";

/// `PLUGIN_UNIX_SOCKET_GROUP`: the group (name or gid) of a plugin's
/// unix sockets.
pub const PLUGIN_UNIX_SOCKET_GROUP: &str = "PLUGIN_UNIX_SOCKET_GROUP";

/// `PLUGIN_PROTOCOL_VERSIONS`: the app protocol versions a host offers,
/// comma-separated.
pub const PLUGIN_PROTOCOL_VERSIONS: &str = "PLUGIN_PROTOCOL_VERSIONS";

/// `PLUGIN_MULTIPLEX_GRPC`: set by go-plugin ≥ 1.6 hosts that multiplex
/// the broker over the main connection.
pub const PLUGIN_MULTIPLEX_GRPC: &str = "PLUGIN_MULTIPLEX_GRPC";

/// `PLUGIN_CLIENT_CERT`: the host's AutoMTLS certificate (PEM); a plugin
/// that finds it serves TLS and pins it.
pub const PLUGIN_CLIENT_CERT: &str = "PLUGIN_CLIENT_CERT";

/// `TF_REATTACH_PROVIDERS`: Terraform's reattach configurations (JSON), for
/// providers already running under a debugger.
pub const TF_REATTACH_PROVIDERS: &str = "TF_REATTACH_PROVIDERS";

/// `RPCPLUGIN_DEBUG`: turns on a plugin's debug (reattach) mode; its value
/// is the provider name printed in the reattach configuration.
pub const RPCPLUGIN_DEBUG: &str = "RPCPLUGIN_DEBUG";

/// `RPCPLUGIN_LOG`: the log filter of [`init_logging`](crate::log::init_logging),
/// a default level and per-target levels (`debug`, `info,rpcplugin=trace`,
/// …), as `tracing_subscriber`'s `Targets` parses them (`RUST_LOG`'s syntax
/// without span and field filters).
pub const RPCPLUGIN_LOG: &str = "RPCPLUGIN_LOG";
