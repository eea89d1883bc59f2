//! The GRPCBroker against go-plugin 1.0.1 (Debian), both directions: the
//! Go counter host drives our `counter_plugin`, and our `counter_host`
//! drives the Go counter plugin. The plugin's `Put` dials an `AddHelper`
//! the host serves through the broker, as in go-plugin's bidirectional
//! example.

mod common;

use std::process::Command;

fn go_host(mtls: bool, transport: &str) {
    let peers = common::go_peers();
    let dir = tempfile::tempdir().unwrap();
    let mut host = Command::new(&peers.counterhost);
    if mtls {
        host.arg("-mtls");
    }
    host.args(["-calls", "20", "--"])
        .arg(common::example("counter_plugin"))
        .args(["--transport", transport])
        .env("PLUGIN_UNIX_SOCKET_DIR", dir.path());
    let run = common::run_capture(&mut host);
    run.assert_pass();
    for check in [
        "CHECK ok: Put x20 through the broker (AddHelper.Sum called 20 times)",
        "CHECK ok: Get(hits) = 20",
        "CHECK ok: Get(x) = 5",
        "CHECK ok: Kill: plugin exited by itself",
        &format!("mtls={mtls}"),
    ] {
        assert!(run.stdout.contains(check), "{check:?}:\n{}", run.stdout);
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_rust_plugin_unix_plain() {
    go_host(false, "unix");
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_rust_plugin_unix_automtls() {
    go_host(true, "unix");
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn go_host_rust_plugin_tcp_automtls() {
    go_host(true, "tcp");
}

fn rust_host(mtls: bool) -> common::Run {
    let peers = common::go_peers();
    let mut host = Command::new(common::example("counter_host"));
    host.args(["--mtls", if mtls { "on" } else { "off" }, "--calls", "20"])
        .arg("--")
        .arg(&peers.counterplugin);
    common::run_capture(&mut host)
}

#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn rust_host_go_plugin_plain() {
    let run = rust_host(false);
    run.assert_pass();
    assert!(
        run.stdout
            .contains("CHECK ok: Put x20 through the broker (AddHelper.Sum called 20 times)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("CHECK ok: 22 brokered sockets removed"),
        "{}",
        run.stdout
    );
}

/// go-plugin 1.0.1's plugin side dials a host's brokered server verifying
/// its certificate against the system roots under the name "unused"
/// (hashicorp/go-plugin#109, fixed after 1.0.1), so no host can serve it a
/// callback with AutoMTLS. This records that the failure is the Go
/// plugin's, reported as such, and that the host still ends it cleanly.
#[test]
#[ignore = "needs the Go peers (Debian go-plugin 1.0.1): run .ci/install-peers, then cargo test -- --ignored"]
fn rust_host_go_plugin_automtls_meets_go_plugin_1_0_1s_broker_tls_fault() {
    let run = rust_host(true);
    assert!(!run.status.success(), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("certificate is valid for localhost, not unused"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("CHECK ok: Kill: plugin exited by itself"),
        "{}",
        run.stdout
    );
}
