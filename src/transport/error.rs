//! The errors of socket transports, one type per operation: reading
//! go-plugin's environment, listening, connecting, and closing.
//!
//! Every variant names what it is about: the endpoint, the path, the
//! environment variable and its value. One rule for messages: a message
//! says what failed and names its subject, and never repeats its cause; an
//! operating system's error is the [`source()`](std::error::Error::source).
//! Print the whole chain (as `anyhow`'s `{:#}` does) to see both.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::{Endpoint, PortRange};

/// go-plugin's environment holds a value a transport cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// An environment variable that does not hold what it should.
    #[error("environment variable {var}={value:?}: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A port range whose minimum is above its maximum.
    #[error("PLUGIN_MIN_PORT {min} is greater than PLUGIN_MAX_PORT {max}")]
    InvertedPortRange {
        /// The minimum port.
        min: u16,
        /// The maximum port.
        max: u16,
    },
    /// `PLUGIN_UNIX_SOCKET_GROUP` (or the configured group) names no group.
    #[error("unknown group {group:?} for unix sockets")]
    UnknownGroup {
        /// The group as written.
        group: String,
    },
}

/// A failure to listen: to prepare the socket's place, bind it, or set its
/// permissions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListenError {
    /// Binding the listener failed.
    #[error("cannot listen on {endpoint}")]
    Bind {
        /// Where we tried to listen.
        endpoint: Endpoint,
        /// The operating system's error.
        source: io::Error,
    },
    /// A host name did not resolve, or resolved to no address.
    #[error("cannot resolve host {host:?}")]
    Resolve {
        /// The host name as written.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Every port of the range was taken.
    #[error("no free TCP port on {host} in {range}")]
    NoFreePort {
        /// The host we tried to bind.
        host: String,
        /// The range from `PLUGIN_MIN_PORT` and `PLUGIN_MAX_PORT`.
        range: PortRange,
    },
    /// A socket at the path has a live listener: another process serves it.
    #[error("unix socket {path} is in use: a process is listening on it")]
    InUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Something other than a socket is at the path; it is left untouched.
    #[error("{path} is a {kind}, not a unix socket; it was left untouched")]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What is there: "regular file", "directory", "symbolic link", …
        kind: &'static str,
    },
    /// A socket path longer than the platform's `sun_path` allows.
    #[error(
        "unix socket path {path} is {len} bytes, over the limit of {max} bytes \
         (sun_path holds {} with its terminating NUL); use a shorter path or \
         set PLUGIN_UNIX_SOCKET_DIR to a shorter directory",
        max + 1
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The longest path this platform can bind.
        max: usize,
    },
    /// The socket's directory could not be created.
    #[error("cannot create socket directory {dir}")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Something other than a directory is where the socket's directory (or
    /// one of its parents) should be; it is left untouched.
    #[error(
        "cannot use {path} as a socket directory: it is {what}, not a directory; it was left untouched"
    )]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// What is there: "a regular file", "a symbolic link to /x, which
        /// does not exist (a dangling link)", …
        what: String,
    },
    /// The socket's directory lets another user remove, rename or replace
    /// our socket; nothing was bound in it.
    #[error(
        "refusing socket directory {dir}: {reason} (owner uid {owner}, group gid {group}, \
         mode {mode:04o}; we are uid {euid}); use a directory that only this user may \
         write in, or one with the sticky bit such as /tmp"
    )]
    UnsafeSocketDir {
        /// The directory (as given; a symbolic link is followed).
        dir: PathBuf,
        /// What makes it unsafe.
        reason: &'static str,
        /// Its owner's uid.
        owner: u32,
        /// Its group's gid.
        group: u32,
        /// Its permission bits, with the sticky bit.
        mode: u32,
        /// Our effective uid.
        euid: u32,
    },
    /// The path could not be examined (stat or probe connect failed).
    #[error("cannot examine {path}")]
    Inspect {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Setting the socket's mode or group failed.
    #[error("cannot set mode or group of socket {path}")]
    Permissions {
        /// The socket path.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A stale socket at the path (nobody listened on it) could not be
    /// removed.
    #[error("cannot remove stale socket {path}")]
    Remove {
        /// The socket path.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The socket's group does not exist.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// An endpoint of the other kind (a unix path given to a TCP transport).
    #[error("the {transport} transport cannot use endpoint {endpoint}")]
    WrongNetwork {
        /// `"tcp"` or `"unix"`.
        transport: &'static str,
        /// The endpoint.
        endpoint: Endpoint,
    },
    /// `listen` on a transport that is listening or was closed.
    #[error("this transport has already listened; create a new one")]
    AlreadyListened,
    /// A unix socket asked for where go-plugin has none (Windows).
    #[error("cannot listen on {endpoint}: {UNIX_UNSUPPORTED}")]
    UnixUnsupported {
        /// The unix endpoint asked for.
        endpoint: Endpoint,
    },
}

/// Why a unix endpoint fails on Windows.
const UNIX_UNSUPPORTED: &str =
    "go-plugin has no unix sockets on this platform; TCP is the transport on Windows";

/// A failure to connect to an endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A host name did not resolve, or resolved to no address.
    #[error("cannot resolve host {host:?}")]
    Resolve {
        /// The host name as written.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The connection was refused or failed (TCP or TLS).
    #[error("cannot connect to {endpoint}")]
    Refused {
        /// The endpoint.
        endpoint: Endpoint,
        /// The operating system's error.
        source: io::Error,
    },
    /// Connecting took longer than the timeout.
    #[error("connecting to {endpoint} timed out after {timeout:?}")]
    Timeout {
        /// The endpoint.
        endpoint: Endpoint,
        /// The timeout.
        timeout: Duration,
    },
    /// An endpoint of the other kind (a unix path given to a TCP transport).
    #[error("the {transport} transport cannot use endpoint {endpoint}")]
    WrongNetwork {
        /// `"tcp"` or `"unix"`.
        transport: &'static str,
        /// The endpoint.
        endpoint: Endpoint,
    },
    /// A unix endpoint where go-plugin has no unix sockets (Windows).
    #[error("cannot connect to {endpoint}: {UNIX_UNSUPPORTED}")]
    UnixUnsupported {
        /// The unix endpoint.
        endpoint: Endpoint,
    },
}

/// A failure to close a listener: our own socket could not be removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// Our own socket could not be removed on close.
    #[error("cannot remove socket {path}")]
    Remove {
        /// The socket path.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}
