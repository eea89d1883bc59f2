//! Plugins that fail to start, as real processes: each ends in a typed
//! error that says why, and no process of the plugin is left behind.

mod common;

#[cfg(unix)]
use common::fake_plugin as script;

use std::time::Duration;

#[cfg(unix)]
use rpcplugin::handshake::HandshakeError;
use rpcplugin::log::Chain;
use rpcplugin::{ClientConfig, ClientError, HandshakeConfig};

fn plain() -> ClientConfig {
    ClientConfig::new(HandshakeConfig::basic_example())
        .danger_disable_auto_mtls()
        .start_timeout(Duration::from_secs(5))
}

/// Starts `body`, expects an error, and checks that the process is gone.
#[cfg(unix)]
async fn fails(config: ClientConfig, body: &str) -> ClientError {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let err = config
        .start(script(&pidfile, body))
        .await
        .expect_err("start must fail");
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        let pid: u32 = pid.trim().parse().unwrap();
        let gone = common::wait_gone(pid, Duration::from_secs(1));
        assert!(gone, "plugin process {pid} left behind after: {err}");
    }
    err
}

// A shell script as the plugin.
#[cfg(unix)]
#[tokio::test]
async fn garbage_instead_of_a_handshake_line() {
    let err = fails(plain(), "echo 'hello, I am not a plugin'; exec sleep 30").await;
    match &err {
        ClientError::Handshake { line, source, .. } => {
            assert_eq!(line, "hello, I am not a plugin");
            assert!(matches!(**source, HandshakeError::Unrecognized { .. }));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        Chain(&err)
            .to_string()
            .contains("Unrecognized remote plugin message"),
        "{err}"
    );
}

// A shell script as the plugin.
#[cfg(unix)]
#[tokio::test]
async fn exits_before_its_line_with_its_stderr() {
    let err = fails(plain(), "echo 'fatal: cannot read config' >&2; exit 4").await;
    match &err {
        ClientError::ExitedBeforeHandshake { status, stderr } => {
            assert_eq!(status.code(), Some(4));
            assert!(
                stderr
                    .iter()
                    .any(|l| l.contains("fatal: cannot read config")),
                "{stderr:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        Chain(&err)
            .to_string()
            .contains("fatal: cannot read config"),
        "{err}"
    );
}

// A shell script as the plugin.
#[cfg(unix)]
#[tokio::test]
async fn prints_nothing_until_the_start_timeout() {
    let config = plain().start_timeout(Duration::from_millis(300));
    let err = fails(config, "echo 'still loading' >&2; exec sleep 30").await;
    match &err {
        ClientError::StartTimeout { timeout, stderr } => {
            assert_eq!(*timeout, Duration::from_millis(300));
            assert!(
                stderr.iter().any(|l| l.contains("still loading")),
                "{stderr:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

// A shell script as the plugin.
#[cfg(unix)]
#[tokio::test]
async fn other_core_version_app_version_or_netrpc() {
    let err = fails(plain(), "echo '2|1|unix|/tmp/x|grpc|'; exec sleep 30").await;
    assert!(
        Chain(&err)
            .to_string()
            .contains("Incompatible core API version with plugin. Plugin version: 2"),
        "{err}"
    );
    let err = fails(plain(), "echo '1|7|unix|/tmp/x|grpc|'; exec sleep 30").await;
    assert!(
        Chain(&err).to_string().contains(
            "Incompatible API version with plugin. Plugin version: 7, Client versions: [1]"
        ),
        "{err}"
    );
    let err = fails(plain(), "echo '1|1|unix|/tmp/x|netrpc|'; exec sleep 30").await;
    assert!(
        Chain(&err)
            .to_string()
            .contains("Unsupported plugin protocol \"netrpc\". Supported: [grpc]"),
        "{err}"
    );
    // No protocol field at all means netrpc to go-plugin.
    let err = fails(plain(), "echo '1|1|unix|/tmp/x'; exec sleep 30").await;
    assert!(
        Chain(&err)
            .to_string()
            .contains("Unsupported plugin protocol \"netrpc\""),
        "{err}"
    );
}

// A shell script as the plugin.
#[cfg(unix)]
#[tokio::test]
async fn automtls_without_a_certificate_in_the_line() {
    let config = ClientConfig::new(HandshakeConfig::basic_example());
    let err = fails(config, "echo '1|1|unix|/tmp/x|grpc|'; exec sleep 30").await;
    assert!(
        matches!(err, ClientError::NoServerCertificate { .. }),
        "{err:?}"
    );
}

// A shell script as the plugin.
#[cfg(unix)]
#[tokio::test]
async fn a_line_pointing_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no.sock");
    let err = fails(
        plain(),
        &format!("echo '1|1|unix|{}|grpc|'; exec sleep 30", nowhere.display()),
    )
    .await;
    assert!(
        Chain(&err).to_string().contains(nowhere.to_str().unwrap()),
        "{err}"
    );
}

// A shell script as the plugin.
#[cfg(unix)]
// A shell script as the plugin.
#[cfg(unix)]
#[tokio::test]
async fn checksum_mismatch_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let plugin = dir.path().join("plugin.sh");
    std::fs::write(&plugin, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let err = plain()
        .checksum_sha256([7; 32])
        .start(std::process::Command::new(&plugin))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ClientError::ChecksumMismatch { .. }),
        "{err:?}"
    );
    assert!(
        !marker.exists(),
        "the plugin ran despite the checksum mismatch"
    );
}

#[tokio::test]
async fn a_program_that_does_not_exist() {
    let err = plain()
        .start(std::process::Command::new("/nonexistent/plugin"))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Spawn { .. }), "{err:?}");
    assert!(
        Chain(&err).to_string().contains("/nonexistent/plugin"),
        "{err}"
    );
}
