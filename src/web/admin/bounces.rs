//! The "Bounces & complaints" page (every recorded report, filterable by
//! kind, with reports held for review and each abuse report's DKIM result),
//! an admin's decision on a held report (apply or dismiss), and dismissing
//! dashboard alerts (admins only, by CSRF-checked forms; the admin audit
//! layer records each in the audit log). The template structs live here rather than in `pages` because
//! nothing else uses them.

use super::auth::{CsrfToken, Organiser, RequireAdmin};
use super::error::AdminError;
use super::pages::{Choice, Chrome};
use crate::services::ServiceError;
use crate::services::bounces::{self, Class};
use crate::store::BounceEventRow;
use crate::web::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use uuid::Uuid;

type Result<T, E = AdminError> = std::result::Result<T, E>;

const PAGE: i64 = 100;

#[derive(Template, WebTemplate)]
#[template(path = "admin/bounces.html")]
pub struct BouncesPage {
    pub chrome: Chrome,
    pub kinds: Vec<Choice>,
    pub events: Vec<BounceEventRow>,
    /// The same filter, one page on.
    pub next_url: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Filter {
    kind: Option<String>,
    /// `RFC3339_UUID` of the last row of the previous page.
    before: Option<String>,
}

fn cursor(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (at, id) = raw.rsplit_once('_')?;
    Some((DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc), Uuid::parse_str(id).ok()?))
}

fn page_url(kind: &str, before: Option<&BounceEventRow>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !kind.is_empty() {
        query.append_pair("kind", kind);
    }
    if let Some(row) = before {
        query.append_pair("before", &format!("{}_{}", row.received_at.to_rfc3339(), row.id));
    }
    format!("/admin/bounces?{}", query.finish())
}

pub async fn index(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Query(filter): Query<Filter>,
) -> Result<Response> {
    let kind = filter.kind.unwrap_or_default();
    let before = filter.before.as_deref().filter(|b| !b.is_empty()).and_then(cursor);
    let (events, error) = match bounces::events(&state.ctx, Some(&kind), before, PAGE).await {
        Ok(events) => (events, None),
        Err(ServiceError::Invalid(_)) => (Vec::new(), Some("Choose one of the listed kinds.".to_owned())),
        Err(e) => return Err(e.into()),
    };
    let mut kinds: Vec<Choice> = Class::ALL
        .iter()
        .map(|c| Choice { value: c.as_str().to_owned(), label: c.as_str().to_owned(), selected: kind == c.as_str() })
        .collect();
    kinds.push(Choice { value: "unmatched".into(), label: "unknown address".into(), selected: kind == "unmatched" });
    kinds.push(Choice { value: "review".into(), label: "held for review".into(), selected: kind == "review" });
    let next_url = (events.len() as i64 == PAGE).then(|| page_url(&kind, events.last()));
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = BouncesPage {
        chrome: Chrome::new(&state.ctx.config.group_name, &me, &csrf, "bounces"),
        kinds,
        events,
        next_url,
        error,
    };
    Ok((status, page).into_response())
}

async fn decide(state: &AppState, me: &Organiser, id: &str, decision: bounces::Decision) -> Result<Response> {
    let id = Uuid::parse_str(id).map_err(|_| ServiceError::NotFound("report awaiting review"))?;
    bounces::decide_held(&state.ctx, id, decision, &me.actor()).await?;
    Ok(Redirect::to("/admin/bounces?kind=review").into_response())
}

/// Applies a report held for review (a hard bounce or complaint).
pub async fn apply_held(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    decide(&state, &me, &id, bounces::Decision::Apply).await
}

/// Dismisses a report held for review: the subscriber stays as they are.
pub async fn dismiss_held(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    decide(&state, &me, &id, bounces::Decision::Dismiss).await
}

pub async fn dismiss(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ServiceError::NotFound("alert"))?;
    bounces::dismiss_alert(&state.ctx, id, &me.actor()).await?;
    Ok(Redirect::to("/admin").into_response())
}
