//! `rpcplugin probe` against hostile plugins: it never panics on what a
//! plugin prints, never waits longer than it says, and never leaves the
//! plugin running, whichever way it ends.

// Unix only: shell scripts as plugins.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Writes an executable shell script that records its pid in `pid`.
fn script(dir: &Path, body: &str) -> String {
    let path: PathBuf = dir.join("plugin");
    let pidfile = dir.join("pid");
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho $$ > {}\n{body}\n", pidfile.display()),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn plugin_pid(dir: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("pid"))
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the plugin never started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn probe(plugin: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rpcplugin"));
    command
        .args(["probe", "--mtls", "off", "--"])
        .arg(plugin)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn garbage_and_silence_fails_at_once_and_leaves_no_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = script(dir.path(), "echo 'hello, I am a plugin'\nexec sleep 60");
    let started = Instant::now();
    let out = probe(&plugin).output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    // A go-plugin host fails at once; the probe waits 0.5 s for a real line
    // (the relaunch without the cookie is cut at 5 s).
    assert!(took < Duration::from_secs(8), "took {took:?}:\n{stdout}");
    assert!(
        stdout.contains("FAIL  handshake line: no handshake line; go-plugin hosts take"),
        "{stdout}"
    );
    assert!(common::wait_gone(
        plugin_pid(dir.path()),
        Duration::from_secs(1)
    ));
}

#[test]
fn a_multibyte_address_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Past 40 bytes, the probe shortens a field to its first 16 bytes; here
    // byte 16 falls inside an 'é'. The escape sequence must not reach the
    // terminal.
    let address = format!("/x/\\033[2J{}", "é".repeat(30));
    let plugin = script(
        dir.path(),
        &format!("printf '1|1|unix|{address}|grpc\\n'\nexec sleep 60"),
    );
    let out = probe(&plugin).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("RESULT: FAIL"), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains('\u{1b}'),
        "plugin output reached the terminal raw:\n{stdout}"
    );
    assert!(common::wait_gone(
        plugin_pid(dir.path()),
        Duration::from_secs(1)
    ));
}

#[test]
fn a_signal_to_the_probe_kills_the_plugin() {
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let dir = tempfile::tempdir().unwrap();
        // Silent: the probe waits for its line for 20 s.
        let plugin = script(dir.path(), "exec sleep 60");
        let mut child = probe(&plugin).spawn().unwrap();
        let pid = plugin_pid(dir.path());
        std::thread::sleep(Duration::from_millis(200));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{signal}");
        assert!(
            common::wait_gone(pid, Duration::from_secs(1)),
            "{signal} left plugin {pid} running"
        );
    }
}

#[test]
fn zero_launches_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .args(["probe", "--launches", "0", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--launches"), "{stderr}");
}

#[test]
fn a_silent_peer_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let plugin = script(
        dir.path(),
        &format!("echo '1|1|unix|{}|grpc'\nexec sleep 60", socket.display()),
    );
    let started = Instant::now();
    let out = probe(&plugin).output().unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    // 5 s to connect and check health, then the relaunch without the
    // cookie (at most 5 s).
    assert!(took < Duration::from_secs(12), "took {took:?}:\n{stdout}");
    assert!(stdout.contains("did not finish within"), "{stdout}");
    assert!(
        socket.exists(),
        "the probe removed a socket the plugin did not make"
    );
}
