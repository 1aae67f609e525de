//! The figures that let a send stop itself (issue 16 §7): per update, the
//! copies attempted and the complaints and hard bounces tied to them, the
//! same counts as of the last resume after an automatic pause, and the
//! automatic pause itself. Every read and write here is one row of
//! `updates` by primary key; the aggregate for `/metrics` reads the recent
//! updates only.

use super::{AlertRow, Result, Tx, execute, on_backend};
use crate::domain::{AlertKind, UpdateEvent, UpdateStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One update's guard figures.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SendCounts {
    pub status: UpdateStatus,
    pub subject: String,
    /// Copies handed to the relay (not counting ones given back or retried).
    pub attempted: i64,
    /// Spam complaints tied to a copy of this update.
    pub complaints: i64,
    /// Hard bounces tied to a copy of this update.
    pub hard_bounces: i64,
    /// `attempted`, `complaints`, `hard_bounces` when an organiser last
    /// resumed the send after it paused itself (0 before any).
    pub guard_attempted: i64,
    pub guard_complaints: i64,
    pub guard_hard_bounces: i64,
    /// Why the send paused itself, while it stays paused.
    pub auto_paused_reason: Option<String>,
}

/// Sums over the updates started recently, for `/metrics`: no per-person
/// and no per-update figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct SendQuality {
    pub attempted: i64,
    pub complaints: i64,
    pub hard_bounces: i64,
    /// Updates paused by the guard and not yet resumed.
    pub auto_paused: i64,
}

/// The columns of [`SendCounts`], for `concat!`.
macro_rules! counts {
    () => {
        "status, subject, attempted, complaints, hard_bounces, guard_attempted, guard_complaints, guard_hard_bounces,
         auto_paused_reason"
    };
}

impl Tx {
    /// The guard figures of one update.
    pub async fn send_counts(&mut self, update_id: Uuid) -> Result<Option<SendCounts>> {
        let row = on_backend!(self, c => sqlx::query_as(concat!("SELECT ", counts!(), " FROM updates WHERE id = $1"))
            .bind(update_id)
            .fetch_optional(c)
            .await?);
        Ok(row)
    }

    /// Adds `n` (possibly negative: copies given back) to the attempts.
    pub async fn add_attempts(&mut self, update_id: Uuid, n: i64) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        execute!(self, sqlx::query(
            "UPDATE updates SET attempted = CASE WHEN attempted + $2 > 0 THEN attempted + $2 ELSE 0 END WHERE id = $1",
        )
        .bind(update_id)
        .bind(n));
        Ok(())
    }

    /// Counts one complaint or hard bounce against the update, returning
    /// its figures after.
    pub async fn count_guard_event(
        &mut self,
        update_id: Uuid,
        complaints: i64,
        hard_bounces: i64,
    ) -> Result<Option<SendCounts>> {
        let row = on_backend!(self, c => sqlx::query_as(concat!(
            "UPDATE updates SET complaints = complaints + $2, hard_bounces = hard_bounces + $3 WHERE id = $1 RETURNING ",
            counts!()
        ))
            .bind(update_id)
            .bind(complaints)
            .bind(hard_bounces)
            .fetch_optional(c)
            .await?);
        Ok(row)
    }

    /// Pauses a send that is sending (the lifecycle's pause, which stamps
    /// nothing), saying why; `false` if it was not sending.
    pub async fn auto_pause(&mut self, update_id: Uuid, reason: &str, now: DateTime<Utc>) -> Result<bool> {
        let from = UpdateStatus::Sending;
        let Some(to) = from.on(UpdateEvent::Pause) else { return Ok(false) };
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE updates SET status = $5, auto_paused_reason = $2, updated_at = $3
                 WHERE id = $1 AND status = $4",
            )
            .bind(update_id)
            .bind(reason)
            .bind(now)
            .bind(from)
            .bind(to)
        );
        Ok(n == 1)
    }

    /// On resuming a send that paused itself: the thresholds count again
    /// from here, and the reason is cleared. `false` if it had not paused
    /// itself.
    pub async fn rebase_send_guard(&mut self, update_id: Uuid) -> Result<bool> {
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE updates SET guard_attempted = attempted, guard_complaints = complaints,
                                guard_hard_bounces = hard_bounces, auto_paused_reason = NULL
             WHERE id = $1 AND auto_paused_reason IS NOT NULL",
            )
            .bind(update_id)
        );
        Ok(n == 1)
    }

    /// Sums over the updates started since `since`.
    pub async fn send_quality(&mut self, since: DateTime<Utc>) -> Result<SendQuality> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(attempted), 0) AS BIGINT) AS attempted,
                    CAST(COALESCE(SUM(complaints), 0) AS BIGINT) AS complaints,
                    CAST(COALESCE(SUM(hard_bounces), 0) AS BIGINT) AS hard_bounces,
                    CAST(COALESCE(SUM(CASE WHEN status = 'paused' AND auto_paused_reason IS NOT NULL THEN 1 ELSE 0 END), 0)
                         AS BIGINT) AS auto_paused
             FROM updates WHERE started_at >= $1",
        )
        .bind(since)
        .fetch_one(c)
        .await?);
        Ok(row)
    }

    /// Every alert of `kind` about `subject`, dismissed or not, newest first
    /// (an update's history of automatic pauses).
    pub async fn alerts_about(&mut self, kind: AlertKind, subject: &str) -> Result<Vec<AlertRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, kind, subject, title, detail, link, occurrences, first_seen_at, last_seen_at
             FROM operator_alerts WHERE kind = $1 AND subject = $2 ORDER BY first_seen_at DESC, id DESC",
        )
        .bind(kind)
        .bind(subject)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Dismisses the open alerts of `kind` about `subject`.
    pub async fn dismiss_alerts_about(
        &mut self,
        kind: AlertKind,
        subject: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "UPDATE operator_alerts SET dismissed_at = $3, dismissed_by = $4
             WHERE kind = $1 AND subject = $2 AND dismissed_at IS NULL",
            )
            .bind(kind)
            .bind(subject)
            .bind(now)
            .bind(by)
        );
        Ok(())
    }
}
