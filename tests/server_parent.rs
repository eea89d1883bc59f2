//! A host SIGKILLed: its plugin notices that its parent died, stops as on
//! `Shutdown` and removes its socket. go-plugin's plugins live on.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A stand-in host: `stdio_plugin --launch` starts the plugin with
/// go-plugin's environment (set here, inherited) and its stdout, says the
/// plugin's pid, and idles, until we kill it (SIGKILL on unix,
/// `TerminateProcess` on Windows).
fn host_with_plugin(dir: &std::path::Path) -> (std::process::Child, u32, String) {
    let mut host = Command::new(common::example("stdio_plugin"))
        .arg("--launch")
        .arg(common::example("kv_plugin"))
        .env("BASIC_PLUGIN", "hello")
        .env("PLUGIN_PROTOCOL_VERSIONS", "1")
        .env("PLUGIN_UNIX_SOCKET_DIR", dir)
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
    // A unix socket, or TCP on Windows.
    let socket = line.endpoint().unix_path().map(ToOwned::to_owned);
    assert!(socket.as_ref().is_none_or(|socket| socket.exists()));
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
    assert!(
        !socket.is_some_and(|socket| socket.exists()),
        "the plugin removed its socket"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
