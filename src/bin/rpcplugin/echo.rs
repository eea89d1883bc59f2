//! `rpcplugin echo serve|send`: echo sample streams from the command line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, Sample, SampleClient, Sink, SinkError};
use rpcplugin::transport::AnyTransport;

use crate::Protocol;

/// How often progress is redrawn.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// A progress line on stderr, only when stderr is a terminal: piped runs
/// print nothing but the summary.
struct Progress {
    total: u64,
    on: bool,
    last: Option<Instant>,
}

impl Progress {
    fn new(total: u64) -> Self {
        use std::io::IsTerminal;
        Progress {
            total,
            on: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    fn update(&mut self, sent: u64, start: Instant) {
        if !self.on || self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let rate = sent as f64 / start.elapsed().as_secs_f64().max(1e-9);
        eprint!("\rsent {sent}/{} samples ({rate:.0}/s)   ", self.total);
    }

    fn finish(&self) {
        if self.on && self.last.is_some() {
            eprintln!();
        }
    }
}

/// Bytes per second as a person reads it.
fn rate(samples: u64, bytes: u64, seconds: f64) -> String {
    let seconds = seconds.max(1e-9);
    format!(
        "{:.0} samples/s, {:.3} GB/s",
        samples as f64 / seconds,
        bytes as f64 / seconds / 1e9
    )
}

/// The server's sink: it takes at most `--count` samples, so that no
/// sample beyond them is ever acknowledged (a transport acknowledges only
/// what its sink took); the rest are refused as by a closed sink.
#[derive(Debug, Clone)]
struct Counted {
    inner: echo::ChannelSink,
    taken: Arc<AtomicU64>,
    limit: u64,
}

impl Sink for Counted {
    async fn push(&self, sample: Sample) -> Result<(), SinkError> {
        let slot = self
            .taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            });
        if slot.is_err() {
            return Err(SinkError::Closed);
        }
        // Given back unless the sample went in, also when the transport
        // drops this push unfinished (at shutdown, with the sink full).
        let mut slot = Slot(Some(&self.taken));
        self.inner.push(sample).await?;
        slot.0 = None;
        Ok(())
    }
}

struct Slot<'a>(Option<&'a AtomicU64>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some(taken) = self.0 {
            taken.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

pub(crate) async fn serve(
    protocol: Protocol,
    listen: Endpoint,
    spec: echo::Spec,
    count: Option<u64>,
) -> Result<(), String> {
    let (sink, mut samples) = echo::channel(spec.clone(), 1024);
    let sink = Counted {
        inner: sink,
        taken: Arc::default(),
        limit: count.unwrap_or(u64::MAX),
    };
    let listener = AnyTransport::at(&listen).map_err(|e| crate::report(&e))?;
    match protocol {
        Protocol::Tcp => {
            let server = echo::TcpServer::new(spec, sink, listener);
            receive(server, &mut samples, count).await
        }
        Protocol::Grpc => {
            let server = echo::GrpcServer::new(spec, sink, listener);
            receive(server, &mut samples, count).await
        }
    }
}

/// Counts samples until `count` or Ctrl-C, then stops the server (no
/// sample is taken after that) and counts what it had already taken: every
/// sample acknowledged is in the summary.
async fn receive(
    server: impl echo::SampleServer,
    samples: &mut echo::SampleReceiver,
    count: Option<u64>,
) -> Result<(), String> {
    let endpoint = server.start().await.map_err(|e| crate::report(&e))?;
    println!("listening on {endpoint}");
    let (mut received, mut bytes, mut first) = (0u64, 0u64, None);
    #[cfg(unix)]
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    #[cfg(windows)]
    let interrupt = tokio::signal::windows::ctrl_c();
    let mut interrupt = interrupt.map_err(|e| crate::report(&e))?;
    loop {
        if count.is_some_and(|n| received >= n) {
            break;
        }
        tokio::select! {
            sample = samples.recv() => match sample {
                Some(sample) => {
                    first.get_or_insert_with(Instant::now);
                    received += 1;
                    bytes += sample.data.len() as u64;
                }
                None => break,
            },
            _ = interrupt.recv() => break,
        }
    }
    // Stop reading first (bounded: about a second), then drain.
    server.shutdown().await;
    // The transport and its connections held the sink: once they are gone,
    // the channel ends after the last sample they put in.
    drop(server);
    while let Some(sample) = samples.recv().await {
        received += 1;
        bytes += sample.data.len() as u64;
    }
    let seconds = first.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    println!(
        "received {received} samples, {bytes} bytes in {seconds:.3} s ({})",
        rate(received, bytes, seconds)
    );
    Ok(())
}

pub(crate) async fn send(
    protocol: Protocol,
    connect: Endpoint,
    spec: echo::Spec,
    count: u64,
    inflight: usize,
    progress: Duration,
) -> Result<(), String> {
    let sample = Bytes::from(vec![0u8; spec.payload_size() as usize]);
    let seconds = match protocol {
        Protocol::Tcp => {
            stream::<echo::TcpClient>(&connect, &spec, inflight, progress, count, sample).await?
        }
        Protocol::Grpc => {
            stream::<echo::GrpcClient>(&connect, &spec, inflight, progress, count, sample).await?
        }
    };
    let bytes = count * spec.payload_size();
    println!(
        "sent {count} samples, {bytes} bytes in {seconds:.3} s ({})",
        rate(count, bytes, seconds)
    );
    Ok(())
}

/// Streams `count` copies of `sample` and waits for their acks; the
/// seconds it took.
async fn stream<C: SampleClient>(
    connect: &Endpoint,
    spec: &echo::Spec,
    inflight: usize,
    progress: Duration,
    count: u64,
    sample: Bytes,
) -> Result<f64, String> {
    let client = C::connect_to(connect, spec, inflight)
        .await
        .map_err(|e| crate::report(&e))?
        .progress_timeout(progress);
    let start = Instant::now();
    let mut shown = Progress::new(count);
    for sent in 1..=count {
        client
            .send(sample.clone())
            .await
            .map_err(|e| crate::report(&e))?;
        shown.update(sent, start);
    }
    client.wait().await.map_err(|e| crate::report(&e))?;
    shown.finish();
    let seconds = start.elapsed().as_secs_f64();
    client.close().await;
    Ok(seconds)
}
