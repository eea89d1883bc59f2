//! `Endpoint`: where a plugin listens, as users, hosts and peers write it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
#[cfg(unix)]
use std::path::Component;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A parse failure for an [`Endpoint`]; every variant quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The input, or the path after a `unix:` scheme, is empty.
    #[error("endpoint {input:?}: the socket path is empty")]
    EmptyPath {
        /// The text that was parsed.
        input: String,
    },
    /// The path is the root directory, which is never a socket.
    #[error("endpoint {input:?}: the root directory `/` cannot be a socket path")]
    RootPath {
        /// The text that was parsed.
        input: String,
    },
    /// `unix:`, `unix:/`-style scheme with nothing after it.
    #[error("endpoint {input:?}: `unix:` must be followed by a socket path")]
    SchemeWithoutPath {
        /// The text that was parsed.
        input: String,
    },
    /// A port that is not made of ASCII digits only (signs, spaces, other
    /// scripts' digits and an empty port are all refused).
    #[error("endpoint {input:?}: port {port:?} is not a decimal number")]
    PortNotDigits {
        /// The text that was parsed.
        input: String,
        /// The port as written.
        port: String,
    },
    /// A port above 65535.
    #[error("endpoint {input:?}: port {port} is out of range (0-65535)")]
    PortOutOfRange {
        /// The text that was parsed.
        input: String,
        /// The port as written.
        port: String,
    },
    /// `:port` or `tcp://:port`, with no host before the colon.
    #[error("endpoint {input:?}: the host is missing before the port")]
    MissingHost {
        /// The text that was parsed.
        input: String,
    },
    /// A host that is neither an IP address nor a DNS name.
    #[error("endpoint {input:?}: {host:?} is not a valid host name or IP address")]
    InvalidHost {
        /// The text that was parsed.
        input: String,
        /// The host as written.
        host: String,
    },
    /// An IPv6 address written without brackets, so that its port cannot be
    /// told from the address.
    #[error("endpoint {input:?}: write an IPv6 address in brackets, as [::1]:port")]
    UnbracketedIpv6 {
        /// The text that was parsed.
        input: String,
    },
    /// A scheme other than `unix:` and `tcp://`.
    #[error("endpoint {input:?}: unknown scheme {scheme:?} (expected `unix:` or `tcp://`)")]
    UnknownScheme {
        /// The text that was parsed.
        input: String,
        /// The scheme as written, without `://`.
        scheme: String,
    },
}

/// The host part of a TCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Host {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, resolved when the endpoint is bound or dialled.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// Where a plugin listens: a TCP host and port, or a unix socket path.
///
/// Parsing accepts what users, go-plugin and pyvider-rpcplugin write:
///
/// | input | endpoint |
/// | --- | --- |
/// | `/tmp/p.sock`, `./p.sock`, `p.sock` | unix socket at that path |
/// | `unix:/tmp/p.sock`, `unix:///tmp/p.sock` | unix socket `/tmp/p.sock` |
/// | `unix://tmp/p.sock` | unix socket `/tmp/p.sock` (as pyvider-rpcplugin reads it: the text after `unix://` is always absolute) |
/// | `unix:p.sock` | unix socket at the relative path `p.sock` |
/// | `127.0.0.1:8000`, `localhost:8000`, `tcp://host:8000` | TCP |
/// | `[::1]:8000`, `tcp://[::1]:8000` | TCP over IPv6 |
///
/// Unix paths are normalized (`//a/./b/` becomes `/a/b`, `..` is kept), and
/// [`Display`](fmt::Display) prints a canonical form — `unix:/abs/path`,
/// `unix:rel/path`, `host:port`, `[v6]:port` — that parses back to an equal
/// value. [`network`](Self::network) and [`address`](Self::address) give the
/// two fields of go-plugin's handshake line.
///
/// ```
/// use rpcplugin::Endpoint;
///
/// let ep: Endpoint = "unix://tmp/plugin.sock".parse()?;
/// assert_eq!(ep.network(), "unix");
/// assert_eq!(ep.address(), "/tmp/plugin.sock");
/// assert_eq!(ep.to_string(), "unix:/tmp/plugin.sock");
///
/// let ep: Endpoint = "[::1]:8000".parse()?;
/// assert_eq!((ep.network(), ep.address().as_str()), ("tcp", "[::1]:8000"));
/// # Ok::<(), rpcplugin::transport::EndpointError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint(Kind);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Kind {
    Tcp { host: Host, port: u16 },
    Unix(PathBuf),
}

impl Endpoint {
    /// A unix socket endpoint; the path is normalized as when parsing.
    ///
    /// # Errors
    ///
    /// [`EndpointError::EmptyPath`] for an empty path;
    /// [`EndpointError::RootPath`] for `/`.
    pub fn unix(path: impl AsRef<Path>) -> Result<Self, EndpointError> {
        let path = path.as_ref();
        let normal = normalize(path);
        if normal.as_os_str().is_empty() {
            return Err(EndpointError::EmptyPath {
                input: path.to_string_lossy().into_owned(),
            });
        }
        if normal == Path::new("/") {
            return Err(EndpointError::RootPath {
                input: path.to_string_lossy().into_owned(),
            });
        }
        Ok(Endpoint(Kind::Unix(normal)))
    }

    /// A TCP endpoint for a socket address.
    pub fn tcp(addr: SocketAddr) -> Self {
        Endpoint(Kind::Tcp {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        })
    }

    /// A TCP endpoint for a host name or address and a port.
    ///
    /// # Errors
    ///
    /// [`EndpointError::InvalidHost`] or [`EndpointError::MissingHost`] when
    /// `host` is not an IP address or a DNS name.
    pub fn tcp_host(host: &str, port: u16) -> Result<Self, EndpointError> {
        let input = format!("{host}:{port}");
        let host = parse_host(&input, host.trim_start_matches('[').trim_end_matches(']'))?;
        Ok(Endpoint(Kind::Tcp { host, port }))
    }

    /// go-plugin's network name: `"unix"` or `"tcp"`.
    pub fn network(&self) -> &'static str {
        match self.0 {
            Kind::Tcp { .. } => "tcp",
            Kind::Unix(_) => "unix",
        }
    }

    /// go-plugin's address field: the socket path, or `host:port` (IPv6 in
    /// brackets).
    pub fn address(&self) -> String {
        match &self.0 {
            Kind::Tcp { host, port } => format!("{host}:{port}"),
            Kind::Unix(path) => path.to_string_lossy().into_owned(),
        }
    }

    /// The socket path of a unix endpoint.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.0 {
            Kind::Unix(path) => Some(path),
            Kind::Tcp { .. } => None,
        }
    }

    /// The host and port of a TCP endpoint.
    pub fn tcp_parts(&self) -> Option<(&Host, u16)> {
        match &self.0 {
            Kind::Tcp { host, port } => Some((host, *port)),
            Kind::Unix(_) => None,
        }
    }

    /// Builds an endpoint from go-plugin's two handshake fields.
    ///
    /// # Errors
    ///
    /// [`EndpointError::UnknownScheme`] for a network other than `unix` or
    /// `tcp`; the parse errors of the address otherwise. A unix address is
    /// taken as a path, whatever it contains.
    pub fn from_network(network: &str, address: &str) -> Result<Self, EndpointError> {
        match network {
            "unix" => Endpoint::unix(address),
            "tcp" => parse_tcp(address, address),
            other => Err(EndpointError::UnknownScheme {
                input: format!("{other}|{address}"),
                scheme: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            // A host named `unix` would read back as a unix socket path.
            Kind::Tcp { host, port } if host.to_string().eq_ignore_ascii_case("unix") => {
                write!(f, "tcp://{host}:{port}")
            }
            Kind::Tcp { host, port } => write!(f, "{host}:{port}"),
            Kind::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(EndpointError::EmptyPath {
                input: input.into(),
            });
        }
        if let Some(rest) = input.strip_prefix("unix:") {
            return parse_unix_scheme(input, rest);
        }
        if let Some(rest) = input.strip_prefix("tcp://") {
            return parse_tcp(input, rest);
        }
        // Paths first: `/tmp/a://b` is a path, not a scheme.
        if input.starts_with('/') || input.starts_with('.') {
            return Endpoint::unix(input);
        }
        if let Some((scheme, _)) = input.split_once("://") {
            return Err(EndpointError::UnknownScheme {
                input: input.into(),
                scheme: scheme.into(),
            });
        }
        if !input.contains(':') {
            return Endpoint::unix(input);
        }
        parse_tcp(input, input)
    }
}

fn parse_unix_scheme(input: &str, rest: &str) -> Result<Endpoint, EndpointError> {
    // `unix://x/y` is read as `/x/y`, like pyvider-rpcplugin: whatever follows
    // `unix://` is an absolute path (so `unix:///x` is `/x` too).
    let path = match rest.strip_prefix("//") {
        Some(after) => format!("/{after}"),
        None => rest.to_owned(),
    };
    if path.trim_start_matches('/').is_empty() {
        return Err(EndpointError::SchemeWithoutPath {
            input: input.into(),
        });
    }
    Endpoint::unix(path).map_err(|err| match err {
        EndpointError::RootPath { .. } => EndpointError::RootPath {
            input: input.into(),
        },
        _ => EndpointError::SchemeWithoutPath {
            input: input.into(),
        },
    })
}

fn parse_tcp(input: &str, hostport: &str) -> Result<Endpoint, EndpointError> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let Some((ip, after)) = bracketed.split_once(']') else {
            return Err(EndpointError::InvalidHost {
                input: input.into(),
                host: hostport.into(),
            });
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(EndpointError::PortNotDigits {
                input: input.into(),
                port: after.into(),
            });
        };
        let Ok(ip) = ip.parse::<Ipv6Addr>() else {
            return Err(EndpointError::InvalidHost {
                input: input.into(),
                host: ip.into(),
            });
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let Some((host, port)) = hostport.rsplit_once(':') else {
            return Err(EndpointError::PortNotDigits {
                input: input.into(),
                port: String::new(),
            });
        };
        if host.contains(':') {
            return Err(EndpointError::UnbracketedIpv6 {
                input: input.into(),
            });
        }
        (parse_host(input, host)?, port)
    };
    let port = parse_port(input, port)?;
    Ok(Endpoint(Kind::Tcp { host, port }))
}

fn parse_host(input: &str, host: &str) -> Result<Host, EndpointError> {
    if host.is_empty() {
        return Err(EndpointError::MissingHost {
            input: input.into(),
        });
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    // A DNS name: labels of letters, digits, `-` and `_`, separated by dots.
    let valid = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(Host::Name(host.to_ascii_lowercase()))
    } else {
        Err(EndpointError::InvalidHost {
            input: input.into(),
            host: host.into(),
        })
    }
}

fn parse_port(input: &str, port: &str) -> Result<u16, EndpointError> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EndpointError::PortNotDigits {
            input: input.into(),
            port: port.into(),
        });
    }
    // All digits, so the only possible failure is overflow.
    port.parse().map_err(|_| EndpointError::PortOutOfRange {
        input: input.into(),
        port: port.into(),
    })
}

/// Collapses repeated and trailing slashes and `.` components; keeps `..`,
/// which cannot be resolved without the file system.
#[cfg(unix)]
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() && !path.as_os_str().is_empty() && path.components().count() > 0 {
        // The path was only `.` components: it names the current directory.
        out.push(".");
    }
    out
}

/// Windows: a unix socket path is still a unix path ('/' separates, `\\`
/// is a character), so it reads, compares and prints as on unix.
#[cfg(not(unix))]
fn normalize(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    let parts: Vec<&str> = text
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    let mut out = parts.join("/");
    if text.starts_with('/') {
        out.insert(0, '/');
    } else if out.is_empty() && !text.is_empty() {
        // Only `.` components: the current directory.
        out.push('.');
    }
    PathBuf::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str) -> Endpoint {
        Endpoint::unix(s).unwrap()
    }

    #[test]
    fn unix_forms() {
        for (input, path) in [
            ("/tmp/p.sock", "/tmp/p.sock"),
            ("unix:/tmp/p.sock", "/tmp/p.sock"),
            ("unix:///tmp/p.sock", "/tmp/p.sock"),
            ("unix://tmp/p.sock", "/tmp/p.sock"),
            ("unix:p.sock", "p.sock"),
            ("./p.sock", "p.sock"),
            ("p.sock", "p.sock"),
            ("../run/p.sock", "../run/p.sock"),
            ("//tmp//x/./p.sock/", "/tmp/x/p.sock"),
        ] {
            let ep: Endpoint = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(ep, unix(path), "{input}");
            assert_eq!(ep.network(), "unix");
            assert_eq!(ep.address(), path, "{input}");
        }
    }

    #[test]
    fn tcp_forms() {
        for (input, address) in [
            ("127.0.0.1:8000", "127.0.0.1:8000"),
            ("tcp://127.0.0.1:0", "127.0.0.1:0"),
            ("LocalHost:65535", "localhost:65535"),
            ("[::1]:8000", "[::1]:8000"),
            ("tcp://[fe80::1]:80", "[fe80::1]:80"),
            ("example.com:0080", "example.com:80"),
        ] {
            let ep: Endpoint = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(ep.network(), "tcp");
            assert_eq!(ep.address(), address, "{input}");
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "/tmp/p.sock",
            "unix://tmp/x",
            "rel/p.sock",
            "../p",
            "1.2.3.4:5",
            "[::1]:9",
            "tcp://host-a.example:1",
        ] {
            let ep: Endpoint = input.parse().unwrap();
            let shown = ep.to_string();
            assert_eq!(shown.parse::<Endpoint>().unwrap(), ep, "{input} -> {shown}");
        }
        assert_eq!(unix("/a/b").to_string(), "unix:/a/b");
        assert_eq!(unix("a/b").to_string(), "unix:a/b");
    }

    type Check = fn(&EndpointError) -> bool;

    #[test]
    fn errors_name_the_input() {
        use EndpointError::*;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, EmptyPath { .. })),
            ("unix:", |e| matches!(e, SchemeWithoutPath { .. })),
            ("unix://", |e| matches!(e, SchemeWithoutPath { .. })),
            ("unix:///", |e| matches!(e, SchemeWithoutPath { .. })),
            ("host:70000", |e| matches!(e, PortOutOfRange { .. })),
            ("host:+80", |e| matches!(e, PortNotDigits { .. })),
            ("host:-1", |e| matches!(e, PortNotDigits { .. })),
            ("host:８０", |e| matches!(e, PortNotDigits { .. })),
            ("host:", |e| matches!(e, PortNotDigits { .. })),
            ("[::1]", |e| matches!(e, PortNotDigits { .. })),
            (":80", |e| matches!(e, MissingHost { .. })),
            ("tcp://:80", |e| matches!(e, MissingHost { .. })),
            ("tcp://host", |e| matches!(e, PortNotDigits { .. })),
            ("::1:80", |e| matches!(e, UnbracketedIpv6 { .. })),
            ("[nope]:80", |e| matches!(e, InvalidHost { .. })),
            ("bad host:80", |e| matches!(e, InvalidHost { .. })),
            (
                "http://x:80",
                |e| matches!(e, UnknownScheme { scheme, .. } if scheme == "http"),
            ),
        ];
        for (input, check) in cases {
            let err = input.parse::<Endpoint>().unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
            assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
        }
    }

    #[test]
    fn from_network_matches_handshake_fields() {
        let ep = Endpoint::from_network("unix", "/tmp/plugin1").unwrap();
        assert_eq!(ep, unix("/tmp/plugin1"));
        let ep = Endpoint::from_network("tcp", "127.0.0.1:10000").unwrap();
        assert_eq!(ep, Endpoint::tcp("127.0.0.1:10000".parse().unwrap()));
        assert!(Endpoint::from_network("udp", "x").is_err());
        assert!(Endpoint::from_network("unix", "").is_err());
    }
}
