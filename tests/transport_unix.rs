//! The unix transport's table: what `listen` and `close` do with whatever is
//! at the socket path. Nothing that is not our stale socket may be removed.

// Unix only: unix sockets.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rpcplugin::Transport;
use rpcplugin::transport::{
    ConnectError, EnvError, ListenError, SUN_PATH_MAX, SocketGroup, UnixTransport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;

fn ino(path: &Path) -> u64 {
    fs::symlink_metadata(path).unwrap().ino()
}

fn is_socket(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Listens, then proves the listener serves: a client's bytes come back.
async fn listen_and_echo(transport: &UnixTransport) -> PathBuf {
    let (endpoint, mut incoming) = transport.listen().await.expect("listen");
    let path = endpoint.unix_path().unwrap().to_owned();
    let server = tokio::spawn(async move {
        let mut conn = incoming.next().await.unwrap().unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.unwrap();
        conn.write_all(&buf).await.unwrap();
    });
    let mut client = transport.connect(&endpoint).await.expect("connect");
    client.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    server.await.unwrap();
    path
}

#[tokio::test]
async fn nothing_at_the_path_binds_with_mode_0660() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sock");
    let transport = UnixTransport::new(&path);
    assert_eq!(listen_and_echo(&transport).await, path);
    assert!(is_socket(&path));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    transport.close().await.unwrap();
    assert!(!path.exists(), "close removes our socket");
}

#[tokio::test]
async fn stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(StdListener::bind(&path).unwrap()); // closed without unlinking
    assert!(is_socket(&path));
    // Binding over a file that is still there fails with EADDRINUSE, so a
    // listener that serves proves the stale socket was removed first.
    let transport = UnixTransport::new(&path);
    listen_and_echo(&transport).await;
    transport.close().await.unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn socket_bound_but_not_listening_counts_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bound.sock");
    let bound = tokio::net::UnixSocket::new_stream().unwrap();
    bound.bind(&path).unwrap(); // bound, never listening: connect is refused
    let old_ino = ino(&path);
    let transport = UnixTransport::new(&path);
    listen_and_echo(&transport).await;
    assert_ne!(ino(&path), old_ino);
    transport.close().await.unwrap();
    drop(bound);
}

#[tokio::test]
async fn live_socket_is_in_use_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.sock");
    let live = StdListener::bind(&path).unwrap();
    let live_ino = ino(&path);
    let err = UnixTransport::new(&path).listen().await.unwrap_err();
    assert!(
        matches!(&err, ListenError::InUse { path: p } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    assert_eq!(ino(&path), live_ino, "the live socket is untouched");
    // The live listener still accepts (our probe connection is queued).
    live.set_nonblocking(true).unwrap();
    assert!(live.accept().is_ok());
    std::os::unix::net::UnixStream::connect(&path).expect("still live");
}

#[tokio::test]
async fn regular_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.sock");
    fs::write(&path, b"precious data").unwrap();
    let err = UnixTransport::new(&path).listen().await.unwrap_err();
    assert!(
        matches!(
            &err,
            ListenError::NotASocket {
                kind: "regular file",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"precious data");
}

#[tokio::test]
async fn directory_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a-dir");
    fs::create_dir(&path).unwrap();
    fs::write(path.join("inside"), b"x").unwrap();
    let err = UnixTransport::new(&path).listen().await.unwrap_err();
    assert!(
        matches!(
            err,
            ListenError::NotASocket {
                kind: "directory",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(path.join("inside").exists());
}

#[tokio::test]
async fn symlink_is_refused_and_neither_link_nor_target_touched() {
    let dir = tempfile::tempdir().unwrap();
    // A symlink to a stale socket: removing it would be removing a link we
    // did not make; following it would remove a socket elsewhere.
    let target = dir.path().join("target.sock");
    drop(StdListener::bind(&target).unwrap());
    let link = dir.path().join("link.sock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = UnixTransport::new(&link).listen().await.unwrap_err();
    assert!(
        matches!(
            err,
            ListenError::NotASocket {
                kind: "symbolic link",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(is_socket(&target));
    // A dangling symlink is refused too.
    let dangling = dir.path().join("dangling.sock");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    assert!(UnixTransport::new(&dangling).listen().await.is_err());
    assert!(fs::symlink_metadata(&dangling).is_ok());
}

#[tokio::test]
async fn missing_parent_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/p.sock");
    let transport = UnixTransport::new(&path);
    listen_and_echo(&transport).await;
    transport.close().await.unwrap();
    assert!(!path.exists());
    assert!(path.parent().unwrap().is_dir());
}

#[tokio::test]
async fn path_too_long_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("d".repeat(60));
    let path = parent.join("s".repeat(60));
    let err = UnixTransport::new(&path).listen().await.unwrap_err();
    match &err {
        ListenError::PathTooLong { path: p, len, max } => {
            assert_eq!(p, &path);
            assert_eq!(*len, path.as_os_str().len());
            assert_eq!(*max, SUN_PATH_MAX);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(path.to_str().unwrap()) && text.contains(&SUN_PATH_MAX.to_string()),
        "{text}"
    );
    assert!(!parent.exists(), "nothing created");

    // The longest path that fits binds.
    let room = SUN_PATH_MAX - dir.path().as_os_str().len() - 1;
    let longest = dir.path().join("x".repeat(room));
    assert_eq!(longest.as_os_str().len(), SUN_PATH_MAX);
    let transport = UnixTransport::new(&longest);
    listen_and_echo(&transport).await;
    transport.close().await.unwrap();
}

#[tokio::test]
async fn relative_path_is_announced_absolute() {
    let dir = tempfile::tempdir_in(".").unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    let relative = PathBuf::from(&name).join("rel.sock");
    let transport = UnixTransport::new(&relative);
    let path = listen_and_echo(&transport).await;
    assert!(path.is_absolute(), "{}", path.display());
    assert_eq!(path, std::env::current_dir().unwrap().join(&relative));
    transport.close().await.unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn close_twice_and_listen_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sock");
    let transport = UnixTransport::new(&path);
    let (_, mut incoming) = transport.listen().await.unwrap();
    assert!(matches!(
        transport.listen().await,
        Err(ListenError::AlreadyListened)
    ));
    transport.close().await.unwrap();
    transport.close().await.unwrap();
    assert!(!path.exists());
    let ended = tokio::time::timeout(Duration::from_secs(5), incoming.next()).await;
    assert!(matches!(ended, Ok(None)), "incoming ends on close");
    assert!(matches!(
        transport.listen().await,
        Err(ListenError::AlreadyListened)
    ));
}

#[tokio::test]
async fn close_leaves_a_socket_that_replaced_ours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sock");
    let transport = UnixTransport::new(&path);
    let _ = transport.listen().await.unwrap();
    // Another process removes our socket and binds its own at the path.
    fs::remove_file(&path).unwrap();
    let theirs = StdListener::bind(&path).unwrap();
    let their_ino = ino(&path);
    transport.close().await.unwrap();
    assert_eq!(ino(&path), their_ino, "their socket survives our close");
    drop(theirs);
}

#[tokio::test]
async fn drop_removes_our_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.sock");
    let transport = UnixTransport::new(&path);
    let _ = transport.listen().await.unwrap();
    assert!(is_socket(&path));
    drop(transport);
    assert!(!path.exists());
}

#[tokio::test]
async fn a_transport_that_only_connects_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = UnixTransport::in_dir(dir.path());
    let (endpoint, _incoming) = server.listen().await.unwrap();
    let path = endpoint.unix_path().unwrap().to_owned();
    let dialer = UnixTransport::new(&path);
    let _conn = dialer.connect(&endpoint).await.unwrap();
    dialer.close().await.unwrap();
    drop(dialer);
    assert!(
        is_socket(&path),
        "the dialer left the server's socket alone"
    );
    server.close().await.unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn generated_names_are_unique_in_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut transports = Vec::new();
    let mut paths = std::collections::HashSet::new();
    for _ in 0..20 {
        let transport = UnixTransport::in_dir(dir.path().join("sockets"));
        let (endpoint, incoming) = transport.listen().await.unwrap();
        let path = endpoint.unix_path().unwrap().to_owned();
        assert_eq!(path.parent().unwrap(), dir.path().join("sockets"));
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("plugin")
        );
        assert!(paths.insert(path));
        transports.push((transport, incoming));
    }
    for (transport, _) in &transports {
        transport.close().await.unwrap();
    }
    assert_eq!(fs::read_dir(dir.path().join("sockets")).unwrap().count(), 0);
}

#[tokio::test]
async fn socket_group_is_applied_and_unknown_group_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Root may give the socket any group; another user only one of theirs.
    let group = if nix::unistd::geteuid().is_root() {
        nix::unistd::Group::from_name("daemon")
            .unwrap()
            .expect("group daemon")
            .gid
    } else {
        nix::unistd::getegid()
    };
    let path = dir.path().join("g.sock");
    let transport = UnixTransport::new(&path).group(SocketGroup::Gid(group.as_raw()));
    let _ = transport.listen().await.unwrap();
    assert_eq!(fs::metadata(&path).unwrap().gid(), group.as_raw());
    transport.close().await.unwrap();

    let path = dir.path().join("unknown.sock");
    let err = UnixTransport::new(&path)
        .group(SocketGroup::Name("no-such-group-rpcplugin".into()))
        .listen()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ListenError::Env(EnvError::UnknownGroup { .. })),
        "{err:?}"
    );
    assert!(!path.exists(), "nothing bound for an unknown group");
}

#[tokio::test]
async fn connect_to_nothing_names_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sock");
    let transport = UnixTransport::new(&path);
    let endpoint = rpcplugin::Endpoint::unix(&path).unwrap();
    let err = transport.connect(&endpoint).await.unwrap_err();
    assert!(matches!(err, ConnectError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains(path.to_str().unwrap()));
    let tcp: rpcplugin::Endpoint = "127.0.0.1:1".parse().unwrap();
    assert!(matches!(
        transport.connect(&tcp).await,
        Err(ConnectError::WrongNetwork { .. })
    ));
}

/// Run as an unprivileged user by `unwritable_directory_is_a_bind_error`;
/// does nothing unless that test set the variable.
#[tokio::test]
async fn child_listen_in_unwritable_dir() {
    let Ok(path) = std::env::var("RPCPLUGIN_TEST_UNWRITABLE_PATH") else {
        return;
    };
    let err = UnixTransport::new(&path).listen().await.unwrap_err();
    println!("CHILD-ERROR: {}", rpcplugin::log::Chain(&err));
    assert!(matches!(&err, ListenError::Bind { .. }), "{err:?}");
}

#[tokio::test]
async fn unwritable_directory_is_a_bind_error() {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    let path = locked.join("p.sock");
    if nix::unistd::geteuid().is_root() {
        // Root ignores directory permissions: run the attempt as `nobody`.
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_listen_in_unwritable_dir", "--nocapture"])
            .env("RPCPLUGIN_TEST_UNWRITABLE_PATH", &path)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("CHILD-ERROR: cannot listen on unix:"),
            "{stdout}"
        );
        assert!(stdout.contains("ermission denied"), "{stdout}");
        assert!(stdout.contains(path.to_str().unwrap()), "{stdout}");
    } else {
        let err = UnixTransport::new(&path).listen().await.unwrap_err();
        assert!(matches!(err, ListenError::Bind { .. }), "{err:?}");
    }
    assert!(!path.exists());
}

#[tokio::test]
async fn generated_path_in_a_too_long_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let long_dir = dir.path().join("d".repeat(100));
    let err = UnixTransport::in_dir(&long_dir).listen().await.unwrap_err();
    assert!(matches!(err, ListenError::PathTooLong { .. }), "{err:?}");
    assert!(err.to_string().contains("PLUGIN_UNIX_SOCKET_DIR"), "{err}");
    assert!(!long_dir.exists());
}
