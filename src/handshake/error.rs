//! The error family of the handshake.

use crate::tls::CertificateParseError;
use crate::transport::EndpointError;

use super::Protocol;

/// A handshake line that a host must refuse: what a host meets when it
/// reads a plugin's line ([`HandshakeLine::parse`](super::HandshakeLine::parse))
/// and checks it against what it offered
/// ([`HandshakeLine::check`](super::HandshakeLine::check)).
///
/// The plugin side's own failures have their own errors: a cookie that does
/// not match is a [`CookieError`], an address a line cannot hold an
/// [`AddressError`].
///
/// Messages follow go-plugin's wording, so that a person who knows one
/// recognizes the other, and name the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Fewer than four `|`-separated fields.
    #[error("Unrecognized remote plugin message: {line:?}")]
    Unrecognized {
        /// The line, white space trimmed.
        line: String,
    },
    /// The core protocol version is not an integer.
    #[error("Error parsing core protocol version: {value:?} is not an integer")]
    CoreVersionSyntax {
        /// The field as written.
        value: String,
    },
    /// The core protocol version is not 1.
    #[error("Incompatible core API version with plugin. Plugin version: {value}, Core version: 1")]
    IncompatibleCoreVersion {
        /// The field as written.
        value: String,
    },
    /// The app protocol version is not a non-negative integer.
    #[error("Error parsing protocol version {value:?}: not a non-negative integer")]
    AppVersionSyntax {
        /// The field as written.
        value: String,
    },
    /// The plugin answered with an app version the host did not offer.
    #[error(
        "Incompatible API version with plugin. Plugin version: {plugin}, Client versions: {offered:?}"
    )]
    IncompatibleAppVersion {
        /// The plugin's version.
        plugin: u32,
        /// The versions the host offered.
        offered: Vec<u32>,
    },
    /// A network other than `unix` or `tcp`.
    #[error("Unknown address type: {network:?} (expected \"unix\" or \"tcp\")")]
    UnknownNetwork {
        /// The field as written.
        network: String,
    },
    /// An address that does not fit its network.
    #[error("bad {network} address {address:?} in handshake")]
    BadAddress {
        /// `unix` or `tcp`.
        network: String,
        /// The field as written.
        address: String,
        /// Why it does not parse.
        source: EndpointError,
    },
    /// An RPC protocol the host does not allow (or does not know).
    #[error(
        "Unsupported plugin protocol {protocol:?}. Supported: {}",
        list(supported)
    )]
    UnsupportedProtocol {
        /// The field as written.
        protocol: String,
        /// What the host allows.
        supported: Vec<Protocol>,
    },
    /// The certificate field has `=` padding, which go-plugin hosts reject.
    #[error(
        "error parsing server cert: the base64 has '=' padding; go-plugin requires unpadded standard base64"
    )]
    CertificatePadded,
    /// The certificate field is not standard base64.
    #[error("error parsing server cert: not standard base64")]
    CertificateBase64 {
        /// The decoder's error.
        source: base64::DecodeError,
    },
    /// The certificate field is base64 but not a DER X.509 certificate.
    #[error("error parsing server cert")]
    CertificateDer {
        /// What is wrong with it.
        source: CertificateParseError,
    },
    /// The multiplexing field is not a boolean.
    #[error("error parsing multiplexing support {value:?}: not a boolean")]
    MultiplexSyntax {
        /// The field as written.
        value: String,
    },
    /// The host asked for multiplexed gRPC and the plugin did not announce
    /// it (no seventh field, or `false`): go-plugin's host refuses it so.
    #[error(
        "client requested gRPC broker multiplexing but plugin does not support the feature (its handshake line {})",
        match announced { Some(false) => "says false", _ => "has no seventh field" }
    )]
    MultiplexUnsupported {
        /// The seventh field, if present.
        announced: Option<bool>,
    },
    /// The plugin's first stdout line is not UTF-8, so it cannot be a
    /// handshake line.
    #[error("the handshake line is not UTF-8 (invalid byte at offset {at})")]
    NotUtf8 {
        /// The offset of the first invalid byte.
        at: usize,
    },
    /// The plugin's first stdout line ran past the longest handshake line a
    /// host reads.
    #[error("the handshake line is too long: no newline within {limit} bytes")]
    LineTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
}

/// The magic cookie is unset or wrong: the binary was not started by a host
/// that knows it. A plugin's check of its environment
/// ([`HandshakeConfig::check_cookie`](super::HandshakeConfig::check_cookie)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "magic cookie {key} is {}: this binary is a plugin, meant to be started by its host",
    if *found { "wrong" } else { "not set" }
)]
#[non_exhaustive]
pub struct CookieError {
    /// The cookie's environment variable.
    pub key: String,
    /// Whether the variable was set (to another value).
    pub found: bool,
}

/// An address that cannot be printed in a handshake line (it holds `|` or a
/// line break): a plugin building its line
/// ([`HandshakeLine::new`](super::HandshakeLine::new)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {address:?} cannot go in a handshake line: it contains '|' or a line break")]
#[non_exhaustive]
pub struct AddressError {
    /// The address.
    pub address: String,
}

fn list(protocols: &[Protocol]) -> String {
    let names: Vec<&str> = protocols.iter().map(Protocol::as_str).collect();
    format!("[{}]", names.join(" "))
}
