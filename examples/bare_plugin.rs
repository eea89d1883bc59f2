//! A plugin built from the transport layer and the handshake alone, without
//! [`rpcplugin::ServeConfig`]: it checks the cookie, listens, prints its
//! handshake line and serves KV and health — but no `GRPCController`,
//! `GRPCStdio` or broker, as hand-rolled plugins often do. go-plugin hosts
//! can call it, but their `Kill` waits 2 s and then SIGKILLs it.
//! `rpcplugin probe` says so; the tests use it as a plugin that fails.
//!
//! ```text
//! bare_plugin
//! ```

#[path = "common/memory_kv.rs"]
mod memory_kv;

use demo_proto::kv::kv_server::KvServer;
use rpcplugin::handshake::HandshakeLine;
use rpcplugin::transport::Listen;
use rpcplugin::{HandshakeConfig, Transport};
use tonic_health::ServingStatus;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    HandshakeConfig::basic_example().enforce_cookie();
    let version = rpcplugin::handshake::negotiate_version_from_env(&[1]).version;
    // A unix socket, or TCP on Windows, as go-plugin's environment says.
    let transport = Listen::from_env()?.transport();
    let (endpoint, incoming) = transport.listen().await?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", ServingStatus::Serving)
        .await;
    println!("{}", HandshakeLine::new(version, endpoint)?);
    // Stops on SIGTERM; on Windows a host ends it by terminating it.
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tonic::transport::Server::builder()
        .add_service(KvServer::new(memory_kv::MemoryKv::default()))
        .add_service(health_service)
        .serve_with_incoming_shutdown(incoming, async move {
            #[cfg(unix)]
            terminate.recv().await;
            #[cfg(not(unix))]
            std::future::pending::<()>().await;
        })
        .await?;
    transport.close().await?;
    Ok(())
}
