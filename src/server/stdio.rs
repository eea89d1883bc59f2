//! `plugin.GRPCStdio`: the plugin's own stdout and stderr, captured after
//! the handshake line and streamed to the host.
//!
//! File descriptors 1 and 2 themselves are redirected (not only Rust's
//! `std::io::stdout`), so `println!`, C libraries and child processes are
//! captured too. On Windows the standard handles are (`SetStdHandle`):
//! `println!`, whatever asks `GetStdHandle`, and children started with
//! inherited stdio; not a C runtime's own `stdout`.
//!
//! Data flows to the host's `StreamStdio` stream; when the stream's queue stays full for [`STREAM_WAIT`] (a host that reads slowly,
//! or a runtime too busy to send), output passes through to the original
//! descriptors until the stream takes some again, so nothing is lost and
//! nothing waits on the runtime. While no host stream is attached (go-plugin 1.0.1 and
//! pyvider hosts never open one), a bounded amount is held for a host that
//! may still attach, and the rest passes through to the original
//! descriptors, so a plugin never blocks on output nobody reads. Once
//! shutdown begins the stream ends and everything passes through.
//!
//! Each pipe is drained by a thread of its own, with blocking reads and
//! writes, never by the plugin's runtime: a `println!` in a handler is a
//! blocking `write(2)` on a runtime worker, and once every worker is busy
//! printing into a full pipe, a pump on the runtime would never run again
//! (the whole plugin, Shutdown and SIGTERM included, would hang). With the
//! pumps on their own threads, printing only waits for its pipe to drain,
//! as a Go plugin's printing goroutine does; and the pipe drains as long as
//! the host drains the plugin's stdout and stderr, as go-plugin hosts do.

use std::fs::File;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::at_exit;
use crate::proto::plugin::StdioData;
use crate::proto::plugin::grpc_stdio_server::{GrpcStdio, GrpcStdioServer};
use crate::proto::plugin::stdio_data::Channel;
use crate::sys::{SavedStdio, StdStream};
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

/// While output is held for a host that has not attached, how often a pump
/// looks whether one has (the delay a host attaching late sees before it
/// gets what was printed, on an otherwise quiet pipe), and how many times:
/// for a second after the output, as go-plugin ≥ 1.1 hosts attach at once
/// after connecting. After that, held output goes with the next output
/// or at shutdown, and an idle plugin does not wake.
const ATTACH_CHECK: u16 = 20;
const ATTACH_CHECKS: u32 = 50;

type StreamTx = mpsc::Sender<Result<StdioData, Status>>;

#[derive(Debug)]
struct Shared {
    attached: Mutex<Option<StreamTx>>,
    shutdown: CancellationToken,
    /// Set by the exit hook: the process is ending, pass everything
    /// through to the original descriptors.
    exiting: Arc<AtomicBool>,
}

impl Shared {
    fn attached(&self) -> Option<StreamTx> {
        self.attached.lock().expect("stdio lock").clone()
    }

    fn shutdown_started(&self) -> bool {
        self.shutdown.is_cancelled() || self.exiting.load(Ordering::SeqCst)
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
    saved: Arc<[SavedStdio; 2]>,
    /// The pipes' write ends, which fds 1 and 2 point at (Windows keeps
    /// the handle itself, not a duplicate, so they stay open until the
    /// streams are restored).
    writers: Vec<PipeWriter>,
    /// Panic text to the real stderr while fd 2 is captured.
    panic_hook: Option<super::panic::PanicToStderr>,
    /// Each pump thread's end (the exit hook waits on the same).
    pumps: Vec<Arc<at_exit::Ended>>,
}

impl Stdio {
    pub(crate) fn new(shutdown: CancellationToken) -> Self {
        Stdio {
            shared: Arc::new(Shared {
                attached: Mutex::new(None),
                shutdown,
                exiting: Arc::new(AtomicBool::new(false)),
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
        let saved = Arc::new([
            SavedStdio::save(StdStream::Stdout)?,
            SavedStdio::save(StdStream::Stderr)?,
        ]);
        let mut pumps = Vec::new();
        let mut writers = Vec::new();
        for (channel, saved) in [Channel::Stdout, Channel::Stderr].into_iter().zip(&*saved) {
            let (read, write) = std::io::pipe()?;
            let original = saved.file()?;
            let ended = Arc::new(at_exit::Ended::default());
            let pump_shared = shared.clone();
            let pump_ended = ended.clone();
            std::thread::Builder::new()
                .name(format!(
                    "rpcplugin-{}",
                    channel.as_str_name().to_lowercase()
                ))
                .spawn(move || {
                    pump(&pump_shared, channel, read, original);
                    pump_ended.set();
                })?;
            saved.point_to(&write)?;
            writers.push(write);
            pumps.push(ended);
        }
        let panic_hook = saved[1]
            .file()
            .map(super::panic::PanicToStderr::install)
            .ok();
        at_exit::register(at_exit::ExitFlush {
            exiting: shared.exiting.clone(),
            saved: saved.clone(),
            pumps: pumps.clone(),
        });
        Ok(Capture {
            shared,
            saved,
            writers,
            panic_hook,
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
        at_exit::unregister();
        self.shared.attached.lock().expect("stdio lock").take();
        let _ = std::io::stdout().flush();
        for saved in &*self.saved {
            let _ = saved.restore();
        }
        // Now nothing else writes to the pipes (but a child process that
        // holds them).
        drop(self.writers);
        if let Some(hook) = self.panic_hook {
            hook.uninstall();
        }
        // The pipes reach EOF unless a child process still holds them.
        // Each pump gets its own FINAL_FLUSH.
        let mut held = 0;
        for pump in &self.pumps {
            if tokio::time::timeout(FINAL_FLUSH, pump.ended())
                .await
                .is_err()
            {
                held += 1;
            }
        }
        if held > 0 {
            tracing::debug!("a child process still holds the plugin's stdout or stderr");
        }
    }
}

/// Reads one pipe (blocking, on its own thread) and delivers each chunk to
/// the attached stream, the pending buffer, or the original descriptor.
fn pump(shared: &Shared, channel: Channel, mut reader: PipeReader, mut original: File) {
    let mut pending = BytesMut::new();
    let mut buf = vec![0u8; CHUNK];
    let mut checks = 0;
    let mut patience = Patience::Wait;
    loop {
        if pending.is_empty() {
            checks = 0;
        }
        // Holding output for a host that may still attach: look for one
        // now and then, rather than only when more output comes.
        let held = !pending.is_empty() && checks < ATTACH_CHECKS;
        if held && !crate::sys::readable(&reader, ATTACH_CHECK) {
            checks += 1;
        } else {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        match deliver(shared, channel, &mut pending, patience) {
            Delivery::Done => patience = Patience::Wait,
            Delivery::Full => {
                // The stream is not being read fast enough (or the runtime
                // that sends it is busy, perhaps printing): pass through
                // until it takes a chunk again, rather than hold the pipe.
                patience = Patience::None;
                let _ = original.write_all(&pending);
                pending.clear();
            }
            Delivery::NoStream => {
                if shared.shutdown_started() || pending.len() > PENDING_LIMIT {
                    // Nobody reads, or nobody will: pass through. This blocks
                    // only this thread (and, once the pipe is full, the
                    // printing call) if nobody drains the original
                    // descriptor; go-plugin hosts drain it.
                    let _ = original.write_all(&pending);
                    pending.clear();
                }
            }
        }
    }
    let _ = original.write_all(&pending);
}

/// How long a pump waits for room in the attached stream's queue before it
/// passes output through to the original descriptor instead: long enough
/// for a host reading steadily to catch up, short enough that a plugin
/// whose runtime cannot send (every worker blocked printing) drains its
/// pipes at once.
const STREAM_WAIT: Duration = Duration::from_millis(50);

/// Whether a pump waits for room in the stream: not again after it had to
/// pass output through, until the stream takes a chunk.
#[derive(Clone, Copy, PartialEq)]
enum Patience {
    Wait,
    None,
}

enum Delivery {
    /// Everything pending went to the stream.
    Done,
    /// The stream stayed full; what is pending stays pending.
    Full,
    /// No stream (or it went away, or shutdown began).
    NoStream,
}

/// Sends what is pending to the attached stream, never through the
/// runtime: a full queue is retried from this thread for up to
/// [`STREAM_WAIT`] (not at all with [`Patience::None`]).
fn deliver(
    shared: &Shared,
    channel: Channel,
    pending: &mut BytesMut,
    mut patience: Patience,
) -> Delivery {
    if shared.shutdown_started() {
        return Delivery::NoStream;
    }
    let Some(tx) = shared.attached() else {
        return Delivery::NoStream;
    };
    while !pending.is_empty() {
        let len = pending.len().min(CHUNK);
        let message = StdioData {
            channel: channel as i32,
            data: Bytes::copy_from_slice(&pending[..len]),
        };
        let mut message = Some(message);
        let waited = std::time::Instant::now();
        loop {
            match tx.try_send(Ok(message.take().expect("a message to send"))) {
                Ok(()) => {
                    let _ = pending.split_to(len);
                    patience = Patience::Wait;
                    break;
                }
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if patience == Patience::None
                        || waited.elapsed() >= STREAM_WAIT
                        || shared.shutdown_started()
                    {
                        return Delivery::Full;
                    }
                    message = back.ok();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    let mut attached = shared.attached.lock().expect("stdio lock");
                    if attached
                        .as_ref()
                        .is_some_and(|current| current.same_channel(&tx))
                    {
                        attached.take();
                    }
                    return Delivery::NoStream;
                }
            }
        }
    }
    Delivery::Done
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
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
