//! A `start` future dropped part way (a `tokio::time::timeout`, a
//! `select!` with Ctrl-C) ends the plugin's process group and removes the
//! socket it announced, once the kernel says the plugin listens there;
//! never a socket the plugin did not make.

// Unix only: shell scripts as plugins and unix sockets.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fake_plugin as script;
use rpcplugin::{ClientConfig, HandshakeConfig};

/// A plugin (its own process: the script execs python) that listens on
/// `socket`, announces it, and never accepts: a start waits for HTTP/2 and
/// the health check until its timeout, or until it is dropped.
fn silent_plugin(pidfile: &Path, socket: &Path) -> std::process::Command {
    let listen = "import socket, sys, time\n\
        s = socket.socket(socket.AF_UNIX)\n\
        s.bind(sys.argv[1])\n\
        s.listen(8)\n\
        print(\"1|1|unix|\" + sys.argv[1] + \"|grpc\", flush=True)\n\
        time.sleep(60)\n";
    script(
        pidfile,
        &format!("exec python3 -c '{listen}' {}", socket.display()),
    )
}

/// A plugin that announces `socket` without making it, and never answers.
fn lying_plugin(pidfile: &Path, socket: &Path) -> std::process::Command {
    script(
        pidfile,
        &format!("echo '1|1|unix|{}|grpc'; exec sleep 60", socket.display()),
    )
}

fn pid_in(pidfile: &Path) -> u32 {
    std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Starts `command` with a 20 s start timeout and drops the start once
/// `ready` holds (the plugin has printed its line) and 300 ms more have
/// passed for the host to read it, before the start can finish.
async fn start_then_drop(command: std::process::Command, ready: impl Fn() -> bool) {
    let config = ClientConfig::new(HandshakeConfig::basic_example())
        .danger_disable_auto_mtls()
        .start_timeout(Duration::from_secs(20));
    let start = config.start(command);
    tokio::pin!(start);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "the plugin never got ready");
        tokio::select! {
            started = &mut start => panic!("the start finished: {started:?}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    tokio::select! {
        started = &mut start => panic!("the start finished: {started:?}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
}

fn wait_removed(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while path.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[tokio::test]
async fn a_dropped_start_kills_the_plugin_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (pidfile, socket): (PathBuf, PathBuf) = (dir.path().join("pid"), dir.path().join("p.sock"));
    start_then_drop(silent_plugin(&pidfile, &socket), || socket.exists()).await;
    let pid = pid_in(&pidfile);
    assert!(
        common::wait_gone(pid, Duration::from_secs(2)),
        "plugin {pid} outlived its dropped start"
    );
    assert!(
        wait_removed(&socket, Duration::from_secs(3)),
        "the plugin's socket {} outlived its dropped start",
        socket.display()
    );
}

#[tokio::test]
async fn a_dropped_start_leaves_a_socket_the_plugin_did_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // A bystander's socket, listening in this process: the plugin names it
    // as its own.
    let bystander = dir.path().join("bystander.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&bystander).unwrap();
    start_then_drop(lying_plugin(&pidfile, &bystander), || pidfile.exists()).await;
    let pid = pid_in(&pidfile);
    assert!(
        common::wait_gone(pid, Duration::from_secs(2)),
        "plugin {pid} left"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        bystander.exists(),
        "a socket the plugin did not make was removed"
    );
}
