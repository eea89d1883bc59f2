//! Signals a plugin handles: SIGINT is ignored (the terminal sends it to the
//! whole process group; the host decides when the plugin ends), SIGTERM
//! starts the same graceful stop as GRPCController.Shutdown, and so do
//! SIGHUP (the terminal or session went away) and SIGQUIT, whose default
//! action would kill the plugin and leave its socket behind.

use tokio::signal::unix::{SignalKind, signal};

use tokio_util::sync::CancellationToken;

/// Installs the handlers. In debug mode a person runs the plugin in a
/// terminal, so SIGINT stops it too.
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
