//! The gRPC layer that the host, the plugin, the broker and echo share:
//! dialling a channel through this crate's transports (TLS pinned to one
//! certificate under AutoMTLS), go-plugin's health check, serving a router
//! so that stopping it is bounded, the limits and HTTP/2 windows every side
//! agrees on, and the error-chain formatter.
//!
//! It sits between `transport`/`tls` below and `broker`, `server`, `client`
//! and `echo` above, and names none of them.

mod dial;
mod drain;
mod health;

use std::time::Duration;

pub use dial::ConnectStep;
pub(crate) use dial::{Dial, channel_with, dial, open_channel, tls_client};
pub(crate) use drain::serve_draining;
pub(crate) use health::{HEALTH_SERVICES, ping};

/// The largest gRPC message either side may send: go-plugin hosts dial
/// with send and receive limits of 2^31 − 1 bytes. tonic decodes at most 4
/// MiB by default, so set this on your generated servers:
/// `KvServer::new(kv).max_decoding_message_size(MAX_MESSAGE_SIZE)`.
pub const MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// HTTP/2 flow-control windows of every connection we open or serve
/// (echo's sample streams size their own). Large enough that a
/// multi-megabyte message (a Terraform provider schema) flows without
/// waiting for WINDOW_UPDATE frames; small enough that one stalled stream
/// cannot pin much memory.
pub(crate) const STREAM_WINDOW: u32 = 4 << 20;
pub(crate) const CONNECTION_WINDOW: u32 = 8 << 20;

/// HTTP/2 streams open at once on one connection to any server of ours (the
/// plugin's own, brokered, echo), advertised in SETTINGS. tonic sets none,
/// which lifts hyper's own limit: 200 000 half-open streams over 4
/// connections took a plugin to 1.75 GB (about 9 KB each). Terraform runs
/// 10 operations at once by default, so 1024 is far above any real host
/// and bounds a hostile one to about 9 MB a connection.
pub(crate) const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// How long calls in flight may go on once a server (the plugin's own, or
/// a brokered one) stops, before its connections are cut: well inside
/// go-plugin's 2 s kill window, so a plugin that was asked to shut down
/// exits by itself.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_millis(1000);

/// How long dialling (and the TLS handshake of) a reconnect or a brokered
/// connection may take: the peer listens before it announces itself, so
/// this only bounds a peer that died or stalled.
pub(crate) const CONNECT_TIMEOUT: Duration = crate::transport::DEFAULT_CONNECT_TIMEOUT;
