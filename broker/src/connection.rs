//! One client connection's bounds: the cap on connections served at once,
//! and the watch on its activity that closes a connection which takes too
//! long to send a request head or moves no bytes for too long.

use crate::config::ConnectionLimits;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Admits at most `max_connections` connections at once.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    slots: Arc<Semaphore>,
}

impl ConnectionCap {
    /// A cap of `n` connections.
    pub fn new(n: usize) -> ConnectionCap {
        ConnectionCap {
            slots: Arc::new(Semaphore::new(n.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }

    /// A slot for one more connection, held until dropped; `None` when full.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).try_acquire_owned().ok()
    }
}

/// What one connection has been doing, shared by its I/O, its requests and
/// its watch. Times are milliseconds since the connection was accepted.
#[derive(Debug)]
pub struct Activity {
    accepted: Instant,
    last_io_ms: AtomicU64,
    last_request_end_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    /// A connection accepted now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            accepted: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            last_request_end_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.accepted + Duration::from_millis(ms)
    }

    fn touch(&self) {
        self.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// When the connection has overstayed if nothing happens before: a
    /// request head is due `header_read_timeout` after the connection went
    /// without a request, and some byte `idle_timeout` after the last.
    pub fn deadline(&self, limits: &ConnectionLimits) -> Instant {
        let idle = self.at(self.last_io_ms.load(Ordering::Relaxed)) + limits.idle_timeout;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return idle;
        }
        let head =
            self.at(self.last_request_end_ms.load(Ordering::Acquire)) + limits.header_read_timeout;
        idle.min(head)
    }

    /// Which limit the connection has overstayed at `now`, if any: a request
    /// head not sent in time (`header_read_timeout`), or no bytes moved in
    /// time (`idle_timeout`).
    pub fn overstayed(&self, limits: &ConnectionLimits, now: Instant) -> Option<&'static str> {
        let idle = self.at(self.last_io_ms.load(Ordering::Relaxed)) + limits.idle_timeout;
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let head = self.at(self.last_request_end_ms.load(Ordering::Acquire))
                + limits.header_read_timeout;
            if head <= now {
                return Some("header_read_timeout");
            }
        }
        (idle <= now).then_some("idle_timeout")
    }

    /// Counts a request as in progress until the guard (and the response
    /// body it is moved into) is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

/// One request in progress on a connection.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_request_end_ms.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until it is
/// sent (an event stream can last minutes).
pub struct Counted<B> {
    inner: B,
    _request: InFlight,
}

impl<B> Counted<B> {
    /// `inner`, holding `request` until done.
    pub fn new(inner: B, request: InFlight) -> Self {
        Counted {
            inner,
            _request: request,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's byte stream, noting every transfer in its [`Activity`].
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    /// `inner`, reporting to `activity`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_admits_up_to_n() {
        let cap = ConnectionCap::new(2);
        let a = cap.admit().expect("first");
        let _b = cap.admit().expect("second");
        assert!(cap.admit().is_none());
        drop(a);
        assert!(cap.admit().is_some());
    }

    #[tokio::test]
    async fn deadline_follows_requests() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        };
        let a = Activity::new();
        // Just accepted: the head is due first.
        assert_eq!(a.deadline(&limits), a.accepted + Duration::from_secs(5));
        let at = |s: u64| a.accepted + Duration::from_secs(s);
        assert_eq!(a.overstayed(&limits, at(4)), None);
        assert_eq!(a.overstayed(&limits, at(5)), Some("header_read_timeout"));
        // A request in progress: only idleness counts.
        let r = a.request();
        assert_eq!(a.deadline(&limits), a.accepted + Duration::from_secs(60));
        assert_eq!(a.overstayed(&limits, at(59)), None);
        assert_eq!(a.overstayed(&limits, at(60)), Some("idle_timeout"));
        drop(r);
        assert!(a.deadline(&limits) <= Instant::now() + Duration::from_secs(5));
    }
}
