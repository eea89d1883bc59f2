//! One tonic server code path serves both transports: the `Incoming`
//! stream goes straight into `serve_with_incoming`, and the host side dials
//! through the same transport layer.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::kv_server::{Kv, KvServer};
use demo_proto::kv::{Empty, GetRequest, GetResponse, PutRequest};
use rpcplugin::transport::{ConnectionInfo, TcpTransport};
use rpcplugin::{Endpoint, Transport};
use tonic::{Code, Request, Response, Status};

#[derive(Default)]
struct MemoryKv(Mutex<HashMap<String, bytes::Bytes>>);

#[tonic::async_trait]
impl Kv for MemoryKv {
    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        // The peer is visible to services through the connection info.
        let info = req.extensions().get::<ConnectionInfo>().cloned();
        let key = req.into_inner().key;
        if key == "peer" {
            let peer = info.and_then(|i| i.peer_addr).map(|a| a.ip().to_string());
            return Ok(Response::new(GetResponse {
                value: peer.unwrap_or_else(|| "unix".into()).into(),
            }));
        }
        let map = self.0.lock().unwrap();
        let value = map
            .get(&key)
            .cloned()
            .ok_or_else(|| Status::not_found(key))?;
        Ok(Response::new(GetResponse { value }))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let PutRequest { key, value } = req.into_inner();
        self.0.lock().unwrap().insert(key, value);
        Ok(Response::new(Empty {}))
    }
}

async fn kv_client(endpoint: Endpoint) -> KvClient<tonic::transport::Channel> {
    KvClient::new(common::channel_to(endpoint).await)
}

/// The one server code path: any transport, the same tonic server.
async fn serve_and_call(transport: impl Transport, expected_peer: &str) {
    let (endpoint, incoming) = transport.listen().await.unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvServer::new(MemoryKv::default()))
            .serve_with_incoming(incoming),
    );
    let mut kv = kv_client(endpoint.clone()).await;
    let big = bytes::Bytes::from(vec![7u8; 1 << 20]);
    kv.put(PutRequest {
        key: "big".into(),
        value: big.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        kv.get(GetRequest { key: "big".into() })
            .await
            .unwrap()
            .into_inner()
            .value,
        big
    );
    let missing = kv
        .get(GetRequest {
            key: "absent".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let peer = kv
        .get(GetRequest { key: "peer".into() })
        .await
        .unwrap()
        .into_inner()
        .value;
    assert_eq!(peer, expected_peer.as_bytes());

    // Closing the transport ends the incoming stream; once the last client
    // is gone the server returns.
    drop(kv);
    transport.close().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops after close")
        .unwrap()
        .unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn kv_over_unix() {
    let dir = tempfile::tempdir().unwrap();
    serve_and_call(
        rpcplugin::transport::UnixTransport::in_dir(dir.path()),
        "unix",
    )
    .await;
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "socket removed"
    );
}

#[tokio::test]
async fn kv_over_tcp() {
    serve_and_call(TcpTransport::localhost(), "127.0.0.1").await;
}

#[tokio::test]
async fn kv_over_tcp_ipv6() {
    serve_and_call(
        TcpTransport::new(&"[::1]:0".parse().unwrap()).unwrap(),
        "::1",
    )
    .await;
}
