//! A go-plugin 1.0.1 host (Go, built from Debian's packages) launches our
//! `kv_plugin` over unix and TCP, plain and AutoMTLS: handshake, health,
//! Put/Get, NOT_FOUND, a 1 MiB value, then Kill — the plugin must exit by
//! itself well inside go-plugin's 2 s and remove its socket.

mod common;

use std::process::Command;

fn go_host_drives_kv_plugin(mtls: bool, transport: &str) {
    let peers = common::go_peers();
    let mut cmd = Command::new(&peers.kvhost);
    if mtls {
        cmd.arg("-mtls");
    }
    cmd.args(["-calls", "50", "--"])
        .arg(common::example("kv_plugin"))
        .args(["--transport", transport]);
    let run = common::run_capture(&mut cmd);
    run.assert_pass();
    for check in [
        "CHECK ok: handshake",
        "CHECK ok: health ping",
        "CHECK ok: Put then Get(hello) = world",
        "CHECK ok: Get(missing) is NOT_FOUND",
        "CHECK ok: 1 MiB value round trip",
        "CHECK ok: Kill: plugin exited by itself",
    ] {
        assert!(
            run.stdout.contains(check),
            "missing {check:?}:\n{}",
            run.stdout
        );
    }
    let network = if transport == "unix" {
        "unix /"
    } else {
        "tcp 127.0.0.1:"
    };
    assert!(
        run.stdout.contains(&format!("handshake: {network}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("mtls={mtls}")),
        "{}",
        run.stdout
    );
    if transport == "unix" {
        assert!(run.stdout.contains("CHECK ok: socket"), "{}", run.stdout);
    }
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_unix_plain() {
    go_host_drives_kv_plugin(false, "unix");
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_unix_automtls() {
    go_host_drives_kv_plugin(true, "unix");
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_tcp_plain() {
    go_host_drives_kv_plugin(false, "tcp");
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_tcp_automtls() {
    go_host_drives_kv_plugin(true, "tcp");
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_drives_go_plugin_as_a_baseline() {
    // The same host against go-plugin's own plugin: proves the host checks
    // what a real go-plugin plugin does, so its verdicts on ours mean something.
    let peers = common::go_peers();
    let run = common::run_capture(
        Command::new(&peers.kvhost)
            .args(["-mtls", "-calls", "10", "--"])
            .arg(&peers.kvplugin),
    );
    run.assert_pass();
}
