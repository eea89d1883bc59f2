//! The GRPCBroker with real processes, Rust host and Rust plugin: the
//! counter example (the plugin's `Put` dials an `AddHelper` the host serves
//! through the broker), an id never announced, and Kill in the middle of a
//! brokered call. Nothing may be left in the socket directory.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use demo_proto::counter::add_helper_server::{AddHelper, AddHelperServer};
use demo_proto::counter::counter_client::CounterClient;
use demo_proto::counter::{PutRequest, SumRequest, SumResponse};
use rpcplugin::{ClientConfig, HandshakeConfig};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// Entries left in `dir`.
fn left_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn rust_pair(mtls: bool, transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Command::new(common::example("counter_host"));
    host.args(["--mtls", if mtls { "on" } else { "off" }, "--calls", "20"])
        .arg("--")
        .arg(common::example("counter_plugin"))
        .args(["--transport", transport])
        .env("PLUGIN_UNIX_SOCKET_DIR", dir.path());
    let run = common::run_capture(&mut host);
    run.assert_pass();
    for check in [
        "CHECK ok: Put x20 through the broker (AddHelper.Sum called 20 times)",
        "CHECK ok: Get(hits) = Ok(20)",
        "CHECK ok: Get(x) = Ok(5)",
        "CHECK ok: the plugin's AddHelper through the broker: Sum(2, 3) = Ok(5)",
        &format!("mtls={mtls}"),
    ] {
        assert!(run.stdout.contains(check), "{check:?}:\n{}", run.stdout);
    }
    if transport == "unix" {
        assert!(
            run.stdout.contains("CHECK ok: 22 brokered sockets removed"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(left_in(dir.path()), Vec::<std::path::PathBuf>::new());
}

#[cfg(unix)]
#[test]
fn rust_host_rust_plugin_unix_automtls() {
    rust_pair(true, "unix");
}

#[cfg(unix)]
#[test]
fn rust_host_rust_plugin_unix_plain() {
    rust_pair(false, "unix");
}

#[test]
fn rust_host_rust_plugin_tcp_automtls() {
    rust_pair(true, "tcp");
}

/// An AddHelper that never answers.
struct Stuck;

#[tonic::async_trait]
impl AddHelper for Stuck {
    async fn sum(&self, _: Request<SumRequest>) -> Result<Response<SumResponse>, Status> {
        std::future::pending().await
    }
}

fn counter_plugin(dir: &std::path::Path) -> Command {
    let mut command = Command::new(common::example("counter_plugin"));
    command.env("PLUGIN_UNIX_SOCKET_DIR", dir);
    command
}

#[tokio::test]
async fn a_put_naming_an_id_never_announced_fails_after_5_s() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClientConfig::new(HandshakeConfig::basic_example()).socket_dir(dir.path());
    let client = config.start(counter_plugin(dir.path())).await.unwrap();
    let status = CounterClient::new(client.channel())
        .put(PutRequest {
            add_server: 999,
            key: "k".into(),
            value: 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        status.message(),
        "no connection info for broker id 999 arrived within 5s"
    );
    client.kill().await;
    assert_eq!(left_in(dir.path()), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn kill_in_the_middle_of_a_brokered_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = ClientConfig::new(HandshakeConfig::basic_example()).socket_dir(dir.path());
    let client = Arc::new(config.start(counter_plugin(dir.path())).await.unwrap());
    let broker = client.broker();
    let id = broker.next_id();
    let server = broker
        .accept_and_serve(id, Routes::new(AddHelperServer::new(Stuck)))
        .await
        .unwrap();
    // Windows: TCP, no sockets in the directory.
    assert_eq!(
        left_in(dir.path()).len(),
        if cfg!(unix) { 2 } else { 0 },
        "the plugin's and the brokered socket"
    );
    let mut counter = CounterClient::new(client.channel());
    let put = tokio::spawn(async move {
        counter
            .put(PutRequest {
                add_server: id,
                key: "k".into(),
                value: 1,
            })
            .await
    });
    // The plugin is now waiting on the stuck AddHelper.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!put.is_finished());
    let status = client.kill().await.expect("the plugin exited");
    assert!(status.success(), "{status:?}");
    let put = tokio::time::timeout(Duration::from_secs(10), put)
        .await
        .expect("the Put ends with the plugin")
        .unwrap();
    assert!(put.is_err(), "{put:?}");
    drop(server);
    assert_eq!(left_in(dir.path()), Vec::<std::path::PathBuf>::new());
    let err = broker.dial(1).await.unwrap_err();
    assert!(
        matches!(err, rpcplugin::BrokerError::Closed { .. }),
        "{err:?}"
    );
}
