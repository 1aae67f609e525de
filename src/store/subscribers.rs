//! Subscribers and their per-list subscriptions.

use super::batch::{Rows, Statement};
use super::confirmations::push_confirmation_tokens;
use super::consent::consent_events;
use super::imports::new_subscribers;
use super::outbox::recipes;
use super::script::Script;
use super::{
    NewConfirmationToken, NewConsentEvent, NewImportedSubscriber, NewOutboxMessage, OutboxBody, Result, Tx, execute,
    on_backend, unique_as_conflict,
};
use crate::domain::SubscriptionStatus;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: Uuid,
    pub email: String,
    pub email_norm: String,
    pub name: String,
    /// A JSON object of extra attributes (imports put columns here).
    pub attributes: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One subscription, with the list it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub subscriber_id: Uuid,
    pub list_id: Uuid,
    pub list_slug: String,
    pub list_name: String,
    pub status: SubscriptionStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_confirmation_sent_at: Option<DateTime<Utc>>,
}

impl Tx {
    /// `email_hash` is the address's keyed fingerprint (`AddressKey`). The
    /// one-row form of [`Tx::insert_subscribers`].
    pub async fn insert_subscriber(&mut self, s: &SubscriberRow, email_hash: &str) -> Result<()> {
        let row = NewImportedSubscriber {
            id: s.id,
            email: s.email.clone(),
            email_norm: s.email_norm.clone(),
            email_hash: email_hash.to_owned(),
            name: s.name.clone(),
            attributes: s.attributes.clone(),
        };
        self.write_rows(new_subscribers(None, std::slice::from_ref(&row), s.created_at, s.updated_at))
            .await
            .map_err(unique_as_conflict("a subscriber with that address"))
    }

    pub async fn subscriber_by_email(&mut self, email_norm: &str) -> Result<Option<SubscriberRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, email, email_norm, name, attributes, created_at, updated_at
             FROM subscribers WHERE email_norm = $1",
        )
        .bind(email_norm)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    pub async fn subscriber_by_id(&mut self, id: Uuid) -> Result<Option<SubscriberRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, email, email_norm, name, attributes, created_at, updated_at
             FROM subscribers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    pub async fn set_subscriber_name(&mut self, id: Uuid, name: &str, now: DateTime<Utc>) -> Result<()> {
        execute!(
            self,
            sqlx::query("UPDATE subscribers SET name = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(name)
                .bind(now)
        );
        Ok(())
    }

    /// Every subscription of one subscriber (to lists not deleted), by list name.
    pub async fn subscriptions(&mut self, subscriber_id: Uuid) -> Result<Vec<SubscriptionRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT s.subscriber_id, s.list_id, l.slug AS list_slug, l.name AS list_name, s.status,
                    s.created_at, s.updated_at, s.confirmed_at, s.last_confirmation_sent_at
             FROM subscriptions s JOIN lists l ON l.id = s.list_id
             WHERE s.subscriber_id = $1 AND l.deleted_at IS NULL
             ORDER BY l.name, l.slug",
        )
        .bind(subscriber_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Creates the subscription or moves it to `status`. `confirmed_at` is
    /// set when the new status is `confirmed`.
    pub async fn set_subscription_status(
        &mut self,
        subscriber_id: Uuid,
        list_id: Uuid,
        status: SubscriptionStatus,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let confirmed_at = (status == SubscriptionStatus::Confirmed).then_some(now);
        execute!(
            self,
            sqlx::query(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at, confirmed_at,
                                        pending_since)
             VALUES ($1, $2, $3, $4, $4, $5, CASE WHEN $3 = 'pending' THEN $4 END)
             ON CONFLICT (subscriber_id, list_id) DO UPDATE
             SET status = excluded.status, updated_at = excluded.updated_at,
                 confirmed_at = COALESCE(excluded.confirmed_at, subscriptions.confirmed_at),
                 pending_since = CASE WHEN subscriptions.status = 'pending' THEN subscriptions.pending_since
                                      ELSE excluded.pending_since END",
            )
            .bind(subscriber_id)
            .bind(list_id)
            .bind(status)
            .bind(now)
            .bind(confirmed_at)
        );
        Ok(())
    }

    /// Confirmed subscriber count per list id.
    pub async fn confirmed_count(&mut self, list_id: Uuid) -> Result<i64> {
        let n = on_backend!(self, c => sqlx::query_scalar(
            "SELECT COUNT(*) FROM subscriptions WHERE list_id = $1 AND status = 'confirmed'",
        )
        .bind(list_id)
        .fetch_one(c)
        .await?);
        Ok(n)
    }
}

impl Tx {
    /// Rectification: the person keeps their id, so their subscriptions,
    /// ledger and deliveries stay linked to the corrected details.
    pub async fn rectify_subscriber(&mut self, row: &SubscriberRow, email_hash: &str) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "UPDATE subscribers SET email = $2, email_norm = $3, email_hash = $4, name = $5, attributes = $6,
                                    updated_at = $7
             WHERE id = $1",
            )
            .bind(row.id)
            .bind(&row.email)
            .bind(&row.email_norm)
            .bind(email_hash)
            .bind(&row.name)
            .bind(&row.attributes)
            .bind(row.updated_at),
            super::conflict_on_unique("a subscriber with that address")
        );
        Ok(())
    }
}

/// A subscription a subscribe request moves to `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedSubscription {
    pub subscriber_id: Uuid,
    pub list_id: Uuid,
    /// Whether a confirmation mail for it goes into the outbox now.
    pub mailed: bool,
}

impl Tx {
    /// The set form of [`Tx::set_subscription_status`] (`pending`), also
    /// noting the request and, where `mailed`, when a confirmation went
    /// into the outbox. Each (subscriber, list) pair at most
    /// once (PostgreSQL refuses to upsert one row twice in a statement).
    pub async fn request_subscriptions(&mut self, rows: &[RequestedSubscription], now: DateTime<Utc>) -> Result<()> {
        self.write_rows(requested_subscriptions(rows, now)).await
    }

    /// Notes a subscribe request for subscriptions whose status it does not
    /// change (confirmed, complained): every subscribe path writes, so an
    /// address's status cannot be read from how long the answer took.
    pub async fn note_subscribe_requests(&mut self, pairs: &[(Uuid, Uuid)], now: DateTime<Utc>) -> Result<()> {
        self.write_rows(noted_requests(pairs, now)).await
    }
}

/// Everything a batch of subscribe requests writes once it has decided
/// (see `services::supporter::ConfirmationRequests`).
pub struct SignupWrites<'a> {
    /// Subscribers first seen in this batch.
    pub new_subscribers: &'a [NewImportedSubscriber],
    pub requested: &'a [RequestedSubscription],
    /// Confirmed or complained subscriptions asked for again.
    pub noted: &'a [(Uuid, Uuid)],
    pub events: &'a [NewConsentEvent],
    pub tokens: &'a [NewConfirmationToken],
    pub mails: &'a [NewOutboxMessage],
    pub now: DateTime<Utc>,
    pub tokens_expire_at: DateTime<Utc>,
}

impl Tx {
    /// Writes a batch's new subscribers, subscriptions, ledger entries,
    /// tokens and mails, in that order: when every mail is a recipe, as one
    /// script (see [`super::script`]), a single round trip on either
    /// database.
    pub async fn write_signups(&mut self, w: &SignupWrites<'_>) -> Result<()> {
        if !w.mails.iter().all(|m| matches!(m.body, OutboxBody::Recipe(_))) {
            self.insert_subscribers(None, w.new_subscribers, w.now).await?;
            self.request_subscriptions(w.requested, w.now).await?;
            self.note_subscribe_requests(w.noted, w.now).await?;
            self.append_consent_events(w.events).await?;
            self.insert_confirmation_tokens(w.tokens, w.now, w.tokens_expire_at).await?;
            return self.enqueue_mails(w.mails, w.now).await;
        }
        // On PostgreSQL one statement: `requested` and `noted` never name
        // the same subscription (a request either moves it to pending or
        // only notes it), so no row is written by two of its clauses.
        let mut script = Script::default();
        script.push(new_subscribers(None, w.new_subscribers, w.now, w.now));
        script.push(requested_subscriptions(w.requested, w.now));
        script.push(noted_requests(w.noted, w.now));
        script.push(consent_events(w.events, w.events.iter().map(|_| Uuid::now_v7())));
        push_confirmation_tokens(&mut script, w.tokens, w.now, w.tokens_expire_at);
        script.push(recipes(w.mails, w.now));
        self.run_script(script).await
    }
}

/// The statement of [`Tx::request_subscriptions`]. `WHERE true`: SQLite's
/// parser needs it before an upsert's ON CONFLICT.
fn requested_subscriptions(rows: &[RequestedSubscription], now: DateTime<Utc>) -> Statement<'_> {
    Statement::new(
        "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at,
                                    last_requested_at, last_confirmation_sent_at, pending_since)
         SELECT u.s, u.l, 'pending', $1, $1, $1, CASE WHEN u.mailed THEN $1 END, $1
         FROM {rows}
         WHERE true
         ON CONFLICT (subscriber_id, list_id) DO UPDATE
         SET status = excluded.status, updated_at = excluded.updated_at,
             last_requested_at = excluded.last_requested_at,
             pending_since = CASE WHEN subscriptions.status = 'pending'
                 THEN COALESCE(subscriptions.pending_since, subscriptions.last_requested_at, subscriptions.created_at)
                 ELSE excluded.pending_since END,
             last_confirmation_sent_at =
                 COALESCE(excluded.last_confirmation_sent_at, subscriptions.last_confirmation_sent_at)",
    )
    .bind(now)
    .rows(
        Rows::new()
            .uuid("s", rows.iter().map(|r| r.subscriber_id))
            .uuid("l", rows.iter().map(|r| r.list_id))
            .flag("mailed", rows.iter().map(|r| r.mailed)),
    )
}

/// The statement of [`Tx::note_subscribe_requests`].
fn noted_requests(pairs: &[(Uuid, Uuid)], now: DateTime<Utc>) -> Statement<'_> {
    Statement::new(
        "UPDATE subscriptions SET last_requested_at = $1
         WHERE (subscriber_id, list_id) IN (SELECT u.s, u.l FROM {rows})",
    )
    .bind(now)
    .rows(Rows::new().uuid("s", pairs.iter().map(|p| p.0)).uuid("l", pairs.iter().map(|p| p.1)))
}
