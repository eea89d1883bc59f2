//! The unix-socket transport where go-plugin has none (Windows): the same
//! type and builder, so code that names it compiles everywhere, but every
//! `listen` and `connect` fails with a typed error saying that TCP is the
//! transport there.

use std::path::PathBuf;
use std::time::Duration;

use super::env::socket_dir_from_env;
use super::{
    CloseError, ConnectError, Connection, DEFAULT_CONNECT_TIMEOUT, Endpoint, EnvError, Incoming,
    ListenError, SocketGroup, Transport,
};

/// The longest unix socket path go-plugin's platforms bind, in bytes
/// (macOS's; Windows has no go-plugin unix sockets).
pub const SUN_PATH_MAX: usize = 103;

/// A unix-socket [`Transport`]; on Windows it only refuses.
///
/// go-plugin serves and dials plugins over TCP on Windows, so this
/// transport's [`listen`](Transport::listen) fails with
/// [`ListenError::UnixUnsupported`] and its
/// [`connect`](Transport::connect) with
/// [`ConnectError::UnixUnsupported`]. Use
/// [`TcpTransport`](super::TcpTransport), which `serve` and `Client` choose
/// on Windows by themselves.
#[derive(Debug)]
pub struct UnixTransport {
    endpoint: Endpoint,
    connect_timeout: Duration,
}

impl UnixTransport {
    /// Would listen at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self::at(if path.as_os_str().is_empty() {
            PathBuf::from("plugin")
        } else {
            path
        })
    }

    /// Would listen at a fresh path in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self::at(dir.into().join("pluginXXXXXXXXXX"))
    }

    /// Would listen in `PLUGIN_UNIX_SOCKET_DIR`, else the temporary
    /// directory.
    ///
    /// # Errors
    ///
    /// None on Windows: the group is looked up only when listening, which
    /// fails first.
    pub fn from_env() -> Result<Self, EnvError> {
        let transport = Self::in_dir(socket_dir_from_env());
        Ok(match SocketGroup::from_env() {
            Some(group) => transport.group(group),
            None => transport,
        })
    }

    /// The group that would own the socket (Windows has none: kept for
    /// the same API, then unused, as listening fails).
    #[must_use]
    pub fn group(self, _group: SocketGroup) -> Self {
        self
    }

    /// How long [`connect`](Transport::connect) may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn at(path: PathBuf) -> Self {
        UnixTransport {
            endpoint: Endpoint::unix(&path).expect("a non-empty path"),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl Transport for UnixTransport {
    async fn listen(&self) -> Result<(Endpoint, Incoming), ListenError> {
        Err(ListenError::UnixUnsupported {
            endpoint: self.endpoint.clone(),
        })
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        super::with_timeout(endpoint, self.connect_timeout, connect(endpoint)).await
    }

    async fn close(&self) -> Result<(), CloseError> {
        Ok(())
    }
}

/// Refuses a unix endpoint; names another kind as the wrong network.
pub(super) async fn connect(endpoint: &Endpoint) -> Result<Connection, ConnectError> {
    Err(match endpoint.unix_path() {
        Some(_) => ConnectError::UnixUnsupported {
            endpoint: endpoint.clone(),
        },
        None => ConnectError::WrongNetwork {
            transport: "unix",
            endpoint: endpoint.clone(),
        },
    })
}
