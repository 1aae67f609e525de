//! Bounce and complaint events, the facts the bounce logic needs about a
//! subscriber's deliveries (which delivery a report is about, their recent
//! soft-bounce streak), and operator alerts.

use super::{Result, Tx, execute, on_backend};
use crate::domain::{AlertKind, DeliveryStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One row of `bounce_events`, as written.
#[derive(Debug, Clone)]
pub struct NewBounceEvent<'a> {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub source: &'a str,
    pub dedupe_key: &'a str,
    pub class: &'a str,
    pub outcome: &'a str,
    pub email_hash: Option<&'a str>,
    pub recipient_domain: Option<&'a str>,
    pub subscriber_id: Option<Uuid>,
    pub update_id: Option<Uuid>,
    pub status_code: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    pub ref_at: DateTime<Utc>,
    /// An abuse report's DKIM result (`pass`, `fail`, `none`, `unverified`).
    pub dkim: Option<&'a str>,
    /// The `d=` of the signature checked.
    pub dkim_domain: Option<&'a str>,
}

/// One event as the admin page lists it, with the subscriber's current
/// address when they still exist.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BounceEventRow {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub class: String,
    pub outcome: String,
    pub recipient_domain: Option<String>,
    pub subscriber_id: Option<Uuid>,
    pub email: Option<String>,
    pub update_id: Option<Uuid>,
    pub subject: Option<String>,
    pub status_code: Option<String>,
    pub diagnostic: Option<String>,
    pub dkim: Option<String>,
    pub dkim_domain: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reviewed_by: Option<String>,
}

impl BounceEventRow {
    /// Held for an admin: matched a subscriber only by address.
    pub fn awaits_review(&self) -> bool {
        self.outcome == "review"
    }
}

/// What an admin's decision on a held report needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldReport {
    pub id: Uuid,
    pub source: String,
    pub class: String,
    pub subscriber_id: Option<Uuid>,
    pub status_code: Option<String>,
    pub diagnostic: Option<String>,
}

/// The delivery a report was tied to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BouncedDelivery {
    pub update_id: Uuid,
    pub subscriber_id: Uuid,
    pub email: String,
    pub status: DeliveryStatus,
    pub message_id: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: Uuid,
    pub kind: AlertKind,
    pub subject: String,
    pub title: String,
    pub detail: String,
    pub link: Option<String>,
    pub occurrences: i64,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// What raises an alert (an open alert with the same kind and subject is
/// counted up instead).
#[derive(Debug, Clone)]
pub struct NewAlert<'a> {
    pub kind: AlertKind,
    pub subject: &'a str,
    pub title: &'a str,
    pub detail: &'a str,
    pub link: Option<&'a str>,
}

impl Tx {
    /// Records an event unless one with the same dedupe key exists; `false`
    /// means it is a repeat and nothing was written.
    pub async fn insert_bounce_event(&mut self, e: &NewBounceEvent<'_>) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query(
                "INSERT INTO bounce_events (id, received_at, source, dedupe_key, class, outcome, email_hash,
                                        recipient_domain, subscriber_id, update_id, status_code, diagnostic, ref_at,
                                        dkim, dkim_domain)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(e.id)
            .bind(e.received_at)
            .bind(e.source)
            .bind(e.dedupe_key)
            .bind(e.class)
            .bind(e.outcome)
            .bind(e.email_hash)
            .bind(e.recipient_domain)
            .bind(e.subscriber_id)
            .bind(e.update_id)
            .bind(e.status_code)
            .bind(e.diagnostic)
            .bind(e.ref_at)
            .bind(e.dkim)
            .bind(e.dkim_domain)
        );
        Ok(n == 1)
    }

    /// Changes the outcome recorded for an event (a soft bounce that turned
    /// out to be the one that suspends).
    pub async fn set_bounce_outcome(&mut self, id: Uuid, outcome: &str) -> Result<()> {
        execute!(self, sqlx::query("UPDATE bounce_events SET outcome = $2 WHERE id = $1").bind(id).bind(outcome));
        Ok(())
    }

    /// The delivery of `update_id` to `subscriber_id`, if there is one.
    pub async fn delivery_for_bounce(
        &mut self,
        update_id: Uuid,
        subscriber_id: Uuid,
    ) -> Result<Option<BouncedDelivery>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT d.update_id, d.subscriber_id, s.email, d.status, d.message_id, d.sent_at
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.update_id = $1 AND d.subscriber_id = $2",
        )
        .bind(update_id)
        .bind(subscriber_id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// A delivery that was accepted by the relay and then bounced
    /// asynchronously: `sent` becomes `bounced`, with the diagnostic.
    /// `false` when it was not `sent` (already bounced, for one).
    pub async fn mark_delivery_bounced(&mut self, update_id: Uuid, subscriber_id: Uuid, reply: &str) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE deliveries SET status = 'bounced', smtp_reply = $3
             WHERE update_id = $1 AND subscriber_id = $2 AND status = 'sent'",
            )
            .bind(update_id)
            .bind(subscriber_id)
            .bind(reply)
        );
        Ok(n == 1)
    }

    /// The soft-bounce streak that ends at `until`: soft bounces of this
    /// subscriber after their last delivery that went out and did not
    /// bounce (a success resets the count), counted once per delivery (a
    /// message deferred and then bounced is one bounce) or per event when a
    /// report could only be tied to the address.
    pub async fn soft_bounce_streak(&mut self, subscriber_id: Uuid, until: DateTime<Utc>) -> Result<i64> {
        let last_success: Option<DateTime<Utc>> = on_backend!(self, c => sqlx::query_scalar(
            // By primary key through `updates` (deliveries have no index by person).
            "SELECT MAX(d.sent_at) FROM updates u JOIN deliveries d ON d.update_id = u.id AND d.subscriber_id = $1
             WHERE d.status = 'sent' AND d.sent_at < $2",
        )
        .bind(subscriber_id)
        .bind(until)
        .fetch_one(c)
        .await?);
        let n: i64 = on_backend!(self, c => sqlx::query_scalar(
            "SELECT COUNT(DISTINCT COALESCE(update_id, id)) FROM bounce_events
             WHERE subscriber_id = $1 AND class = 'soft' AND ref_at <= $2 AND ($3 IS NULL OR ref_at > $3)
               AND outcome NOT IN ('review', 'dismissed')",
        )
        .bind(subscriber_id)
        .bind(until)
        .bind(last_success)
        .fetch_one(c)
        .await?);
        Ok(n)
    }

    /// Newest first, optionally one class only or one outcome only
    /// (`unmatched` for the reports no subscriber could be found for,
    /// `review` for those held for an admin), starting before `before`.
    pub async fn bounce_events_page(
        &mut self,
        class: Option<&str>,
        outcome: Option<&str>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<BounceEventRow>> {
        let (before_at, before_id) = before.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT b.id, b.received_at, b.source, b.class, b.outcome, b.recipient_domain, b.subscriber_id,
                    s.email, b.update_id, u.subject, b.status_code, b.diagnostic, b.dkim, b.dkim_domain,
                    b.reviewed_at, b.reviewed_by
             FROM bounce_events b
             LEFT JOIN subscribers s ON s.id = b.subscriber_id
             LEFT JOIN updates u ON u.id = b.update_id
             WHERE ($1 IS NULL OR b.class = $1)
               AND ($2 IS NULL OR b.outcome = $2)
               AND ($3 IS NULL OR b.received_at < $3 OR (b.received_at = $3 AND b.id < $4))
             ORDER BY b.received_at DESC, b.id DESC
             LIMIT $5",
        )
        .bind(class)
        .bind(outcome)
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// A report held for review (outcome `review`), locked for the decision
    /// on PostgreSQL.
    pub async fn held_report(&mut self, id: Uuid) -> Result<Option<HeldReport>> {
        let sql = match self {
            Tx::Sqlite(_) => {
                "SELECT id, source, class, subscriber_id, status_code, diagnostic FROM bounce_events
                 WHERE id = $1 AND outcome = 'review'"
            }
            Tx::Postgres(_) => {
                "SELECT id, source, class, subscriber_id, status_code, diagnostic FROM bounce_events
                 WHERE id = $1 AND outcome = 'review' FOR UPDATE"
            }
        };
        let row = on_backend!(self, c => sqlx::query_as(sql).bind(id).fetch_optional(c).await?);
        Ok(row)
    }

    /// Records an admin's decision on a held report (`applied-by-admin` or
    /// `dismissed`).
    pub async fn decide_held_report(&mut self, id: Uuid, outcome: &str, by: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE bounce_events SET outcome = $2, reviewed_by = $3, reviewed_at = $4
             WHERE id = $1 AND outcome = 'review'",
            )
            .bind(id)
            .bind(outcome)
            .bind(by)
            .bind(now)
        );
        Ok(n == 1)
    }

    /// Raises an alert, or counts up the open one with the same kind and
    /// subject.
    pub async fn raise_alert(&mut self, a: &NewAlert<'_>, now: DateTime<Utc>) -> Result<()> {
        let bumped = execute!(
            self,
            sqlx::query(
                "UPDATE operator_alerts SET occurrences = occurrences + 1, last_seen_at = $4, detail = $3,
                    link = COALESCE($5, link)
             WHERE kind = $1 AND subject = $2 AND dismissed_at IS NULL",
            )
            .bind(a.kind)
            .bind(a.subject)
            .bind(a.detail)
            .bind(now)
            .bind(a.link)
        );
        if bumped > 0 {
            return Ok(());
        }
        execute!(self, sqlx::query(
            "INSERT INTO operator_alerts (id, kind, subject, title, detail, link, occurrences, first_seen_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(a.kind)
        .bind(a.subject)
        .bind(a.title)
        .bind(a.detail)
        .bind(a.link)
        .bind(now));
        Ok(())
    }

    /// Alerts not yet dismissed, newest first.
    pub async fn open_alerts(&mut self) -> Result<Vec<AlertRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, kind, subject, title, detail, link, occurrences, first_seen_at, last_seen_at
             FROM operator_alerts WHERE dismissed_at IS NULL ORDER BY last_seen_at DESC, id DESC",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Dismisses an open alert; `false` if there was none with that id.
    pub async fn dismiss_alert(&mut self, id: Uuid, by: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = execute!(self, sqlx::query(
            "UPDATE operator_alerts SET dismissed_at = $2, dismissed_by = $3 WHERE id = $1 AND dismissed_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .bind(by));
        Ok(n == 1)
    }
}
