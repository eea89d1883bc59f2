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

/// Keeps the memory this process frees for its own reuse, rather than
/// handing it back to the kernel at once: for a process that streams large
/// samples (tens of KiB and up), on glibc (Linux with the GNU C library);
/// elsewhere it does nothing. Process-wide, so the library never calls it
/// itself: call it early in your server's (or client's) `main`, as the
/// `rpcplugin echo` command line does.
///
/// Each large sample arrives in a receive buffer of its own (ours for TCP
/// v1, HTTP/2's for gRPC) that the consumer frees later. glibc's default
/// thresholds (they follow the largest block freed) hand much of that
/// memory back, so that new buffers page-fault in anew, by an amount that
/// changes from run to run. Blocks up to 32 MiB then come from the heap,
/// and up to 256 MiB freed at its top stays there (the same as
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456`).
///
/// `rpcplugin echo serve` and `echo send`, 1000 samples of 1 MiB, default
/// window, 3 interleaved rounds: gRPC 1782–2652 MB/s without, 4209–4491
/// MB/s with (page faults in the server: 68 000–148 000, then
/// 4 600–7 700); TCP v1 3404–4511, then 4185–5283 MB/s.
///
/// ```
/// rpcplugin::echo::keep_freed_memory();
/// ```
pub fn keep_freed_memory() {
    crate::sys::keep_freed_memory();
}
