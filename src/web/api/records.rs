//! `/api/v1/audit-log` and `/api/v1/rights-requests`: the audit log (read
//! and export) and the rights-request log.

use super::auth::{Caller, CallerName};
use super::{ApiJson, Result, Routes, uuid_of};
use crate::services::Context;
use crate::services::audit::{self, FilterInput, Who};
use crate::services::rights::{self, Change, NewRightsRequest};
use crate::store::AuditFilter;
use crate::web::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use uuid::Uuid;

pub(super) fn router() -> Routes {
    Routes::new()
        .route("/audit-log", get(audit_log))
        .route("/rights-requests", get(rights_requests).post(create_rights_request))
        .route("/rights-requests/{id}", get(rights_request).patch(change_rights_request))
}

#[derive(serde::Deserialize)]
pub(super) struct Format {
    #[serde(default)]
    format: String,
}

/// One page of the audit log.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct AuditPage {
    entries: Vec<crate::store::AuditRow>,
    /// Pass back as `before` for the next (older) page; null on the last.
    next: Option<Uuid>,
}

/// A page of entries, newest first: `{"entries": […], "next": id or null}`
/// (pass `next` back as `before`); or, with `format=csv`, every matching
/// entry as CSV, streamed.
#[utoipa::path(
    get,
    path = "/api/v1/audit-log",
    tag = "records",
    operation_id = "audit_log",
    params(
        ("actor" = Option<String>, Query, description = "Part of who acted (token name, organiser address, actor id)"),
        ("action" = Option<String>, Query, description = "Part of what was done (e.g. `send`, `/lists`) or of its target"),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD or RFC 3339: entries from then on"),
        ("until" = Option<String>, Query, description = "YYYY-MM-DD (to the end of that day) or RFC 3339 (before it)"),
        ("before" = Option<String>, Query, description = "The `next` value of the previous page"),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 100)"),
        ("format" = Option<String>, Query, description = "`csv` for every matching entry as CSV"),
    ),
    responses(
        (status = 200, description = "A page of entries (or CSV with format=csv)", body = AuditPage, content_type = "application/json"),
        (status = 422, description = "Invalid filters", body = crate::web::error::ErrorBody),
    )
)]
pub(super) async fn audit_log(
    State(s): State<AppState>,
    Query(input): Query<FilterInput>,
    Query(format): Query<Format>,
) -> Result<Response> {
    let filter = input.parse()?;
    if format.format == "csv" {
        return Ok(audit_csv(s.ctx.clone(), filter));
    }
    let limit = input.limit.unwrap_or(100).clamp(1, audit::MAX_PAGE);
    let entries = audit::page(&s.ctx, &filter, limit).await?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(Json(AuditPage { entries, next }).into_response())
}

/// Streams every entry matching `filter` as CSV, a page at a time, so an
/// export of any size holds one page in memory.
pub(crate) fn audit_csv(ctx: Context, filter: AuditFilter) -> Response {
    let stream = futures_util::stream::unfold(Some((ctx, filter, true)), |state| async move {
        let (ctx, mut filter, first) = state?;
        let page = match audit::page(&ctx, &filter, audit::MAX_PAGE).await {
            Ok(page) => page,
            Err(e) => return Some((Err(std::io::Error::other(e.to_string())), None)),
        };
        let mut chunk = if first { audit::csv_header().map_err(std::io::Error::other).ok()? } else { Vec::new() };
        match audit::csv_rows(&page) {
            Ok(rows) => chunk.extend(rows),
            Err(e) => return Some((Err(std::io::Error::other(e)), None)),
        }
        let done = (page.len() as i64) < audit::MAX_PAGE;
        filter.before = page.last().map(|e| e.id);
        Some((Ok::<_, std::io::Error>(chunk), (!done).then_some((ctx, filter, false))))
    });
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"audit-log.csv\""),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct StatusQuery {
    status: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/rights-requests",
    tag = "records",
    operation_id = "list_rights_requests",
    params(("status" = Option<String>, Query, description = "`open`, `completed` or `refused`")),
    responses(
        (status = 200, description = "Open requests first (soonest due first), then closed ones", body = Vec<rights::RightsRequest>),
        (status = 422, description = "Unknown status", body = crate::web::error::ErrorBody),
    )
)]
pub(super) async fn rights_requests(State(s): State<AppState>, Query(q): Query<StatusQuery>) -> Result<Response> {
    Ok(Json(rights::list(&s.ctx, q.status.as_deref()).await?).into_response())
}

#[utoipa::path(
    post,
    path = "/api/v1/rights-requests",
    tag = "records",
    operation_id = "log_rights_request",
    request_body = NewRightsRequest,
    responses(
        (status = 201, description = "The request, due one calendar month after receipt (a complaint: its acknowledgement due 30 days after)", body = rights::RightsRequest),
        (status = 422, description = "Unknown kind, no subject, or received in the future", body = crate::web::error::ErrorBody),
    )
)]
pub(super) async fn create_rights_request(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(name): Extension<CallerName>,
    ApiJson(input): ApiJson<NewRightsRequest>,
) -> Result<Response> {
    let who = who(caller, name);
    Ok((StatusCode::CREATED, Json(rights::create(&s.ctx, &input, &who).await?)).into_response())
}

/// Who a rights request's history names: the token and its name.
fn who(Caller(actor): Caller, CallerName(name): CallerName) -> Who {
    Who { actor: actor.to_db(), label: name, ip: None }
}

#[utoipa::path(
    get,
    path = "/api/v1/rights-requests/{id}",
    tag = "records",
    operation_id = "get_rights_request",
    params(("id" = String, Path, description = "The request's id (uuid)")),
    responses(
        (status = 200, description = "The request, with its history", body = rights::RightsRequest),
        (status = 404, description = "No such request", body = crate::web::error::ErrorBody),
    )
)]
pub(super) async fn rights_request(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(rights::get(&s.ctx, uuid_of(&id, "rights request")?).await?).into_response())
}

/// `{"action": "extend", "reason"}`, `{"action": "pause", "reason"}` (stop
/// the clock), `{"action": "resume", "reason"}`, `{"action": "acknowledge"}`
/// (a complaint), `{"action": "complete", "outcome"}`, `{"action":
/// "refuse", "outcome"}` or `{"action": "note", "notes"}`. Each is kept in
/// the request's `history` with who, when and the reason.
#[utoipa::path(
    patch,
    path = "/api/v1/rights-requests/{id}",
    tag = "records",
    operation_id = "change_rights_request",
    request_body = Change,
    params(("id" = String, Path, description = "The request's id (uuid)")),
    responses(
        (status = 200, description = "The changed request", body = rights::RightsRequest),
        (status = 404, description = "No such request", body = crate::web::error::ErrorBody),
        (status = 409, description = "Not possible now: already closed, already extended, the clock already stopped (or not stopped), a complaint extended or paused, a request other than a complaint acknowledged", body = crate::web::error::ErrorBody),
        (status = 422, description = "A reason or outcome is missing or too long", body = crate::web::error::ErrorBody),
    )
)]
pub(super) async fn change_rights_request(
    State(s): State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(name): Extension<CallerName>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<Change>,
) -> Result<Response> {
    let who = who(caller, name);
    Ok(Json(rights::change(&s.ctx, uuid_of(&id, "rights request")?, &change, &who).await?).into_response())
}
