//! A host SIGKILLed: its plugin notices that its parent died, stops as on
//! `Shutdown` and removes its socket. go-plugin's plugins live on.

// Unix only: a shell is the stand-in host, killed with SIGKILL.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A stand-in host: a shell that launches the plugin with go-plugin's
/// environment, says the plugin's pid, and waits, until we SIGKILL it.
fn host_with_plugin(dir: &std::path::Path) -> (std::process::Child, u32, String) {
    let script = format!(
        "BASIC_PLUGIN=hello PLUGIN_PROTOCOL_VERSIONS=1 PLUGIN_UNIX_SOCKET_DIR='{}' '{}' & echo \"pid $!\"; wait",
        dir.display(),
        common::example("kv_plugin").display()
    );
    let mut host = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    let (mut pid, mut line) = (None, None);
    while pid.is_none() || line.is_none() {
        let text = lines.next().expect("the host's output").unwrap();
        match text.strip_prefix("pid ") {
            Some(p) => pid = Some(p.parse().unwrap()),
            None => line = Some(text),
        }
    }
    // Keep reading, so the plugin never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (host, pid.unwrap(), line.unwrap())
}

#[test]
fn a_plugin_stops_when_its_host_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, plugin, line) = host_with_plugin(dir.path());
    let line = rpcplugin::handshake::HandshakeLine::parse(&line).unwrap();
    let socket = line.endpoint().unix_path().unwrap().to_path_buf();
    assert!(socket.exists());
    assert!(common::alive(plugin));

    let killed = Instant::now();
    host.kill().unwrap();
    host.wait().unwrap();
    assert!(
        common::wait_gone(plugin, Duration::from_secs(10)),
        "the plugin outlived its host"
    );
    eprintln!(
        "plugin gone {:.0?} after its host was killed",
        killed.elapsed()
    );
    assert!(!socket.exists(), "the plugin removed its socket");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
