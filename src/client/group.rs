//! A started plugin's process tree, ended as one: the plugin and every
//! process it started. On unix, the process group the plugin leads (see
//! `plugin_command`); on Windows, a job object the plugin is put in as
//! soon as it is spawned.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;

use super::owner::{Owner, PluginSocket};

/// The process tree of a plugin we started.
#[derive(Debug)]
pub(crate) struct Group {
    /// The plugin's pid: on unix also the group's id, which stays the
    /// plugin's until the plugin is reaped.
    pid: u32,
    #[cfg(windows)]
    job: crate::sys::Job,
}

impl Group {
    /// The tree of `child`, just spawned.
    ///
    /// # Errors
    ///
    /// On Windows, when the job cannot be made or the plugin put in it:
    /// the caller kills the plugin, whose children could not be ended
    /// with it.
    pub(crate) fn of(child: &Child) -> io::Result<Self> {
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the plugin was already waited for"))?;
        #[cfg(windows)]
        let job = {
            let handle = child
                .raw_handle()
                .ok_or_else(|| io::Error::other("the plugin was already waited for"))?;
            crate::sys::Job::with_process(handle)?
        };
        Ok(Group {
            pid,
            #[cfg(windows)]
            job,
        })
    }

    /// The plugin's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills the whole tree at once (SIGKILL to the group; the job
    /// terminated on Windows). A tree already gone is not an error.
    pub(crate) fn kill(&self) -> io::Result<()> {
        #[cfg(unix)]
        return kill_group(self.pid);
        #[cfg(windows)]
        return self.job.terminate();
    }

    /// Kills the tree and reaps the plugin.
    pub(crate) async fn kill_and_reap(&self, child: &mut Child) -> Option<ExitStatus> {
        let _ = self.kill();
        child.wait().await.ok()
    }
}

/// SIGKILLs the plugin's whole process group: the plugin and every child
/// it forked. A group that is already gone is not an error.
/// Only for the group of a child of ours that is not yet reaped.
#[cfg(unix)]
pub(crate) fn kill_group(pgid: u32) -> io::Result<()> {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    // killpg(0) is our own group, and a negative pgid means something else.
    let Some(pgid) = i32::try_from(pgid).ok().filter(|&p| p > 1) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal process group {pgid}"),
        ));
    };
    match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// SIGKILLs exactly the process `process` proved to be (a reattached
/// plugin, not our child): its pid, checked again just before.
#[cfg(unix)]
pub(crate) fn kill_proven(process: &super::owner::ProvenProcess) {
    if process.alive() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(process.pid()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Windows: no process is ever proven a reattached plugin (the proof is
/// the kernel's word on a unix socket's listener), so none is killed.
#[cfg(windows)]
pub(crate) fn kill_proven(process: &super::owner::ProvenProcess) {
    tracing::debug!(
        pid = process.pid(),
        "a reattached plugin is never killed on Windows"
    );
}

/// Kills a plugin's process tree when dropped, until disarmed: whatever
/// ends a start or a probe early (an error, a panic, its future dropped on
/// Ctrl-C) leaves no plugin behind, and no socket the plugin was proven to
/// have made.
#[derive(Debug)]
pub(crate) struct GroupGuard {
    group: Option<Group>,
    /// The unix socket the plugin announced.
    socket: Option<PathBuf>,
}

impl GroupGuard {
    /// Guards the tree of `child`, just spawned. When the tree cannot be
    /// made (Windows: no job), kills and reaps the plugin and returns why.
    pub(crate) async fn of(child: &mut Child) -> io::Result<Self> {
        match Group::of(child) {
            Ok(group) => Ok(GroupGuard {
                group: Some(group),
                socket: None,
            }),
            Err(err) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                Err(err)
            }
        }
    }

    /// The plugin's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.group.as_ref().map_or(0, Group::pid)
    }

    /// The plugin announced this unix socket: if the guard fires, it is
    /// removed once the plugin is killed, if the kernel says the plugin's
    /// group listens there.
    pub(crate) fn socket(&mut self, path: &Path) {
        self.socket = Some(path.to_owned());
    }

    /// Kills the tree, reaps the plugin, and disarms the guard.
    pub(crate) async fn kill_and_reap(mut self, child: &mut Child) -> Option<ExitStatus> {
        let group = self.group.take()?;
        group.kill_and_reap(child).await
    }

    /// Hands the tree on to whoever holds the child now.
    pub(crate) fn disarm(mut self) -> Group {
        self.group.take().expect("a guard is disarmed once")
    }
}

/// How long a fired guard waits for a killed plugin's socket to stop
/// listening before it gives up removing it: a SIGKILLed process closes
/// its descriptors within milliseconds.
const SOCKET_GONE_WAIT: Duration = Duration::from_secs(2);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(group) = self.group.take() else {
            return;
        };
        // The proof first: once the plugin is dead nobody listens, and the
        // kernel can no longer say whose the socket was.
        let owner = Owner::Group(group.pid());
        let proof = self
            .socket
            .take()
            .and_then(|path| PluginSocket::probe_now(&path, owner));
        let _ = group.kill();
        if let Some(proof) = proof {
            proof.remove_when_closed(SOCKET_GONE_WAIT);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn groups_that_are_not_a_plugins_are_never_signalled() {
        for pgid in [0, 1, u32::MAX, 1 << 31] {
            assert!(kill_group(pgid).is_err(), "{pgid}");
        }
        assert!(!crate::sys::process_runs(0) && !crate::sys::process_runs(u32::MAX));
    }
}
