//! A killed client's channel never reaches another plugin. TCP plugins take
//! the first free port of the range, so a plugin started after another was
//! killed usually listens where the first did; without AutoMTLS (and every
//! reattach is plaintext) nothing would tell them apart. Once a client is
//! killed, or its plugin has exited, its channel fails with an error that
//! says so; go-plugin closes its connection in `Kill`.

// Unix only: signals.
#![cfg(unix)]

mod common;

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::{GetRequest, PutRequest};
use rpcplugin::transport::PortRange;
use rpcplugin::{ClientConfig, HandshakeConfig};

/// A free loopback port, for a one-port range.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kv_plugin_on_tcp() -> std::process::Command {
    let mut cmd = std::process::Command::new(common::example("kv_plugin"));
    cmd.args(["--transport", "tcp"]);
    cmd
}

async fn put(channel: tonic::transport::Channel, key: &str) -> Result<(), tonic::Status> {
    KvClient::new(channel)
        .put(PutRequest {
            key: key.into(),
            value: "v".into(),
        })
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_killed_clients_channel_does_not_reach_the_next_plugin_on_its_port() {
    let port = free_port();
    let config = ClientConfig::new(HandshakeConfig::basic_example())
        .danger_disable_auto_mtls()
        .port_range(PortRange::new(port, port).unwrap());
    let first = config.start(kv_plugin_on_tcp()).await.unwrap();
    let old = first.channel();
    put(old.clone(), "before").await.unwrap();
    first.kill().await;

    let second = config.start(kv_plugin_on_tcp()).await.unwrap();
    assert_eq!(
        second.handshake().endpoint().address(),
        first.handshake().endpoint().address(),
        "the premise: the second plugin took the first one's port"
    );
    let err = put(old, "stray")
        .await
        .expect_err("a call on a killed client's channel");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(
        rpcplugin::log::Chain(&err)
            .to_string()
            .contains("the plugin was killed"),
        "{}",
        rpcplugin::log::Chain(&err)
    );
    // Nothing reached the second plugin.
    let stray = KvClient::new(second.channel())
        .get(GetRequest {
            key: "stray".into(),
        })
        .await;
    assert_eq!(
        stray.map(|_| ()).unwrap_err().code(),
        tonic::Code::NotFound,
        "the killed client's call reached the next plugin"
    );
    second.kill().await;
}

#[tokio::test]
async fn a_channel_whose_plugin_exited_says_so() {
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .danger_disable_auto_mtls()
        .start(kv_plugin_on_tcp())
        .await
        .unwrap();
    let channel = client.channel();
    // The plugin goes away by itself (SIGKILL from outside).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let err = loop {
        match put(channel.clone(), "k").await {
            Ok(()) => {}
            Err(err) if rpcplugin::log::Chain(&err).to_string().contains("exited") => break err,
            Err(err) => assert!(
                tokio::time::Instant::now() < deadline,
                "no 'exited' error within 5 s: {}",
                rpcplugin::log::Chain(&err)
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(
        rpcplugin::log::Chain(&err)
            .to_string()
            .contains(&format!("pid {}", client.pid())),
        "{}",
        rpcplugin::log::Chain(&err)
    );
    client.kill().await;
}
