//! A plugin started without its magic cookie prints go-plugin's text on
//! stderr and exits 1; with the cookie it carries on.

use std::process::Command;

use rpcplugin::HandshakeConfig;
use rpcplugin::handshake::COOKIE_MISMATCH_TEXT;

/// The process under test: run by `cookie_check_exits_like_go_plugin` in a
/// child process; does nothing unless that test set the marker.
#[test]
fn child_enforce_cookie() {
    if std::env::var_os("RPCPLUGIN_TEST_COOKIE_CHILD").is_none() {
        return;
    }
    HandshakeConfig::basic_example().enforce_cookie();
    eprintln!("CHILD: cookie accepted");
}

fn run_child(cookie: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_enforce_cookie",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("RPCPLUGIN_TEST_COOKIE_CHILD", "1")
    .env_remove("BASIC_PLUGIN");
    if let Some(value) = cookie {
        cmd.env("BASIC_PLUGIN", value);
    }
    cmd.output().unwrap()
}

#[test]
fn cookie_check_exits_like_go_plugin() {
    for wrong in [None, Some("goodbye")] {
        let out = run_child(wrong);
        assert_eq!(out.status.code(), Some(1), "{wrong:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(COOKIE_MISMATCH_TEXT), "{stderr}");
        assert!(!stderr.contains("CHILD: cookie accepted"));
        // Nothing of ours on stdout: only the test harness's own lines.
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("This binary is a plugin"), "{stdout}");
    }
    let out = run_child(Some("hello"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHILD: cookie accepted"));
}
