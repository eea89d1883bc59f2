//! go-plugin's KV example as a Rust plugin: app protocol version 1, cookie
//! `BASIC_PLUGIN=hello`, `proto.KV` served from memory. Any go-plugin host
//! launches it unchanged (go-plugin's Go host, pyvider-rpcplugin's host,
//! rpcplugin's `Client`).
//!
//! ```text
//! kv_plugin [--transport unix|tcp] [--debug]
//! ```

#[path = "common/memory_kv.rs"]
mod memory_kv;

use clap::Parser;
use demo_proto::kv::kv_server::KvServer;
use rpcplugin::server::Network;
use rpcplugin::{HandshakeConfig, MAX_MESSAGE_SIZE, ServeConfig};

#[derive(Debug, Parser)]
#[command(about = "go-plugin's KV example plugin, in Rust")]
struct Args {
    /// The socket to listen on (go-plugin's default: unix; tcp on Windows).
    #[arg(long, default_value_t = Network::default())]
    transport: Network,
    /// Debug (reattach) mode: no cookie needed; prints the
    /// TF_REATTACH_PROVIDERS configuration and serves until Ctrl-C.
    #[arg(long)]
    debug: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // hclog JSON lines on stderr, which a go-plugin host re-logs.
    if let Err(err) = rpcplugin::init_logging("kv_plugin") {
        eprintln!("kv_plugin: {}", rpcplugin::log::Chain(&err));
    }
    let network = args.transport;
    let kv = KvServer::new(memory_kv::MemoryKv::default())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let mut config = ServeConfig::new(HandshakeConfig::basic_example())
        .service(kv)
        .network(network);
    if args.debug {
        config = config.debug("kv");
    }
    let served = config.serve().await;
    if let Err(err) = served {
        eprintln!("kv_plugin: {}", rpcplugin::log::Chain(&err));
        std::process::exit(1);
    }
}
