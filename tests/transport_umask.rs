//! Socket mode is 0660 whatever the umask. The umask is process-wide, so
//! this binary holds this one test and nothing else.

use std::os::unix::fs::PermissionsExt;

use nix::sys::stat::{Mode, umask};
use rpcplugin::{Transport, UnixTransport};

#[tokio::test]
async fn socket_mode_is_0660_under_any_umask() {
    let dir = tempfile::tempdir().unwrap();
    for mask in [0o000, 0o022, 0o077, 0o777] {
        let previous = umask(Mode::from_bits_truncate(mask));
        let path = dir.path().join(format!("umask-{mask:03o}.sock"));
        let transport = UnixTransport::new(&path);
        let listened = transport.listen().await;
        umask(previous);
        let (endpoint, _incoming) = listened.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "umask {mask:03o} gave mode {mode:03o}");
        // Still reachable by its owner.
        transport.connect(&endpoint).await.unwrap();
        transport.close().await.unwrap();
    }
}
