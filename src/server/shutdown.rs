//! The plugin's shutdown signal, shared by GRPCController, SIGTERM and the
//! long-lived streams that must end when it fires.

use std::sync::Arc;

use tokio::sync::watch;

/// A one-way latch: once triggered, every waiter (present and future)
/// wakes.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(Arc<watch::Sender<bool>>);

impl Shutdown {
    pub(crate) fn new() -> Self {
        Shutdown(Arc::new(watch::channel(false).0))
    }

    pub(crate) fn trigger(&self) {
        self.0.send_replace(true);
    }

    pub(crate) fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    pub(crate) async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so this only returns once triggered.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_before_and_after_the_trigger_wake() {
        let shutdown = Shutdown::new();
        let early = tokio::spawn({
            let s = shutdown.clone();
            async move { s.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!early.is_finished());
        shutdown.trigger();
        early.await.unwrap();
        shutdown.wait().await;
    }
}
