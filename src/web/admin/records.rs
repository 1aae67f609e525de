//! The audit log (filter, page, export as CSV) and the rights-request log
//! (list, log, extend, stop and restart the clock, acknowledge a complaint,
//! close). Admins only.

use super::auth::{CsrfToken, RequireAdmin};
use super::error::AdminError;
use super::pages::{AuditPage, Chrome, RightsPage, RightsRequestPage};
use crate::services::audit::{self, FilterInput, Who};
use crate::services::rights::{self, Change, NewRightsRequest};
use crate::services::{FieldError, ServiceError};
use crate::web::AppState;
use crate::web::api::audit_csv;
use crate::web::input::Submitted;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use uuid::Uuid;

type Result<T, E = AdminError> = std::result::Result<T, E>;

const PAGE: i64 = 100;

/// The filter as a query string (without `before`).
fn query(input: &FilterInput) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("actor", &input.actor)
        .append_pair("action", &input.action)
        .append_pair("from", &input.from)
        .append_pair("until", &input.until)
        .finish()
}

pub async fn audit_log(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Query(input): Query<FilterInput>,
) -> Result<Response> {
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "audit");
    let qs = query(&input);
    let mut page = AuditPage {
        chrome,
        input,
        entries: Vec::new(),
        errors: Vec::new(),
        csv_link: format!("/admin/audit.csv?{qs}"),
        older_link: None,
    };
    match page.input.parse() {
        Ok(filter) => {
            page.entries = audit::page(&state.ctx, &filter, PAGE).await?;
            if page.entries.len() as i64 == PAGE {
                page.older_link = page.entries.last().map(|e| format!("/admin/audit?{qs}&before={}", e.id));
            }
            Ok(page.into_response())
        }
        Err(ServiceError::Invalid(errors)) => {
            page.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn audit_log_csv(
    State(state): State<AppState>,
    RequireAdmin(_): RequireAdmin,
    Query(input): Query<FilterInput>,
) -> Result<Response> {
    Ok(audit_csv(state.ctx.clone(), input.parse()?))
}

#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

async fn rights_page(state: &AppState, chrome: Chrome) -> Result<RightsPage> {
    Ok(RightsPage {
        chrome,
        requests: rights::list(&state.ctx, None).await?,
        kinds: rights::KINDS,
        form: NewRightsRequest { kind: "access".into(), ..Default::default() },
        received: String::new(),
        errors: Vec::new(),
        notice: None,
    })
}

pub async fn rights_requests(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Query(q): Query<NoticeQuery>,
) -> Result<Response> {
    let mut page = rights_page(&state, Chrome::new(&state.ctx.config.group_name, &me, &csrf, "rights")).await?;
    page.notice = (q.notice.as_deref() == Some("logged")).then_some("The request has been logged.");
    Ok(page.into_response())
}

pub async fn log_rights_request(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let received = body.first("received_at").unwrap_or_default();
    let mut errors = Vec::new();
    let received_at = match received.trim() {
        "" => None,
        raw => match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(d) => Some(d.and_time(chrono::NaiveTime::MIN).and_utc()),
            Err(_) => {
                errors.push(FieldError::new("received_at", "a date, e.g. 2026-11-24"));
                None
            }
        },
    };
    let input = NewRightsRequest {
        kind: body.first("kind").unwrap_or_default(),
        subject: body.first("subject").unwrap_or_default(),
        received_at,
        notes: body.first("notes").unwrap_or_default(),
    };
    let result = if errors.is_empty() {
        rights::create(&state.ctx, &input, &who(&me)).await
    } else {
        Err(ServiceError::Invalid(errors))
    };
    match result {
        Ok(r) => Ok(Redirect::to(&format!("/admin/rights/{}?notice=logged", r.row.id)).into_response()),
        Err(ServiceError::Invalid(errors)) => {
            let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "rights");
            let mut page = rights_page(&state, chrome).await?;
            page.form = input;
            page.received = received;
            page.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The organiser, as a rights request's history names them.
fn who(me: &super::auth::Organiser) -> Who {
    Who { actor: crate::domain::Actor::Organiser(me.id).to_db(), label: me.email.clone(), ip: None }
}

fn request_id(raw: &str) -> Result<Uuid> {
    Ok(Uuid::parse_str(raw).map_err(|_| ServiceError::NotFound("rights request"))?)
}

pub async fn rights_request(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response> {
    let r = rights::get(&state.ctx, request_id(&id)?).await?;
    let notice = match q.notice.as_deref() {
        Some("logged") => Some("The request has been logged."),
        Some("saved") => Some("Saved."),
        _ => None,
    };
    let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "rights");
    Ok(RightsRequestPage { chrome, r, errors: Vec::new(), notice }.into_response())
}

pub async fn change_rights_request(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let id = request_id(&id)?;
    let text = |field: &str| body.first(field).unwrap_or_default();
    let change = match text("action").as_str() {
        "extend" => Change::Extend { reason: text("reason") },
        "pause" => Change::Pause { reason: text("pause_reason") },
        "resume" => Change::Resume { reason: text("resume_reason") },
        "acknowledge" => Change::Acknowledge { note: text("note") },
        "complete" => Change::Complete { outcome: text("outcome") },
        "refuse" => Change::Refuse { outcome: text("outcome") },
        _ => return Err(ServiceError::Invalid(vec![FieldError::new("action", "unknown action")]).into()),
    };
    match rights::change(&state.ctx, id, &change, &who(&me)).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/rights/{id}?notice=saved")).into_response()),
        Err(ServiceError::Invalid(errors)) => {
            let chrome = Chrome::new(&state.ctx.config.group_name, &me, &csrf, "rights");
            let r = rights::get(&state.ctx, id).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, RightsRequestPage { chrome, r, errors, notice: None })
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}
