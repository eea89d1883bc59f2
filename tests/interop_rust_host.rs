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
