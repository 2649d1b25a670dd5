//! The accept loop. `axum::serve` has no header-read or idle timeout and no connection cap: a
//! thousand clients that send half a request and wait hold a thousand file descriptors for as long
//! as they like, and then nothing (not even `/healthz`) can be answered. Here every connection
//! must send a request's headers within the idle timeout, whether it is new or kept alive between
//! requests, or it is closed; and past the cap, the newest connections are shed at once, so those
//! already being served (and the descriptors the database needs) are kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How the server treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once; the newest past it are closed unanswered.
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, and how long a kept-alive
    /// connection may wait idle for its next request.
    pub idle_timeout: Duration,
}

/// File descriptors kept for everything but connections: the database pool, the outbox's calls
/// to the platforms, logs.
const RESERVED_DESCRIPTORS: u64 = 128;

impl ConnectionLimits {
    /// Raises this process's open-file limit to what the system allows, and lowers the cap when
    /// the descriptors left after [`RESERVED_DESCRIPTORS`] could not hold it (with a warning).
    pub fn fitted_to_the_process(self) -> ConnectionLimits {
        let available = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => limit,
            Err(error) => {
                tracing::warn!(%error, "could not read the open-file limit; keeping the configured connection cap");
                return self;
            }
        };
        let fits = available.saturating_sub(RESERVED_DESCRIPTORS).max(1) as usize;
        if fits < self.max_connections {
            tracing::warn!(
                configured = self.max_connections,
                serving = fits,
                open_files = available,
                "the open-file limit cannot hold server.max_connections; serving fewer at once"
            );
            return ConnectionLimits { max_connections: fits, ..self };
        }
        self
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting and lets the
/// requests in flight finish (idle kept-alive connections are closed at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout).keep_alive(true);
    let shed = AtomicU64::new(0);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of descriptors or a connection reset before it was taken: the listener
                // itself is fine. A short rest keeps an exhausted process from spinning.
                tracing::warn!(%error, "could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Logged once per thousand, so a flood cannot fill the disk with the same line.
            let count = shed.fetch_add(1, Ordering::Relaxed);
            if count.is_multiple_of(1000) {
                tracing::warn!(
                    max = limits.max_connections,
                    shed = count + 1,
                    "at the connection cap; shedding new connections"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that goes away mid-request is its own business, not an error of ours.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
