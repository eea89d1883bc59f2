//! Memory the host and the probe hold for a plugin's output stays bounded,
//! however much it prints: a gigabyte without a newline, or a gigabyte of
//! lines, on stdout or stderr. Measured as the test process's own peak RSS
//! (the host) and its largest reaped child's (the probe).

// Unix only: shell scripts as plugins.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use rpcplugin::{ClientConfig, HandshakeConfig};

/// What each case without a newline prints: 1 GiB (cut at the line cap,
/// so it costs the reader little work).
const FLOOD: &str = "1073741824";

/// What the case of lines prints: 256 MiB, some 4.8 million lines, each
/// parsed and re-logged (a debug build of the host takes most of a minute
/// for them on a loaded 2-core machine).
const LINES: &str = "268435456";

/// The bound the host and the probe must stay under, above where they
/// started.
const BUDGET_KIB: u64 = 64 * 1024;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts the KV plugin behind `writer` (shell run in the background in the
/// plugin's group, which touches `mark` when done), waits for the writer,
/// and checks the plugin still answers.
async fn host_survives(dir: &Path, writer: &str) {
    let mark = dir.join("mark");
    let _ = std::fs::remove_file(&mark);
    let body = format!(
        "({writer}; touch {}) & exec {}",
        mark.display(),
        common::example("kv_plugin").display()
    );
    let mut command = std::process::Command::new("sh");
    command.arg("-c").arg(body);
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(command)
        .await
        .expect("the KV plugin starts");
    let deadline = Instant::now() + Duration::from_secs(240);
    while !mark.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mark.exists(), "the writer did not finish: {writer}");
    client.ping().await.expect("the plugin still serves");
    client.kill().await;
}

#[tokio::test]
#[ignore = "pushes gigabytes through pipes (one to three minutes); .ci/run runs it"]
async fn a_gigabyte_of_output_costs_the_host_and_the_probe_little() {
    let dir = tempfile::tempdir().unwrap();
    let before = peak_rss_kib();
    let no_newline = format!("head -c {FLOOD} /dev/zero | tr '\\0' x");
    let lines =
        format!("yes 'a plugin log line, as Terraform providers write them' | head -c {LINES}");
    for (what, writer) in [
        (
            "1 GiB of stderr without a newline",
            format!("{no_newline} >&2"),
        ),
        ("256 MiB of stderr lines", format!("{lines} >&2")),
        (
            "1 GiB of stdout without a newline, after the handshake line",
            format!("sleep 0.3; {no_newline}"),
        ),
    ] {
        host_survives(dir.path(), &writer).await;
        let grown = peak_rss_kib().saturating_sub(before);
        eprintln!("host peak RSS after {what}: +{} MiB", grown / 1024);
        assert!(grown < BUDGET_KIB, "{what}: the host grew by {grown} KiB");
    }

    // The probe, on a plugin that prints 256 MiB of stderr lines and then
    // nothing on stdout (it waits for a line that never comes).
    let script = dir.path().join("flood");
    std::fs::write(&script, format!("#!/bin/sh\n{lines} >&2\nexit 1\n")).unwrap();
    std::fs::set_permissions(
        &script,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
    )
    .unwrap();
    let mut probe = std::process::Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .args(["probe", "--mtls", "off", "--"])
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The probe's own peak, read from /proc while it runs (it only grows).
    let status = format!("/proc/{}/status", probe.id());
    let mut probe_kib = 0;
    while let Ok(None) = probe.try_wait() {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            probe_kib = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut report = String::new();
    std::io::Read::read_to_string(&mut probe.stdout.take().unwrap(), &mut report).unwrap();
    assert!(report.contains("FAIL  handshake line"), "{report}");
    eprintln!(
        "probe peak RSS with a plugin flooding stderr with lines: {} MiB",
        probe_kib / 1024
    );
    assert!(
        probe_kib > 0 && probe_kib < BUDGET_KIB,
        "the probe peaked at {probe_kib} KiB"
    );
}
