//! Generated gRPC code for go-plugin's wire protocol and echo's sample streams.
//!
//! Generated at build time from `proto/` with protox (no system `protoc`).

/// go-plugin's own services (proto package `plugin`): `GRPCController`,
/// `GRPCStdio` and `GRPCBroker`.
pub mod plugin {
    #![allow(missing_docs)]
    tonic::include_proto!("plugin");
}

/// echo sample streams over gRPC (proto package `echo.v1`): `SampleStream`
/// with `GetSpec` and the bidirectional `Push`.
#[cfg(feature = "echo")]
#[cfg_attr(docsrs, doc(cfg(feature = "echo")))]
pub mod echo {
    #![allow(missing_docs)]
    tonic::include_proto!("echo.v1");
}
