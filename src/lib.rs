//! # rpcplugin
//!
//! HashiCorp go-plugin's gRPC protocol for Rust: plugins that Go hosts
//! (Terraform, Vault, Packer, Nomad, any go-plugin host) launch as
//! subprocesses, and hosts that launch go-plugin plugins written in any
//! language.
//!
//! ## A plugin in Rust
//!
//! [`ServeConfig::serve`] does what go-plugin's `plugin.Serve` does: checks
//! the magic cookie, negotiates the app version, listens (a unix socket by
//! default; TCP on Windows, as go-plugin), turns on AutoMTLS when the host sends its certificate, prints
//! the handshake line, and serves your services beside health,
//! `GRPCController` and `GRPCStdio` until the host calls `Shutdown` or sends
//! SIGTERM. Then it stops gracefully, removes its socket and returns.
//!
//! ```no_run
//! use demo_proto::kv::kv_server::{Kv, KvServer};
//! use demo_proto::kv::{Empty, GetRequest, GetResponse, PutRequest};
//! use rpcplugin::{HandshakeConfig, MAX_MESSAGE_SIZE, ServeConfig};
//! use tonic::{Request, Response, Status};
//!
//! struct Kv1;
//!
//! #[tonic::async_trait]
//! impl Kv for Kv1 {
//!     async fn get(&self, r: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
//!         Err(Status::not_found(r.into_inner().key))
//!     }
//!     async fn put(&self, _: Request<PutRequest>) -> Result<Response<Empty>, Status> {
//!         Ok(Response::new(Empty {}))
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     rpcplugin::init_logging("kv1")?; // hclog JSON lines on stderr
//!     let kv = KvServer::new(Kv1).max_decoding_message_size(MAX_MESSAGE_SIZE);
//!     ServeConfig::new(HandshakeConfig::basic_example())
//!         .service(kv)
//!         .serve()
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! ## A Terraform provider
//!
//! With the `terraform` feature, `proto::tfplugin5` and `proto::tfplugin6`
//! are Terraform's provider protocols (every RPC answers UNIMPLEMENTED
//! until implemented), `ServeConfig::terraform_v6` and `terraform_v5`
//! serve a provider under its own protocol version only, and
//! [`terraform`][terraform-mod] is
//! Terraform's value model: the schema's type, `DynamicValue` to and from
//! values with unknowns and nulls, diagnostics. Terraform starts providers
//! under a debugger through `TF_REATTACH_PROVIDERS`: with `--debug` here,
//! the provider skips the cookie and prints the reattach configuration,
//! under the name of its source address.
//!
//! ```no_run
//! # #[cfg(feature = "terraform")]
//! # mod provider {
//! use rpcplugin::proto::tfplugin6::provider_server::{Provider, ProviderServer};
//! use rpcplugin::proto::tfplugin6::{Schema, get_provider_schema, schema};
//! use rpcplugin::terraform::Type;
//! use rpcplugin::{HandshakeConfig, ServeConfig};
//! use tonic::{Request, Response, Status};
//!
//! struct Example;
//!
//! #[tonic::async_trait]
//! impl Provider for Example {
//!     async fn get_provider_schema(
//!         &self,
//!         _: Request<get_provider_schema::Request>,
//!     ) -> Result<Response<get_provider_schema::Response>, Status> {
//!         let path = schema::Attribute {
//!             name: "path".into(),
//!             r#type: Type::String.to_json(),
//!             required: true,
//!             ..Default::default()
//!         };
//!         let file = Schema {
//!             version: 0,
//!             block: Some(schema::Block { attributes: vec![path], ..Default::default() }),
//!         };
//!         Ok(Response::new(get_provider_schema::Response {
//!             provider: Some(Schema::default()),
//!             resource_schemas: [("example_file".to_owned(), file)].into(),
//!             ..Default::default()
//!         }))
//!     }
//!     // …and the lifecycle RPCs: examples/terraform_provider/.
//! }
//!
//! pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     rpcplugin::init_logging("terraform-provider-example")?;
//!     let mut config = ServeConfig::new(HandshakeConfig::terraform(6))
//!         .terraform_v6(ProviderServer::new(Example));
//!     if std::env::args().any(|a| a == "--debug") {
//!         config = config.debug("registry.terraform.io/example/example");
//!     }
//!     config.serve().await?;
//!     Ok(())
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! `rpcplugin probe --terraform -- ./terraform-provider-example` then says
//! whether a Terraform-like host can use it.
//!
//! ## A host in Rust
//!
//! [`ClientConfig::start`] launches a plugin written in any language as a
//! go-plugin host does (AutoMTLS on), and [`Client::kill`] ends it the same
//! way: `Shutdown`, a grace period, then SIGKILL of its process group (on
//! Windows, the end of its job object). The README's "Platforms" section
//! says what differs on macOS and Windows.
//!
//! ```no_run
//! use demo_proto::kv::kv_client::KvClient;
//! use demo_proto::kv::PutRequest;
//! use rpcplugin::{ClientConfig, HandshakeConfig, MAX_MESSAGE_SIZE};
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ClientConfig::new(HandshakeConfig::basic_example())
//!     .start(std::process::Command::new("./kv_plugin"))
//!     .await?; // the line checked, TLS pinned, health pinged
//! let mut kv = KvClient::new(client.channel()).max_decoding_message_size(MAX_MESSAGE_SIZE);
//! kv.put(PutRequest { key: "hello".into(), value: "world".into() }).await?;
//! client.kill().await; // no process and no socket left
//! # Ok(()) }
//! ```
//!
//! ## Services both ways
//!
//! [`Broker`] is go-plugin's GRPCBroker: the host serves a callback on a
//! broker id and passes the id in a call; the plugin dials it (or the other
//! way round). `examples/counter_host.rs` and `examples/counter_plugin.rs`
//! show both halves.
//!
//! ## Checking a plugin
//!
//! [`probe::Probe`][probe-probe] (feature `probe`; `rpcplugin probe` on the
//! command line, feature `cli`) launches any plugin as a host would and
//! reports, check by check, what a host would trip over.
//!
//! ## Cargo features
//!
//! None is on by default: the core is what a plugin (a Terraform provider,
//! say) or a host needs, and the rest would only lengthen its build.
//!
//! | feature | what it adds | optional dependencies |
//! | --- | --- | --- |
//! | (always) | [`ServeConfig::serve`], [`ClientConfig`] and [`Client`], [`Broker`], transports, AutoMTLS, handshake, reattach, hclog logs, go-plugin's own services | — |
//! | `echo` | [`echo`][echo-mod]: echo sample streams (TCP v1 and gRPC), and `proto::echo` | `http-body` |
//! | `probe` | [`probe`][probe-mod]: the conformance report as a library | — |
//! | `terraform` | `proto::tfplugin5` and `proto::tfplugin6` (Terraform's provider protocols), `ServeConfig::terraform_v5` and `terraform_v6`, and [`terraform`][terraform-mod]: Terraform's value model | `prost-types`, `rmp` |
//! | `cli` | the `rpcplugin` command line; turns on `echo`, `probe` and `terraform` | `clap` |
//!
//! The command line: `cargo install rpcplugin --features cli`.
//!
//! ## Generating your protocol's code
//!
//! The crate re-exports the gRPC stack it is built on: [`tonic`], [`prost`]
//! and [`tonic_prost`]. Generated code names `tonic` itself, so keep
//! `tonic` as a dependency of yours at the same version as ours (0.14;
//! cargo then builds one copy); the re-exports are how to name our versions,
//! and `prost` and `tonic-prost` need not be dependencies of yours at all.
//!
//! Generate the code in your `build.rs` with [protox], a protobuf compiler
//! in Rust (no system `protoc`), and `tonic-prost-build`, as this
//! repository's `demo-proto/build.rs` does. Your `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! rpcplugin = "0.1"
//! tonic = { version = "0.14", default-features = false, features = ["codegen"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//!
//! [build-dependencies]
//! protox = "0.10"
//! tonic-prost-build = { version = "0.14", default-features = false, features = ["transport"] }
//! ```
//!
//! Your `build.rs` (`proto/kv.proto` declaring `package proto;` and a `KV`
//! service):
//!
//! ```no_run
//! use std::io;
//!
//! fn main() -> io::Result<()> {
//!     println!("cargo:rerun-if-changed=proto");
//!     // Parsed and checked in Rust: no protoc.
//!     let fds = protox::compile(["proto/kv.proto"], ["proto"]).map_err(io::Error::other)?;
//!     // Messages and codec through rpcplugin's prost and tonic-prost.
//!     let mut prost = tonic_prost_build::Config::new();
//!     prost.prost_path("::rpcplugin::prost");
//!     tonic_prost_build::configure()
//!         .codec_path("::rpcplugin::tonic_prost::ProstCodec")
//!         .build_client(false) // a plugin serves; a host would build clients
//!         .bytes(".") // `bytes` fields are `Bytes`: no copies
//!         .compile_fds_with_config(fds, prost)
//! }
//! ```
//!
//! Then include the generated module (named after the proto package) and
//! serve it; the first example above does exactly this with the `demo-proto`
//! crate's `KV`:
//!
//! ```ignore
//! pub mod kv {
//!     tonic::include_proto!("proto");
//! }
//!
//! let kv = kv::kv_server::KvServer::new(MyKv).max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE);
//! rpcplugin::ServeConfig::new(handshake).service(kv).serve().await?;
//! ```
//!
//! ## The crate by role
//!
//! The root holds the entry points above; the rest lives in a module per
//! go-plugin role, each using only the ones listed before it:
//!
//! - [`env`](mod@env): the names of the environment variables read and set.
//! - [`transport`]: listeners bound before their address is announced
//!   ([`Transport`], [`transport::TcpTransport`],
//!   [`transport::UnixTransport`]), go-plugin's environment
//!   (`PLUGIN_MIN_PORT`, `PLUGIN_MAX_PORT`, `PLUGIN_UNIX_SOCKET_DIR`,
//!   `PLUGIN_UNIX_SOCKET_GROUP`), safe stale-socket cleanup, socket mode
//!   0660 and group, `sun_path` checks; [`Endpoint`]s (`unix:`, `unix://`,
//!   paths, `host:port`, `[v6]:port`, `tcp://`) parsed, normalized and
//!   printed canonically.
//! - [`tls`]: AutoMTLS, per-launch P-256 certificates and verifiers pinned
//!   to the peer's exact certificate (Go's P-521 included).
//! - [`handshake`]: the magic cookie, app version negotiation as go-plugin
//!   does it ([`handshake::negotiate_version`]), and the stdout line
//!   ([`handshake::HandshakeLine`]), formatted and parsed with go-plugin's
//!   rules and error wording.
//! - [`reattach`]: Terraform's `TF_REATTACH_PROVIDERS` JSON.
//! - [`log`]: hclog JSON lines that a go-plugin host re-logs at their
//!   level ([`log::HclogLayer`], [`init_logging`]).
//! - [`proto`]: go-plugin's GRPCController, GRPCStdio and GRPCBroker
//!   services and echo's sample stream, generated without a system
//!   `protoc`.
//! - [`broker`]: go-plugin's GRPCBroker on both sides, over brokered
//!   connections with the main connection's socket settings and AutoMTLS.
//! - [`server`]: the plugin side ([`ServeConfig`]).
//! - [`client`]: the host side ([`ClientConfig`], [`Client`]).
//! - [`probe`][probe-mod] (feature `probe`): the conformance report.
//! - [`echo`][echo-mod] (feature `echo`): echo sample streams, echo's TCP
//!   protocol v1 and a gRPC transport, with servers, sinks and clients.
//! - [`terraform`][terraform-mod] (feature `terraform`): Terraform's types
//!   and values, `DynamicValue` and `RawState` encodings, diagnostics.
//!
//! The examples' KV and counter services come from the `demo-proto` crate
//! beside this one: a plugin author generates their own protocol's code the
//! same way, with tonic and prost.
//!
//! ## The transport layer on its own
//!
//! ```no_run
//! use rpcplugin::{HandshakeConfig, Transport};
//! use rpcplugin::handshake::HandshakeLine;
//! use rpcplugin::transport::UnixTransport;
//! use rpcplugin::handshake::negotiate_version_from_env;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handshake = HandshakeConfig::basic_example();
//! handshake.enforce_cookie(); // exits 1 with go-plugin's text if started by hand
//! let version = negotiate_version_from_env(&[1]).version;
//!
//! let transport = UnixTransport::from_env()?;
//! let (endpoint, incoming) = transport.listen().await?; // bound before printing
//! println!("{}", HandshakeLine::new(version, endpoint)?);
//! // tonic::transport::Server::builder()...serve_with_incoming(incoming).await?;
//! # drop(incoming);
//! transport.close().await?; // removes the socket, if it is still ours
//! # Ok(()) }
//! ```
//!
//! [protox]: https://docs.rs/protox
// The links to feature-gated modules: into this crate when the feature is
// on, to docs.rs when it is off (so that `cargo doc` warns of nothing).
#![cfg_attr(feature = "probe", doc = "[probe-mod]: probe")]
#![cfg_attr(feature = "probe", doc = "[probe-probe]: probe::Probe")]
#![cfg_attr(feature = "echo", doc = "[echo-mod]: echo")]
#![cfg_attr(feature = "terraform", doc = "[terraform-mod]: terraform")]
#![cfg_attr(
    not(feature = "terraform"),
    doc = "[terraform-mod]: https://docs.rs/rpcplugin/latest/rpcplugin/terraform/index.html"
)]
#![cfg_attr(
    not(feature = "probe"),
    doc = "[probe-mod]: https://docs.rs/rpcplugin/latest/rpcplugin/probe/index.html"
)]
#![cfg_attr(
    not(feature = "probe"),
    doc = "[probe-probe]: https://docs.rs/rpcplugin/latest/rpcplugin/probe/struct.Probe.html"
)]
#![cfg_attr(
    not(feature = "echo"),
    doc = "[echo-mod]: https://docs.rs/rpcplugin/latest/rpcplugin/echo/index.html"
)]
#![warn(missing_docs)]
// `unsafe` is allowed only where it is, for C library calls that neither
// the standard library nor nix offers safely: `atexit` for the exit hook
// that flushes captured output (`server/at_exit.rs`), glibc's `mallopt`
// (`sys/mod.rs`, only when asked for), on macOS only, `waitid` and
// `proc_pidinfo` (`sys/unix.rs`), and on Windows the Win32 calls of
// `sys/windows.rs` (process handles, job objects, standard handles).
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Layers, lowest first; each uses only layers before it: sys, chain, env,
// transport, tls, grpc, handshake, reattach, log, proto, terraform, broker,
// server, client, probe, echo (checked by tests/layers.rs).
pub mod broker;
mod chain;
pub mod client;
#[cfg(feature = "echo")]
#[cfg_attr(docsrs, doc(cfg(feature = "echo")))]
pub mod echo;
pub mod env;
mod grpc;
pub mod handshake;
pub mod log;
#[cfg(feature = "probe")]
#[cfg_attr(docsrs, doc(cfg(feature = "probe")))]
pub mod probe;
pub mod proto;
pub mod reattach;
pub mod server;
mod sys;
#[cfg(feature = "terraform")]
#[cfg_attr(docsrs, doc(cfg(feature = "terraform")))]
pub mod terraform;
pub mod tls;
pub mod transport;

// The entry points: a plugin, a host, the broker between them, where they
// meet, and the logs a host re-logs. Everything else lives in the module of
// its role.
pub use broker::{Broker, BrokerError};
pub use client::{Client, ClientConfig, ClientError};
pub use grpc::MAX_MESSAGE_SIZE;
pub use handshake::{HandshakeConfig, Protocol};
pub use log::init_logging;
pub use reattach::ReattachConfig;
pub use server::{ServeConfig, ServeError};
pub use transport::{Connection, Endpoint, Transport, connect};

/// prost, the protobuf runtime of our generated code and of yours: use
/// this one so that your version matches ours (see "Generating your
/// protocol's code" above).
pub use prost;
/// tonic, the gRPC stack [`ServeConfig::service`] and [`Client::channel`]
/// speak: use this version (0.14) so that your generated services are the
/// types ours take.
pub use tonic;
/// tonic-prost, the codec of generated services:
/// `tonic_prost_build::configure().codec_path("::rpcplugin::tonic_prost::ProstCodec")`
/// points your generated code at this one.
pub use tonic_prost;
