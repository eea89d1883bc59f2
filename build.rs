//! Generates the gRPC code for `proto/` with protox, a protobuf compiler
//! written in Rust, so that building the crate needs no system `protoc`.

use std::io;

const PROTOS: &[&str] = &[
    "proto/plugin/grpc_controller.proto",
    "proto/plugin/grpc_stdio.proto",
    "proto/plugin/grpc_broker.proto",
];

/// Only with the `echo` feature.
const ECHO_PROTOS: &[&str] = &["proto/echo/v1/echo.proto"];

fn main() -> io::Result<()> {
    println!("cargo:rerun-if-changed=proto");
    let mut protos = PROTOS.to_vec();
    if std::env::var_os("CARGO_FEATURE_ECHO").is_some() {
        protos.extend_from_slice(ECHO_PROTOS);
    }
    let fds = protox::compile(protos, ["proto"]).map_err(io::Error::other)?;
    tonic_prost_build::configure()
        // Sample and stdio payloads are handed on without copying.
        .bytes(".")
        .compile_fds(fds)
}
