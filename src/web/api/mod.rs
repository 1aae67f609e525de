//! The organiser JSON API under `/api/v1` (README, "Organiser API"). Every
//! route needs `Authorization: Bearer TOKEN`; errors are always JSON.
//!
//! One module per resource, each with its own `router()`: `lists` (lists
//! and a list's CSV export), `subscribers` (subscribers, their consent
//! ledger, data copies and erasure), `consent` (privacy notices and consent
//! statements), `updates` (drafts, tests, sending and its record),
//! `schedules` (recurring sends), `imports` (CSV imports as background
//! jobs) and `records` (the audit log and the rights-request log). Beside
//! them: `auth` (the bearer-token layer, which also audits every
//! state-changing call) and `error` ([`ApiError`], which handlers return
//! and `?` makes from a `ServiceError`, and the layer giving axum's own
//! errors the same JSON shape).
//!
//! Each handler carries a `#[utoipa::path]` describing it; `openapi`
//! builds `GET /api/v1/openapi.json` from them, and a test proves every
//! route in [`paths`] is described with exactly the methods it answers.

mod auth;
mod consent;
mod error;
mod imports;
mod lists;
mod openapi;
mod records;
mod schedules;
mod subscribers;
mod updates;

pub use openapi::api_doc;
pub(super) use records::audit_csv;
pub(super) use updates::test_cap_message;

use error::ApiError;

use super::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};

/// What API handlers return.
type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A resource's routes: the axum router, and the path of each route it
/// holds, so tests can enumerate every route and prove each one refuses
/// anonymous callers and is described in the OpenAPI document.
struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    fn new() -> Self {
        Self { router: Router::new(), paths: Vec::new() }
    }

    fn route(mut self, path: &'static str, handler: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, handler);
        self.paths.push(path);
        self
    }

    fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }
}

/// Every API route: each resource's router, and the API's own description.
fn routes() -> Routes {
    Routes::new()
        .merge(lists::router())
        .merge(subscribers::router())
        .merge(updates::router())
        .merge(consent::router())
        .merge(schedules::router())
        .merge(records::router())
        .merge(imports::router())
        .route("/openapi.json", get(openapi::document))
}

/// The path of every API route (under `/api/v1`).
pub fn paths() -> Vec<&'static str> {
    routes().paths
}

pub fn router(state: AppState) -> Router<AppState> {
    routes()
        .router
        .fallback(error::not_found)
        // Authentication wraps every route above, and the fallback too, so
        // an anonymous caller learns nothing about which routes exist.
        .layer(axum::middleware::from_fn_with_state(state, auth::require_token))
        .layer(axum::middleware::from_fn(error::json_errors))
}

/// `Json<T>` whose rejections are our JSON errors.
struct ApiJson<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.body_text()))
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send Content-Type: application/json.",
            )),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "The request is too large."))
            }
            Err(_) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "The request body is not valid JSON.")),
        }
    }
}

/// A path segment that must be a uuid; anything else names nothing, so it
/// is a 404 ("No such {what}.") rather than a 400.
fn uuid_of(raw: &str, what: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(raw)
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("No such {what}.")))
}
