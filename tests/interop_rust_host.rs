//! Our `kv_host` example (the Rust host) against real plugins: go-plugin
//! 1.0.1's KV plugin (Go, P-521 AutoMTLS), and our own `kv_plugin` in every
//! combination of network and AutoMTLS.

mod common;

use std::path::Path;
use std::process::Command;

fn kv_host(mtls: bool, transport: &str, plugin: &Path, plugin_args: &[&str]) -> common::Run {
    let mut cmd = Command::new(common::example("kv_host"));
    cmd.args([
        "--mtls",
        if mtls { "on" } else { "off" },
        "--calls",
        "50",
        "--launches",
        "2",
    ])
    .args(["--transport", transport, "--"])
    .arg(plugin)
    .args(plugin_args);
    let run = common::run_capture(&mut cmd);
    run.assert_pass();
    for check in [
        "CHECK ok: health ping",
        "CHECK ok: Put then Get(hello) = world",
        "CHECK ok: Get(missing) is NOT_FOUND",
        "CHECK ok: 1 MiB value round trip",
        "CHECK ok: Kill: plugin exited",
        &format!("CHECK ok: plugin listens on {transport}"),
        &format!("mtls={mtls}"),
    ] {
        assert!(
            run.stdout.contains(check),
            "missing {check:?}:\n{}",
            run.stdout
        );
    }
    if transport == "unix" {
        assert!(run.stdout.contains("CHECK ok: socket"), "{}", run.stdout);
    }
    run
}

#[test]
fn rust_host_rust_plugin_every_combination() {
    let plugin = common::example("kv_plugin");
    for mtls in [false, true] {
        kv_host(mtls, "unix", &plugin, &[]);
        kv_host(mtls, "tcp", &plugin, &["--transport", "tcp"]);
    }
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn rust_host_go_plugin_plain() {
    kv_host(false, "unix", &common::go_peers().kvplugin, &[]);
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn rust_host_go_plugin_automtls_p521() {
    kv_host(true, "unix", &common::go_peers().kvplugin, &[]);
}

/// pyvider-rpcplugin 0.5.5's plugin, serving the same KV service.
fn pyvider_plugin(mtls: bool, transport: &str) {
    let script = common::crate_dir().join("tests/interop/python/kv_plugin_pyvider.py");
    let script = script.to_str().unwrap();
    let args: Vec<&str> = if transport == "tcp" {
        vec![script, "--transport", "tcp"]
    } else {
        vec![script]
    };
    let run = kv_host(mtls, transport, &common::peers_python(), &args);
    if mtls {
        // pyvider answers AutoMTLS with its own P-384 certificate.
        assert!(run.stdout.contains("mtls=true"), "{}", run.stdout);
    }
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test -- --ignored"]
fn rust_host_pyvider_plugin_unix_plain() {
    pyvider_plugin(false, "unix");
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test -- --ignored"]
fn rust_host_pyvider_plugin_unix_automtls() {
    pyvider_plugin(true, "unix");
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test -- --ignored"]
fn rust_host_pyvider_plugin_tcp_plain_then_automtls() {
    // One after the other: pyvider probes a free port and binds it later,
    // so two pyvider plugins started at once can pick the same port.
    pyvider_plugin(false, "tcp");
    pyvider_plugin(true, "tcp");
}
