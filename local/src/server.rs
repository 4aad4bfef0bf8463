//! Serving the gateway on 127.0.0.1 as an edge would: a client that is slow to send its
//! headers is disconnected, one that stalls its body gets a 400, oversized headers are
//! refused (431), and every handler
//! sees the peer's address (`ConnectInfo`), which the gateway turns into the client address.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long open requests may take to finish once shutdown is asked.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The edge's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accepting a connection (or the end of the last request) to the end of the
    /// request's headers.
    pub header_read: Duration,
    /// Between two parts of a body (a stalled body ends as 400 `UNREADABLE_BODY`).
    pub body_read: Duration,
    /// The request line and headers together (API Gateway allows about 10 KB of headers).
    pub max_head_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(10),
            max_head_bytes: 16 * 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish (for up
/// to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    // No limit on a handler's own time: a saga step on a slow emulator may take long, and
    // what an API Gateway integration would cut at 30 s is the handler's to bound.
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_read));
    // HTTP/1 only: the limits below are HTTP/1's, and an HTTP/2 connection would escape them.
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        // hyper's floor is 8 KiB.
        .max_buf_size(limits.max_head_bytes.max(8 * 1024));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let router = router.clone();
        let service = tower::service_fn(move |mut request: axum::extract::Request<_>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish in time");
    }
}
