//! HTTP: thin axum handlers that parse the request, call a service, and
//! render HTML (askama) or JSON. No SQL here.
//!
//! Layout: `public` (supporter pages), `api` (organiser JSON API, bearer
//! tokens), `error` (one error type → the right status, as JSON or HTML),
//! `input` (request bodies and client facts), `ratelimit`, `pages`
//! (template structs).

pub mod admin;
mod api;
mod error;
mod input;
mod pages;
mod public;
mod ratelimit;
mod records_api;
mod schedules_api;
mod webhooks;

pub use error::WebError;
pub use ratelimit::RateLimiter;

use crate::services::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use std::sync::Arc;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Context,
    pub subscribe_limiter: Arc<RateLimiter>,
}

impl AppState {
    pub fn new(ctx: Context) -> Self {
        let limit = ctx.config.subscribe_limit_per_ip;
        Self { ctx, subscribe_limiter: Arc::new(RateLimiter::new(limit, Duration::from_secs(60))) }
    }
}

/// The path of every organiser API route, under `/api/v1` (for tests that
/// must cover every route).
pub fn api_paths() -> Vec<&'static str> {
    api::paths()
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.ctx.config.max_body_bytes;
    Router::new()
        .merge(public::router())
        .nest("/api/v1", api::router(state.clone()))
        .merge(admin::router(state.clone()))
        .merge(webhooks::router())
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Conservative headers on every response: no framing, no sniffing, no
/// referrer leaking tokens from URLs, no inline script.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A handler may set a stricter or more specific policy of its own (the
    // email preview); otherwise this default applies.
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    res
}
