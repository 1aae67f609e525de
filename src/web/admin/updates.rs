//! Writing and sending updates: the list of updates with progress, the
//! markdown editor with the real email previewed beside it, test sends,
//! and send now / send at a time / pause / resume / cancel, on top of
//! [`crate::services::updates`].
//!
//! A send takes two steps. The send form's POST (`/send`) never starts
//! anything: it answers a review page with the audience the snapshot would
//! take now, the subject, the From and the time. Only the review page's own
//! POST (`/send/confirm`) sends or schedules, and only if the update, its
//! lists and the chosen time are still what was reviewed ([`fingerprint`]);
//! otherwise the review is shown again.
//!
//! Pages that run our script (`/assets/admin.js`: the live preview and the
//! live progress) get [`SCRIPTED_CSP`]; each works without it.
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
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone, Utc};
use uuid::Uuid;

/// The policy of pages that run `/assets/admin.js`: our script only, which
/// may call this origin; inline styles for the email shown in the preview
/// frame (a `srcdoc` frame takes its page's policy), never inline script.
const SCRIPTED_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; frame-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

fn scripted(mut res: Response) -> Response {
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(SCRIPTED_CSP));
    res
}

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
    /// The email as it stands in the editor (rendered without saving).
    pub preview: Option<updates::Preview>,
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
    /// Progress is live (the script polls it) while it is sending.
    pub live: bool,
    /// The send form's choices: as the organiser made them, or the
    /// scheduled time, never a default.
    pub choice: SendChoice,
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

    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

/// What the send form says: `when` is `now`, `later` or nothing chosen
/// yet; `date` and `time` as typed (`YYYY-MM-DD`, `HH:MM`), read in the
/// group's time zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendChoice {
    pub when: String,
    pub date: String,
    pub time: String,
    pub override_authentication: bool,
}

impl SendChoice {
    fn from_form(body: &Submitted) -> Self {
        let mut date = body.first("date").unwrap_or_default().trim().to_owned();
        let mut time = body.first("time").unwrap_or_default().trim().to_owned();
        // One `datetime-local` field (`2030-01-15T09:00`) is read as the two.
        if let Some(at) = body.first("at").filter(|a| !a.trim().is_empty() && date.is_empty()) {
            let (d, t) = at.trim().split_once('T').unwrap_or((at.trim(), ""));
            (date, time) = (d.to_owned(), t.to_owned());
        }
        let mut when = body.first("when").unwrap_or_default();
        if when.is_empty() && !date.is_empty() {
            // Typing a date is choosing a time.
            when = "later".to_owned();
        }
        let override_authentication = body.first("override_authentication").is_some_and(|v| v == "on" || v == "true");
        Self { when, date, time, override_authentication }
    }

    /// A scheduled update's time, ready to be changed.
    fn scheduled(zone: chrono_tz::Tz, at: &DateTime<Utc>) -> Self {
        let local = at.with_timezone(&zone);
        Self {
            when: "later".to_owned(),
            date: local.format("%Y-%m-%d").to_string(),
            time: local.format("%H:%M").to_string(),
            override_authentication: false,
        }
    }

    /// `None` for now, or the instant; every problem with the choice as a
    /// field error the form shows beside its field.
    fn resolve(
        &self,
        zone: chrono_tz::Tz,
        now: DateTime<Utc>,
    ) -> std::result::Result<Option<DateTime<Utc>>, Vec<FieldError>> {
        match self.when.as_str() {
            "now" => return Ok(None),
            "later" => {}
            _ => return Err(vec![FieldError::new("when", "choose when to send: now, or at a date and time")]),
        }
        let mut errors = Vec::new();
        let date = NaiveDate::parse_from_str(&self.date, "%Y-%m-%d").ok();
        if date.is_none() {
            let message =
                if self.date.is_empty() { "give the date to send on" } else { "give the date as day, month and year" };
            errors.push(FieldError::new("date", message));
        }
        let time = NaiveTime::parse_from_str(&self.time, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(&self.time, "%H:%M:%S"))
            .ok();
        if time.is_none() {
            let message = if self.time.is_empty() {
                "give the time to send at"
            } else {
                "give the time as hours and minutes, e.g. 09:30"
            };
            errors.push(FieldError::new("time", message));
        }
        let (Some(date), Some(time)) = (date, time) else { return Err(errors) };
        let Some(at) = zone.from_local_datetime(&date.and_time(time)).earliest() else {
            let message =
                format!("{} does not exist in {zone}: the clocks go forward then; choose another time", self.time);
            return Err(vec![FieldError::new("time", message)]);
        };
        let at = at.with_timezone(&Utc);
        if at <= now {
            let shown = now.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z");
            let message = format!("that time has passed (it is now {shown}); choose a date and time to come");
            return Err(vec![FieldError::new("date", message)]);
        }
        Ok(Some(at))
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
    let preview = updates::preview_unsaved(&state.ctx, &UpdateInput::default()).await.ok();
    Ok(scripted(
        UpdateFormPage {
            chrome: chrome(&state, &me, &csrf),
            id: None,
            subject: String::new(),
            body_markdown: String::new(),
            lists: choices(&state, &[]).await?,
            errors: Vec::new(),
            preview,
        }
        .into_response(),
    ))
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
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let ticked = input.lists.clone().unwrap_or_default();
    let preview = updates::preview_unsaved(&state.ctx, &input).await.ok();
    let page = UpdateFormPage {
        chrome,
        id,
        subject: input.subject.unwrap_or_default(),
        body_markdown: input.body_markdown.unwrap_or_default(),
        lists: choices(state, &ticked).await?,
        errors,
        preview,
    };
    Ok(scripted((status, page).into_response()))
}

/// The editor's "Preview" button: the form again, as typed, with the email
/// rendered beside it and nothing saved. The live preview asks the same
/// with `Accept: application/json` and gets the two parts as JSON.
pub async fn render(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    headers: axum::http::HeaderMap,
    body: Submitted,
) -> Result<Response> {
    let input = input(&body);
    let id = body.first("id").and_then(|raw| Uuid::parse_str(&raw).ok());
    if crate::web::input::wants_json(&headers) {
        let preview = updates::preview_unsaved(&state.ctx, &input).await?;
        let mut res = axum::Json(preview).into_response();
        res.extensions_mut().insert(super::auth::ChangesNothing);
        return Ok(res);
    }
    let mut res = form_again(&state, chrome(&state, &me, &csrf), id, input, Vec::new()).await?;
    res.extensions_mut().insert(super::auth::ChangesNothing);
    Ok(res)
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
        "unscheduled-by-admin" => Some("The update is no longer scheduled: it is a draft again."),
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
    page_with_choice(state, me, csrf, id, notice, errors, None).await
}

/// The update page; `choice` is the send form as the organiser left it
/// (else the scheduled time, if any).
async fn page_with_choice(
    state: &AppState,
    me: &Organiser,
    csrf: &CsrfToken,
    id: Uuid,
    notice: Option<&'static str>,
    errors: Vec<FieldError>,
    choice: Option<SendChoice>,
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
    let choice = choice.unwrap_or_else(|| match (&row.update.status[..], &row.update.send_at) {
        ("scheduled", Some(at)) => SendChoice::scheduled(zone(state), at),
        _ => SendChoice::default(),
    });
    Ok(UpdatePage {
        figures,
        pause_history,
        limits,
        chrome: chrome(state, me, csrf),
        live: row.update.status == "sending",
        choice,
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
    Ok(scripted(
        page(&state, &me, &csrf, parse_id(&id)?, notice(q.notice.as_deref()), Vec::new()).await?.into_response(),
    ))
}

/// Live progress for the update page's script: the delivery figures as JSON.
pub async fn progress(State(state): State<AppState>, _me: Organiser, Path(id): Path<String>) -> Result<Response> {
    let id = parse_id(&id)?;
    let update = updates::get(&state.ctx, id).await?;
    let figures = updates::stats(&state.ctx, id).await?;
    let status = update.status.clone();
    let row = UpdateRow { update, stats: figures.deliveries, send_at_local: String::new() };
    Ok(axum::Json(serde_json::json!({
        "status": status,
        "percent": row.percent(),
        "total": row.stats.total,
        "sent": row.stats.sent,
        "pending": row.stats.pending,
        "failed": row.stats.failed,
        "bounced": row.stats.bounced,
        "skipped": row.stats.skipped,
        "complained": figures.complained,
        "hard_bounced": figures.hard_bounced,
    }))
    .into_response())
}

pub async fn edit_form(
    State(state): State<AppState>,
    me: Organiser,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response> {
    let u = updates::get(&state.ctx, parse_id(&id)?).await?;
    let input = UpdateInput {
        subject: Some(u.subject.clone()),
        body_markdown: Some(u.body_markdown.clone()),
        lists: Some(u.lists.clone()),
    };
    let preview = updates::preview_unsaved(&state.ctx, &input).await.ok();
    Ok(scripted(
        UpdateFormPage {
            chrome: chrome(&state, &me, &csrf),
            id: Some(u.id),
            lists: choices(&state, &u.lists).await?,
            subject: u.subject,
            body_markdown: u.body_markdown,
            errors: Vec::new(),
            preview,
        }
        .into_response(),
    ))
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
    Ok(scripted((StatusCode::UNPROCESSABLE_ENTITY, page(state, me, csrf, id, None, errors).await?).into_response()))
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
            Ok(scripted(page(&state, &me, &csrf, id, notice, errors).await?.into_response()))
        }
        Ok(updates::TestSend::CapReached { cap, left }) => {
            let errors = vec![FieldError::new("emails", crate::web::api::test_cap_message(cap, left))];
            let page = page(&state, &me, &csrf, id, None, errors).await?;
            Ok(scripted((StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "3600")], page).into_response()))
        }
        Err(ServiceError::Invalid(errors)) => page_with_errors(&state, &me, &csrf, id, errors).await,
        Err(e) => Err(e.into()),
    }
}

/// The review before a send: who would receive it now (the snapshot's own
/// count), the subject, the From, and when.
#[derive(Template, WebTemplate)]
#[template(path = "admin/update_review.html")]
pub struct ReviewPage {
    pub chrome: Chrome,
    pub update: UpdateView,
    pub audience: updates::Audience,
    pub from: String,
    pub choice: SendChoice,
    /// "now", or the time in words in the group's zone.
    pub when_words: String,
    pub timezone: String,
    /// What was reviewed (see [`fingerprint`]).
    pub review: String,
    /// The update changed since the organiser last reviewed it.
    pub changed: bool,
}

/// What the review page shows, condensed: the update's id, status, last
/// change, subject, body, lists, and the chosen time and override. The
/// confirmation must carry the same value, or the review is shown again.
fn fingerprint(update: &UpdateView, at: Option<DateTime<Utc>>, override_authentication: bool) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for part in [
        update.id.to_string(),
        update.status.clone(),
        update.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        update.send_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        update.subject.clone(),
        update.body_markdown.clone(),
        update.lists.join(","),
        at.map_or_else(|| "now".to_owned(), |t| t.to_rfc3339()),
        override_authentication.to_string(),
    ] {
        h.update(part.len().to_le_bytes());
        h.update(part.as_bytes());
    }
    crate::domain::hex_lower(&h.finalize()[..16])
}

async fn review_page(
    state: &AppState,
    me: &Organiser,
    csrf: &CsrfToken,
    id: Uuid,
    choice: SendChoice,
    at: Option<DateTime<Utc>>,
    changed: bool,
) -> Result<Response> {
    let update = updates::get(&state.ctx, id).await?;
    let audience = updates::audience(&state.ctx, id).await?;
    let zone = zone(state);
    let when_words = match at {
        None => "now".to_owned(),
        Some(t) => t.with_timezone(&zone).format("%A %-d %B %Y at %H:%M %Z").to_string(),
    };
    let page = ReviewPage {
        chrome: chrome(state, me, csrf),
        review: fingerprint(&update, at, choice.override_authentication),
        from: state.ctx.composer.from.to_string(),
        update,
        audience,
        choice,
        when_words,
        timezone: state.ctx.config.timezone.clone(),
        changed,
    };
    let status = if changed { StatusCode::CONFLICT } else { StatusCode::OK };
    Ok((status, page).into_response())
}

/// The send form's choices were wrong: the update page again, with the
/// problems beside their fields and every choice kept (422).
async fn send_form_again(
    state: &AppState,
    me: &Organiser,
    csrf: &CsrfToken,
    id: Uuid,
    choice: SendChoice,
    errors: Vec<FieldError>,
) -> Result<Response> {
    let page = page_with_choice(state, me, csrf, id, None, errors, Some(choice)).await?;
    Ok(scripted((StatusCode::UNPROCESSABLE_ENTITY, page).into_response()))
}

/// Step one of a send (`when=now`, or `when=later` with `date` and `time`
/// read in the group's time zone): never sends; answers the review page.
pub async fn send(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let choice = SendChoice::from_form(&body);
    let at = match choice.resolve(zone(&state), state.ctx.clock.now()) {
        Ok(at) => at,
        Err(errors) => return send_form_again(&state, &me, &csrf, id, choice, errors).await,
    };
    // Sender authentication is checked before the review, so the
    // organiser learns of it now, not after confirming.
    if !choice.override_authentication
        && let crate::services::sender_auth::Verdict::Refused(report) = state.ctx.sender_auth.gate().await
    {
        return Err(ServiceError::SenderAuthentication(report).into());
    }
    review_page(&state, &me, &csrf, id, choice, at, false).await
}

/// Step two: sends or schedules exactly what was reviewed. If the update,
/// its lists or the time changed since, the review is shown again (409).
pub async fn confirm(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    body: Submitted,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let choice = SendChoice::from_form(&body);
    let at = match choice.resolve(zone(&state), state.ctx.clock.now()) {
        Ok(at) => at,
        Err(errors) => return send_form_again(&state, &me, &csrf, id, choice, errors).await,
    };
    let update = updates::get(&state.ctx, id).await?;
    let reviewed = body.first("review").unwrap_or_default();
    if reviewed != fingerprint(&update, at, choice.override_authentication) {
        tracing::info!(organiser = %me.id, update = %id, "send refused: the update changed since it was reviewed");
        return review_page(&state, &me, &csrf, id, choice, at, true).await;
    }
    let actor = crate::domain::Actor::Organiser(me.id);
    let request = updates::SendRequest { at, override_authentication: choice.override_authentication, actor: &actor };
    match updates::send(&state.ctx, id, &request).await {
        Ok(u) => {
            tracing::info!(organiser = %me.id, update = %id, status = %u.status, "send confirmed");
            let code = if u.status == "scheduled" { "scheduled" } else { "sending" };
            Ok(Redirect::to(&format!("/admin/updates/{id}?notice={code}")).into_response())
        }
        Err(ServiceError::Invalid(errors)) => send_form_again(&state, &me, &csrf, id, choice, errors).await,
        Err(e) => Err(e.into()),
    }
}

/// Takes a scheduled update out of the schedule (a draft again).
pub async fn unschedule(
    State(state): State<AppState>,
    RequireAdmin(me): RequireAdmin,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = parse_id(&id)?;
    updates::unschedule(&state.ctx, id).await?;
    tracing::info!(organiser = %me.id, update = %id, "update unscheduled");
    Ok(Redirect::to(&format!("/admin/updates/{id}?notice=unscheduled-by-admin")).into_response())
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
