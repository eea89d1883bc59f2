//! The host's death. A go-plugin plugin outlives a host that was SIGKILLed
//! (go-plugin's oldest open complaint): nobody will ever call `Shutdown`.
//! Ours notices that its parent process is gone, because it has been
//! re-parented, and stops as on `Shutdown`, removing its socket. On
//! Windows, where a process is not re-parented, it holds its parent's
//! handle and notices that the parent process has ended.

use std::time::Duration;

#[cfg(unix)]
use nix::unistd::getppid;

use tokio_util::sync::CancellationToken;

/// How often the parent is checked: a plugin notices its host's death
/// within this, well inside the second in which it must be gone; one
/// `getppid` costs well under a microsecond.
const PARENT_POLL: Duration = Duration::from_millis(100);

/// Starts watching the parent. A plugin whose parent is already init (pid
/// 1), e.g. started by a container's entry point, has no host to watch.
#[cfg(unix)]
pub(crate) fn watch(shutdown: &CancellationToken) {
    let parent = getppid();
    if parent.as_raw() <= 1 {
        tracing::debug!("the parent is init: not watching for the host's death");
        return;
    }
    let host_pid = parent.as_raw().unsigned_abs();
    stop_when(shutdown, host_pid, move || getppid() != parent);
}

/// Starts watching the parent (Windows). A parent already gone when the
/// plugin starts is a host already dead: the plugin stops at once.
#[cfg(windows)]
pub(crate) fn watch(shutdown: &CancellationToken) {
    match crate::sys::ParentWatch::open() {
        Ok(Some(parent)) => stop_when(shutdown, parent.pid(), move || parent.gone()),
        Ok(None) => {
            tracing::warn!("the host process is gone; stopping");
            shutdown.cancel();
        }
        Err(why) => tracing::debug!("not watching for the host's death: {why}"),
    }
}

/// Every [`PARENT_POLL`], until serving stops: once `gone` says so, stops
/// serving as on `Shutdown`.
fn stop_when(
    shutdown: &CancellationToken,
    host_pid: u32,
    gone: impl Fn() -> bool + Send + 'static,
) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PARENT_POLL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if gone() {
                        tracing::warn!(host_pid, "the host process is gone; stopping");
                        shutdown.cancel();
                        return;
                    }
                }
                () = shutdown.cancelled() => return,
            }
        }
    });
}
