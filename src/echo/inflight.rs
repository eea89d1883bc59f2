//! What both sample clients share: the in-flight limit (credits that
//! acknowledgements give back), the count of samples sent and acknowledged,
//! and why the stream ended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, watch};

use super::EchoClientError;

/// The sending side's accounting.
#[derive(Debug)]
pub(crate) struct Inflight {
    payload: u64,
    credits: Arc<Semaphore>,
    sent: AtomicU64,
    acked: watch::Receiver<u64>,
    failure: Arc<Mutex<Option<String>>>,
}

/// The acknowledging side, for the task that reads acks.
#[derive(Debug)]
pub(crate) struct Acks {
    credits: Arc<Semaphore>,
    acked: watch::Sender<u64>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Inflight {
    /// Samples of `payload` bytes, at most `max_inflight` unacknowledged.
    pub(crate) fn new(payload: u64, max_inflight: usize) -> (Inflight, Acks) {
        let credits = Arc::new(Semaphore::new(max_inflight));
        let (acked_tx, acked) = watch::channel(0u64);
        let failure = Arc::new(Mutex::new(None));
        let acks = Acks {
            credits: credits.clone(),
            acked: acked_tx,
            failure: failure.clone(),
        };
        let inflight = Inflight {
            payload,
            credits,
            sent: AtomicU64::new(0),
            acked,
            failure,
        };
        (inflight, acks)
    }

    /// The error for a closed stream, with the reason it ended.
    pub(crate) fn closed(&self) -> EchoClientError {
        let reason = self.failure.lock().expect("failure lock").clone();
        EchoClientError::ConnectionClosed {
            reason: reason.unwrap_or_else(|| "closed by the client".to_owned()),
        }
    }

    /// Records why the stream ended, unless a reason is known already.
    pub(crate) fn fail(&self, reason: impl Into<String>) {
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert_with(|| reason.into());
    }

    /// Checks the sample's size and takes one credit, waiting while the
    /// in-flight limit is reached; counts the sample as sent.
    pub(crate) async fn reserve(&self, size: usize) -> Result<(), EchoClientError> {
        if size as u64 != self.payload {
            return Err(EchoClientError::WrongSize {
                expected: self.payload,
                actual: size as u64,
            });
        }
        let permit = self.credits.acquire().await.map_err(|_| self.closed())?;
        permit.forget();
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Waits until every sample sent so far is acknowledged.
    pub(crate) async fn wait(&self) -> Result<(), EchoClientError> {
        let sent = self.sent.load(Ordering::SeqCst);
        let mut acked = self.acked.clone();
        loop {
            if *acked.borrow_and_update() >= sent {
                return Ok(());
            }
            if self.failure.lock().expect("failure lock").is_some()
                || acked.changed().await.is_err()
            {
                return Err(self.closed());
            }
        }
    }

    /// Samples acknowledged so far.
    pub(crate) fn acknowledged(&self) -> u64 {
        *self.acked.borrow()
    }
}

impl Acks {
    /// `total` samples acknowledged in all (cumulative acks).
    pub(crate) fn total(&self, total: u64) {
        let before = *self.acked.borrow();
        self.more(total.saturating_sub(before));
    }

    /// `n` more samples acknowledged.
    pub(crate) fn more(&self, n: u64) {
        self.credits.add_permits(n as usize);
        self.acked.send_modify(|count| *count += n);
    }

    /// The stream ended: waiting senders and waiters get the reason.
    pub(crate) fn ended(self, reason: String) {
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(reason);
        self.credits.close();
        self.acked.send_modify(|_| {});
    }
}
