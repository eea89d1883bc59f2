//! go-plugin's GRPCBroker: extra gRPC connections between host and plugin,
//! so that either side can serve a service the other calls (a host-served
//! callback, or a second service handed out by the plugin).
//!
//! One `plugin.GRPCBroker/StartStream` stream per plugin carries
//! `ConnInfo{service_id, network, address}` both ways: the side that
//! listens for id *n* announces where; the side that dials *n* waits for
//! that announcement, then connects with the main connection's TLS.

mod error;
mod pending;
mod stream;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Channel;

pub use error::{BrokerError, CloseReason};

use crate::grpc::{CONNECTION_WINDOW, DRAIN_LIMIT, STREAM_WINDOW};
use crate::proto::plugin::ConnInfo;
use crate::proto::plugin::conn_info::Knock;
use crate::transport::mux::Mux;
use crate::transport::{AnyTransport, Endpoint, Incoming, Listen, Transport};

/// How long [`Broker::dial`] waits for the other side's announcement, and
/// how long an announcement nobody dials is kept: go-plugin's 5 s, so
/// that mixed Go and Rust pairs agree.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

/// One side of go-plugin's GRPCBroker.
///
/// A plugin gets its broker from [`ServeConfig::broker`](crate::server::ServeConfig::broker)
/// (before serving, to hand it to its services); a host from
/// [`Client::broker`](crate::client::Client::broker). Clones share one broker.
///
/// ```no_run
/// use rpcplugin::Broker;
/// use tonic::service::Routes;
///
/// # async fn demo(broker: Broker, callback: Routes) -> Result<(), rpcplugin::BrokerError> {
/// // Host: serve a callback for the plugin, and pass it the id.
/// let id = broker.next_id();
/// let server = broker.accept_and_serve(id, callback).await?;
/// // ... call the plugin with `id` in the request; the plugin does
/// // `broker.dial(id)` and calls back ...
/// server.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    next_id: AtomicU32,
    /// How to listen and dial; set once the main connection exists.
    context: OnceLock<Context>,
    /// Announcements towards the other side; `None` once closed.
    outgoing: Mutex<Option<mpsc::UnboundedSender<ConnInfo>>>,
    /// The receiving end, until the stream takes it.
    outgoing_rx: Mutex<Option<mpsc::UnboundedReceiver<ConnInfo>>>,
    /// The other side's announcements nobody has dialled yet.
    announced: Mutex<pending::Pending>,
    /// Whether a refused announcement was logged as a warning (once).
    refusal_warned: AtomicBool,
    /// [`Broker::danger_dial_any_address`] was called.
    any_address: AtomicBool,
    arrived: Notify,
    /// `Some(reason)` once closed.
    closed: watch::Sender<Option<CloseReason>>,
    /// Listeners of brokered servers, closed with the broker.
    listeners: Mutex<Vec<Arc<AnyTransport>>>,
    /// Multiplexed: one knock at a time (go-plugin serialises its dials).
    knocking: tokio::sync::Mutex<()>,
}

/// How a side of the broker listens and dials: the main connection's
/// network, socket directory, group, ports and TLS.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    pub(crate) listen: Listen,
    pub(crate) server_tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) client_tls: Option<Arc<rustls::ClientConfig>>,
    /// Multiplexed gRPC (go-plugin ≥ 1.6): brokered connections are
    /// streams of this session, routed by knocks, instead of sockets.
    pub(crate) mux: Option<Mux>,
    /// When it fires, the connections this side dialled fail every read
    /// and write: a host's, once its plugin exited (see
    /// `client::Liveness`).
    pub(crate) cut: Option<CancellationToken>,
}

/// A service served through the broker, from
/// [`Broker::accept_and_serve`]. It serves until [`stop`](Self::stop), until
/// it is dropped, or until the broker closes; then its listener (and
/// socket) is removed.
#[derive(Debug)]
pub struct BrokeredServer {
    id: u32,
    endpoint: Endpoint,
    stop: CancellationToken,
    listener: Listener,
    task: Option<JoinHandle<()>>,
}

/// Where a brokered server's connections come from.
#[derive(Debug, Clone)]
enum Listener {
    /// Its own socket.
    Socket(Arc<AnyTransport>),
    /// Streams of the multiplexed session knocked for its id.
    Mux(Mux, u32),
}

impl Listener {
    async fn close(&self) {
        match self {
            Listener::Socket(listener) => close_listener(listener).await,
            Listener::Mux(mux, id) => mux.remove_listener(*id),
        }
    }
}

impl BrokeredServer {
    /// The broker id it was announced under.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Where it listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Stops accepting, removes the socket, lets calls in flight finish
    /// (up to 1 s), and returns when the server has stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the server is told to stop when this is first polled (and
    /// when it is dropped, see above), so dropping the future only stops the
    /// waiting; the server still removes its socket, drains and stops in the
    /// background.
    pub async fn stop(mut self) {
        self.stop.cancel();
        self.listener.close().await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for BrokeredServer {
    fn drop(&mut self) {
        // The serving task sees this, closes the listener and stops.
        self.stop.cancel();
    }
}

impl Broker {
    /// A broker not yet attached to a connection.
    pub(crate) fn new() -> Self {
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        Broker {
            inner: Arc::new(Inner {
                next_id: AtomicU32::new(1),
                context: OnceLock::new(),
                outgoing: Mutex::new(Some(outgoing)),
                outgoing_rx: Mutex::new(Some(outgoing_rx)),
                announced: Mutex::default(),
                refusal_warned: AtomicBool::new(false),
                any_address: AtomicBool::new(false),
                arrived: Notify::new(),
                closed: watch::channel(None).0,
                listeners: Mutex::new(Vec::new()),
                knocking: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Attaches the broker to its connection: how to listen and dial.
    pub(crate) fn connect(&self, context: Context) {
        let _ = self.inner.context.set(context);
    }

    /// A fresh id for [`accept_and_serve`](Self::accept_and_serve), unique
    /// on this side (ids start at 1, as in go-plugin).
    pub fn next_id(&self) -> u32 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the broker is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.borrow().is_some()
    }

    /// Sends `info` to the other side on the broker stream; false once the
    /// broker is closed.
    pub(super) fn send(&self, info: ConnInfo) -> bool {
        let outgoing = self.inner.outgoing.lock().expect("outgoing lock");
        outgoing.as_ref().is_some_and(|tx| tx.send(info).is_ok())
    }

    fn closed_error(&self) -> BrokerError {
        BrokerError::Closed {
            reason: self
                .inner
                .closed
                .borrow()
                .clone()
                .unwrap_or(CloseReason::StreamEnded),
        }
    }

    fn context(&self) -> Result<&Context, BrokerError> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        self.inner.context.get().ok_or(BrokerError::NotConnected)
    }

    /// Listens for brokered connection `id` (a new socket with the main
    /// connection's directory, group or port range, and TLS), announces it
    /// to the other side, and serves `routes` there until the returned
    /// server is stopped or dropped, or the broker closes.
    ///
    /// # Errors
    ///
    /// [`BrokerError::NotConnected`] or [`BrokerError::Closed`];
    /// [`BrokerError::Listen`] when the listener cannot be created.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped before it returns, nothing is announced to the
    /// other side and the listener it may have made is closed (its socket
    /// removed) as it is dropped; the id can be used again.
    pub async fn accept_and_serve(
        &self,
        id: u32,
        routes: Routes,
    ) -> Result<BrokeredServer, BrokerError> {
        let context = self.context()?.clone();
        if let Some(mux) = &context.mux {
            return Ok(self.serve_multiplexed(mux, id, routes, context.server_tls.clone()));
        }
        let listener = Arc::new(context.listen.transport());
        let (endpoint, incoming) = listener
            .listen()
            .await
            .map_err(|source| BrokerError::Listen { id, source })?;
        let announced = self.send(ConnInfo {
            service_id: id,
            network: endpoint.network().to_owned(),
            address: endpoint.address(),
            knock: None,
        });
        if !announced {
            close_listener(&listener).await;
            return Err(self.closed_error());
        }
        {
            let mut listeners = self.inner.listeners.lock().expect("listeners lock");
            listeners.retain(|l| Arc::strong_count(l) > 1);
            listeners.push(listener.clone());
        }
        tracing::debug!(id, %endpoint, "brokered server listening");
        Ok(self.start_server(
            id,
            endpoint,
            incoming,
            context.server_tls,
            routes,
            Listener::Socket(listener),
        ))
    }

    /// [`accept_and_serve`](Self::accept_and_serve), multiplexed: nothing
    /// is announced; the other side knocks for `id` before each connection
    /// (see [`stream`]), and the session's next stream is served here.
    fn serve_multiplexed(
        &self,
        mux: &Mux,
        id: u32,
        routes: Routes,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> BrokeredServer {
        tracing::debug!(id, "brokered server on the multiplexed session");
        let listener = Listener::Mux(mux.clone(), id);
        self.start_server(
            id,
            mux.endpoint().clone(),
            mux.listener(id),
            tls,
            routes,
            listener,
        )
    }

    /// Serves `routes` on `incoming` (under `tls`, with the unix authority
    /// fix where it applies) until the server is stopped or the broker
    /// closes; `listener` is what stopping closes.
    fn start_server(
        &self,
        id: u32,
        endpoint: Endpoint,
        incoming: Incoming,
        tls: Option<Arc<rustls::ServerConfig>>,
        routes: Routes,
        listener: Listener,
    ) -> BrokeredServer {
        let incoming = match tls {
            Some(config) => incoming.with_tls(config),
            None => incoming,
        };
        let incoming = match endpoint.unix_path() {
            Some(_) => incoming.with_authority_fix(),
            None => incoming,
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(
            routes,
            incoming,
            listener.clone(),
            stop.clone(),
            self.inner.closed.subscribe(),
        ));
        BrokeredServer {
            id,
            endpoint,
            stop,
            listener,
            task: Some(task),
        }
    }

    /// Waits (up to 5 s, as go-plugin) for the other side to announce
    /// brokered connection `id`, then connects to it with the main
    /// connection's TLS.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Timeout`] when no announcement comes;
    /// [`BrokerError::NotConnected`] or [`BrokerError::Closed`];
    /// [`BrokerError::BadAddress`] or [`BrokerError::Dial`] when the
    /// announced listener cannot be reached.
    ///
    /// # Cancel safety
    ///
    /// Dropped while it waits for the announcement, nothing is lost: a later
    /// `dial` of the same id still finds it. Dropped once the announcement has
    /// come, while it connects, the announcement is used up: a later `dial` of
    /// that id waits for a new one (and fails with [`BrokerError::Timeout`]
    /// unless the other side announces the id again).
    pub async fn dial(&self, id: u32) -> Result<Channel, BrokerError> {
        if let Some(mux) = self.context()?.mux.clone() {
            return self.dial_multiplexed(mux, id).await;
        }
        let now = Instant::now();
        let expired = {
            let mut announced = self.inner.announced.lock().expect("announced lock");
            announced.expired_at(id, now)
        };
        if let Some(arrived) = expired {
            return Err(BrokerError::Expired {
                id,
                ago: now.duration_since(arrived),
                waited: ANNOUNCE_WAIT,
            });
        }
        let info = self.wait_for(id).await?;
        let endpoint = Endpoint::from_network(&info.network, &info.address).map_err(|source| {
            BrokerError::BadAddress {
                id,
                network: info.network.clone(),
                address: cut(&info.address),
                source,
            }
        })?;
        if !self.inner.any_address.load(Ordering::Relaxed)
            && let Err(why) = dialable(&endpoint)
        {
            return Err(BrokerError::AddressRefused {
                id,
                network: info.network,
                address: cut(&info.address),
                why,
            });
        }
        let context = self.context()?;
        crate::grpc::open_channel(&endpoint, context.client_tls.clone(), context.cut.clone())
            .await
            .map_err(|source| BrokerError::Dial {
                id,
                endpoint,
                source,
            })
    }

    /// Lets [`dial`](Self::dial) connect wherever the other side announces,
    /// not only to an absolute socket path or a loopback TCP address: to a
    /// Linux abstract socket, a relative path, a host name or another
    /// machine. Only for a peer you trust to name a listener of its own
    /// (a plugin on another machine, reattached over TCP with mTLS of your
    /// own): without it, a plugin that announces a bystander's address
    /// sends your calls and their arguments there.
    pub fn danger_dial_any_address(&self) {
        self.inner.any_address.store(true, Ordering::Relaxed);
    }

    /// [`dial`](Self::dial), multiplexed: for each connection the channel
    /// makes, knock for `id` on the broker stream, wait (up to 5 s) for the
    /// other side's ack, then open a stream of the session (with the main
    /// connection's TLS), one knock at a time, as go-plugin does.
    async fn dial_multiplexed(&self, mux: Mux, id: u32) -> Result<Channel, BrokerError> {
        let broker = self.clone();
        let endpoint = mux.endpoint().clone();
        let context = self.context()?;
        let (tls, cut) = (context.client_tls.clone(), context.cut.clone());
        let open = move || {
            let (broker, mux, tls) = (broker.clone(), mux.clone(), tls.clone());
            async move {
                let conn = broker
                    .knock_and_open(&mux, id)
                    .await
                    .map_err(|err| std::io::Error::other(crate::chain::Chain(&err).to_string()))?;
                crate::grpc::tls_client(conn, tls).await
            }
        };
        crate::grpc::channel_with(None, open, cut)
            .await
            .map_err(|source| BrokerError::Dial {
                id,
                endpoint,
                source,
            })
    }

    async fn knock_and_open(
        &self,
        mux: &Mux,
        id: u32,
    ) -> Result<crate::transport::Connection, BrokerError> {
        let _one_at_a_time = self.inner.knocking.lock().await;
        // An ack left over from an earlier, abandoned knock is stale.
        let _ = self.take_announced(id);
        let sent = self.send(ConnInfo {
            service_id: id,
            network: String::new(),
            address: String::new(),
            knock: Some(Knock {
                knock: true,
                ack: false,
                error: String::new(),
            }),
        });
        if !sent {
            return Err(self.closed_error());
        }
        let ack = self.wait_for(id).await?;
        match ack.knock {
            Some(Knock {
                knock: true,
                ack: true,
                error,
            }) if error.is_empty() => {}
            knock => {
                return Err(BrokerError::Knock {
                    id,
                    reply: format!("{knock:?}"),
                });
            }
        }
        mux.open()
            .await
            .map_err(|source| BrokerError::Open { id, source })
    }

    async fn wait_for(&self, id: u32) -> Result<ConnInfo, BrokerError> {
        let deadline = tokio::time::Instant::now() + ANNOUNCE_WAIT;
        let mut closed = self.inner.closed.subscribe();
        loop {
            let arrived = self.inner.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            // What arrived before the broker closed is still handed over:
            // its listener may outlive the stream, and a failed dial names
            // the address, where "closed" would hide that it came.
            if let Some(info) = self.take_announced(id) {
                return Ok(info);
            }
            self.context()?;
            tokio::select! {
                () = arrived => {}
                _ = closed.changed() => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(BrokerError::Timeout { id, waited: ANNOUNCE_WAIT });
                }
            }
        }
    }

    /// Takes the announcement for `id`, if one arrived less than
    /// [`ANNOUNCE_WAIT`] ago.
    fn take_announced(&self, id: u32) -> Option<ConnInfo> {
        let mut announced = self.inner.announced.lock().expect("announced lock");
        announced.take(id, Instant::now())
    }

    /// Records an announcement from the other side, unless the id is
    /// already pending (the first wins, as in go-plugin), too many are, or
    /// its address is too long.
    fn announce(&self, info: ConnInfo) {
        let id = info.service_id;
        let address_len = info.address.len();
        let kept = {
            let mut announced = self.inner.announced.lock().expect("announced lock");
            announced.insert(info, Instant::now())
        };
        match kept {
            Ok(()) => self.inner.arrived.notify_waiters(),
            Err(pending::Refused::Duplicate) => {
                tracing::debug!(
                    id,
                    "broker id announced again while pending; the first stands"
                );
            }
            Err(refused) => {
                let first = !self.inner.refusal_warned.swap(true, Ordering::Relaxed);
                let why = match refused {
                    pending::Refused::TooLong => format!(
                        "its address is {address_len} bytes, over {}",
                        pending::MAX_ADDRESS
                    ),
                    _ => format!("{} announcements are already pending", pending::MAX_PENDING),
                };
                if first {
                    tracing::warn!(
                        id,
                        "ignoring a broker announcement: {why} (further ones are logged at debug level)"
                    );
                } else {
                    tracing::debug!(id, "ignoring a broker announcement: {why}");
                }
            }
        }
    }

    /// Closes the broker: ends the stream, stops every brokered server and
    /// removes its socket (calls in flight get up to 1 s), and makes
    /// `dial`, `accept_and_serve` fail. Idempotent.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the broker is closed when this is first polled; the
    /// brokered servers whose listeners it had not closed yet when dropped see
    /// the broker close and close them themselves.
    pub async fn close(&self) {
        let listeners = self.close_now(CloseReason::Closed);
        for listener in listeners {
            close_listener(&listener).await;
        }
    }

    /// Marks the broker closed (first reason wins) and gives the listeners
    /// still to close.
    fn close_now(&self, reason: CloseReason) -> Vec<Arc<AnyTransport>> {
        self.inner.closed.send_if_modified(|closed| {
            if closed.is_none() {
                *closed = Some(reason);
                true
            } else {
                false
            }
        });
        drop(self.inner.outgoing.lock().expect("outgoing lock").take());
        self.inner.arrived.notify_waiters();
        std::mem::take(&mut *self.inner.listeners.lock().expect("listeners lock"))
    }

    /// [`close`](Self::close) from a destructor: the listeners are closed
    /// on the runtime if there is one, else dropped (which removes their
    /// sockets too).
    pub(crate) fn close_in_background(&self, reason: CloseReason) {
        let listeners = self.close_now(reason);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for listener in listeners {
                    close_listener(&listener).await;
                }
            });
        }
    }
}

/// Whether `dial` may connect to `endpoint` without
/// [`Broker::danger_dial_any_address`]: an absolute unix socket path (not
/// an abstract one), or a loopback IP (or `localhost`), as every go-plugin
/// peer announces. Otherwise why not.
fn dialable(endpoint: &Endpoint) -> Result<(), &'static str> {
    if let Some(path) = endpoint.unix_path() {
        return match path.as_os_str().as_encoded_bytes() {
            [0, ..] | [b'@', ..] => Err("a Linux abstract socket, which no file permission guards"),
            // A unix path: absolute when it starts at '/', on every platform.
            [first, ..] if *first != b'/' => {
                Err("a relative path, resolved from this process's working directory")
            }
            _ => Ok(()),
        };
    }
    match endpoint.tcp_parts() {
        Some((crate::transport::Host::Ip(ip), _)) if ip.is_loopback() => Ok(()),
        Some((crate::transport::Host::Name(name), _)) if name == "localhost" => Ok(()),
        _ => Err("not a loopback address"),
    }
}

/// An address as errors quote it: at most 200 characters.
fn cut(address: &str) -> String {
    const QUOTED: usize = 200;
    match address.char_indices().nth(QUOTED) {
        Some((at, _)) => format!("{}…", &address[..at]),
        None => address.to_owned(),
    }
}

/// Stops accepting and removes the socket of a brokered listener.
async fn close_listener(listener: &AnyTransport) {
    if let Err(err) = listener.close().await {
        tracing::warn!(error = %crate::chain::Chain(&err), "closing a brokered listener failed");
    }
}

/// Serves a brokered server until it is stopped or the broker closes, then
/// removes its listener, gives calls in flight [`DRAIN_LIMIT`], and cuts
/// its connections, so that calls still running fail at once on the other
/// side.
async fn serve(
    routes: Routes,
    incoming: Incoming,
    listener: Listener,
    stopped: CancellationToken,
    mut closed: watch::Receiver<Option<CloseReason>>,
) {
    let stopping = {
        let listener = listener.clone();
        async move {
            tokio::select! {
                _ = stopped.cancelled() => {}
                _ = closed.wait_for(Option::is_some) => {}
            }
            listener.close().await;
        }
    };
    let router = tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(crate::grpc::MAX_CONCURRENT_STREAMS)
        .add_routes(routes);
    if let Err(err) = crate::grpc::serve_draining(router, incoming, stopping, DRAIN_LIMIT).await {
        tracing::warn!(error = %crate::chain::Chain(&err), "a brokered server failed");
    }
    listener.close().await;
}

// Unix sockets: the brokered listeners are counted in their directory.
#[cfg(all(test, unix))]
mod tests;
