//! Output still in the capture when user code calls `std::process::exit`
//! while serving (or returns from `main` without letting `serve` end)
//! reaches the original stdout and stderr before the process ends.
//!
//! The pumps of [`stdio`](super::stdio) run on threads of their own, and
//! hold output for a host that may still open `GRPCStdio`: without this
//! hook, `exit` ends the process with that output (and whatever was still
//! in the pipes) unwritten. A Go plugin writes to its real descriptors, so
//! nothing it printed before `os.Exit` is lost; neither is ours.
//!
//! The hook runs from the C library's `exit`, after Rust has flushed its
//! own `stdout` buffer. On Windows `std::process::exit` ends the process
//! without the C library's exit handlers, so no hook is installed there:
//! output still held for a host that has not attached is lost at such an
//! exit (output a host streams or that passed through is not).
//!
//! It never blocks the exit for long: it gives the pumps [`EXIT_FLUSH`] to
//! pass what is left through, and does nothing if another thread is
//! registering or restoring a capture at that moment.

#[cfg(unix)]
use std::sync::Once;
use std::sync::{Arc, Condvar, Mutex};
#[cfg(unix)]
use std::time::{Duration, Instant};

/// How long the exit waits, in all, for the pumps to pass through what is
/// pending: a pump writes to a descriptor the host drains, so this is
/// ample, and a host that stopped draining cannot hold the exit longer.
#[cfg(unix)]
const EXIT_FLUSH: Duration = Duration::from_millis(200);

/// A pump thread's end, which the exit hook waits for without a runtime (it
/// may run on a runtime worker, where blocking on a task is refused), and
/// `Capture::restore` as a task (no thread is started to wait).
#[derive(Debug, Default)]
pub(super) struct Ended {
    done: Mutex<bool>,
    cond: Condvar,
    notify: tokio::sync::Notify,
}

impl Ended {
    /// The pump has written all it had and returned.
    pub(super) fn set(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cond.notify_all();
        self.notify.notify_waiters();
    }

    /// Resolves when the pump has ended.
    pub(super) async fn ended(&self) {
        loop {
            let notified = self.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a `set` in between
            // still wakes this waiter.
            notified.as_mut().enable();
            if *self.done.lock().unwrap_or_else(|e| e.into_inner()) {
                return;
            }
            notified.await;
        }
    }

    /// Whether the pump ended before `deadline`.
    #[cfg(unix)]
    pub(super) fn wait_until(&self, deadline: Instant) -> bool {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            done = match self.cond.wait_timeout(done, left) {
                Ok((done, _)) => done,
                Err(e) => e.into_inner().0,
            };
        }
        true
    }
}

/// What the hook needs of a running capture (on Windows, where no hook is
/// installed, kept only as on unix).
#[derive(Debug)]
#[cfg_attr(windows, allow(dead_code))]
pub(super) struct ExitFlush {
    /// Tells the pumps to pass everything through from now on.
    pub(super) exiting: Arc<std::sync::atomic::AtomicBool>,
    /// The original stdout and stderr.
    pub(super) saved: Arc<[crate::sys::SavedStdio; 2]>,
    pub(super) pumps: Vec<Arc<Ended>>,
}

/// The capture the hook flushes, if one is running.
static RUNNING: Mutex<Option<ExitFlush>> = Mutex::new(None);

/// Registers the running capture (and, the first time, the hook).
pub(super) fn register(flush: ExitFlush) {
    #[cfg(unix)]
    {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            // SAFETY: `atexit` takes any `extern "C" fn()`; this one does not
            // unwind (nothing in it panics: its locks are taken with
            // `try_lock` or tolerate poisoning) and touches only statics and
            // the descriptors it owns.
            #[allow(unsafe_code)]
            let registered = unsafe { nix::libc::atexit(flush_at_exit) };
            if registered != 0 {
                tracing::debug!("could not register the exit hook that flushes captured output");
            }
        });
    }
    *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = Some(flush);
}

/// The capture ended normally (serving is over): nothing for the hook.
pub(super) fn unregister() {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).take();
}

#[cfg(unix)]
extern "C" fn flush_at_exit() {
    let flush = match RUNNING.try_lock() {
        Ok(mut running) => running.take(),
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().take(),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    let Some(flush) = flush else {
        return;
    };
    flush
        .exiting
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The original descriptors back on 1 and 2: the pipes' write ends
    // close (unless a child process holds them), the pumps read to the end
    // and write what they hold through.
    for saved in &*flush.saved {
        let _ = saved.restore();
    }
    let deadline = Instant::now() + EXIT_FLUSH;
    for pump in &flush.pumps {
        pump.wait_until(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::Ended;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn ended_waits_for_a_pump_on_another_thread() {
        let ended = Arc::new(Ended::default());
        let early = tokio::time::timeout(Duration::from_millis(50), ended.ended()).await;
        assert!(early.is_err(), "resolved before the pump ended");
        let pump = ended.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            pump.set();
        });
        tokio::time::timeout(Duration::from_secs(10), ended.ended())
            .await
            .expect("the pump's end was not seen");
        thread.join().unwrap();
        // Once ended, it stays so.
        ended.ended().await;
    }
}
