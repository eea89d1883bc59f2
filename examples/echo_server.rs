//! An echo sample server: echo's TCP protocol v1 and the gRPC transport on
//! 127.0.0.1, for one spec, counting what arrives.
//!
//! ```text
//! echo_server --spec "float32[4],float32[1],float64[]" [--expect N] [--tcp-port P] [--grpc-port P]
//! ```
//!
//! Prints `ECHO_TCP 127.0.0.1:PORT` and `ECHO_GRPC 127.0.0.1:PORT`, then
//! consumes samples; after `--expect N` samples (or SIGTERM / Ctrl-C) shuts
//! both transports down, drains what they already acknowledged, and prints
//! `RECEIVED <samples> <bytes> <seconds>`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use clap::Parser;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, SampleServer};
use rpcplugin::transport::TcpTransport;

#[derive(Debug, Parser)]
#[command(about = "echo sample server (TCP protocol v1 and gRPC)")]
struct Args {
    /// The stream's spec, e.g. "float32[4],float32[1],float64[]".
    #[arg(long)]
    spec: echo::Spec,
    /// Stop after this many samples.
    #[arg(long)]
    expect: Option<u64>,
    /// Port for echo's TCP protocol (0: any).
    #[arg(long, default_value_t = 0)]
    tcp_port: u16,
    /// Port for the gRPC transport (0: any).
    #[arg(long, default_value_t = 0)]
    grpc_port: u16,
    /// Samples the server may hold before producers wait.
    #[arg(long, default_value_t = 1024)]
    queue: usize,
}

fn listener(port: u16) -> TcpTransport {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpTransport::new(&Endpoint::tcp(addr)).expect("a TCP endpoint")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let (sink, mut samples) = echo::channel(args.spec.clone(), args.queue);
    let tcp = echo::TcpServer::new(args.spec.clone(), sink.clone(), listener(args.tcp_port));
    let grpc = echo::GrpcServer::new(args.spec.clone(), sink, listener(args.grpc_port));
    println!("ECHO_TCP {}", tcp.start().await?.address());
    println!("ECHO_GRPC {}", grpc.start().await?.address());

    let stop = stop_signal();
    tokio::pin!(stop);
    let (mut count, mut bytes, mut first) = (0u64, 0u64, None);
    loop {
        tokio::select! {
            sample = samples.recv() => {
                let Some(sample) = sample else { break };
                first.get_or_insert_with(Instant::now);
                count += 1;
                bytes += sample.data.len() as u64;
                if args.expect.is_some_and(|n| count >= n) {
                    break;
                }
            }
            _ = &mut stop => break,
        }
    }
    let seconds = first.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    tcp.shutdown().await;
    grpc.shutdown().await;
    // Every acknowledged sample is in the sink: count those still queued.
    drop((tcp, grpc));
    while let Some(sample) = samples.recv().await {
        count += 1;
        bytes += sample.data.len() as u64;
    }
    println!("RECEIVED {count} {bytes} {seconds:.6}");
    Ok(())
}

/// SIGTERM or SIGINT; Ctrl-C on Windows.
async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
