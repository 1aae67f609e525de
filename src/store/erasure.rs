//! Rights requests (UK GDPR articles 15, 17 and 20): reading everything held
//! about one subscriber for a copy of their data, and erasing all of it in
//! one transaction, keeping only the suppression entry (the address's keyed
//! fingerprint) so the address is never mailed again; and the free text of
//! rights requests and the audit log, read and written back scrubbed.

use super::batch::{Rows, Statement};
use super::{Result, Tx, execute, on_backend};
use crate::domain::{DeliveryStatus, SubscriptionStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One subscription as a data copy shows it: lists deleted since are
/// included, as the record still exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportSubscriptionRow {
    pub list_slug: String,
    pub list_name: String,
    pub status: SubscriptionStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_confirmation_sent_at: Option<DateTime<Utc>>,
}

/// One delivery of an update to the subscriber, with the update's subject.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportDeliveryRow {
    pub update_id: Uuid,
    pub subject: String,
    pub list_slug: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub message_id: Option<String>,
}

/// A privacy-notice version one of the subscriber's consent events points at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportNoticeRow {
    pub version: i64,
    pub url: Option<String>,
    pub body: String,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ErasureCounts {
    pub subscriptions: u64,
    pub consent_events: u64,
    pub confirmation_tokens: u64,
    pub deliveries: u64,
    /// Transactional mail to the address that was still waiting to go out.
    pub outbox_cancelled: u64,
}

impl Tx {
    /// Every subscription of one subscriber, deleted lists included.
    pub async fn export_subscriptions(&mut self, subscriber_id: Uuid) -> Result<Vec<ExportSubscriptionRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT l.slug AS list_slug, l.name AS list_name, s.status, s.created_at, s.updated_at,
                    s.confirmed_at, s.last_confirmation_sent_at
             FROM subscriptions s JOIN lists l ON l.id = s.list_id
             WHERE s.subscriber_id = $1
             ORDER BY l.name, l.slug",
        )
        .bind(subscriber_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Every delivery to one subscriber, oldest update first.
    pub async fn export_deliveries(&mut self, subscriber_id: Uuid) -> Result<Vec<ExportDeliveryRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT d.update_id, u.subject, l.slug AS list_slug, d.status, d.attempts, d.sent_at, d.message_id
             FROM updates u
             JOIN deliveries d ON d.update_id = u.id AND d.subscriber_id = $1
             JOIN lists l ON l.id = d.list_id
             ORDER BY u.created_at, d.update_id",
        )
        .bind(subscriber_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// The full text of each privacy-notice version the subscriber's
    /// consent events point at.
    pub async fn export_notices(&mut self, subscriber_id: Uuid) -> Result<Vec<ExportNoticeRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT n.version, n.url, n.body FROM privacy_notices n
             WHERE n.version IN (SELECT e.notice_version FROM consent_events e
                                 WHERE e.subscriber_id = $1 AND e.notice_version IS NOT NULL)
             ORDER BY n.version",
        )
        .bind(subscriber_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Deletes everything held about a subscriber and suppresses the
    /// address, in the caller's transaction. `spellings` are the lower-case
    /// forms the address may have been written in (matched against the
    /// outbox's recipients), and `fingerprint` its keyed fingerprint for
    /// the suppression list. The
    /// ledger is deleted explicitly: its rows are append-only against
    /// UPDATE, but erasure is the one reason to DELETE them, and the
    /// foreign key has no cascade so that nothing else removes them by
    /// accident.
    pub async fn erase_subscriber(
        &mut self,
        subscriber_id: Uuid,
        spellings: &[String],
        fingerprint: &str,
        now: DateTime<Utc>,
    ) -> Result<ErasureCounts> {
        let consent_events =
            execute!(self, sqlx::query("DELETE FROM consent_events WHERE subscriber_id = $1").bind(subscriber_id));
        // The token's list rows go with it (ON DELETE CASCADE).
        let confirmation_tokens =
            execute!(self, sqlx::query("DELETE FROM confirmation_tokens WHERE subscriber_id = $1").bind(subscriber_id));
        let deliveries = execute!(
            self,
            sqlx::query(
                // By primary key through `updates` (deliveries have no index by person).
                "DELETE FROM deliveries WHERE subscriber_id = $1 AND update_id IN (SELECT id FROM updates)",
            )
            .bind(subscriber_id)
        );
        let subscriptions =
            execute!(self, sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1").bind(subscriber_id));
        execute!(self, sqlx::query("DELETE FROM subscribers WHERE id = $1").bind(subscriber_id));
        // Mail already queued (a confirmation, a data copy) must not go out
        // after the person asked to be forgotten, and its body holds their
        // address: fail it and drop the body.
        let outbox_cancelled = self
            .count_written(
                Statement::new(
                    "UPDATE outbox SET status = 'failed', last_error = 'erased', message = NULL, recipe = NULL,
                                       lease_until = NULL
                     WHERE status = 'pending' AND LOWER(recipient) {in_set}",
                )
                .rows(Rows::new().text("spelling", spellings.iter().map(String::as_str))),
            )
            .await?;
        // Mail already sent (or given up on) keeps its row for the
        // outbox's own record, but not the person: the body, the recipe
        // (address, name, link) and the recipient go.
        self.write_rows(
            Statement::new(
                "UPDATE outbox SET recipient = '[erased]', message = NULL, recipe = NULL,
                                   last_error = CASE WHEN last_error IS NULL THEN NULL ELSE 'erased' END
                 WHERE LOWER(recipient) {in_set}",
            )
            .rows(Rows::new().text("spelling", spellings.iter().map(String::as_str))),
        )
        .await?;
        self.suppress(fingerprint, "erased", now).await?;
        Ok(ErasureCounts { subscriptions, consent_events, confirmation_tokens, deliveries, outbox_cancelled })
    }
}

/// A rights request's free-text fields, for scrubbing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RightsRequestText {
    pub id: Uuid,
    pub subject: String,
    pub subscriber_id: Option<Uuid>,
    pub notes: String,
    pub outcome: String,
    pub extension_reason: Option<String>,
    pub pause_reason: Option<String>,
}

/// The reason given for one change to a rights request, for scrubbing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RightsEventText {
    pub id: Uuid,
    pub reason: String,
}

/// An audit entry's free-text fields, for scrubbing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditText {
    pub id: Uuid,
    pub actor_label: String,
    pub target: String,
    pub detail: String,
}

impl Tx {
    /// Every rights request's free text (a group has a handful a year, so
    /// an erasure reads them all rather than trusting SQL's ASCII-only
    /// case folding to find mentions).
    pub async fn rights_request_texts(&mut self) -> Result<Vec<RightsRequestText>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, subject, subscriber_id, notes, outcome, extension_reason, pause_reason FROM rights_requests",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Writes back a scrubbed rights request, unlinked from the person.
    pub async fn set_rights_request_text(&mut self, r: &RightsRequestText) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "UPDATE rights_requests SET subject = $2, subscriber_id = $3, notes = $4, outcome = $5,
                                        extension_reason = $6, pause_reason = $7
             WHERE id = $1",
            )
            .bind(r.id)
            .bind(&r.subject)
            .bind(r.subscriber_id)
            .bind(&r.notes)
            .bind(&r.outcome)
            .bind(&r.extension_reason)
            .bind(&r.pause_reason)
        );
        Ok(())
    }

    /// The reasons given for every change to every rights request (read
    /// whole, as [`Tx::rights_request_texts`] is).
    pub async fn rights_event_texts(&mut self) -> Result<Vec<RightsEventText>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, reason FROM rights_request_events WHERE reason <> ''",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Writes back a scrubbed reason (the one change erasure makes to the
    /// otherwise append-only history).
    pub async fn set_rights_event_reason(&mut self, id: Uuid, reason: &str) -> Result<()> {
        execute!(self, sqlx::query("UPDATE rights_request_events SET reason = $2 WHERE id = $1").bind(id).bind(reason));
        Ok(())
    }

    /// Audit entries whose label, target or detail may contain `needle`
    /// (lower case; SQL's `LIKE` wildcards in it only widen the net, and
    /// the caller checks each row).
    pub async fn audit_texts_mentioning(&mut self, needle: &str) -> Result<Vec<AuditText>> {
        let pattern = format!("%{needle}%");
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, actor_label, target, detail FROM audit_log
             WHERE LOWER(actor_label) LIKE $1 OR LOWER(target) LIKE $1 OR LOWER(detail) LIKE $1",
        )
        .bind(pattern)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn set_audit_text(&mut self, a: &AuditText) -> Result<()> {
        execute!(
            self,
            sqlx::query("UPDATE audit_log SET actor_label = $2, target = $3, detail = $4 WHERE id = $1")
                .bind(a.id)
                .bind(&a.actor_label)
                .bind(&a.target)
                .bind(&a.detail)
        );
        Ok(())
    }
}
