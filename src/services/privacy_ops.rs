//! Rights requests on one subscriber: a copy of everything held about them
//! (access and portability, as JSON or CSV) and erasure.
//!
//! Erasure deletes the profile, subscriptions, confirmation tokens,
//! deliveries and the consent ledger in one transaction, cancels mail still
//! queued for the address, strips the address and name from mail already
//! sent, from the audit log and from rights-request notes and history, and keeps only a
//! suppression entry (the keyed fingerprint of the normalised address,
//! reason `erased`, date) so that every later subscribe, add, import or send
//! skips the address. On SQLite the write-ahead log is then checkpointed
//! (deleted rows are zeroed by `secure_delete`), so the details are not left
//! in the files either. It takes a [`Store`], a [`Clock`] and the
//! [`AddressKey`] rather than a full [`super::Context`] so that the CLI can
//! run it without building the mail composer.

use super::consent::{ControllerRef, StatementRef};
use super::{Actor, FieldError, Result, ServiceError};
use crate::clock::Clock;
use crate::domain::{AddressKey, EmailAddress};
use crate::store::{
    ConsentEventRow, CopyAction, CopyBounce, ErasureCounts, ExportNoticeRow, RightsRequestRow, Store, SubscriberRow,
};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The profile part of a data copy.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExportProfile {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub attributes: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExportSubscription {
    /// The list's slug.
    pub list: String,
    pub list_name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_confirmation_sent_at: Option<DateTime<Utc>>,
}

/// The privacy notice a consent event points at, with its full text.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExportNotice {
    pub version: Option<i64>,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub text: Option<String>,
}

/// One ledger entry with the exact wording and notice text it refers to.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExportConsentEvent {
    pub id: Uuid,
    pub kind: String,
    pub list: String,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub source: Option<String>,
    pub actor: String,
    pub detail: Option<String>,
    /// The group's name and contact address when the entry was written.
    pub controller: Option<ControllerRef>,
    pub basis_kind: Option<String>,
    pub statement: StatementRef,
    pub privacy_notice: ExportNotice,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExportDelivery {
    pub update_id: Uuid,
    pub subject: String,
    pub list: String,
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
}

/// One transactional message sent (or queued) to the person.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExportMail {
    /// `confirmation`, `data-copy`, …
    pub kind: String,
    /// The Subject as sent; absent when the message was stored as a recipe
    /// not yet composed or was cleared after sending.
    pub subject: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// The Subject header of a stored message, unfolded.
fn subject_of(message: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next()?;
    let mut lines = head.split("\r\n").skip_while(|l| !l.to_ascii_lowercase().starts_with("subject:"));
    let first = lines.next()?;
    let mut subject = first["subject:".len()..].trim().to_owned();
    for more in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        subject.push(' ');
        subject.push_str(more.trim());
    }
    Some(subject)
}

/// Everything Tidings holds about one subscriber.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberExport {
    pub exported_at: DateTime<Utc>,
    pub profile: ExportProfile,
    pub subscriptions: Vec<ExportSubscription>,
    pub consent_events: Vec<ExportConsentEvent>,
    /// Bounce and complaint reports about them.
    pub bounces: Vec<CopyBounce>,
    /// Transactional mail sent to them (subject, date).
    pub transactional_mail: Vec<ExportMail>,
    /// Their rights requests.
    pub rights_requests: Vec<RightsRequestRow>,
    /// What organisers did to their record (audit-log entries).
    pub organiser_actions: Vec<CopyAction>,
    pub deliveries: Vec<ExportDelivery>,
}

fn consent_event(e: ConsentEventRow, notices: &BTreeMap<i64, ExportNoticeRow>) -> ExportConsentEvent {
    let notice = e.notice_version.and_then(|v| notices.get(&v));
    ExportConsentEvent {
        id: e.id,
        kind: e.kind.to_string(),
        list: e.list_slug,
        occurred_at: e.occurred_at,
        ip: e.ip,
        user_agent: e.user_agent,
        source: e.source,
        actor: e.actor,
        detail: e.detail,
        controller: ControllerRef::of(e.controller_name, e.controller_contact),
        basis_kind: e.basis_kind.map(|k| k.as_str().to_owned()),
        statement: StatementRef { version: e.statement_version, text: e.statement_text, sha256: e.statement_sha256 },
        privacy_notice: ExportNotice {
            version: e.notice_version,
            url: e.notice_url,
            sha256: e.notice_sha256,
            text: notice.map(|n| n.body.clone()),
        },
    }
}

/// A copy of everything held about subscriber `id`, read in one snapshot.
/// `group` is the group's name, for the subjects of transactional mail.
pub async fn export(store: &Store, clock: &Clock, group: &str, id: Uuid) -> Result<SubscriberExport> {
    let mut tx = store.read().await?;
    let s = tx.subscriber_by_id(id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    let subscriptions = tx
        .export_subscriptions(id)
        .await?
        .into_iter()
        .map(|r| ExportSubscription {
            list: r.list_slug,
            list_name: r.list_name,
            status: r.status.to_string(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
            last_confirmation_sent_at: r.last_confirmation_sent_at,
        })
        .collect();
    let notices: BTreeMap<i64, ExportNoticeRow> =
        tx.export_notices(id).await?.into_iter().map(|n| (n.version, n)).collect();
    let consent_events = tx.consent_events(id).await?.into_iter().map(|e| consent_event(e, &notices)).collect();
    let deliveries = tx
        .export_deliveries(id)
        .await?
        .into_iter()
        .map(|d| ExportDelivery {
            update_id: d.update_id,
            subject: d.subject,
            list: d.list_slug,
            status: d.status.to_string(),
            attempts: d.attempts,
            sent_at: d.sent_at,
            message_id: d.message_id,
        })
        .collect();
    let bounces = tx.copy_bounces(id).await?;
    let transactional_mail = tx
        .copy_mail(&s.email)
        .await?
        .into_iter()
        .map(|m| ExportMail {
            subject: m
                .message
                .as_deref()
                .and_then(subject_of)
                .or_else(|| crate::mail::compose::transactional_subject(group, m.kind)),
            kind: m.kind.to_string(),
            status: m.status.to_string(),
            created_at: m.created_at,
            sent_at: m.sent_at,
        })
        .collect();
    let rights_requests = tx.copy_rights_requests(id).await?;
    let organiser_actions = tx.copy_actions(id).await?;
    Ok(SubscriberExport {
        bounces,
        transactional_mail,
        rights_requests,
        organiser_actions,
        exported_at: clock.now(),
        profile: ExportProfile {
            id: s.id,
            email: s.email,
            name: s.name,
            attributes: serde_json::from_str(&s.attributes).unwrap_or_else(|_| serde_json::json!({})),
            created_at: s.created_at,
            updated_at: s.updated_at,
        },
        subscriptions,
        consent_events,
        deliveries,
    })
}

/// The columns of the CSV form. Each row is one record, named in `record`
/// (`profile`, `subscription`, `consent`, `delivery`, `bounce`,
/// `transactional_mail`, `rights_request` or `organiser_action`); columns
/// that do not apply to a record are empty. The JSON form holds the same
/// records.
pub const CSV_COLUMNS: &[&str] = &[
    "record",
    "id",
    "email",
    "name",
    "attributes",
    "list",
    "list_name",
    "status",
    "kind",
    "created_at",
    "updated_at",
    "confirmed_at",
    "occurred_at",
    "ip",
    "user_agent",
    "source",
    "actor",
    "detail",
    "statement_version",
    "statement_text",
    "notice_version",
    "notice_url",
    "notice_text",
    "subject",
    "attempts",
    "sent_at",
    "message_id",
    "controller_name",
    "controller_contact",
    "basis_kind",
    "outcome",
    "status_code",
    "diagnostic",
    "received_at",
    "due_at",
    "extended_due_at",
    "extension_reason",
    "paused_at",
    "pause_reason",
    "paused_seconds",
    "acknowledge_due_at",
    "acknowledged_at",
    "closed_at",
    "notes",
    "action",
    "target",
];

/// One CSV row being filled in by column name.
struct CsvRow(Vec<String>);

impl CsvRow {
    fn new(record: &str) -> Self {
        let mut cells = vec![String::new(); CSV_COLUMNS.len()];
        cells[0] = record.to_owned();
        Self(cells)
    }

    fn set(mut self, column: &str, value: impl ToString) -> Self {
        if let Some(i) = CSV_COLUMNS.iter().position(|c| *c == column) {
            self.0[i] = value.to_string();
        }
        self
    }

    fn set_opt(self, column: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.set(column, v),
            None => self,
        }
    }
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339()
}

/// The data copy as UTF-8 CSV (RFC 4180 quoting, by the `csv` crate). It
/// is written to memory, so it fails only if a row were malformed.
pub fn export_csv(e: &SubscriberExport) -> Result<Vec<u8>, csv::Error> {
    let p = &e.profile;
    let mut rows = vec![
        CsvRow::new("profile")
            .set("id", p.id)
            .set("email", &p.email)
            .set("name", &p.name)
            .set("attributes", &p.attributes)
            .set("created_at", time(&p.created_at))
            .set("updated_at", time(&p.updated_at)),
    ];
    for s in &e.subscriptions {
        rows.push(
            CsvRow::new("subscription")
                .set("list", &s.list)
                .set("list_name", &s.list_name)
                .set("status", &s.status)
                .set("created_at", time(&s.created_at))
                .set("updated_at", time(&s.updated_at))
                .set_opt("confirmed_at", s.confirmed_at.as_ref().map(time)),
        );
    }
    for c in &e.consent_events {
        rows.push(
            CsvRow::new("consent")
                .set("id", c.id)
                .set("list", &c.list)
                .set("kind", &c.kind)
                .set("occurred_at", time(&c.occurred_at))
                .set_opt("ip", c.ip.as_ref())
                .set_opt("user_agent", c.user_agent.as_ref())
                .set_opt("source", c.source.as_ref())
                .set("actor", &c.actor)
                .set_opt("detail", c.detail.as_ref())
                .set_opt("statement_version", c.statement.version)
                .set_opt("statement_text", c.statement.text.as_ref())
                .set_opt("notice_version", c.privacy_notice.version)
                .set_opt("notice_url", c.privacy_notice.url.as_ref())
                .set_opt("notice_text", c.privacy_notice.text.as_ref())
                .set_opt("controller_name", c.controller.as_ref().map(|k| &k.name))
                .set_opt("controller_contact", c.controller.as_ref().map(|k| &k.contact))
                .set_opt("basis_kind", c.basis_kind.as_ref()),
        );
    }
    for d in &e.deliveries {
        rows.push(
            CsvRow::new("delivery")
                .set("id", d.update_id)
                .set("list", &d.list)
                .set("status", &d.status)
                .set("subject", &d.subject)
                .set("attempts", d.attempts)
                .set_opt("sent_at", d.sent_at.as_ref().map(time))
                .set_opt("message_id", d.message_id.as_ref()),
        );
    }
    for b in &e.bounces {
        rows.push(
            CsvRow::new("bounce")
                .set("kind", &b.class)
                .set("received_at", time(&b.received_at))
                .set("source", &b.source)
                .set("outcome", &b.outcome)
                .set_opt("status_code", b.status_code.as_ref())
                .set_opt("diagnostic", b.diagnostic.as_ref()),
        );
    }
    for m in &e.transactional_mail {
        rows.push(
            CsvRow::new("transactional_mail")
                .set("kind", &m.kind)
                .set_opt("subject", m.subject.as_ref())
                .set("status", &m.status)
                .set("created_at", time(&m.created_at))
                .set_opt("sent_at", m.sent_at.as_ref().map(time)),
        );
    }
    for r in &e.rights_requests {
        rows.push(
            CsvRow::new("rights_request")
                .set("id", r.id)
                .set("kind", r.kind)
                .set("status", r.status)
                .set("received_at", time(&r.received_at))
                .set("due_at", time(&r.due_at))
                .set_opt("extended_due_at", r.extended_due_at.as_ref().map(time))
                .set_opt("extension_reason", r.extension_reason.as_ref())
                .set_opt("paused_at", r.paused_at.as_ref().map(time))
                .set_opt("pause_reason", r.pause_reason.as_ref())
                .set("paused_seconds", r.paused_seconds)
                .set_opt("acknowledge_due_at", r.acknowledge_due_at.as_ref().map(time))
                .set_opt("acknowledged_at", r.acknowledged_at.as_ref().map(time))
                .set_opt("closed_at", r.closed_at.as_ref().map(time))
                .set("outcome", &r.outcome)
                .set("notes", &r.notes)
                .set("created_at", time(&r.created_at))
                .set("updated_at", time(&r.updated_at)),
        );
    }
    for a in &e.organiser_actions {
        rows.push(
            CsvRow::new("organiser_action")
                .set("occurred_at", time(&a.occurred_at))
                .set("actor", &a.actor)
                .set("action", &a.action)
                .set("target", &a.target)
                .set("status", a.status),
        );
    }
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_COLUMNS)?;
    for row in &rows {
        // Name, user agent, source and attributes come straight from the
        // public form: defused exactly as the list export defuses them.
        out.write_record(row.0.iter().map(|c| super::exports::defuse(c).into_owned()))?;
    }
    out.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// What an erasure did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Erasure {
    pub id: Uuid,
    /// The address that was erased (for the organiser's confirmation; it is
    /// no longer stored anywhere).
    pub email: String,
    pub removed: ErasureCounts,
    /// The address is on the suppression list (always true afterwards).
    pub suppressed: bool,
}

/// Erases subscriber `id` (see the module documentation).
pub async fn erase(store: &Store, clock: &Clock, key: &AddressKey, id: Uuid, actor: &Actor) -> Result<Erasure> {
    let mut tx = store.write().await?;
    let s = tx.subscriber_by_id(id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    erase_row(store, tx, clock, key, s, actor).await
}

/// Erases the subscriber with this address.
pub async fn erase_by_email(
    store: &Store,
    clock: &Clock,
    key: &AddressKey,
    raw: &str,
    actor: &Actor,
) -> Result<Erasure> {
    let email =
        EmailAddress::parse(raw).map_err(|e| ServiceError::Invalid(vec![FieldError::from_parse("email", e)]))?;
    let mut tx = store.write().await?;
    let s = tx.subscriber_by_email(email.normalised()).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    erase_row(store, tx, clock, key, s, actor).await
}

async fn erase_row(
    store: &Store,
    mut tx: crate::store::Tx,
    clock: &Clock,
    key: &AddressKey,
    s: SubscriberRow,
    actor: &Actor,
) -> Result<Erasure> {
    let parsed = EmailAddress::parse(&s.email).ok();
    let fingerprint = parsed.as_ref().map_or_else(|| key.fingerprint(&s.email_norm), |e| e.suppression_hash(key));
    let spellings = spellings(&s, parsed.as_ref());
    let removed = tx.erase_subscriber(s.id, &spellings, &fingerprint, clock.now()).await?;
    let mentions = Mentions::of(&s, &spellings);
    // The rights-request log keeps its entries (they show the request was
    // honoured), but not the person: the subject becomes the keyed
    // fingerprint, and the address, name and attributes leave the notes.
    let subject = format!("erased address, fingerprint {fingerprint}");
    for mut r in tx.rights_request_texts().await? {
        let linked = r.subscriber_id == Some(s.id);
        let subject_named = mentions.redact(&r.subject).is_some();
        let notes = mentions.redact(&r.notes);
        let outcome = mentions.redact(&r.outcome);
        let reason = r.extension_reason.as_deref().and_then(|t| mentions.redact(t));
        let paused = r.pause_reason.as_deref().and_then(|t| mentions.redact(t));
        if !(linked || subject_named || notes.is_some() || outcome.is_some() || reason.is_some() || paused.is_some()) {
            continue;
        }
        if linked || subject_named {
            r.subject.clone_from(&subject);
            r.subscriber_id = None;
        }
        r.notes = notes.unwrap_or(r.notes);
        r.outcome = outcome.unwrap_or(r.outcome);
        r.extension_reason = reason.or(r.extension_reason);
        r.pause_reason = paused.or(r.pause_reason);
        tx.set_rights_request_text(&r).await?;
    }
    // The reasons in each request's history (why it was paused, the
    // outcome…) are scrubbed the same way.
    for e in tx.rights_event_texts().await? {
        if let Some(reason) = mentions.redact(&e.reason) {
            tx.set_rights_event_reason(e.id, &reason).await?;
        }
    }
    // The audit log names organisers, not supporters, but an address can
    // still reach it (typed into the login form before issue 16, or part
    // of a path): scrubbed the same way.
    for needle in &spellings {
        for mut a in tx.audit_texts_mentioning(needle).await? {
            let (label, target, detail) =
                (mentions.redact(&a.actor_label), mentions.redact(&a.target), mentions.redact(&a.detail));
            if label.is_none() && target.is_none() && detail.is_none() {
                continue;
            }
            a.actor_label = label.unwrap_or(a.actor_label);
            a.target = target.unwrap_or(a.target);
            a.detail = detail.unwrap_or(a.detail);
            tx.set_audit_text(&a).await?;
        }
    }
    tx.commit().await?;
    if !store.checkpoint_truncate().await? {
        tracing::warn!(subscriber = %s.id, "the WAL checkpoint after an erasure was held back by a reader");
    }
    // The address itself is not logged: it has just been erased.
    tracing::info!(subscriber = %s.id, actor = %actor.to_db(), ?removed, "subscriber erased");
    Ok(Erasure { id: s.id, email: s.email, removed, suppressed: true })
}

/// The lower-case forms in which the person's address may have been
/// written anywhere: as stored, normalised, and with the domain in Unicode
/// form (as older versions kept an internationalised domain).
fn spellings(s: &SubscriberRow, parsed: Option<&EmailAddress>) -> Vec<String> {
    let mut out = vec![s.email.to_lowercase(), s.email_norm.clone()];
    if let Some(e) = parsed {
        out.push(e.normalised().to_owned());
        if let Some((local, domain)) = e.normalised().rsplit_once('@') {
            let (unicode, result) = idna::domain_to_unicode(domain);
            if result.is_ok() {
                out.push(format!("{local}@{unicode}"));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// What names a person in free text: their address spellings, their name
/// and the values of their attributes, each with what replaces it.
struct Mentions(Vec<(Vec<char>, &'static str)>);

impl Mentions {
    /// Names and attribute values shorter than this are not searched for
    /// (an initial would blank that letter everywhere).
    const MIN_CHARS: usize = 3;

    fn of(s: &SubscriberRow, spellings: &[String]) -> Self {
        let mut needles: Vec<(Vec<char>, &'static str)> =
            spellings.iter().map(|e| (e.chars().collect(), "[erased address]")).collect();
        let mut other = |text: &str, label: &'static str| {
            let text = text.trim();
            if text.chars().count() >= Self::MIN_CHARS {
                needles.push((text.to_lowercase().chars().collect(), label));
            }
        };
        other(&s.name, "[erased name]");
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&s.attributes) {
            for value in map.values() {
                match value {
                    serde_json::Value::String(v) => other(v, "[erased]"),
                    serde_json::Value::Number(n) => other(&n.to_string(), "[erased]"),
                    _ => {}
                }
            }
        }
        // Longest first, so an address is replaced before a name inside it.
        needles.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
        Self(needles)
    }

    /// `text` with every mention replaced, or `None` if it has none.
    fn redact(&self, text: &str) -> Option<String> {
        let mut current: Vec<char> = text.chars().collect();
        let mut changed = false;
        for (needle, label) in &self.0 {
            if let Some(next) = replace_folded(&current, needle, label) {
                current = next;
                changed = true;
            }
        }
        changed.then(|| current.into_iter().collect())
    }
}

/// `text` with each case-insensitive occurrence of `needle` (lower case)
/// replaced by `label`, or `None` when there is none.
fn replace_folded(text: &[char], needle: &[char], label: &str) -> Option<Vec<char>> {
    if needle.is_empty() || text.len() < needle.len() {
        return None;
    }
    let folds = |c: char, n: char| c == n || c.to_lowercase().eq(std::iter::once(n));
    let mut out = Vec::with_capacity(text.len());
    let (mut i, mut found) = (0, false);
    while i < text.len() {
        if text[i..].len() >= needle.len() && text[i..i + needle.len()].iter().zip(needle).all(|(c, n)| folds(*c, *n)) {
            out.extend(label.chars());
            i += needle.len();
            found = true;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> SubscriberRow {
        SubscriberRow {
            id: Uuid::nil(),
            email: "Ann.Lee@Example.org".into(),
            email_norm: "ann.lee@example.org".into(),
            name: "Ann Lee".into(),
            attributes: r#"{"phone":"+44 7700 900123","age":42,"x":"ab"}"#.into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn mentions_are_redacted_whatever_their_case() {
        let s = row();
        let m = Mentions::of(&s, &spellings(&s, EmailAddress::parse(&s.email).ok().as_ref()));
        let text = "ANN.LEE@example.ORG asked; call ann lee on +44 7700 900123. About: abc";
        assert_eq!(
            m.redact(text).as_deref(),
            Some("[erased address] asked; call [erased name] on [erased]. About: abc"),
        );
        assert_eq!(m.redact("nothing about them"), None);
        assert_eq!(m.redact("ab is too short to search for"), None);
    }
}
