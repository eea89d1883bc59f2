//! A pyvider-rpcplugin 0.5.5 host (Python, from PyPI) launches our
//! `kv_plugin` with the basic example's cookie: handshake, health, Put/Get,
//! NOT_FOUND, a 1 MiB value, then Shutdown — the plugin exits by itself and
//! removes its socket.
//!
//! Over a plaintext unix socket grpcio sends the socket path, percent-encoded,
//! as the HTTP/2 `:authority`, which h2 alone would reject: the unix plain
//! case proves the plugin's `:authority` normalizer against the real client.

mod common;

use std::process::Command;

fn pyvider_host_drives_kv_plugin(tls: bool, transport: &str) {
    let mut cmd = Command::new(common::peers_python());
    cmd.arg(common::crate_dir().join("tests/interop/python/kv_host_pyvider.py"));
    if tls {
        cmd.arg("--tls");
    }
    cmd.args(["--calls", "50", "--"])
        .arg(common::example("kv_plugin"))
        .args(["--transport", transport]);
    let run = common::run_capture(&mut cmd);
    run.assert_pass();
    for check in [
        "CHECK ok: health check on service \"plugin\": SERVING",
        "CHECK ok: Put(hello, world) then Get(hello) == b'world'",
        "CHECK ok: Get(missing) -> NOT_FOUND",
        "CHECK ok: 1 MiB value round trip",
        "CHECK ok: plugin exited by itself",
    ] {
        assert!(
            run.stdout.contains(check),
            "missing {check:?}:\n{}",
            run.stdout
        );
    }
    let mode = if tls { "mTLS" } else { "plaintext" };
    assert!(
        run.stdout.contains(&format!("({transport}, {mode})")),
        "{}",
        run.stdout
    );
    if transport == "unix" {
        assert!(run.stdout.contains("removed after exit"), "{}", run.stdout);
    }
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn pyvider_host_tcp_plain() {
    pyvider_host_drives_kv_plugin(false, "tcp");
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn pyvider_host_tcp_automtls() {
    pyvider_host_drives_kv_plugin(true, "tcp");
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn pyvider_host_unix_plain() {
    pyvider_host_drives_kv_plugin(false, "unix");
}

#[test]
#[ignore = "needs the Python peers (pyvider-rpcplugin 0.5.5): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn pyvider_host_unix_automtls() {
    pyvider_host_drives_kv_plugin(true, "unix");
}
