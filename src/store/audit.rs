//! The audit log (every organiser action) and the rights-request log.

use super::{Result, Tx, execute, on_backend};
use crate::domain::{RightsAction, RightsKind, RightsStatus};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One audit entry, as written and as read back.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub actor_label: String,
    pub action: String,
    pub target: String,
    pub status: i32,
    pub ip: Option<String>,
    pub detail: String,
}

/// Filters for reading the audit log; empty fields match everything.
/// Text filters match anywhere in the field, case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset: entries older than this id (pages run newest first).
    pub before: Option<Uuid>,
}

/// A data-protection rights request.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct RightsRequestRow {
    pub id: Uuid,
    #[schema(inline)]
    pub kind: RightsKind,
    pub subject: String,
    pub subscriber_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub extended_due_at: Option<DateTime<Utc>>,
    pub extension_reason: Option<String>,
    #[schema(inline)]
    pub status: RightsStatus,
    pub outcome: String,
    pub notes: String,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while the clock is stopped (Data (Use and Access) Act 2025).
    pub paused_at: Option<DateTime<Utc>>,
    /// Why the clock is stopped now.
    pub pause_reason: Option<String>,
    /// Seconds the clock was stopped in earlier pauses, now resumed.
    pub paused_seconds: i64,
    /// A complaint: when its acknowledgement is due (30 days after receipt).
    pub acknowledge_due_at: Option<DateTime<Utc>>,
    /// A complaint: when it was acknowledged.
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// One change to a rights request: who, when, what and why.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct RightsEventRow {
    pub id: Uuid,
    pub request_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// `logged`, `paused`, `resumed`, `extended`, `acknowledged`, `noted`,
    /// `completed` or `refused`.
    #[schema(inline)]
    pub action: RightsAction,
    /// The reason, outcome or note given with it.
    pub reason: String,
    /// `organiser:ID`, `api-token:ID`, `supporter`…
    pub actor: String,
    /// The organiser's address or the token's name at the time.
    pub actor_label: String,
}

/// Escapes `%`, `_` and `\` so user text is matched literally by LIKE.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{}%", escaped.to_lowercase())
}

impl Tx {
    pub async fn insert_audit(&mut self, row: &AuditRow) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO audit_log (id, occurred_at, actor, actor_label, action, target, status, ip, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(row.id)
            .bind(row.occurred_at)
            .bind(&row.actor)
            .bind(&row.actor_label)
            .bind(&row.action)
            .bind(&row.target)
            .bind(row.status)
            .bind(&row.ip)
            .bind(&row.detail)
        );
        Ok(())
    }

    /// Up to `limit` entries matching `f`, newest first.
    pub async fn audit_page(&mut self, f: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>> {
        let actor = f.actor.as_deref().map(like_pattern);
        let action = f.action.as_deref().map(like_pattern);
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, occurred_at, actor, actor_label, action, target, status, ip, detail FROM audit_log
             WHERE ($1 IS NULL OR LOWER(actor) LIKE $1 ESCAPE '\\' OR LOWER(actor_label) LIKE $1 ESCAPE '\\')
               AND ($2 IS NULL OR LOWER(action) LIKE $2 ESCAPE '\\' OR LOWER(target) LIKE $2 ESCAPE '\\')
               AND ($3 IS NULL OR occurred_at >= $3)
               AND ($4 IS NULL OR occurred_at < $4)
               AND ($5 IS NULL OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(actor)
        .bind(action)
        .bind(f.from)
        .bind(f.until)
        .bind(f.before)
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn insert_rights_request(&mut self, r: &RightsRequestRow) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO rights_requests (id, kind, subject, subscriber_id, received_at, due_at, extended_due_at,
                                          extension_reason, status, outcome, notes, closed_at, created_by,
                                          created_at, updated_at, paused_at, pause_reason, paused_seconds,
                                          acknowledge_due_at, acknowledged_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            )
            .bind(r.id)
            .bind(r.kind)
            .bind(&r.subject)
            .bind(r.subscriber_id)
            .bind(r.received_at)
            .bind(r.due_at)
            .bind(r.extended_due_at)
            .bind(&r.extension_reason)
            .bind(r.status)
            .bind(&r.outcome)
            .bind(&r.notes)
            .bind(r.closed_at)
            .bind(&r.created_by)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.paused_at)
            .bind(&r.pause_reason)
            .bind(r.paused_seconds)
            .bind(r.acknowledge_due_at)
            .bind(r.acknowledged_at)
        );
        Ok(())
    }

    /// Writes back every changeable field of a request.
    pub async fn save_rights_request(&mut self, r: &RightsRequestRow) -> Result<()> {
        execute!(self, sqlx::query(
            "UPDATE rights_requests SET subject = $2, subscriber_id = $3, extended_due_at = $4, extension_reason = $5,
                                        status = $6, outcome = $7, notes = $8, closed_at = $9, updated_at = $10,
                                        paused_at = $11, pause_reason = $12, paused_seconds = $13,
                                        acknowledged_at = $14
             WHERE id = $1",
        )
        .bind(r.id)
        .bind(&r.subject)
        .bind(r.subscriber_id)
        .bind(r.extended_due_at)
        .bind(&r.extension_reason)
        .bind(r.status)
        .bind(&r.outcome)
        .bind(&r.notes)
        .bind(r.closed_at)
        .bind(r.updated_at)
        .bind(r.paused_at)
        .bind(&r.pause_reason)
        .bind(r.paused_seconds)
        .bind(r.acknowledged_at));
        Ok(())
    }

    pub async fn rights_request(&mut self, id: Uuid) -> Result<Option<RightsRequestRow>> {
        let row = on_backend!(self, c => sqlx::query_as("SELECT * FROM rights_requests WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?);
        Ok(row)
    }

    /// Open requests first (soonest due first), then closed ones, newest
    /// first; at most `limit`.
    pub async fn rights_requests(&mut self, status: Option<RightsStatus>, limit: i64) -> Result<Vec<RightsRequestRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT * FROM rights_requests WHERE ($1 IS NULL OR status = $1)
             ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END,
                      CASE WHEN status = 'open' THEN COALESCE(extended_due_at, due_at) END,
                      received_at DESC
             LIMIT $2",
        )
        .bind(status)
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Appends one change to a request's history.
    pub async fn insert_rights_event(&mut self, e: &RightsEventRow) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "INSERT INTO rights_request_events (id, request_id, occurred_at, action, reason, actor, actor_label)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.id)
            .bind(e.request_id)
            .bind(e.occurred_at)
            .bind(e.action)
            .bind(&e.reason)
            .bind(&e.actor)
            .bind(&e.actor_label)
        );
        Ok(())
    }

    /// A request's history, oldest first.
    pub async fn rights_events(&mut self, request_id: Uuid) -> Result<Vec<RightsEventRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT id, request_id, occurred_at, action, reason, actor, actor_label FROM rights_request_events
             WHERE request_id = $1 ORDER BY occurred_at, id",
        )
        .bind(request_id)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Takes the lease on a periodic job if it is due and nobody holds it.
    pub async fn claim_maintenance_job(
        &mut self,
        job: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<bool> {
        execute!(self, sqlx::query(
            "INSERT INTO maintenance_jobs (job, next_run_at) VALUES ($1, $2) ON CONFLICT (job) DO NOTHING",
        )
        .bind(job)
        .bind(now));
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE maintenance_jobs SET lease_until = $3
             WHERE job = $1 AND next_run_at <= $2 AND (lease_until IS NULL OR lease_until <= $2)",
            )
            .bind(job)
            .bind(now)
            .bind(lease_until)
        );
        Ok(n == 1)
    }

    pub async fn finish_maintenance_job(&mut self, job: &str, next_run_at: DateTime<Utc>) -> Result<()> {
        execute!(
            self,
            sqlx::query("UPDATE maintenance_jobs SET next_run_at = $2, lease_until = NULL WHERE job = $1",)
                .bind(job)
                .bind(next_run_at)
        );
        Ok(())
    }
}
