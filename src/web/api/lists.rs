//! `/api/v1/lists`: mailing lists, and a list's subscribers as CSV.

use super::{ApiJson, Result, Routes};
use crate::services::exports::{self, Cursor};
use crate::services::lists::{self, ListInput, ListView};
use crate::web::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/lists", get(all_lists).post(create_list))
        .route("/lists/{id}", get(get_list).patch(update_list).put(update_list).delete(delete_list))
        .route("/lists/{id}/export", get(export_list))
}

#[utoipa::path(
    get,
    path = "/api/v1/lists",
    tag = "lists",
    operation_id = "list_lists",
    responses((status = 200, description = "Every list", body = Vec<ListView>))
)]
pub(super) async fn all_lists(State(s): State<AppState>) -> Result<Response> {
    Ok(Json(lists::all(&s.ctx).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/lists",
    tag = "lists",
    operation_id = "create_list",
    request_body = ListInput,
    responses((status = 201, description = "The new list", body = ListView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn create_list(State(s): State<AppState>, ApiJson(input): ApiJson<ListInput>) -> Result<Response> {
    let list = lists::create(&s.ctx, &input).await?;
    Ok((StatusCode::CREATED, Json(list)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/lists/{id}",
    tag = "lists",
    operation_id = "get_list",
    params(("id" = String, Path, description = "The list's id or slug")),
    responses((status = 200, description = "The list", body = ListView))
)]
pub(super) async fn get_list(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(lists::get(&s.ctx, &id).await?).into_response())
}

#[utoipa::path(
    method(patch, put),
    path = "/api/v1/lists/{id}",
    tag = "lists",
    operation_id = "update_list",
    request_body = ListInput,
    params(("id" = String, Path, description = "The list's id or slug")),
    responses((status = 200, description = "The changed list", body = ListView), (status = 409, description = "Conflicts with the current state", body = crate::web::error::ErrorBody))
)]
pub(super) async fn update_list(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ListInput>,
) -> Result<Response> {
    Ok(Json(lists::update(&s.ctx, &id, &input).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/v1/lists/{id}",
    tag = "lists",
    operation_id = "delete_list",
    params(("id" = String, Path, description = "The list's id or slug")),
    responses((status = 204, description = "Deleted"))
)]
pub(super) async fn delete_list(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    lists::delete(&s.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A list's subscribers as CSV, streamed a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/lists/{id}/export",
    tag = "lists",
    operation_id = "export_list",
    params(("id" = String, Path, description = "The list's id or slug")),
    responses((status = 200, description = "Every subscriber of the list as CSV, streamed", content_type = "text/csv", body = String))
)]
pub(super) async fn export_list(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let (scope, slug) = exports::list_scope(&s.ctx, &id).await?;
    let store = s.ctx.store.clone();
    let pages = futures_util::stream::unfold(Some(Cursor::new(scope)), move |cursor| {
        let store = store.clone();
        async move {
            let mut cursor = cursor?;
            match exports::next_page(&store, &mut cursor).await {
                Ok(Some(bytes)) => Some((Ok(Bytes::from(bytes)), Some(cursor))),
                Ok(None) => None,
                Err(e) => {
                    // The status line is gone already: end the body
                    // abruptly, so the client sees a broken download
                    // rather than a short file that looks complete.
                    tracing::error!(error = %e, "list export failed part-way");
                    Some((Err(e), None))
                }
            }
        }
    });
    let disposition = format!("attachment; filename=\"{slug}.csv\"");
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(pages),
    )
        .into_response())
}
