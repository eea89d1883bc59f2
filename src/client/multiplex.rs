//! The host's side of go-plugin's multiplexed gRPC (`PLUGIN_MULTIPLEX_GRPC`,
//! go-plugin ≥ 1.6): whether to ask for it, whether the plugin's handshake
//! line grants it, and the one connection that then carries everything.

use std::sync::Arc;

use tokio::time::Instant;
use tonic::transport::Channel;

use super::ClientError;
use crate::grpc::{self, ConnectStep};
use crate::handshake::HandshakeError;
use crate::transport::Endpoint;
use crate::transport::mux::Mux;

/// Whether a host asks its plugins for go-plugin's multiplexed gRPC
/// (go-plugin ≥ 1.6, `GRPCBrokerMultiplex`): one connection to the plugin,
/// a yamux session whose streams carry the main gRPC connection and every
/// brokered one, each with its own TLS handshake under AutoMTLS.
///
/// Asked, the plugin gets `PLUGIN_MULTIPLEX_GRPC=true` and must answer with
/// a seventh handshake field `true`. Not asked, a `PLUGIN_MULTIPLEX_GRPC` in
/// the host's own environment is not passed on, and the seventh field is
/// ignored, as go-plugin's host ignores it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Multiplex {
    /// Not asked (the default, as in go-plugin): each brokered connection
    /// is a socket of its own.
    #[default]
    Off,
    /// Asked, and required: a plugin that does not announce it is refused
    /// with [`HandshakeError::MultiplexUnsupported`] and killed, as
    /// go-plugin's host refuses it.
    Required,
    /// Asked, with a fallback go-plugin does not have: a plugin that does
    /// not announce it (an older go-plugin, pyvider) is used without.
    Preferred,
}

impl Multiplex {
    /// Whether the plugin is asked (`PLUGIN_MULTIPLEX_GRPC=true`).
    pub(crate) fn asked(self) -> bool {
        self != Multiplex::Off
    }

    /// Whether to multiplex, given the seventh field the plugin printed.
    pub(crate) fn decide(self, announced: Option<bool>) -> Result<bool, HandshakeError> {
        match (self, announced) {
            (Multiplex::Off, _) => Ok(false),
            (_, Some(true)) => Ok(true),
            (Multiplex::Required, announced) => {
                Err(HandshakeError::MultiplexUnsupported { announced })
            }
            (Multiplex::Preferred, _) => Ok(false),
        }
    }
}

/// The host's multiplexed connection to a plugin: the socket dialled once,
/// a yamux client session over it, and a channel whose connections are
/// streams of that session (TLS on each under AutoMTLS). Each step by
/// `deadline`. Gives the channel, the session (for the broker) and, over a
/// unix socket, the pid of the process that listens there.
pub(crate) async fn open_multiplexed(
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
    liveness: super::connect::Liveness,
) -> Result<(Channel, Mux, Option<i32>), ClientError> {
    let socket = grpc::dial(endpoint, None, deadline)
        .await
        .map_err(|err| super::connect::dial_error(endpoint, err))?;
    let peer_pid = socket.peer_pid();
    let mux = Mux::connect(socket, endpoint.clone());
    match open_over(&mux, endpoint, tls, deadline, liveness).await {
        Ok(channel) => Ok((channel, mux, peer_pid)),
        Err(err) => Err(session_error(&mux, endpoint, err, deadline).await),
    }
}

/// How long a failed start waits for a failing session to say why: it
/// records its failure as it ends, which its streams may report a moment
/// before. A step that stalled does not wait: its deadline has passed.
const SESSION_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// `err`, a failed step of a start over `mux`, as the session's own
/// failure when the plugin broke it (announced multiplexing, then spoke no
/// yamux): that says what went wrong where the step's error would not.
/// The wait ends by the start's `deadline`.
pub(crate) async fn session_error(
    mux: &Mux,
    endpoint: &Endpoint,
    err: ClientError,
    deadline: Instant,
) -> ClientError {
    let settle = match err {
        ClientError::Stalled { .. } => std::time::Duration::ZERO,
        _ => SESSION_SETTLE.min(deadline.saturating_duration_since(Instant::now())),
    };
    match mux.failure(settle).await {
        Some(source) => ClientError::Multiplex {
            endpoint: endpoint.clone(),
            source,
        },
        None => err,
    }
}

/// The main channel over the session `mux`, each step by `deadline`.
async fn open_over(
    mux: &Mux,
    endpoint: &Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    deadline: Instant,
    liveness: super::connect::Liveness,
) -> Result<Channel, ClientError> {
    // A step that stalls is named with the time it was given: what was
    // left of the deadline when it began.
    let stalled = |step, waited| ClientError::Stalled {
        step,
        endpoint: endpoint.clone(),
        waited,
    };
    let unreachable = |source| {
        ClientError::Unreachable(crate::transport::ConnectError::Refused {
            endpoint: endpoint.clone(),
            source,
        })
    };
    let waited = deadline.saturating_duration_since(Instant::now());
    let first = tokio::time::timeout_at(deadline, async {
        let stream = mux.open().await?;
        grpc::tls_client(stream, tls.clone()).await
    })
    .await
    .map_err(|_| stalled(ConnectStep::TlsHandshake, waited))?
    .map_err(unreachable)?;
    let session = mux.clone();
    let waited = deadline.saturating_duration_since(Instant::now());
    let cut = liveness.cut();
    let open = move || {
        let (session, tls, liveness) = (session.clone(), tls.clone(), liveness.clone());
        async move {
            liveness.check()?;
            grpc::tls_client(session.open().await?, tls).await
        }
    };
    let channel =
        tokio::time::timeout_at(deadline, grpc::channel_with(Some(first), open, Some(cut)))
            .await
            .map_err(|_| stalled(ConnectStep::Http2, waited))?
            .map_err(|source| ClientError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?;
    Ok(channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_hosts_require_or_fall_back() {
        for announced in [None, Some(false), Some(true)] {
            assert_eq!(Multiplex::Off.decide(announced).ok(), Some(false));
        }
        assert_eq!(Multiplex::Required.decide(Some(true)).ok(), Some(true));
        assert_eq!(Multiplex::Preferred.decide(Some(true)).ok(), Some(true));
        assert_eq!(Multiplex::Preferred.decide(None).ok(), Some(false));
        assert_eq!(Multiplex::Preferred.decide(Some(false)).ok(), Some(false));
        for announced in [None, Some(false)] {
            let err = Multiplex::Required.decide(announced).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("client requested gRPC broker multiplexing but plugin does not support the feature"),
                "{err}"
            );
        }
    }
}
