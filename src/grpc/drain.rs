//! Serving a tonic router so that stopping it is bounded: stop accepting,
//! give calls in flight a grace period, then cut the connections still
//! open. tonic's graceful shutdown alone waits for every connection to
//! close, which an idle peer, a peer that never reads, or a call that never
//! ends can put off forever (and dropping the server future leaves its
//! connections running).

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Router;

use crate::transport::Incoming;

/// Serves `router` on `incoming` until `stop` completes (it may also close
/// the listener), then lets calls finish for up to `grace`, then cuts every
/// connection, so that peers see their calls fail at once.
///
/// # Errors
///
/// The server's error, when it fails before it is stopped.
pub(crate) async fn serve_draining(
    router: Router,
    incoming: Incoming,
    stop: impl Future<Output = ()> + Send,
    grace: Duration,
) -> Result<(), tonic::transport::Error> {
    let cut = CancellationToken::new();
    let (stopped, stopped_rx) = oneshot::channel::<()>();
    let served = router.serve_with_incoming_shutdown(incoming.with_cutoff(cut.clone()), async {
        let _ = stopped_rx.await;
    });
    // `stop` is polled here, not by tonic: tonic stops polling its signal
    // once the incoming stream ends (closing the listener inside `stop`
    // does that) and then waits for every connection to close, which an
    // open stream or an idle peer can put off forever.
    let stopping = async {
        stop.await;
        let _ = stopped.send(());
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        served = served => served,
        () = stopping => {
            tracing::debug!("calls or connections still open {grace:?} after stop; cutting them");
            Ok(())
        }
    };
    cut.cancel();
    result
}
