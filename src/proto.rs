//! Generated gRPC code for go-plugin's wire protocol and its KV example.
//!
//! Generated at build time from `proto/` with protox (no system `protoc`).

/// go-plugin's own services (proto package `plugin`): `GRPCController`,
/// `GRPCStdio` and `GRPCBroker`.
pub mod plugin {
    #![allow(missing_docs)]
    tonic::include_proto!("plugin");
}

/// go-plugin's KV example service (proto package `proto`): `KV.Get` and
/// `KV.Put`, used by the examples and the interop tests.
pub mod kv {
    #![allow(missing_docs)]
    tonic::include_proto!("proto");
}

/// A counter in the style of go-plugin's "bidirectional" example (proto
/// package `counter`): the plugin's `Counter.Put` calls back into an
/// `AddHelper` the host serves through the GRPCBroker.
pub mod counter {
    #![allow(missing_docs)]
    tonic::include_proto!("counter");
}

/// echo sample streams over gRPC (proto package `echo.v1`): `SampleStream`
/// with `GetSpec` and the bidirectional `Push`.
pub mod echo {
    #![allow(missing_docs)]
    tonic::include_proto!("echo.v1");
}
