//! Errors of the GRPCBroker.

use std::time::Duration;

use crate::transport::{Endpoint, EndpointError, ListenError};

/// A failure of a [`Broker`](crate::broker::Broker) operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The broker is not attached to a connection yet: a plugin's broker
    /// works once [`ServeConfig::serve`](crate::server::ServeConfig::serve) has
    /// started serving.
    #[error("the broker is not connected yet (it starts working once the plugin serves)")]
    NotConnected,
    /// The broker is closed: the plugin was killed or shut down, or the
    /// other side ended the broker stream (the reason, its source, says
    /// which).
    #[error("the broker is closed")]
    Closed {
        /// Why.
        #[source]
        reason: CloseReason,
    },
    /// The other side never announced a listener for this id.
    #[error("no connection info for broker id {id} arrived within {waited:?}")]
    Timeout {
        /// The id dialled.
        id: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// The other side announced an address we cannot dial.
    #[error("broker id {id}: unusable address {network} {address:?}")]
    BadAddress {
        /// The id.
        id: u32,
        /// The announced network.
        network: String,
        /// The announced address.
        address: String,
        /// Why it cannot be used.
        source: EndpointError,
    },
    /// The other side announced an address outside this machine's
    /// loopback or a place no peer of ours listens: a Linux abstract socket
    /// (no file permission guards it), a relative path, a TCP host that is
    /// not a loopback address. Dialling it would hand the call to a
    /// bystander; [`Broker::danger_dial_any_address`](crate::broker::Broker::danger_dial_any_address)
    /// allows it.
    #[error("broker id {id}: refusing to dial {network} {address:?}: {why}")]
    AddressRefused {
        /// The id.
        id: u32,
        /// The announced network.
        network: String,
        /// The announced address, cut to 200 characters.
        address: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// The other side announced this id, but more than
    /// [`waited`](Self::Expired::waited) before the dial: the announcement
    /// was dropped unused (go-plugin's 5 s), and the listener behind it
    /// may be gone too. Dial an id within 5 s of handing it over.
    #[error(
        "the connection info for broker id {id} arrived {ago:.1?} before this dial and was dropped unused after {waited:?}"
    )]
    Expired {
        /// The id.
        id: u32,
        /// How long before the dial the announcement arrived.
        ago: Duration,
        /// How long an announcement is kept.
        waited: Duration,
    },
    /// A listener for a brokered service could not be created.
    #[error("broker id {id}: cannot listen")]
    Listen {
        /// The id.
        id: u32,
        /// The transport's error.
        source: ListenError,
    },
    /// Multiplexed: the other side did not acknowledge the knock for `id`
    /// (it answered an error, or something else than an ack).
    #[error("broker id {id}: the knock was refused: {reply}")]
    Knock {
        /// The broker id.
        id: u32,
        /// What came back instead of a plain ack.
        reply: String,
    },

    /// Multiplexed: no stream could be opened on the session.
    #[error("broker id {id}: cannot open a multiplexed stream")]
    Open {
        /// The broker id.
        id: u32,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Dialling an announced listener (multiplexed: the session's stream)
    /// failed.
    #[error("broker id {id}: cannot connect to {endpoint}")]
    Dial {
        /// The id.
        id: u32,
        /// Where the other side listens.
        endpoint: Endpoint,
        /// tonic's error.
        source: tonic::transport::Error,
    },
}

/// Why a [`Broker`](crate::broker::Broker) closed: the source of
/// [`BrokerError::Closed`]. The first reason wins.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Broker::close`](crate::broker::Broker::close) was called: the
    /// plugin shut down, or the host killed it.
    #[error("closed on this side")]
    Closed,
    /// The host's [`Client`](crate::Client) was dropped.
    #[error("the plugin's client was dropped")]
    ClientDropped,
    /// The plugin ended the broker stream (the host's view).
    #[error("the plugin ended the broker stream")]
    PluginEnded,
    /// The host ended the broker stream (the plugin's view).
    #[error("the host ended the broker stream")]
    HostEnded,
    /// The broker stream ended before either side said why.
    #[error("the broker stream ended")]
    StreamEnded,
    /// The plugin's `GRPCBroker` refused to open the stream.
    #[error("the plugin's GRPCBroker refused the stream")]
    Refused {
        /// The plugin's answer.
        source: tonic::Status,
    },
}
