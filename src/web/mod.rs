//! HTTP: thin axum handlers that parse the request, call a service, and
//! render HTML (askama) or JSON. No SQL here.
//!
//! Layout: `public` (supporter pages), `api` (organiser JSON API, bearer
//! tokens), `error` (one error type → the right status, as JSON or HTML),
//! `input` (request bodies and client facts), `ratelimit`, `pages`
//! (template structs), `imports_api` (CSV imports and list exports) and
//! `upload` (streamed import forms).

pub mod admin;
mod api;
mod error;
mod imports_api;
mod input;
mod pages;
mod public;
mod ratelimit;
mod schedules_api;
mod upload;

pub use error::WebError;
pub use ratelimit::RateLimiter;

use crate::services::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use std::sync::Arc;
use std::time::Duration;

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
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn(request_timeout))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Requests that stream a large upload (a CSV import): exempt from the
/// 30-second limit, since a big file over a slow link takes longer; they
/// are bounded instead by their size limit and an idle timeout on each
/// piece (`upload::IDLE_TIMEOUT`), plus this hour overall.
const UPLOADS: &[&str] = &["/api/v1/imports", "/admin/imports"];
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers `408 Request Timeout` when a handler takes longer than its limit.
async fn request_timeout(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let upload = req.method() == axum::http::Method::POST && UPLOADS.contains(&req.uri().path());
    let limit = if upload { UPLOAD_TIMEOUT } else { REQUEST_TIMEOUT };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => axum::http::StatusCode::REQUEST_TIMEOUT.into_response(),
    }
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
