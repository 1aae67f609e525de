//! The public archive's reads: sent updates that went to at least one list
//! with `archive` on (and not deleted). Only what the archive may show is
//! selected: never deliveries, subscribers or tokens.

use super::{Result, Tx, on_backend};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One archived update, without its body (for listings).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchivedUpdateRow {
    pub id: Uuid,
    pub subject: String,
    /// When sending finished: the archive's date and sort key.
    pub finished_at: DateTime<Utc>,
}

/// One archived update with its markdown body.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArchivedUpdateBody {
    pub id: Uuid,
    pub subject: String,
    pub body_markdown: String,
    pub finished_at: DateTime<Utc>,
}

impl Tx {
    /// Archived updates, newest first, strictly before the keyset cursor
    /// `(finished_at, id)` when one is given.
    pub async fn archived_updates(
        &mut self,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<ArchivedUpdateRow>> {
        let (before_at, before_id) = before.unzip();
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT u.id, u.subject, u.finished_at FROM updates u
             WHERE u.status = 'sent' AND u.finished_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM update_lists ul JOIN lists l ON l.id = ul.list_id
                           WHERE ul.update_id = u.id AND l.archive AND l.deleted_at IS NULL)
               AND ($1 IS NULL OR u.finished_at < $1 OR (u.finished_at = $1 AND u.id < $2))
             ORDER BY u.finished_at DESC, u.id DESC LIMIT $3",
        )
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// One update, if it is in the archive.
    pub async fn archived_update(&mut self, id: Uuid) -> Result<Option<ArchivedUpdateBody>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT u.id, u.subject, u.body_markdown, u.finished_at FROM updates u
             WHERE u.id = $1 AND u.status = 'sent' AND u.finished_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM update_lists ul JOIN lists l ON l.id = ul.list_id
                           WHERE ul.update_id = u.id AND l.archive AND l.deleted_at IS NULL)",
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Names of the archived lists an update went to (lists with the
    /// archive off are not named in public).
    pub async fn archived_list_names(&mut self, update_id: Uuid) -> Result<Vec<String>> {
        let names = on_backend!(self, c => sqlx::query_scalar(
            "SELECT l.name FROM update_lists ul JOIN lists l ON l.id = ul.list_id
             WHERE ul.update_id = $1 AND l.archive AND l.deleted_at IS NULL ORDER BY l.name, l.slug",
        )
        .bind(update_id)
        .fetch_all(c)
        .await?);
        Ok(names)
    }
}
