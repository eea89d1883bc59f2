//! Where to listen, as one value: a fresh unix socket in a directory (with
//! a group), or a port on 127.0.0.1 from a range; and one [`Transport`]
//! over both socket kinds, for code that picks the kind at run time.

use std::path::PathBuf;

use super::{
    CloseError, ConnectError, Connection, Endpoint, EnvError, Incoming, ListenError, PortRange,
    SocketGroup, TcpTransport, Transport, UnixTransport, socket_dir_from_env,
};

/// Where fresh listeners go: the plugin's own, and brokered ones on both
/// sides.
///
/// ```
/// use rpcplugin::transport::Listen;
///
/// // go-plugin's environment, read once:
/// let unix = Listen::unix_from_env()?;
/// let tcp = Listen::tcp_from_env()?;
/// # let _ = (unix, tcp);
/// # Ok::<(), rpcplugin::transport::EnvError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listen {
    /// A fresh socket `pluginXXXXXXXXXX` in `dir`, owned by `group`.
    Unix {
        /// The directory.
        dir: PathBuf,
        /// The socket's group.
        group: Option<SocketGroup>,
    },
    /// 127.0.0.1, on the first free port of the range.
    Tcp(PortRange),
}

impl Listen {
    /// `PLUGIN_UNIX_SOCKET_DIR` (else the temporary directory) and
    /// `PLUGIN_UNIX_SOCKET_GROUP`.
    ///
    /// # Errors
    ///
    /// [`EnvError::UnknownGroup`] when the group does not exist.
    pub fn unix_from_env() -> Result<Self, EnvError> {
        let group = SocketGroup::from_env();
        if let Some(group) = &group {
            group.gid()?;
        }
        Ok(Listen::Unix {
            dir: socket_dir_from_env(),
            group,
        })
    }

    /// go-plugin's choice for this platform, from its environment: a unix
    /// socket ([`unix_from_env`](Self::unix_from_env)) on unix, TCP
    /// ([`tcp_from_env`](Self::tcp_from_env)) on Windows.
    ///
    /// # Errors
    ///
    /// As the one chosen.
    pub fn from_env() -> Result<Self, EnvError> {
        if cfg!(windows) {
            Self::tcp_from_env()
        } else {
            Self::unix_from_env()
        }
    }

    /// `PLUGIN_MIN_PORT` and `PLUGIN_MAX_PORT`.
    ///
    /// # Errors
    ///
    /// As [`PortRange::from_env`].
    pub fn tcp_from_env() -> Result<Self, EnvError> {
        Ok(Listen::Tcp(PortRange::from_env()?))
    }

    /// A transport that listens there.
    pub fn transport(&self) -> AnyTransport {
        match self {
            Listen::Unix { dir, group } => {
                let transport = UnixTransport::in_dir(dir);
                AnyTransport::Unix(match group {
                    Some(group) => transport.group(group.clone()),
                    None => transport,
                })
            }
            Listen::Tcp(ports) => AnyTransport::Tcp(TcpTransport::localhost().port_range(*ports)),
        }
    }
}

/// A [`Transport`] over either socket kind (the trait's async methods make
/// it unfit for `dyn`).
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyTransport {
    /// A unix socket.
    Unix(UnixTransport),
    /// TCP.
    Tcp(TcpTransport),
}

impl AnyTransport {
    /// Listens at exactly `endpoint`: a unix socket path, or a TCP address
    /// (port 0 for any).
    ///
    /// # Errors
    ///
    /// As [`TcpTransport::new`].
    pub fn at(endpoint: &Endpoint) -> Result<Self, ListenError> {
        Ok(match endpoint.unix_path() {
            Some(path) => AnyTransport::Unix(UnixTransport::new(path)),
            None => AnyTransport::Tcp(TcpTransport::new(endpoint)?),
        })
    }
}

impl Transport for AnyTransport {
    async fn listen(&self) -> Result<(Endpoint, Incoming), ListenError> {
        match self {
            AnyTransport::Unix(t) => t.listen().await,
            AnyTransport::Tcp(t) => t.listen().await,
        }
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        match self {
            AnyTransport::Unix(t) => t.connect(endpoint).await,
            AnyTransport::Tcp(t) => t.connect(endpoint).await,
        }
    }

    async fn close(&self) -> Result<(), CloseError> {
        match self {
            AnyTransport::Unix(t) => t.close().await,
            AnyTransport::Tcp(t) => t.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_plan_listens_where_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let unix = Listen::Unix {
            dir: dir.path().to_owned(),
            group: None,
        }
        .transport();
        #[cfg(unix)]
        {
            let (endpoint, _incoming) = unix.listen().await.unwrap();
            let path = endpoint.unix_path().unwrap().to_owned();
            assert_eq!(path.parent().unwrap(), dir.path());
            unix.close().await.unwrap();
            assert!(!path.exists(), "closing removes the socket");
        }
        // Windows: a typed refusal that says what to use instead.
        #[cfg(not(unix))]
        {
            let err = unix.listen().await.unwrap_err();
            assert!(
                matches!(err, ListenError::UnixUnsupported { .. }),
                "{err:?}"
            );
            assert!(
                err.to_string().contains("TCP is the transport on Windows"),
                "{err}"
            );
            let connect = unix.connect(&"unix:/tmp/x".parse().unwrap()).await;
            assert!(matches!(connect, Err(ConnectError::UnixUnsupported { .. })));
            assert_eq!(Listen::from_env().unwrap(), Listen::tcp_from_env().unwrap());
        }

        let ports = PortRange::new(20000, 20100).unwrap();
        let tcp = Listen::Tcp(ports).transport();
        let (endpoint, _incoming) = tcp.listen().await.unwrap();
        let (_, port) = endpoint.tcp_parts().unwrap();
        assert!((20000..=20100).contains(&port), "{endpoint}");
        tcp.close().await.unwrap();

        let at = AnyTransport::at(&"127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(matches!(at, AnyTransport::Tcp(_)));
        let at = AnyTransport::at(&"/run/plugin/s".parse().unwrap()).unwrap();
        assert!(matches!(at, AnyTransport::Unix(_)));
    }
}
