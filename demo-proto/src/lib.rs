//! gRPC code for rpcplugin's examples and tests, generated at build time
//! from `proto/` (see `build.rs`). Not part of rpcplugin's API: a plugin
//! author generates their own protocol's code the same way.

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
