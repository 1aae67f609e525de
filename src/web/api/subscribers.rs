//! `/api/v1/subscribers`: finding and adding subscribers, correcting them,
//! their consent ledger, a copy of everything held about one, and erasure.

use super::auth::Caller;
use super::{ApiError, ApiJson, Result, Routes, uuid_of};
use crate::services::consent::{self, ConsentEventView};
use crate::services::directory::SubscriberPage;
use crate::services::privacy_ops::{self, SubscriberExport};
use crate::services::subscribers::{self, AddSubscriberInput, SubscriberView};
use crate::web::AppState;
use crate::web::input::Client;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use uuid::Uuid;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/subscribers", get(find_subscriber).post(add_subscriber))
        .route("/subscribers/{id}", get(get_subscriber).patch(rectify_subscriber).delete(delete_subscriber))
        .route("/subscribers/{id}/consent", get(consent_ledger))
        .route("/subscribers/{id}/export", get(export_subscriber))
        .route("/subscribers/{id}/erase", post(erase_subscriber))
}

#[derive(serde::Deserialize)]
pub(super) struct SubscriberQuery {
    email: Option<String>,
}

/// `?email=E` finds one subscriber by address (404 if none). Without it, a
/// page of subscribers, newest first: `{"subscribers": […], "next": cursor
/// or null}`, filtered by `list`, `status`, `q`, `created_from`,
/// `created_to`, continued with `cursor`, at most `limit` (≤ 500) long.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers",
    tag = "subscribers",
    operation_id = "find_subscribers",
    params(("email" = Option<String>, Query, description = "Find one subscriber by address"), ("list" = Option<String>, Query, description = "Only subscribers of this list (slug or id)"), ("status" = Option<String>, Query, description = "Only this subscription status"), ("q" = Option<String>, Query, description = "A substring of the address"), ("created_from" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339, inclusive"), ("created_to" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339, inclusive"), ("cursor" = Option<String>, Query, description = "The `next` value of the previous page"), ("limit" = Option<String>, Query, description = "Page size, 1 to 500 (default 50)")),
    responses((status = 200, description = "With `email`: that subscriber (a SubscriberView); otherwise a page of subscribers (a SubscriberPage)", body = SubscriberLookup), (status = 404, description = "No subscriber has that address", body = crate::web::error::ErrorBody), (status = 422, description = "Invalid fields", body = crate::web::error::ErrorBody))
)]
pub(super) async fn find_subscriber(
    State(s): State<AppState>,
    Query(q): Query<SubscriberQuery>,
    Query(search): Query<crate::services::directory::SearchInput>,
) -> Result<Response> {
    let found = match q.email {
        Some(email) => SubscriberLookup::One(subscribers::find_by_email(&s.ctx, &email).await?),
        None => SubscriberLookup::Page(crate::services::directory::search(&s.ctx, &search).await?),
    };
    Ok(Json(found).into_response())
}

/// `GET /subscribers` answers one subscriber (`?email=`) or a page.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum SubscriberLookup {
    One(SubscriberView),
    Page(SubscriberPage),
}

#[utoipa::path(
    post,
    path = "/api/v1/subscribers",
    tag = "subscribers",
    operation_id = "add_subscriber",
    request_body = AddSubscriberInput,
    responses(
        (status = 201, description = "Created", body = SubscriberView),
        (status = 200, description = "The address was already known; its subscriptions were extended", body = SubscriberView),
        (status = 409, description = "The person withdrew, bounced or complained (code `withdrawn`) or the address is suppressed (code `suppressed`): nothing changed, nothing mailed", body = crate::web::error::ErrorBody)
    )
)]
pub(super) async fn add_subscriber(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    client: Client,
    ApiJson(input): ApiJson<AddSubscriberInput>,
) -> Result<Response> {
    let (view, created) = subscribers::add(&s.ctx, &input, actor, &client.meta()).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view)).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{id}",
    tag = "subscribers",
    operation_id = "get_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "The subscriber", body = SubscriberView))
)]
pub(super) async fn get_subscriber(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(subscribers::get(&s.ctx, uuid_of(&id, "subscriber")?).await?).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{id}/consent",
    tag = "subscribers",
    operation_id = "consent_ledger",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "The consent ledger, oldest first", body = Vec<ConsentEventView>))
)]
pub(super) async fn consent_ledger(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(consent::ledger(&s.ctx, uuid_of(&id, "subscriber")?).await?).into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct ExportQuery {
    format: Option<String>,
}

/// A copy of everything held about one subscriber: JSON, or CSV with
/// `?format=csv` or `Accept: text/csv`.
#[utoipa::path(
    get,
    path = "/api/v1/subscribers/{id}/export",
    tag = "subscribers",
    operation_id = "export_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)"), ("format" = Option<String>, Query, description = "`csv` for CSV")),
    responses((status = 200, description = "Everything held about the subscriber (CSV with ?format=csv or Accept: text/csv)", body = SubscriberExport))
)]
pub(super) async fn export_subscriber(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = uuid_of(&id, "subscriber")?;
    let wants_csv = match q.format.as_deref() {
        Some(f) => f.eq_ignore_ascii_case("csv"),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.to_ascii_lowercase().contains("text/csv")),
    };
    let export = privacy_ops::export(&s.ctx.store, &s.ctx.clock, &s.ctx.config.group_name, id).await?;
    if !wants_csv {
        return Ok(Json(export).into_response());
    }
    let csv = privacy_ops::export_csv(&export).map_err(|e| {
        tracing::error!(error = %e, "writing a data copy as CSV failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side. Please try again.",
        )
    })?;
    let disposition = format!("attachment; filename=\"subscriber-{id}.csv\"");
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        csv,
    )
        .into_response())
}

/// Corrects a subscriber's address, name or attributes (rectification):
/// the ledger, subscriptions and deliveries stay linked.
#[utoipa::path(
    patch,
    path = "/api/v1/subscribers/{id}",
    tag = "subscribers",
    operation_id = "rectify_subscriber",
    request_body = subscribers::RectifyInput,
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses(
        (status = 200, description = "The corrected subscriber", body = SubscriberView),
        (status = 409, description = "Another subscriber has that address", body = crate::web::error::ErrorBody),
    )
)]
pub(super) async fn rectify_subscriber(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<subscribers::RectifyInput>,
) -> Result<Response> {
    Ok(Json(subscribers::rectify(&s.ctx, uuid_of(&id, "subscriber")?, &input).await?).into_response())
}

/// `DELETE` is erasure, as `POST …/erase`.
#[utoipa::path(
    delete,
    path = "/api/v1/subscribers/{id}",
    tag = "subscribers",
    operation_id = "delete_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "Erased; only a suppression entry remains", body = Erased))
)]
pub(super) async fn delete_subscriber(
    state: State<AppState>,
    caller: Extension<Caller>,
    id: Path<String>,
) -> Result<Response> {
    erase_subscriber(state, caller, id).await
}

/// Erases a subscriber, keeping only a suppression entry; `404` if unknown
/// (so a second call is a 404).
#[utoipa::path(
    post,
    path = "/api/v1/subscribers/{id}/erase",
    tag = "subscribers",
    operation_id = "erase_subscriber",
    params(("id" = String, Path, description = "The subscriber's id (uuid)")),
    responses((status = 200, description = "Erased; only a suppression entry remains", body = Erased))
)]
pub(super) async fn erase_subscriber(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response> {
    let erased =
        privacy_ops::erase(&s.ctx.store, &s.ctx.clock, &s.ctx.address_key, uuid_of(&id, "subscriber")?, &actor).await?;
    Ok(Json(Erased { id: erased.id, erased: true, suppressed: erased.suppressed, removed: erased.removed })
        .into_response())
}

/// What `POST /subscribers/{id}/erase` did.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Erased {
    id: Uuid,
    /// Always true.
    erased: bool,
    /// The address is on the suppression list (always true afterwards).
    suppressed: bool,
    removed: crate::store::ErasureCounts,
}
