//! Rights requests on one subscriber: a copy of everything held about them
//! (access and portability, as JSON or CSV) and erasure.
//!
//! Erasure deletes the profile, subscriptions, confirmation tokens,
//! deliveries and the consent ledger in one transaction, cancels mail still
//! queued for the address, and keeps only a suppression entry (SHA-256 of
//! the normalised address, reason `erased`, date) so that every later
//! subscribe, add, import or send skips the address. It takes a [`Store`]
//! and a [`Clock`] rather than a full [`super::Context`] so that the CLI can
//! run it without building the mail composer.

use super::consent::StatementRef;
use super::{Actor, FieldError, Result, ServiceError};
use crate::clock::Clock;
use crate::domain::EmailAddress;
use crate::store::{ConsentEventRow, ErasureCounts, ExportNoticeRow, Store, SubscriberRow};
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

/// Everything Tidings holds about one subscriber.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberExport {
    pub exported_at: DateTime<Utc>,
    pub profile: ExportProfile,
    pub subscriptions: Vec<ExportSubscription>,
    pub consent_events: Vec<ExportConsentEvent>,
    pub deliveries: Vec<ExportDelivery>,
}

fn consent_event(e: ConsentEventRow, notices: &BTreeMap<i64, ExportNoticeRow>) -> ExportConsentEvent {
    let notice = e.notice_version.and_then(|v| notices.get(&v));
    ExportConsentEvent {
        id: e.id,
        kind: e.kind,
        list: e.list_slug,
        occurred_at: e.occurred_at,
        ip: e.ip,
        user_agent: e.user_agent,
        source: e.source,
        actor: e.actor,
        detail: e.detail,
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
pub async fn export(store: &Store, clock: &Clock, id: Uuid) -> Result<SubscriberExport> {
    let mut tx = store.read().await?;
    let s = tx.subscriber_by_id(id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    let subscriptions = tx
        .export_subscriptions(id)
        .await?
        .into_iter()
        .map(|r| ExportSubscription {
            list: r.list_slug,
            list_name: r.list_name,
            status: r.status,
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
            status: d.status,
            attempts: d.attempts,
            sent_at: d.sent_at,
            message_id: d.message_id,
        })
        .collect();
    Ok(SubscriberExport {
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
/// (`profile`, `subscription`, `consent` or `delivery`); columns that do not
/// apply to a record are empty.
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
                .set_opt("notice_text", c.privacy_notice.text.as_ref()),
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
pub async fn erase(store: &Store, clock: &Clock, id: Uuid, actor: &Actor) -> Result<Erasure> {
    let mut tx = store.write().await?;
    let s = tx.subscriber_by_id(id).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    erase_row(tx, clock, s, actor).await
}

/// Erases the subscriber with this address.
pub async fn erase_by_email(store: &Store, clock: &Clock, raw: &str, actor: &Actor) -> Result<Erasure> {
    let email =
        EmailAddress::parse(raw).map_err(|e| ServiceError::Invalid(vec![FieldError::from_parse("email", e)]))?;
    let mut tx = store.write().await?;
    let s = tx.subscriber_by_email(email.normalised()).await?.ok_or(ServiceError::NotFound("subscriber"))?;
    erase_row(tx, clock, s, actor).await
}

async fn erase_row(mut tx: crate::store::Tx, clock: &Clock, s: SubscriberRow, actor: &Actor) -> Result<Erasure> {
    let removed = tx.erase_subscriber(s.id, &s.email, &s.email_norm, clock.now()).await?;
    // The rights-request log keeps its entries about this person (they show
    // the request was honoured), but by the address's hash alone.
    let hash = crate::domain::sha256_hex(&s.email_norm);
    tx.anonymise_rights_requests(s.id, &s.email_norm, &format!("erased address, SHA-256 {hash}")).await?;
    tx.commit().await?;
    // The address itself is not logged: it has just been erased.
    tracing::info!(subscriber = %s.id, actor = %actor.to_db(), ?removed, "subscriber erased");
    Ok(Erasure { id: s.id, email: s.email, removed, suppressed: true })
}
