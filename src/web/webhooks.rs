//! `POST /webhooks/{provider}`: bounce and complaint events from Amazon SES
//! (via SNS), Postmark, SendGrid, Mailgun and Tidings' generic JSON
//! (README, "Bounces and complaints").
//!
//! Authentication is one shared secret, `TIDINGS_WEBHOOK_SECRET`, accepted
//! as the HTTP Basic password (every provider can put credentials in the
//! webhook URL: `https://tidings:SECRET@host/webhooks/ses`), as `?secret=`,
//! or in an `X-Tidings-Webhook-Secret` header, and compared in constant
//! time. With no secret configured the route answers 404: an endpoint that
//! changes subscribers must not be open by default. Mailgun payloads must
//! also carry a valid signature when `TIDINGS_MAILGUN_SIGNING_KEY` is set.
//!
//! Answers: 200 with counts once the events are applied (an unknown address
//! is recorded and answered 200, so a provider does not retry it forever;
//! a repeat of an event is answered 200 and has no effect), 401 for a
//! missing or wrong secret or signature, 400 for a body that is not the
//! provider's format, 413 above [`MAX_BYTES`], 404 for an unknown provider.

use super::{AppState, WebError};
use crate::services::bounces::{self, Summary, providers};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Largest webhook body read (SendGrid batches and SES notifications with
/// headers are far larger than a subscribe form).
pub const MAX_BYTES: usize = 1024 * 1024;

/// The header that may carry the shared secret.
pub const SECRET_HEADER: &str = "x-tidings-webhook-secret";

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/webhooks/{provider}", post(receive))
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

/// Every secret the request offers: Basic password, header, `?secret=`.
fn offered(headers: &HeaderMap, query: Option<&str>) -> Vec<String> {
    let mut found = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION).iter().filter_map(|v| v.to_str().ok()) {
        if let Some((scheme, encoded)) = value.trim().split_once(' ')
            && scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim())
            && let Ok(text) = String::from_utf8(decoded)
        {
            found.push(text.split_once(':').map_or(text.as_str(), |(_, password)| password).to_owned());
        }
    }
    found.extend(headers.get_all(SECRET_HEADER).iter().filter_map(|v| v.to_str().ok()).map(|v| v.trim().to_owned()));
    if let Some(q) = query {
        found.extend(
            url::form_urlencoded::parse(q.as_bytes()).filter(|(k, _)| k == "secret").map(|(_, v)| v.into_owned()),
        );
    }
    found
}

fn unauthorised(message: &str) -> Response {
    let mut res = WebError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tidings-webhooks\""));
    res
}

async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
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
    if !offered(&headers, query.as_deref()).iter().any(|given| same_secret(given, secret)) {
        return unauthorised("The webhook secret is missing or wrong.");
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
    match bounces::ingest(&state.ctx, &parsed).await {
        Ok(outcomes) => {
            let summary = Summary::new(&outcomes, parsed.ignored.len());
            (StatusCode::OK, Json(Accepted { status: "ok", summary })).into_response()
        }
        Err(e) => WebError::from_service(e, true).into_response(),
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
        headers.insert(SECRET_HEADER, HeaderValue::from_static("from-header"));
        let found = offered(&headers, Some("a=1&secret=from%20query"));
        assert_eq!(found, ["s3cret:with:colons", "from-header", "from query"]);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd") && !same_secret("", "abc") && !same_secret("abcd", "abc"));
    }
}
