//! `rpcplugin echo serve|send`: echo sample streams from the command line.

use std::time::Instant;

use bytes::Bytes;
use rpcplugin::echo;
use rpcplugin::{Endpoint, TcpTransport, UnixTransport};

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

pub(crate) async fn serve(
    protocol: Protocol,
    listen: Endpoint,
    spec: echo::Spec,
    count: Option<u64>,
) -> Result<(), String> {
    let (sink, mut samples) = echo::channel(spec.clone(), 1024);
    macro_rules! run {
        ($listener:expr) => {{
            match protocol {
                Protocol::Tcp => {
                    receive(
                        echo::TcpTransport::new(spec, sink, $listener),
                        &mut samples,
                        count,
                    )
                    .await
                }
                Protocol::Grpc => {
                    receive(
                        echo::GrpcTransport::new(spec, sink, $listener),
                        &mut samples,
                        count,
                    )
                    .await
                }
            }
        }};
    }
    match listen.unix_path() {
        Some(path) => run!(UnixTransport::new(path)),
        None => run!(TcpTransport::new(&listen).map_err(|e| e.to_string())?),
    }
}

async fn receive(
    server: impl echo::Transport,
    samples: &mut echo::SampleReceiver,
    count: Option<u64>,
) -> Result<(), String> {
    let endpoint = server.start().await.map_err(|e| e.to_string())?;
    println!("listening on {endpoint}");
    let (mut received, mut bytes, mut first) = (0u64, 0u64, None);
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| e.to_string())?;
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
    let seconds = first.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    server.shutdown().await;
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
) -> Result<(), String> {
    let sample = Bytes::from(vec![0u8; spec.payload_size() as usize]);
    macro_rules! stream {
        ($client:expr) => {{
            let client = $client.await.map_err(|e| e.to_string())?;
            let start = Instant::now();
            let mut progress = Progress::new(count);
            for sent in 1..=count {
                client
                    .send(sample.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                progress.update(sent, start);
            }
            client.wait().await.map_err(|e| e.to_string())?;
            progress.finish();
            let seconds = start.elapsed().as_secs_f64();
            client.close().await;
            seconds
        }};
    }
    let seconds = match protocol {
        Protocol::Tcp => stream!(echo::TcpClient::connect(&connect, &spec, inflight)),
        Protocol::Grpc => stream!(echo::GrpcClient::connect_endpoint(
            &connect, &spec, inflight
        )),
    };
    let bytes = count * spec.payload_size();
    println!(
        "sent {count} samples, {bytes} bytes in {seconds:.3} s ({})",
        rate(count, bytes, seconds)
    );
    Ok(())
}
