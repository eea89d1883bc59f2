//! `rpcplugin probe` against plugins that pass and plugins that fail, each
//! failure named in the report.

// Unix only: shell scripts as plugins.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Probed {
    passed: bool,
    stdout: String,
}

fn probe(args: &[&str], plugin: &[&str]) -> Probed {
    let out = Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .arg("probe")
        .args(args)
        .arg("--")
        .args(plugin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let passed = out.status.success();
    assert_eq!(
        passed,
        stdout.contains("RESULT: PASS") || stdout.contains("\"passed\":true"),
        "the exit status says what the report says:\n{stdout}"
    );
    Probed { passed, stdout }
}

fn example(name: &str) -> String {
    common::example(name).to_str().unwrap().to_owned()
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn assert_line(probed: &Probed, line: &str) {
    assert!(
        probed
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with(line)),
        "no line starting {line:?}:\n{}",
        probed.stdout
    );
}

#[test]
fn our_plugins_pass() {
    for (args, plugin) in [
        (vec![], vec![example("kv_plugin")]),
        (
            vec!["--mtls", "off"],
            vec![example("kv_plugin"), "--transport".into(), "tcp".into()],
        ),
        (vec![], vec![example("counter_plugin")]),
    ] {
        let plugin: Vec<&str> = plugin.iter().map(String::as_str).collect();
        let probed = probe(&args, &plugin);
        assert!(probed.passed, "{}", probed.stdout);
        assert_line(&probed, "ok    stdout before the handshake line: nothing");
        assert_line(&probed, "ok    GRPCController.Shutdown: answered");
        assert_line(&probed, "ok    GRPCStdio: stream opened");
        assert_line(
            &probed,
            "ok    launched without the cookie: exit status: 1; stdout empty",
        );
        assert_line(&probed, "info  multiplexing: supported (seventh field true");
    }
}

#[test]
fn the_report_as_json() {
    let probed = probe(&["--json"], &[&example("kv_plugin")]);
    let report: serde_json::Value = serde_json::from_str(probed.stdout.trim()).unwrap();
    assert_eq!(report["passed"], true);
    let checks = report["checks"].as_array().unwrap();
    let cert = checks
        .iter()
        .find(|c| c["name"] == "AutoMTLS certificate")
        .unwrap();
    assert_eq!(cert["outcome"], "pass");
    assert_eq!(cert["required"], true);
    assert!(
        cert["detail"].as_str().unwrap().starts_with("ECDSA P-256,"),
        "{cert}"
    );
}

#[test]
fn a_plugin_that_prints_garbage_fails() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = script(dir.path(), "garbage", "echo 'hello, I am a plugin'");
    let probed = probe(&[], &[&garbage]);
    assert!(!probed.passed);
    assert_line(
        &probed,
        "FAIL  stdout before the handshake line: 1 line(s): \"hello, I am a plugin\"; go-plugin hosts fail with \"Unrecognized remote plugin message: hello, I am a plugin\"",
    );
    assert_line(
        &probed,
        "FAIL  handshake line: stdout closed before a handshake line; exit status: 0",
    );

    let bad_line = script(
        dir.path(),
        "bad_line",
        "echo '1|1|carrier-pigeon|coop|grpc'; sleep 1",
    );
    let probed = probe(&[], &[&bad_line]);
    assert!(!probed.passed);
    assert_line(
        &probed,
        "FAIL  handshake line: \"1|1|carrier-pigeon|coop|grpc\": ",
    );
}

#[test]
fn a_plugin_that_prints_before_its_line_fails() {
    let dir = tempfile::tempdir().unwrap();
    let chatty = script(
        dir.path(),
        "chatty",
        &format!("echo 'starting up...'\nexec {}", example("kv_plugin")),
    );
    let probed = probe(&[], &[&chatty]);
    assert!(!probed.passed, "{}", probed.stdout);
    assert_line(
        &probed,
        "FAIL  stdout before the handshake line: 1 line(s): \"starting up...\"",
    );
    // It chatters without the cookie too; everything else is fine.
    assert_line(
        &probed,
        "FAIL  launched without the cookie: exit status: 1; stdout \"starting up...\"",
    );
    assert_line(&probed, "ok    handshake line: 1|1|unix|");
    assert_eq!(
        probed
            .stdout
            .lines()
            .filter(|l| l.starts_with("  FAIL"))
            .count(),
        2,
        "{}",
        probed.stdout
    );
}

#[test]
fn a_plugin_without_grpc_controller_fails() {
    let probed = probe(&["--mtls", "off"], &[&example("bare_plugin")]);
    assert!(!probed.passed);
    assert_line(&probed, "ok    health \"plugin\": SERVING");
    assert_line(
        &probed,
        "FAIL  GRPCController.Shutdown: code: 'Operation is not implemented or not supported'",
    );
    assert_line(
        &probed,
        "FAIL  exit after Shutdown: still running 2s after Shutdown",
    );
    assert_line(&probed, "warn  GRPCStdio:");
    // The probe killed it, and removed the socket it left.
    let socket = probed
        .stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("ok    address: unix "))
        .and_then(|rest| rest.split(' ').next())
        .expect("the address line")
        .to_owned();
    assert!(
        !std::path::Path::new(&socket).exists(),
        "{socket} left behind"
    );
}

#[test]
fn a_plugin_launched_with_a_wrong_cookie_fails() {
    let probed = probe(
        &["--cookie", "BASIC_PLUGIN=wrong"],
        &[&example("kv_plugin")],
    );
    assert!(!probed.passed);
    assert_line(
        &probed,
        "FAIL  handshake line: stdout closed before a handshake line; exit status: 1; stderr ends: \"This binary is a plugin.",
    );
    assert_line(&probed, "skip  health \"plugin\": no handshake line");
}

#[test]
fn a_bad_cookie_argument_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .args(["probe", "--cookie", "NOEQUALS", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"NOEQUALS\" is not KEY=VALUE"), "{stderr}");
}

/// With `--terraform`, the probe calls the negotiated protocol's schema
/// RPC: our example provider passes on 6 and on 5; a v5 provider offered
/// as protocol 6 (through `ServeConfig::version`, which cannot look inside
/// its routes) fails, as it would under Terraform.
#[test]
fn terraform_providers_are_checked_on_the_negotiated_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let provider = example("terraform_provider");
    let probed = probe(&["--terraform"], &[&provider]);
    assert!(probed.passed, "{}", probed.stdout);
    assert_line(
        &probed,
        "ok    Terraform provider schema: tfplugin6 GetProviderSchema: 1 resources, 1 data sources",
    );

    let v5 = script(
        dir.path(),
        "v5",
        &format!("EXAMPLE_PROVIDER=v5 exec {provider}"),
    );
    let probed = probe(&["--terraform"], &[&v5]);
    assert!(probed.passed, "{}", probed.stdout);
    assert_line(
        &probed,
        "ok    Terraform provider schema: tfplugin5 GetSchema: 1 resources, 1 data sources",
    );

    let wrong = script(
        dir.path(),
        "wrong",
        &format!("EXAMPLE_PROVIDER=v5-routes-as-6 exec {provider}"),
    );
    let probed = probe(&["--terraform"], &[&wrong]);
    assert!(!probed.passed, "{}", probed.stdout);
    let failed = probed
        .stdout
        .lines()
        .find(|l| l.contains("Terraform provider schema:"))
        .unwrap_or_else(|| panic!("no schema check:\n{}", probed.stdout));
    assert!(
        failed.trim_start().starts_with("FAIL")
            && failed.contains("tfplugin6 GetProviderSchema")
            && failed.contains("not served"),
        "{failed}"
    );
}
