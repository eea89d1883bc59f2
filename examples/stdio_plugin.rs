//! A plugin that writes to its stdout and stderr, to show (and test) how
//! `GRPCStdio` carries a plugin's own output to the host: `println!`,
//! `eprintln!` and the output of child processes alike.
//!
//! It serves go-plugin's KV service; `Put(key, value)` writes `value`:
//! - key `stdout`: with `println!`; key `stderr`: with `eprintln!`;
//! - key `child`: from a child process (`sh -c printf`) that inherits fd 1;
//! - key `flood`: the value's length in bytes is read as a number of bytes
//!   of `x` to write to stdout (back-pressure tests);
//! - key `exit`: the process exits at once with the value as its status, in
//!   the middle of the call (a plugin that dies).

use std::io::Write;

use demo_proto::kv::kv_server::{Kv, KvServer};
use demo_proto::kv::{Empty, GetRequest, GetResponse, PutRequest};
use rpcplugin::{HandshakeConfig, ServeConfig};
use tonic::{Request, Response, Status};

struct Printer;

#[tonic::async_trait]
impl Kv for Printer {
    async fn get(&self, _: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        Err(Status::not_found("this plugin only prints"))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let PutRequest { key, value } = req.into_inner();
        let text = String::from_utf8_lossy(&value).into_owned();
        match key.as_str() {
            "stdout" => println!("{text}"),
            "stderr" => eprintln!("{text}"),
            "child" => {
                let status = tokio::process::Command::new("sh")
                    .args(["-c", "printf '%s\\n' \"$1\"", "sh", &text])
                    .status()
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
                if !status.success() {
                    return Err(Status::internal(format!("child failed: {status}")));
                }
            }
            "flood" => {
                let bytes: usize = text
                    .parse()
                    .map_err(|_| Status::invalid_argument("flood takes a byte count"))?;
                // Blocking writes, as a careless plugin would make them.
                tokio::task::spawn_blocking(move || {
                    let chunk = [b'x'; 1024];
                    let mut out = std::io::stdout().lock();
                    for _ in 0..bytes / chunk.len() {
                        out.write_all(&chunk)?;
                    }
                    out.flush()
                })
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| Status::internal(e.to_string()))?;
            }
            "exit" => std::process::exit(text.parse().unwrap_or(1)),
            other => return Err(Status::invalid_argument(format!("unknown key {other:?}"))),
        }
        Ok(Response::new(Empty {}))
    }
}

#[tokio::main]
async fn main() {
    let served = ServeConfig::new(HandshakeConfig::basic_example())
        .service(KvServer::new(Printer))
        .serve()
        .await;
    if let Err(err) = served {
        eprintln!("stdio_plugin: {err}");
        std::process::exit(1);
    }
}
