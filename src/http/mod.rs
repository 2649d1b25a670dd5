//! The HTTP edge: the axum router with a body-size limit, a timeout and a request id on every
//! route, health checks, one error type, and the platforms' routes (each platform brings its own).

pub mod error;
mod health;
mod serve;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::store::Store;

pub use error::HttpError;
pub use health::Health;
pub use serve::{ConnectionLimits, serve};

/// Largest request body accepted; platforms send a few kilobytes, so anything near this is abuse.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the core's own handlers reach (each platform's routes carry their own state).
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Whether the background loops are still running.
    pub health: Health,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: a per-process random prefix and a counter. Unique enough to follow one request
/// through the logs, and far cheaper than a random UUID per request (no system call).
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> RequestIds {
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        RequestIds { prefix: hex::encode(bytes).into(), next: Arc::new(std::sync::atomic::AtomicU64::new(1)) }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n}", self.prefix).parse().ok().map(RequestId::new)
    }
}

/// The whole router: health checks, the platforms' routes, and the layers every route shares.
pub fn router(state: AppState, platforms: Router, request_timeout: Duration) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
        // Only the method, path and request id: query strings and bodies may carry secrets.
        let id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
    });
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .merge(platforms)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds::new()))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
                .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, request_timeout)),
        )
}
