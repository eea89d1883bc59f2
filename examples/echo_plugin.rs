//! A go-plugin plugin serving echo sample streams over gRPC: a host streams
//! samples into it over the connection go-plugin set up (a unix socket with
//! AutoMTLS by default), beside health, GRPCController and GRPCStdio.
//!
//! ```text
//! echo_plugin [--spec "float32[4],float32[1],float64[]"] [--transport unix|tcp]
//! ```
//!
//! Cookie `BASIC_PLUGIN=hello`, app version 1. It logs (hclog JSON on
//! stderr) how many samples and bytes it received when it stops.

use clap::{Parser, ValueEnum};
use rpcplugin::echo;
use rpcplugin::server::Network;
use rpcplugin::{HandshakeConfig, ServeConfig};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Transport {
    Unix,
    Tcp,
}

#[derive(Debug, Parser)]
#[command(about = "A go-plugin plugin that receives echo sample streams over gRPC")]
struct Args {
    /// The stream's spec.
    #[arg(long, default_value = "float32[4],float32[1],float64[]")]
    spec: echo::Spec,
    /// The socket to listen on (go-plugin's default when absent: unix; tcp
    /// on Windows).
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// Samples held before producers wait.
    #[arg(long, default_value_t = 1024)]
    queue: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(err) = rpcplugin::init_logging("echo_plugin") {
        eprintln!("echo_plugin: {}", rpcplugin::log::Chain(&err));
    }
    let (sink, mut samples) = echo::channel(args.spec.clone(), args.queue);
    // The learner's side: here it only counts.
    let consumer = tokio::spawn(async move {
        let (mut count, mut bytes) = (0u64, 0u64);
        while let Some(sample) = samples.recv().await {
            count += 1;
            bytes += sample.data.len() as u64;
        }
        (count, bytes)
    });
    let service = echo::GrpcService::new(args.spec, sink);
    let network = match args.transport {
        Some(Transport::Unix) => Network::Unix,
        Some(Transport::Tcp) => Network::Tcp,
        None => Network::default(),
    };
    let served = ServeConfig::new(HandshakeConfig::basic_example())
        .service(service.clone().into_server())
        .network(network)
        .serve()
        .await;
    service.stop();
    drop(service);
    if let Ok((count, bytes)) = consumer.await {
        tracing::info!(samples = count, bytes, "sample streams received");
    }
    if let Err(err) = served {
        eprintln!("echo_plugin: {}", rpcplugin::log::Chain(&err));
        std::process::exit(1);
    }
}
