//! The host against hostile and broken plugins, each a real misbehaving
//! process: it never hangs past its start timeout, never stops draining a
//! pipe, never signals a process it has not proven to be the plugin, and
//! never deletes a socket the plugin did not make.

// Unix only: shell scripts as plugins.
#![cfg(unix)]

mod common;

use common::fake_plugin as script;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rpcplugin::client::ConnectStep;
use rpcplugin::handshake::HandshakeError;
use rpcplugin::log::Chain;
use rpcplugin::{ClientConfig, ClientError, Endpoint, HandshakeConfig, ReattachConfig};

fn plain(timeout: Duration) -> ClientConfig {
    ClientConfig::new(HandshakeConfig::basic_example())
        .danger_disable_auto_mtls()
        .start_timeout(timeout)
}

/// Starts `body` under a 20 s start timeout, expects an error well before
/// it, and checks that the process is gone.
async fn fails_fast(body: &str) -> ClientError {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let started = Instant::now();
    let err = plain(Duration::from_secs(20))
        .start(script(&pidfile, body))
        .await
        .expect_err("start must fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?} to say: {err}",
        started.elapsed()
    );
    assert_gone(&pidfile, &err.to_string());
    err
}

/// The fake plugin whose pid is in `pidfile` is gone within 1 s.
fn assert_gone(pidfile: &Path, after: &str) {
    let pid: u32 = std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        common::wait_gone(pid, Duration::from_secs(1)),
        "plugin {pid} left behind after: {after}"
    );
}

#[tokio::test]
async fn a_first_line_that_is_not_utf8_fails_at_once() {
    let err = fails_fast(r"printf '1|1|unix|/tmp/\377\376|grpc\n'; exec sleep 30").await;
    match &err {
        ClientError::Handshake { line, source, .. } => {
            assert!(
                matches!(**source, HandshakeError::NotUtf8 { at: 14 }),
                "{err}"
            );
            assert!(line.contains('\u{fffd}'), "{line}");
        }
        other => panic!("{other:?}"),
    }
    assert!(Chain(&err).to_string().contains("not UTF-8"), "{err}");
}

#[tokio::test]
async fn stdout_closed_while_running_fails_at_once() {
    let err = fails_fast("echo 'about to close' >&2; exec sleep 30 >&-").await;
    assert!(
        matches!(&err, ClientError::StdoutClosed { stderr } if stderr == &["about to close"]),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_line_without_end_fails_at_the_cap() {
    let err = fails_fast("head -c 50000000 /dev/zero | tr '\\0' x; exec sleep 30").await;
    match &err {
        ClientError::Handshake { line, source, .. } => {
            assert!(
                matches!(**source, HandshakeError::LineTooLong { .. }),
                "{err}"
            );
            assert!(line.len() <= 1024, "the error holds {} bytes", line.len());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_line_printed_just_before_exit_is_read() {
    // A launcher that prints a line and exits: the line must win over the
    // exit every time (this one is refused for its version, which shows it
    // was read).
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let err = plain(Duration::from_secs(5))
            .start(script(
                &dir.path().join("pid"),
                "echo '1|99|tcp|127.0.0.1:1|grpc'",
            ))
            .await
            .expect_err("version 99 is not offered");
        match &err {
            ClientError::Handshake { source, .. } => assert!(
                matches!(
                    **source,
                    HandshakeError::IncompatibleAppVersion { plugin: 99, .. }
                ),
                "{err}"
            ),
            other => panic!("the exit won over the line: {other}"),
        }
    }
}

/// A unix socket that listens and never accepts: connects complete in its
/// backlog, and nothing is ever said.
fn silent_listener(dir: &Path) -> (std::os::unix::net::UnixListener, PathBuf) {
    let path = dir.join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    (listener, path)
}

#[tokio::test]
async fn a_silent_peer_fails_start_by_its_timeout_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let (_listener, path) = silent_listener(dir.path());
    let timeout = Duration::from_secs(2);

    // Plaintext: HTTP/2 starts without the server, the health check stalls.
    let body = format!("echo '1|1|unix|{}|grpc'; exec sleep 30", path.display());
    let started = Instant::now();
    let err = plain(timeout)
        .start(script(&dir.path().join("pid"), &body))
        .await
        .expect_err("nobody answers");
    let took = started.elapsed();
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    assert!(
        matches!(
            err,
            ClientError::Stalled {
                step: ConnectStep::HealthCheck | ConnectStep::Http2,
                ..
            }
        ),
        "{err}"
    );

    // AutoMTLS: the TLS handshake stalls.
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        cert.cert.der(),
    );
    let body = format!(
        "echo '1|1|unix|{}|grpc|{der}'; exec sleep 30",
        path.display()
    );
    let started = Instant::now();
    let err = ClientConfig::new(HandshakeConfig::basic_example())
        .start_timeout(timeout)
        .start(script(&dir.path().join("pid"), &body))
        .await
        .expect_err("nobody answers");
    let took = started.elapsed();
    assert!(took < timeout + Duration::from_secs(1), "took {took:?}");
    assert!(
        matches!(
            err,
            ClientError::Stalled {
                step: ConnectStep::TlsHandshake,
                ..
            }
        ),
        "{err}"
    );
    assert!(Chain(&err).to_string().contains("TLS handshake"), "{err}");
}

#[tokio::test]
async fn attach_to_a_silent_peer_is_bounded_too() {
    let dir = tempfile::tempdir().unwrap();
    let (_listener, path) = silent_listener(dir.path());
    let endpoint: Endpoint = path.to_str().unwrap().parse().unwrap();
    let config = ReattachConfig::new(1, endpoint, std::process::id(), true).unwrap();
    let started = Instant::now();
    let err = plain(Duration::from_secs(2))
        .attach(&config)
        .await
        .expect_err("nobody answers");
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    assert!(matches!(err, ClientError::Stalled { .. }), "{err}");
}

/// A process nobody would want killed: its pid, and a check that it lives.
struct Bystander(std::process::Child);

impl Bystander {
    fn start() -> Self {
        Bystander(
            std::process::Command::new("sleep")
                .arg("60")
                .spawn()
                .unwrap(),
        )
    }
    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_reattach_pid_that_is_not_the_plugin_is_never_signalled() {
    // A real plugin in debug mode, and a reattach configuration that names
    // its socket but another process's pid, with Test off (so a host would
    // kill it).
    let (mut plugin, real) = common::launch_debug();
    let mut bystander = Bystander::start();
    let mut config = real.clone();
    config.pid = bystander.0.id();
    config.test = false;
    let client = plain(Duration::from_secs(5))
        .attach(&config)
        .await
        .expect("the plugin answers");
    client.kill().await;
    assert!(
        bystander.alive(),
        "a process that was not the plugin was killed"
    );
    // The plugin itself was asked to shut down, and did.
    let gone = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = plugin.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = plugin.kill();
        false
    });
    assert!(gone.await.unwrap(), "the plugin did not stop on Shutdown");
}

#[tokio::test]
async fn reattach_pids_that_kill_would_misread_are_refused() {
    for pid in ["0", "-1", "4294967295", "2147483648"] {
        let json = format!(
            r#"{{"x":{{"Protocol":"grpc","ProtocolVersion":1,"Pid":{pid},"Test":false,"Addr":{{"Network":"unix","String":"/tmp/nothing"}}}}}}"#
        );
        let err = rpcplugin::reattach::ReattachProviders::from_json(&json).unwrap_err();
        assert!(Chain(&err).to_string().contains(pid), "{err}");
    }
    // A configuration whose pid was changed after it was made.
    let (mut plugin, mut config) = common::launch_debug();
    config.pid = u32::MAX;
    let err = plain(Duration::from_secs(5))
        .attach(&config)
        .await
        .expect_err("pid refused");
    assert!(matches!(err, ClientError::Reattach(_)), "{err}");
    let _ = plugin.kill();
    let _ = plugin.wait();
}

/// A socket file nobody listens on, made by this test (a stranger to the
/// plugin).
fn stale_socket(dir: &Path) -> PathBuf {
    let path = dir.join("someone-elses.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    path
}

#[tokio::test]
async fn a_socket_the_plugin_only_names_is_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let socket = stale_socket(dir.path());
    let body = format!("echo '1|1|unix|{}|grpc'; exec sleep 30", socket.display());
    let err = plain(Duration::from_secs(5))
        .start(script(&dir.path().join("pid"), &body))
        .await
        .expect_err("nothing listens there");
    assert!(socket.exists(), "deleted a socket it never made: {err}");
}

#[tokio::test]
async fn a_refused_plugin_leaves_no_socket() {
    // Our KV plugin serves version 1; a host that offers only 2 refuses its
    // line, after the plugin made its socket.
    let dir = tempfile::tempdir().unwrap();
    let err = ClientConfig::new(HandshakeConfig::basic_example())
        .versions([2])
        .socket_dir(dir.path())
        .start(std::process::Command::new(common::example("kv_plugin")))
        .await
        .expect_err("version 1 is not offered");
    assert!(
        matches!(&err, ClientError::Handshake { source, .. } if matches!(**source, HandshakeError::IncompatibleAppVersion { .. })),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test]
async fn the_checksum_is_of_the_file_exec_runs() {
    // PATH has a non-executable `plugin` first (exec skips it) and the real
    // KV plugin second: the checksum must be the KV plugin's.
    let dir = tempfile::tempdir().unwrap();
    let (skipped, real) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&skipped).unwrap();
    std::fs::create_dir(&real).unwrap();
    std::fs::write(skipped.join("plugin"), b"not this one").unwrap();
    let kv = std::fs::read(common::example("kv_plugin")).unwrap();
    std::fs::write(real.join("plugin"), &kv).unwrap();
    std::fs::set_permissions(real.join("plugin"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &kv);
    let mut command = std::process::Command::new("plugin");
    command.env("PATH", std::env::join_paths([&skipped, &real]).unwrap());
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .checksum_sha256(digest.as_ref().try_into().unwrap())
        .start(command)
        .await
        .expect("the file exec runs has this checksum");
    client.kill().await;
}

#[tokio::test]
async fn pipes_are_drained_whatever_bytes_they_carry() {
    // After the handshake, the plugin's family writes invalid UTF-8 and
    // then more lines on stdout and stderr; a closed pipe would kill the
    // writer with SIGPIPE before it leaves its mark.
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("mark");
    let writer = format!(
        "(sleep 0.3; printf 'bad \\377\\376\\n'; printf 'bad \\377\\376\\n' >&2; \
         i=0; while [ $i -lt 2000 ]; do echo \"stdout line $i\"; echo \"stderr line $i\" >&2; i=$((i+1)); done; \
         touch {}) &",
        mark.display()
    );
    let body = format!("{writer} exec {}", common::example("kv_plugin").display());
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(script(&dir.path().join("pid"), &body))
        .await
        .expect("the KV plugin starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mark.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(mark.exists(), "a writer to the plugin's pipes died");
    client.ping().await.expect("the plugin still serves");
    client.kill().await;
}

/// A plugin that says it multiplexes (the seventh field `true`) and then
/// speaks no yamux: garbage, or a frame header that claims 4 GiB. A host
/// that asked for multiplexing fails the start with an error naming the
/// endpoint, well within its timeout, kills the plugin, and holds no more
/// memory than a frame header.
#[tokio::test]
async fn a_multiplexing_plugin_that_speaks_garbage_fails_start() {
    use std::io::{Read, Write};
    // yamux: version 0, type 0 (data), flags SYN, stream 1, length 2^32-1.
    let huge_frame: &[u8] = &[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
    let garbage: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n\xff\xfe\xfd";
    for (what, reply) in [("garbage", garbage), ("a 4 GiB frame", huge_frame)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mux.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let reply = reply.to_vec();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let reply = reply.clone();
                std::thread::spawn(move || {
                    let _ = conn.write_all(&reply);
                    let mut sink = [0u8; 4096];
                    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
                });
            }
        });
        let pidfile = dir.path().join("pid");
        let body = format!(
            "echo '1|1|unix|{}|grpc||true'; exec sleep 30",
            path.display()
        );
        let timeout = Duration::from_secs(10);
        let started = Instant::now();
        let err = plain(timeout)
            .multiplex(rpcplugin::client::Multiplex::Required)
            .start(script(&pidfile, &body))
            .await
            .expect_err(what);
        let took = started.elapsed();
        assert!(took < timeout, "{what}: took {took:?}: {err}");
        let text = Chain(&err).to_string();
        assert!(text.contains(&path.display().to_string()), "{what}: {text}");
        assert!(
            matches!(err, ClientError::Multiplex { .. }) && text.contains("yamux"),
            "{what}: {text}"
        );
        assert_gone(&pidfile, &format!("{what}: {text}"));
        // The socket is the test's, not the plugin's: it stays.
        assert!(path.exists(), "{what}");
    }
}
