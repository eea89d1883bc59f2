//! What both sample clients share: the in-flight limit (credits that
//! acknowledgements give back), the count of samples sent and acknowledged,
//! and why the stream ended.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::{CloseReason, EchoClientError};

/// The sending side's accounting.
#[derive(Debug)]
pub(crate) struct Inflight {
    payload: u64,
    /// The in-flight limit.
    window: usize,
    credits: Arc<Semaphore>,
    sent: Arc<AtomicU64>,
    acked: watch::Receiver<u64>,
    failure: Arc<Mutex<Option<CloseReason>>>,
    /// The last ack, or when samples became outstanding after none were.
    progress_at: Arc<Mutex<Instant>>,
    /// How long samples may stay outstanding without an ack.
    progress: Duration,
}

/// The acknowledging side, for the task that reads acks.
#[derive(Debug)]
pub(crate) struct Acks {
    credits: Arc<Semaphore>,
    /// Samples counted as sent: no ack may go beyond it.
    sent: Arc<AtomicU64>,
    acked: Arc<watch::Sender<u64>>,
    failure: Arc<Mutex<Option<CloseReason>>>,
    progress_at: Arc<Mutex<Instant>>,
}

impl Inflight {
    /// Samples of `payload` bytes, at most `max_inflight` unacknowledged.
    pub(crate) fn new(payload: u64, max_inflight: usize) -> (Inflight, Acks) {
        let credits = Arc::new(Semaphore::new(max_inflight));
        let (acked_tx, acked) = watch::channel(0u64);
        let failure = Arc::new(Mutex::new(None));
        let progress_at = Arc::new(Mutex::new(Instant::now()));
        let sent = Arc::new(AtomicU64::new(0));
        let acks = Acks {
            credits: credits.clone(),
            sent: sent.clone(),
            acked: Arc::new(acked_tx),
            failure: failure.clone(),
            progress_at: progress_at.clone(),
        };
        let inflight = Inflight {
            payload,
            window: max_inflight,
            credits,
            sent,
            acked,
            failure,
            progress_at,
            progress: super::DEFAULT_PROGRESS_TIMEOUT,
        };
        (inflight, acks)
    }

    /// Sets how long samples may stay outstanding without an ack.
    pub(crate) fn set_progress_timeout(&mut self, timeout: Duration) {
        self.progress = timeout;
    }

    /// How long samples may stay outstanding without an ack.
    pub(crate) fn progress_timeout(&self) -> Duration {
        self.progress
    }

    /// `operation`, unless samples stay outstanding for the progress
    /// timeout without an ack while it waits; then the stream is failed
    /// for every call, and the error names the count outstanding. No timer
    /// when the operation completes at once; otherwise one per wait, and
    /// the operation is not polled again until something wakes it (an
    /// extra poll of a blocked socket write is a wasted system call).
    pub(crate) async fn guard<T>(
        &self,
        operation: impl Future<Output = Result<T, EchoClientError>>,
    ) -> Result<T, EchoClientError> {
        let mut operation = std::pin::pin!(operation);
        let first = std::future::poll_fn(|cx| Poll::Ready(operation.as_mut().poll(cx))).await;
        if let Poll::Ready(done) = first {
            return done;
        }
        let mut at = *self.progress_at.lock().expect("progress lock");
        let Some(deadline) = self.deadline(at) else {
            return operation.await;
        };
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
        // The first poll above registered the operation's waker already.
        let mut just_polled = true;
        std::future::poll_fn(|cx| {
            if !std::mem::take(&mut just_polled)
                && let Poll::Ready(done) = operation.as_mut().poll(cx)
            {
                return Poll::Ready(done);
            }
            while sleep.as_mut().poll(cx).is_ready() {
                let now_at = *self.progress_at.lock().expect("progress lock");
                let outstanding = self.outstanding();
                if outstanding > 0 && now_at == at {
                    self.fail(CloseReason::Stalled {
                        outstanding,
                        after: self.progress,
                    });
                    let err = EchoClientError::Stalled {
                        outstanding,
                        after: self.progress,
                    };
                    self.credits.close();
                    return Poll::Ready(Err(err));
                }
                at = now_at;
                match self.deadline(at) {
                    Some(deadline) => sleep.as_mut().reset(deadline),
                    None => return Poll::Pending,
                }
            }
            Poll::Pending
        })
        .await
    }

    /// When samples outstanding since `at` (the last progress) time out:
    /// with none outstanding yet, a full period from now. `None` when the
    /// timeout is too long to have a deadline.
    fn deadline(&self, at: Instant) -> Option<Instant> {
        let base = match self.outstanding() {
            0 => Instant::now(),
            _ => at,
        };
        base.checked_add(self.progress)
    }

    /// Samples sent and not acknowledged.
    fn outstanding(&self) -> u64 {
        let sent = self.sent.load(Ordering::SeqCst);
        sent.saturating_sub(*self.acked.borrow())
    }

    /// The error for a closed stream, with the reason it ended.
    pub(crate) fn closed(&self) -> EchoClientError {
        let reason = self.failure.lock().expect("failure lock").clone();
        EchoClientError::ConnectionClosed {
            reason: reason.unwrap_or(CloseReason::ByClient),
        }
    }

    /// Records why the stream ended, unless a reason is known already.
    pub(crate) fn fail(&self, reason: CloseReason) {
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(reason);
    }

    /// Checks the sample's size and takes one credit, waiting while the
    /// in-flight limit is reached; counts the sample as sent. Cancel safe:
    /// a send dropped before the sample is on its way gives the credit and
    /// the count back when its [`Reservation`] is dropped uncommitted.
    pub(crate) async fn reserve(&self, size: usize) -> Result<Reservation<'_>, EchoClientError> {
        if size as u64 != self.payload {
            return Err(EchoClientError::WrongSize {
                expected: self.payload,
                actual: size as u64,
            });
        }
        self.take(1).await
    }

    /// As [`reserve`](Self::reserve), for `len` bytes of whole samples
    /// back to back: one credit per sample, all taken at once.
    pub(crate) async fn reserve_batch(
        &self,
        len: usize,
    ) -> Result<Reservation<'_>, EchoClientError> {
        let payload = usize::try_from(self.payload).unwrap_or(usize::MAX).max(1);
        if len == 0 || !len.is_multiple_of(payload) {
            return Err(EchoClientError::PartialBatch {
                payload: self.payload,
                len: len as u64,
            });
        }
        let samples = len / payload;
        if samples > self.window {
            return Err(EchoClientError::BatchTooLarge {
                samples,
                window: self.window,
            });
        }
        self.take(samples).await
    }

    /// Takes `samples` credits (at most the window) and counts them as
    /// sent.
    async fn take(&self, samples: usize) -> Result<Reservation<'_>, EchoClientError> {
        let permits = u32::try_from(samples).map_err(|_| EchoClientError::BatchTooLarge {
            samples,
            window: self.window,
        })?;
        let acquire = async {
            self.credits
                .acquire_many(permits)
                .await
                .map_err(|_| self.closed())
        };
        self.guard(acquire).await?.forget();
        let count = samples as u64;
        if self.sent.fetch_add(count, Ordering::SeqCst) <= *self.acked.borrow() {
            // The first sample outstanding: its ack is due from now.
            *self.progress_at.lock().expect("progress lock") = Instant::now();
        }
        Ok(Reservation {
            inflight: self,
            samples,
            committed: false,
        })
    }

    /// Waits until every sample sent so far is acknowledged.
    pub(crate) async fn wait(&self) -> Result<(), EchoClientError> {
        self.guard(self.wait_acked()).await
    }

    async fn wait_acked(&self) -> Result<(), EchoClientError> {
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

/// A send's credits and count, taken by [`Inflight::reserve`] (one sample)
/// or [`Inflight::reserve_batch`]: kept by
/// [`commit`](Self::commit) once the sample is on its way, given back if
/// the send is dropped before.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    inflight: &'a Inflight,
    samples: usize,
    committed: bool,
}

impl Reservation<'_> {
    /// The sample is on its way: it stays counted until acknowledged.
    pub(crate) fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.inflight
                .sent
                .fetch_sub(self.samples as u64, Ordering::SeqCst);
            self.inflight.credits.add_permits(self.samples);
        }
    }
}

/// Fails the stream from the task that writes samples: a failed write
/// ends it for every sender and waiter, as the end of the acks does.
#[derive(Debug)]
pub(crate) struct Failer {
    credits: Arc<Semaphore>,
    acked: Arc<watch::Sender<u64>>,
    failure: Arc<Mutex<Option<CloseReason>>>,
}

impl Failer {
    /// The stream ended on a failed write.
    pub(crate) fn fail(self, err: std::io::Error) {
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(CloseReason::Write {
                source: Arc::new(err),
            });
        self.credits.close();
        self.acked.send_modify(|_| {});
    }
}

impl Acks {
    /// A handle for the task that writes samples, to fail the stream.
    pub(crate) fn failer(&self) -> Failer {
        Failer {
            credits: self.credits.clone(),
            acked: self.acked.clone(),
            failure: self.failure.clone(),
        }
    }

    /// `total` samples acknowledged in all (cumulative acks).
    ///
    /// # Errors
    ///
    /// As [`more`](Self::more).
    pub(crate) fn total(&self, total: u64) -> Result<(), CloseReason> {
        let before = *self.acked.borrow();
        self.more(total.saturating_sub(before))
    }

    /// `n` more samples acknowledged.
    ///
    /// # Errors
    ///
    /// [`CloseReason::TooManyAcks`] when the acks go beyond the samples
    /// sent (a sample is counted as sent before it is written, so a
    /// server that acknowledges what it received never gets there); the
    /// caller ends the stream with it. Nothing is counted then: the
    /// credits would grow the window past its limit, and `wait` would
    /// report samples delivered that the server never acknowledged.
    pub(crate) fn more(&self, n: u64) -> Result<(), CloseReason> {
        let acknowledged = self.acked.borrow().saturating_add(n);
        let sent = self.sent.load(Ordering::SeqCst);
        if acknowledged > sent {
            return Err(CloseReason::TooManyAcks { acknowledged, sent });
        }
        if n > 0 {
            *self.progress_at.lock().expect("progress lock") = Instant::now();
        }
        // At most the window: no more than `sent` minus the acked, each
        // of which holds a credit.
        self.credits
            .add_permits(usize::try_from(n).expect("at most the window"));
        self.acked.send_modify(|count| *count += n);
        Ok(())
    }

    /// The stream ended: waiting senders and waiters get the reason.
    pub(crate) fn ended(self, reason: CloseReason) {
        self.failure
            .lock()
            .expect("failure lock")
            .get_or_insert(reason);
        self.credits.close();
        self.acked.send_modify(|_| {});
    }
}
