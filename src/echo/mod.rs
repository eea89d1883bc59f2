//! echo sample streams (instadeepai's `echo` replay buffer): fixed-shape
//! samples of arrays, streamed by workers to a learner.
//!
//! So far: the stream's [`Spec`] (the leaves of a sample, each a dtype and a
//! shape, and echo's TCP protocol v1 spec header), and the [`Sink`] that
//! transports deliver whole samples to, with the in-process [`channel`]
//! sink and its batches.

pub mod blocking;
mod grpc;
mod grpc_client;
mod grpc_push;
mod grpc_wire;
mod inflight;
mod sink;
mod spec;
mod tcp;
mod tcp_client;
mod tcp_conn;
mod tcp_guard;

pub use grpc::{GrpcTransport, Server as GrpcServer, Service as GrpcService};
pub use grpc_client::{
    DEFAULT_MAX_INFLIGHT, DEFAULT_PROGRESS_TIMEOUT, EchoClientError, GrpcClient,
};
pub use sink::{Batch, ChannelSink, Sample, SampleReceiver, Sink, SinkError, channel};
pub use spec::{DType, Leaf, MAX_PAYLOAD, Spec, SpecError, WireSpec};
pub use tcp::{EchoError, TcpTransport, Transport};
pub use tcp_client::TcpClient;
pub use tcp_guard::{CONNECTION_COST, DEFAULT_BUFFER_BUDGET, DEFAULT_MAX_CONNECTIONS};
