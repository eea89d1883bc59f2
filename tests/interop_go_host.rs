//! go-plugin hosts (Go: 1.0.1 from Debian, 1.4.9 and 1.8.0 as Go modules)
//! launch our `kv_plugin` over unix and TCP, plain and AutoMTLS: handshake,
//! health, Put/Get, NOT_FOUND, a 1 MiB value, then Kill — the plugin must
//! exit by itself well inside go-plugin's 2 s and remove its socket. Every
//! test runs once per version (modules `v1_0_1`, `v1_4_9`, `v1_8_0`).

#[macro_use]
mod common;

use std::process::Command;

use common::GoPlugin;

fn go_host_drives_kv_plugin(v: GoPlugin, mtls: bool, transport: &str) {
    let peers = common::go_peers(v);
    let mut cmd = Command::new(&peers.kvhost);
    if mtls {
        cmd.arg("-mtls");
    }
    cmd.args(["-calls", "50", "--"])
        .arg(common::example("kv_plugin"))
        .args(["--transport", transport]);
    let run = common::run_capture(&mut cmd).labelled(v);
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
            "{v}: missing {check:?}:\n{}",
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
        "{v}: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("mtls={mtls}")),
        "{v}: {}",
        run.stdout
    );
    if transport == "unix" {
        assert!(
            run.stdout.contains("CHECK ok: socket"),
            "{v}: {}",
            run.stdout
        );
    }
}

go_plugin_tests! {
    fn go_host_unix_plain(v) {
        go_host_drives_kv_plugin(v, false, "unix");
    }

    fn go_host_unix_automtls(v) {
        go_host_drives_kv_plugin(v, true, "unix");
    }

    fn go_host_tcp_plain(v) {
        go_host_drives_kv_plugin(v, false, "tcp");
    }

    fn go_host_tcp_automtls(v) {
        go_host_drives_kv_plugin(v, true, "tcp");
    }

    /// The same host against go-plugin's own plugin of the same version:
    /// proves the host checks what a real go-plugin plugin does, so its
    /// verdicts on ours mean something.
    fn go_host_drives_go_plugin_as_a_baseline(v) {
        let peers = common::go_peers(v);
        for mtls in [true, false] {
            let mut cmd = Command::new(&peers.kvhost);
            if mtls {
                cmd.arg("-mtls");
            }
            cmd.args(["-calls", "10", "--"]).arg(&peers.kvplugin);
            common::run_capture(&mut cmd)
                .labelled(format!("{v}, mtls={mtls}"))
                .assert_pass();
        }
    }
}
