//! Read-only organiser views over subscribers: filtered keyset pages,
//! the subscriptions of a page of subscribers in one query, and confirmed
//! counts per list.
//!
//! Search SQL is assembled from fixed fragments with [`sqlx::QueryBuilder`]
//! (every value is a bound parameter) so that each filter adds only its own
//! predicate: a query with `$n IS NULL OR …` for every filter would leave
//! PostgreSQL's cached generic plan unable to use the right index.

use super::batch::{Rows, Statement};
use super::{Result, SubscriberRow, SubscriptionRow, Tx, on_backend};
use crate::domain::SubscriptionStatus;
use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use uuid::Uuid;

/// Filters for one page of subscribers, newest first (uuid v7 ids sort by
/// creation time, so `id` alone is the keyset).
#[derive(Debug, Clone, Default)]
pub struct SubscriberSearch {
    /// Only subscribers with a subscription to this list.
    pub list_id: Option<Uuid>,
    /// Only subscriptions in this status (to `list_id`, or to any list that
    /// is not deleted).
    pub status: Option<SubscriptionStatus>,
    /// A `LIKE` pattern (already escaped with `\`) matched against the
    /// normalised address.
    pub email_like: Option<String>,
    /// `created_at >= created_from`.
    pub created_from: Option<DateTime<Utc>>,
    /// `created_at < created_before`.
    pub created_before: Option<DateTime<Utc>>,
    /// The keyset cursor: only ids below this one (the last id of the
    /// previous page).
    pub before_id: Option<Uuid>,
    pub limit: i64,
}

impl Tx {
    /// One page of subscribers matching `q`, by id descending.
    ///
    /// The inner query finds the page's ids by walking one index in id
    /// order — the subscriptions index (list_id[, status], subscriber_id)
    /// or (status, subscriber_id) when the search names a list or a status,
    /// else the subscribers' own — and stops at the limit; the outer one
    /// fetches those rows. Without a list, one subscriber can hold the same
    /// status on several lists, hence the GROUP BY, which the index order
    /// makes cheap.
    pub async fn search_subscribers(&mut self, q: &SubscriberSearch) -> Result<Vec<SubscriberRow>> {
        let rows = on_backend!(self, c => {
            let mut b = QueryBuilder::new(
                "SELECT o.id, o.email, o.email_norm, o.name, o.attributes, o.created_at, o.updated_at
                 FROM subscribers o WHERE o.id IN (",
            );
            let (key, grouped) = match (q.list_id, q.status) {
                (Some(list_id), status) => {
                    b.push(
                        "SELECT m.subscriber_id FROM subscriptions m JOIN subscribers s ON s.id = m.subscriber_id
                         WHERE m.list_id = ",
                    )
                    .push_bind(list_id);
                    if let Some(status) = status {
                        b.push(" AND m.status = ").push_bind(status);
                    }
                    ("m.subscriber_id", false)
                }
                (None, Some(status)) => {
                    b.push(
                        "SELECT m.subscriber_id FROM subscriptions m JOIN subscribers s ON s.id = m.subscriber_id
                         JOIN lists l ON l.id = m.list_id
                         WHERE l.deleted_at IS NULL AND m.status = ",
                    )
                    .push_bind(status);
                    ("m.subscriber_id", true)
                }
                (None, None) => {
                    b.push("SELECT s.id FROM subscribers s WHERE 1 = 1");
                    ("s.id", false)
                }
            };
            if let Some(before) = q.before_id {
                b.push(format_args!(" AND {key} < ")).push_bind(before);
            }
            if let Some(pattern) = &q.email_like {
                b.push(" AND s.email_norm LIKE ").push_bind(pattern.clone()).push(" ESCAPE '\\'");
            }
            if let Some(from) = q.created_from {
                b.push(" AND s.created_at >= ").push_bind(from);
            }
            if let Some(before) = q.created_before {
                b.push(" AND s.created_at < ").push_bind(before);
            }
            if grouped {
                b.push(format_args!(" GROUP BY {key}"));
            }
            b.push(format_args!(" ORDER BY {key} DESC LIMIT ")).push_bind(q.limit);
            b.push(") ORDER BY o.id DESC");
            b.build_query_as().fetch_all(c).await?
        });
        Ok(rows)
    }

    /// Every subscription (to lists not deleted) of these subscribers, in
    /// one query.
    pub async fn subscriptions_of(&mut self, subscriber_ids: &[Uuid]) -> Result<Vec<SubscriptionRow>> {
        self.fetch_rows(
            Statement::new(
                "SELECT s.subscriber_id, s.list_id, l.slug AS list_slug, l.name AS list_name, s.status,
                        s.created_at, s.updated_at, s.confirmed_at, s.last_confirmation_sent_at
                 FROM subscriptions s JOIN lists l ON l.id = s.list_id
                 WHERE l.deleted_at IS NULL AND s.subscriber_id {in_set} ORDER BY l.name, l.slug",
            )
            .rows(Rows::new().uuid("id", subscriber_ids.iter().copied()))
            .unprepared(),
        )
        .await
    }

    /// Confirmed subscriptions per list id, for every list not deleted.
    /// One count per list, each a range of the (list_id, status, …) index:
    /// grouping the whole table instead sorts every subscription.
    pub async fn confirmed_counts(&mut self) -> Result<Vec<(Uuid, i64)>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT l.id, (SELECT COUNT(*) FROM subscriptions m WHERE m.list_id = l.id AND m.status = 'confirmed')
             FROM lists l WHERE l.deleted_at IS NULL",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }
}
