//! `plugin.GRPCStdio`: the plugin's own stdout and stderr, captured after
//! the handshake line and streamed to the host.
//!
//! File descriptors 1 and 2 themselves are redirected (not only Rust's
//! `std::io::stdout`), so `println!`, C libraries and child processes are
//! captured too. Data flows to the host's `StreamStdio` stream with
//! back-pressure. While no host stream is attached (go-plugin 1.0.1 and
//! pyvider hosts never open one), a bounded amount is held for a host that
//! may still attach, and the rest passes through to the original
//! descriptors, so a plugin never blocks on output nobody reads. Once
//! shutdown begins the stream ends and everything passes through.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use nix::fcntl::OFlag;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::proto::plugin::StdioData;
use crate::proto::plugin::grpc_stdio_server::{GrpcStdio, GrpcStdioServer};
use crate::proto::plugin::stdio_data::Channel;
use tokio_util::sync::CancellationToken;

/// Largest chunk read from a pipe and sent as one `StdioData`: a page, so a
/// burst of output costs few messages, while a line is still sent as soon as
/// it is written.
const CHUNK: usize = 4096;

/// Output held per channel while no host stream is attached, for a host
/// that attaches just after connecting (go-plugin ≥ 1.1 does so at once).
const PENDING_LIMIT: usize = 64 * 1024;

/// Chunks queued towards an attached stream before writers feel
/// back-pressure.
const STREAM_QUEUE: usize = 16;

/// How long to wait, when serving ends, for output still in the pipes to
/// reach the original descriptors.
const FINAL_FLUSH: Duration = Duration::from_millis(200);

type StreamTx = mpsc::Sender<Result<StdioData, Status>>;

#[derive(Debug)]
struct Shared {
    attached: Mutex<Option<StreamTx>>,
    /// Wakes the pumps when a stream attaches, to deliver what they hold.
    attach: Notify,
    shutdown: CancellationToken,
}

impl Shared {
    fn attached(&self) -> Option<StreamTx> {
        self.attached.lock().expect("stdio lock").clone()
    }

    fn shutdown_started(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// The plugin's stdio: the `GRPCStdio` service, and once
/// [`redirect`](Self::redirect) is called, the capture of fds 1 and 2.
#[derive(Debug)]
pub(crate) struct Stdio {
    shared: Arc<Shared>,
}

/// A running capture: the original descriptors and the pumps.
#[derive(Debug)]
pub(crate) struct Capture {
    shared: Arc<Shared>,
    saved_stdout: OwnedFd,
    saved_stderr: OwnedFd,
    pumps: Vec<JoinHandle<()>>,
}

impl Stdio {
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        Stdio {
            shared: Arc::new(Shared {
                attached: Mutex::new(None),
                attach: Notify::new(),
                shutdown,
            }),
        }
    }

    /// The `GRPCStdio` service streaming this capture.
    pub(crate) fn service(&self) -> GrpcStdioServer<StdioService> {
        GrpcStdioServer::new(StdioService {
            shared: self.shared.clone(),
        })
    }

    /// Redirects fds 1 and 2 to pipes and starts pumping them. Call after
    /// the handshake line has been printed and flushed.
    pub(crate) fn redirect(&self) -> io::Result<Capture> {
        let shared = self.shared.clone();
        std::io::stdout().flush()?;
        let saved_stdout = nix::unistd::dup(std::io::stdout())?;
        let saved_stderr = nix::unistd::dup(std::io::stderr())?;
        let mut pumps = Vec::new();
        for (channel, saved) in [
            (Channel::Stdout, &saved_stdout),
            (Channel::Stderr, &saved_stderr),
        ] {
            let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
            let reader = pipe::Receiver::from_owned_fd(read)?;
            let original = File::from(saved.try_clone()?);
            match channel {
                Channel::Stdout => nix::unistd::dup2_stdout(&write)?,
                _ => nix::unistd::dup2_stderr(&write)?,
            }
            drop(write); // fd 1 or 2 now holds the write end
            pumps.push(tokio::spawn(pump(
                shared.clone(),
                channel,
                reader,
                original,
            )));
        }
        Ok(Capture {
            shared,
            saved_stdout,
            saved_stderr,
            pumps,
        })
    }

    /// Ends the host's stream, so that a graceful stop is not held up by it
    /// (also when nothing is captured, as in debug mode).
    pub(crate) fn end_stream(&self) {
        self.shared.attached.lock().expect("stdio lock").take();
    }
}

impl Capture {
    /// Puts the original descriptors back and lets the pumps pass what is
    /// left in the pipes through to them.
    pub(crate) async fn restore(self) {
        self.shared.attached.lock().expect("stdio lock").take();
        let _ = std::io::stdout().flush();
        let _ = nix::unistd::dup2_stdout(&self.saved_stdout);
        let _ = nix::unistd::dup2_stderr(&self.saved_stderr);
        // The pipes reach EOF unless a child process still holds them.
        for pump in self.pumps {
            if tokio::time::timeout(FINAL_FLUSH, pump).await.is_err() {
                tracing::debug!("a child process still holds the plugin's stdout or stderr");
            }
        }
    }
}

/// Reads one pipe and delivers each chunk to the attached stream, the
/// pending buffer, or the original descriptor.
async fn pump(
    shared: Arc<Shared>,
    channel: Channel,
    mut reader: pipe::Receiver,
    mut original: File,
) {
    let mut pending = BytesMut::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let read = tokio::select! {
            read = reader.read(&mut buf) => Some(read),
            () = shared.attach.notified(), if !pending.is_empty() => None,
        };
        match read {
            Some(Ok(0) | Err(_)) => break,
            Some(Ok(n)) => pending.extend_from_slice(&buf[..n]),
            None => {}
        }
        if deliver(&shared, channel, &mut pending).await {
            continue;
        }
        if shared.shutdown_started() || pending.len() > PENDING_LIMIT {
            // Nobody reads, or nobody will: pass through. A go-plugin host
            // drains the plugin's stdout and stderr, so this does not block.
            let _ = original.write_all(&pending);
            pending.clear();
        }
    }
    let _ = original.write_all(&pending);
}

/// Sends what is pending to the attached stream; `false` when no stream is
/// attached (or it went away, or shutdown began while waiting).
async fn deliver(shared: &Shared, channel: Channel, pending: &mut BytesMut) -> bool {
    if shared.shutdown_started() {
        return false;
    }
    let Some(tx) = shared.attached() else {
        return false;
    };
    while !pending.is_empty() {
        let data: Bytes = pending.split_to(pending.len().min(CHUNK)).freeze();
        let message = StdioData {
            channel: channel as i32,
            data: data.clone(),
        };
        let sent = tokio::select! {
            sent = tx.send(Ok(message)) => sent.is_ok(),
            () = shared.shutdown.cancelled() => false,
        };
        if !sent {
            // Put the chunk back in front: it was not delivered.
            let mut rest = BytesMut::from(&data[..]);
            rest.extend_from_slice(pending);
            *pending = rest;
            let mut attached = shared.attached.lock().expect("stdio lock");
            if attached
                .as_ref()
                .is_some_and(|current| current.same_channel(&tx))
            {
                attached.take();
            }
            return false;
        }
    }
    true
}

/// The `plugin.GRPCStdio` service. A new `StreamStdio` call replaces the
/// previous one (a host that reattaches gets the stream).
#[derive(Debug)]
pub(crate) struct StdioService {
    shared: Arc<Shared>,
}

#[tonic::async_trait]
impl GrpcStdio for StdioService {
    type StreamStdioStream = ReceiverStream<Result<StdioData, Status>>;

    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        if self.shared.shutdown_started() {
            return Err(Status::unavailable("the plugin is shutting down"));
        }
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        *self.shared.attached.lock().expect("stdio lock") = Some(tx);
        self.shared.attach.notify_waiters();
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
