//! Our host asks for multiplexed gRPC (go-plugin ≥ 1.6) only when told to
//! (`ClientConfig::multiplex`, tests/client_multiplex.rs). Not told:
//! - a `PLUGIN_MULTIPLEX_GRPC` in the host's own environment must not reach
//!   the plugin (which would then multiplex a connection the host does not;
//!   go-plugin's host passes it on, and breaks);
//! - the handshake line's seventh field is ignored, whatever it says, as
//!   go-plugin's host ignores it unless it asked.
//!
//! Real processes: our `kv_host` example with `PLUGIN_MULTIPLEX_GRPC=true`
//! in its environment, against our `kv_plugin` behind shell wrappers, and
//! against go-plugin v1.8.0's KV plugin (Go, ignored: it needs the peers).

// Unix only: shell wrappers around the plugin.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::Command;

/// `kv_host` with `PLUGIN_MULTIPLEX_GRPC=true` in its own environment,
/// plain and AutoMTLS, against `plugin` (run by `sh -c script sh ARGS`).
fn kv_host_with_multiplex_env(label: &str, script: &str, args: &[&Path]) {
    for mtls in ["off", "on"] {
        let run = common::run_capture(
            Command::new(common::example("kv_host"))
                .args(["--mtls", mtls, "--calls", "5", "--launches", "1", "--"])
                .args(["/bin/sh", "-c", script, "sh"])
                .args(args)
                .env("PLUGIN_MULTIPLEX_GRPC", "true"),
        )
        .labelled(format!("{label}, mtls {mtls}"));
        run.assert_pass();
        assert!(
            run.stdout.contains("CHECK ok: Kill: plugin exited"),
            "{label}: {}",
            run.stdout
        );
    }
}

#[test]
fn the_host_does_not_pass_on_its_own_multiplex_variable() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("plugin-env");
    // Records the plugin's environment, then becomes our kv_plugin.
    kv_host_with_multiplex_env(
        "env recorder",
        r#"env > "$1"; exec "$2""#,
        &[&env_file, &common::example("kv_plugin")],
    );
    let env = std::fs::read_to_string(&env_file).unwrap();
    // The file is the plugin's environment: it has the host's cookie.
    assert!(env.lines().any(|l| l == "BASIC_PLUGIN=hello"), "{env}");
    assert!(
        !env.contains("PLUGIN_MULTIPLEX_GRPC"),
        "the plugin got the host's PLUGIN_MULTIPLEX_GRPC:\n{env}"
    );
}

#[test]
fn the_host_ignores_a_seventh_field_it_did_not_ask_for() {
    // Our kv_plugin, with a seventh field appended to its handshake line.
    for seventh in ["true", "false", "yes"] {
        let script = format!(
            r#""$1" | {{ IFS= read -r line; printf '%s|{seventh}\n' "$line"; exec cat; }}"#
        );
        kv_host_with_multiplex_env(
            &format!("seventh field {seventh}"),
            &script,
            &[&common::example("kv_plugin")],
        );
    }
}

/// go-plugin v1.8.0's KV plugin: the host's `PLUGIN_MULTIPLEX_GRPC=true`
/// must not reach it (it would print `|true` and wrap its listener in
/// yamux); and given `PLUGIN_MULTIPLEX_GRPC=false` by a wrapper, it prints
/// a seventh field `true` without multiplexing, which the host ignores.
#[test]
#[ignore = "needs the Go peers (go-plugin 1.8.0 as a Go module): run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn go_plugin_v1_8_0_with_multiplex_env_in_the_host() {
    let v = common::GoPlugin::V1_8_0;
    let plugin = &common::go_peers(v).kvplugin;
    kv_host_with_multiplex_env(&format!("{v}"), r#"exec "$1""#, &[plugin]);

    // The premise of the second half: what v1.8.0 prints when told `false`.
    let launched = common::launch(plugin, &[], &[("PLUGIN_MULTIPLEX_GRPC", "false")]);
    assert!(
        launched.raw_line.trim_end().ends_with("|true"),
        "{v}: {:?}",
        launched.raw_line
    );
    drop(launched);
    kv_host_with_multiplex_env(
        &format!("{v} told PLUGIN_MULTIPLEX_GRPC=false"),
        r#"PLUGIN_MULTIPLEX_GRPC=false exec "$1""#,
        &[plugin],
    );
}
