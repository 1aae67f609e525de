//! How the API fails: [`ApiError`], the error every API handler returns
//! (always JSON, and made from a `ServiceError` by `?`), and
//! [`json_errors`], the layer that gives the errors axum answers itself the
//! same JSON shape.

use crate::services::ServiceError;
use crate::web::WebError;
use crate::web::error::ErrorBody;
use axum::Json;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A failed API call: a [`WebError`] that is always rendered as JSON. `?`
/// makes one from a `ServiceError` (mapped by `WebError::from_service`, as
/// everywhere) or from a `WebError`.
#[derive(Debug)]
pub struct ApiError(WebError);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(WebError::new(status, code, message))
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self(WebError::from_service(e, true))
    }
}

impl From<WebError> for ApiError {
    fn from(e: WebError) -> Self {
        Self(e.as_json(true))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

/// The answer to a path no API route matches (behind the token layer, so
/// only organisers learn which routes exist).
pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such API route.")
}

/// Errors axum answers itself (a path or query it cannot decode, a method a
/// route does not take) come as plain text: give them the API's JSON error
/// shape too, keeping their status and headers (`Allow` on a 405).
pub(super) async fn json_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_owned(),
        t => t.to_owned(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let mut res = (parts.status, Json(ErrorBody::new(code, message))).into_response();
    for (name, value) in parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE) {
        res.headers_mut().insert(name, value.clone());
    }
    res
}
