//! Versioned service sets (go-plugin's VersionedPlugins): the plugin serves
//! the set of the version it negotiated with the host. `serve` runs in this
//! process, so this binary holds one test that sets the environment in turn.

// Unix only: the plugin is found by its socket in the socket directory.
#![cfg(unix)]

mod common;
#[path = "../examples/common/memory_kv.rs"]
mod memory_kv;

use std::time::Duration;

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::kv_server::{Kv, KvServer};
use demo_proto::kv::{Empty, GetRequest, GetResponse, PutRequest};
use rpcplugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use rpcplugin::{Endpoint, HandshakeConfig, ServeConfig};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

/// The version-6 service: answers every Get with "v6".
struct Six;

#[tonic::async_trait]
impl Kv for Six {
    async fn get(&self, _: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        Ok(Response::new(GetResponse { value: "v6".into() }))
    }
    async fn put(&self, _: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }
}

fn set(var: &str, value: &str) {
    // SAFETY: one test in this binary, on a current-thread runtime; the
    // plugin under test reads the environment only while starting, which
    // this test awaits.
    unsafe { std::env::set_var(var, value) }
}

/// Serves versions 5 and 6 with `offered` as PLUGIN_PROTOCOL_VERSIONS and
/// returns what `Get` answers.
async fn serve_and_ask(offered: &str) -> Result<String, tonic::Code> {
    let dir = tempfile::tempdir().unwrap();
    set("PLUGIN_UNIX_SOCKET_DIR", dir.path().to_str().unwrap());
    set("PLUGIN_PROTOCOL_VERSIONS", offered);
    let config = ServeConfig::new(HandshakeConfig::terraform(5))
        .version(
            5,
            Routes::new(KvServer::new(memory_kv::MemoryKv::default())),
        )
        .version(6, Routes::new(KvServer::new(Six)))
        .capture_stdio(false)
        .exit_on_cookie_mismatch(false);
    let plugin = tokio::spawn(config.serve());
    // The only file in the socket directory is the plugin's socket.
    let socket = loop {
        if let Some(entry) = std::fs::read_dir(dir.path()).unwrap().next() {
            break entry.unwrap().path();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let channel = common::channel_to(Endpoint::unix(&socket).unwrap()).await;
    let answer = KvClient::new(channel.clone())
        .get(GetRequest {
            key: "which".into(),
        })
        .await
        .map(|r| String::from_utf8_lossy(&r.into_inner().value).into_owned())
        .map_err(|status| status.code());
    GrpcControllerClient::new(channel)
        .shutdown(rpcplugin::proto::plugin::Empty {})
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), plugin)
        .await
        .expect("serve returned after Shutdown")
        .unwrap()
        .unwrap();
    assert!(!socket.exists(), "socket removed");
    answer
}

#[tokio::test(flavor = "current_thread")]
async fn the_negotiated_versions_services_are_served() {
    set(
        "TF_PLUGIN_MAGIC_COOKIE",
        &HandshakeConfig::terraform(5).magic_cookie_value,
    );
    assert_eq!(
        serve_and_ask("5,6").await,
        Ok("v6".into()),
        "highest common version"
    );
    assert_eq!(serve_and_ask("6").await, Ok("v6".into()));
    // Version 5's service is the in-memory KV: the key is missing.
    assert_eq!(serve_and_ask("5").await, Err(tonic::Code::NotFound));
    assert_eq!(serve_and_ask("4,5").await, Err(tonic::Code::NotFound));
    // No overlap: the lowest version, for the host to report the mismatch.
    assert_eq!(serve_and_ask("7").await, Err(tonic::Code::NotFound));
}
