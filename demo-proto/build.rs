//! Generates the examples' gRPC code with protox, a protobuf compiler
//! written in Rust, so that no system `protoc` is needed. A plugin author's
//! crate does the same for its own protocol.

use std::io;

const PROTOS: &[&str] = &["proto/kv.proto", "proto/counter.proto"];

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"]).map_err(io::Error::other)?;
    tonic_prost_build::configure()
        // Values are handed on without copying, as in rpcplugin's own code.
        .bytes(".")
        .compile_fds(fds)
}
