//! Socket mode is 0660, and a socket directory we create 0700, whatever the
//! umask. The umask is process-wide, so this binary holds this one test and
//! nothing else.

// Unix only: unix sockets and file modes.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;

use nix::sys::stat::{Mode, umask};
use rpcplugin::Transport;
use rpcplugin::transport::UnixTransport;

#[tokio::test]
async fn socket_mode_is_0660_and_new_dirs_0700_under_any_umask() {
    let dir = tempfile::tempdir().unwrap();
    for mask in [0o000, 0o022, 0o077, 0o777] {
        let previous = umask(Mode::from_bits_truncate(mask));
        // A missing directory (and its missing parent) made on the way:
        // under umask 000 another user could otherwise swap our socket.
        let made = dir.path().join(format!("made-{mask:03o}"));
        let path = made.join("sub").join("s.sock");
        let transport = UnixTransport::new(&path);
        let listened = transport.listen().await;
        umask(previous);
        let (endpoint, _incoming) = listened.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "umask {mask:03o} gave mode {mode:03o}");
        for created in [&made, &made.join("sub")] {
            let mode = std::fs::metadata(created).unwrap().permissions().mode() & 0o7777;
            assert_eq!(
                mode,
                0o700,
                "umask {mask:03o}: {} has mode {mode:04o}",
                created.display()
            );
        }
        // Still reachable by its owner.
        transport.connect(&endpoint).await.unwrap();
        transport.close().await.unwrap();
    }
}
