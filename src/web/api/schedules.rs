//! `/api/v1/schedules`: recurring sends (README, "Recurring schedules").

use super::auth::Caller;
use super::{ApiJson, Result, Routes, uuid_of};
use crate::services::schedules::{self, ScheduleInput, ScheduleView};
use crate::web::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Extension, Json};

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/schedules", routing::get(all).post(create))
        .route("/schedules/{id}", routing::get(get).patch(edit).delete(delete))
}

#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "schedules",
    operation_id = "list_schedules",
    responses((status = 200, description = "Every schedule", body = Vec<ScheduleView>))
)]
pub(super) async fn all(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(schedules::all(&s.ctx).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/schedules",
    tag = "schedules",
    operation_id = "create_schedule",
    request_body = ScheduleInput,
    responses((status = 201, description = "The new schedule", body = ScheduleView), (status = 404, description = "A list does not exist", body = crate::web::error::ErrorBody))
)]
pub(super) async fn create(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    ApiJson(input): ApiJson<ScheduleInput>,
) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(schedules::create(&s.ctx, &input, &actor).await?)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "get_schedule",
    params(("id" = String, Path, description = "The schedule's id (uuid)")),
    responses((status = 200, description = "The schedule", body = ScheduleView))
)]
pub(super) async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(schedules::get(&s.ctx, uuid_of(&id, "schedule")?).await?).into_response())
}

#[utoipa::path(
    patch,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "edit_schedule",
    request_body = ScheduleInput,
    params(("id" = String, Path, description = "The schedule's id (uuid)")),
    responses((status = 200, description = "The changed schedule", body = ScheduleView))
)]
pub(super) async fn edit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ScheduleInput>,
) -> Result<Response> {
    Ok(Json(schedules::edit(&s.ctx, uuid_of(&id, "schedule")?, &input).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/schedules/{id}",
    tag = "schedules",
    operation_id = "delete_schedule",
    params(("id" = String, Path, description = "The schedule's id (uuid)")),
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    schedules::delete(&s.ctx, uuid_of(&id, "schedule")?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
