//! One connection type for both socket kinds, and the accept loop that feeds
//! [`Incoming`].

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
#[cfg(unix)]
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::Stream;

use super::authority::AuthorityFix;
use super::cutoff::Cutoff;

/// An accepted or dialled connection over TCP or a unix socket.
///
/// It reads and writes like the socket it wraps, and implements tonic's
/// `Connected`, so a stream of them serves a tonic server.
#[derive(Debug)]
pub struct Connection(Inner);

#[derive(Debug)]
enum Inner {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    ServerTls(Box<tokio_rustls::server::TlsStream<Connection>>),
    ClientTls(Box<tokio_rustls::client::TlsStream<Connection>>),
    /// Server side, with grpcio's unix-socket `:authority` made acceptable
    /// to h2 (see [`AuthorityFix`]).
    AuthorityFixed(Box<AuthorityFix<Connection>>),
    /// Fails every read and write once a signal fires (see [`Cutoff`]).
    Cutoff(Box<Cutoff<Connection>>),
    /// A stream of a multiplexed session (see [`super::mux`]).
    Mux(Box<super::mux::MuxStream>),
}

/// What a tonic service can learn about the peer of a [`Connection`], from
/// `request.extensions().get::<ConnectionInfo>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// The peer's address, for TCP connections.
    pub peer_addr: Option<SocketAddr>,
}

impl Connection {
    /// The peer's address, for a TCP connection.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.0 {
            Inner::Tcp(stream) => stream.peer_addr().ok(),
            #[cfg(unix)]
            Inner::Unix(_) => None,
            Inner::ServerTls(tls) => tls.get_ref().0.peer_addr(),
            Inner::ClientTls(tls) => tls.get_ref().0.peer_addr(),
            Inner::AuthorityFixed(fixed) => fixed.get_ref().peer_addr(),
            Inner::Cutoff(cut) => cut.get_ref().peer_addr(),
            Inner::Mux(_) => None,
        }
    }

    /// The pid of the process at the other end of a unix connection, from
    /// the kernel (`SO_PEERCRED`): for a dialled connection, the process
    /// that made the listening socket. `None` over TCP.
    pub fn peer_pid(&self) -> Option<i32> {
        match &self.0 {
            #[cfg(unix)]
            Inner::Unix(stream) => stream.peer_cred().ok()?.pid(),
            Inner::Tcp(_) => None,
            Inner::ServerTls(tls) => tls.get_ref().0.peer_pid(),
            Inner::ClientTls(tls) => tls.get_ref().0.peer_pid(),
            Inner::AuthorityFixed(fixed) => fixed.get_ref().peer_pid(),
            Inner::Cutoff(cut) => cut.get_ref().peer_pid(),
            Inner::Mux(_) => None,
        }
    }

    /// Whether TLS protects this connection.
    pub fn is_tls(&self) -> bool {
        match &self.0 {
            Inner::ServerTls(_) | Inner::ClientTls(_) => true,
            Inner::AuthorityFixed(fixed) => fixed.get_ref().is_tls(),
            Inner::Cutoff(cut) => cut.get_ref().is_tls(),
            Inner::Tcp(_) | Inner::Mux(_) => false,
            #[cfg(unix)]
            Inner::Unix(_) => false,
        }
    }

    /// Wraps a server-side connection so that HTTP/2 requests whose
    /// `:authority` h2 would reject (grpcio's percent-encoded socket path)
    /// reach the server with `localhost` instead.
    pub(crate) fn with_authority_fix(self) -> Connection {
        Connection(Inner::AuthorityFixed(Box::new(AuthorityFix::new(self))))
    }

    /// This connection until `cut` is cancelled, then failing every read
    /// and write (see [`Cutoff`]): a host cuts its connections to a plugin
    /// that exited, which another process may still hold open.
    pub(crate) fn cut_off_by(
        self,
        cut: tokio_util::sync::CancellationToken,
        why: &'static str,
    ) -> Connection {
        Connection(Inner::Cutoff(Box::new(Cutoff::new(self, cut, None, why))))
    }
}

impl From<tokio_rustls::server::TlsStream<Connection>> for Connection {
    fn from(stream: tokio_rustls::server::TlsStream<Connection>) -> Self {
        Connection(Inner::ServerTls(Box::new(stream)))
    }
}

impl From<tokio_rustls::client::TlsStream<Connection>> for Connection {
    fn from(stream: tokio_rustls::client::TlsStream<Connection>) -> Self {
        Connection(Inner::ClientTls(Box::new(stream)))
    }
}

impl From<super::mux::MuxStream> for Connection {
    fn from(stream: super::mux::MuxStream) -> Self {
        Connection(Inner::Mux(Box::new(stream)))
    }
}

impl From<TcpStream> for Connection {
    fn from(stream: TcpStream) -> Self {
        Connection(Inner::Tcp(stream))
    }
}

#[cfg(unix)]
impl From<UnixStream> for Connection {
    fn from(stream: UnixStream) -> Self {
        Connection(Inner::Unix(stream))
    }
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            peer_addr: self.peer_addr(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match &mut $self.get_mut().0 {
            Inner::Tcp($s) => {
                let $s = Pin::new($s);
                $call
            }
            #[cfg(unix)]
            Inner::Unix($s) => {
                let $s = Pin::new($s);
                $call
            }
            Inner::ServerTls($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
            Inner::ClientTls($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
            Inner::AuthorityFixed($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
            Inner::Cutoff($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
            Inner::Mux($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
        }
    };
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.0 {
            Inner::Tcp(s) => s.is_write_vectored(),
            #[cfg(unix)]
            Inner::Unix(s) => s.is_write_vectored(),
            Inner::ServerTls(s) => s.is_write_vectored(),
            Inner::ClientTls(s) => s.is_write_vectored(),
            Inner::AuthorityFixed(s) => s.is_write_vectored(),
            Inner::Cutoff(s) => s.is_write_vectored(),
            Inner::Mux(_) => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// The accepted connections of a listening [`Transport`](super::Transport).
///
/// The stream ends when the transport is closed. It never yields an error:
/// accept failures are logged and retried, so that one failed accept (a
/// full file table, a peer that reset) does not stop a server.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Connection>,
    fix_authority: bool,
    cutoff: Option<tokio_util::sync::CancellationToken>,
    /// At most this many connections handed out and still open.
    limit: Option<std::sync::Arc<tokio::sync::Semaphore>>,
    /// Whether a connection over the limit was logged (once).
    refusal_logged: bool,
}

impl Incoming {
    /// Wraps every accepted connection in TLS, handshaking concurrently so
    /// that one slow or hostile peer does not hold up the others. Peers that
    /// fail the handshake (another certificate, none, plaintext) are logged
    /// and dropped.
    pub(crate) fn with_tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Incoming {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = tx.closed() => break,
                    conn = self.rx.recv() => match conn {
                        Some(conn) => conn,
                        None => break,
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let peer = conn.peer_addr();
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send(Connection::from(tls)).await;
                        }
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err, ?peer, "refused a TLS connection");
                        }
                        Err(_) => {
                            tracing::warn!(?peer, "TLS handshake timed out; connection dropped");
                        }
                    }
                });
            }
        });
        Incoming {
            rx,
            fix_authority: self.fix_authority,
            cutoff: self.cutoff,
            limit: self.limit,
            refusal_logged: false,
        }
    }

    /// Connections handed over on an unbounded channel (yamux streams, whose
    /// number the session bounds), as a server's incoming stream.
    pub(crate) fn from_unbounded(mut from: mpsc::UnboundedReceiver<Connection>) -> Incoming {
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = tx.closed() => break,
                    conn = from.recv() => match conn {
                        Some(conn) => conn,
                        None => break,
                    },
                };
                if tx.send(conn).await.is_err() {
                    break;
                }
            }
        });
        Incoming {
            rx,
            fix_authority: false,
            cutoff: None,
            limit: None,
            refusal_logged: false,
        }
    }

    /// Makes every connection handed out fail its reads and writes once
    /// `cut` is cancelled: for ending a server's connections (and the calls
    /// on them) when dropping the server would leave them running.
    pub(crate) fn with_cutoff(mut self, cut: tokio_util::sync::CancellationToken) -> Incoming {
        self.cutoff = Some(cut);
        self
    }

    /// Hands out at most `max` connections open at once: one that arrives
    /// while `max` are open is closed at once (its peer sees the
    /// connection end), and logged once.
    #[cfg(feature = "echo")]
    pub(crate) fn with_limit(mut self, max: usize) -> Incoming {
        self.limit = Some(std::sync::Arc::new(tokio::sync::Semaphore::new(max)));
        self
    }

    /// Passes every connection through [`AuthorityFix`] as it is handed
    /// out, after TLS if any: the server then accepts grpcio hosts that
    /// dial a unix socket.
    pub(crate) fn with_authority_fix(mut self) -> Incoming {
        self.fix_authority = true;
        self
    }
}

impl Stream for Incoming {
    type Item = io::Result<Connection>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let Some(conn) = ready!(self.rx.poll_recv(cx)) else {
                return Poll::Ready(None);
            };
            let permit = match &self.limit {
                None => None,
                Some(limit) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        if !self.refusal_logged {
                            self.refusal_logged = true;
                            tracing::warn!(
                                peer = ?conn.peer_addr(),
                                "refused a connection: the server serves as many as it may \
                                 (further refusals are not logged)"
                            );
                        }
                        continue;
                    }
                },
            };
            let conn = if self.fix_authority {
                conn.with_authority_fix()
            } else {
                conn
            };
            let cut = match (&self.cutoff, &permit) {
                (Some(cut), _) => Some(cut.clone()),
                // The permit rides on a cutoff that never fires.
                (None, Some(_)) => Some(tokio_util::sync::CancellationToken::new()),
                (None, None) => None,
            };
            return Poll::Ready(Some(Ok(match cut {
                Some(cut) => Connection(Inner::Cutoff(Box::new(Cutoff::new(
                    conn,
                    cut,
                    permit,
                    "connection cut off: the server stops",
                )))),
                None => conn,
            })));
        }
    }
}

/// A listener that the accept loop can drive.
pub(crate) trait Accept: Send + 'static {
    fn accept(&mut self) -> impl Future<Output = io::Result<Connection>> + Send;
}

impl Accept for TcpListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        let (stream, _) = TcpListener::accept(self).await?;
        // gRPC frames are small and latency-bound: never wait for Nagle.
        let _ = stream.set_nodelay(true);
        Ok(stream.into())
    }
}

#[cfg(unix)]
impl Accept for UnixListener {
    async fn accept(&mut self) -> io::Result<Connection> {
        Ok(UnixListener::accept(self).await?.0.into())
    }
}

/// Connections accepted but not yet taken by the server. Small, so that a
/// server that stops taking connections pushes back on the listen backlog
/// rather than on memory.
const INCOMING_QUEUE: usize = 8;

/// How long a peer may take to complete the TLS handshake. Loopback
/// handshakes take milliseconds; this only bounds peers that stall.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after an accept error such as `EMFILE`, so that a full file table
/// does not turn the loop into a busy spin, while still recovering quickly
/// once descriptors are freed.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A running accept loop; [`AcceptLoop::stop`] ends it and drops the
/// listener.
#[derive(Debug)]
pub(crate) struct AcceptLoop {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl AcceptLoop {
    pub(crate) fn spawn<L: Accept>(mut listener: L) -> (Self, Incoming) {
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = &mut stopped => break,
                    _ = tx.closed() => break,
                    conn = listener.accept() => conn,
                };
                match conn {
                    Ok(conn) => {
                        if tx.send(conn).await.is_err() {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                }
            }
        });
        let accept = AcceptLoop {
            stop: Some(stop),
            task,
        };
        let incoming = Incoming {
            rx,
            fix_authority: false,
            cutoff: None,
            limit: None,
            refusal_logged: false,
        };
        (accept, incoming)
    }

    /// Ends the loop and waits until the listener is dropped.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.task.abort();
    }
}
