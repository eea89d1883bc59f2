//! go-plugin's KV example service, kept in memory. Shared by the examples
//! and the tests (`#[path]`-included), so that every peer sees the same
//! behaviour: `Get` of a missing key is gRPC `NOT_FOUND`.

use std::collections::HashMap;
use std::sync::Mutex;

use demo_proto::kv::kv_server::Kv;
use demo_proto::kv::{Empty, GetRequest, GetResponse, PutRequest};
use tonic::{Request, Response, Status};

/// An in-memory `proto.KV`.
#[derive(Debug, Default)]
pub struct MemoryKv(Mutex<HashMap<String, bytes::Bytes>>);

#[tonic::async_trait]
impl Kv for MemoryKv {
    async fn get(&self, req: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let key = req.into_inner().key;
        let map = self.0.lock().expect("kv lock");
        match map.get(&key) {
            Some(value) => Ok(Response::new(GetResponse {
                value: value.clone(),
            })),
            None => Err(Status::not_found(format!("no value for key {key:?}"))),
        }
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let PutRequest { key, value } = req.into_inner();
        self.0.lock().expect("kv lock").insert(key, value);
        Ok(Response::new(Empty {}))
    }
}
