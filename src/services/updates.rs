//! The organiser's updates: drafts, preview, test sends, and the state
//! machine `draft → scheduled → sending ⇄ paused → sent`, with `cancelled`
//! reachable from every state before `sent`.
//!
//! Starting to send takes the audience snapshot in the same transaction as
//! the status change, so an update is never "sending" without recipients or
//! snapshotted twice.

use super::{Actor, Context, FieldError, Result, ServiceError, ensure_valid};
use crate::domain::{EmailAddress, HeaderSafeText, ListSlug, MailKind, SignedToken, UpdateEvent, UpdateStatus};
use crate::mail::update::{PreparedUpdate, Recipient};
use crate::store::{DeliveryRow, DeliveryStats, Tx, UpdateRow};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An update in the API's shape (README, "Sending updates"; plus timestamps).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UpdateView {
    pub id: Uuid,
    pub subject: String,
    pub body_markdown: String,
    pub lists: Vec<String>,
    pub status: String,
    pub send_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct UpdateInput {
    #[schema(example = "The hearing is on Monday")]
    pub subject: Option<String>,
    #[schema(example = "Dear {{name}},\n\nThe hearing is on **Monday** at 10:00.")]
    pub body_markdown: Option<String>,
    /// List slugs.
    #[schema(example = json!(["updates"]))]
    pub lists: Option<Vec<String>>,
}

const MAX_BODY: usize = 200_000;

async fn view(tx: &mut Tx, u: UpdateRow) -> Result<UpdateView> {
    let lists = tx.update_lists(u.id).await?.into_iter().map(|l| l.slug).collect();
    Ok(UpdateView {
        id: u.id,
        subject: u.subject,
        body_markdown: u.body_markdown,
        lists,
        status: u.status.to_string(),
        send_at: u.send_at,
        created_at: u.created_at,
        updated_at: u.updated_at,
        started_at: u.started_at,
        finished_at: u.finished_at,
    })
}

async fn load(tx: &mut Tx, id: Uuid) -> Result<UpdateRow> {
    tx.update_by_id(id).await?.ok_or(ServiceError::NotFound("update"))
}

/// The fields of an [`UpdateInput`] that were present, parsed.
struct Parsed {
    subject: Option<String>,
    body: Option<String>,
    lists: Option<Vec<ListSlug>>,
}

/// Parses the fields present in `input`; `require_all` for creation.
fn parse_input(input: &UpdateInput, require_all: bool) -> Result<Parsed> {
    let mut errors = Vec::new();
    let subject = match input.subject.as_deref() {
        Some(s) if !s.trim().is_empty() => HeaderSafeText::parse(s, 200)
            .map(HeaderSafeText::into_inner)
            .map_err(|_| errors.push(FieldError::new("subject", "a subject is one line of at most 200 characters")))
            .ok(),
        Some(_) => {
            errors.push(FieldError::new("subject", "a subject is required"));
            None
        }
        None if require_all => {
            errors.push(FieldError::new("subject", "a subject is required"));
            None
        }
        None => None,
    };
    let body = match input.body_markdown.as_deref() {
        Some(b) if b.len() > MAX_BODY => {
            errors.push(FieldError::new("body_markdown", "the body is at most 200,000 bytes"));
            None
        }
        Some(b) => Some(b.to_owned()),
        None if require_all => Some(String::new()),
        None => None,
    };
    let lists = match &input.lists {
        Some(ls) if ls.is_empty() => {
            errors.push(FieldError::new("lists", "choose at least one list"));
            None
        }
        // One copy's unsubscribe link names every list it was sent for.
        Some(ls) if ls.len() > crate::domain::MAX_TOKEN_LISTS => {
            errors.push(FieldError::new(
                "lists",
                format!("an update can go to at most {} lists", crate::domain::MAX_TOKEN_LISTS),
            ));
            None
        }
        Some(ls) => Some(
            ls.iter()
                .filter_map(|l| ListSlug::parse(l).map_err(|e| errors.push(FieldError::from_parse("lists", e))).ok())
                .collect(),
        ),
        None if require_all => {
            errors.push(FieldError::new("lists", "choose at least one list"));
            None
        }
        None => None,
    };
    ensure_valid(errors)?;
    Ok(Parsed { subject, body, lists })
}

async fn list_ids(tx: &mut Tx, slugs: &[ListSlug]) -> Result<Vec<Uuid>> {
    let mut ids = Vec::with_capacity(slugs.len());
    for slug in slugs {
        let list = tx
            .list_by_slug(slug.as_str())
            .await?
            .ok_or_else(|| ServiceError::Invalid(vec![FieldError::new("lists", format!("there is no list {slug}"))]))?;
        if !ids.contains(&list.id) {
            ids.push(list.id);
        }
    }
    Ok(ids)
}

pub async fn create(ctx: &Context, input: &UpdateInput, actor: &Actor) -> Result<UpdateView> {
    let Parsed { subject, body, lists } = parse_input(input, true)?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let ids = list_ids(&mut tx, &lists.unwrap_or_default()).await?;
    let row = UpdateRow {
        id: Uuid::now_v7(),
        subject: subject.unwrap_or_default(),
        body_markdown: body.unwrap_or_default(),
        status: UpdateStatus::Draft,
        send_at: None,
        created_by: actor.to_db(),
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
    };
    tx.insert_update(&row).await?;
    tx.set_update_lists(row.id, &ids).await?;
    let out = view(&mut tx, row).await?;
    tx.commit().await?;
    Ok(out)
}

pub async fn get(ctx: &Context, id: Uuid) -> Result<UpdateView> {
    let mut tx = ctx.store.read().await?;
    let row = load(&mut tx, id).await?;
    view(&mut tx, row).await
}

pub async fn recent(ctx: &Context, limit: i64) -> Result<Vec<UpdateView>> {
    let mut tx = ctx.store.read().await?;
    let mut out = Vec::new();
    for row in tx.recent_updates(limit).await? {
        out.push(view(&mut tx, row).await?);
    }
    Ok(out)
}

/// What an edit came to.
#[derive(Debug, Clone)]
pub struct Edited {
    pub update: UpdateView,
    /// The update was scheduled and the editor may not send: editing took
    /// it back to a draft, out of the schedule.
    pub unscheduled: bool,
}

/// Edits a draft or scheduled update (not one that is sending or done).
///
/// Scheduling is sending later, so a scheduled update edited by someone who
/// may not send (an editor) goes back to being a draft: otherwise an editor
/// could rewrite the subject, body and lists of what an admin approved, and
/// send it to whom they like at the scheduled time.
pub async fn edit(ctx: &Context, id: Uuid, input: &UpdateInput, may_send: bool) -> Result<Edited> {
    let Parsed { subject, body, lists } = parse_input(input, false)?;
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let row = load(&mut tx, id).await?;
    if !row.status.is_editable() {
        return Err(ServiceError::Conflict(format!("an update that is {} can no longer be edited", row.status)));
    }
    let unscheduled = row.status == UpdateStatus::Scheduled && !may_send;
    if unscheduled && !tx.transition_update(id, UpdateEvent::Unschedule, None, now).await? {
        return Err(ServiceError::Conflict("the update changed while it was being edited; try again".into()));
    }
    tx.edit_update(id, &subject.unwrap_or(row.subject), &body.unwrap_or(row.body_markdown), now).await?;
    if let Some(lists) = lists {
        let ids = list_ids(&mut tx, &lists).await?;
        tx.set_update_lists(id, &ids).await?;
    }
    let row = load(&mut tx, id).await?;
    let update = view(&mut tx, row).await?;
    tx.commit().await?;
    if unscheduled {
        tracing::info!(update = %id, "an edit by someone who may not send took the update out of the schedule");
    }
    Ok(Edited { update, unscheduled })
}

pub async fn delete(ctx: &Context, id: Uuid) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    let row = load(&mut tx, id).await?;
    if !tx.delete_update(id).await? {
        return Err(ServiceError::Conflict(format!(
            "only drafts can be deleted; this update is {} (cancel it instead)",
            row.status
        )));
    }
    tx.commit().await?;
    Ok(())
}

/// The rendered email, for the preview pane.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub subject: String,
    pub html: String,
    pub text: String,
}

fn sample_recipient<'a>(ctx: &Context, list_slug: &'a str, list_name: &'a str, test: bool) -> Recipient<'a> {
    let sample = Uuid::nil();
    Recipient {
        subscriber_id: sample,
        email: "supporter@example.org",
        name: "Sam Supporter",
        list_slug,
        list_name,
        other_list_names: Vec::new(),
        unsubscribe_url: ctx
            .config
            .link(&format!("/unsubscribe/{}", SignedToken::unsubscribe(sample, sample).encode(&ctx.secret_key))),
        preferences_url: ctx
            .config
            .link(&format!("/preferences/{}", SignedToken::preferences(sample).encode(&ctx.secret_key))),
        test,
    }
}

/// Renders the real email for a sample supporter ("Sam Supporter").
pub async fn preview(ctx: &Context, id: Uuid) -> Result<Preview> {
    let mut tx = ctx.store.read().await?;
    let row = load(&mut tx, id).await?;
    let lists = tx.update_lists(id).await?;
    let (slug, name) = lists.first().map(|l| (l.slug.clone(), l.name.clone())).unwrap_or_default();
    let prepared = PreparedUpdate::new(row.id, &row.subject, &row.body_markdown)?;
    let composed = ctx.composer.update(&prepared, &sample_recipient(ctx, &slug, &name, false))?;
    let parsed = crate::mail::compose::parts(&composed.bytes);
    Ok(Preview { subject: row.subject, html: parsed.html, text: parsed.text })
}

/// An address a test send did not mail, as typed, and why: `suppressed`
/// (erased, complained, hard-bounced) or `withdrawn` (unsubscribed from
/// everything, complained, or left every list they were on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAddress {
    pub email: String,
    pub reason: &'static str,
}

/// Most addresses one test send may name.
pub const TEST_SEND_MAX_ADDRESSES: usize = 10;

/// What a test send came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestSend {
    /// Copies queued to `queued` addresses; `skipped` (as typed) get none,
    /// being suppressed or withdrawn.
    Queued { queued: usize, skipped: Vec<SkippedAddress> },
    /// The organiser's hourly cap (`TIDINGS_TEST_SEND_HOURLY_CAP`) would be
    /// passed: nothing was sent.
    CapReached { cap: u32, left: u32 },
}

/// Queues a test copy (subject marked `[TEST]`) to each address, through
/// the transactional outbox, on behalf of `organiser` (an [`Actor`]).
///
/// At most [`TEST_SEND_MAX_ADDRESSES`] a request, and at most
/// `TIDINGS_TEST_SEND_HOURLY_CAP` copies per organiser per rolling hour,
/// counted in the database (so the cap holds across restarts and
/// instances). Never to a suppressed address (erased, complained, hard
/// bounced) nor to someone who has withdrawn from every list they were on:
/// those are skipped and named in the answer, which goes only to an
/// organiser. A test copy's unsubscribe and preferences links lead to a
/// page saying it was a test: nobody real is unsubscribed by it.
pub async fn test_send(ctx: &Context, id: Uuid, emails: &[String], organiser: &Actor) -> Result<TestSend> {
    if emails.is_empty() || emails.len() > TEST_SEND_MAX_ADDRESSES {
        return Err(ServiceError::Invalid(vec![FieldError::new(
            "emails",
            format!("give between 1 and {TEST_SEND_MAX_ADDRESSES} addresses"),
        )]));
    }
    let mut addresses: Vec<(EmailAddress, &str)> = Vec::new();
    for e in emails {
        let address =
            EmailAddress::parse(e).map_err(|e| ServiceError::Invalid(vec![FieldError::from_parse("emails", e)]))?;
        if !addresses.iter().any(|(a, _)| a.normalised() == address.normalised()) {
            addresses.push((address, e.trim()));
        }
    }
    let now = ctx.clock.now();
    let organiser = organiser.to_db();
    let cap = ctx.config.test_send_hourly_cap;
    let mut tx = ctx.store.write().await?;
    let row = load(&mut tx, id).await?;
    let mut skipped = Vec::new();
    let mut to = Vec::new();
    // The one withdrawal rule (`services::standing`), for mail to no list.
    let mut people = Vec::with_capacity(addresses.len());
    for (address, _) in &addresses {
        let subscriber = tx.subscriber_by_email(address.normalised()).await?.map(|s| s.id);
        people.push(super::standing::Person { email: address, subscriber });
    }
    let standings =
        super::standing::bars(&mut tx, &ctx.address_key, &people, super::standing::Purpose::AnyMail).await?;
    for ((address, typed), bar) in addresses.iter().zip(standings.bars) {
        match bar {
            Some(bar) => skipped.push(SkippedAddress { email: typed.to_string(), reason: bar.code() }),
            None => to.push(address.clone()),
        }
    }
    if cap > 0 {
        // Serialises one organiser's test sends (SQLite's write transaction
        // already does), so parallel requests cannot both pass the cap.
        tx.lock_test_sends(&organiser).await?;
        let used =
            u32::try_from(tx.test_sends_since(&organiser, now - chrono::Duration::hours(1)).await?).unwrap_or(u32::MAX);
        let left = cap.saturating_sub(used);
        if to.len() as u64 > u64::from(left) {
            return Ok(TestSend::CapReached { cap, left });
        }
    }
    let lists = tx.update_lists(id).await?;
    let (slug, name) = lists.first().map(|l| (l.slug.clone(), l.name.clone())).unwrap_or_default();
    let prepared = PreparedUpdate::new(row.id, &row.subject, &row.body_markdown)?;
    let test_page = ctx.config.link("/test-copy");
    for address in &to {
        let mut r = sample_recipient(ctx, &slug, &name, true);
        r.email = address.as_str();
        r.name = "";
        r.unsubscribe_url = test_page.clone();
        r.preferences_url = test_page.clone();
        let mail = ctx.composer.update(&prepared, &r)?;
        super::queue_mail(&mut tx, MailKind::Test, mail, now).await?;
    }
    if !to.is_empty() {
        tx.insert_test_send(Uuid::now_v7(), &organiser, to.len() as i64, now).await?;
    }
    tx.commit().await?;
    ctx.outbox_wakeup.notify_one();
    Ok(TestSend::Queued { queued: to.len(), skipped })
}

/// A request to send an update now or schedule it.
#[derive(Debug, Clone)]
pub struct SendRequest<'a> {
    /// When to send; absent or not in the future sends now.
    pub at: Option<DateTime<Utc>>,
    /// An admin's decision to send although sender authentication fails
    /// (`services::sender_auth`); recorded in the audit log. The caller
    /// checks that the actor is an admin.
    pub override_authentication: bool,
    pub actor: &'a Actor,
}

/// Sends now (`at` absent or not in the future) or schedules for `at`,
/// once the sender authentication gate lets it (or an admin overrides it).
/// A scheduled send is checked again when it is due (see
/// `workers::delivery`): if it fails then, it is held.
pub async fn send(ctx: &Context, id: Uuid, request: &SendRequest<'_>) -> Result<UpdateView> {
    let at = request.at;
    // The DNS questions are asked before the write transaction is taken.
    let overridden = match ctx.sender_auth.gate().await {
        super::sender_auth::Verdict::Go(_) => None,
        super::sender_auth::Verdict::Refused(report) if !request.override_authentication => {
            return Err(ServiceError::SenderAuthentication(report));
        }
        super::sender_auth::Verdict::Refused(report) => Some(report),
    };
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let row = load(&mut tx, id).await?;
    if tx.update_lists(id).await?.is_empty() {
        return Err(ServiceError::Invalid(vec![FieldError::new("lists", "choose at least one list before sending")]));
    }
    if row.subject.trim().is_empty() {
        return Err(ServiceError::Invalid(vec![FieldError::new("subject", "a subject is required before sending")]));
    }
    match at.filter(|t| *t > now) {
        Some(at) => {
            if !tx.transition_update(id, UpdateEvent::Schedule, Some(at), now).await? {
                return Err(ServiceError::Conflict(format!("an update that is {} cannot be scheduled", row.status)));
            }
        }
        None => {
            if !start_sending(&mut tx, id, UpdateEvent::Send, now).await? {
                return Err(ServiceError::Conflict(format!("an update that is {} cannot be sent", row.status)));
            }
        }
    }
    if let Some(report) = overridden {
        let who = super::audit::Who {
            actor: request.actor.to_db(),
            label: "sender authentication override".to_owned(),
            ip: None,
        };
        let action = super::audit::Action {
            what: "sender_authentication.override",
            target: &format!("update:{id}"),
            status: 0,
            detail: format!("sent although these checks fail: {}", report.summary()),
        };
        tx.insert_audit(&super::audit::entry(&who, action, now)).await?;
        tracing::warn!(update = %id, failures = %report.summary(), "sender authentication overridden by an admin");
    }
    let row = load(&mut tx, id).await?;
    let out = view(&mut tx, row).await?;
    tx.commit().await?;
    Ok(out)
}

/// Moves an update to `sending` by `event` (sent now, or its time came) and
/// snapshots its audience, in the caller's transaction. `false` if its
/// status does not allow `event`.
pub(crate) async fn start_sending(tx: &mut Tx, id: Uuid, event: UpdateEvent, now: DateTime<Utc>) -> Result<bool> {
    let current = load(tx, id).await?;
    if !tx.transition_update(id, event, current.send_at, now).await? {
        return Ok(false);
    }
    let n = tx.snapshot_audience(id).await?;
    tracing::info!(update = %id, recipients = n, "sending started");
    Ok(true)
}

async fn transition(ctx: &Context, id: Uuid, event: UpdateEvent) -> Result<UpdateView> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let row = load(&mut tx, id).await?;
    let to = event.target();
    if !tx.transition_update(id, event, row.send_at, now).await? {
        return Err(ServiceError::Conflict(format!("an update that is {} cannot be {to}", row.status)));
    }
    if to == UpdateStatus::Cancelled {
        tx.skip_unsent(id).await?;
    }
    if to == UpdateStatus::Sending {
        // Resumed: a send that had paused itself starts a fresh count.
        super::send_guard::resumed(&mut tx, id, now).await?;
    }
    let row = load(&mut tx, id).await?;
    let out = view(&mut tx, row).await?;
    tx.commit().await?;
    Ok(out)
}

pub async fn pause(ctx: &Context, id: Uuid) -> Result<UpdateView> {
    transition(ctx, id, UpdateEvent::Pause).await
}

pub async fn resume(ctx: &Context, id: Uuid) -> Result<UpdateView> {
    transition(ctx, id, UpdateEvent::Resume).await
}

pub async fn cancel(ctx: &Context, id: Uuid) -> Result<UpdateView> {
    transition(ctx, id, UpdateEvent::Cancel).await
}

/// `GET /api/v1/updates/{id}/stats`: deliveries by status, and the
/// complaint and hard-bounce figures the send guard watches.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UpdateStats {
    #[serde(flatten)]
    pub deliveries: DeliveryStats,
    /// Copies handed to the relay.
    pub attempted: i64,
    /// Spam complaints tied to a copy of this update.
    pub complained: i64,
    /// Hard bounces tied to a copy of this update (at sending or reported later).
    pub hard_bounced: i64,
    /// `complained / attempted` (0 before any attempt); 0.004 is 0.4%.
    pub complaint_rate: f64,
    /// `hard_bounced / attempted` (0 before any attempt).
    pub hard_bounce_rate: f64,
    /// Why the send paused itself, while it stays paused.
    pub paused_reason: Option<String>,
}

pub async fn stats(ctx: &Context, id: Uuid) -> Result<UpdateStats> {
    let mut tx = ctx.store.read().await?;
    load(&mut tx, id).await?;
    let deliveries = tx.delivery_stats(id).await?;
    let counts = tx.send_counts(id).await?.ok_or(ServiceError::NotFound("update"))?;
    let rate = |n: i64| if counts.attempted > 0 { n as f64 / counts.attempted as f64 } else { 0.0 };
    Ok(UpdateStats {
        deliveries,
        attempted: counts.attempted,
        complained: counts.complaints,
        hard_bounced: counts.hard_bounces,
        complaint_rate: rate(counts.complaints),
        hard_bounce_rate: rate(counts.hard_bounces),
        paused_reason: counts.auto_paused_reason,
    })
}

/// Every automatic pause of an update, newest first (dismissed ones too).
pub async fn pause_history(ctx: &Context, id: Uuid) -> Result<Vec<crate::store::AlertRow>> {
    let mut tx = ctx.store.read().await?;
    Ok(tx.alerts_about(super::send_guard::ALERT_KIND, &id.to_string()).await?)
}

/// One row of `GET /api/v1/updates/{id}/deliveries`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    pub subscriber_id: Uuid,
    pub email: String,
    pub status: String,
    pub attempts: i64,
    pub message_id: Option<String>,
    pub smtp_reply: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(d: DeliveryRow) -> Self {
        Self {
            subscriber_id: d.subscriber_id,
            email: d.email,
            status: d.status.to_string(),
            attempts: d.attempts,
            message_id: d.message_id,
            smtp_reply: d.smtp_reply,
            sent_at: d.sent_at,
        }
    }
}

/// A page of the per-recipient record; `next` is the cursor for the next.
pub async fn deliveries(
    ctx: &Context,
    id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<DeliveryView>, Option<Uuid>)> {
    let limit = limit.clamp(1, 1000);
    let mut tx = ctx.store.read().await?;
    load(&mut tx, id).await?;
    let rows = tx.deliveries_page(id, after, limit).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.subscriber_id)).flatten();
    Ok((rows.into_iter().map(DeliveryView::from).collect(), next))
}

/// Who an update would reach if it started now (the review before a send).
#[derive(Debug, Clone)]
pub struct Audience {
    /// People who would get a copy: once each, however many lists they are on.
    pub total: i64,
    /// Each of the update's lists with its people among them.
    pub lists: Vec<crate::store::AudienceListRow>,
}

/// Counts the audience exactly as starting the send would take it: the
/// snapshot itself runs, in a transaction that is then rolled back, so the
/// count cannot follow a rule of its own (confirmed, not suppressed, once
/// across lists). Only for an update that has not started.
pub async fn audience(ctx: &Context, id: Uuid) -> Result<Audience> {
    let mut tx = ctx.store.write().await?;
    let row = load(&mut tx, id).await?;
    if !matches!(row.status, UpdateStatus::Draft | UpdateStatus::Scheduled) {
        return Err(ServiceError::Conflict(format!("an update that is {} cannot be sent again", row.status)));
    }
    let total = tx.snapshot_audience(id).await?;
    let lists = tx.audience_by_list(id).await?;
    tx.rollback().await?;
    Ok(Audience { total: i64::try_from(total).unwrap_or(i64::MAX), lists })
}

/// Takes a scheduled update out of the schedule: a draft again, with no time.
pub async fn unschedule(ctx: &Context, id: Uuid) -> Result<UpdateView> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let row = load(&mut tx, id).await?;
    if !tx.transition_update(id, UpdateEvent::Unschedule, None, now).await? {
        return Err(ServiceError::Conflict(format!("an update that is {} is not scheduled", row.status)));
    }
    let row = load(&mut tx, id).await?;
    let out = view(&mut tx, row).await?;
    tx.commit().await?;
    Ok(out)
}

/// Renders what the editor holds, unsaved, as the real email for a sample
/// supporter: the live preview beside the editor.
pub async fn preview_unsaved(ctx: &Context, input: &UpdateInput) -> Result<Preview> {
    // One line, as a subject is once saved; the preview never refuses it.
    let subject = input.subject.as_deref().unwrap_or_default().replace(['\r', '\n'], " ");
    let markdown = input.body_markdown.clone().unwrap_or_default();
    if markdown.len() > MAX_BODY {
        return Err(ServiceError::Invalid(vec![FieldError::new("body_markdown", "the body is at most 200,000 bytes")]));
    }
    let first = input.lists.as_deref().unwrap_or_default().iter().find_map(|s| ListSlug::parse(s).ok());
    let list = match first {
        Some(slug) => ctx.store.read().await?.list_by_slug(slug.as_str()).await?,
        None => None,
    };
    let (slug, name) = list.map(|l| (l.slug, l.name)).unwrap_or_default();
    let prepared = PreparedUpdate::new(Uuid::nil(), &subject, &markdown)?;
    let composed = ctx.composer.update(&prepared, &sample_recipient(ctx, &slug, &name, false))?;
    let parsed = crate::mail::compose::parts(&composed.bytes);
    // Shown in a page, where the mail's CRLF line ends are just line ends.
    Ok(Preview { subject, html: parsed.html, text: parsed.text.replace("\r\n", "\n") })
}
