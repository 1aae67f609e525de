//! What operators see of a running server: `GET /metrics`, a request id on
//! every request (and on every log line written while serving it), and the
//! latency of every request by route.
//!
//! `/metrics` is served on the metrics listener (`TIDINGS_METRICS_BIND`),
//! and on the public listener only when `TIDINGS_METRICS_PUBLIC` says so:
//! its counters move when someone new subscribes, so an open `/metrics`
//! tells anyone whether an address was already on a list. With
//! `TIDINGS_METRICS_TOKEN` set, every scrape must carry that bearer token.
//!
//! Request ids: an incoming `X-Request-Id` is kept when it is a sane token
//! (at most 128 characters of letters, digits and `-_.:`), otherwise a
//! UUID is made; the id is returned in the response's `X-Request-Id` and
//! recorded in the `request` span, so JSON logs carry it in `span.request_id`.
//! The span names the route template (`/confirm/{token}`), not the path, so
//! tokens in links never reach the logs.

use super::AppState;
use super::public;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::time::{Duration, Instant};

/// The request id header, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// How long a scrape waits for the database before reporting without queue depths.
const QUEUE_SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The label used for requests no route matched (bounded, unlike their paths).
const UNMATCHED: &str = "unmatched";

/// `/metrics` on the public listener, when the operator asked for it;
/// otherwise nothing (the public fallback answers 404).
pub(super) fn router(state: &AppState) -> Router<AppState> {
    if state.ctx.config.metrics_public { Router::new().route("/metrics", get(metrics)) } else { Router::new() }
}

/// What a `tidings worker` process serves when `TIDINGS_METRICS_BIND` is set:
/// metrics and probes, nothing else.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(public::healthz))
        .route("/readyz", get(public::readyz))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_request))
        .with_state(state)
}

/// True when no token is configured, or the request carries it as a
/// bearer token. Both sides are hashed first, so the comparison takes the
/// same time wherever they differ.
fn scrape_allowed(token: Option<&str>, headers: &axum::http::HeaderMap) -> bool {
    use sha2::{Digest, Sha256};
    let Some(token) = token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(given) = given else { return false };
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(token.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if !scrape_allowed(state.ctx.config.metrics_token.as_deref(), &headers) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")], "")
            .into_response();
    }
    let since = state.ctx.clock.now() - chrono::Duration::days(30);
    let sample = async {
        let mut tx = state.ctx.store.read().await?;
        let queue = tx.queue_depth().await?;
        let sends = tx.send_quality(since).await?;
        Ok::<_, crate::store::StoreError>((queue, sends))
    };
    let (queue, sends) = match tokio::time::timeout(QUEUE_SAMPLE_TIMEOUT, sample).await {
        Ok(Ok((q, s))) => (Some(q), Some(s)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: could not sample the queues");
            (None, None)
        }
        Err(_) => {
            tracing::warn!("metrics: sampling the queues timed out");
            (None, None)
        }
    };
    match state.ctx.metrics.render(queue, sends) {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: encoding failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The route template of a request, or [`UNMATCHED`].
fn route_of(req: &Request) -> &str {
    match req.extensions().get::<MatchedPath>().map(MatchedPath::as_str) {
        // A nested router's catch-all is not a route anyone wrote.
        Some(path) if !path.contains("__private__") => path,
        _ => UNMATCHED,
    }
}

/// Observes each request's latency by method, route template and status class.
pub(super) async fn record_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = route_of(&req).to_owned();
    let res = next.run(req).await;
    state.ctx.metrics.http_request(method.as_str(), &route, res.status().as_u16(), started.elapsed());
    res
}

/// The span every log line of a request is written in.
pub(super) fn request_span(req: &Request) -> tracing::Span {
    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route_of(req))
}

/// True for an id we are willing to echo and log.
fn acceptable_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
}

/// Drops an incoming request id we will not repeat (so a fresh one is made).
pub(super) async fn screen_request_id(mut req: Request, next: Next) -> Response {
    if req.headers().get(REQUEST_ID).is_some_and(|v| !acceptable_id(v)) {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_token_must_be_presented_exactly() {
        let mut h = axum::http::HeaderMap::new();
        assert!(scrape_allowed(None, &h), "no token configured: open");
        assert!(!scrape_allowed(Some("s3cret-s3cret-s3cret"), &h), "no header");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret-s3cret-s3cre"));
        assert!(!scrape_allowed(Some("s3cret-s3cret-s3cret"), &h), "a prefix is not the token");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic s3cret-s3cret-s3cret"));
        assert!(!scrape_allowed(Some("s3cret-s3cret-s3cret"), &h), "not a bearer token");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer s3cret-s3cret-s3cret"));
        assert!(scrape_allowed(Some("s3cret-s3cret-s3cret"), &h));
    }

    #[test]
    fn only_plain_short_request_ids_are_kept() {
        assert!(acceptable_id(&HeaderValue::from_static("7b0c5a1e-req:42_x.y")));
        assert!(!acceptable_id(&HeaderValue::from_static("")));
        assert!(!acceptable_id(&HeaderValue::from_static("has space")));
        assert!(!acceptable_id(&HeaderValue::from_static("quote\"")));
        assert!(!acceptable_id(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
    }
}
