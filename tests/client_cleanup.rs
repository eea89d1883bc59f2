//! go-plugin's CleanupClients: every plugin this process started is killed.
//! It kills every live client of the process, so it has a binary of its own.

mod common;

use rpcplugin::{ClientConfig, HandshakeConfig};

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn kv_plugin() -> std::process::Command {
    std::process::Command::new(common::example("kv_plugin"))
}

#[tokio::test]
async fn cleanup_clients_kills_every_live_plugin() {
    let config = ClientConfig::new(HandshakeConfig::basic_example()).danger_disable_auto_mtls();
    let a = config.clone().start(kv_plugin()).await.unwrap();
    let b = config.start(kv_plugin()).await.unwrap();
    rpcplugin::client::cleanup_clients().await;
    assert!(a.exited() && b.exited());
    assert!(!alive(a.pid()) && !alive(b.pid()));
}
