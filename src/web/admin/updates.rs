//! Writing and sending updates: the list of updates with progress, the
//! markdown editor, a server-rendered preview of the real email, test
//! sends, and send now / send at a time / pause / resume / cancel, on top
//! of [`crate::services::updates`].
//!
//! Editors may write, preview and test-send; only admins may send to a list
//! or control a send (the route table says so, and the handlers take
//! [`RequireAdmin`] as well).

use super::auth::{CsrfToken, Organiser, RequireAdmin};
use super::error::AdminError;
use super::pages::Chrome;
use crate::services::updates::{self, UpdateInput, UpdateView};
use crate::services::{FieldError, ServiceError, lists};
use crate::store::DeliveryStats;
use crate::web::AppState;
use crate::web::input::Submitted;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use uuid::Uuid;

type Result<T, E = AdminError> = std::result::Result<T, E>;

/// An update with its delivery figures, as lists and the dashboard show it.
pub struct UpdateRow {
    pub update: UpdateView,
    pub stats: DeliveryStats,
    /// `send_at` in the group's time zone.
    pub send_at_local: String,
}

impl UpdateRow {
    /// Percentage of the audience done (sent, failed, bounced or skipped).
    pub fn percent(&self) -> i64 {
        if self.stats.total == 0 { 0 } else { (self.stats.total - self.stats.pending) * 100 / self.stats.total }
    }
}

fn zone(state: &AppState) -> chrono_tz::Tz {
    // Validated when the configuration was parsed.
    state.ctx.config.timezone.parse().unwrap_or(chrono_tz::Europe::London)
}

/// A time as the organiser reads it: in the group's zone, with its name.
pub fn local(state: &AppState, t: &DateTime<Utc>) -> String {
    t.with_timezone(&zone(state)).format("%Y-%m-%d %H:%M %Z").to_string()
}

async fn row(state: &AppState, update: UpdateView) -> Result<UpdateRow> {
    let stats = updates::stats(&state.ctx, update.id).await?.deliveries;
    let send_at_local = update.send_at.as_ref().map(|t| local(state, t)).unwrap_or_default();
    Ok(UpdateRow { update, stats, send_at_local })
}

/// Recent updates with their progress (also used by the dashboard).
pub async fn recent_rows(state: &AppState, limit: i64) -> Result<Vec<UpdateRow>> {
    let mut rows = Vec::new();
    for u in updates::recent(&state.ctx, limit).await? {
        rows.push(row(state, u).await?);
    }
    Ok(rows)
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/updates.html")]
pub struct UpdatesPage {
    pub chrome: Chrome,
    pub updates: Vec<UpdateRow>,
}

/// A list the editor can tick.
pub struct ListChoice {
    pub slug: String,
    pub name: String,
    pub ticked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/update_form.html")]
pub struct UpdateFormPage {
    pub chrome: Chrome,
    pub id: Option<Uuid>,
    pub subject: String,
    pub body_markdown: String,
    pub lists: Vec<ListChoice>,
    pub errors: Vec<FieldError>,
}

impl UpdateFormPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/update.html")]
pub struct UpdatePage {
    pub chrome: Chrome,
    pub row: UpdateRow,
    pub preview_text: String,
    pub timezone: String,
    pub notice: Option<&'static str>,
    pub errors: Vec<FieldError>,
    /// Refresh the page every few seconds while it is sending.
    pub live: bool,
    /// Complaint and hard-bounce figures, and why the send paused itself.
    pub figures: updates::UpdateStats,
    /// Every time the send paused itself, newest first.
    pub pause_history: Vec<crate::store::AlertRow>,
    /// The limits in force, in words.
    pub limits: String,
}

impl UpdatePage {
    /// `0.4%`.
    pub fn complaint_percent(&self) -> String {
        format!("{}%", crate::services::send_guard::percent(self.figures.complaint_rate * 100.0))
    }

    pub fn hard_bounce_percent(&self) -> String {
        format!("{}%", crate::services::send_guard::percent(self.figures.hard_bounce_rate * 100.0))
    }

    /// Why the send is paused, with what the organiser should know, while
    /// it stays paused by itself.
    pub fn auto_pause(&self) -> Option<(&str, &str)> {
        let reason = self.figures.paused_reason.as_deref()?;
        let detail = self.pause_history.first().map_or("", |a| a.detail.as_str());
        Some((reason, detail))
    }

    pub fn editable(&self) -> bool {
        matches!(self.row.update.status.as_str(), "draft" | "scheduled")
    }
}

fn chrome(state: &AppState, me: &Organiser, csrf: &CsrfToken) -> Chrome {
    Chrome::new(&state.ctx.config.group_name, me, csrf, "updates")
}

pub async fn index(State(state): State<AppState>, me: Organiser, csrf: CsrfToken) -> Result<Response> {
    Ok(UpdatesPage { chrome: chrome(&state, &me, &csrf), updates: recent_rows(&state, 100).await? }.into_response())
}

async fn choices(state: &AppState, ticked: &[String]) -> Result<Vec<ListChoice>> {
    Ok(lists::all(&state.ctx)
        .await?
        .into_iter()
        .map(|l| ListChoice { ticked: ticked.contains(&l.slug), slug: l.slug, name: l.name })
        .collect())
}

pub async fn new_form(State(state): State<AppState>, me: Organiser, csrf: CsrfToken) -> Result<Response> {
    Ok(UpdateFormPage {
        chrome: chrome(&state, &me, &csrf),
        id: None,
        subject: String::new(),
        body_markdown: String::new(),
        lists: choices(&state, &[]).await?,
        errors: Vec::new(),
    }
    .into_response())
}

fn input(body: &Submitted) -> UpdateInput {
    UpdateInput {
        subject: Some(body.first("subject").unwrap_or_default()),
        body_markdown: Some(body.first("body_markdown").unwrap_or_default()),
        lists: Some(body.all("lists")),
    }
}

async fn form_again(
    state: &AppState,
    chrome: Chrome,
    id: Option<Uuid>,
    input: UpdateInput,
    errors: Vec<FieldError>,
) -> Result<Response> {
    let ticked = input.lists.clone().unwrap_or_default();
    let page = UpdateFormPage {
        chrome,
        id,
        subject: input.subject.unwrap_or_default(),
        body_markdown: input.body_markdown.unwrap_or_default(),
        lists: choices(state, &ticked).await?,
        errors,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    body: Submitted,
) -> Result<Response> {
    let input = input(&body);
    match updates::create(&state.ctx, &input, &me.actor()).await {
        Ok(u) => {
            tracing::info!(organiser = %me.id, update = %u.id, "update drafted");
            Ok(Redirect::to(&format!("/admin/updates/{}?notice=created", u.id)).into_response())
        }
        Err(ServiceError::Invalid(errors)) => form_again(&state, chrome(&state, &me, &csrf), None, input, errors).await,
        Err(e) => Err(e.into()),
    }
}

fn parse_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AdminError::Service(ServiceError::NotFound("update")))
}

#[derive(Debug, serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn notice(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "created" => Some("The draft has been saved."),
        "saved" => Some("Your changes have been saved."),
        "unscheduled" => Some(
            "Your changes have been saved. Editing took it out of the schedule: it is a draft again, \
             and an admin must schedule or send it.",
        ),
        "tested" => Some("Test copies are on their way."),
        "sending" => Some("Sending has started."),
        "scheduled" => Some("The update is scheduled."),
        "paused" => Some("Sending is paused."),
        "resumed" => Some("Sending has resumed."),
        "cancelled" => Some("The update has been cancelled."),
        _ => None,
    }
}

async fn page(
    state: &AppState,
    me: &Organiser,
    csrf: &CsrfToken,
    id: Uuid,
    notice: Option<&'static str>,
    errors: Vec<FieldError>,
) -> Result<UpdatePage> {
    let update = updates::get(&state.ctx, id).await?;
    let preview_text = updates::preview(&state.ctx, id).await?.text;
    let row = row(state, update).await?;
    let figures = updates::stats(&state.ctx, id).await?;
    let pause_history = updates::pause_history(&state.ctx, id).await?;
    let c = &state.ctx.config;
    let limits: Vec<String> = [(c.pause_complaint_ppm, "complaints"), (c.pause_hard_bounce_ppm, "hard bounces")]
        .into_iter()
        .filter(|(ppm, _)| *ppm > 0)
        .map(|(ppm, what)| format!("{what} pass {}%", crate::services::send_guard::percent(f64::from(ppm) / 10_000.0)))
        .collect();
    let limits = if limits.is_empty() {
        "Sending never pauses itself (TIDINGS_PAUSE_COMPLAINT_RATE and TIDINGS_PAUSE_HARD_BOUNCE_RATE are 0)."
            .to_owned()
    } else {
        format!(
            "Sending pauses itself when {}, once {} copies have gone out.",
            limits.join(" or "),
            crate::services::send_guard::thousands(i64::from(c.pause_min_attempts))
        )
    };
    Ok(UpdatePage {
        figures,
        pause_history,
        limits,
        chrome: chrome(state, me, csrf),
        live: row.update.status == "sending",
        row,
        preview_text,
        timezone: state.ctx.config.timezone.clone(),
        notice,
        errors,
    })
}

pub async fn show(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response> {
    Ok(page(&state, &me, &csrf, parse_id(&id)?, notice(q.notice.as_deref()), Vec::new()).await?.into_response())
}

pub async fn edit_form(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response> {
    let u = updates::get(&state.ctx, parse_id(&id)?).await?;
    Ok(UpdateFormPage {
        chrome: chrome(&state, &me, &csrf),
        id: Some(u.id),
        lists: choices(&state, &u.lists).await?,
        subject: u.subject,
        body_markdown: u.body_markdown,
        errors: Vec::new(),
    }
    .into_response())
}

pub async fn save(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let input = input(&body);
    // Only those who may send (admins) keep a scheduled update scheduled.
    match updates::edit(&state.ctx, id, &input, me.is_admin()).await {
        Ok(edited) => {
            let code = if edited.unscheduled { "unscheduled" } else { "saved" };
            Ok(Redirect::to(&format!("/admin/updates/{id}?notice={code}")).into_response())
        }
        Err(ServiceError::Invalid(errors)) => {
            form_again(&state, chrome(&state, &me, &csrf), Some(id), input, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The real email's HTML, as a supporter would see it. It carries inline
/// styles (mail clients need them), so it gets its own, still strict, CSP:
/// no script, no plugins, sandboxed.
pub async fn preview(State(state): State<AppState>, _me: Organiser, Path(id): Path<String>) -> Result<Response> {
    let p = updates::preview(&state.ctx, parse_id(&id)?).await?;
    let mut res = axum::response::Html(p.html).into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; sandbox; frame-ancestors 'none'",
        ),
    );
    Ok(res)
}

/// Re-shows the update page with errors (422).
async fn page_with_errors(
    state: &AppState,
    me: &Organiser,
    csrf: &CsrfToken,
    id: Uuid,
    errors: Vec<FieldError>,
) -> Result<Response> {
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page(state, me, csrf, id, None, errors).await?).into_response())
}

pub async fn test(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let emails: Vec<String> = body
        .first("emails")
        .unwrap_or_default()
        .split([',', '\n', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    match updates::test_send(&state.ctx, id, &emails, &me.actor()).await {
        Ok(updates::TestSend::Queued { skipped, .. }) if skipped.is_empty() => {
            Ok(Redirect::to(&format!("/admin/updates/{id}?notice=tested")).into_response())
        }
        Ok(updates::TestSend::Queued { queued, skipped }) => {
            // Said on the page itself: the skipped addresses are not put in a URL.
            let errors = skipped
                .into_iter()
                .map(|a| {
                    let why = if a.reason == "suppressed" {
                        "that address is on the suppression list (erased, complained or hard-bounced)"
                    } else {
                        "that person has withdrawn (unsubscribed from everything, or complained)"
                    };
                    FieldError::new("emails", format!("No test copy to {}: {why}.", a.email))
                })
                .collect();
            let notice = if queued > 0 { Some("Test copies are on their way to the other addresses.") } else { None };
            Ok(page(&state, &me, &csrf, id, notice, errors).await?.into_response())
        }
        Ok(updates::TestSend::CapReached { cap, left }) => {
            let errors = vec![FieldError::new("emails", crate::web::api::test_cap_message(cap, left))];
            let page = page(&state, &me, &csrf, id, None, errors).await?;
            Ok((StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "3600")], page).into_response())
        }
        Err(ServiceError::Invalid(errors)) => page_with_errors(&state, &me, &csrf, id, errors).await,
        Err(e) => Err(e.into()),
    }
}

/// `when=now`, or `when=later` with `at` from a `datetime-local` input,
/// read in the group's time zone.
pub async fn send(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let at = if body.first("when").as_deref() == Some("later") {
        let raw = body.first("at").unwrap_or_default();
        let parsed = NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M")
            .ok()
            .and_then(|naive| zone(&state).from_local_datetime(&naive).earliest())
            .map(|t| t.with_timezone(&Utc));
        match parsed {
            Some(t) if t > state.ctx.clock.now() => Some(t),
            _ => {
                let errors = vec![FieldError::new("at", "give a date and time in the future")];
                return page_with_errors(&state, &me, &csrf, id, errors).await;
            }
        }
    } else {
        None
    };
    // Admins only reach this handler, so the box may override.
    let override_authentication = body.first("override_authentication").is_some_and(|v| v == "on" || v == "true");
    let actor = crate::domain::Actor::Organiser(me.id);
    let request = updates::SendRequest { at, override_authentication, actor: &actor };
    match updates::send(&state.ctx, id, &request).await {
        Ok(u) => {
            tracing::info!(organiser = %me.id, update = %id, status = %u.status, "send requested");
            let code = if u.status == "scheduled" { "scheduled" } else { "sending" };
            Ok(Redirect::to(&format!("/admin/updates/{id}?notice={code}")).into_response())
        }
        Err(ServiceError::Invalid(errors)) => page_with_errors(&state, &me, &csrf, id, errors).await,
        Err(e) => Err(e.into()),
    }
}

async fn control(state: &AppState, me: &Organiser, id: &str, action: &'static str) -> Result<Response> {
    let id = parse_id(id)?;
    let done = match action {
        "paused" => updates::pause(&state.ctx, id).await,
        "resumed" => updates::resume(&state.ctx, id).await,
        _ => updates::cancel(&state.ctx, id).await,
    };
    done?;
    tracing::info!(organiser = %me.id, update = %id, action, "send controlled");
    Ok(Redirect::to(&format!("/admin/updates/{id}?notice={action}")).into_response())
}

pub async fn pause(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    control(&state, &me, &id, "paused").await
}

pub async fn resume(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    control(&state, &me, &id, "resumed").await
}

pub async fn cancel(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    control(&state, &me, &id, "cancelled").await
}
