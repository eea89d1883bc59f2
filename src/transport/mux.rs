//! go-plugin's multiplexed gRPC (`PLUGIN_MULTIPLEX_GRPC`, go-plugin ≥ 1.6):
//! the host dials the plugin's socket once and runs a yamux session over
//! that connection; the main gRPC connection and every brokered connection
//! are yamux streams.
//!
//! The plugin is the yamux server ([`Mux::serve`]), the host its client
//! ([`Mux::connect`]). A stream the host opens goes to the plugin's main
//! gRPC server, unless the host first knocked on the broker stream for a
//! broker id: then the next stream goes to that id's brokered server
//! ([`Mux::accept_knock`]). Streams the plugin opens ([`Mux::open`]) reach
//! the host's brokered servers, after a knock the other way; the host has
//! no main server, so a stream the plugin opens without a knock is closed.
//!
//! TLS (AutoMTLS) runs per stream, above this layer, as go-plugin does.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;

use super::conn::{Connection, Incoming};
use super::endpoint::Endpoint;

/// rust-yamux's configuration for hashicorp/yamux peers: every stream's
/// receive window stays at yamux's 256 KiB.
///
/// rust-yamux otherwise grows a busy stream's receive window past 1 MiB,
/// hashicorp/yamux (v0.1.2, go-plugin 1.8.0's) then sends a large write as
/// one data frame as big as the window, and rust-yamux, which refuses frame
/// bodies over 1 MiB, ends the whole session (`FrameTooLarge`).
/// `tests/yamux_wire.rs` checks this configuration against Go.
pub(crate) fn yamux_config() -> yamux::Config {
    let mut config = yamux::Config::default();
    config
        .set_max_num_streams(MAX_STREAMS)
        .set_max_connection_receive_window(Some(MAX_STREAMS * yamux::DEFAULT_CREDIT as usize));
    config
}

/// Streams open at once on one session (rust-yamux's default).
const MAX_STREAMS: usize = 512;

/// A yamux stream as a tokio byte stream.
#[derive(Debug)]
pub(crate) struct MuxStream(yamux::Stream);

impl AsyncRead for MuxStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        match futures::AsyncRead::poll_read(Pin::new(&mut self.0), cx, unfilled) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures::AsyncWrite::poll_close(Pin::new(&mut self.0), cx)
    }
}

/// A tokio byte stream (the session's socket) as a futures one, for
/// rust-yamux.
struct Socket(Connection);

impl futures::AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures::AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

enum Command {
    Open(oneshot::Sender<io::Result<Connection>>),
}

/// Where the host's next streams go.
#[derive(Default)]
struct Routing {
    /// Broker ids knocked for, oldest first: each takes the next stream.
    knocked: VecDeque<u32>,
    /// Brokered servers' stream queues, by broker id.
    listeners: HashMap<u32, mpsc::UnboundedSender<Connection>>,
}

/// The plugin's side of a multiplexed session (see the module docs).
/// Clones share one session; it closes (yamux GoAway) when the last clone
/// is dropped or [`close`](Self::close) is called.
#[derive(Clone)]
pub(crate) struct Mux {
    commands: mpsc::UnboundedSender<Command>,
    routing: Arc<Mutex<Routing>>,
    endpoint: Endpoint,
    close: Arc<tokio_util::sync::CancellationToken>,
    /// Why the session ended, if the peer broke it.
    failure: Arc<Mutex<Option<String>>>,
    /// Cancelled once the session has ended (its failure, if any, set).
    finished: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Mux {
    /// Serves the first connection of `raw` (the plugin's listener, before
    /// any TLS) as a yamux server session. Returns the session and the
    /// streams for the main gRPC server.
    pub(crate) fn serve(mut raw: Incoming, endpoint: Endpoint) -> (Mux, Incoming) {
        let (main_tx, main_rx) = mpsc::unbounded_channel();
        let (mux, session) = Mux::new(endpoint);
        let close = (*mux.close).clone();
        tokio::spawn(async move {
            let socket = tokio::select! {
                conn = raw.next() => match conn {
                    Some(Ok(conn)) => conn,
                    _ => return,
                },
                () = close.cancelled() => return,
            };
            // go-plugin's muxer accepts one connection: the listener stops
            // here.
            drop(raw);
            session
                .run(socket, yamux::Mode::Server, Some(main_tx))
                .await;
        });
        (mux, Incoming::from_unbounded(main_rx))
    }

    /// The host's side: runs a yamux client session over `socket`, the
    /// plugin's socket as dialled (before any TLS). Open the main gRPC
    /// connection with [`open`](Self::open).
    pub(crate) fn connect(socket: Connection, endpoint: Endpoint) -> Mux {
        let (mux, session) = Mux::new(endpoint);
        tokio::spawn(session.run(socket, yamux::Mode::Client, None));
        mux
    }

    fn new(endpoint: Endpoint) -> (Mux, Session) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let routing = Arc::new(Mutex::new(Routing::default()));
        let close = Arc::new(tokio_util::sync::CancellationToken::new());
        let failure = Arc::new(Mutex::new(None));
        let finished = tokio_util::sync::CancellationToken::new();
        let session = Session {
            commands: command_rx,
            routing: routing.clone(),
            close: (*close).clone(),
            failure: failure.clone(),
            finished: finished.clone(),
        };
        let mux = Mux {
            commands,
            routing,
            endpoint,
            close,
            failure,
            finished,
        };
        (mux, session)
    }

    /// The plugin's main endpoint, where the session runs.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Why the session failed, if the peer broke it (not spoken yamux,
    /// or ended it), waiting up to `settle` for a session that is ending
    /// to say so: its streams may report the failure before it does.
    pub(crate) async fn failure(&self, settle: std::time::Duration) -> Option<io::Error> {
        let _ = tokio::time::timeout(settle, self.finished.cancelled()).await;
        let failure = self.failure.lock().expect("failure lock");
        failure
            .as_ref()
            .map(|reason| io::Error::other(reason.clone()))
    }

    /// The streams for brokered server `id`, once knocked for.
    pub(crate) fn listener(&self, id: u32) -> Incoming {
        let (tx, rx) = mpsc::unbounded_channel();
        self.routing
            .lock()
            .expect("routing lock")
            .listeners
            .insert(id, tx);
        Incoming::from_unbounded(rx)
    }

    /// Stops routing streams to brokered server `id`.
    pub(crate) fn remove_listener(&self, id: u32) {
        let mut routing = self.routing.lock().expect("routing lock");
        routing.listeners.remove(&id);
        routing.knocked.retain(|k| *k != id);
    }

    /// The host knocked for `id`: its next stream goes to that brokered
    /// server. An error (for the knock's ack) if nothing serves `id`.
    pub(crate) fn accept_knock(&self, id: u32) -> Result<(), String> {
        let mut routing = self.routing.lock().expect("routing lock");
        if !routing.listeners.contains_key(&id) {
            return Err(format!("no brokered server for id {id}"));
        }
        routing.knocked.push_back(id);
        Ok(())
    }

    /// Opens a stream to the host (after a knock acknowledged).
    pub(crate) async fn open(&self) -> io::Result<Connection> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Open(tx))
            .map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Closes the session (GoAway to the host, then the socket).
    pub(crate) fn close(&self) {
        self.close.cancel();
    }
}

impl Drop for Mux {
    fn drop(&mut self) {
        if Arc::strong_count(&self.close) == 1 {
            self.close.cancel();
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the yamux session is closed")
}

/// What drives a session: the commands of its [`Mux`] handles, and where
/// inbound streams go.
struct Session {
    commands: mpsc::UnboundedReceiver<Command>,
    routing: Arc<Mutex<Routing>>,
    close: tokio_util::sync::CancellationToken,
    failure: Arc<Mutex<Option<String>>>,
    finished: tokio_util::sync::CancellationToken,
}

impl Session {
    /// Drives the session over `socket` until either side closes it.
    /// Inbound streams not knocked for go to `main` (the plugin's main
    /// server); without one (the host), they are closed.
    async fn run(
        mut self,
        socket: Connection,
        mode: yamux::Mode,
        main: Option<mpsc::UnboundedSender<Connection>>,
    ) {
        tracing::debug!(?mode, "multiplexed session started");
        let mut session = yamux::Connection::new(Socket(socket), yamux_config(), mode);
        let mut opening: VecDeque<oneshot::Sender<io::Result<Connection>>> = VecDeque::new();
        let closing = self.close.cancelled();
        tokio::pin!(closing);
        let ended = std::future::poll_fn(|cx| {
            if closing.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            while let Poll::Ready(Some(Command::Open(reply))) = self.commands.poll_recv(cx) {
                opening.push_back(reply);
            }
            while !opening.is_empty() {
                match session.poll_new_outbound(cx) {
                    Poll::Ready(stream) => {
                        let reply = opening.pop_front().expect("a waiting open");
                        let _ = reply.send(
                            stream
                                .map(|s| Connection::from(MuxStream(s)))
                                .map_err(io::Error::other),
                        );
                    }
                    Poll::Pending => break,
                }
            }
            loop {
                match session.poll_next_inbound(cx) {
                    Poll::Ready(Some(Ok(stream))) => {
                        let conn = Connection::from(MuxStream(stream));
                        let mut routing = self.routing.lock().expect("routing lock");
                        match (routing.knocked.pop_front(), &main) {
                            (Some(id), _) => {
                                tracing::debug!(id, "stream for a brokered server");
                                if let Some(tx) = routing.listeners.get(&id) {
                                    let _ = tx.send(conn);
                                }
                            }
                            (None, Some(main)) => {
                                let _ = main.send(conn);
                            }
                            (None, None) => {
                                tracing::debug!("a stream opened without a knock: closed");
                            }
                        }
                    }
                    Poll::Ready(Some(Err(err))) => {
                        tracing::debug!(error = %err, "multiplexed session failed");
                        *self.failure.lock().expect("failure lock") = Some(format!("yamux: {err}"));
                        return Poll::Ready(false);
                    }
                    Poll::Ready(None) => {
                        *self.failure.lock().expect("failure lock") =
                            Some("the peer ended the session".to_owned());
                        return Poll::Ready(false);
                    }
                    Poll::Pending => break,
                }
            }
            Poll::Pending
        })
        .await;
        if ended {
            let _ = std::future::poll_fn(|cx| session.poll_close(cx)).await;
        }
        self.finished.cancel();
        tracing::debug!("multiplexed session ended");
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn says(conn: &mut Connection, what: &[u8]) {
        let mut buf = vec![0; what.len()];
        tokio::time::timeout(std::time::Duration::from_secs(5), conn.read_exact(&mut buf))
            .await
            .expect("data within 5 s")
            .unwrap();
        assert_eq!(buf, what);
    }

    /// A plugin's session and a host's, over a socket pair.
    fn pair() -> (Mux, Incoming, Mux) {
        let (ours, theirs) = tokio::net::UnixStream::pair().unwrap();
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        raw_tx.send(Connection::from(ours)).unwrap();
        let endpoint = Endpoint::from_network("unix", "/tmp/mux-test").unwrap();
        let (plugin, main) = Mux::serve(Incoming::from_unbounded(raw_rx), endpoint.clone());
        let host = Mux::connect(Connection::from(theirs), endpoint);
        (plugin, main, host)
    }

    #[tokio::test]
    async fn streams_go_to_the_main_server_unless_knocked_for() {
        let (mux, mut main, host) = pair();
        let mut brokered = mux.listener(7);

        let mut first = host.open().await.unwrap();
        first.write_all(b"main").await.unwrap();
        let mut conn = main.next().await.unwrap().unwrap();
        says(&mut conn, b"main").await;

        assert_eq!(
            mux.accept_knock(8),
            Err("no brokered server for id 8".to_owned())
        );
        mux.accept_knock(7).unwrap();
        let mut second = host.open().await.unwrap();
        second.write_all(b"seven").await.unwrap();
        let mut conn = brokered.next().await.unwrap().unwrap();
        says(&mut conn, b"seven").await;

        // The knock is used up: the next stream is the main server's again.
        let mut third = host.open().await.unwrap();
        third.write_all(b"again").await.unwrap();
        let mut conn = main.next().await.unwrap().unwrap();
        says(&mut conn, b"again").await;

        mux.remove_listener(7);
        assert!(brokered.next().await.is_none(), "removed listener ends");
        mux.close();
        assert!(main.next().await.is_none(), "closed session ends main");
    }

    #[tokio::test]
    async fn the_host_takes_streams_it_knocked_for_and_closes_the_rest() {
        let (plugin, _main, host) = pair();
        let mut brokered = host.listener(3);

        // Not knocked for: the host has no main server, so it is closed.
        let mut stray = plugin.open().await.unwrap();
        stray.write_all(b"x").await.unwrap();
        stray.flush().await.unwrap();
        let mut buf = [0; 1];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stray.read(&mut buf))
            .await
            .expect("closed within 5 s");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

        host.accept_knock(3).unwrap();
        let mut ours = plugin.open().await.unwrap();
        ours.write_all(b"three").await.unwrap();
        let mut conn = brokered.next().await.unwrap().unwrap();
        says(&mut conn, b"three").await;

        // The host closing its session ends the plugin's.
        host.close();
        let opened = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                if plugin.open().await.is_err() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(opened.is_ok(), "the plugin's session outlived the host's");
    }
}
