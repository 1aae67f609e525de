//! Keyset pages for CSV exports: each page starts after the last subscriber
//! id of the one before, so an export of any size reads a bounded page at a
//! time and never skips or repeats a row.

use super::{Result, Tx, on_backend};
use crate::domain::SubscriptionStatus;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One exported line: a subscriber and one of their subscriptions (none
/// for someone subscribed to no list).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub subscriber_id: Uuid,
    pub email: String,
    pub name: String,
    pub attributes: String,
    pub list_slug: Option<String>,
    pub status: Option<SubscriptionStatus>,
    pub subscribed_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct SubscriptionLine {
    subscriber_id: Uuid,
    list_slug: String,
    status: SubscriptionStatus,
    subscribed_at: DateTime<Utc>,
    confirmed_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct PersonLine {
    id: Uuid,
    email: String,
    name: String,
    attributes: String,
}

impl Tx {
    /// Up to `limit` subscriptions to `list_id` of subscribers after `after`
    /// (the nil id for the first page), by subscriber id.
    pub async fn export_list_page(&mut self, list_id: Uuid, after: Uuid, limit: i64) -> Result<Vec<ExportRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT p.id AS subscriber_id, p.email, p.name, p.attributes, l.slug AS list_slug, s.status,
                    s.created_at AS subscribed_at, s.confirmed_at, s.updated_at
             FROM subscriptions s
             JOIN subscribers p ON p.id = s.subscriber_id
             JOIN lists l ON l.id = s.list_id
             WHERE s.list_id = $1 AND s.subscriber_id > $2
             ORDER BY s.subscriber_id LIMIT $3",
        )
        .bind(list_id)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Up to `limit` subscribers after `after` (the nil id for the first
    /// page), each with every subscription to a list that is not deleted
    /// (one line each, by list slug), or one line without a list.
    pub async fn export_all_page(&mut self, after: Uuid, limit: i64) -> Result<Vec<ExportRow>> {
        let people: Vec<PersonLine> = on_backend!(self, c => sqlx::query_as(
            "SELECT id, email, name, attributes FROM subscribers WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await?);
        let (Some(first), Some(last)) = (people.first().map(|p| p.id), people.last().map(|p| p.id)) else {
            return Ok(Vec::new());
        };
        let subs: Vec<SubscriptionLine> = on_backend!(self, c => sqlx::query_as(
            "SELECT s.subscriber_id, l.slug AS list_slug, s.status, s.created_at AS subscribed_at, s.confirmed_at,
                    s.updated_at
             FROM subscriptions s JOIN lists l ON l.id = s.list_id
             WHERE s.subscriber_id >= $1 AND s.subscriber_id <= $2 AND l.deleted_at IS NULL
             ORDER BY s.subscriber_id, l.slug",
        )
        .bind(first)
        .bind(last)
        .fetch_all(c)
        .await?);
        let mut out = Vec::with_capacity(people.len().max(subs.len()));
        let mut subs = subs.into_iter().peekable();
        for p in people {
            let mut any = false;
            while let Some(s) = subs.next_if(|s| s.subscriber_id == p.id) {
                any = true;
                out.push(ExportRow {
                    subscriber_id: p.id,
                    email: p.email.clone(),
                    name: p.name.clone(),
                    attributes: p.attributes.clone(),
                    list_slug: Some(s.list_slug),
                    status: Some(s.status),
                    subscribed_at: Some(s.subscribed_at),
                    confirmed_at: s.confirmed_at,
                    updated_at: Some(s.updated_at),
                });
            }
            if !any {
                out.push(ExportRow {
                    subscriber_id: p.id,
                    email: p.email,
                    name: p.name,
                    attributes: p.attributes,
                    list_slug: None,
                    status: None,
                    subscribed_at: None,
                    confirmed_at: None,
                    updated_at: None,
                });
            }
        }
        Ok(out)
    }
}
