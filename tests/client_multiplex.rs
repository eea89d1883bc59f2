//! Our host asks for go-plugin's multiplexed gRPC (`ClientConfig::multiplex`,
//! the host examples' `--multiplex`): one connection to the plugin, a yamux
//! session whose streams carry the main gRPC connection and every brokered
//! one, each with its own TLS under AutoMTLS.
//!
//! - our `kv_plugin` and `counter_plugin` (whose broker dials the host's
//!   `AddHelper` through knocks): unix and TCP, plain and AutoMTLS; Kill
//!   leaves no process and no socket;
//! - a plugin that does not announce it: refused with go-plugin's words and
//!   killed (`required`), or used without (`preferred`);
//! - go-plugin's own plugins (ignored, they need the Go peers): v1.8.0
//!   multiplexed in every mode, and v1.4.9, which cannot, refused or used
//!   without.

mod common;

#[cfg(unix)]
use std::path::Path;
use std::process::Command;

use common::GoPlugin;

/// `host` (an example) with `--multiplex MODE` and `--mtls`, against
/// `plugin` and its arguments.
fn host(host: &str, mode: &str, mtls: bool, plugin: &[&std::ffi::OsStr]) -> common::Run {
    let mut cmd = Command::new(common::example(host));
    cmd.args([
        "--multiplex",
        mode,
        "--mtls",
        if mtls { "on" } else { "off" },
    ]);
    if host == "kv_host" {
        cmd.args(["--calls", "20"]);
    } else {
        cmd.args(["--calls", "10"]);
    }
    cmd.arg("--").args(plugin);
    common::run_capture(&mut cmd).labelled(format!("{host} --multiplex {mode}, mtls={mtls}"))
}

fn has(run: &common::Run, what: &str) {
    assert!(
        run.stdout.contains(what),
        "missing {what:?}:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// The host's checks passed, multiplexed, and Kill left nothing.
fn passes_multiplexed(run: &common::Run, mtls: bool, unix: bool) {
    run.assert_pass();
    has(run, &format!("mtls={mtls}, multiplexed=true"));
    has(run, "CHECK ok: Kill: plugin exited");
    if unix {
        has(run, "removed");
    }
}

fn kv_plugin(transport: &str) -> Vec<std::ffi::OsString> {
    vec![
        common::example("kv_plugin").into(),
        "--transport".into(),
        transport.into(),
    ]
}

fn os(args: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    args.iter().map(|a| a.as_os_str()).collect()
}

#[test]
fn kv_multiplexed_over_unix_and_tcp_plain_and_automtls() {
    let transports: &[&str] = if cfg!(unix) {
        &["unix", "tcp"]
    } else {
        &["tcp"]
    };
    for &transport in transports {
        for mtls in [false, true] {
            let plugin = kv_plugin(transport);
            let run = host("kv_host", "required", mtls, &os(&plugin));
            run.assert_pass();
            has(&run, &format!("mtls={mtls}, multiplexed=true"));
            let exited = if cfg!(windows) {
                "CHECK ok: Kill: plugin exited (Some(ExitStatus(ExitStatus(0))))"
            } else {
                "CHECK ok: Kill: plugin exited (Some(ExitStatus(unix_wait_status(0))))"
            };
            has(&run, exited);
            has(&run, &format!("handshake: {transport} "));
        }
    }
}

#[test]
fn brokered_callbacks_ride_the_session() {
    for mtls in [false, true] {
        let plugin = [common::example("counter_plugin").into_os_string()];
        let run = host("counter_host", "required", mtls, &os(&plugin));
        passes_multiplexed(&run, mtls, cfg!(unix));
        has(
            &run,
            "CHECK ok: Put x10 through the broker (AddHelper.Sum called 10 times)",
        );
        // The other way round: the plugin serves, the host dials.
        has(
            &run,
            "CHECK ok: the plugin's AddHelper through the broker: Sum(2, 3) = Ok(5)",
        );
    }
}

/// Our kv_plugin with `PLUGIN_MULTIPLEX_GRPC` taken out of its environment:
/// it then announces nothing (six fields). A shell wrapper: unix only.
#[cfg(unix)]
fn unannounced(dir: &Path) -> Vec<std::ffi::OsString> {
    let pidfile = dir.join("pid");
    vec![
        "/bin/sh".into(),
        "-c".into(),
        r#"echo $$ > "$1"; exec env -u PLUGIN_MULTIPLEX_GRPC "$2""#.into(),
        "sh".into(),
        pidfile.into(),
        common::example("kv_plugin").into(),
    ]
}

#[cfg(unix)]
#[test]
fn a_plugin_that_does_not_announce_it_is_refused_and_killed_when_required() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = unannounced(dir.path());
    let run = host("kv_host", "required", true, &os(&plugin));
    assert!(!run.status.success(), "{}", run.stdout);
    has(
        &run,
        "client requested gRPC broker multiplexing but plugin does not support the feature (its handshake line has no seventh field)",
    );
    let pid: u32 = std::fs::read_to_string(dir.path().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        common::wait_gone(pid, std::time::Duration::from_secs(5)),
        "the refused plugin {pid} still runs"
    );
}

#[cfg(unix)]
#[test]
fn a_plugin_that_does_not_announce_it_is_used_without_when_preferred() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = unannounced(dir.path());
    let run = host("kv_host", "preferred", true, &os(&plugin));
    run.assert_pass();
    has(&run, "mtls=true, multiplexed=false");
}

/// go-plugin v1.8.0's plugins, every mode: kv and the broker counter.
#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn go_plugin_v1_8_0_multiplexed_in_every_mode() {
    let peers = common::go_peers(GoPlugin::V1_8_0);
    for mtls in [false, true] {
        let run = host("kv_host", "required", mtls, &[peers.kvplugin.as_os_str()]);
        passes_multiplexed(&run, mtls, cfg!(unix));
        let run = host(
            "counter_host",
            "required",
            mtls,
            &[peers.counterplugin.as_os_str()],
        );
        passes_multiplexed(&run, mtls, cfg!(unix));
        has(
            &run,
            "CHECK ok: Put x10 through the broker (AddHelper.Sum called 10 times)",
        );
        // The other way round: the plugin serves, the host dials.
        has(
            &run,
            "CHECK ok: the plugin's AddHelper through the broker: Sum(2, 3) = Ok(5)",
        );
    }
}

/// go-plugin v1.4.9 predates multiplexing: refused when required (and
/// killed: Kill-free, the host returns at once), used without when
/// preferred.
#[test]
#[ignore = "needs the Go peers (go-plugin 1.4.9 as a Go module): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn go_plugin_v1_4_9_cannot_and_is_refused_or_used_without() {
    let peers = common::go_peers(GoPlugin::V1_4_9);
    let plugin = [peers.kvplugin.as_os_str()];
    let run = host("kv_host", "required", true, &plugin);
    assert!(!run.status.success(), "{}", run.stdout);
    has(
        &run,
        "client requested gRPC broker multiplexing but plugin does not support the feature",
    );
    let run = host("kv_host", "preferred", true, &plugin);
    run.assert_pass();
    has(&run, "mtls=true, multiplexed=false");
}
