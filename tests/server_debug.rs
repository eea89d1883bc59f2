//! Debug (reattach) mode: started by a person, without the cookie, the
//! plugin prints Terraform's TF_REATTACH_PROVIDERS configuration, serves it,
//! and stops on Ctrl-C, removing its socket.

// Unix only: signals and unix sockets.
#![cfg(unix)]

mod common;

use std::time::Duration;

use demo_proto::kv::PutRequest;
use demo_proto::kv::kv_client::KvClient;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[tokio::test]
async fn debug_mode_prints_a_reattach_configuration_that_works() {
    let (mut child, config) = common::launch_debug();
    assert_eq!(config.pid, child.id());
    assert!(config.test);
    assert_eq!(config.protocol_version, 1);
    let socket = config.endpoint.unix_path().unwrap().to_owned();

    let channel = common::channel_to(config.endpoint.clone()).await;
    KvClient::new(channel)
        .put(PutRequest {
            key: "k".into(),
            value: "v".into(),
        })
        .await
        .unwrap();

    // A person stops it with Ctrl-C.
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success());
    assert!(!socket.exists());
}
