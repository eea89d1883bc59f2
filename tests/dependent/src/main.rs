//! go-plugin's KV example plugin, built as a dependent crate builds it: the
//! start-up time of a user's plugin (see `measure.py`).

#[path = "../../../examples/common/memory_kv.rs"]
mod memory_kv;

use demo_proto::kv::kv_server::KvServer;
use rpcplugin::{HandshakeConfig, ServeConfig};

#[tokio::main]
async fn main() {
    let kv = KvServer::new(memory_kv::MemoryKv::default());
    let served = ServeConfig::new(HandshakeConfig::basic_example())
        .service(kv)
        .serve()
        .await;
    if let Err(err) = served {
        eprintln!("dependent_kv_plugin: {}", rpcplugin::log::Chain(&err));
        std::process::exit(1);
    }
}
