//! Our `kv_host` example (the Rust host) against real plugins: go-plugin's
//! KV plugin (Go, P-521 AutoMTLS; 1.0.1 from Debian, 1.4.9 and 1.8.0 as Go
//! modules, one test per version), pyvider-rpcplugin's, and our own
//! `kv_plugin` in every combination of network and AutoMTLS.

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;

/// Runs `kv_host` against `plugin`; `label` names the plugin's peer in
/// failure messages.
fn kv_host(
    label: impl std::fmt::Display,
    mtls: bool,
    transport: &str,
    plugin: &Path,
    plugin_args: &[&str],
) -> common::Run {
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
    let run = common::run_capture(&mut cmd).labelled(&label);
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
            "{label}: missing {check:?}:\n{}",
            run.stdout
        );
    }
    if transport == "unix" {
        assert!(
            run.stdout.contains("CHECK ok: socket"),
            "{label}: {}",
            run.stdout
        );
    }
    run
}

#[test]
fn rust_host_rust_plugin_every_combination() {
    let plugin = common::example("kv_plugin");
    for mtls in [false, true] {
        kv_host("rpcplugin", mtls, "unix", &plugin, &[]);
        kv_host("rpcplugin", mtls, "tcp", &plugin, &["--transport", "tcp"]);
    }
}

go_plugin_tests! {
    fn rust_host_go_plugin_plain(v) {
        kv_host(v, false, "unix", &common::go_peers(v).kvplugin, &[]);
    }

    /// go-plugin answers AutoMTLS with its own P-521 certificate.
    fn rust_host_go_plugin_automtls_p521(v) {
        kv_host(v, true, "unix", &common::go_peers(v).kvplugin, &[]);
    }
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
    let run = kv_host(
        "pyvider-rpcplugin 0.5.5",
        mtls,
        transport,
        &common::peers_python(),
        &args,
    );
    if mtls {
        // pyvider answers AutoMTLS with its own P-384 certificate.
        assert!(run.stdout.contains("mtls=true"), "{}", run.stdout);
    }
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn rust_host_pyvider_plugin_unix_plain() {
    pyvider_plugin(false, "unix");
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn rust_host_pyvider_plugin_unix_automtls() {
    pyvider_plugin(true, "unix");
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn rust_host_pyvider_plugin_tcp_plain_then_automtls() {
    // One after the other: pyvider probes a free port and binds it later,
    // so two pyvider plugins started at once can pick the same port.
    pyvider_plugin(false, "tcp");
    pyvider_plugin(true, "tcp");
}
