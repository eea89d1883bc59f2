//! Faults with real plugin processes: a plugin SIGKILLed in the middle of
//! a sample stream, and the socket directory deleted under a running
//! plugin.

// Unix only: signals and unix sockets.
#![cfg(unix)]

mod common;

use std::time::Duration;

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::{GetRequest, PutRequest};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rpcplugin::echo::{self, EchoClientError, GrpcClient};
use rpcplugin::{ClientConfig, HandshakeConfig};

#[tokio::test]
async fn a_plugin_killed_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .socket_dir(dir.path())
        .start(std::process::Command::new(common::example("echo_plugin")))
        .await
        .unwrap();
    let spec: echo::Spec = "float32[4],float32[1],float64[]".parse().unwrap();
    let stream = GrpcClient::connect(client.channel(), &spec, 32)
        .await
        .unwrap();
    let sample = bytes::Bytes::from(vec![0u8; 28]);
    for _ in 0..1000 {
        stream.send(sample.clone()).await.unwrap();
    }
    kill(Pid::from_raw(client.pid() as i32), Signal::SIGKILL).unwrap();
    // Sending goes on failing, not hanging, once the plugin is gone.
    let failed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(err) = stream.send(sample.clone()).await {
                return err;
            }
        }
    })
    .await
    .expect("send fails once the plugin is dead");
    assert!(
        matches!(failed, EchoClientError::ConnectionClosed { .. }),
        "{failed:?}"
    );
    let waited = tokio::time::timeout(Duration::from_secs(10), stream.wait()).await;
    assert!(waited.expect("wait returns").is_err());
    let status = client.kill().await.expect("reaped");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the host removed the socket the killed plugin left"
    );
}

#[tokio::test]
async fn the_socket_directory_deleted_under_a_running_plugin() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("sockets");
    std::fs::create_dir(&dir).unwrap();
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .socket_dir(&dir)
        .start(std::process::Command::new(common::example("kv_plugin")))
        .await
        .unwrap();
    let mut kv = KvClient::new(client.channel());
    let put = |key: &str| PutRequest {
        key: key.into(),
        value: "v".into(),
    };
    kv.put(put("before")).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    // The connection is open: calls go on.
    kv.put(put("after")).await.unwrap();
    let got = kv
        .get(GetRequest {
            key: "before".into(),
        })
        .await
        .unwrap();
    assert_eq!(got.into_inner().value, "v");
    // It still stops gracefully, with nothing to remove and nothing created.
    let status = client.kill().await.expect("exited");
    assert!(status.success(), "{status:?}");
    assert!(!dir.exists(), "nobody re-created the directory");
}
