//! Generated gRPC code for go-plugin's wire protocol, echo's sample streams
//! and Terraform's provider protocols.
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

/// Terraform's provider protocol 5 (proto package `tfplugin5`, minor
/// version 5.7): the `Provider` and `Provisioner` services and their
/// messages. Every RPC of the generated server traits answers
/// `UNIMPLEMENTED` unless the provider implements it. Serve a provider with
/// [`ServeConfig::terraform_v5`](crate::server::ServeConfig::terraform_v5),
/// which offers it as protocol version 5 only. Terraform 0.12 and later
/// speak it.
#[cfg(feature = "terraform")]
#[cfg_attr(docsrs, doc(cfg(feature = "terraform")))]
pub mod tfplugin5 {
    #![allow(missing_docs)]
    tonic::include_proto!("tfplugin5");
}

/// Terraform's provider protocol 6 (proto package `tfplugin6`, minor
/// version 6.7): protocol 5 with nested attributes (`Schema.Object`) and
/// renamed RPCs (`GetProviderSchema`, `ConfigureProvider`,
/// `StopProvider`, …). Every RPC of the generated server trait answers
/// `UNIMPLEMENTED` unless the provider implements it. Serve a provider with
/// [`ServeConfig::terraform_v6`](crate::server::ServeConfig::terraform_v6),
/// which offers it as protocol version 6 only. Terraform 1.0 and later
/// speak it.
#[cfg(feature = "terraform")]
#[cfg_attr(docsrs, doc(cfg(feature = "terraform")))]
pub mod tfplugin6 {
    #![allow(missing_docs)]
    tonic::include_proto!("tfplugin6");
}
