//! echo sample streams (instadeepai's `echo` replay buffer): fixed-shape
//! samples of arrays, streamed by workers to a learner, each acknowledged
//! once it is stored.
//!
//! - What a stream carries: its [`Spec`] (the leaves of a sample, each a
//!   dtype and a shape) and the [`Sink`] that servers deliver whole samples
//!   to, such as the in-process [`channel`] with its batches.
//! - Servers, both [`SampleServer`]s: [`TcpServer`] speaks echo's TCP
//!   protocol v1 (its spec header is [`WireSpec`]); [`GrpcServer`] the
//!   gRPC `echo.v1.SampleStream`, on its own listener or, through
//!   [`GrpcService`], beside other services in a plugin.
//! - Clients, both [`SampleClient`]s: [`TcpClient`] and [`GrpcClient`], and
//!   their [`blocking`] versions.

pub mod blocking;
mod client;
mod grpc;
mod grpc_client;
mod grpc_push;
mod grpc_spec;
mod grpc_wire;
mod inflight;
mod sink;
mod spec;
mod tcp;
mod tcp_client;
mod tcp_conn;
mod tcp_guard;
mod tcp_header;

pub use client::SampleClient;
pub use grpc::{DEFAULT_MAX_STREAMS, GrpcServer, GrpcService, SampleStreamServer};
pub use grpc_client::{
    CloseReason, DEFAULT_MAX_INFLIGHT, DEFAULT_PROGRESS_TIMEOUT, DEFAULT_WINDOW_BYTES,
    EchoClientError, GrpcClient, MAX_DEFAULT_WINDOW, default_window,
};
pub use sink::{Batch, ChannelSink, Sample, SampleReceiver, Sink, SinkError, channel};
pub use spec::{DType, Leaf, MAX_PAYLOAD, Spec, SpecError};
pub use tcp::{EchoError, SampleServer, TcpServer};
pub use tcp_client::TcpClient;
pub use tcp_guard::{CONNECTION_COST, DEFAULT_BUFFER_BUDGET, DEFAULT_MAX_CONNECTIONS};
pub use tcp_header::WireSpec;
