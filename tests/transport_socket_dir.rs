//! The socket directory, as ssh-agent and tmux treat theirs: one that
//! another user owns, or may write in without the sticky bit, is refused
//! before anything is bound in it; a file or a dangling link where it should
//! be is named; the socket's mode and group never follow a link.
//!
//! Another user's directory is made by chowning a temporary directory to
//! `nobody`, which needs root (CI runs as root). Without root those cases
//! say so on stderr and check what an unprivileged user can check.

// Unix only: unix sockets and their directories.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rpcplugin::Transport;
use rpcplugin::transport::{ListenError, SocketGroup, UnixTransport};

const NOBODY: u32 = 65534;

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn daemon_gid() -> u32 {
    nix::unistd::Group::from_name("daemon")
        .unwrap()
        .expect("group daemon")
        .gid
        .as_raw()
}

/// A group we may give our files: `daemon` as root (not our own group, so
/// that a chown is visible), else our own.
fn a_group() -> u32 {
    if is_root() {
        daemon_gid()
    } else {
        nix::unistd::getegid().as_raw()
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Listens in `dir` (a generated name, as a plugin does) and expects
/// `UnsafeSocketDir`; nothing may be left in the directory.
async fn refused_in(dir: &Path, group: Option<SocketGroup>) -> ListenError {
    let mut transport = UnixTransport::in_dir(dir);
    if let Some(group) = group {
        transport = transport.group(group);
    }
    let err = transport.listen().await.unwrap_err();
    assert!(
        matches!(err, ListenError::UnsafeSocketDir { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(dir.to_str().unwrap()),
        "names the directory: {err}"
    );
    assert_eq!(entries(dir), Vec::<String>::new(), "nothing bound in it");
    err
}

/// Listens in `dir` and expects it to work; closes again.
async fn accepted_in(dir: &Path, group: Option<SocketGroup>) {
    let mut transport = UnixTransport::in_dir(dir);
    if let Some(group) = group {
        transport = transport.group(group);
    }
    let (endpoint, _incoming) = transport
        .listen()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    assert!(endpoint.unix_path().unwrap().starts_with(dir));
    transport.close().await.unwrap();
}

#[tokio::test]
async fn writable_by_everybody_without_sticky_bit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o777);
    let err = refused_in(tmp.path(), None).await;
    let text = err.to_string();
    assert!(text.contains("every user may write in it"), "{text}");
    assert!(text.contains("mode 0777"), "{text}");
}

#[tokio::test]
async fn writable_by_everybody_with_sticky_bit_is_fine_like_tmp() {
    let tmp = tempfile::tempdir().unwrap();
    set_mode(tmp.path(), 0o1777);
    accepted_in(tmp.path(), None).await;
}

#[tokio::test]
async fn writable_by_its_group_is_refused_unless_it_is_the_socket_group() {
    let tmp = tempfile::tempdir().unwrap();
    let gid = a_group();
    nix::unistd::chown(tmp.path(), None, Some(nix::unistd::Gid::from_raw(gid))).unwrap();
    set_mode(tmp.path(), 0o770);
    let err = refused_in(tmp.path(), None).await;
    assert!(
        err.to_string().contains("its group may write in it"),
        "{err}"
    );
    // Another group as socket group: still refused.
    refused_in(tmp.path(), Some(SocketGroup::Gid(gid + 1))).await;
    // go-plugin's host makes such a directory, group-writable, of the group
    // it passes in PLUGIN_UNIX_SOCKET_GROUP.
    accepted_in(tmp.path(), Some(SocketGroup::Gid(gid))).await;
}

#[tokio::test]
async fn another_users_directory_is_refused() {
    if !is_root() {
        eprintln!(
            "NOT CHECKED without root: a directory owned by another user \
             (needs chown to nobody)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let theirs = tmp.path().join("theirs");
    fs::create_dir(&theirs).unwrap();
    set_mode(&theirs, 0o755);
    nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let err = refused_in(&theirs, None).await;
    let text = err.to_string();
    assert!(text.contains("owned by another user"), "{text}");
    assert!(text.contains(&format!("owner uid {NOBODY}")), "{text}");
    // Even with the sticky bit: its owner may remove anything in it.
    set_mode(&theirs, 0o1777);
    refused_in(&theirs, None).await;
    // The same through a fixed path in it.
    let err = UnixTransport::new(theirs.join("p.sock"))
        .listen()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ListenError::UnsafeSocketDir { .. }),
        "{err:?}"
    );
    assert_eq!(entries(&theirs), Vec::<String>::new());
}

#[tokio::test]
async fn go_plugins_group_directory_of_another_user_is_accepted() {
    if !is_root() {
        eprintln!("NOT CHECKED without root: a directory owned by another user");
        return;
    }
    // go-plugin's host (another user) creates the directory 0770 with the
    // socket group, for a plugin that runs as a member of that group.
    let tmp = tempfile::tempdir().unwrap();
    let hosts = tmp.path().join("plugin-dir");
    fs::create_dir(&hosts).unwrap();
    nix::unistd::chown(
        &hosts,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        Some(nix::unistd::Gid::from_raw(daemon_gid())),
    )
    .unwrap();
    set_mode(tmp.path(), 0o755);
    set_mode(&hosts, 0o770);
    accepted_in(&hosts, Some(SocketGroup::Name("daemon".into()))).await;
    // Without that group configured, it is another user's directory.
    refused_in(&hosts, None).await;
    // World-writable, it is refused even with the group.
    set_mode(&hosts, 0o777);
    refused_in(&hosts, Some(SocketGroup::Name("daemon".into()))).await;
}

#[tokio::test]
async fn missing_directories_are_created_private_and_with_the_socket_group() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b");
    accepted_in(&dir, None).await;
    for created in [tmp.path().join("a"), dir.clone()] {
        let meta = fs::symlink_metadata(&created).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o700, "{}", created.display());
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
    }

    let dir = tmp.path().join("g/h");
    accepted_in(&dir, Some(SocketGroup::Gid(a_group()))).await;
    for created in [tmp.path().join("g"), dir.clone()] {
        let meta = fs::symlink_metadata(&created).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o750, "{}", created.display());
        assert_eq!(meta.gid(), a_group(), "{}", created.display());
    }
}

#[tokio::test]
async fn a_dangling_link_where_the_directory_should_be_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("sockets");
    let target = tmp.path().join("gone");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = UnixTransport::in_dir(&link).listen().await.unwrap_err();
    assert!(
        matches!(&err, ListenError::NotADirectory { path, .. } if *path == link),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(link.to_str().unwrap()), "{text}");
    assert!(text.contains(target.to_str().unwrap()), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    // Left as it was: the link, and no target created.
    assert_eq!(fs::read_link(&link).unwrap(), target);
    assert!(!target.exists());
}

#[tokio::test]
async fn a_file_where_the_directory_or_a_parent_should_be_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    fs::write(&file, "keep me").unwrap();
    for dir in [file.clone(), file.join("sub")] {
        let err = UnixTransport::in_dir(&dir).listen().await.unwrap_err();
        assert!(
            matches!(&err, ListenError::NotADirectory { path, .. } if *path == file),
            "{}: {err:?}",
            dir.display()
        );
        let text = err.to_string();
        assert!(text.contains(file.to_str().unwrap()), "{text}");
        assert!(text.contains("a regular file"), "{text}");
    }
    // A link to the file says so too.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let err = UnixTransport::new(link.join("p.sock"))
        .listen()
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("a symbolic link to") && err.to_string().contains("regular file"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "keep me");
}

#[tokio::test]
async fn a_link_to_a_safe_directory_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    set_mode(&real, 0o700);
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    accepted_in(&link, None).await;
    // A link to an unsafe one is refused.
    set_mode(&real, 0o777);
    refused_in(&link, None).await;
}

/// A process that keeps replacing the socket path by a symbolic link to a
/// victim file races the listener: the victim's mode and group must never
/// change (chmod and chown by path would follow the link).
#[tokio::test]
async fn mode_and_group_never_follow_a_link_swapped_in_after_bind() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    fs::write(&victim, "secret").unwrap();
    set_mode(&victim, 0o600);
    let victim_gid = fs::metadata(&victim).unwrap().gid();
    let path = tmp.path().join("p.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, path, victim) = (stop.clone(), path.clone(), victim.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let is_socket = fs::symlink_metadata(&path)
                    .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
                if is_socket && fs::remove_file(&path).is_ok() {
                    let _ = std::os::unix::fs::symlink(&victim, &path);
                    swaps += 1;
                }
            }
            swaps
        })
    };
    // Each attempt either loses the race (bind, secure, listen all done
    // before a swap) or meets the link; never may the victim change.
    let started = std::time::Instant::now();
    let mut attempts = 0;
    while started.elapsed() < std::time::Duration::from_secs(3) {
        attempts += 1;
        let transport = UnixTransport::new(&path).group(SocketGroup::Gid(a_group()));
        let _ = transport.listen().await;
        let _ = transport.close().await;
        drop(transport);
        let meta = fs::metadata(&victim).unwrap();
        assert_eq!(
            meta.mode() & 0o7777,
            0o600,
            "attempt {attempts}: the victim's mode changed through the link"
        );
        assert_eq!(meta.gid(), victim_gid, "attempt {attempts}: group changed");
        // Make way for the next attempt: remove whatever the swapper left.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = fs::remove_file(&path);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "secret");
    println!("{attempts} attempts, {swaps} swaps");
    assert!(swaps > 0, "the race was never run: {attempts} attempts");
}
