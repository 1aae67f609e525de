//! The transactional-mail outbox: messages written in the same transaction
//! as the change that caused them, then claimed by workers under a lease.
//!
//! A worker that dies leaves its lease to expire; another claims the row
//! again. So a message can be sent twice only if the process died between
//! the SMTP server accepting it and the outcome being recorded.

use super::{Result, Tx, on_backend};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct NewOutboxMessage {
    pub kind: &'static str,
    pub recipient: String,
    pub message_id: String,
    /// The complete RFC 5322 message.
    pub message: Vec<u8>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: Uuid,
    pub kind: String,
    pub recipient: String,
    pub message_id: String,
    pub message: Option<Vec<u8>>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl Tx {
    pub async fn enqueue_mail(&mut self, m: &NewOutboxMessage, now: DateTime<Utc>) -> Result<Uuid> {
        let id = Uuid::now_v7();
        on_backend!(self, c => sqlx::query(
            "INSERT INTO outbox (id, kind, recipient, message_id, message, status, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        )
        .bind(id)
        .bind(m.kind)
        .bind(&m.recipient)
        .bind(&m.message_id)
        .bind(&m.message)
        .bind(now)
        .execute(c)
        .await?.rows_affected());
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
                     RETURNING id, kind, recipient, message_id, message, status, attempts, last_error",
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
                               outbox.status, outbox.attempts, outbox.last_error",
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
        on_backend!(self, c => sqlx::query(
            "UPDATE outbox SET status = 'sent', sent_at = $2, message = NULL, lease_until = NULL, last_error = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(c)
        .await?.rows_affected());
        Ok(())
    }

    /// A temporary failure: try again at `retry_at`.
    pub async fn outbox_retry(&mut self, id: Uuid, retry_at: DateTime<Utc>, error: &str) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(retry_at)
        .bind(error)
        .execute(c)
        .await?.rows_affected());
        Ok(())
    }

    /// A permanent failure; the body is dropped.
    pub async fn outbox_failed(&mut self, id: Uuid, error: &str) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "UPDATE outbox SET status = 'failed', lease_until = NULL, last_error = $2, message = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(error)
        .execute(c)
        .await?.rows_affected());
        Ok(())
    }

    /// Gives a claimed message back untouched (shutdown, or an SMTP outage
    /// noticed before it was tried): the attempt does not count.
    pub async fn outbox_release(&mut self, id: Uuid) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "UPDATE outbox SET lease_until = NULL, attempts = attempts - 1 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id)
        .execute(c)
        .await?.rows_affected());
        Ok(())
    }

    /// Messages by status (`pending`, `sent`, `failed`) for health and tests.
    pub async fn outbox_count(&mut self, status: &str) -> Result<i64> {
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
        for chunk in statement_chunks(mails) {
            on_backend!(self, c => {
                let mut b = sqlx::QueryBuilder::new(
                    "INSERT INTO outbox (id, kind, recipient, message_id, message, status, next_attempt_at, created_at) ",
                );
                b.push_values(chunk, |mut v, m| {
                    v.push_bind(Uuid::now_v7())
                        .push_bind(m.kind)
                        .push_bind(m.recipient.clone())
                        .push_bind(m.message_id.clone())
                        .push_bind(m.message.clone())
                        .push_bind("pending")
                        .push_bind(now)
                        .push_bind(now);
                });
                b.build().execute(c).await?.rows_affected()
            });
        }
        Ok(())
    }
}

/// Most message bytes sent in one statement. sqlx does not set `TCP_NODELAY`
/// on its PostgreSQL connections, so a statement larger than one TCP segment
/// (64 KiB on loopback) has its last segment held back by Nagle's algorithm
/// until the server's delayed ACK: 20–40 ms per statement, measured on the
/// subscribe path's group commit. Statements below it are sent at once.
const STATEMENT_BYTES: usize = 48 * 1024;

/// Splits `mails` into runs of at most [`STATEMENT_BYTES`] of messages (at
/// least one message each) and [`super::subscribers::ROWS_PER_STATEMENT`] rows.
fn statement_chunks(mails: &[NewOutboxMessage]) -> impl Iterator<Item = &[NewOutboxMessage]> {
    let mut rest = mails;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && n < super::subscribers::ROWS_PER_STATEMENT {
            bytes += rest[n].message.len();
            if n > 0 && bytes > STATEMENT_BYTES {
                break;
            }
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(len: usize) -> NewOutboxMessage {
        NewOutboxMessage {
            kind: "confirmation",
            recipient: String::new(),
            message_id: String::new(),
            message: vec![b'x'; len],
        }
    }

    #[test]
    fn statements_stay_under_one_segment_and_every_mail_is_in_exactly_one() {
        let mails: Vec<_> = (0..40).map(|_| mail(6_500)).collect();
        let chunks: Vec<_> = statement_chunks(&mails).collect();
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 40);
        assert!(chunks.iter().all(|c| c.iter().map(|m| m.message.len()).sum::<usize>() <= STATEMENT_BYTES));
        assert_eq!(chunks[0].len(), STATEMENT_BYTES / 6_500);
        // A message larger than the limit still goes, alone.
        let big = [mail(10), mail(STATEMENT_BYTES * 2), mail(10)];
        let sizes: Vec<_> = statement_chunks(&big).map(<[_]>::len).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert_eq!(statement_chunks(&[]).count(), 0);
    }
}
