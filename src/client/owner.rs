//! Proof of what is the plugin's, before a host deletes or signals it: the
//! socket it listens on (the kernel's word for who listens there), and the
//! process behind a reattach configuration.

#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
#[cfg(unix)]
use std::path::PathBuf;
use std::time::Duration;

#[cfg(unix)]
use nix::unistd::Pid;

/// A unix socket proven to be a plugin's: at `path`, this inode, made by
/// the plugin's process.
#[cfg(unix)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PluginSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

#[cfg(unix)]
impl PluginSocket {
    /// The socket at `path` as it is now, if `listener` (the pid the
    /// kernel says made it) is `owner`'s.
    pub(crate) fn prove(path: &Path, listener: Option<i32>, owner: Owner) -> Option<Self> {
        let listener = listener?;
        let meta = std::fs::symlink_metadata(path).ok()?;
        (meta.file_type().is_socket() && owner.owns(listener)).then(|| PluginSocket {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Dials the socket at `path` to ask the kernel who listens there; a
    /// proof if it is `owner`'s.
    pub(crate) async fn probe(path: &Path, owner: Owner, timeout: Duration) -> Option<Self> {
        let before = std::fs::symlink_metadata(path).ok()?;
        let conn = tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
            .await
            .ok()?
            .ok()?;
        Self::prove_unchanged(path, &before, conn.peer_cred().ok()?.pid(), owner)
    }

    /// [`probe`](Self::probe) without a runtime and without waiting, for
    /// a `Drop`: a non-blocking connect (a full backlog answers at once,
    /// and proves nothing), then the kernel's word on who listens.
    pub(crate) fn probe_now(path: &Path, owner: Owner) -> Option<Self> {
        let before = std::fs::symlink_metadata(path).ok()?;
        let fd = crate::transport::connect_now(path).ok()?;
        let listener = crate::sys::peer_pid(&fd)?;
        Self::prove_unchanged(path, &before, Some(listener), owner)
    }

    /// The proof, if `listener` is `owner`'s and the path still holds the
    /// socket it held `before` the connection that named the listener.
    fn prove_unchanged(
        path: &Path,
        before: &std::fs::Metadata,
        listener: Option<i32>,
        owner: Owner,
    ) -> Option<Self> {
        let proof = Self::prove(path, listener, owner)?;
        (proof.dev == before.dev() && proof.ino == before.ino()).then_some(proof)
    }

    /// Removes the socket, off the runtime, as soon as nobody listens on
    /// it any more (its plugin was just killed), giving up after `limit`.
    pub(crate) fn remove_when_closed(self, limit: Duration) {
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + limit;
            loop {
                // Never a blocking connect: a full backlog would hold it.
                let gone = !crate::transport::is_listening(&self.path);
                if gone || std::time::Instant::now() >= deadline {
                    self.remove();
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }

    /// Removes the socket once its plugin is gone: only if the path still
    /// holds this very socket and nobody listens on it.
    pub(crate) fn remove(&self) {
        let same = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if !same {
            tracing::debug!(path = %self.path.display(), "plugin socket replaced or gone; not removed");
            return;
        }
        if let Err(err) = crate::transport::remove_stale_socket(&self.path) {
            tracing::debug!(path = %self.path.display(), %err, "plugin socket not removed");
        }
    }
}

/// No socket is ever a plugin's where go-plugin has no unix sockets
/// (Windows): nothing to prove, nothing a host removes.
#[cfg(not(unix))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PluginSocket {}

#[cfg(not(unix))]
impl PluginSocket {
    pub(crate) fn prove(_path: &Path, _listener: Option<i32>, _owner: Owner) -> Option<Self> {
        None
    }

    pub(crate) async fn probe(_path: &Path, _owner: Owner, _timeout: Duration) -> Option<Self> {
        None
    }

    pub(crate) fn probe_now(_path: &Path, _owner: Owner) -> Option<Self> {
        None
    }

    pub(crate) fn remove_when_closed(self, _limit: Duration) {
        match self {}
    }

    pub(crate) fn remove(&self) {
        match *self {}
    }
}

/// Whose a socket must be.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(unix), allow(dead_code))]
pub(crate) enum Owner {
    /// A process in the process group of the plugin we started (the group
    /// has its pid): the plugin, or a child a launcher started.
    Group(u32),
    /// Exactly this process (a plugin we attached to).
    Process(i32),
}

#[cfg(unix)]
impl Owner {
    fn owns(self, pid: i32) -> bool {
        match self {
            Owner::Process(expected) => pid == expected,
            Owner::Group(pgid) => nix::unistd::getpgid(Some(Pid::from_raw(pid)))
                .is_ok_and(|group| i64::from(group.as_raw()) == i64::from(pgid)),
        }
    }
}

/// A process as it was when we proved it the plugin: its pid and its start
/// time, so that a later process given the same pid is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProvenProcess {
    pid: i32,
    started: u64,
}

impl ProvenProcess {
    /// `pid`, with its start time now.
    pub(crate) fn now(pid: i32) -> Option<Self> {
        Some(ProvenProcess {
            pid,
            started: crate::sys::start_time(pid)?,
        })
    }

    /// Whether the very same process still runs (not a zombie, not another
    /// process with the pid).
    pub(crate) fn alive(&self) -> bool {
        ProvenProcess::now(self.pid) == Some(*self) && crate::sys::process_runs(self.pid as u32)
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_has_a_start_time_and_a_stranger_pid_does_not_match() {
        let me = std::process::id() as i32;
        let proven = ProvenProcess::now(me).unwrap();
        assert!(proven.alive());
        let impostor = ProvenProcess {
            pid: me,
            started: proven.started + 1,
        };
        assert!(!impostor.alive());
        assert!(ProvenProcess::now(i32::MAX).is_none());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_socket_is_ours_only_when_its_listener_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        let me = std::process::id() as i32;
        let wait = Duration::from_secs(1);
        assert!(
            PluginSocket::probe(&path, Owner::Process(me), wait)
                .await
                .is_some()
        );
        assert!(
            PluginSocket::probe(&path, Owner::Process(1), wait)
                .await
                .is_none()
        );
        // Our process group is not a plugin's.
        assert!(
            PluginSocket::probe(&path, Owner::Group(1), wait)
                .await
                .is_none()
        );
        assert!(
            PluginSocket::probe(&dir.path().join("absent"), Owner::Process(me), wait)
                .await
                .is_none()
        );
    }
}
