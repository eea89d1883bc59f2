//! One connection of a TCP v1 server: the spec header, then samples until
//! EOF, a refusal or shutdown. Every wait (on the client, on the sink) has
//! a stop branch; a sample is acknowledged only once the sink took it.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::tcp_guard::{Budget, CONNECTION_COST, Lease, Opening, opening};
use super::{Sink, SinkError, Spec};
use crate::transport::Connection;

/// The acknowledgement byte of protocol v1.
const ACK: u8 = 0x01;

/// Bytes read from a connection at a time, at least, once samples flow:
/// small samples arrive many per read, large ones in few reads.
const READ_CHUNK: usize = 64 * 1024;

/// Buffer of a connection before its first sample bytes arrive, so that
/// many idle connections hold little memory. Part of the connection's
/// fixed charge against the budget (`CONNECTION_COST`), not leased apart.
const IDLE_READ: usize = 512;

/// How long a client's first bytes may stay ambiguous (a prefix of the
/// HTTP/2 preface or of a TLS record) before they are taken for samples.
/// Both other protocols send their opening in one write, so only an echo
/// client whose first sample happens to start that way ever waits, once.
const OPENING_WAIT: Duration = Duration::from_secs(1);

/// How long a connection between samples keeps its buffer (and its share
/// of the budget) for the next sample. Streaming clients send the next
/// sample at once (32 in flight). Going idle at once after every sample
/// costs one more read (into the small buffer) per sample: at 64 KiB on a
/// unix socket, one client, `echo_throughput` gave 2840 and 3071 MB/s
/// against 3135 and 3302 before (two noisy pairs of runs, about 7% less).
/// 100 ms is far longer than the gap between samples of a streaming
/// client, and short enough that a client that stops between samples soon
/// frees its share.
const IDLE_RELEASE: Duration = Duration::from_millis(100);

/// What a connection task needs besides its socket.
pub(super) struct Conn<S> {
    pub(super) stream: u64,
    pub(super) spec: Spec,
    pub(super) sink: S,
    pub(super) stop: CancellationToken,
    pub(super) budget: Arc<Budget>,
}

/// Serves one connection: spec header, then samples until EOF or shutdown.
pub(super) async fn serve<S: Sink>(mut conn: Connection, ctx: Conn<S>) {
    let Conn {
        stream,
        spec,
        sink,
        stop,
        budget,
    } = ctx;
    let Some(mut lease) = Lease::open(budget) else {
        return refuse(stream, CONNECTION_COST);
    };
    let wire = spec.to_wire();
    let header = tokio::select! {
        written = conn.write_all(&wire) => written,
        _ = stop.cancelled() => return,
    };
    if let Err(err) = header {
        tracing::debug!(stream, %err, "sample client went away before the spec");
        return;
    }
    let size = spec.payload_size() as usize;
    let mut buf = BytesMut::with_capacity(IDLE_READ);
    let (mut first, mut eof) = (true, false);
    // The last read filled the buffer: more is likely waiting.
    let mut filled = false;
    loop {
        if first {
            match opening(&buf) {
                Opening::Samples => first = false,
                Opening::Undecided if eof => first = false,
                Opening::Undecided => {}
                Opening::Foreign(what) => {
                    tracing::warn!(
                        stream,
                        "refused a sample connection that opened with {what}: not an echo client"
                    );
                    return;
                }
            }
        }
        if !first && !deliver(&mut conn, &mut buf, stream, size, &sink, &stop).await {
            return;
        }
        if eof {
            if !buf.is_empty() {
                tracing::debug!(
                    stream,
                    bytes = buf.len(),
                    "connection ended inside a sample; partial sample dropped"
                );
            }
            return;
        }
        let (spare, want) = (buf.capacity() - buf.len(), READ_CHUNK.min(size));
        let mut quiet = false;
        let idle = lease.held() == 0;
        // Between samples of a flowing stream: a fresh buffer for the next
        // sample, given back if the client goes quiet. Small samples flow
        // once a read fills the idle buffer: before, 64 B samples, which
        // fill 512 bytes exactly, were read 512 bytes at a time for good
        // (12 500 reads and as many ack writes per 100 000 samples).
        let flowing = buf.is_empty() && spare < want && (!idle || filled);
        let leased = flowing && lease.hold(READ_CHUNK.max(size));
        if flowing && !leased && !idle {
            return refuse(stream, READ_CHUNK.max(size));
        }
        if leased {
            // Reuses the allocation when the sink's consumer has let go of
            // the samples cut from it (a fresh one per sample cost a third
            // of the rate at 64 KiB: page faults), but only when it is no
            // larger than the lease: the budget counts what we hold.
            // `reserve` would allocate anew, up to twice as much, whenever
            // the consumer still held the last samples.
            let reused = buf.try_reclaim(READ_CHUNK.max(size)) && buf.capacity() <= lease.held();
            if !reused {
                buf = BytesMut::with_capacity(READ_CHUNK.max(size));
            }
            quiet = true;
        } else if buf.is_empty() && spare < want.min(IDLE_READ) {
            // Idle, or no budget to read more at a time: read little.
            buf = BytesMut::with_capacity(IDLE_READ);
        } else if !buf.is_empty() && spare < want.min(size - buf.len() % size) {
            // Room for the rest of the sample, or a read's worth. Not while
            // the rest of the sample fits: growing then copied a whole
            // sample into a buffer 64 KiB larger (a second 10 MB buffer
            // for a moment, 19 MiB above the budget with 17 peers each
            // stopping one byte short of a 10 MB sample), or closed a
            // connection one byte short of its sample when the budget had
            // not those 64 KiB to spare.
            let additional = READ_CHUNK.max(size.saturating_sub(buf.len()));
            let target = buf.len() + additional;
            if !lease.hold(target) {
                return refuse(stream, target);
            }
            let mut grown = BytesMut::with_capacity(target);
            grown.extend_from_slice(&buf);
            buf = grown;
        }
        let undecided = first && !buf.is_empty();
        let room = buf.capacity() - buf.len();
        let read = tokio::select! {
            _ = stop.cancelled() => return,
            read = conn.read_buf(&mut buf) => Read::Bytes(read),
            // Async blocks: no timer is made for a disabled branch.
            _ = async { tokio::time::sleep(OPENING_WAIT).await }, if undecided => Read::Undecided,
            _ = async { tokio::time::sleep(IDLE_RELEASE).await }, if quiet => Read::Quiet,
        };
        match read {
            Read::Undecided => first = false,
            Read::Quiet => {
                // Nothing arrived (read_buf is cancel safe): idle again.
                buf = BytesMut::with_capacity(IDLE_READ);
                lease.hold(0);
                filled = false;
            }
            Read::Bytes(Ok(0)) => eof = true,
            Read::Bytes(Ok(n)) => filled = n == room,
            Read::Bytes(Err(err)) => {
                tracing::debug!(stream, %err, "sample connection failed");
                return;
            }
        }
    }
}

/// What a connection's wait for bytes ended with.
enum Read {
    Bytes(std::io::Result<usize>),
    /// The opening stayed ambiguous for [`OPENING_WAIT`].
    Undecided,
    /// Nothing for [`IDLE_RELEASE`] between samples.
    Quiet,
}

/// Logs why a connection is closed for want of budget.
fn refuse(stream: u64, bytes: usize) {
    tracing::warn!(
        stream,
        bytes,
        "refused a sample connection: the memory budget for connections is spent"
    );
}

/// Pushes every whole sample buffered into the sink, then acknowledges
/// them at once; false when the connection is done. Once shutdown began
/// no sample is pushed: a sample is acknowledged only if it is in the
/// sink, and is in the sink only if it was pushed before the stop.
async fn deliver<S: Sink>(
    conn: &mut Connection,
    buf: &mut BytesMut,
    stream: u64,
    size: usize,
    sink: &S,
    stop: &CancellationToken,
) -> bool {
    let mut acks = 0usize;
    // Every whole sample buffered, handed to the sink as one run: as many
    // at a time as it takes.
    let whole = buf.len() / size * size;
    let mut samples = buf.split_to(whole).freeze();
    while !samples.is_empty() {
        if stop.is_cancelled() {
            acknowledge(conn, acks, stop).await;
            return false;
        }
        let pushed = {
            let mut push = std::pin::pin!(sink.push_many(stream, &samples, size));
            match std::future::poll_fn(|cx| Poll::Ready(push.as_mut().poll(cx))).await {
                Poll::Ready(pushed) => pushed,
                Poll::Pending => {
                    // The sink is full: acknowledge what it took so far
                    // before waiting, so the client does not wait on us.
                    if !acknowledge(conn, acks, stop).await {
                        return false;
                    }
                    acks = 0;
                    // A full sink must not hold shutdown back: the push is
                    // dropped unfinished, so the samples are neither in the
                    // sink nor acknowledged.
                    tokio::select! {
                        biased;
                        pushed = push => pushed,
                        _ = stop.cancelled() => return false,
                    }
                }
            }
        };
        match pushed {
            Ok(n) => {
                acks += n;
                let _ = samples.split_to(n * size);
            }
            Err(err) => {
                if err != SinkError::Closed {
                    tracing::warn!(stream, %err, "sample refused by the sink");
                }
                // The samples it took before are acknowledged all the same.
                acknowledge(conn, acks, stop).await;
                return false;
            }
        }
    }
    acknowledge(conn, acks, stop).await
}

/// Writes `n` acks; false when the connection is done. Gives up at
/// shutdown only while the write is blocked: a client that reads no acks
/// blocks it once the socket buffers are full, and must not hold shutdown
/// back; a client that reads gets its acks even during shutdown.
async fn acknowledge(conn: &mut Connection, n: usize, stop: &CancellationToken) -> bool {
    if n == 0 {
        return true;
    }
    let acks = vec![ACK; n];
    tokio::select! {
        biased;
        written = conn.write_all(&acks) => written.is_ok(),
        _ = stop.cancelled() => false,
    }
}
