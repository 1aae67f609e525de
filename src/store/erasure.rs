//! Rights requests (UK GDPR articles 15, 17 and 20): reading everything held
//! about one subscriber for a copy of their data, and erasing all of it in
//! one transaction, keeping only the suppression entry (a hash of the
//! address) so the address is never mailed again.

use super::{Result, Tx, on_backend};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One subscription as a data copy shows it: lists deleted since are
/// included, as the record still exists.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportSubscriptionRow {
    pub list_slug: String,
    pub list_name: String,
    pub status: String,
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
    pub status: String,
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
    /// address, in the caller's transaction. `email_norm` is the normalised
    /// address (`email` as stored is also matched in the outbox). The
    /// ledger is deleted explicitly: its rows are append-only against
    /// UPDATE, but erasure is the one reason to DELETE them, and the
    /// foreign key has no cascade so that nothing else removes them by
    /// accident.
    pub async fn erase_subscriber(
        &mut self,
        subscriber_id: Uuid,
        email: &str,
        email_norm: &str,
        now: DateTime<Utc>,
    ) -> Result<ErasureCounts> {
        let consent_events = on_backend!(self, c => sqlx::query("DELETE FROM consent_events WHERE subscriber_id = $1")
            .bind(subscriber_id)
            .execute(c)
            .await?
            .rows_affected());
        // The token's list rows go with it (ON DELETE CASCADE).
        let confirmation_tokens = on_backend!(self, c => sqlx::query("DELETE FROM confirmation_tokens WHERE subscriber_id = $1")
                .bind(subscriber_id)
                .execute(c)
                .await?
                .rows_affected());
        let deliveries = on_backend!(self, c => sqlx::query(
            // By primary key through `updates` (deliveries have no index by person).
            "DELETE FROM deliveries WHERE subscriber_id = $1 AND update_id IN (SELECT id FROM updates)",
        )
            .bind(subscriber_id)
            .execute(c)
            .await?
            .rows_affected());
        let subscriptions = on_backend!(self, c => sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1")
            .bind(subscriber_id)
            .execute(c)
            .await?
            .rows_affected());
        on_backend!(self, c => sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(subscriber_id)
            .execute(c)
            .await?
            .rows_affected());
        // Mail already queued (a confirmation, a data copy) must not go out
        // after the person asked to be forgotten, and its body holds their
        // address: fail it and drop the body.
        let outbox_cancelled = on_backend!(self, c => sqlx::query(
            "UPDATE outbox SET status = 'failed', last_error = 'erased', message = NULL, recipe = NULL, lease_until = NULL
             WHERE status = 'pending' AND (LOWER(recipient) = $1 OR recipient = $2)",
        )
        .bind(email_norm)
        .bind(email)
        .execute(c)
        .await?
        .rows_affected());
        self.suppress(&crate::domain::sha256_hex(email_norm), "erased", now).await?;
        Ok(ErasureCounts { subscriptions, consent_events, confirmation_tokens, deliveries, outbox_cancelled })
    }
}
