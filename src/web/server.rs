//! Serving the public listener: our own accept loop around hyper instead of
//! `axum::serve`, so that slow, idle and too many clients are bounded.
//!
//! `axum::serve` sets no timer, so hyper never times out reading a request
//! head: a client that connects and sends nothing (or half a header line)
//! holds its connection, and its file descriptor, for ever; a few hundred
//! of them used up the process's open-file limit and the server stopped
//! answering. Here each connection gets
//! - a **header-read timeout** ([`Limits::header_read_timeout`],
//!   `TIDINGS_HEADER_READ_TIMEOUT_SECONDS`): the whole request head must
//!   arrive within it, and a kept-alive connection waiting for its next
//!   request is waiting for a head too, so it is closed after as long;
//! - an **idle timeout** ([`Limits::idle_timeout`],
//!   `TIDINGS_IDLE_TIMEOUT_SECONDS`): a connection on which no byte moves
//!   either way for that long while the server waits on it (a stalled body
//!   upload, a client that stopped reading its answer) is closed;
//! - a place under a **connection limit** ([`Limits::max_connections`]):
//!   below the open-file limit (`RLIMIT_NOFILE`, read at start) less a
//!   reserve for the database, SMTP and files. At the limit the loop stops
//!   accepting, so further clients wait in the kernel's backlog instead of
//!   failing the server; `TIDINGS_MAX_CONNECTIONS` may set it lower.
//!
//! Shutdown as `axum::serve` does it: stop accepting, ask every connection
//! to finish its request in flight and close, and wait for them.

use crate::config::Config;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// Descriptors kept back from the connection limit: database pools, the
/// SMTP pool, the outbox files, the metrics listener, logs.
pub const RESERVED_FILES: u64 = 64;

/// What bounds the connections of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// From the configuration and this process's open-file limit.
    pub fn from_config(config: &Config) -> Self {
        let by_files = connections_allowed_by(open_file_limit(), config.send_concurrency);
        let max_connections = match config.max_connections {
            0 => by_files,
            n if n > by_files => {
                tracing::warn!(
                    configured = n,
                    allowed = by_files,
                    "TIDINGS_MAX_CONNECTIONS is above what the open-file limit allows; using the lower number"
                );
                by_files
            }
            n => n,
        };
        Self { header_read_timeout: config.header_read_timeout, idle_timeout: config.idle_timeout, max_connections }
    }
}

/// Connections that fit under `nofile` open files, less the reserve (and
/// two per SMTP connection, which may be mid-handshake while another opens).
fn connections_allowed_by(nofile: u64, send_concurrency: u32) -> usize {
    let reserve = RESERVED_FILES + 2 * u64::from(send_concurrency);
    usize::try_from(nofile.saturating_sub(reserve).max(1)).unwrap_or(usize::MAX)
}

/// The soft `RLIMIT_NOFILE` of this process (1024 where it cannot be read).
#[cfg(target_os = "linux")]
pub fn open_file_limit() -> u64 {
    // /proc keeps this free of `unsafe` getrlimit calls.
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|soft| if soft == "unlimited" { Some(u64::MAX) } else { soft.parse().ok() })
        .unwrap_or(1024)
}

#[cfg(not(target_os = "linux"))]
pub fn open_file_limit() -> u64 {
    1024
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then lets the connections finish their requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A place first: at the limit nothing is accepted, and clients wait
        // in the backlog rather than taking a descriptor.
        let place = tokio::select! {
            place = places.clone().acquire_owned() => match place {
                Ok(place) => place,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    drop(place);
                    if !is_connection_error(&e) {
                        // EMFILE/ENFILE and the like: wait a moment instead of spinning.
                        tracing::error!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let closing = closing.clone();
        connections.spawn(async move {
            serve_connection(stream, peer, router, limits, closing).await;
            drop(place);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
) {
    let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
    let service = TowerToHyperService::new(WithPeer { router, peer });
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let mut connection = std::pin::pin!(builder.serve_connection_with_upgrades(io, service));
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = closing.wait_for(|c| *c) => connection.as_mut().graceful_shutdown(),
    }
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "connection ended with an error while closing");
    }
}

/// The router with the client's socket address in each request's
/// extensions, as `into_make_service_with_connect_info` puts it there.
#[derive(Clone)]
struct WithPeer {
    router: Router,
    peer: SocketAddr,
}

impl<B> tower_service::Service<axum::http::Request<B>> for WithPeer
where
    Router: tower_service::Service<axum::http::Request<B>>,
{
    type Response = <Router as tower_service::Service<axum::http::Request<B>>>::Response;
    type Error = <Router as tower_service::Service<axum::http::Request<B>>>::Error;
    type Future = <Router as tower_service::Service<axum::http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<axum::http::Request<B>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        self.router.call(req)
    }
}

/// A stream that fails with `TimedOut` once no byte has moved either way
/// for `timeout` while it was waited on.
struct IdleTimeout {
    inner: TcpStream,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Self { inner, timeout, deadline: Box::pin(tokio::time::sleep(timeout)) }
    }

    fn moved(&mut self) {
        let next = Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    /// Called when the inner stream is not ready: `Ready(Err)` once idle
    /// too long (the sleep's waker is registered otherwise).
    fn idle_too_long(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")),
            Poll::Pending => Poll::Pending,
        }
    }

    fn after<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        moved: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(Ok(v)) => {
                if moved(&v) {
                    self.moved();
                }
                Poll::Ready(Ok(v))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.idle_too_long(cx).map(Err),
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let after = buf.filled().len();
        self.after(cx, polled, |()| after > before)
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after(cx, polled, |n| *n > 0)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after(cx, polled, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.after(cx, polled, |()| false)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_stays_below_the_open_file_limit() {
        assert_eq!(connections_allowed_by(256, 4), 256 - 64 - 8);
        assert_eq!(connections_allowed_by(20_000, 4), 20_000 - 72);
        assert_eq!(connections_allowed_by(10, 4), 1, "never zero");
        assert!(open_file_limit() >= 16);
    }
}
