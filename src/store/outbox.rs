//! The transactional-mail outbox: messages written in the same transaction
//! as the change that caused them, then claimed by workers under a lease.
//!
//! A worker that dies leaves its lease to expire; another claims the row
//! again. So a message can be sent twice only if the process died between
//! the SMTP server accepting it and the outcome being recorded.

use super::batch::{Rows, Statement};
use super::{Result, Tx, execute, on_backend};
use crate::domain::{MailKind, OutboxStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewOutboxMessage {
    pub kind: MailKind,
    pub recipient: String,
    pub message_id: String,
    pub body: OutboxBody,
}

/// What the outbox holds for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxBody {
    /// The complete RFC 5322 message.
    Message(Vec<u8>),
    /// What to compose when sending (JSON, see `mail::Recipe`).
    Recipe(String),
}

impl OutboxBody {
    fn columns(&self) -> (Option<&[u8]>, Option<&str>) {
        match self {
            OutboxBody::Message(bytes) => (Some(bytes), None),
            OutboxBody::Recipe(json) => (None, Some(json)),
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub kind: MailKind,
    pub recipient: String,
    pub message_id: String,
    pub message: Option<Vec<u8>>,
    pub recipe: Option<String>,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// A transactional message as a bounce of it needs it: what it was, to
/// whom, and whether it went out.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BouncedMail {
    pub id: Uuid,
    pub kind: MailKind,
    pub recipient: String,
    pub status: OutboxStatus,
    pub message_id: String,
    pub sent_at: Option<DateTime<Utc>>,
}

impl Tx {
    /// The outbox row a transactional VERP tag names, if it is still kept
    /// (the retention purge deletes old ones; erasure blanks the recipient).
    pub async fn mail_for_bounce(&mut self, id: Uuid) -> Result<Option<BouncedMail>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, kind, recipient, status, message_id, sent_at FROM outbox WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    pub async fn enqueue_mail(&mut self, m: &NewOutboxMessage, now: DateTime<Utc>) -> Result<Uuid> {
        let id = Uuid::now_v7();
        let (message, recipe) = m.body.columns();
        execute!(self, sqlx::query(
            "INSERT INTO outbox (id, kind, recipient, message_id, message, recipe, status, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)",
        )
        .bind(id)
        .bind(m.kind)
        .bind(&m.recipient)
        .bind(&m.message_id)
        .bind(message)
        .bind(recipe)
        .bind(now));
        Ok(id)
    }

    /// Claims up to `limit` due messages until `lease_until`, counting the
    /// attempt now so a message that crashes its worker still runs out of
    /// attempts.
    pub async fn claim_outbox(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let rows = match self {
            Tx::Sqlite(t) => {
                // SQLite has one writer (we hold it: BEGIN IMMEDIATE), so no
                // row locks are needed.
                sqlx::query_as(
                    "UPDATE outbox SET lease_until = $2, attempts = attempts + 1
                     WHERE id IN (SELECT id FROM outbox
                                  WHERE status = 'pending' AND next_attempt_at <= $1
                                    AND (lease_until IS NULL OR lease_until <= $1)
                                  ORDER BY next_attempt_at LIMIT $3)
                     RETURNING id, kind, recipient, message_id, message, recipe, status, attempts, last_error",
                )
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .fetch_all(&mut **t)
                .await?
            }
            Tx::Postgres(t) => {
                // A CTE fixes the picked set before the UPDATE runs, so LIMIT
                // and SKIP LOCKED apply exactly once.
                sqlx::query_as(
                    "WITH picked AS (
                         SELECT id FROM outbox
                         WHERE status = 'pending' AND next_attempt_at <= $1
                           AND (lease_until IS NULL OR lease_until <= $1)
                         ORDER BY next_attempt_at LIMIT $3
                         FOR UPDATE SKIP LOCKED)
                     UPDATE outbox SET lease_until = $2, attempts = outbox.attempts + 1
                     FROM picked WHERE outbox.id = picked.id
                     RETURNING outbox.id, outbox.kind, outbox.recipient, outbox.message_id, outbox.message,
                               outbox.recipe, outbox.status, outbox.attempts, outbox.last_error",
                )
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .fetch_all(&mut **t)
                .await?
            }
        };
        Ok(rows)
    }

    /// Sent: the body is dropped (it may hold a confirmation token).
    pub async fn outbox_sent(&mut self, id: Uuid, now: DateTime<Utc>) -> Result<()> {
        execute!(self, sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $2, message = NULL, recipe = NULL, lease_until = NULL, last_error = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(now));
        Ok(())
    }

    /// A temporary failure: try again at `retry_at`.
    pub async fn outbox_retry(&mut self, id: Uuid, retry_at: DateTime<Utc>, error: &str) -> Result<()> {
        execute!(
            self,
            sqlx::query("UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1",)
                .bind(id)
                .bind(retry_at)
                .bind(error)
        );
        Ok(())
    }

    /// A permanent failure; the body is dropped.
    pub async fn outbox_failed(&mut self, id: Uuid, error: &str) -> Result<()> {
        execute!(self, sqlx::query(
            "UPDATE outbox SET status = 'failed', lease_until = NULL, last_error = $2, message = NULL, recipe = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(error));
        Ok(())
    }

    /// Gives a claimed message back untouched (shutdown, or an SMTP outage
    /// noticed before it was tried): the attempt does not count.
    pub async fn outbox_release(&mut self, id: Uuid) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "UPDATE outbox SET lease_until = NULL, attempts = attempts - 1 WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
        );
        Ok(())
    }

    /// Messages by status (`pending`, `sent`, `failed`) for health and tests.
    pub async fn outbox_count(&mut self, status: OutboxStatus) -> Result<i64> {
        let n = on_backend!(self, c => sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = $1")
            .bind(status)
            .fetch_one(c)
            .await?);
        Ok(n)
    }

    /// The soonest moment a pending message becomes due, if any.
    pub async fn outbox_next_due(&mut self) -> Result<Option<DateTime<Utc>>> {
        let at = on_backend!(self, c => sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END)
             FROM outbox WHERE status = 'pending'",
        )
        .fetch_one(c)
        .await?);
        Ok(at)
    }
}

impl Tx {
    /// The set form of [`Tx::enqueue_mail`].
    pub async fn enqueue_mails(&mut self, mails: &[NewOutboxMessage], now: DateTime<Utc>) -> Result<()> {
        if mails.is_empty() {
            return Ok(());
        }
        if mails.iter().any(|m| matches!(m.body, OutboxBody::Message(_))) {
            // Composed bytes do not go through JSON: one row at a time (no
            // batch path queues those).
            for m in mails {
                self.enqueue_mail(m, now).await?;
            }
            return Ok(());
        }
        self.write_rows(recipes(mails, now)).await
    }
}

/// The statement of [`Tx::enqueue_mails`] for mails queued as recipes.
pub(super) fn recipes<'a>(mails: &'a [NewOutboxMessage], now: DateTime<Utc>) -> Statement<'a> {
    Statement::new(
        "INSERT INTO outbox (id, kind, recipient, message_id, recipe, status, next_attempt_at, created_at)
         SELECT u.id, u.kind, u.recipient, u.message_id, u.recipe, 'pending', $1, $1
         FROM {rows}",
    )
    .bind(now)
    .rows(
        Rows::new()
            .uuid("id", mails.iter().map(|_| Uuid::now_v7()))
            .text("kind", mails.iter().map(|m| m.kind.as_str()))
            .text("recipient", mails.iter().map(|m| m.recipient.as_str()))
            .text("message_id", mails.iter().map(|m| m.message_id.as_str()))
            .text("recipe", mails.iter().map(|m| m.body.columns().1)),
    )
}
