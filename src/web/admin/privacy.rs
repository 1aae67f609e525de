//! Publishing a new privacy notice: write, see the diff, publish, then
//! draft a notification or re-permission update. Admins only.

use super::auth::{CsrfToken, RequireAdmin};
use super::error::AdminError;
use super::pages::{Chrome, PrivacyNoticePage};
use crate::domain::Actor;
use crate::services::consent::{self, NoticeInput};
use crate::services::notice_change::{self, Announcement};
use crate::services::{FieldError, ServiceError};
use crate::web::AppState;
use crate::web::input::Submitted;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

type Result<T, E = AdminError> = std::result::Result<T, E>;

#[derive(Debug, serde::Deserialize)]
pub struct PublishedQuery {
    published: Option<i64>,
}

async fn page(state: &AppState, chrome: Chrome) -> Result<PrivacyNoticePage> {
    let current = match consent::current_notice(&state.ctx).await {
        Ok(n) => Some(n),
        Err(ServiceError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let (text, url) = current.as_ref().map(|n| (n.text.clone(), n.url.clone().unwrap_or_default())).unwrap_or_default();
    Ok(PrivacyNoticePage { chrome, current, diff: None, text, url, published: None, errors: Vec::new() })
}

pub async fn show(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Query(q): Query<PublishedQuery>,
) -> Result<Response> {
    let mut p = page(&state, Chrome::new(&state.ctx.config.group_name, &me, &csrf, "privacy")).await?;
    p.published = q.published;
    Ok(p.into_response())
}

pub async fn preview(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let mut p = page(&state, Chrome::new(&state.ctx.config.group_name, &me, &csrf, "privacy")).await?;
    p.text = body.first("text").unwrap_or_default();
    p.url = body.first("url").unwrap_or_default();
    if p.text.trim().is_empty() {
        p.errors.push(FieldError::new("text", "The notice needs its text."));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response());
    }
    let old = p.current.as_ref().map(|n| n.text.as_str()).unwrap_or("");
    p.diff = Some(notice_change::diff(old, &p.text));
    Ok(p.into_response())
}

pub async fn publish(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let input = NoticeInput {
        text: body.first("text"),
        url: body.first("url").filter(|u| !u.trim().is_empty()),
        effective_from: None,
    };
    match consent::publish_notice(&state.ctx, &input).await {
        Ok(n) => Ok(Redirect::to(&format!("/admin/privacy?published={}", n.version)).into_response()),
        Err(ServiceError::Invalid(errors)) => {
            let mut p = page(&state, Chrome::new(&state.ctx.config.group_name, &me, &csrf, "privacy")).await?;
            p.text = input.text.unwrap_or_default();
            p.url = input.url.unwrap_or_default();
            p.errors = errors;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn announce(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    body: Submitted,
) -> Result<Response> {
    let kind = match body.first("kind").as_deref() {
        Some("notify") => Announcement::Notify,
        Some("repermission") => Announcement::Repermission,
        _ => return Err(ServiceError::Invalid(vec![FieldError::new("kind", "notify or repermission")]).into()),
    };
    let version = consent::current_notice(&state.ctx).await?.version;
    let update = notice_change::draft_announcement(&state.ctx, version, kind, &Actor::Organiser(me.id)).await?;
    Ok(Redirect::to(&format!("/admin/updates/{}/edit", update.id)).into_response())
}
