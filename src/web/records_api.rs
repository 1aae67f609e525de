//! `/api/v1/audit-log` and `/api/v1/rights-requests`: the audit log (read
//! and export) and the rights-request log. Mounted by `api::router`, so the
//! bearer-token layer and JSON errors apply.

use super::api::{ApiJson, Caller, service};
use super::{AppState, WebError};
use crate::services::Context;
use crate::services::audit::{self, FilterInput};
use crate::services::rights::{self, Change, NewRightsRequest};
use crate::store::AuditFilter;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use uuid::Uuid;

type Result<T, E = WebError> = std::result::Result<T, E>;

#[derive(serde::Deserialize)]
pub(super) struct Format {
    #[serde(default)]
    format: String,
}

/// A page of entries, newest first: `{"entries": […], "next": id or null}`
/// (pass `next` back as `before`); or, with `format=csv`, every matching
/// entry as CSV, streamed.
pub(super) async fn audit_log(
    State(s): State<AppState>,
    Query(input): Query<FilterInput>,
    Query(format): Query<Format>,
) -> Result<Response> {
    let filter = input.parse().map_err(service)?;
    if format.format == "csv" {
        return Ok(audit_csv(s.ctx.clone(), filter));
    }
    let limit = input.limit.unwrap_or(100).clamp(1, audit::MAX_PAGE);
    let entries = audit::page(&s.ctx, &filter, limit).await.map_err(service)?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(Json(serde_json::json!({ "entries": entries, "next": next })).into_response())
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

pub(super) async fn rights_requests(State(s): State<AppState>, Query(q): Query<StatusQuery>) -> Result<Response> {
    Ok(Json(rights::list(&s.ctx, q.status.as_deref()).await.map_err(service)?).into_response())
}

pub(super) async fn create_rights_request(
    State(s): State<AppState>,
    Extension(Caller(actor)): Extension<Caller>,
    ApiJson(input): ApiJson<NewRightsRequest>,
) -> Result<Response> {
    Ok((StatusCode::CREATED, Json(rights::create(&s.ctx, &input, &actor).await.map_err(service)?)).into_response())
}

fn request_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| WebError::new(StatusCode::NOT_FOUND, "not_found", "No such rights request."))
}

pub(super) async fn rights_request(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(rights::get(&s.ctx, request_id(&id)?).await.map_err(service)?).into_response())
}

/// `{"action": "extend", "reason"}`, `{"action": "complete", "outcome"}`,
/// `{"action": "refuse", "outcome"}` or `{"action": "note", "notes"}`.
pub(super) async fn change_rights_request(
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<Change>,
) -> Result<Response> {
    Ok(Json(rights::change(&s.ctx, request_id(&id)?, &change).await.map_err(service)?).into_response())
}
