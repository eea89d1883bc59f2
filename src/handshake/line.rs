//! The handshake line: `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX]`.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use super::{AddressError, HandshakeError};
use crate::transport::Endpoint;

/// go-plugin's core protocol version, the first field of every line.
pub const CORE_PROTOCOL_VERSION: u32 = 1;

/// A certificate field this short is ignored, as go-plugin does: it rules
/// out stray data some old implementations printed there.
const MIN_CERT_FIELD_LEN: usize = 51;

/// The RPC protocol a plugin speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// gRPC, the protocol this crate speaks.
    Grpc,
    /// Go's `net/rpc`, which only Go implements; hosts of this crate refuse it.
    NetRpc,
}

impl Protocol {
    /// The name in the handshake line: `grpc` or `netrpc`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::NetRpc => "netrpc",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = HandshakeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grpc" => Ok(Protocol::Grpc),
            "netrpc" => Ok(Protocol::NetRpc),
            other => Err(HandshakeError::UnsupportedProtocol {
                protocol: other.to_owned(),
                supported: vec![Protocol::Grpc, Protocol::NetRpc],
            }),
        }
    }
}

/// The line a plugin prints on stdout once it listens, and a host parses.
///
/// [`Display`](fmt::Display) formats it without the trailing newline: six
/// fields always, and a seventh (multiplexing) only when it was set with
/// [`with_multiplex`](Self::with_multiplex), because hosts up to go-plugin
/// 1.5 split the line into at most six fields. The certificate is the DER in
/// unpadded standard base64.
///
/// [`parse`](Self::parse) accepts what go-plugin hosts accept: at least four
/// fields, surrounding white space and CR/LF, no protocol (netrpc), a
/// certificate field of 50 characters or fewer (ignored).
///
/// ```
/// use rpcplugin::{Endpoint, Protocol};
/// use rpcplugin::handshake::HandshakeLine;
///
/// let line = HandshakeLine::new(6, "/tmp/plugin1".parse()?)?;
/// assert_eq!(line.to_string(), "1|6|unix|/tmp/plugin1|grpc|");
///
/// let parsed = HandshakeLine::parse("1|6|tcp|127.0.0.1:10000|grpc|\r\n")?;
/// assert_eq!(parsed.endpoint().address(), "127.0.0.1:10000");
/// parsed.check(&[5, 6], &[Protocol::Grpc])?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeLine {
    app_version: u32,
    endpoint: Endpoint,
    protocol: Protocol,
    server_cert: Option<Vec<u8>>,
    multiplex: Option<bool>,
}

impl HandshakeLine {
    /// A gRPC line without certificate or multiplexing field.
    ///
    /// # Errors
    ///
    /// [`AddressError`] when the endpoint's address holds `|` or a line
    /// break, which would corrupt the line.
    pub fn new(app_version: u32, endpoint: Endpoint) -> Result<Self, AddressError> {
        let address = endpoint.address();
        if address.contains(['|', '\n', '\r']) {
            return Err(AddressError { address });
        }
        Ok(HandshakeLine {
            app_version,
            endpoint,
            protocol: Protocol::Grpc,
            server_cert: None,
            multiplex: None,
        })
    }

    /// The line a host stands for when it attaches to a running plugin
    /// (`TF_REATTACH_PROVIDERS`): it is checked, never printed, so any
    /// address is fine.
    pub(crate) fn attached(app_version: u32, endpoint: Endpoint) -> Self {
        HandshakeLine {
            app_version,
            endpoint,
            protocol: Protocol::Grpc,
            server_cert: None,
            multiplex: None,
        }
    }

    /// Adds the plugin's AutoMTLS certificate (DER).
    #[must_use]
    pub fn with_server_cert(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.server_cert = Some(der.into());
        self
    }

    /// Adds the seventh field; print it only when the host set
    /// `PLUGIN_MULTIPLEX_GRPC`.
    #[must_use]
    pub fn with_multiplex(mut self, multiplex: bool) -> Self {
        self.multiplex = Some(multiplex);
        self
    }

    /// The negotiated app protocol version.
    pub fn app_version(&self) -> u32 {
        self.app_version
    }

    /// Where the plugin listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The RPC protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The plugin's AutoMTLS certificate (DER), if it sent one.
    pub fn server_cert(&self) -> Option<&[u8]> {
        self.server_cert.as_deref()
    }

    /// The multiplexing field, if present.
    pub fn multiplex(&self) -> Option<bool> {
        self.multiplex
    }

    /// Parses a line as a go-plugin host reads it.
    ///
    /// # Errors
    ///
    /// In go-plugin's order: [`HandshakeError::Unrecognized`] (fewer than
    /// four fields), [`CoreVersionSyntax`](HandshakeError::CoreVersionSyntax),
    /// [`IncompatibleCoreVersion`](HandshakeError::IncompatibleCoreVersion),
    /// [`AppVersionSyntax`](HandshakeError::AppVersionSyntax),
    /// [`UnknownNetwork`](HandshakeError::UnknownNetwork),
    /// [`BadAddress`](HandshakeError::BadAddress),
    /// [`UnsupportedProtocol`](HandshakeError::UnsupportedProtocol), the
    /// certificate errors, and
    /// [`MultiplexSyntax`](HandshakeError::MultiplexSyntax).
    pub fn parse(line: &str) -> Result<Self, HandshakeError> {
        let line = line.trim();
        let parts: Vec<&str> = line.split('|').collect();
        if parts.len() < 4 {
            return Err(HandshakeError::Unrecognized { line: line.into() });
        }
        let core = go_atoi(parts[0]).ok_or_else(|| HandshakeError::CoreVersionSyntax {
            value: parts[0].into(),
        })?;
        if core != i64::from(CORE_PROTOCOL_VERSION) {
            return Err(HandshakeError::IncompatibleCoreVersion {
                value: parts[0].into(),
            });
        }
        let app_version = go_atoi(parts[1])
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| HandshakeError::AppVersionSyntax {
                value: parts[1].into(),
            })?;
        let (network, address) = (parts[2], parts[3]);
        if network != "unix" && network != "tcp" {
            return Err(HandshakeError::UnknownNetwork {
                network: network.into(),
            });
        }
        let endpoint = Endpoint::from_network(network, address).map_err(|source| {
            HandshakeError::BadAddress {
                network: network.into(),
                address: address.into(),
                source,
            }
        })?;
        let protocol = match parts.get(4) {
            Some(p) => p.parse()?,
            None => Protocol::NetRpc,
        };
        let server_cert = match parts.get(5) {
            Some(cert) if cert.len() >= MIN_CERT_FIELD_LEN => Some(decode_cert(cert)?),
            _ => None,
        };
        let multiplex = match parts.get(6) {
            Some(value) => {
                Some(
                    go_parse_bool(value).ok_or_else(|| HandshakeError::MultiplexSyntax {
                        value: (*value).into(),
                    })?,
                )
            }
            None => None,
        };
        Ok(HandshakeLine {
            app_version,
            endpoint,
            protocol,
            server_cert,
            multiplex,
        })
    }

    /// Parses a line as a host that did not ask for multiplexing does:
    /// like [`parse`](Self::parse), with the seventh field and any after it
    /// ignored, whatever they say (go-plugin's host reads field 7 only when
    /// it asked with `PLUGIN_MULTIPLEX_GRPC`).
    ///
    /// # Errors
    ///
    /// As [`parse`](Self::parse), less
    /// [`MultiplexSyntax`](HandshakeError::MultiplexSyntax).
    pub(crate) fn parse_unasked(line: &str) -> Result<Self, HandshakeError> {
        let six: Vec<&str> = line.trim().splitn(7, '|').take(6).collect();
        Self::parse(&six.join("|"))
    }

    /// Checks the line against what the host offered, as go-plugin does.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::IncompatibleAppVersion`] when the version is not in
    /// `offered_versions`; [`HandshakeError::UnsupportedProtocol`] when the
    /// protocol is not in `allowed`. The seventh (multiplexing) field is not
    /// checked: a host that did not ask for multiplexing ignores it, as
    /// go-plugin's does; one that asked checks [`multiplex`](Self::multiplex).
    pub fn check(
        &self,
        offered_versions: &[u32],
        allowed: &[Protocol],
    ) -> Result<(), HandshakeError> {
        if !offered_versions.contains(&self.app_version) {
            return Err(HandshakeError::IncompatibleAppVersion {
                plugin: self.app_version,
                offered: offered_versions.to_vec(),
            });
        }
        if !allowed.contains(&self.protocol) {
            return Err(HandshakeError::UnsupportedProtocol {
                protocol: self.protocol.as_str().into(),
                supported: allowed.to_vec(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for HandshakeLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cert = self
            .server_cert
            .as_deref()
            .map(|der| STANDARD_NO_PAD.encode(der))
            .unwrap_or_default();
        write!(
            f,
            "{CORE_PROTOCOL_VERSION}|{}|{}|{}|{}|{cert}",
            self.app_version,
            self.endpoint.network(),
            self.endpoint.address(),
            self.protocol,
        )?;
        if let Some(multiplex) = self.multiplex {
            write!(f, "|{multiplex}")?;
        }
        Ok(())
    }
}

impl FromStr for HandshakeLine {
    type Err = HandshakeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn decode_cert(field: &str) -> Result<Vec<u8>, HandshakeError> {
    if field.ends_with('=') {
        return Err(HandshakeError::CertificatePadded);
    }
    let der = STANDARD_NO_PAD
        .decode(field)
        .map_err(|source| HandshakeError::CertificateBase64 { source })?;
    match crate::tls::der_problem(&der) {
        None => Ok(der),
        Some(source) => Err(HandshakeError::CertificateDer { source }),
    }
}

/// Go's `strconv.Atoi`: an optional sign, then ASCII digits.
pub(super) fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[path = "line_tests.rs"]
mod tests;
