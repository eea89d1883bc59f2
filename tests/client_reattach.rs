//! Reattach: a host attaches to a plugin it did not start, from Terraform's
//! TF_REATTACH_PROVIDERS JSON; a plugin in test (debug) mode is never
//! killed by the host.

// Unix only: unix sockets and the kernel's word on their listener.
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::{GetRequest, PutRequest};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rpcplugin::reattach::ReattachProviders;
use rpcplugin::{ClientConfig, HandshakeConfig};

#[tokio::test]
async fn a_debug_mode_plugin_is_attached_to_and_never_killed() {
    let (mut plugin, config) = common::launch_debug();
    assert!(config.test);

    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .attach(&config)
        .await
        .unwrap();
    let mut kv = KvClient::new(client.channel());
    kv.put(PutRequest {
        key: "k".into(),
        value: "v".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        kv.get(GetRequest { key: "k".into() })
            .await
            .unwrap()
            .into_inner()
            .value,
        "v"
    );
    assert_eq!(client.kill().await, None);
    drop((kv, client));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        plugin.try_wait().unwrap().is_none(),
        "a test-mode plugin was killed by the host"
    );

    // A person stops it with Ctrl-C.
    kill(Pid::from_raw(plugin.id() as i32), Signal::SIGINT).unwrap();
    assert!(plugin.wait().unwrap().success());
}

#[tokio::test]
async fn a_plugin_reattached_through_json_is_shut_down_by_kill() {
    let config = ClientConfig::new(HandshakeConfig::basic_example()).danger_disable_auto_mtls();
    let first = config
        .clone()
        .start(Command::new(common::example("kv_plugin")))
        .await
        .unwrap();
    // What a host writes for another host to reattach.
    let providers = ReattachProviders([("kv".to_owned(), first.reattach_config())].into());
    let json = providers.to_json();
    assert!(json.contains(&format!("\"Pid\":{}", first.pid())), "{json}");
    let reattach = ReattachProviders::from_json(&json)
        .unwrap()
        .0
        .remove("kv")
        .unwrap();
    assert!(!reattach.test);

    let second = config.attach(&reattach).await.unwrap();
    second.ping().await.unwrap();
    second.kill().await;
    assert!(second.exited(), "the reattached plugin was shut down");
    let status = first
        .kill()
        .await
        .expect("reaped by the host that started it");
    assert!(
        status.success(),
        "it exited by itself after Shutdown: {status}"
    );
}
