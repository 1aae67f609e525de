//! The parts of a person's data copy (UK GDPR Art 15, 20) kept outside
//! their profile, subscriptions and ledger: bounce and complaint reports
//! about them, the transactional mail sent to them, their rights requests,
//! and the audit-log entries of organisers' actions on their record.

use super::{Result, Tx, on_backend};
use crate::domain::{MailKind, OutboxStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One bounce or complaint report tied to the person.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct CopyBounce {
    pub received_at: DateTime<Utc>,
    /// `hard`, `soft`, `policy`, `complaint` or `delayed`.
    pub class: String,
    /// Where it came from (`dsn`, `smtp`, a provider's webhook…).
    pub source: String,
    pub outcome: String,
    pub status_code: Option<String>,
    pub diagnostic: Option<String>,
}

/// One transactional message (confirmation, data copy…) queued for them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CopyMail {
    pub kind: MailKind,
    pub status: OutboxStatus,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The composed message, when it was stored composed.
    pub message: Option<Vec<u8>>,
}

/// One audit-log entry about the person's record.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct CopyAction {
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub status: i32,
}

impl Tx {
    pub async fn copy_bounces(&mut self, subscriber_id: Uuid) -> Result<Vec<CopyBounce>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT received_at, class, source, outcome, status_code, diagnostic FROM bounce_events
             WHERE subscriber_id = $1 ORDER BY received_at, id",
        )
        .bind(subscriber_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Transactional mail addressed to `email` (as stored, any case).
    pub async fn copy_mail(&mut self, email: &str) -> Result<Vec<CopyMail>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT kind, status, created_at, sent_at, message FROM outbox
             WHERE LOWER(recipient) = LOWER($1) ORDER BY created_at, id",
        )
        .bind(email)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn copy_rights_requests(&mut self, subscriber_id: Uuid) -> Result<Vec<super::RightsRequestRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, kind, subject, subscriber_id, received_at, due_at, extended_due_at, extension_reason, status,
                    outcome, notes, closed_at, created_by, created_at, updated_at, paused_at, pause_reason,
                    paused_seconds, acknowledge_due_at, acknowledged_at
             FROM rights_requests WHERE subscriber_id = $1 ORDER BY received_at, id",
        )
        .bind(subscriber_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Organisers' actions whose target names the person's id (the API's
    /// and admin pages' `/subscribers/{id}…` routes).
    pub async fn copy_actions(&mut self, subscriber_id: Uuid) -> Result<Vec<CopyAction>> {
        let pattern = format!("%/subscribers/{subscriber_id}%");
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT occurred_at, actor, action, target, status FROM audit_log
             WHERE target LIKE $1 ORDER BY occurred_at, id",
        )
        .bind(&pattern)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }
}
