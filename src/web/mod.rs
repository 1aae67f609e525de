//! HTTP: thin axum handlers that parse the request, call a service, and
//! render HTML (askama) or JSON. No SQL here. The map of which flow lives
//! where is ARCHITECTURE.md; this is the layout of this folder.
//!
//! - `public`: the supporter pages (sign up, confirm, unsubscribe,
//!   preferences, data copies, privacy notice, archive), each answering
//!   JSON or a page through `negotiate` (one `Negotiated`
//!   answer, built for what the client asked for).
//! - `api/`: the organiser JSON API under `/api/v1`, one module per
//!   resource (`lists`, `subscribers`, `consent`, `updates`, `schedules`,
//!   `imports`, `records`), each with its own `router()`, composed in
//!   `api/mod.rs`; bearer tokens and the audit of every change in
//!   `api/auth.rs`; `api/error.rs` (`ApiError`, made from a
//!   `ServiceError` by `?`, always JSON); `api/openapi.rs` (the API
//!   description, `GET /api/v1/openapi.json`).
//! - `admin/`: the organiser UI, every route wrapped in the session,
//!   access, CSRF and audit layers of `admin/auth.rs`.
//! - `webhooks`: bounce and complaint reports from providers.
//! - `embed`: what the campaign's own site needs (CORS for the JSON
//!   subscribe endpoint and the challenge, the copy-paste form).
//! - `observability`: `/metrics`, request ids, request latency.
//! - `error`: [`WebError`], one error → the right status, as JSON or an
//!   HTML page in the site's layout that says what to do next.
//! - `input`: request bodies and client facts (`Client`, `Submitted`).
//! - `upload`: streamed import forms (API and admin).
//! - `ratelimit`: the sign-up limits per address and subnet.
//! - `challenge`: the sign-up proof-of-work.
//! - `pages`: the supporter pages' template structs.
//! - `server`: the accept loop, with header-read and idle timeouts and a
//!   connection limit.

pub mod admin;
mod api;
mod challenge;
mod embed;
mod error;
mod input;
mod negotiate;
mod observability;
mod pages;
mod public;
mod ratelimit;
pub mod server;
mod upload;
mod webhooks;

pub use api::api_doc;
pub use embed::subscribe_snippet;
pub use error::WebError;
pub use input::Submitted;
pub use observability::{REQUEST_ID, ops_router};
pub use public::subscribe_input;
pub use ratelimit::{RateLimiter, SubscribeLimits};

use crate::services::Context;
use crate::services::subscribe_queue::SubscribeQueue;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use std::sync::Arc;
use std::time::Duration;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Context,
    /// Sign-ups per address and per subnet.
    pub subscribe_limits: Arc<SubscribeLimits>,
    /// Issues and checks the sign-up proof-of-work challenge.
    pub challenges: Arc<challenge::Challenges>,
    /// Commits public subscribes in batches (group commit).
    pub subscribe_queue: SubscribeQueue,
}

impl AppState {
    /// Must be called inside a tokio runtime (it starts the subscribe
    /// queue's task).
    pub fn new(ctx: Context) -> Self {
        let c = &ctx.config;
        Self {
            subscribe_limits: Arc::new(SubscribeLimits::new(c.subscribe_limit_per_ip, c.subscribe_limit_per_subnet)),
            challenges: Arc::new(challenge::Challenges::new(&ctx.secret_key, c.subscribe_challenge_max_number)),
            subscribe_queue: SubscribeQueue::start(ctx.clone()),
            ctx,
        }
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
        .merge(public::router(&state))
        .merge(observability::router(&state))
        .nest("/api/v1", api::router(state.clone()))
        .merge(admin::router(state.clone()))
        .merge(webhooks::router(&state))
        .layer(axum::middleware::map_response_with_state(state.clone(), error::error_pages))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(axum::middleware::from_fn(request_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observability::record_request))
        // One INFO line per request, inside a span carrying the request id.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(observability::request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn(observability::screen_request_id))
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
/// referrer leaking tokens from URLs, no script at all (so none inline),
/// and, when the public address is https, HSTS.
async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if state.ctx.config.base_url.scheme() == "https" {
        // Only a site reached over https may pin browsers to https; one year,
        // and not includeSubDomains (the operator's other hosts are not ours).
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
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
