//! The host side with real plugin processes: start, call, kill; drop;
//! cleanup; stdio and stderr forwarded; nothing left behind.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::{GetRequest, PutRequest};
use rpcplugin::client::StdioSink;
use rpcplugin::proto::plugin::stdio_data::Channel as StdioChannel;
use rpcplugin::{ClientConfig, HandshakeConfig};

fn kv_plugin() -> std::process::Command {
    std::process::Command::new(common::example("kv_plugin"))
}

use common::alive;

fn wait_gone(pid: u32) -> bool {
    common::wait_gone(pid, Duration::from_secs(2))
}

#[tokio::test]
async fn start_call_kill_with_and_without_automtls() {
    for mtls in [true, false] {
        let mut config = ClientConfig::new(HandshakeConfig::basic_example());
        if !mtls {
            config = config.danger_disable_auto_mtls();
        }
        let client = config.start(kv_plugin()).await.unwrap();
        assert_eq!(client.handshake().server_cert().is_some(), mtls);
        assert_eq!(client.version(), 1);
        client.ping().await.unwrap();
        let mut kv = KvClient::new(client.channel());
        kv.put(PutRequest {
            key: "a".into(),
            value: "b".into(),
        })
        .await
        .unwrap();
        assert_eq!(
            kv.get(GetRequest { key: "a".into() })
                .await
                .unwrap()
                .into_inner()
                .value,
            "b"
        );
        // A unix socket on unix, TCP on Windows, as go-plugin's plugins.
        let endpoint = client.handshake().endpoint();
        assert_eq!(
            endpoint.network(),
            if cfg!(windows) { "tcp" } else { "unix" }
        );
        let socket = endpoint.unix_path().map(ToOwned::to_owned);
        assert!(!client.exited());
        let status = client.kill().await.expect("an exit status");
        assert!(status.success(), "graceful exit after Shutdown: {status}");
        assert!(client.exited());
        assert_eq!(client.kill().await, Some(status), "kill is idempotent");
        assert!(!socket.is_some_and(|socket| socket.exists()));
        assert!(!alive(client.pid()));
    }
}

#[tokio::test]
async fn drop_kills_the_plugin() {
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(kv_plugin())
        .await
        .unwrap();
    let pid = client.pid();
    assert!(alive(pid));
    drop(client);
    assert!(
        wait_gone(pid),
        "plugin {pid} still alive after the Client was dropped"
    );
}

#[tokio::test]
async fn plugin_stdio_reaches_the_sink() {
    let seen: Arc<Mutex<Vec<(StdioChannel, String)>>> = Arc::default();
    let sink = {
        let seen = seen.clone();
        StdioSink::Handler(Arc::new(move |channel, data| {
            seen.lock()
                .unwrap()
                .push((channel, String::from_utf8_lossy(data).into_owned()));
        }))
    };
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .stdio(sink)
        .start(std::process::Command::new(common::example("stdio_plugin")))
        .await
        .unwrap();
    let mut kv = KvClient::new(client.channel());
    kv.put(PutRequest {
        key: "stdout".into(),
        value: "to the host's stdout".into(),
    })
    .await
    .unwrap();
    kv.put(PutRequest {
        key: "stderr".into(),
        value: "to the host's stderr".into(),
    })
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = seen.lock().unwrap().clone();
        let has =
            |ch: StdioChannel, text: &str| got.iter().any(|(c, s)| *c == ch && s.contains(text));
        if has(StdioChannel::Stdout, "to the host's stdout")
            && has(StdioChannel::Stderr, "to the host's stderr")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stdio not forwarded: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(client.kill().await.unwrap().success());
}

/// The error of a call whose plugin exits while serving it, within 30 s
/// (a call that would wait for ever fails the test instead).
async fn failed_with_its_plugin<T: std::fmt::Debug>(
    call: impl Future<Output = Result<T, tonic::Status>>,
) -> tonic::Status {
    let err = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call still waits 30 s after its plugin exited")
        .unwrap_err();
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
        ),
        "{err:?}"
    );
    err
}

#[tokio::test]
async fn a_plugin_that_dies_mid_call() {
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(std::process::Command::new(common::example("stdio_plugin")))
        .await
        .unwrap();
    let mut kv = KvClient::new(client.channel());
    failed_with_its_plugin(kv.put(PutRequest {
        key: "exit".into(),
        value: "3".into(),
    }))
    .await;
    let status = client.kill().await.expect("reaped");
    assert_eq!(status.code(), Some(3));
    if let Some(socket) = client.handshake().endpoint().unix_path() {
        assert!(
            !socket.exists(),
            "the dead plugin's socket was removed by the host"
        );
    }
}

/// A plugin that exits in the middle of a call while a copy it forked
/// still holds the call's connection open (no FIN reaches the host): the
/// client cuts its connections to a plugin that exited, so the call fails
/// instead of waiting for ever, and so does the next one; kill ends the
/// forked copy with the plugin's group.
#[cfg(unix)]
#[tokio::test]
async fn a_call_fails_when_its_plugin_exits_though_a_fork_holds_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("fork.pid");
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(std::process::Command::new(common::example("stdio_plugin")))
        .await
        .unwrap();
    let mut kv = KvClient::new(client.channel());
    let err = failed_with_its_plugin(kv.put(PutRequest {
        key: "fork-then-exit".into(),
        value: pidfile.to_str().unwrap().as_bytes().to_vec().into(),
    }))
    .await;
    let forked: u32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert!(alive(forked), "the forked copy {forked} holds the socket");
    let next = tokio::time::timeout(
        Duration::from_secs(30),
        kv.get(GetRequest { key: "x".into() }),
    )
    .await
    .expect("a call after the plugin exited does not wait")
    .unwrap_err();
    assert_eq!(next.code(), tonic::Code::Unavailable, "{next:?}");
    let said = (
        rpcplugin::log::Chain(&err).to_string(),
        rpcplugin::log::Chain(&next).to_string(),
    );
    assert!(said.0.contains("exited or was killed"), "{}", said.0);
    assert!(
        said.1.contains(&format!("(pid {}) exited", client.pid())),
        "{}",
        said.1
    );
    let status = client.kill().await.expect("reaped");
    assert_eq!(status.code(), Some(3));
    assert!(wait_gone(forked), "the forked copy {forked} survived kill");
}

/// The plugin's own children end with it: its process group on unix, its
/// job object on Windows.
#[tokio::test]
async fn a_plugins_children_do_not_survive_kill_or_drop() {
    for drop_it in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("child.pid");
        let client = ClientConfig::new(HandshakeConfig::basic_example())
            .start(std::process::Command::new(common::example("stdio_plugin")))
            .await
            .unwrap();
        KvClient::new(client.channel())
            .put(PutRequest {
                key: "spawn".into(),
                value: pidfile.to_str().unwrap().as_bytes().to_vec().into(),
            })
            .await
            .unwrap();
        let child: u32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
        assert!(alive(child), "the plugin's child {child} runs");
        let plugin = client.pid();
        if drop_it {
            drop(client);
        } else {
            assert!(client.kill().await.is_some());
        }
        assert!(wait_gone(plugin), "the plugin {plugin} survived");
        assert!(
            wait_gone(child),
            "the plugin's child {child} survived (drop: {drop_it})"
        );
    }
}

// A shell as the plugin's launcher.
#[cfg(unix)]
#[tokio::test]
async fn a_forked_child_holding_the_pipes_does_not_survive_kill() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let mut command = std::process::Command::new("sh");
    command.arg("-c").arg(format!(
        "sleep 1000 & echo $! > {}; exec {}",
        pidfile.display(),
        common::example("kv_plugin").display()
    ));
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(command)
        .await
        .unwrap();
    let child: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(child));
    let killed = tokio::time::timeout(Duration::from_secs(5), client.kill()).await;
    assert!(
        killed.is_ok(),
        "kill was not held up by the grandchild's pipes"
    );
    assert!(wait_gone(child), "the plugin's child {child} survived Kill");
}

#[tokio::test]
async fn socket_dir_and_port_range_reach_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let sockets = dir.path().join("plugins");
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .socket_dir(&sockets)
        .start(kv_plugin())
        .await
        .unwrap();
    // Windows: TCP, and no socket directory to use.
    if let Some(path) = client.handshake().endpoint().unix_path() {
        let path = path.to_owned();
        assert_eq!(path.parent().unwrap(), sockets);
        client.kill().await;
        assert!(!path.exists());
    } else {
        // Only on Windows: a unix plugin listens on a unix socket.
        let expected = if cfg!(unix) { "unix" } else { "tcp" };
        assert_eq!(client.handshake().endpoint().network(), expected);
        client.kill().await;
    }

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let first = taken.local_addr().unwrap().port();
    let mut command = kv_plugin();
    command.args(["--transport", "tcp"]);
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .port_range(rpcplugin::transport::PortRange::new(first, first + 20).unwrap())
        .start(command)
        .await
        .unwrap();
    let (_, port) = client.handshake().endpoint().tcp_parts().unwrap();
    assert!(port > first && port <= first + 20, "{port}");
    client.kill().await;
}
