//! A connection that a signal can cut: once it fires, every read and write
//! fails, so the HTTP/2 connection on top ends and the calls on it fail at
//! once: a stopping server's peers, instead of waiting for handlers that
//! will never answer; a host's own calls to a plugin that exited, instead
//! of waiting on a socket that something else keeps open.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// `inner`, until `cut` is cancelled.
pub(crate) struct Cutoff<T> {
    inner: T,
    cut: Pin<Box<dyn Future<Output = ()> + Send + Sync>>,
    done: bool,
    /// What the failed reads and writes say.
    why: &'static str,
    /// The connection's place under a server's connection limit, given
    /// back when the connection is dropped.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<T: std::fmt::Debug> std::fmt::Debug for Cutoff<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cutoff")
            .field("inner", &self.inner)
            .field("done", &self.done)
            .finish()
    }
}

impl<T> Cutoff<T> {
    /// `inner` until `cut` fires, holding `permit` for as long as the
    /// connection lives; then its reads and writes fail saying `why`.
    pub(crate) fn new(
        inner: T,
        cut: CancellationToken,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
        why: &'static str,
    ) -> Self {
        Cutoff {
            inner,
            cut: Box::pin(async move {
                cut.cancelled_owned().await;
            }),
            done: false,
            why,
            _permit: permit,
        }
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The error to fail with once the signal fired; registers for a
    /// wake-up when it has not.
    fn cut_error(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if !self.done && self.cut.as_mut().poll(cx).is_ready() {
            self.done = true;
        }
        self.done
            .then(|| io::Error::new(io::ErrorKind::ConnectionAborted, self.why))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Cutoff<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(err) = this.cut_error(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Cutoff<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(err) = this.cut_error(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(err) = this.cut_error(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(err) = this.cut_error(cx) {
            return Poll::Ready(Err(err));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_pending_read_fails_when_cut() {
        let (a, mut b) = tokio::io::duplex(64);
        let cut = CancellationToken::new();
        let rx = cut.clone();
        let mut a = Cutoff::new(a, rx, None, "connection cut off");
        b.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
        let read = tokio::spawn(async move { a.read(&mut buf).await });
        tokio::task::yield_now().await;
        cut.cancel();
        let err = read.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
}
