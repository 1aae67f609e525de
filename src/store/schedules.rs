//! Recurring schedules, the lists each sends to, the record of ticks that
//! ran, and what each digest has collected.
//!
//! A worker claims a tick with [`Tx::claim_schedule_tick`], a
//! compare-and-set on `next_run_at`, inside the transaction that then
//! creates and starts the update. On PostgreSQL a second worker's `UPDATE`
//! waits for the first to commit and then finds `next_run_at` changed; on
//! SQLite write transactions are serial. Either way one tick runs once.

use super::{ListRow, Result, Tx, UpdateRow, execute, on_backend};
use crate::domain::ScheduleKind;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ScheduleRow {
    pub id: Uuid,
    pub name: String,
    /// As the organiser typed it.
    pub cron: String,
    /// IANA zone name.
    pub timezone: String,
    pub kind: ScheduleKind,
    pub subject: String,
    pub body_markdown: String,
    pub enabled: bool,
    /// The next tick (UTC); `None` while disabled or when none is left.
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One tick that ran.
#[derive(Debug, Clone)]
pub struct ScheduleRun {
    pub schedule_id: Uuid,
    /// The tick claimed (the `next_run_at` it replaced).
    pub due_at: DateTime<Utc>,
    pub ran_at: DateTime<Utc>,
    /// The update it created; `None` when there was nothing to send.
    pub update_id: Option<Uuid>,
}

impl Tx {
    pub async fn insert_schedule(&mut self, s: &ScheduleRow) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO schedules (id, name, cron, timezone, kind, subject, body_markdown, enabled, next_run_at,
                                    last_run_at, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(s.id)
            .bind(&s.name)
            .bind(&s.cron)
            .bind(&s.timezone)
            .bind(s.kind)
            .bind(&s.subject)
            .bind(&s.body_markdown)
            .bind(s.enabled)
            .bind(s.next_run_at)
            .bind(s.last_run_at)
            .bind(&s.created_by)
            .bind(s.created_at)
            .bind(s.updated_at)
        );
        Ok(())
    }

    /// Writes every editable column of `s` (not `last_run_at` or
    /// `created_*`, which only the worker and creation set).
    pub async fn edit_schedule(&mut self, s: &ScheduleRow) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "UPDATE schedules SET name = $2, cron = $3, timezone = $4, kind = $5, subject = $6, body_markdown = $7,
                 enabled = $8, next_run_at = $9, updated_at = $10
             WHERE id = $1",
            )
            .bind(s.id)
            .bind(&s.name)
            .bind(&s.cron)
            .bind(&s.timezone)
            .bind(s.kind)
            .bind(&s.subject)
            .bind(&s.body_markdown)
            .bind(s.enabled)
            .bind(s.next_run_at)
            .bind(s.updated_at)
        );
        Ok(())
    }

    /// Replaces the schedule's lists.
    pub async fn set_schedule_lists(&mut self, schedule_id: Uuid, list_ids: &[Uuid]) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM schedule_lists WHERE schedule_id = $1").bind(schedule_id));
        for list_id in list_ids {
            execute!(
                self,
                sqlx::query("INSERT INTO schedule_lists (schedule_id, list_id) VALUES ($1, $2)")
                    .bind(schedule_id)
                    .bind(list_id)
            );
        }
        Ok(())
    }

    pub async fn schedule_by_id(&mut self, id: Uuid) -> Result<Option<ScheduleRow>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT id, name, cron, timezone, kind, subject, body_markdown, enabled, next_run_at, last_run_at,
                    created_by, created_at, updated_at
             FROM schedules WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Every schedule, by name.
    pub async fn schedules(&mut self) -> Result<Vec<ScheduleRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, name, cron, timezone, kind, subject, body_markdown, enabled, next_run_at, last_run_at,
                    created_by, created_at, updated_at
             FROM schedules ORDER BY name, id",
        )
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// The schedule's lists that still exist (a deleted list gets no mail).
    pub async fn schedule_lists(&mut self, schedule_id: Uuid) -> Result<Vec<ListRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT l.id, l.slug, l.name, l.description, l.frequency, l.public, l.archive, l.created_at, l.updated_at
             FROM schedule_lists sl JOIN lists l ON l.id = sl.list_id
             WHERE sl.schedule_id = $1 AND l.deleted_at IS NULL ORDER BY l.slug",
        )
        .bind(schedule_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn delete_schedule(&mut self, id: Uuid) -> Result<bool> {
        let n = execute!(self, sqlx::query("DELETE FROM schedules WHERE id = $1").bind(id));
        Ok(n == 1)
    }

    /// Enabled schedules whose tick has come, oldest tick first.
    pub async fn due_schedules(&mut self, now: DateTime<Utc>) -> Result<Vec<Uuid>> {
        let ids = on_backend!(self, c => sqlx::query_scalar(
            "SELECT id FROM schedules WHERE enabled AND next_run_at <= $1 ORDER BY next_run_at, id",
        )
        .bind(now)
        .fetch_all(c)
        .await?);
        Ok(ids)
    }

    /// The earliest tick of any enabled schedule, so the worker knows how
    /// long it may sleep.
    pub async fn earliest_schedule_tick(&mut self) -> Result<Option<DateTime<Utc>>> {
        let at = on_backend!(self, c => sqlx::query_scalar(
            "SELECT next_run_at FROM schedules WHERE enabled AND next_run_at IS NOT NULL
             ORDER BY next_run_at LIMIT 1",
        )
        .fetch_optional(c)
        .await?);
        Ok(at)
    }

    /// Claims the tick `due_at` of a schedule by moving `next_run_at` on to
    /// `next`, only if it still equals `due_at` (compare-and-set). `false`
    /// means another worker ran this tick, or an organiser changed the
    /// schedule meanwhile: do nothing.
    pub async fn claim_schedule_tick(
        &mut self,
        id: Uuid,
        due_at: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE schedules SET next_run_at = $3, last_run_at = $4, updated_at = $4
             WHERE id = $1 AND enabled AND next_run_at = $2",
            )
            .bind(id)
            .bind(due_at)
            .bind(next)
            .bind(now)
        );
        Ok(n == 1)
    }

    pub async fn record_schedule_run(&mut self, run: &ScheduleRun) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO schedule_runs (id, schedule_id, due_at, ran_at, update_id) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(run.schedule_id)
            .bind(run.due_at)
            .bind(run.ran_at)
            .bind(run.update_id)
        );
        Ok(())
    }

    /// What a digest collects: updates that finished sending after `since`
    /// to any of the schedule's lists and that this digest has not collected
    /// before, oldest first, leaving out every schedule's own output (so
    /// digests never contain digests).
    pub async fn updates_for_digest(&mut self, schedule_id: Uuid, since: DateTime<Utc>) -> Result<Vec<UpdateRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT u.id, u.subject, u.body_markdown, u.status, u.send_at, u.created_by, u.created_at, u.updated_at,
                    u.started_at, u.finished_at
             FROM updates u
             WHERE u.status = 'sent' AND u.finished_at > $2
               AND EXISTS (SELECT 1 FROM update_lists ul JOIN schedule_lists sl ON sl.list_id = ul.list_id
                           WHERE ul.update_id = u.id AND sl.schedule_id = $1)
               AND NOT EXISTS (SELECT 1 FROM schedule_runs r WHERE r.update_id = u.id)
               AND NOT EXISTS (SELECT 1 FROM digest_entries d WHERE d.schedule_id = $1 AND d.update_id = u.id)
             ORDER BY u.finished_at, u.id",
        )
        .bind(schedule_id)
        .bind(since)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Marks updates as collected by a digest schedule.
    pub async fn record_digest_entries(&mut self, schedule_id: Uuid, update_ids: &[Uuid]) -> Result<()> {
        for update_id in update_ids {
            execute!(
                self,
                sqlx::query("INSERT INTO digest_entries (schedule_id, update_id) VALUES ($1, $2)")
                    .bind(schedule_id)
                    .bind(update_id)
            );
        }
        Ok(())
    }
}
