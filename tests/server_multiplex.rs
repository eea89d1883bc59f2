//! Our plugins serve go-plugin's multiplexed gRPC (`PLUGIN_MULTIPLEX_GRPC`,
//! go-plugin ≥ 1.6): go-plugin 1.8.0's hosts with `GRPCBrokerMultiplex`
//! (the Go hosts' `-multiplex`) run one yamux session over one connection
//! to the plugin; the main gRPC connection and the brokered ones are its
//! streams, each with its own TLS under AutoMTLS.
//!
//! - the KV pair: handshake (seventh field), health, Put/Get, a 1 MiB value,
//!   Kill, over unix and TCP, plain and AutoMTLS;
//! - the counter pair: the plugin dials the host's brokered `AddHelper`
//!   through knocks and streams the plugin opens.
//! - the seventh field itself: printed as `true` for any non-empty value,
//!   never without the variable.

mod common;

use std::process::Command;

use common::GoPlugin;

fn kv(mtls: bool, transport: &str) {
    let v = GoPlugin::V1_8_0;
    let peers = common::go_peers(v);
    let mut cmd = Command::new(&peers.kvhost);
    cmd.arg("-multiplex");
    if mtls {
        cmd.arg("-mtls");
    }
    cmd.args(["-calls", "50", "--"])
        .arg(common::example("kv_plugin"))
        .args(["--transport", transport]);
    let run = common::run_capture(&mut cmd).labelled(format!("{v}, multiplexed"));
    run.assert_pass();
    for check in [
        "CHECK ok: handshake",
        "CHECK ok: health ping",
        "CHECK ok: Put then Get(hello) = world",
        "CHECK ok: Get(missing) is NOT_FOUND",
        "CHECK ok: 1 MiB value round trip",
        "CHECK ok: Kill: plugin exited by itself",
        &format!("mtls={mtls}"),
    ] {
        assert!(
            run.stdout.contains(check),
            "missing {check:?}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    if transport == "unix" {
        let check = "CHECK ok: socket";
        assert!(
            run.stdout.contains(check),
            "missing {check:?}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

fn counter(mtls: bool, transport: &str) {
    let v = GoPlugin::V1_8_0;
    let peers = common::go_peers(v);
    let dir = tempfile::tempdir().unwrap();
    let mut host = Command::new(&peers.counterhost);
    host.arg("-multiplex");
    if mtls {
        host.arg("-mtls");
    }
    host.args(["-calls", "20", "--"])
        .arg(common::example("counter_plugin"))
        .args(["--transport", transport])
        .env("PLUGIN_UNIX_SOCKET_DIR", dir.path());
    let run = common::run_capture(&mut host).labelled(format!("{v}, multiplexed"));
    run.assert_pass();
    for check in [
        "CHECK ok: Put x20 through the broker (AddHelper.Sum called 20 times)",
        "CHECK ok: Get(hits) = 20",
        // The other way round: our plugin serves, the Go host dials.
        "CHECK ok: the plugin's AddHelper through the broker: Sum(2, 3) = 5",
    ] {
        assert!(
            run.stdout.contains(check),
            "missing {check:?}:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
}

#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test -- --ignored"]
fn go_v1_8_0_host_multiplexed_kv_unix_plain() {
    kv(false, "unix");
}

#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test -- --ignored"]
fn go_v1_8_0_host_multiplexed_kv_unix_automtls() {
    kv(true, "unix");
}

#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test -- --ignored"]
fn go_v1_8_0_host_multiplexed_kv_tcp_plain() {
    kv(false, "tcp");
}

#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test -- --ignored"]
fn go_v1_8_0_host_multiplexed_kv_tcp_automtls() {
    kv(true, "tcp");
}

#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test -- --ignored"]
fn go_v1_8_0_host_multiplexed_counter_unix_plain() {
    counter(false, "unix");
}

#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test -- --ignored"]
fn go_v1_8_0_host_multiplexed_counter_unix_automtls() {
    counter(true, "unix");
}

#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test -- --ignored"]
fn go_v1_8_0_host_multiplexed_counter_tcp_automtls() {
    counter(true, "tcp");
}

/// The seventh field: `true` for any non-empty `PLUGIN_MULTIPLEX_GRPC`
/// (go-plugin 1.8.0 prints "supported", whatever the value), absent
/// without it or when it is empty.
#[test]
fn seventh_field_follows_the_variable() {
    let plugin = common::example("kv_plugin");
    for (value, want) in [
        (None, None),
        (Some(""), None),
        (Some("false"), Some(true)),
        (Some("true"), Some(true)),
    ] {
        let mut env = vec![];
        if let Some(value) = value {
            env.push(("PLUGIN_MULTIPLEX_GRPC", value));
        }
        let launched = common::launch(&plugin, &[], &env);
        assert_eq!(
            launched.line.multiplex(),
            want,
            "PLUGIN_MULTIPLEX_GRPC={value:?}: {:?}",
            launched.raw_line
        );
    }
}
