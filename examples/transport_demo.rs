//! Serves go-plugin's KV example service over a unix socket and over TCP
//! with one tonic code path, prints the handshake line a plugin would print,
//! calls the service through the same transport layer, and closes, checking
//! that the socket is gone.
//!
//! ```text
//! cargo run --example transport_demo
//! ```

#[path = "common/memory_kv.rs"]
mod memory_kv;

use std::time::{Duration, Instant};

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::kv_server::KvServer;
use demo_proto::kv::{GetRequest, PutRequest};
use hyper_util::rt::TokioIo;
use memory_kv::MemoryKv;
use rpcplugin::handshake::HandshakeLine;
use rpcplugin::transport::{TcpTransport, UnixTransport};
use rpcplugin::{Endpoint, HandshakeConfig, Transport};
use tonic::transport::Server;

/// A tonic channel whose connections come from our transport layer.
async fn channel(endpoint: Endpoint) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_static("http://plugin")
        .connect_with_connector(tower::service_fn(move |_| {
            let endpoint = endpoint.clone();
            async move {
                let conn = rpcplugin::connect(&endpoint, Duration::from_secs(5)).await?;
                Ok::<_, rpcplugin::transport::ConnectError>(TokioIo::new(conn))
            }
        }))
        .await
}

async fn run(name: &str, transport: impl Transport) -> Result<(), Box<dyn std::error::Error>> {
    let (endpoint, incoming) = transport.listen().await?;
    let line = HandshakeLine::new(
        HandshakeConfig::basic_example().protocol_version,
        endpoint.clone(),
    )?;
    println!("[{name}] handshake line: {line}");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(KvServer::new(MemoryKv::default()))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );

    let mut kv = KvClient::new(channel(endpoint.clone()).await?);
    kv.put(PutRequest {
        key: "hello".into(),
        value: "world".into(),
    })
    .await?;
    let value = kv
        .get(GetRequest {
            key: "hello".into(),
        })
        .await?
        .into_inner()
        .value;
    println!(
        "[{name}] Put then Get(\"hello\") -> {:?}",
        String::from_utf8_lossy(&value)
    );
    let missing = kv.get(GetRequest { key: "nope".into() }).await.unwrap_err();
    println!("[{name}] Get(\"nope\") -> {:?}", missing.code());

    let calls = 1000;
    let start = Instant::now();
    for _ in 0..calls {
        kv.get(GetRequest {
            key: "hello".into(),
        })
        .await?;
    }
    println!(
        "[{name}] {calls} sequential Get calls: {:?} each",
        start.elapsed() / calls
    );

    drop(kv);
    let _ = stop.send(());
    server.await??;
    transport.close().await?;
    if let Some(path) = endpoint.unix_path() {
        println!(
            "[{name}] closed; socket file still there: {}",
            path.exists()
        );
    } else {
        println!("[{name}] closed");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run("unix", UnixTransport::from_env()?).await?;
    run("tcp", TcpTransport::from_env()?).await?;
    Ok(())
}
