//! Updates (campaigns) and the lists each goes to.

use super::{Result, Tx, execute, on_backend};
use crate::domain::{UpdateEvent, UpdateMove, UpdateStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UpdateRow {
    pub id: Uuid,
    pub subject: String,
    pub body_markdown: String,
    pub status: UpdateStatus,
    pub send_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A list an update goes to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UpdateListRow {
    pub list_id: Uuid,
    pub slug: String,
    pub name: String,
}

impl Tx {
    pub async fn insert_update(&mut self, u: &UpdateRow) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO updates (id, subject, body_markdown, status, send_at, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(u.id)
            .bind(&u.subject)
            .bind(&u.body_markdown)
            .bind(u.status)
            .bind(u.send_at)
            .bind(&u.created_by)
            .bind(u.created_at)
            .bind(u.updated_at)
        );
        Ok(())
    }

    /// Replaces the update's lists.
    pub async fn set_update_lists(&mut self, update_id: Uuid, list_ids: &[Uuid]) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM update_lists WHERE update_id = $1").bind(update_id));
        for list_id in list_ids {
            execute!(
                self,
                sqlx::query("INSERT INTO update_lists (update_id, list_id) VALUES ($1, $2)")
                    .bind(update_id)
                    .bind(list_id)
            );
        }
        Ok(())
    }

    pub async fn update_by_id(&mut self, id: Uuid) -> Result<Option<UpdateRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, subject, body_markdown, status, send_at, created_by, created_at, updated_at, started_at, finished_at
             FROM updates WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Newest first.
    pub async fn recent_updates(&mut self, limit: i64) -> Result<Vec<UpdateRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, subject, body_markdown, status, send_at, created_by, created_at, updated_at, started_at, finished_at
             FROM updates ORDER BY created_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn update_lists(&mut self, update_id: Uuid) -> Result<Vec<UpdateListRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT l.id AS list_id, l.slug, l.name FROM update_lists ul JOIN lists l ON l.id = ul.list_id
             WHERE ul.update_id = $1 ORDER BY l.slug",
        )
        .bind(update_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn edit_update(
        &mut self,
        id: Uuid,
        subject: &str,
        body_markdown: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        execute!(
            self,
            sqlx::query("UPDATE updates SET subject = $2, body_markdown = $3, updated_at = $4 WHERE id = $1")
                .bind(id)
                .bind(subject)
                .bind(body_markdown)
                .bind(now)
        );
        Ok(())
    }

    /// Carries out `event` on an update as the lifecycle plans it
    /// ([`UpdateMove::plan`]); `false` if the update's status does not
    /// allow it, or changed meanwhile (so two organisers pressing "send"
    /// start it once).
    pub async fn transition_update(
        &mut self,
        id: Uuid,
        event: UpdateEvent,
        send_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(current) = self.update_by_id(id).await? else { return Ok(false) };
        let Some(step) = UpdateMove::plan(current.status, current.started_at, event, now) else { return Ok(false) };
        let changed = execute!(
            self,
            sqlx::query(
                "UPDATE updates SET status = $3, send_at = $4, started_at = $5, finished_at = $6, updated_at = $7
                 WHERE id = $1 AND status = $2",
            )
            .bind(id)
            .bind(step.from)
            .bind(step.to)
            .bind(send_at)
            .bind(step.started_at)
            .bind(step.finished_at)
            .bind(now)
        );
        Ok(changed == 1)
    }

    pub async fn delete_update(&mut self, id: Uuid) -> Result<bool> {
        let n = execute!(self, sqlx::query("DELETE FROM updates WHERE id = $1 AND status = 'draft'").bind(id));
        Ok(n == 1)
    }

    /// Scheduled updates whose time has come.
    pub async fn due_updates(&mut self, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        let ids = on_backend!(self, c => sqlx::query_scalar(
            "SELECT id FROM updates WHERE status = 'scheduled' AND send_at <= $1 ORDER BY send_at",
        )
        .bind(now)
        .fetch_all(c)
        .await?);
        Ok(ids)
    }

    pub async fn updates_with_status(&mut self, status: UpdateStatus) -> Result<Vec<Uuid>> {
        let ids = on_backend!(self, c => sqlx::query_scalar("SELECT id FROM updates WHERE status = $1 ORDER BY started_at, id")
            .bind(status)
            .fetch_all(c)
            .await?);
        Ok(ids)
    }
}
