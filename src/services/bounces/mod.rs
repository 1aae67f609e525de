//! Bounces and complaints: what a report means for a subscriber, and doing
//! it (README, "Bounces and complaints": hard bounces feed suppression).
//!
//! Reports arrive from provider webhooks ([`providers`]), from RFC 3464 DSN
//! and RFC 5965 ARF messages ([`dsn`]: `tidings bounces ingest` and the
//! bounce-mailbox worker) and from the delivery worker's own synchronous
//! SMTP refusals ([`smtp_hard_bounce`]). Each is normalised into a
//! [`Report`], classified by RFC 3463 ([`classify`]) and applied in one
//! transaction:
//! - tied to its delivery by VERP return path (its tag verified) or by our
//!   Message-ID (`<update.subscriber@host>`, naming a copy that was sent),
//!   or to a transactional message (confirmation, re-permission request,
//!   data copy, test copy) by its VERP return path naming its outbox row,
//!   which must have gone out to an address that is a subscriber's;
//!   only authenticated provider webhooks may fall back to the subscriber's
//!   address. A DSN or abuse report arrives by mail, which anyone can send:
//!   one that is not tied to a copy Tidings sent changes nothing and is
//!   recorded as `review` for an admin (issue 24 §1), who may apply or
//!   dismiss it ([`decide_held`], audited). An address we do not know is
//!   recorded as `unmatched`, never an error (a provider would retry an
//!   error forever). An abuse report's DKIM signature is checked and the
//!   result recorded ([`authenticity`]);
//! - **hard** → the delivery `bounced`, every active subscription `bounced`
//!   with a `bounced` ledger entry, and a `hard-bounce` suppression. A hard
//!   bounce of a transactional message does the same (the ledger entry
//!   names the mail): a confirmation mail that cannot be delivered means the
//!   address is dead or mistyped, so its pending subscriptions end as
//!   `bounced` and no further confirmation mail goes to it;
//! - **soft** → the delivery `bounced`; after N consecutive soft bounces
//!   (`TIDINGS_SOFT_BOUNCE_LIMIT`) the subscriptions become `bounced` with a
//!   ledger entry saying so, but there is no suppression: the person may
//!   subscribe again. A delivery that went out and did not bounce since
//!   resets the count (checked when counting, see
//!   [`crate::store::Tx::soft_bounce_streak`], so the send path is untouched);
//! - **policy** (5.7.x) → an operator alert on the dashboard, nothing else;
//! - **complaint** → every subscription `complained` with a ledger entry, and
//!   a `complaint` suppression (so no list mails them again);
//! - every report is recorded in `bounce_events` once: a repeat (same
//!   provider event id, or same DSN) is recognised and has no effect.

pub mod authenticity;
pub mod classify;
pub mod dsn;
pub mod providers;

pub use classify::{Class, EnhancedStatus, Verdict, classify, is_hard_bounce};

use super::{Context, Result, ServiceError, send_guard};
use crate::domain::{
    Actor, AddressKey, AlertKind, ConsentKind, DeliveryStatus, EmailAddress, OutboxStatus, SubscriptionStatus,
    sha256_hex,
};
use crate::mail::verp::{self, Tagged};
use crate::store::{
    AlertRow, BounceEventRow, BouncedDelivery, BouncedMail, NewAlert, NewBounceEvent, NewConsentEvent, StoreError,
    SubscriberRow, Tx,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Diagnostics are kept to this many characters.
const DIAGNOSTIC_CHARS: usize = 500;

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Ses,
    Postmark,
    Sendgrid,
    Mailgun,
    Generic,
    /// An RFC 3464 delivery status notification.
    Dsn,
    /// An RFC 5965 abuse feedback report.
    Arf,
    /// The relay refused the message while we were sending it.
    Smtp,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Ses => "ses",
            Source::Postmark => "postmark",
            Source::Sendgrid => "sendgrid",
            Source::Mailgun => "mailgun",
            Source::Generic => "generic",
            Source::Dsn => "dsn",
            Source::Arf => "arf",
            Source::Smtp => "smtp",
        }
    }
}

/// What a report says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportKind {
    Bounce {
        status: Option<EnhancedStatus>,
        diagnostic: Option<String>,
        verdict: Verdict,
    },
    Complaint {
        feedback_type: Option<String>,
    },
    /// Still being retried by the sending system: recorded, nothing more.
    Delayed {
        status: Option<EnhancedStatus>,
        diagnostic: Option<String>,
    },
}

/// One bounce or complaint about one recipient, whatever format carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub source: Source,
    /// The carrier's id for this event (provider event id, the DSN's own
    /// Message-ID …): with the recipient, what makes a repeat recognisable.
    pub event_id: Option<String>,
    pub kind: ReportKind,
    /// The failed recipient as the report names it.
    pub recipient: Option<String>,
    /// The Message-ID of the message that bounced.
    pub message_id: Option<String>,
    /// Addresses that may be our VERP return path (`tb-…@`).
    pub return_paths: Vec<String>,
    pub occurred_at: Option<DateTime<Utc>>,
}

/// An SNS subscription waiting to be confirmed (SES notifications start
/// only after someone opens the SubscribeURL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsConfirmation {
    pub topic_arn: String,
    pub subscribe_url: String,
}

/// Everything one payload or message held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub reports: Vec<Report>,
    /// Events that are not bounces or complaints (deliveries, opens …), or
    /// that cannot be acted on, each with the reason.
    pub ignored: Vec<String>,
    pub sns_confirmations: Vec<SnsConfirmation>,
    /// The DKIM check of an abuse report ([`read_message`]).
    pub dkim: Option<authenticity::DkimCheck>,
}

/// Why a payload or message could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// What became of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acted on (for `Delayed`, only recorded). `suspended` when this soft
    /// bounce reached the limit.
    Applied { class: Class, subscriber: Uuid, suspended: bool },
    /// The same event was applied before.
    Duplicate,
    /// No subscriber has that address: recorded, nothing else.
    Unmatched { class: Class },
    /// A report by mail that names a subscriber only by address (no valid
    /// VERP tag, no Message-ID of a copy we sent): anyone could have sent
    /// it, so nothing changed; it waits on the bounces page for an admin.
    Review { class: Class },
    /// Not a failure (e.g. a 2.x.x status).
    Ignored { reason: String },
}

/// Counts for a webhook's answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub received: usize,
    pub applied: usize,
    pub duplicates: usize,
    pub unmatched: usize,
    pub ignored: usize,
}

impl Summary {
    pub fn new(outcomes: &[Outcome], ignored_before: usize) -> Self {
        let mut s =
            Summary { received: outcomes.len() + ignored_before, ignored: ignored_before, ..Summary::default() };
        for o in outcomes {
            match o {
                Outcome::Applied { .. } => s.applied += 1,
                Outcome::Duplicate => s.duplicates += 1,
                Outcome::Unmatched { .. } | Outcome::Review { .. } => s.unmatched += 1,
                Outcome::Ignored { .. } => s.ignored += 1,
            }
        }
        s
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Applied { class, subscriber, suspended: true } => {
                write!(f, "applied: {} bounce; subscriber {subscriber} suspended", class.as_str())
            }
            Outcome::Applied { class, subscriber, .. } => {
                write!(f, "applied: {} for subscriber {subscriber}", class.as_str())
            }
            Outcome::Duplicate => f.write_str("ignored: already applied (a repeat of an earlier report)"),
            Outcome::Unmatched { class } => {
                write!(f, "ignored: {} for an address that is not a subscriber", class.as_str())
            }
            Outcome::Review { class } => write!(
                f,
                "held for review: a {} report not tied to a copy Tidings sent (no valid VERP tag or Message-ID of \
                 ours); nothing changed",
                class.as_str()
            ),
            Outcome::Ignored { reason } => write!(f, "ignored: {reason}"),
        }
    }
}

/// Reads one DSN or abuse-report message as `tidings bounces ingest` and
/// the bounce-mailbox worker receive it, checking the DKIM signature of an
/// abuse report. Apply the result with [`ingest`].
pub async fn read_message(config: &crate::config::Config, raw: &[u8]) -> std::result::Result<Parsed, ParseError> {
    let mut parsed = dsn::parse(raw)?;
    if parsed.reports.iter().any(|r| r.source == Source::Arf) {
        parsed.dkim = Some(authenticity::check(config, raw).await);
    }
    Ok(parsed)
}

/// Applies everything in `parsed` in one transaction.
pub async fn ingest(ctx: &Context, parsed: &Parsed) -> Result<Vec<Outcome>> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    for c in &parsed.sns_confirmations {
        confirm_alert(&mut tx, c, now).await?;
        tracing::warn!(topic = %c.topic_arn, subscribe_url = %c.subscribe_url,
            "Amazon SNS asks to confirm a subscription: open the SubscribeURL (also shown on the admin dashboard)");
    }
    let mut outcomes = Vec::with_capacity(parsed.reports.len());
    for report in &parsed.reports {
        outcomes.push(apply(&mut tx, ctx, report, parsed.dkim.as_ref(), now).await?);
    }
    tx.commit().await?;
    for (report, outcome) in parsed.reports.iter().zip(&outcomes) {
        tracing::info!(source = report.source.as_str(), outcome = %outcome, "bounce report");
        if let Outcome::Applied { class, .. } = outcome {
            ctx.metrics.bounce_report(class.as_str());
        }
    }
    Ok(outcomes)
}

/// The person and what bounced: a copy of an update (`delivery`), a
/// transactional message (`mail`), or, for an authenticated webhook that
/// names only the address, neither.
struct Target {
    subscriber: SubscriberRow,
    delivery: Option<BouncedDelivery>,
    mail: Option<BouncedMail>,
}

impl Target {
    /// When what bounced was sent.
    fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.delivery.as_ref().and_then(|d| d.sent_at).or(self.mail.as_ref().and_then(|m| m.sent_at))
    }
}

/// `<update.subscriber@host>` (our Message-ID of a copy of an update), when
/// the host is ours.
fn ids_from_message_id(message_id: &str, host: &str) -> Option<(Uuid, Uuid)> {
    let (local, domain) = message_id.trim().trim_matches(['<', '>']).rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(host) {
        return None;
    }
    let (update, subscriber) = local.split_once('.')?;
    Some((Uuid::parse_str(update).ok()?, Uuid::parse_str(subscriber).ok()?))
}

/// A recipient as reports write it (`<a@b>`, `rfc822;a@b`, `Name <a@b>`).
fn recipient_address(raw: &str) -> Option<EmailAddress> {
    let raw = raw.trim();
    let raw = raw.split_once(';').map_or(raw, |(_, a)| a).trim();
    let raw = match (raw.rfind('<'), raw.rfind('>')) {
        (Some(open), Some(close)) if open < close => &raw[open + 1..close],
        _ => raw,
    };
    EmailAddress::parse(raw).ok()
}

/// The copy of `update` sent to `subscriber`, if Tidings sent one: the
/// delivery exists and went out (`sent`, or `bounced` by an earlier report);
/// with `message_id`, it must also be the Message-ID that copy carried.
async fn tied(
    tx: &mut Tx,
    update: Uuid,
    subscriber: Uuid,
    message_id: Option<&str>,
) -> Result<Option<Target>, StoreError> {
    let Some(delivery) = tx.delivery_for_bounce(update, subscriber).await? else { return Ok(None) };
    if delivery.sent_at.is_none() || !matches!(delivery.status, DeliveryStatus::Sent | DeliveryStatus::Bounced) {
        return Ok(None);
    }
    let bare = |m: &str| m.trim().trim_matches(['<', '>']).to_ascii_lowercase();
    if let (Some(quoted), Some(ours)) = (message_id, delivery.message_id.as_deref())
        && bare(quoted) != bare(ours)
    {
        return Ok(None);
    }
    Ok(tx.subscriber_by_id(subscriber).await?.map(|subscriber| Target {
        subscriber,
        delivery: Some(delivery),
        mail: None,
    }))
}

/// A transactional message's VERP tag names outbox row `outbox`: `None`
/// unless that message went out (`sent`). When it did, the report is about
/// the address it went to, whatever address the report itself names:
/// [`Match::Tied`] to that subscriber, or [`Match::None`] when the address
/// is no subscriber's (a test copy to an organiser, an erased person).
async fn tied_mail(tx: &mut Tx, outbox: Uuid) -> Result<Option<Match>, StoreError> {
    let Some(mail) = tx.mail_for_bounce(outbox).await? else { return Ok(None) };
    if mail.status != OutboxStatus::Sent || mail.sent_at.is_none() {
        return Ok(None);
    }
    let Ok(address) = EmailAddress::parse(&mail.recipient) else { return Ok(Some(Match::None)) };
    Ok(Some(match tx.subscriber_by_email(address.normalised()).await? {
        Some(subscriber) => Match::Tied(Box::new(Target { subscriber, delivery: None, mail: Some(mail) })),
        None => Match::None,
    }))
}

/// Whether a report's carrier is authenticated (a provider webhook behind
/// the shared secret or a signature, or our own relay's answer) or is mail
/// that anyone could have sent to the bounce path.
fn authenticated_carrier(source: Source) -> bool {
    !matches!(source, Source::Dsn | Source::Arf)
}

/// Who a report is about, and how sure we are.
enum Match {
    /// Tied to a message Tidings sent (VERP tag or Message-ID).
    Tied(Box<Target>),
    /// Only the address in the report names the subscriber.
    ByAddress(SubscriberRow),
    None,
}

/// VERP first (it names the copy or transactional message and is signed),
/// then our Message-ID, then the address alone.
async fn resolve(tx: &mut Tx, ctx: &Context, report: &Report) -> Result<Match, StoreError> {
    for address in &report.return_paths {
        match verp::decode(&ctx.secret_key, address) {
            Some(Tagged::Copy { update, subscriber }) => {
                if let Some(target) = tied(tx, update, subscriber, None).await? {
                    return Ok(Match::Tied(Box::new(target)));
                }
            }
            Some(Tagged::Mail { outbox }) => {
                if let Some(found) = tied_mail(tx, outbox).await? {
                    return Ok(found);
                }
            }
            None => {}
        }
    }
    if let Some(quoted) = report.message_id.as_deref()
        && let Some((update, subscriber)) = ids_from_message_id(quoted, &ctx.composer.host)
        && let Some(target) = tied(tx, update, subscriber, Some(quoted)).await?
    {
        return Ok(Match::Tied(Box::new(target)));
    }
    let Some(address) = report.recipient.as_deref().and_then(recipient_address) else { return Ok(Match::None) };
    Ok(match tx.subscriber_by_email(address.normalised()).await? {
        Some(subscriber) => Match::ByAddress(subscriber),
        None => Match::None,
    })
}

/// The diagnostic as kept: without the recipient's address, and short.
fn redact(text: &str, addresses: &[&str]) -> String {
    let mut out = text.trim().to_owned();
    for a in addresses.iter().filter(|a| !a.is_empty()) {
        let lower = out.to_lowercase();
        let needle = a.to_lowercase();
        // Lower-casing keeps byte offsets for ASCII; for anything else,
        // replace only exact matches.
        if lower.len() == out.len() {
            let mut result = String::with_capacity(out.len());
            let mut rest = 0;
            for (i, _) in lower.match_indices(&needle) {
                result.push_str(&out[rest..i]);
                result.push_str("<recipient>");
                rest = i + needle.len();
            }
            result.push_str(&out[rest..]);
            out = result;
        } else {
            out = out.replace(a, "<recipient>");
        }
    }
    out.chars().take(DIAGNOSTIC_CHARS).collect()
}

async fn apply(
    tx: &mut Tx,
    ctx: &Context,
    report: &Report,
    dkim: Option<&authenticity::DkimCheck>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let (class, status, diagnostic) = match &report.kind {
        ReportKind::Bounce { status, diagnostic, verdict } => match classify(*status, *verdict) {
            Some(class) => (class, *status, diagnostic.clone()),
            None => return Ok(Outcome::Ignored { reason: "the status says it was delivered".into() }),
        },
        ReportKind::Complaint { feedback_type } => {
            (Class::Complaint, None, feedback_type.as_ref().map(|t| format!("feedback type: {t}")))
        }
        ReportKind::Delayed { status, diagnostic } => (Class::Delayed, *status, diagnostic.clone()),
    };
    // A report by mail that only names an address is held: it changes
    // nothing until an admin decides (the subscriber is recorded so the
    // admin can see who it is about).
    let (target, held) = match resolve(tx, ctx, report).await? {
        Match::Tied(target) => (Some(*target), None),
        Match::ByAddress(subscriber) if authenticated_carrier(report.source) => {
            (Some(Target { subscriber, delivery: None, mail: None }), None)
        }
        Match::ByAddress(subscriber) => (None, Some(subscriber)),
        Match::None => (None, None),
    };
    let named = report.recipient.as_deref().and_then(recipient_address);
    let norm = target
        .as_ref()
        .map(|t| &t.subscriber)
        .or(held.as_ref())
        .map(|s| s.email_norm.clone())
        .or_else(|| named.as_ref().map(|a| a.normalised().to_owned()));
    let domain = norm.as_deref().and_then(|n| n.rsplit_once('@')).map(|(_, d)| d.to_owned());
    let email_hash = norm.as_deref().map(|n| ctx.address_key.fingerprint(n));
    // The report's kind is part of its identity: Postmark numbers bounces
    // and spam complaints in one sequence of IDs, for instance.
    let tag = match &report.kind {
        ReportKind::Bounce { .. } => "bounce",
        ReportKind::Complaint { .. } => "complaint",
        ReportKind::Delayed { .. } => "delayed",
    };
    let identity = match &report.event_id {
        Some(id) => format!("{tag}:id:{id}"),
        None => format!(
            "{tag}:msg:{}|{}|{}",
            report.message_id.as_deref().unwrap_or(""),
            class.as_str(),
            status.map(|s| s.to_string()).unwrap_or_default()
        ),
    };
    // Keyed: the address is part of what is hashed.
    let dedupe_key = ctx.address_key.fingerprint(&format!(
        "{}|{identity}|{}",
        report.source.as_str(),
        norm.as_deref().unwrap_or("")
    ));
    let addresses: Vec<&str> = [
        report.recipient.as_deref().unwrap_or(""),
        named.as_ref().map(EmailAddress::as_str).unwrap_or(""),
        target.as_ref().map(|t| &t.subscriber).or(held.as_ref()).map(|s| s.email.as_str()).unwrap_or(""),
    ]
    .into();
    let diagnostic = diagnostic.as_deref().map(|d| redact(d, &addresses)).filter(|d| !d.is_empty());
    let ref_at = target.as_ref().and_then(Target::sent_at).or(report.occurred_at).unwrap_or(now).min(now);
    let outcome = match (&target, class) {
        (None, _) if held.is_some() => "review",
        (None, _) => "unmatched",
        (Some(_), Class::Delayed) => "recorded",
        (Some(_), _) => "applied",
    };
    let id = Uuid::now_v7();
    let status_text = status.map(|s| s.to_string());
    let fresh = tx
        .insert_bounce_event(&NewBounceEvent {
            id,
            received_at: now,
            source: report.source.as_str(),
            dedupe_key: &dedupe_key,
            class: class.as_str(),
            outcome,
            email_hash: email_hash.as_deref(),
            recipient_domain: domain.as_deref(),
            subscriber_id: target.as_ref().map(|t| t.subscriber.id).or(held.as_ref().map(|s| s.id)),
            update_id: target.as_ref().and_then(|t| t.delivery.as_ref()).map(|d| d.update_id),
            status_code: status_text.as_deref(),
            diagnostic: diagnostic.as_deref(),
            ref_at,
            dkim: dkim.map(|d| d.verdict.as_str()),
            dkim_domain: dkim.and_then(|d| d.domain.as_deref()),
        })
        .await?;
    if !fresh {
        return Ok(Outcome::Duplicate);
    }
    if held.is_some() {
        return Ok(Outcome::Review { class });
    }
    let Some(Target { subscriber, delivery, mail }) = target else { return Ok(Outcome::Unmatched { class }) };
    let of = mail.as_ref().map(|m| m.kind.description());
    let detail = ledger_detail(class, report.source, status_text.as_deref(), diagnostic.as_deref(), of);
    let thresholds = send_guard::Thresholds::from_config(&ctx.config);
    if let Some(d) = &delivery
        && matches!(class, Class::Hard | Class::Soft | Class::Policy)
        && tx.mark_delivery_bounced(d.update_id, d.subscriber_id, &detail).await?
        && class == Class::Hard
    {
        // Counted once per copy: a second report about it changes nothing.
        send_guard::record(tx, &thresholds, d.update_id, send_guard::Event::HardBounce, now).await?;
    }
    if let Some(d) = &delivery
        && class == Class::Complaint
    {
        send_guard::record(tx, &thresholds, d.update_id, send_guard::Event::Complaint, now).await?;
    }
    let mut suspended = false;
    match class {
        Class::Hard => hard_bounce(tx, &ctx.config, &ctx.address_key, &subscriber, &detail, now).await?,
        Class::Soft => {
            let streak = tx.soft_bounce_streak(subscriber.id, ref_at).await?;
            let limit = i64::from(ctx.config.soft_bounce_limit.max(1));
            if streak >= limit {
                let detail = format!("suspended after {streak} consecutive soft bounces; last: {detail}");
                suspended = mark_everywhere(
                    tx,
                    &ctx.config,
                    subscriber.id,
                    SubscriptionStatus::Bounced,
                    ConsentKind::Bounced,
                    &detail,
                    now,
                )
                .await?
                    > 0;
                if suspended {
                    tx.set_bounce_outcome(id, "suspended").await?;
                }
            }
        }
        Class::Policy => {
            let domain = domain.as_deref().unwrap_or("unknown domain");
            let title = format!("Mail to {domain} is being refused by policy");
            let detail = format!(
                "{} ({}). Mailbox providers refuse mail like this when they judge it to be spam or it fails \
                 SPF, DKIM or DMARC: check the sending domain's DNS records and what was sent. \
                 The subscriber's status has not been changed.",
                diagnostic.as_deref().unwrap_or("no diagnostic given"),
                status_text.as_deref().unwrap_or("5.7.x")
            );
            tx.raise_alert(
                &NewAlert { kind: AlertKind::PolicyBlock, subject: domain, title: &title, detail: &detail, link: None },
                now,
            )
            .await?;
        }
        Class::Complaint => {
            mark_everywhere(
                tx,
                &ctx.config,
                subscriber.id,
                SubscriptionStatus::Complained,
                ConsentKind::Complained,
                &detail,
                now,
            )
            .await?;
            tx.suppress(&ctx.address_key.fingerprint(&subscriber.email_norm), "complaint", now).await?;
        }
        Class::Delayed => {}
    }
    Ok(Outcome::Applied { class, subscriber: subscriber.id, suspended })
}

/// The ledger's words for a report: what happened (`of` naming the
/// transactional message it happened to), how we heard, the status and
/// the diagnostic.
fn ledger_detail(
    class: Class,
    source: Source,
    status: Option<&str>,
    diagnostic: Option<&str>,
    of: Option<&str>,
) -> String {
    let what = match class {
        Class::Hard => "hard bounce",
        Class::Soft => "soft bounce",
        Class::Policy => "refused by policy",
        Class::Complaint => "spam complaint",
        Class::Delayed => "delivery delayed",
    };
    let mut text = match of {
        Some(of) => format!("{what} of {of} (via {}", source.as_str()),
        None => format!("{what} (via {}", source.as_str()),
    };
    if let Some(s) = status {
        text.push_str(&format!(", {s}"));
    }
    text.push(')');
    if let Some(d) = diagnostic {
        text.push_str(": ");
        text.push_str(d);
    }
    text.chars().take(DIAGNOSTIC_CHARS).collect()
}

/// Moves the subscriber's subscriptions to `to` with a ledger entry each:
/// for `bounced`, only the active ones (pending, confirmed); for
/// `complained`, all that are not complained already (a complaint speaks for
/// every list). Returns how many changed.
async fn mark_everywhere(
    tx: &mut Tx,
    config: &crate::config::Config,
    subscriber_id: Uuid,
    to: SubscriptionStatus,
    kind: ConsentKind,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    mark_everywhere_as(tx, config, subscriber_id, to, kind, detail, &Actor::System.to_db(), now).await
}

/// [`mark_everywhere`] with the ledger naming `actor`.
#[expect(clippy::too_many_arguments, reason = "one ledger entry's facts, passed as they are")]
async fn mark_everywhere_as(
    tx: &mut Tx,
    config: &crate::config::Config,
    subscriber_id: Uuid,
    to: SubscriptionStatus,
    kind: ConsentKind,
    detail: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let notice = tx.current_privacy_notice(now).await?.map(|n| n.version);
    let mut changed = 0;
    for sub in tx.subscriptions(subscriber_id).await? {
        let active = sub.status.is_active();
        let change = match to {
            SubscriptionStatus::Complained => sub.status != to,
            _ => active,
        };
        if !change {
            continue;
        }
        tx.set_subscription_status(subscriber_id, sub.list_id, to, now).await?;
        tx.append_consent_event(&NewConsentEvent {
            subscriber_id,
            list_id: sub.list_id,
            kind,
            statement_id: None,
            notice_version: notice,
            occurred_at: now,
            ip: None,
            user_agent: None,
            source: None,
            actor: actor.to_owned(),
            detail: Some(detail.chars().take(DIAGNOSTIC_CHARS).collect()),
            controller_name: Some(config.group_name.clone()),
            controller_contact: Some(config.contact_address.clone()),
            basis_kind: None,
        })
        .await?;
        changed += 1;
    }
    Ok(changed)
}

/// A hard bounce: the address is bad for every list, so every active
/// subscription becomes `bounced` (with a ledger entry) and the address is
/// suppressed.
async fn hard_bounce(
    tx: &mut Tx,
    config: &crate::config::Config,
    key: &AddressKey,
    subscriber: &SubscriberRow,
    detail: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    mark_everywhere(tx, config, subscriber.id, SubscriptionStatus::Bounced, ConsentKind::Bounced, detail, now).await?;
    tx.suppress(&key.fingerprint(&subscriber.email_norm), "hard-bounce", now).await?;
    Ok(())
}

/// The delivery worker's synchronous hard bounce (the relay answered 5.1.x
/// while we were sending; the worker has already marked the delivery
/// `bounced`): recorded like any other report and applied in the worker's
/// transaction.
pub async fn smtp_hard_bounce(
    tx: &mut Tx,
    ctx: &Context,
    thresholds: &send_guard::Thresholds,
    update_id: Uuid,
    subscriber_id: Uuid,
    reply: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let key = &*ctx.address_key;
    let Some(subscriber) = tx.subscriber_by_id(subscriber_id).await? else { return Ok(()) };
    let status = EnhancedStatus::find_in(reply).map(|s| s.to_string());
    let diagnostic = redact(reply, &[subscriber.email.as_str()]);
    let fresh = tx
        .insert_bounce_event(&NewBounceEvent {
            id: Uuid::now_v7(),
            received_at: now,
            source: Source::Smtp.as_str(),
            dedupe_key: &sha256_hex(format!("smtp|{update_id}|{subscriber_id}")),
            class: Class::Hard.as_str(),
            outcome: "applied",
            email_hash: Some(&key.fingerprint(&subscriber.email_norm)),
            recipient_domain: subscriber.email_norm.rsplit_once('@').map(|(_, d)| d),
            subscriber_id: Some(subscriber_id),
            update_id: Some(update_id),
            status_code: status.as_deref(),
            diagnostic: Some(&diagnostic),
            ref_at: now,
            dkim: None,
            dkim_domain: None,
        })
        .await?;
    if fresh {
        let detail = ledger_detail(Class::Hard, Source::Smtp, status.as_deref(), Some(&diagnostic), None);
        hard_bounce(tx, &ctx.config, key, &subscriber, &detail, now).await?;
        send_guard::record(tx, thresholds, update_id, send_guard::Event::HardBounce, now).await?;
    }
    Ok(())
}

/// Shows an SNS subscription waiting for confirmation on the dashboard. The
/// link is offered only when it points at Amazon SNS over https, so a forged
/// message cannot put an arbitrary link in front of an admin.
async fn confirm_alert(tx: &mut Tx, c: &SnsConfirmation, now: DateTime<Utc>) -> Result<(), StoreError> {
    let link = url::Url::parse(&c.subscribe_url).ok().filter(|u| {
        u.scheme() == "https"
            && u.host_str().is_some_and(|h| {
                h.starts_with("sns.") && (h.ends_with(".amazonaws.com") || h.ends_with(".amazonaws.com.cn"))
            })
    });
    let detail = match &link {
        Some(_) => format!(
            "Amazon SNS topic {} wants to send SES bounce and complaint notifications here. Open the confirmation \
             link once (it confirms the subscription), then dismiss this alert.",
            c.topic_arn
        ),
        None => format!(
            "Amazon SNS topic {} asked for confirmation, but its SubscribeURL does not point at Amazon SNS and is \
             not shown. Confirm the subscription in the AWS console.",
            c.topic_arn
        ),
    };
    tx.raise_alert(
        &NewAlert {
            kind: AlertKind::SnsSubscription,
            subject: &c.topic_arn.chars().take(300).collect::<String>(),
            title: "Confirm the Amazon SNS subscription for SES notifications",
            detail: &detail,
            link: link.as_ref().map(url::Url::as_str),
        },
        now,
    )
    .await
}

/// A page of the event record for the admin page: newest first, filtered by
/// class (`hard`, `soft`, `policy`, `complaint`, `delayed`), `unmatched`
/// or `review` (held for an admin).
pub async fn events(
    ctx: &Context,
    filter: Option<&str>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<BounceEventRow>> {
    let (class, outcome) = match filter.filter(|f| !f.is_empty()) {
        None => (None, None),
        Some(o @ ("unmatched" | "review")) => (None, Some(o)),
        Some(f) => match Class::parse(f) {
            Some(c) => (Some(c.as_str()), None),
            None => {
                return Err(ServiceError::Invalid(vec![super::FieldError::new(
                    "kind",
                    "choose one of the listed kinds",
                )]));
            }
        },
    };
    Ok(ctx.store.read().await?.bounce_events_page(class, outcome, before, limit).await?)
}

/// What an admin decides about a held report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Treat it as genuine: a hard bounce or complaint is applied as if it
    /// had been tied to a copy we sent (the ledger names the admin).
    Apply,
    /// Leave the subscriber as they are; the report stays on record.
    Dismiss,
}

/// An admin's decision on a report held for review. Only hard bounces and
/// complaints can be applied (a soft bounce, delay or policy refusal would
/// change nothing anyway): anything else is refused with `Invalid`.
pub async fn decide_held(ctx: &Context, id: Uuid, decision: Decision, actor: &Actor) -> Result<()> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let held = tx.held_report(id).await?.ok_or(ServiceError::NotFound("report awaiting review"))?;
    let by = actor.to_db();
    match decision {
        Decision::Dismiss => {
            tx.decide_held_report(id, "dismissed", &by, now).await?;
        }
        Decision::Apply => {
            let class =
                Class::parse(&held.class).filter(|c| matches!(c, Class::Hard | Class::Complaint)).ok_or_else(|| {
                    ServiceError::Invalid(vec![super::FieldError::new(
                        "decision",
                        "only a hard bounce or a complaint can be applied; dismiss this one",
                    )])
                })?;
            let subscriber = match held.subscriber_id {
                Some(sid) => tx.subscriber_by_id(sid).await?,
                None => None,
            };
            let Some(subscriber) = subscriber else {
                return Err(ServiceError::NotFound("subscriber of this report"));
            };
            let source = match held.source.as_str() {
                "arf" => Source::Arf,
                _ => Source::Dsn,
            };
            let detail = format!(
                "{}; applied by an admin after review",
                ledger_detail(class, source, held.status_code.as_deref(), held.diagnostic.as_deref(), None)
            );
            let detail: String = detail.chars().take(DIAGNOSTIC_CHARS).collect();
            let (status, kind, reason) = match class {
                Class::Hard => (SubscriptionStatus::Bounced, ConsentKind::Bounced, "hard-bounce"),
                _ => (SubscriptionStatus::Complained, ConsentKind::Complained, "complaint"),
            };
            mark_everywhere_as(&mut tx, &ctx.config, subscriber.id, status, kind, &detail, &by, now).await?;
            tx.suppress(&ctx.address_key.fingerprint(&subscriber.email_norm), reason, now).await?;
            tx.decide_held_report(id, "applied-by-admin", &by, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Alerts waiting for an admin.
pub async fn open_alerts(ctx: &Context) -> Result<Vec<AlertRow>> {
    Ok(ctx.store.read().await?.open_alerts().await?)
}

pub async fn dismiss_alert(ctx: &Context, id: Uuid, actor: &Actor) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    if !tx.dismiss_alert(id, &actor.to_db(), ctx.clock.now()).await? {
        return Err(ServiceError::NotFound("alert"));
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_message_ids_name_the_delivery() {
        let (u, s) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(ids_from_message_id(&format!("<{u}.{s}@news.example.org>"), "news.example.org"), Some((u, s)));
        assert_eq!(ids_from_message_id(&format!("{u}.{s}@NEWS.example.org"), "news.example.org"), Some((u, s)));
        assert_eq!(ids_from_message_id(&format!("<{u}.{s}@elsewhere.org>"), "news.example.org"), None);
        assert_eq!(ids_from_message_id("<custom-message-ID>", "news.example.org"), None);
        assert_eq!(ids_from_message_id("<a.b@news.example.org>", "news.example.org"), None);
    }

    #[test]
    fn recipients_are_read_in_every_usual_form() {
        for raw in ["rfc822; Ann@Example.org", "<ann@example.org>", "Ann <ann@example.org>", " ann@example.org "] {
            assert_eq!(
                recipient_address(raw).map(|a| a.normalised().to_owned()).as_deref(),
                Some("ann@example.org"),
                "{raw}"
            );
        }
        assert!(recipient_address("not an address").is_none());
    }

    #[test]
    fn diagnostics_lose_the_address_and_are_capped() {
        let d = redact("550 5.1.1 <Ann@Example.org>: Recipient address rejected", &["ann@example.org"]);
        assert_eq!(d, "550 5.1.1 <<recipient>>: Recipient address rejected");
        assert_eq!(redact(&"x".repeat(2000), &[]).chars().count(), DIAGNOSTIC_CHARS);
    }
}
