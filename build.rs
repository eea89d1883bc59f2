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

/// Only with the `terraform` feature: Terraform's provider protocols, whose
/// services get a default for every RPC (UNIMPLEMENTED), so that a
/// provider implements only what it serves, as Terraform expects.
const TERRAFORM_PROTOS: &[&str] = &[
    "proto/terraform/tfplugin5.proto",
    "proto/terraform/tfplugin6.proto",
];

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
        .compile_fds(fds)?;
    if std::env::var_os("CARGO_FEATURE_TERRAFORM").is_some() {
        let fds = protox::compile(TERRAFORM_PROTOS, ["proto"]).map_err(io::Error::other)?;
        tonic_prost_build::configure()
            .generate_default_stubs(true)
            .compile_fds(fds)?;
    }
    Ok(())
}
