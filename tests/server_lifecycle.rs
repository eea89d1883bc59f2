//! The plugin side as a go-plugin host sees it: `kv_plugin` launched as a
//! real process, stopped by GRPCController.Shutdown or SIGTERM, refusing
//! bad input with an error that names it, logging hclog JSON on stderr.

// Unix only: signals and unix sockets.
#![cfg(unix)]

mod common;

use std::process::Command;
use std::time::Duration;

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::{GetRequest, PutRequest};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rpcplugin::proto::plugin::Empty;
use rpcplugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// go-plugin's host waits this long after Shutdown before SIGKILL.
const GO_PLUGIN_GRACE: Duration = Duration::from_secs(2);

fn kv_plugin() -> std::path::PathBuf {
    common::example("kv_plugin")
}

async fn health(channel: tonic::transport::Channel, service: &str) -> i32 {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn shutdown_rpc_exits_zero_and_removes_the_socket() {
    let mut plugin = common::launch(&kv_plugin(), &[], &[]);
    let socket = plugin
        .line
        .endpoint()
        .unix_path()
        .expect("unix by default")
        .to_owned();
    assert!(socket.exists());
    let channel = plugin.channel().await;
    assert_eq!(
        health(channel.clone(), "plugin").await,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        health(channel.clone(), "").await,
        ServingStatus::Serving as i32
    );
    let mut kv = KvClient::new(channel.clone());
    kv.put(PutRequest {
        key: "k".into(),
        value: "v".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        kv.get(GetRequest { key: "k".into() })
            .await
            .unwrap()
            .into_inner()
            .value,
        "v"
    );
    assert_eq!(
        kv.get(GetRequest { key: "x".into() })
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );

    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    let status = plugin
        .wait_exit(GO_PLUGIN_GRACE)
        .expect("exited by itself within 2 s");
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "socket removed on shutdown");
}

#[tokio::test]
async fn sigterm_is_the_same_graceful_stop() {
    let mut plugin = common::launch(&kv_plugin(), &[], &[]);
    let socket = plugin.line.endpoint().unix_path().unwrap().to_owned();
    kill(Pid::from_raw(plugin.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = plugin
        .wait_exit(GO_PLUGIN_GRACE)
        .expect("exited after SIGTERM");
    assert!(status.success(), "{status}");
    assert!(
        !socket.exists(),
        "socket removed after SIGTERM (go-plugin leaves it behind)"
    );
}

#[tokio::test]
async fn sighup_and_sigquit_are_the_same_graceful_stop() {
    for signal in [Signal::SIGHUP, Signal::SIGQUIT] {
        let mut plugin = common::launch(&kv_plugin(), &[], &[]);
        let socket = plugin.line.endpoint().unix_path().unwrap().to_owned();
        {
            let mut kv = KvClient::new(plugin.channel().await);
            kv.put(PutRequest {
                key: "k".into(),
                value: "v".into(),
            })
            .await
            .unwrap();
        }
        kill(Pid::from_raw(plugin.child.id() as i32), signal).unwrap();
        let status = plugin
            .wait_exit(GO_PLUGIN_GRACE)
            .unwrap_or_else(|| panic!("still running 2 s after {signal}"));
        assert!(status.success(), "{signal}: {status}");
        assert!(!socket.exists(), "{signal}: socket left behind");
    }
}

#[tokio::test]
async fn multiplex_false_gets_the_seventh_field_but_no_yamux() {
    // go-plugin 1.8.0's plugins print `true` ("supported") for any
    // non-empty PLUGIN_MULTIPLEX_GRPC, and multiplex only when it parses as
    // true; `false` leaves a plain gRPC connection (tests/server_multiplex.rs
    // has the multiplexed side, with go-plugin's hosts).
    let plugin = common::launch(&kv_plugin(), &[], &[("PLUGIN_MULTIPLEX_GRPC", "false")]);
    assert_eq!(plugin.line.multiplex(), Some(true), "{}", plugin.raw_line);
    let mut kv = KvClient::new(plugin.channel().await);
    kv.put(PutRequest {
        key: "k".into(),
        value: "v".into(),
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn sigint_is_ignored() {
    let mut plugin = common::launch(&kv_plugin(), &[], &[]);
    kill(Pid::from_raw(plugin.child.id() as i32), Signal::SIGINT).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        plugin.child.try_wait().unwrap().is_none(),
        "still running after SIGINT"
    );
    let mut kv = KvClient::new(plugin.channel().await);
    kv.put(PutRequest {
        key: "k".into(),
        value: "v".into(),
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn health_turns_not_serving_and_a_watch_stream_does_not_hold_up_exit() {
    let mut plugin = common::launch(&kv_plugin(), &[], &[]);
    let channel = plugin.channel().await;
    let mut watch = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    let status = plugin
        .wait_exit(GO_PLUGIN_GRACE)
        .expect("exited although a Watch stream was open");
    assert!(status.success());
}

#[tokio::test]
async fn garbage_protocol_versions_are_reported_and_skipped() {
    let mut plugin = common::launch(&kv_plugin(), &[], &[("PLUGIN_PROTOCOL_VERSIONS", "x,1, 2")]);
    assert_eq!(plugin.line.app_version(), 1);
    GrpcControllerClient::new(plugin.channel().await)
        .shutdown(Empty {})
        .await
        .unwrap();
    plugin.wait_exit(GO_PLUGIN_GRACE).unwrap();
    let stderr = plugin.stderr();
    assert!(
        stderr.contains("server sent invalid plugin version \"x\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("server sent invalid plugin version \" 2\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn tcp_follows_the_port_range() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let first = taken.local_addr().unwrap().port();
    let range = [
        ("PLUGIN_MIN_PORT", first.to_string()),
        ("PLUGIN_MAX_PORT", (first + 20).to_string()),
    ];
    let env: Vec<(&str, &str)> = range.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut plugin = common::launch(&kv_plugin(), &["--transport", "tcp"], &env);
    let (_, port) = plugin.line.endpoint().tcp_parts().expect("tcp");
    assert!(port > first && port <= first + 20, "{}", plugin.raw_line);
    GrpcControllerClient::new(plugin.channel().await)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit(GO_PLUGIN_GRACE).unwrap().success());
}

/// kv_plugin with `RPCPLUGIN_LOG=filter`, shut down: its stderr and
/// endpoint address.
async fn stderr_with_log_filter(filter: &str) -> (String, String) {
    let mut plugin = common::launch(&kv_plugin(), &[], &[("RPCPLUGIN_LOG", filter)]);
    GrpcControllerClient::new(plugin.channel().await)
        .shutdown(Empty {})
        .await
        .unwrap();
    plugin.wait_exit(GO_PLUGIN_GRACE).unwrap();
    (plugin.stderr(), plugin.line.endpoint().address())
}

#[tokio::test]
async fn hclog_json_lines_on_stderr() {
    let (stderr, address_field) = stderr_with_log_filter("debug").await;
    let entries: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    let address = entries
        .iter()
        .find(|e| e["@message"] == "plugin address")
        .unwrap_or_else(|| panic!("no 'plugin address' entry in {stderr}"));
    assert_eq!(address["@level"], "debug");
    assert_eq!(address["@module"], "kv_plugin");
    assert_eq!(address["network"], "unix");
    assert_eq!(address["address"], address_field);
    let ts = address["@timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), "2026-11-22T02:29:14.127443Z".len(), "{ts}");
}

/// `RPCPLUGIN_LOG` filters per target: `info,rpcplugin=debug` shows the
/// library's debug events, `debug,rpcplugin=info` hides them.
#[tokio::test]
async fn log_filter_per_target() {
    for (filter, shown) in [
        ("info,rpcplugin=debug", true),
        ("debug,rpcplugin=info", false),
    ] {
        let (stderr, _) = stderr_with_log_filter(filter).await;
        assert_eq!(
            stderr.contains(r#""@message":"plugin address""#),
            shown,
            "RPCPLUGIN_LOG={filter}: {stderr}"
        );
    }
}

/// A filter that does not parse: `init_logging` says so, naming the
/// variable, its value and the bad level (kv_plugin prints that, before
/// its handshake line, and serves without logs).
#[tokio::test]
async fn bad_log_filter_is_named() {
    let (stderr, _) = stderr_with_log_filter("rpcplugin=loud").await;
    assert!(
        stderr.starts_with(
            r#"kv_plugin: RPCPLUGIN_LOG="rpcplugin=loud" is not a valid log filter: error parsing level filter"#
        ),
        "{stderr}"
    );
}

/// Runs kv_plugin to completion with `env`, expecting it to refuse to start.
/// Returns its stderr.
fn refused(env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(kv_plugin());
    cmd.env("BASIC_PLUGIN", "hello");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout {stdout:?}, stderr {stderr:?}"
    );
    assert_eq!(stdout, "", "no handshake line, nothing on stdout");
    stderr
}

#[test]
fn missing_or_wrong_cookie_prints_go_plugins_text() {
    for cookie in [None, Some("nope")] {
        let mut cmd = Command::new(kv_plugin());
        cmd.env_remove("BASIC_PLUGIN");
        if let Some(c) = cookie {
            cmd.env("BASIC_PLUGIN", c);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(rpcplugin::handshake::COOKIE_MISMATCH_TEXT),
            "{stderr}"
        );
    }
}

#[test]
fn a_client_cert_that_is_not_pem_is_refused() {
    let stderr = refused(&[("PLUGIN_CLIENT_CERT", "not a certificate")]);
    assert!(
        stderr.contains("PLUGIN_CLIENT_CERT is not a usable certificate"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_socket_group_is_refused() {
    let stderr = refused(&[("PLUGIN_UNIX_SOCKET_GROUP", "no-such-group-rpcplugin")]);
    assert!(
        stderr.contains("unknown group \"no-such-group-rpcplugin\""),
        "{stderr}"
    );
}

#[test]
fn a_socket_dir_too_long_for_sun_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("d".repeat(100));
    let stderr = refused(&[("PLUGIN_UNIX_SOCKET_DIR", long.to_str().unwrap())]);
    assert!(stderr.contains(long.to_str().unwrap()), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "limit of {} bytes",
            rpcplugin::transport::SUN_PATH_MAX
        )),
        "{stderr}"
    );
    assert!(!long.exists());
}

#[test]
fn an_unwritable_socket_dir_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut cmd = Command::new(kv_plugin());
    cmd.env("BASIC_PLUGIN", "hello")
        .env("PLUGIN_UNIX_SOCKET_DIR", &locked);
    if nix::unistd::geteuid().is_root() {
        cmd.uid(65534).gid(65534); // root ignores directory permissions
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(locked.to_str().unwrap()) && stderr.contains("ermission denied"),
        "{stderr}"
    );
}

#[test]
fn a_socket_dir_others_may_write_in_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = refused(&[("PLUGIN_UNIX_SOCKET_DIR", dir.path().to_str().unwrap())]);
    assert!(
        stderr.contains(&format!(
            "refusing socket directory {}",
            dir.path().display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("mode 0777"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_socket_dir_that_is_a_dangling_link_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sockets");
    std::os::unix::fs::symlink("/nonexistent-rpcplugin", &link).unwrap();
    let stderr = refused(&[("PLUGIN_UNIX_SOCKET_DIR", link.to_str().unwrap())]);
    assert!(
        stderr.contains(link.to_str().unwrap())
            && stderr.contains("symbolic link to /nonexistent-rpcplugin, which does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("File exists"), "{stderr}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
}

#[tokio::test]
async fn multi_megabyte_messages_flow_both_ways() {
    let mut plugin = common::launch(&kv_plugin(), &[], &[]);
    let channel = plugin.channel().await;
    let mut kv = KvClient::new(channel.clone())
        .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
        .max_encoding_message_size(rpcplugin::MAX_MESSAGE_SIZE);
    // A large Terraform provider schema is a few MiB; well past tonic's
    // 4 MiB default and many HTTP/2 windows.
    let big = bytes::Bytes::from((0..24 << 20).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    kv.put(PutRequest {
        key: "schema".into(),
        value: big.clone(),
    })
    .await
    .unwrap();
    let back = kv
        .get(GetRequest {
            key: "schema".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .value;
    assert!(back == big, "24 MiB came back changed");
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit(GO_PLUGIN_GRACE).unwrap().success());
}
