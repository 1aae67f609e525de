//! `/api/v1/updates`: drafts, previews, test copies, sending (now, later,
//! paused, resumed, cancelled) and the record of who got what.

use super::auth::Caller;
use super::{ApiError, ApiJson, Result, Routes, uuid_of};
use crate::services::{ServiceError, updates};
use crate::web::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use uuid::Uuid;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/updates", get(recent_updates).post(create_update))
        .route("/updates/{id}", get(get_update).patch(edit_update).put(edit_update).delete(delete_update))
        .route("/updates/{id}/preview", get(preview_update))
        .route("/updates/{id}/test", post(test_update))
        .route("/updates/{id}/send", post(send_update))
        .route("/updates/{id}/pause", post(pause_update))
        .route("/updates/{id}/resume", post(resume_update))
        .route("/updates/{id}/cancel", post(cancel_update))
        .route("/updates/{id}/stats", get(update_stats))
        .route("/updates/{id}/deliveries", get(update_deliveries))
}

#[utoipa::path(
    get,
    path = "/api/v1/updates",
    tag = "updates",
    operation_id = "list_updates",
    responses((status = 200, description = "The 100 most recent updates", body = Vec<updates::UpdateView>))
)]
pub(super) async fn recent_updates(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(updates::recent(&s.ctx, 100).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/updates",
    tag = "updates",
    operation_id = "create_update",
    request_body = updates::UpdateInput,
    responses((status = 201, description = "The new draft", body = updates::UpdateView), (status = 404, description = "A list does not exist", body = crate::web::error::ErrorBody))
)]
pub(super) async fn create_update(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    ApiJson(input): ApiJson<updates::UpdateInput>,
) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(updates::create(&s.ctx, &input, &actor).await?)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}",
    tag = "updates",
    operation_id = "get_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "The update", body = updates::UpdateView))
)]
pub(super) async fn get_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::get(&s.ctx, uuid_of(&id, "update")?).await?).into_response())
}

#[utoipa::path(
    method(patch, put),
    path = "/api/v1/updates/{id}",
    tag = "updates",
    operation_id = "edit_update",
    request_body = updates::UpdateInput,
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "The changed update", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn edit_update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<updates::UpdateInput>,
) -> Result<Response> {
    // An API token has full power, sending included, so an edit through
    // the API leaves a scheduled update scheduled.
    let edited = updates::edit(&s.ctx, uuid_of(&id, "update")?, &input, true).await?;
    Ok(Json(edited.update).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/updates/{id}",
    tag = "updates",
    operation_id = "delete_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 204, description = "Deleted"), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn delete_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    updates::delete(&s.ctx, uuid_of(&id, "update")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}/preview",
    tag = "updates",
    operation_id = "preview_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "The email as a sample supporter gets it", body = updates::Preview))
)]
pub(super) async fn preview_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::preview(&s.ctx, uuid_of(&id, "update")?).await?).into_response())
}

/// Where to send test copies.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct TestInput {
    #[serde(default)]
    #[schema(example = json!(["organiser@example.org"]))]
    emails: Vec<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct TestQueued {
    /// How many test copies were queued.
    queued: usize,
    /// Addresses given that got no copy: suppressed (erased, complained,
    /// hard-bounced) or withdrawn (unsubscribed from everything, complained,
    /// or left every list), as typed.
    skipped: Vec<String>,
    /// Of `skipped`, those on the suppression list.
    suppressed: Vec<String>,
    /// Of `skipped`, those who withdrew.
    withdrawn: Vec<String>,
}

/// The 429 answer when an organiser's hourly test-send cap is reached.
pub(in crate::web) fn test_cap_message(cap: u32, left: u32) -> String {
    format!(
        "The test-send limit is {cap} copies an hour for each organiser, and {left} are left this hour: \
         nothing was sent. Try again later with fewer addresses."
    )
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/test",
    tag = "updates",
    operation_id = "test_update",
    request_body = TestInput,
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses(
        (status = 202, description = "Test copies queued; suppressed and withdrawn addresses skipped", body = TestQueued),
        (status = 422, description = "No address, more than 10, or one that is not an address", body = crate::web::error::ErrorBody),
        (status = 429, description = "The hourly test-send cap (TIDINGS_TEST_SEND_HOURLY_CAP) is reached", body = crate::web::error::ErrorBody)
    )
)]
pub(super) async fn test_update(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TestInput>,
) -> Result<Response> {
    match updates::test_send(&s.ctx, uuid_of(&id, "update")?, &input.emails, &actor).await? {
        updates::TestSend::Queued { queued, skipped } => {
            let which = |reason: &str| -> Vec<String> {
                skipped.iter().filter(|s| s.reason == reason).map(|s| s.email.clone()).collect()
            };
            let answer = TestQueued {
                queued,
                suppressed: which("suppressed"),
                withdrawn: which("withdrawn"),
                skipped: skipped.iter().map(|s| s.email.clone()).collect(),
            };
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
        updates::TestSend::CapReached { cap, left } => {
            let mut res = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", test_cap_message(cap, left))
                .into_response();
            res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("3600"));
            Ok(res)
        }
    }
}

/// When to send; no body, or no `at`, sends now.
#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
struct SendInput {
    #[schema(example = "2030-01-07T09:00:00Z")]
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// Send although sender authentication fails (admins only; API tokens
    /// are admins). Recorded in the audit log.
    #[serde(default)]
    override_authentication: bool,
}

/// The 409 answer of a send refused by sender authentication: the usual
/// error, plus every failed check.
#[derive(serde::Serialize)]
struct SenderAuthBody {
    error: SenderAuthDetail,
}

#[derive(serde::Serialize)]
struct SenderAuthDetail {
    code: &'static str,
    message: String,
    checks: Vec<crate::services::sender_auth::Check>,
}

/// `{"at": RFC3339}` schedules; an empty body or no `at` sends now.
#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/send",
    tag = "updates",
    operation_id = "send_update",
    request_body = Option<SendInput>,
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 202, description = "Sending, or scheduled for `at`", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn send_update(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let input: SendInput = if body.iter().all(u8::is_ascii_whitespace) {
        SendInput::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                format!("expected {{\"at\": RFC 3339 time}}: {e}"),
            )
        })?
    };
    // API tokens are full power today, so a token may override.
    let request =
        updates::SendRequest { at: input.at, override_authentication: input.override_authentication, actor: &actor };
    match updates::send(&s.ctx, uuid_of(&id, "update")?, &request).await {
        Ok(view) => Ok((StatusCode::ACCEPTED, Json(view)).into_response()),
        Err(ServiceError::SenderAuthentication(report)) => {
            let message = format!(
                "Not sent: sender authentication fails ({}). Fix the records (see `tidings check`), or send with \
                 \"override_authentication\": true.",
                report.summary()
            );
            let checks = report.failures().into_iter().cloned().collect();
            let body = SenderAuthBody { error: SenderAuthDetail { code: "sender_authentication", message, checks } };
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/pause",
    tag = "updates",
    operation_id = "pause_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Paused", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn pause_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::pause(&s.ctx, uuid_of(&id, "update")?).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/resume",
    tag = "updates",
    operation_id = "resume_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Sending again", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn resume_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::resume(&s.ctx, uuid_of(&id, "update")?).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/updates/{id}/cancel",
    tag = "updates",
    operation_id = "cancel_update",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Cancelled", body = updates::UpdateView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn cancel_update(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::cancel(&s.ctx, uuid_of(&id, "update")?).await?).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}/stats",
    tag = "updates",
    operation_id = "update_stats",
    params(("id" = String, Path, description = "The update's id (uuid)")),
    responses((status = 200, description = "Deliveries by status, with complaint and hard-bounce figures", body = crate::services::updates::UpdateStats))
)]
pub(super) async fn update_stats(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(updates::stats(&s.ctx, uuid_of(&id, "update")?).await?).into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct PageQuery {
    cursor: Option<Uuid>,
    limit: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/updates/{id}/deliveries",
    tag = "updates",
    operation_id = "update_deliveries",
    params(("id" = String, Path, description = "The update's id (uuid)"), ("cursor" = Option<uuid::Uuid>, Query, description = "The `next` value of the previous page"), ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000 (default 100)")),
    responses((status = 200, description = "A page of the per-recipient record", body = DeliveriesPage))
)]
pub(super) async fn update_deliveries(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response> {
    let (deliveries, next) =
        updates::deliveries(&s.ctx, uuid_of(&id, "update")?, q.cursor, q.limit.unwrap_or(100)).await?;
    Ok(Json(DeliveriesPage { deliveries, next }).into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct DeliveriesPage {
    deliveries: Vec<updates::DeliveryView>,
    /// The cursor of the next page, if there may be one.
    next: Option<Uuid>,
}
