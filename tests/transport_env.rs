//! go-plugin's environment for listeners: PLUGIN_MIN_PORT/PLUGIN_MAX_PORT,
//! PLUGIN_UNIX_SOCKET_DIR and PLUGIN_UNIX_SOCKET_GROUP. Environment
//! variables are process-wide, so this binary holds one test that sets them
//! in turn on a single thread.

// Unix only: unix sockets and groups.
#![cfg(unix)]

use std::net::{Ipv4Addr, TcpListener as StdListener};
use std::os::unix::fs::MetadataExt;

use rpcplugin::Transport;
use rpcplugin::transport::{EnvError, TcpTransport, UnixTransport};

fn set(var: &str, value: &str) {
    // SAFETY: this test binary runs a single test on a current-thread
    // runtime; no other thread reads the environment meanwhile.
    unsafe { std::env::set_var(var, value) }
}

fn unset(var: &str) {
    // SAFETY: as in `set`.
    unsafe { std::env::remove_var(var) }
}

#[tokio::test(flavor = "current_thread")]
async fn listeners_follow_go_plugins_environment() {
    // Port range: the first free port of the range.
    let taken = StdListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let first = taken.local_addr().unwrap().port();
    set("PLUGIN_MIN_PORT", &first.to_string());
    set("PLUGIN_MAX_PORT", &(first + 10).to_string());
    let tcp = TcpTransport::from_env().unwrap();
    let (endpoint, _incoming) = tcp.listen().await.unwrap();
    let (host, port) = endpoint.tcp_parts().unwrap();
    assert_eq!(host.to_string(), "127.0.0.1");
    assert!(port > first && port <= first + 10, "{port}");
    tcp.close().await.unwrap();

    // Bad values name the variable and the value.
    set("PLUGIN_MIN_PORT", "ten");
    let err = TcpTransport::from_env().unwrap_err();
    assert!(
        err.to_string().contains("PLUGIN_MIN_PORT") && err.to_string().contains("\"ten\""),
        "{err}"
    );
    set("PLUGIN_MIN_PORT", "2000");
    set("PLUGIN_MAX_PORT", "1000");
    assert!(matches!(
        TcpTransport::from_env(),
        Err(EnvError::InvertedPortRange {
            min: 2000,
            max: 1000
        })
    ));
    unset("PLUGIN_MIN_PORT");
    unset("PLUGIN_MAX_PORT");
    let (endpoint, _incoming) = TcpTransport::from_env().unwrap().listen().await.unwrap();
    assert_ne!(endpoint.tcp_parts().unwrap().1, 0);

    // Socket directory and group.
    let dir = tempfile::tempdir().unwrap();
    let sockets = dir.path().join("plugin-sockets");
    set("PLUGIN_UNIX_SOCKET_DIR", sockets.to_str().unwrap());
    set("PLUGIN_UNIX_SOCKET_GROUP", "daemon");
    let unix = UnixTransport::from_env().unwrap();
    let (endpoint, _incoming) = unix.listen().await.unwrap();
    let path = endpoint.unix_path().unwrap().to_owned();
    assert_eq!(path.parent().unwrap(), sockets);
    let daemon = nix::unistd::Group::from_name("daemon").unwrap().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().gid(), daemon.gid.as_raw());
    unix.close().await.unwrap();
    assert!(!path.exists());

    set("PLUGIN_UNIX_SOCKET_GROUP", "2");
    let unix = UnixTransport::from_env().unwrap();
    let (endpoint, _incoming) = unix.listen().await.unwrap();
    assert_eq!(
        std::fs::metadata(endpoint.unix_path().unwrap())
            .unwrap()
            .gid(),
        2
    );
    unix.close().await.unwrap();

    set("PLUGIN_UNIX_SOCKET_GROUP", "no-such-group-rpcplugin");
    let err = UnixTransport::from_env().unwrap_err();
    assert!(matches!(&err, EnvError::UnknownGroup { group } if group == "no-such-group-rpcplugin"));
    unset("PLUGIN_UNIX_SOCKET_GROUP");

    // Without PLUGIN_UNIX_SOCKET_DIR: the temporary directory.
    unset("PLUGIN_UNIX_SOCKET_DIR");
    set("TMPDIR", dir.path().to_str().unwrap());
    let unix = UnixTransport::from_env().unwrap();
    let (endpoint, _incoming) = unix.listen().await.unwrap();
    assert_eq!(endpoint.unix_path().unwrap().parent().unwrap(), dir.path());
    unix.close().await.unwrap();
}
