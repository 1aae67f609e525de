//! `POST /webhooks/{provider}`: bounce and complaint events from Amazon SES
//! (via SNS), Postmark, SendGrid, Mailgun and Tidings' generic JSON
//! (README, "Bounces and complaints").
//!
//! Authentication is one shared secret, `TIDINGS_WEBHOOK_SECRET`, accepted
//! as the HTTP Basic password (every provider can put credentials in the
//! webhook URL: `https://tidings:SECRET@host/webhooks/ses`), as a bearer
//! token (`Authorization: Bearer SECRET`), or in an
//! `X-Tidings-Webhook-Secret` header, and compared in constant time. The
//! older `?secret=` still works, but a query string lands in proxy and
//! access logs: startup warns about it once, and each use is logged at
//! warn. A client address that offers [`FAILURE_LIMIT`] missing or wrong
//! secrets within a minute is answered 429 until the minute is over, without
//! the secret being checked (counted in memory, per process). With no
//! secret configured the route answers 404: an endpoint that changes
//! subscribers must not be open by default.
//!
//! Mailgun payloads must also carry a valid signature when
//! `TIDINGS_MAILGUN_SIGNING_KEY` is set, made at most
//! [`MAILGUN_MAX_AGE_SECONDS`] ago (or ahead, for clock skew) and never
//! seen before: each accepted signature's token is kept in the database for
//! that window, so a captured request cannot be replayed on any instance.
//!
//! Answers: 200 with counts once the events are applied (an unknown address
//! is recorded and answered 200, so a provider does not retry it forever;
//! a repeat of an event is answered 200 and has no effect), 401 for a
//! missing or wrong secret or signature, 400 for a body that is not the
//! provider's format, 413 above [`MAX_BYTES`], 404 for an unknown provider.

use super::input::client_ip;
use super::{AppState, RateLimiter, WebError};
use crate::services::bounces::{self, Summary, providers};
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Largest webhook body read (SendGrid batches and SES notifications with
/// headers are far larger than a subscribe form).
pub const MAX_BYTES: usize = 1024 * 1024;

/// The header that may carry the shared secret.
pub const SECRET_HEADER: &str = "x-tidings-webhook-secret";

/// Missing or wrong secrets allowed per client address per minute.
pub const FAILURE_LIMIT: u32 = 5;

/// How old (or how far ahead) a Mailgun signature's timestamp may be.
pub const MAILGUN_MAX_AGE_SECONDS: i64 = 300;

/// Wrong-secret counts per client address (this process's).
#[derive(Clone)]
struct Failures(Arc<RateLimiter>);

pub fn router(state: &AppState) -> axum::Router<AppState> {
    if state.ctx.config.webhook_secret.is_some() {
        tracing::warn!(
            "webhooks are on: have providers send the secret in the X-Tidings-Webhook-Secret header, as \
             `Authorization: Bearer SECRET` or as the Basic password; `?secret=` in the URL still works but \
             lands in proxy and access logs (README, \"Bounces and complaints\")"
        );
    }
    let failures = Failures(Arc::new(RateLimiter::new(FAILURE_LIMIT, Duration::from_secs(60))));
    axum::Router::new().route("/webhooks/{provider}", post(receive)).layer(axum::Extension(failures))
}

#[derive(serde::Serialize)]
struct Accepted {
    status: &'static str,
    #[serde(flatten)]
    summary: Summary,
}

/// Constant-time equality (of the digests, so the length leaks nothing).
fn same_secret(given: &str, secret: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(secret.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Every secret the request offers (Basic password, bearer token, header),
/// and those in the query string (`?secret=`) apart.
fn offered(headers: &HeaderMap, query: Option<&str>) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION).iter().filter_map(|v| v.to_str().ok()) {
        let Some((scheme, credentials)) = value.trim().split_once(' ') else { continue };
        if scheme.eq_ignore_ascii_case("bearer") {
            found.push(credentials.trim().to_owned());
        } else if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credentials.trim())
            && let Ok(text) = String::from_utf8(decoded)
        {
            found.push(text.split_once(':').map_or(text.as_str(), |(_, password)| password).to_owned());
        }
    }
    found.extend(headers.get_all(SECRET_HEADER).iter().filter_map(|v| v.to_str().ok()).map(|v| v.trim().to_owned()));
    let in_query = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "secret")
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default();
    (found, in_query)
}

/// The timestamp and token of a Mailgun payload's signature (already
/// checked against the signing key).
fn mailgun_signature(bytes: &[u8]) -> Option<(i64, String)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let sig = value.get("signature")?;
    let timestamp = sig.get("timestamp")?.as_str()?.trim().parse::<f64>().ok()?;
    let token = sig.get("token")?.as_str()?.to_owned();
    timestamp.is_finite().then_some((timestamp.trunc() as i64, token))
}

fn throttled(retry_after: Duration) -> Response {
    let mut res = WebError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests with a missing or wrong webhook secret. Wait a minute and try again.",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

fn unauthorised(message: &str) -> Response {
    let mut res = WebError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tidings-webhooks\""));
    res
}

async fn receive(
    State(state): State<AppState>,
    Extension(Failures(failures)): Extension<Failures>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Body,
) -> Response {
    let config = &state.ctx.config;
    let Some(secret) = config.webhook_secret.as_deref() else {
        return WebError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Webhooks are not enabled on this server (TIDINGS_WEBHOOK_SECRET is not set).",
        )
        .into_response();
    };
    let Some(provider) = providers::Provider::from_name(&provider) else {
        return WebError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such webhook provider: use ses, postmark, sendgrid, mailgun or generic.",
        )
        .into_response();
    };
    let client = client_ip(&headers, &extensions, config);
    if let Some(retry_after) = client.and_then(|ip| failures.exhausted(ip)) {
        return throttled(retry_after);
    }
    let (in_headers, in_query) = offered(&headers, query.as_deref());
    let by_header = in_headers.iter().any(|given| same_secret(given, secret));
    let by_query = !by_header && in_query.iter().any(|given| same_secret(given, secret));
    if !by_header && !by_query {
        if let Some(ip) = client
            && let Err(retry_after) = failures.check(ip)
        {
            return throttled(retry_after);
        }
        return unauthorised("The webhook secret is missing or wrong.");
    }
    if by_query {
        tracing::warn!(
            provider = ?provider,
            "a webhook passed its secret as ?secret= in the URL, which lands in proxy and access logs: \
             send it in the X-Tidings-Webhook-Secret header or as `Authorization: Bearer` instead"
        );
    }
    let too_large = || {
        WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("The body is larger than {MAX_BYTES} bytes."))
            .into_response()
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BYTES as u64) {
        return too_large();
    }
    let bytes = match axum::body::to_bytes(body, MAX_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => {
            return too_large();
        }
        Err(_) => {
            return WebError::new(StatusCode::BAD_REQUEST, "bad_request", "The body could not be read.")
                .into_response();
        }
    };
    let parsed = match providers::parse(provider, &bytes, config.mailgun_signing_key.as_deref()) {
        Ok(parsed) => parsed,
        Err(providers::PayloadError::BadSignature) => {
            return unauthorised("The Mailgun signature is missing or wrong.");
        }
        Err(providers::PayloadError::Malformed(message)) => {
            return WebError::new(StatusCode::BAD_REQUEST, "bad_request", message).into_response();
        }
    };
    let replay_guard = match (provider, config.mailgun_signing_key.as_ref()) {
        (providers::Provider::Mailgun, Some(_)) => match fresh_mailgun_signature(&state, &bytes).await {
            Ok(token) => Some(token),
            Err(res) => return res,
        },
        _ => None,
    };
    match bounces::ingest(&state.ctx, &parsed).await {
        Ok(outcomes) => {
            let summary = Summary::new(&outcomes, parsed.ignored.len());
            (StatusCode::OK, Json(Accepted { status: "ok", summary })).into_response()
        }
        Err(e) => {
            // Not applied: let the provider's retry, with the same
            // signature, through.
            if let Some(token) = replay_guard {
                forget_mailgun_signature(&state, &token).await;
            }
            WebError::from_service(e, true).into_response()
        }
    }
}

/// Refuses a (validly signed) Mailgun payload whose signature is more than
/// [`MAILGUN_MAX_AGE_SECONDS`] old or ahead, or was seen before; otherwise
/// remembers its token and returns it.
async fn fresh_mailgun_signature(state: &AppState, bytes: &[u8]) -> Result<String, Response> {
    let Some((timestamp, token)) = mailgun_signature(bytes) else {
        return Err(unauthorised("The Mailgun signature is missing or wrong."));
    };
    let now = state.ctx.clock.now();
    if (now.timestamp() - timestamp).abs() > MAILGUN_MAX_AGE_SECONDS {
        return Err(unauthorised("The Mailgun signature is too old (more than 5 minutes): it is not accepted again."));
    }
    let window = chrono::Duration::seconds(2 * MAILGUN_MAX_AGE_SECONDS);
    let noted = async {
        let mut tx = state.ctx.store.write().await?;
        let fresh = tx.note_webhook_signature(&token, now, now - window).await?;
        tx.commit().await?;
        Ok::<bool, crate::store::StoreError>(fresh)
    };
    match noted.await {
        Ok(true) => Ok(token),
        Ok(false) => Err(unauthorised("This Mailgun signature was already used: a replayed request is not accepted.")),
        Err(e) => Err(WebError::from_service(e.into(), true).into_response()),
    }
}

async fn forget_mailgun_signature(state: &AppState, token: &str) {
    let forgotten = async {
        let mut tx = state.ctx.store.write().await?;
        tx.forget_webhook_signature(token).await?;
        tx.commit().await
    };
    if let Err(e) = forgotten.await {
        tracing::warn!(error = %e, "could not forget a Mailgun signature after a failed ingest");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_taken_from_basic_auth_header_or_query() {
        let mut headers = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("tidings:s3cret:with:colons");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {basic}")).unwrap());
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer from-bearer"));
        headers.insert(SECRET_HEADER, HeaderValue::from_static("from-header"));
        let (found, in_query) = offered(&headers, Some("a=1&secret=from%20query"));
        assert_eq!(found, ["s3cret:with:colons", "from-bearer", "from-header"]);
        assert_eq!(in_query, ["from query"]);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("", "abc") && !same_secret("abcd", "abc"));
    }
}
