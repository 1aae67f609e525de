//! Recurring schedules: a cron expression in a time zone, and what to send
//! each time it fires.
//!
//! - `repeat`: each run creates an update from the schedule's subject, body
//!   and lists, and starts sending it.
//! - `digest`: each run collects the updates that finished sending to the
//!   schedule's lists since the previous run (for the first run: since the
//!   schedule was created), each as `## {subject}` and its markdown, after
//!   the schedule's body as an introduction. Nothing new → nothing is sent,
//!   but the schedule still moves on to its next tick. "Since the previous
//!   run" is kept as the set of updates each digest collected rather than a
//!   time window, so an update finishing while a digest is made cannot fall
//!   between two digests.
//!
//! `{{date}}` in the subject or body becomes the run's date on the
//! schedule's wall clock ("1 December 2026").
//!
//! **Exactly once.** [`run`] claims a tick by compare-and-set on
//! `next_run_at` in the same transaction that creates the update and starts
//! sending it, so two workers, or a crash and a restart, never run a tick
//! twice: either the whole run committed (and the tick moved on) or none of
//! it did. The next tick is the first one after *now*, not after the tick
//! claimed, so runs missed while Tidings was down happen once, not once per
//! missed tick.
//!
//! Layout: this module (CRUD and runs) and [`recurrence`] (cron forms, time
//! zones and clock changes).

pub mod recurrence;

use super::updates::start_sending;
use super::{Actor, Context, FieldError, Result, ServiceError, ensure_valid};
use crate::domain::{HeaderSafeText, ListSlug, ScheduleKind};
use crate::store::{ScheduleRow, ScheduleRun, Tx, UpdateRow};
use chrono::{DateTime, Utc};
use recurrence::{Recurrence, parse_zone};
use uuid::Uuid;

/// A schedule as the API shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub id: Uuid,
    pub name: String,
    /// As the organiser typed it.
    pub cron: String,
    pub timezone: String,
    pub kind: String,
    pub lists: Vec<String>,
    pub subject: String,
    pub body_markdown: String,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    /// `next_run_at` on the schedule's wall clock, with its UTC offset, so
    /// an organiser can see that 09:00 stays 09:00 across clock changes.
    pub next_run_local: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creation needs `name`, `cron`, `lists` and `subject`; `timezone`
/// defaults to `TIDINGS_TIMEZONE`, `kind` to `repeat`, `enabled` to true.
/// In an edit, absent fields stay as they are.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ScheduleInput {
    #[schema(example = "Weekly round-up")]
    pub name: Option<String>,
    /// 5-field (`min hour dom mon dow`) or 6/7-field cron.
    #[schema(example = "0 9 * * Mon")]
    pub cron: Option<String>,
    #[schema(example = "Europe/London")]
    pub timezone: Option<String>,
    /// `repeat` or `digest`.
    #[schema(example = "repeat")]
    pub kind: Option<String>,
    #[schema(example = json!(["updates"]))]
    pub lists: Option<Vec<String>>,
    #[schema(example = "This week at the campaign")]
    pub subject: Option<String>,
    pub body_markdown: Option<String>,
    pub enabled: Option<bool>,
}

/// What one [`run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The tick ran and this update is sending.
    Sent(Uuid),
    /// The tick ran with nothing to send (a digest with nothing new, or
    /// every list deleted); the schedule moved on.
    Skipped,
    /// Not due after all: another worker ran this tick first, or the
    /// schedule was changed, disabled or deleted meanwhile.
    NotDue,
}

const MAX_BODY: usize = 200_000;
/// The longest `{{date}}` ("30 September 2026") replaces an 8-character
/// placeholder: leave room for it within a subject's 200 characters.
const SAMPLE_DATE: &str = "30 September 2026";

/// The fields of a [`ScheduleInput`] that were present, parsed.
#[derive(Default)]
struct Parsed {
    name: Option<String>,
    cron: Option<String>,
    zone: Option<String>,
    kind: Option<ScheduleKind>,
    lists: Option<Vec<ListSlug>>,
    subject: Option<String>,
    body: Option<String>,
}

/// Checks every field present in `input` (all required ones when
/// `creating`), collecting every problem rather than stopping at the first.
fn parse_input(input: &ScheduleInput, default_zone: &str, creating: bool) -> (Parsed, Vec<FieldError>) {
    let mut errors = Vec::new();
    let mut out = Parsed::default();
    let required = |field: &'static str, errors: &mut Vec<FieldError>| {
        if creating {
            errors.push(FieldError::new(field, format!("{field} is required")));
        }
    };

    match input.name.as_deref().map(str::trim) {
        Some("") => errors.push(FieldError::new("name", "a name is required")),
        Some(n) => match HeaderSafeText::parse(n, 200) {
            Ok(n) => out.name = Some(n.into_inner()),
            Err(_) => errors.push(FieldError::new("name", "a name is one line of at most 200 characters")),
        },
        None => required("name", &mut errors),
    }

    let zone = match input.timezone.as_deref() {
        Some(z) => match parse_zone(z) {
            Ok(z) => Some(z),
            Err(e) => {
                errors.push(FieldError::new("timezone", e.0));
                None
            }
        },
        None if creating => parse_zone(default_zone).ok(),
        None => None,
    };
    out.zone = zone.map(|z| z.name().to_owned());

    match input.cron.as_deref().map(str::trim) {
        Some("") => errors.push(FieldError::new("cron", "a cron expression is required, e.g. `0 9 1 * *`")),
        // Parsed here in UTC only to check it; the run times are worked out
        // once the zone (which may be unchanged) is known.
        Some(c) => match Recurrence::new(c, chrono_tz::UTC) {
            Ok(_) => out.cron = Some(c.to_owned()),
            Err(e) => errors.push(FieldError::new("cron", e.0)),
        },
        None => required("cron", &mut errors),
    }

    match input.kind.as_deref().map(ScheduleKind::parse) {
        Some(Ok(k)) => out.kind = Some(k),
        Some(Err(_)) => errors.push(FieldError::new("kind", "kind is `repeat` or `digest`")),
        None if creating => out.kind = Some(ScheduleKind::Repeat),
        None => {}
    }

    match &input.lists {
        Some(ls) if ls.is_empty() => errors.push(FieldError::new("lists", "choose at least one list")),
        Some(ls) => {
            let mut slugs = Vec::new();
            for l in ls {
                match ListSlug::parse(l) {
                    Ok(s) => slugs.push(s),
                    Err(e) => errors.push(FieldError::from_parse("lists", e)),
                }
            }
            out.lists = Some(slugs);
        }
        None => required("lists", &mut errors),
    }

    match input.subject.as_deref().map(str::trim) {
        Some("") => errors.push(FieldError::new("subject", "a subject is required")),
        Some(s) => match HeaderSafeText::parse(&s.replace("{{date}}", SAMPLE_DATE), 200) {
            Ok(_) => out.subject = Some(s.to_owned()),
            Err(_) => errors.push(FieldError::new(
                "subject",
                "a subject is one line of at most 200 characters (with {{date}} filled in)",
            )),
        },
        None => required("subject", &mut errors),
    }

    match input.body_markdown.as_deref() {
        Some(b) if b.len() > MAX_BODY => {
            errors.push(FieldError::new("body_markdown", "the body is at most 200,000 bytes"));
        }
        Some(b) => out.body = Some(b.to_owned()),
        None if creating => out.body = Some(String::new()),
        None => {}
    }
    (out, errors)
}

/// Resolves list slugs to ids, adding an error for each unknown one.
async fn list_ids(tx: &mut Tx, slugs: &[ListSlug], errors: &mut Vec<FieldError>) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(slugs.len());
    for slug in slugs {
        match tx.list_by_slug(slug.as_str()).await? {
            Some(list) if !ids.contains(&list.id) => ids.push(list.id),
            Some(_) => {}
            None => errors.push(FieldError::new("lists", format!("there is no list {slug}"))),
        }
    }
    Ok(ids)
}

/// The next tick after `now`, or `None` while disabled. A stored
/// expression or zone that no longer parses (say, a zone dropped from a
/// future tz database) also yields `None`, so that one schedule stops
/// instead of failing every worker step.
fn next_tick(row: &ScheduleRow, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !row.enabled {
        return None;
    }
    let zone = parse_zone(&row.timezone).ok()?;
    Recurrence::new(&row.cron, zone).ok()?.next_after(now)
}

async fn view(tx: &mut Tx, row: ScheduleRow) -> Result<ScheduleView> {
    let lists = tx.schedule_lists(row.id).await?.into_iter().map(|l| l.slug).collect();
    let next_run_local = match (row.next_run_at, parse_zone(&row.timezone)) {
        (Some(at), Ok(zone)) => Some(at.with_timezone(&zone).to_rfc3339()),
        _ => None,
    };
    Ok(ScheduleView {
        id: row.id,
        name: row.name,
        cron: row.cron,
        timezone: row.timezone,
        kind: row.kind.to_string(),
        lists,
        subject: row.subject,
        body_markdown: row.body_markdown,
        enabled: row.enabled,
        next_run_at: row.next_run_at,
        next_run_local,
        last_run_at: row.last_run_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

async fn load(tx: &mut Tx, id: Uuid) -> Result<ScheduleRow> {
    tx.schedule_by_id(id).await?.ok_or(ServiceError::NotFound("schedule"))
}

/// The cron expression must fire at least once more from now on.
fn check_has_future(row: &ScheduleRow, now: DateTime<Utc>, errors: &mut Vec<FieldError>) {
    let fires = parse_zone(&row.timezone)
        .ok()
        .and_then(|zone| Recurrence::new(&row.cron, zone).ok())
        .and_then(|r| r.next_after(now))
        .is_some();
    if !fires {
        errors.push(FieldError::new("cron", "this expression never fires from now on"));
    }
}

pub async fn create(ctx: &Context, input: &ScheduleInput, actor: &Actor) -> Result<ScheduleView> {
    let (parsed, mut errors) = parse_input(input, &ctx.config.timezone, true);
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let ids = list_ids(&mut tx, parsed.lists.as_deref().unwrap_or_default(), &mut errors).await?;
    ensure_valid(errors)?;
    let mut row = ScheduleRow {
        id: Uuid::now_v7(),
        name: parsed.name.unwrap_or_default(),
        cron: parsed.cron.unwrap_or_default(),
        timezone: parsed.zone.unwrap_or_else(|| ctx.config.timezone.clone()),
        kind: parsed.kind.unwrap_or(ScheduleKind::Repeat),
        subject: parsed.subject.unwrap_or_default(),
        body_markdown: parsed.body.unwrap_or_default(),
        enabled: input.enabled.unwrap_or(true),
        next_run_at: None,
        last_run_at: None,
        created_by: actor.to_db(),
        created_at: now,
        updated_at: now,
    };
    let mut errors = Vec::new();
    check_has_future(&row, now, &mut errors);
    ensure_valid(errors)?;
    row.next_run_at = next_tick(&row, now);
    tx.insert_schedule(&row).await?;
    tx.set_schedule_lists(row.id, &ids).await?;
    let out = view(&mut tx, row).await?;
    tx.commit().await?;
    Ok(out)
}

pub async fn all(ctx: &Context) -> Result<Vec<ScheduleView>> {
    let mut tx = ctx.store.read().await?;
    let mut out = Vec::new();
    for row in tx.schedules().await? {
        out.push(view(&mut tx, row).await?);
    }
    Ok(out)
}

pub async fn get(ctx: &Context, id: Uuid) -> Result<ScheduleView> {
    let mut tx = ctx.store.read().await?;
    let row = load(&mut tx, id).await?;
    view(&mut tx, row).await
}

/// Changes the fields present. A new expression or zone, or re-enabling,
/// recomputes the next tick from now (so re-enabling never fires a backlog).
pub async fn edit(ctx: &Context, id: Uuid, input: &ScheduleInput) -> Result<ScheduleView> {
    let (parsed, mut errors) = parse_input(input, &ctx.config.timezone, false);
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let mut row = load(&mut tx, id).await?;
    let ids = match &parsed.lists {
        Some(slugs) => Some(list_ids(&mut tx, slugs, &mut errors).await?),
        None => None,
    };
    ensure_valid(errors)?;
    let timing_changed =
        parsed.cron.is_some() || parsed.zone.is_some() || (input.enabled == Some(true) && !row.enabled);
    row.name = parsed.name.unwrap_or(row.name);
    row.cron = parsed.cron.unwrap_or(row.cron);
    row.timezone = parsed.zone.unwrap_or(row.timezone);
    row.kind = parsed.kind.unwrap_or(row.kind);
    row.subject = parsed.subject.unwrap_or(row.subject);
    row.body_markdown = parsed.body.unwrap_or(row.body_markdown);
    row.enabled = input.enabled.unwrap_or(row.enabled);
    row.updated_at = now;
    if timing_changed {
        let mut errors = Vec::new();
        check_has_future(&row, now, &mut errors);
        ensure_valid(errors)?;
    }
    if timing_changed || !row.enabled {
        row.next_run_at = next_tick(&row, now);
    }
    tx.edit_schedule(&row).await?;
    if let Some(ids) = ids {
        tx.set_schedule_lists(id, &ids).await?;
    }
    let out = view(&mut tx, row).await?;
    tx.commit().await?;
    Ok(out)
}

/// Deletes a schedule. Updates it already sent stay as they are.
pub async fn delete(ctx: &Context, id: Uuid) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    if !tx.delete_schedule(id).await? {
        return Err(ServiceError::NotFound("schedule"));
    }
    tx.commit().await?;
    Ok(())
}

/// Schedules whose tick has come, for the worker.
pub async fn due(ctx: &Context) -> Result<Vec<Uuid>> {
    let now = ctx.clock.now();
    Ok(ctx.store.read().await?.due_schedules(now).await?)
}

/// The earliest tick of any enabled schedule (the worker sleeps until then).
pub async fn earliest_tick(ctx: &Context) -> Result<Option<DateTime<Utc>>> {
    Ok(ctx.store.read().await?.earliest_schedule_tick().await?)
}

/// Runs schedule `id` if its tick has come: claims the tick, creates the
/// update and starts sending it, all in one transaction. With `held` (the
/// sender authentication checks failed, `services::sender_auth`), the update
/// is created but left a draft, and the audit log says why: the send does
/// not go silently, and an organiser can send it once the records are fixed.
pub async fn run(ctx: &Context, id: Uuid, held: Option<&super::sender_auth::Report>) -> Result<RunOutcome> {
    let mut tx = ctx.store.write().await?;
    // Read the time once the transaction is ours: on SQLite `write()` may
    // have waited for another writer.
    let now = ctx.clock.now();
    let Some(row) = tx.schedule_by_id(id).await? else { return Ok(RunOutcome::NotDue) };
    let Some(due_at) = row.next_run_at.filter(|at| row.enabled && *at <= now) else {
        return Ok(RunOutcome::NotDue);
    };
    // Missed ticks collapse into this one run: the next tick is the first
    // after now, not the first after `due_at`.
    let next = next_tick(&row, now);
    if !tx.claim_schedule_tick(id, due_at, next, now).await? {
        return Ok(RunOutcome::NotDue);
    }
    // Every list deleted since: nobody to send to, so the tick passes.
    let lists: Vec<Uuid> = tx.schedule_lists(id).await?.into_iter().map(|l| l.id).collect();
    let update = match row.kind {
        _ if lists.is_empty() => None,
        ScheduleKind::Digest => digest(&mut tx, &row, now).await?,
        ScheduleKind::Repeat => Some(repeat(&row, now)),
    };
    let update_id = match update {
        Some(update) => {
            tx.insert_update(&update).await?;
            tx.set_update_lists(update.id, &lists).await?;
            if let Some(report) = held {
                let action = super::audit::Action {
                    what: "sender_authentication.held",
                    target: &format!("update:{}", update.id),
                    status: 0,
                    detail: format!("scheduled send held as a draft: {}", report.summary()),
                };
                tx.insert_audit(&super::audit::entry(&super::audit::Who::system(), action, now)).await?;
                tracing::error!(schedule = %id, update = %update.id, failures = %report.summary(), "scheduled send held: sender authentication fails");
            } else if !start_sending(&mut tx, update.id, crate::domain::UpdateEvent::Send, now).await? {
                // Cannot happen (the update was created a moment ago in this
                // transaction), but never claim a tick without its send.
                return Err(ServiceError::Conflict("the scheduled update could not be started".into()));
            }
            Some(update.id)
        }
        None => None,
    };
    tx.record_schedule_run(&ScheduleRun { schedule_id: id, due_at, ran_at: now, update_id }).await?;
    tx.commit().await?;
    tracing::info!(schedule = %id, kind = %row.kind, due = %due_at, next = ?next, update = ?update_id, "schedule ran");
    Ok(update_id.map_or(RunOutcome::Skipped, RunOutcome::Sent))
}

/// The draft a run sends: the schedule's templates with `{{date}}` filled
/// in, and `body` as the markdown.
fn draft(row: &ScheduleRow, body: String, now: DateTime<Utc>) -> UpdateRow {
    UpdateRow {
        id: Uuid::now_v7(),
        subject: fill_date(&row.subject, row, now),
        body_markdown: body,
        status: crate::domain::UpdateStatus::Draft,
        send_at: None,
        created_by: Actor::System.to_db(),
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    }
}

fn repeat(row: &ScheduleRow, now: DateTime<Utc>) -> UpdateRow {
    draft(row, fill_date(&row.body_markdown, row, now), now)
}

/// The digest of what was sent since the previous run (recorded as
/// collected), or `None` if nothing was.
async fn digest(tx: &mut Tx, row: &ScheduleRow, now: DateTime<Utc>) -> Result<Option<UpdateRow>> {
    let sent = tx.updates_for_digest(row.id, row.created_at).await?;
    if sent.is_empty() {
        return Ok(None);
    }
    tx.record_digest_entries(row.id, &sent.iter().map(|u| u.id).collect::<Vec<_>>()).await?;
    let mut body = fill_date(&row.body_markdown, row, now).trim_end().to_owned();
    for u in &sent {
        if !body.is_empty() {
            body.push_str("\n\n");
        }
        body.push_str(&format!("## {}\n\n{}", u.subject, u.body_markdown.trim_end()));
    }
    body.push('\n');
    Ok(Some(draft(row, body, now)))
}

/// Replaces `{{date}}` with the run's date on the schedule's wall clock.
fn fill_date(template: &str, row: &ScheduleRow, now: DateTime<Utc>) -> String {
    if !template.contains("{{date}}") {
        return template.to_owned();
    }
    let date = match parse_zone(&row.timezone) {
        Ok(zone) => now.with_timezone(&zone).format("%-d %B %Y").to_string(),
        Err(_) => now.format("%-d %B %Y").to_string(),
    };
    template.replace("{{date}}", &date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(subject: &str, zone: &str) -> ScheduleRow {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        ScheduleRow {
            id: Uuid::nil(),
            name: "n".into(),
            cron: "0 9 * * *".into(),
            timezone: zone.into(),
            kind: ScheduleKind::Repeat,
            subject: subject.into(),
            body_markdown: String::new(),
            enabled: true,
            next_run_at: None,
            last_run_at: None,
            created_by: "system".into(),
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn date_is_the_local_date_of_the_run() {
        // 23:30 UTC on 31 May is already 1 June in London (BST) but not in New York.
        let now = DateTime::parse_from_rfc3339("2026-05-31T23:30:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(fill_date("Digest {{date}}", &row("", "Europe/London"), now), "Digest 1 June 2026");
        assert_eq!(fill_date("Digest {{date}}", &row("", "America/New_York"), now), "Digest 31 May 2026");
        assert_eq!(fill_date("No placeholder", &row("", "UTC"), now), "No placeholder");
    }

    #[test]
    fn creation_reports_every_bad_field_at_once() {
        let input = ScheduleInput {
            name: Some(String::new()),
            cron: Some("every day".into()),
            timezone: Some("Mars/Base".into()),
            kind: Some("weekly".into()),
            lists: Some(vec![]),
            subject: Some("Bad\r\nBcc: x@example.org".into()),
            body_markdown: None,
            enabled: None,
        };
        let (_, errors) = parse_input(&input, "Europe/London", true);
        let mut fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["cron", "kind", "lists", "name", "subject", "timezone"]);
    }

    #[test]
    fn an_edit_needs_no_fields_but_creation_does() {
        let (_, errors) = parse_input(&ScheduleInput::default(), "Europe/London", false);
        assert!(errors.is_empty());
        let (_, errors) = parse_input(&ScheduleInput::default(), "Europe/London", true);
        let mut fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["cron", "lists", "name", "subject"]);
    }
}
