//! Signals a plugin handles: SIGINT is ignored (the terminal sends it to the
//! whole process group; the host decides when the plugin ends), SIGTERM
//! starts the same graceful stop as GRPCController.Shutdown, and so do
//! SIGHUP (the terminal or session went away) and SIGQUIT, whose default
//! action would kill the plugin and leave its socket behind.
//!
//! On Windows, as go-plugin's plugins there: Ctrl-C and Ctrl-Break are
//! ignored, and the console's close, logoff and system shutdown events
//! start the graceful stop.

#[cfg(unix)]
use tokio::signal::unix::{SignalKind, signal};

use tokio_util::sync::CancellationToken;

/// Installs the handlers. In debug mode a person runs the plugin in a
/// terminal, so SIGINT stops it too.
#[cfg(unix)]
pub(crate) fn install(shutdown: &CancellationToken, debug: bool) -> std::io::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = interrupt.recv() => {
                    if debug {
                        tracing::info!("SIGINT: stopping");
                        shutdown.cancel();
                    } else {
                        tracing::debug!("SIGINT ignored: the host decides when the plugin stops");
                    }
                }
                Some(()) = terminate.recv() => {
                    tracing::info!("SIGTERM: stopping gracefully");
                    shutdown.cancel();
                }
                Some(()) = hangup.recv() => {
                    tracing::info!("SIGHUP: stopping gracefully, as on SIGTERM");
                    shutdown.cancel();
                }
                Some(()) = quit.recv() => {
                    tracing::info!("SIGQUIT: stopping gracefully, as on SIGTERM");
                    shutdown.cancel();
                }
                else => break,
            }
        }
    });
    Ok(())
}

/// Installs the handlers (Windows). In debug mode a person runs the plugin
/// in a console, so Ctrl-C and Ctrl-Break stop it too.
#[cfg(windows)]
pub(crate) fn install(shutdown: &CancellationToken, debug: bool) -> std::io::Result<()> {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close, ctrl_logoff, ctrl_shutdown};
    let mut interrupt = ctrl_c()?;
    let mut brk = ctrl_break()?;
    let mut close = ctrl_close()?;
    let mut logoff = ctrl_logoff()?;
    let mut system = ctrl_shutdown()?;
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = interrupt.recv() => "Ctrl-C",
                Some(()) = brk.recv() => "Ctrl-Break",
                Some(()) = close.recv() => "the console's close",
                Some(()) = logoff.recv() => "logoff",
                Some(()) = system.recv() => "system shutdown",
                else => break,
            };
            if matches!(name, "Ctrl-C" | "Ctrl-Break") && !debug {
                tracing::debug!("{name} ignored: the host decides when the plugin stops");
            } else {
                tracing::info!("{name}: stopping gracefully");
                shutdown.cancel();
            }
        }
    });
    Ok(())
}
