//! `rpcplugin probe` passes the plugins of real peers: go-plugin's (Go:
//! 1.0.1 from Debian, 1.4.9 and 1.8.0 as Go modules, one test per version)
//! and pyvider-rpcplugin 0.5.5's (Python), with and without AutoMTLS.

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;

/// Probes `plugin`; `label` names its peer in failure messages.
fn probe(label: &dyn std::fmt::Display, mtls: &str, plugin: &[&Path]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .args(["probe", "--mtls", mtls, "--"])
        .args(plugin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{label}: {stdout}");
    assert!(stdout.ends_with("RESULT: PASS\n"), "{label}: {stdout}");
    stdout
}

go_plugin_tests! {
    fn go_plugins_pass(v) {
        let peers = common::go_peers(v);
        for plugin in [&peers.kvplugin, &peers.counterplugin] {
            let report = probe(&v, "on", &[plugin]);
            assert!(
                report.contains("AutoMTLS certificate: ECDSA P-521"),
                "{v}: {report}"
            );
            if v.has_grpc_stdio() {
                assert!(report.contains("ok    GRPCStdio:"), "{v}: {report}");
            } else {
                // go-plugin 1.0.1 has no GRPCStdio (it came in 1.2): a warning only.
                assert!(report.contains("warn  GRPCStdio:"), "{v}: {report}");
            }
            assert!(report.contains("hclog JSON"), "{v}: {report}");
            // go-plugin supports multiplexing from 1.6.
            let multiplexing = match v {
                common::GoPlugin::V1_8_0 => "info  multiplexing: supported",
                _ => "info  multiplexing: not announced",
            };
            assert!(report.contains(multiplexing), "{v}: {report}");
            probe(&v, "off", &[plugin]);
        }
    }
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn pyvider_plugins_pass() {
    let python = common::peers_python();
    let script = common::crate_dir().join("tests/interop/python/kv_plugin_pyvider.py");
    let report = probe(&"pyvider-rpcplugin 0.5.5", "on", &[&python, &script]);
    assert!(
        report.contains("AutoMTLS certificate: ECDSA P-384"),
        "{report}"
    );
    // pyvider's certificate is not a CA; Go hosts accept it anyway.
    assert!(
        report.contains("warn  certificate shape: not a CA"),
        "{report}"
    );
    assert!(
        report.contains("info  multiplexing: not announced"),
        "{report}"
    );
    probe(&"pyvider-rpcplugin 0.5.5", "off", &[&python, &script]);
}
