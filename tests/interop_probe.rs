//! `rpcplugin probe` passes the plugins of real peers: go-plugin 1.0.1's
//! (Go, Debian) and pyvider-rpcplugin 0.5.5's (Python), with and without
//! AutoMTLS.

mod common;

use std::path::Path;
use std::process::Command;

fn probe(mtls: &str, plugin: &[&Path]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .args(["probe", "--mtls", mtls, "--"])
        .args(plugin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.ends_with("RESULT: PASS\n"), "{stdout}");
    stdout
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_plugin_1_0_1_plugins_pass() {
    let peers = common::go_peers();
    for plugin in [&peers.kvplugin, &peers.counterplugin] {
        let report = probe("on", &[plugin]);
        assert!(
            report.contains("AutoMTLS certificate: ECDSA P-521"),
            "{report}"
        );
        // go-plugin 1.0.1 has no GRPCStdio (it came in 1.2): a warning only.
        assert!(report.contains("warn  GRPCStdio:"), "{report}");
        assert!(report.contains("hclog JSON"), "{report}");
        probe("off", &[plugin]);
    }
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test -- --ignored"]
fn pyvider_plugins_pass() {
    let python = common::peers_python();
    let script = common::crate_dir().join("tests/interop/python/kv_plugin_pyvider.py");
    let report = probe("on", &[&python, &script]);
    assert!(
        report.contains("AutoMTLS certificate: ECDSA P-384"),
        "{report}"
    );
    // pyvider's certificate is not a CA; Go hosts accept it anyway.
    assert!(
        report.contains("warn  certificate shape: not a CA"),
        "{report}"
    );
    probe("off", &[&python, &script]);
}
