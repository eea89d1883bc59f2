//! The GRPCBroker against go-plugin (Go: 1.0.1 from Debian, 1.4.9 and 1.8.0
//! as Go modules), both directions: the Go counter host drives our
//! `counter_plugin`, and our `counter_host` drives the Go counter plugin.
//! The plugin's `Put` dials an `AddHelper` the host serves through the
//! broker, as in go-plugin's bidirectional example, and the host dials one
//! the plugin serves (`ServeAdder`). Every test runs once
//! per version (modules `v1_0_1`, `v1_4_9`, `v1_8_0`).

#[macro_use]
mod common;

use std::process::Command;

use common::GoPlugin;

/// The broker the other way round: the plugin serves its own AddHelper
/// (`ServeAdder`) and the host dials it, as the Go host and ours say it.
const PLUGIN_SUM_GO: &str = "CHECK ok: the plugin's AddHelper through the broker: Sum(2, 3) = 5";
const PLUGIN_SUM_RUST: &str =
    "CHECK ok: the plugin's AddHelper through the broker: Sum(2, 3) = Ok(5)";

fn go_host(v: GoPlugin, mtls: bool, transport: &str) {
    let peers = common::go_peers(v);
    let dir = tempfile::tempdir().unwrap();
    let mut host = Command::new(&peers.counterhost);
    if mtls {
        host.arg("-mtls");
    }
    host.args(["-calls", "20", "--"])
        .arg(common::example("counter_plugin"))
        .args(["--transport", transport])
        .env("PLUGIN_UNIX_SOCKET_DIR", dir.path());
    let run = common::run_capture(&mut host).labelled(v);
    run.assert_pass();
    for check in [
        "CHECK ok: Put x20 through the broker (AddHelper.Sum called 20 times)",
        "CHECK ok: Get(hits) = 20",
        "CHECK ok: Get(x) = 5",
        PLUGIN_SUM_GO,
        "CHECK ok: Kill: plugin exited by itself",
        &format!("mtls={mtls}"),
    ] {
        assert!(
            run.stdout.contains(check),
            "{v}: {check:?}:\n{}",
            run.stdout
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{v}: left behind: {left:?}");
}

fn rust_host(v: GoPlugin, mtls: bool) -> common::Run {
    let peers = common::go_peers(v);
    let mut host = Command::new(common::example("counter_host"));
    host.args(["--mtls", if mtls { "on" } else { "off" }, "--calls", "20"])
        .arg("--")
        .arg(&peers.counterplugin);
    common::run_capture(&mut host).labelled(format!("{v}, mtls={mtls}"))
}

fn rust_host_passes(v: GoPlugin, mtls: bool) {
    let run = rust_host(v, mtls);
    run.assert_pass();
    assert!(
        run.stdout
            .contains("CHECK ok: Put x20 through the broker (AddHelper.Sum called 20 times)"),
        "{v}: {}",
        run.stdout
    );
    assert!(run.stdout.contains(PLUGIN_SUM_RUST), "{v}: {}", run.stdout);
    // 20 brokered AddHelpers of Put(hits) and 2 of Put(x).
    assert!(
        run.stdout.contains("CHECK ok: 22 brokered sockets removed"),
        "{v}: {}",
        run.stdout
    );
}

go_plugin_tests! {
    fn go_host_rust_plugin_unix_plain(v) {
        go_host(v, false, "unix");
    }

    fn go_host_rust_plugin_unix_automtls(v) {
        go_host(v, true, "unix");
    }

    fn go_host_rust_plugin_tcp_automtls(v) {
        go_host(v, true, "tcp");
    }

    fn rust_host_go_plugin_plain(v) {
        rust_host_passes(v, false);
    }

    /// go-plugin 1.0.1's plugin side dials a host's brokered server
    /// verifying its certificate against the system roots under the name
    /// "unused" (hashicorp/go-plugin#109, fixed in later versions), so no
    /// host can serve it a callback with AutoMTLS. For 1.0.1 this records
    /// that the failure is the Go plugin's, reported as such, and that the
    /// host still ends it cleanly; later versions must pass.
    fn rust_host_go_plugin_automtls(v) {
        if !v.has_broker_tls_fault() {
            rust_host_passes(v, true);
            return;
        }
        let run = rust_host(v, true);
        assert!(!run.status.success(), "{v}: {}", run.stdout);
        assert!(
            run.stdout
                .contains("certificate is valid for localhost, not unused"),
            "{v}: {}",
            run.stdout
        );
        assert!(
            run.stdout
                .contains("CHECK ok: Kill: plugin exited by itself"),
            "{v}: {}",
            run.stdout
        );
    }
}
