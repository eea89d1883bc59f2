//! TCP listener and dialler.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::TcpListener;

use super::conn::AcceptLoop;
use super::{
    CloseError, ConnectError, Connection, DEFAULT_CONNECT_TIMEOUT, Endpoint, EnvError, Host,
    Incoming, ListenError, PortRange, Transport,
};

/// A TCP [`Transport`].
///
/// The listener is bound before [`listen`](Transport::listen) reports its
/// address, so the address is never stale (pyvider-rpcplugin probes a free
/// port, closes it and binds later, which races with other processes).
///
/// ```no_run
/// use rpcplugin::Transport;
/// use rpcplugin::transport::TcpTransport;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // 127.0.0.1, first free port of PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT.
/// let transport = TcpTransport::from_env()?;
/// let (endpoint, _incoming) = transport.listen().await?;
/// assert_eq!(endpoint.network(), "tcp");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TcpTransport {
    endpoint: Endpoint,
    range: PortRange,
    connect_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    Idle,
    Listening(AcceptLoop),
    Closed,
}

impl TcpTransport {
    /// Listens on `endpoint`; port 0 lets the operating system pick, or
    /// takes the first free port of [`port_range`](Self::port_range).
    ///
    /// # Errors
    ///
    /// [`ListenError::WrongNetwork`] for a unix endpoint.
    pub fn new(endpoint: &Endpoint) -> Result<Self, ListenError> {
        if endpoint.tcp_parts().is_none() {
            return Err(ListenError::WrongNetwork {
                transport: "tcp",
                endpoint: endpoint.clone(),
            });
        }
        Ok(TcpTransport {
            endpoint: endpoint.clone(),
            range: PortRange::ANY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            state: Mutex::new(State::Idle),
        })
    }

    /// Listens on 127.0.0.1, on a port the operating system picks.
    pub fn localhost() -> Self {
        Self::new(&Endpoint::tcp(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
        )))
        .expect("a TCP endpoint")
    }

    /// Listens on 127.0.0.1, as go-plugin does, on the first free port of
    /// `PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT` (any port when both are unset).
    ///
    /// # Errors
    ///
    /// As [`PortRange::from_env`].
    pub fn from_env() -> Result<Self, EnvError> {
        Ok(Self::localhost().port_range(PortRange::from_env()?))
    }

    /// The ports to try when the endpoint's port is 0.
    #[must_use]
    pub fn port_range(mut self, range: PortRange) -> Self {
        self.range = range;
        self
    }

    /// How long [`connect`](Transport::connect) may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    async fn bind(&self) -> Result<TcpListener, ListenError> {
        let (host, port) = self.endpoint.tcp_parts().expect("checked in new");
        let ips = resolve_host(host)
            .await
            .map_err(|source| ListenError::Resolve {
                host: host.to_string(),
                source,
            })?;
        if port != 0 || self.range == PortRange::ANY {
            return bind_any(&ips, port)
                .await
                .map_err(|(ip, source)| ListenError::Bind {
                    endpoint: Endpoint::tcp(SocketAddr::new(ip, port)),
                    source,
                });
        }
        for port in self.range.ports() {
            if let Ok(listener) = bind_any(&ips, port).await {
                return Ok(listener);
            }
        }
        Err(ListenError::NoFreePort {
            host: host.to_string(),
            range: self.range,
        })
    }
}

/// Binds the first address of `ips` that accepts `port`; on failure, the
/// last address tried and its error.
async fn bind_any(ips: &[IpAddr], port: u16) -> Result<TcpListener, (IpAddr, io::Error)> {
    let mut last = None;
    for ip in ips {
        match TcpListener::bind(SocketAddr::new(*ip, port)).await {
            Ok(listener) => return Ok(listener),
            Err(err) => last = Some((*ip, err)),
        }
    }
    Err(last.expect("resolve_host gives at least one address"))
}

/// The addresses of a host, in the resolver's order; at least one.
async fn resolve_host(host: &Host) -> io::Result<Vec<IpAddr>> {
    let name = match host {
        Host::Ip(ip) => return Ok(vec![*ip]),
        Host::Name(name) => name,
    };
    let ips: Vec<IpAddr> = tokio::net::lookup_host((name.as_str(), 0))
        .await?
        .map(|addr| addr.ip())
        .collect();
    if ips.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the name resolved to no address",
        ));
    }
    Ok(ips)
}

/// Dials a TCP endpoint, trying each resolved address in turn.
pub(super) async fn connect(endpoint: &Endpoint) -> Result<Connection, ConnectError> {
    let (host, port) = endpoint
        .tcp_parts()
        .ok_or_else(|| ConnectError::WrongNetwork {
            transport: "tcp",
            endpoint: endpoint.clone(),
        })?;
    let mut last = None;
    let ips = resolve_host(host)
        .await
        .map_err(|source| ConnectError::Resolve {
            host: host.to_string(),
            source,
        })?;
    for ip in ips {
        match tokio::net::TcpStream::connect(SocketAddr::new(ip, port)).await {
            Ok(stream) => {
                // gRPC frames are small and latency-bound: never wait for Nagle.
                let _ = stream.set_nodelay(true);
                return Ok(stream.into());
            }
            Err(err) => last = Some(err),
        }
    }
    Err(ConnectError::Refused {
        endpoint: endpoint.clone(),
        source: last.expect("resolve_host gives at least one address"),
    })
}

impl Transport for TcpTransport {
    async fn listen(&self) -> Result<(Endpoint, Incoming), ListenError> {
        if !matches!(*self.state.lock().expect("state lock"), State::Idle) {
            return Err(ListenError::AlreadyListened);
        }
        let listener = self.bind().await?;
        let local = listener.local_addr().map_err(|source| ListenError::Bind {
            endpoint: self.endpoint.clone(),
            source,
        })?;
        let (accept, incoming) = AcceptLoop::spawn(listener);
        let mut state = self.state.lock().expect("state lock");
        if !matches!(*state, State::Idle) {
            return Err(ListenError::AlreadyListened);
        }
        *state = State::Listening(accept);
        Ok((Endpoint::tcp(local), incoming))
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        super::with_timeout(endpoint, self.connect_timeout, connect(endpoint)).await
    }

    async fn close(&self) -> Result<(), CloseError> {
        let previous =
            std::mem::replace(&mut *self.state.lock().expect("state lock"), State::Closed);
        if let State::Listening(accept) = previous {
            accept.stop().await;
        }
        Ok(())
    }
}
