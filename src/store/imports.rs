//! CSV imports: the job rows (definition, checkpoint, counts, lease), the
//! stored upload in chunks, the per-row error report, and the set-based
//! statements one batch of rows is written with.
//!
//! A batch travels to the database as whole columns bound to a few
//! parameters (typed arrays through `UNNEST` and `= ANY` on PostgreSQL; one
//! JSON array through `json_each` on SQLite, ids as 32 hex digits through
//! `unhex`), so each statement is fixed text whatever the batch size, and a
//! batch of thousands of rows costs a handful of statements, not thousands.

use super::script::{PgScript, SqliteScript};
use super::{Result, Tx, json_text, on_backend};
use crate::domain::{BasisKind, ConsentKind, ImportState, SubscriptionStatus};
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use uuid::Uuid;

/// One import job as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    pub id: Uuid,
    /// `upload` (stored file, run by a worker) or `cli` (run by `tidings import`).
    pub source: String,
    pub filename: String,
    /// JSON array of list ids.
    pub lists: String,
    /// The status people are added with: `confirmed` or `pending`.
    pub mode: SubscriptionStatus,
    pub basis: Option<String>,
    /// `consented_elsewhere`, `backer_opted_in`, `soft_opt_in` or `unspecified`.
    pub basis_kind: BasisKind,
    /// JSON column mapping (see `services::imports::Columns`).
    pub columns: String,
    pub state: ImportState,
    pub actor: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub total_bytes: i64,
    pub bytes_done: i64,
    pub next_line: i64,
    pub rows_done: i64,
    pub added: i64,
    pub updated: i64,
    pub skipped: i64,
    pub suppressed: i64,
    pub invalid: i64,
    /// Why the import failed as a whole.
    pub error: Option<String>,
    pub attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

const IMPORT_COLUMNS: &str = "id, source, filename, lists, mode, basis, basis_kind, columns, state, actor, ip, user_agent, \
     total_bytes, bytes_done, next_line, rows_done, added, updated, skipped, suppressed, invalid, error, attempts, \
     lease_owner, lease_until, created_at, updated_at, started_at, finished_at";

/// How an import ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportEnd {
    Done,
    Failed,
}

impl From<ImportEnd> for ImportState {
    fn from(end: ImportEnd) -> Self {
        match end {
            ImportEnd::Done => ImportState::Done,
            ImportEnd::Failed => ImportState::Failed,
        }
    }
}

/// A new import job.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub id: Uuid,
    pub source: &'static str,
    pub filename: String,
    pub lists: String,
    pub mode: SubscriptionStatus,
    pub basis: Option<String>,
    pub basis_kind: BasisKind,
    pub columns: String,
    pub state: ImportState,
    pub actor: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub total_bytes: i64,
    pub next_line: i64,
    pub bytes_done: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
}

/// A row the import did not carry out as asked.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ImportErrorRow {
    pub line: i64,
    /// `skipped`, `suppressed` or `invalid`.
    pub outcome: String,
    /// A stable machine-readable reason (`invalid_email`, `duplicate`, …).
    pub code: String,
    pub message: String,
}

/// What one batch adds to the counts, and where it leaves the checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchProgress {
    pub rows: i64,
    pub added: i64,
    pub updated: i64,
    pub skipped: i64,
    pub suppressed: i64,
    pub invalid: i64,
    /// The checkpoint before the batch (it must still be there: a second
    /// worker cannot apply the same batch twice).
    pub from_offset: i64,
    pub to_offset: i64,
    pub next_line: i64,
}

/// A subscriber an import row matched.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportedSubscriber {
    pub id: Uuid,
    pub email: String,
    pub email_norm: String,
    pub name: String,
    pub attributes: String,
    pub last_import_id: Option<Uuid>,
}

/// A subscription of a subscriber an import row matched.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportedSubscription {
    pub subscriber_id: Uuid,
    pub list_id: Uuid,
    pub status: SubscriptionStatus,
}

/// The latest ledger entry of one subscriber on one list that starts or
/// ends mailing (see [`Tx::latest_decisions_among`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LatestDecision {
    pub subscriber_id: Uuid,
    pub list_id: Uuid,
    pub kind: ConsentKind,
}

/// A subscriber an import creates.
#[derive(Debug, Clone)]
pub struct NewImportedSubscriber {
    pub id: Uuid,
    pub email: String,
    pub email_norm: String,
    pub email_hash: String,
    pub name: String,
    pub attributes: String,
}

/// New name and attributes for a subscriber an import matched.
#[derive(Debug, Clone)]
pub struct ImportedChange {
    pub id: Uuid,
    pub name: String,
    pub attributes: String,
}

/// The parts of an `imported` ledger entry shared by a whole batch.
#[derive(Debug, Clone)]
pub struct ImportedEventTemplate {
    pub notice_version: Option<i64>,
    pub occurred_at: DateTime<Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub source: Option<String>,
    pub actor: String,
    pub detail: Option<String>,
    pub controller_name: Option<String>,
    pub controller_contact: Option<String>,
    pub basis_kind: Option<BasisKind>,
}

/// One `imported` entry: (event id, subscriber, list, statement shown).
pub type ImportedEvent = (Uuid, Uuid, Uuid, Option<Uuid>);

impl Tx {
    pub async fn insert_import(&mut self, i: &NewImport, now: DateTime<Utc>) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "INSERT INTO imports (id, source, filename, lists, mode, basis, columns, state, actor, ip, user_agent,
                                  total_bytes, bytes_done, next_line, lease_owner, lease_until, created_at, updated_at,
                                  started_at, basis_kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17,
                     CASE WHEN $8 = 'running' THEN $17 END, $18)",
        )
        .bind(i.id)
        .bind(i.source)
        .bind(&i.filename)
        .bind(&i.lists)
        .bind(i.mode)
        .bind(&i.basis)
        .bind(&i.columns)
        .bind(i.state)
        .bind(&i.actor)
        .bind(&i.ip)
        .bind(&i.user_agent)
        .bind(i.total_bytes)
        .bind(i.bytes_done)
        .bind(i.next_line)
        .bind(&i.lease_owner)
        .bind(i.lease_until)
        .bind(now)
        .bind(i.basis_kind)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Stores one piece of an upload that starts at byte `start_offset`.
    pub async fn add_import_chunk(
        &mut self,
        id: Uuid,
        start_offset: i64,
        data: &[u8],
        now: DateTime<Utc>,
    ) -> Result<()> {
        on_backend!(self, c => sqlx::query("INSERT INTO import_chunks (import_id, start_offset, data) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(start_offset)
            .bind(data)
            .execute(c)
            .await?
            .rows_affected());
        on_backend!(self, c => sqlx::query("UPDATE imports SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The upload is complete: the job is queued with what it imports
    /// into, on what terms, and its column mapping; rows start at byte
    /// `data_offset`, line `data_line`.
    #[expect(clippy::too_many_arguments, reason = "the whole definition of the import, set at once")]
    pub async fn queue_import(
        &mut self,
        id: Uuid,
        lists: &str,
        mode: SubscriptionStatus,
        basis: (Option<&str>, BasisKind),
        columns: &str,
        total_bytes: i64,
        data_offset: i64,
        data_line: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_backend!(self, c => sqlx::query(
            "UPDATE imports SET state = 'queued', lists = $2, mode = $3, basis = $4, columns = $5, total_bytes = $6,
                    bytes_done = $7, next_line = $8, updated_at = $9, basis_kind = $10
             WHERE id = $1 AND state = 'uploading'",
        )
        .bind(id)
        .bind(lists)
        .bind(mode)
        .bind(basis.0)
        .bind(columns)
        .bind(total_bytes)
        .bind(data_offset)
        .bind(data_line)
        .bind(now)
        .bind(basis.1)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Removes an import that never got going (an upload refused part-way).
    pub async fn delete_import(&mut self, id: Uuid) -> Result<()> {
        on_backend!(self, c => sqlx::query("DELETE FROM import_chunks WHERE import_id = $1")
            .bind(id)
            .execute(c)
            .await?
            .rows_affected());
        on_backend!(self, c => sqlx::query("DELETE FROM imports WHERE id = $1")
            .bind(id)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    pub async fn import_by_id(&mut self, id: Uuid) -> Result<Option<ImportRow>> {
        let row = on_backend!(self, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {IMPORT_COLUMNS} FROM imports WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// The newest imports first.
    pub async fn recent_imports(&mut self, limit: i64) -> Result<Vec<ImportRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {IMPORT_COLUMNS} FROM imports ORDER BY created_at DESC, id DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    /// Claims the oldest import that is queued, or running under a lease
    /// that has expired (its worker died), for `owner` until `lease_until`.
    pub async fn claim_import(
        &mut self,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ImportRow>> {
        let row = match self {
            // One writer (BEGIN IMMEDIATE): no row locks needed.
            Tx::Sqlite(t) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE imports SET state = 'running', lease_owner = $2, lease_until = $3, attempts = attempts + 1,
                        started_at = COALESCE(started_at, $1), updated_at = $1
                 WHERE id = (SELECT id FROM imports
                             WHERE state IN ('queued', 'running') AND (lease_until IS NULL OR lease_until <= $1)
                             ORDER BY created_at LIMIT 1)
                 RETURNING {IMPORT_COLUMNS}"
                )))
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .fetch_optional(&mut **t)
                .await?
            }
            Tx::Postgres(t) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "WITH picked AS (
                     SELECT id FROM imports
                     WHERE state IN ('queued', 'running') AND (lease_until IS NULL OR lease_until <= $1)
                     ORDER BY created_at LIMIT 1
                     FOR UPDATE SKIP LOCKED)
                 UPDATE imports SET state = 'running', lease_owner = $2, lease_until = $3,
                        attempts = imports.attempts + 1, started_at = COALESCE(imports.started_at, $1), updated_at = $1
                 FROM picked WHERE imports.id = picked.id
                 RETURNING {}",
                    IMPORT_COLUMNS.split(", ").map(|c| format!("imports.{c}")).collect::<Vec<_>>().join(", ")
                )))
                .bind(now)
                .bind(owner)
                .bind(lease_until)
                .fetch_optional(&mut **t)
                .await?
            }
        };
        Ok(row)
    }

    /// The stored piece of an upload that holds byte `offset`: its start and bytes.
    pub async fn import_chunk_at(&mut self, id: Uuid, offset: i64) -> Result<Option<(i64, Vec<u8>)>> {
        let row = on_backend!(self, c => sqlx::query_as(
            "SELECT start_offset, data FROM import_chunks WHERE import_id = $1 AND start_offset <= $2
             ORDER BY start_offset DESC LIMIT 1",
        )
        .bind(id)
        .bind(offset)
        .fetch_optional(c)
        .await?);
        Ok(row)
    }

    /// Moves the checkpoint past one batch and adds its counts, renewing
    /// the lease — only if `owner` still holds the lease and the checkpoint
    /// is where the batch began. `false` means another worker has taken
    /// over: the caller must roll back.
    pub async fn advance_import(
        &mut self,
        id: Uuid,
        owner: &str,
        p: &BatchProgress,
        lease_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_backend!(self, c => sqlx::query(
            "UPDATE imports SET bytes_done = $4, next_line = $5, rows_done = rows_done + $6, added = added + $7,
                    updated = updated + $8, skipped = skipped + $9, suppressed = suppressed + $10,
                    invalid = invalid + $11, lease_until = $12, updated_at = $13
             WHERE id = $1 AND lease_owner = $2 AND bytes_done = $3 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(p.from_offset)
        .bind(p.to_offset)
        .bind(p.next_line)
        .bind(p.rows)
        .bind(p.added)
        .bind(p.updated)
        .bind(p.skipped)
        .bind(p.suppressed)
        .bind(p.invalid)
        .bind(lease_until)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Ends an import (`done` or `failed`) and deletes its stored upload:
    /// the file holds personal data that is no longer needed.
    pub async fn finish_import(
        &mut self,
        id: Uuid,
        owner: Option<&str>,
        state: ImportEnd,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let n = on_backend!(self, c => sqlx::query(
            "UPDATE imports SET state = $3, error = $4, finished_at = $5, updated_at = $5, lease_owner = NULL,
                    lease_until = NULL
             WHERE id = $1 AND ($2 IS NULL OR lease_owner = $2) AND state NOT IN ('done', 'failed')",
        )
        .bind(id)
        .bind(owner)
        .bind(ImportState::from(state))
        .bind(error)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        on_backend!(self, c => sqlx::query("DELETE FROM import_chunks WHERE import_id = $1")
            .bind(id)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Gives a running import back (shutdown): another worker may continue
    /// it at once from its checkpoint.
    pub async fn release_import(&mut self, id: Uuid, owner: &str, now: DateTime<Utc>) -> Result<()> {
        on_backend!(self, c => sqlx::query(
            "UPDATE imports SET lease_owner = NULL, lease_until = NULL, updated_at = $3
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Fails uploads that stopped arriving before `before` (the client went
    /// away, or the server died mid-upload), deleting what was stored.
    pub async fn fail_stalled_uploads(&mut self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64> {
        let ids: Vec<Uuid> = on_backend!(self, c => sqlx::query_scalar(
            "UPDATE imports SET state = 'failed', error = 'the upload did not finish', finished_at = $2, updated_at = $2
             WHERE state = 'uploading' AND updated_at < $1 RETURNING id",
        )
        .bind(before)
        .bind(now)
        .fetch_all(c)
        .await?);
        for id in &ids {
            on_backend!(self, c => sqlx::query("DELETE FROM import_chunks WHERE import_id = $1")
                .bind(*id)
                .execute(c)
                .await?
                .rows_affected());
        }
        Ok(ids.len() as u64)
    }

    /// Up to `limit` row errors after line `after_line`, by line.
    pub async fn import_errors(&mut self, id: Uuid, after_line: i64, limit: i64) -> Result<Vec<ImportErrorRow>> {
        let rows = on_backend!(self, c => sqlx::query_as(
            "SELECT line, outcome, code, message FROM import_errors WHERE import_id = $1 AND line > $2
             ORDER BY line LIMIT $3",
        )
        .bind(id)
        .bind(after_line)
        .bind(limit)
        .fetch_all(c)
        .await?);
        Ok(rows)
    }

    pub async fn insert_import_errors(&mut self, id: Uuid, errors: &[ImportErrorRow]) -> Result<()> {
        if errors.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Sqlite(t) => sqlx::query(
                "INSERT INTO import_errors (import_id, line, outcome, code, message)
                 SELECT $1, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3 FROM json_each($2) j",
            )
            .bind(id)
            .bind(json_text(errors.iter().map(|e| (e.line, &e.outcome, &e.code, &e.message))))
            .execute(&mut **t)
            .await?
            .rows_affected(),
            Tx::Postgres(t) => sqlx::query(
                "INSERT INTO import_errors (import_id, line, outcome, code, message)
                 SELECT $1, u.line, u.outcome, u.code, u.message
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(line, outcome, code, message)",
            )
            .bind(id)
            .bind(errors.iter().map(|e| e.line).collect::<Vec<_>>())
            .bind(errors.iter().map(|e| e.outcome.clone()).collect::<Vec<_>>())
            .bind(errors.iter().map(|e| e.code.clone()).collect::<Vec<_>>())
            .bind(errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>())
            .execute(&mut **t)
            .await?
            .rows_affected(),
        };
        Ok(())
    }

    /// Which of these suppression hashes are on the suppression list.
    pub async fn suppressed_among(&mut self, hashes: &[String]) -> Result<HashSet<String>> {
        if hashes.is_empty() {
            return Ok(HashSet::new());
        }
        let found: Vec<String> = match self {
            Tx::Sqlite(t) => {
                sqlx::query_scalar(
                    "SELECT email_hash FROM suppressions WHERE email_hash IN (SELECT value FROM json_each($1))",
                )
                .bind(json_text(hashes.iter()))
                .fetch_all(&mut **t)
                .await?
            }
            Tx::Postgres(t) => {
                // Unprepared (why: `Store::dedicated_writer`).
                sqlx::query_scalar("SELECT email_hash FROM suppressions WHERE email_hash = ANY($1)")
                    .persistent(false)
                    .bind(hashes)
                    .fetch_all(&mut **t)
                    .await?
            }
        };
        Ok(found.into_iter().collect())
    }

    /// The subscribers with these normalised addresses.
    pub async fn subscribers_among(&mut self, emails_norm: &[String]) -> Result<Vec<ImportedSubscriber>> {
        if emails_norm.is_empty() {
            return Ok(Vec::new());
        }
        let rows = match self {
            Tx::Sqlite(t) => {
                sqlx::query_as(
                    "SELECT id, email, email_norm, name, attributes, last_import_id FROM subscribers
                 WHERE email_norm IN (SELECT value FROM json_each($1))",
                )
                .bind(json_text(emails_norm.iter()))
                .fetch_all(&mut **t)
                .await?
            }
            Tx::Postgres(t) => {
                // Unprepared (why: `Store::dedicated_writer`).
                sqlx::query_as(
                    "SELECT id, email, email_norm, name, attributes, last_import_id FROM subscribers
                 WHERE email_norm = ANY($1)",
                )
                .persistent(false)
                .bind(emails_norm)
                .fetch_all(&mut **t)
                .await?
            }
        };
        Ok(rows)
    }

    /// Every subscription of these subscribers.
    pub async fn subscriptions_among(&mut self, subscriber_ids: &[Uuid]) -> Result<Vec<ImportedSubscription>> {
        if subscriber_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = match self {
            Tx::Sqlite(t) => {
                sqlx::query_as(
                    "SELECT subscriber_id, list_id, status FROM subscriptions
                 WHERE subscriber_id IN (SELECT unhex(value) FROM json_each($1))",
                )
                .bind(json_text(subscriber_ids.iter().map(|id| id.simple())))
                .fetch_all(&mut **t)
                .await?
            }
            Tx::Postgres(t) => {
                sqlx::query_as("SELECT subscriber_id, list_id, status FROM subscriptions WHERE subscriber_id = ANY($1)")
                    .bind(subscriber_ids)
                    .fetch_all(&mut **t)
                    .await?
            }
        };
        Ok(rows)
    }

    /// For these subscribers, the latest ledger entry on each list that
    /// ends or starts mailing on the person's own word or the receiver's:
    /// `withdrawn`, `bounced` or `complained`, against `confirmed` or
    /// `resubscribed` (the person's own confirmation). A list whose answer
    /// is one of the first three was withdrawn and not taken back by the
    /// person since, whatever its status says now (an anonymous subscribe
    /// puts it back to pending). One query for a whole batch; the ledger's
    /// index by subscriber finds the rows.
    pub async fn latest_decisions_among(&mut self, subscriber_ids: &[Uuid]) -> Result<Vec<LatestDecision>> {
        if subscriber_ids.is_empty() {
            return Ok(Vec::new());
        }
        // Ordered oldest first, so the last row per (subscriber, list) wins.
        let rows: Vec<LatestDecision> = match self {
            Tx::Sqlite(t) => {
                sqlx::query_as(
                    "SELECT subscriber_id, list_id, kind FROM consent_events
                     WHERE subscriber_id IN (SELECT unhex(value) FROM json_each($1))
                       AND kind IN ('withdrawn', 'bounced', 'complained', 'confirmed', 'resubscribed')
                     ORDER BY occurred_at, id",
                )
                .bind(json_text(subscriber_ids.iter().map(|id| id.simple())))
                .fetch_all(&mut **t)
                .await?
            }
            Tx::Postgres(t) => {
                sqlx::query_as(
                    "SELECT subscriber_id, list_id, kind FROM consent_events
                     WHERE subscriber_id = ANY($1)
                       AND kind IN ('withdrawn', 'bounced', 'complained', 'confirmed', 'resubscribed')
                     ORDER BY occurred_at, id",
                )
                .bind(subscriber_ids)
                .fetch_all(&mut **t)
                .await?
            }
        };
        let mut latest: std::collections::HashMap<(Uuid, Uuid), LatestDecision> =
            std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            latest.insert((row.subscriber_id, row.list_id), row);
        }
        Ok(latest.into_values().collect())
    }

    /// Creates subscribers (marked as seen by import `import_id`, if one
    /// creates them): the set form of [`Tx::insert_subscriber`].
    pub async fn insert_subscribers(
        &mut self,
        import_id: Option<Uuid>,
        rows: &[NewImportedSubscriber],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.run_script(
            |s| push_new_subscribers(s, import_id, rows, now),
            |s| push_new_subscribers_pg(s, import_id, rows, now),
        )
        .await
    }

    /// Sets name and attributes of matched subscribers and marks them seen
    /// by import `import_id`.
    pub async fn update_imported_subscribers(
        &mut self,
        import_id: Uuid,
        rows: &[ImportedChange],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Sqlite(t) => sqlx::query(
                "UPDATE subscribers SET name = x.name, attributes = x.attributes, updated_at = $2, last_import_id = $3
                 FROM (SELECT unhex(j.value ->> 0) AS id, j.value ->> 1 AS name, j.value ->> 2 AS attributes
                       FROM json_each($1) j) AS x
                 WHERE subscribers.id = x.id",
            )
            .bind(json_text(rows.iter().map(|r| (r.id.simple(), &r.name, &r.attributes))))
            .bind(now)
            .bind(import_id)
            .execute(&mut **t)
            .await?
            .rows_affected(),
            Tx::Postgres(t) => sqlx::query(
                "UPDATE subscribers SET name = x.name, attributes = x.attributes, updated_at = $4, last_import_id = $5
                 FROM UNNEST($1::uuid[], $2::text[], $3::text[]) AS x(id, name, attributes)
                 WHERE subscribers.id = x.id",
            )
            .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.attributes.clone()).collect::<Vec<_>>())
            .bind(now)
            .bind(import_id)
            .execute(&mut **t)
            .await?
            .rows_affected(),
        };
        Ok(())
    }

    /// Marks subscribers as seen by import `import_id` without changing them.
    pub async fn mark_seen_by_import(&mut self, import_id: Uuid, ids: &[Uuid]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Sqlite(t) => sqlx::query(
                "UPDATE subscribers SET last_import_id = $2 WHERE id IN (SELECT unhex(value) FROM json_each($1))",
            )
            .bind(json_text(ids.iter().map(|id| id.simple())))
            .bind(import_id)
            .execute(&mut **t)
            .await?
            .rows_affected(),
            Tx::Postgres(t) => sqlx::query("UPDATE subscribers SET last_import_id = $2 WHERE id = ANY($1)")
                .bind(ids)
                .bind(import_id)
                .execute(&mut **t)
                .await?
                .rows_affected(),
        };
        Ok(())
    }

    /// Moves each (subscriber, list) pair to `confirmed`, creating the
    /// subscription where there is none: the set form of
    /// [`Tx::set_subscription_status`] with status `confirmed`.
    pub async fn confirm_subscriptions(&mut self, pairs: &[(Uuid, Uuid)], now: DateTime<Utc>) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        // `WHERE true`: SQLite's parser needs it before an upsert's ON CONFLICT.
        match self {
            Tx::Sqlite(t) => sqlx::query(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at, confirmed_at)
                 SELECT unhex(j.value ->> 0), unhex(j.value ->> 1), 'confirmed', $2, $2, $2 FROM json_each($1) j
                 WHERE true
                 ON CONFLICT (subscriber_id, list_id) DO UPDATE
                 SET status = excluded.status, updated_at = excluded.updated_at,
                     confirmed_at = COALESCE(excluded.confirmed_at, subscriptions.confirmed_at)",
            )
            .bind(json_text(pairs.iter().map(|(s, l)| (s.simple(), l.simple()))))
            .bind(now)
            .execute(&mut **t)
            .await?
            .rows_affected(),
            Tx::Postgres(t) => sqlx::query(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at, confirmed_at)
                 SELECT u.s, u.l, 'confirmed', $3, $3, $3 FROM UNNEST($1::uuid[], $2::uuid[]) AS u(s, l)
                 ON CONFLICT (subscriber_id, list_id) DO UPDATE
                 SET status = excluded.status, updated_at = excluded.updated_at,
                     confirmed_at = COALESCE(excluded.confirmed_at, subscriptions.confirmed_at)",
            )
            .bind(pairs.iter().map(|p| p.0).collect::<Vec<_>>())
            .bind(pairs.iter().map(|p| p.1).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut **t)
            .await?
            .rows_affected(),
        };
        Ok(())
    }

    /// Appends `imported` ledger entries sharing `t`'s facts: the set form
    /// of [`Tx::append_consent_event`].
    pub async fn append_imported_events(&mut self, events: &[ImportedEvent], t: &ImportedEventTemplate) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        match self {
            Tx::Sqlite(tx) => sqlx::query(
                "INSERT INTO consent_events (id, subscriber_id, list_id, kind, statement_id, notice_version,
                     occurred_at, ip, user_agent, source, actor, detail, controller_name, controller_contact, basis_kind)
                 SELECT unhex(j.value ->> 0), unhex(j.value ->> 1), unhex(j.value ->> 2), 'imported',
                        unhex(j.value ->> 3), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
                 FROM json_each($1) j",
            )
            .bind(json_text(
                events.iter().map(|(id, s, l, st)| (id.simple(), s.simple(), l.simple(), st.map(|st| st.simple()))),
            ))
            .bind(t.notice_version)
            .bind(t.occurred_at)
            .bind(&t.ip)
            .bind(&t.user_agent)
            .bind(&t.source)
            .bind(&t.actor)
            .bind(&t.detail)
            .bind(&t.controller_name)
            .bind(&t.controller_contact)
            .bind(t.basis_kind)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
            Tx::Postgres(tx) => sqlx::query(
                "INSERT INTO consent_events (id, subscriber_id, list_id, kind, statement_id, notice_version,
                     occurred_at, ip, user_agent, source, actor, detail, controller_name, controller_contact, basis_kind)
                 SELECT u.id, u.s, u.l, 'imported', u.st, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) AS u(id, s, l, st)",
            )
            .bind(events.iter().map(|e| e.0).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.1).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.2).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.3).collect::<Vec<_>>())
            .bind(t.notice_version)
            .bind(t.occurred_at)
            .bind(&t.ip)
            .bind(&t.user_agent)
            .bind(&t.source)
            .bind(&t.actor)
            .bind(&t.detail)
            .bind(&t.controller_name)
            .bind(&t.controller_contact)
            .bind(t.basis_kind)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
        };
        Ok(())
    }

    /// Lets this transaction's commit return before its WAL record reaches
    /// disk (PostgreSQL `synchronous_commit = off`, for this transaction
    /// only; nothing on SQLite). A crash can then lose the last commits —
    /// but an import batch commits together with its checkpoint, so a lost
    /// batch is simply read and written again on restart. Never use it for
    /// a transaction whose effects leave the database (mail).
    pub async fn relaxed_commit(&mut self) -> Result<()> {
        if let Tx::Postgres(t) = self {
            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut **t).await?;
        }
        Ok(())
    }
}

/// The PostgreSQL form of [`Tx::insert_subscribers`], for a script.
pub(super) fn push_new_subscribers_pg(
    script: &mut PgScript,
    import_id: Option<Uuid>,
    rows: &[NewImportedSubscriber],
    now: DateTime<Utc>,
) -> Result<()> {
    script.push(
        rows,
        "INSERT INTO subscribers (id, email, email_norm, email_hash, name, attributes, created_at, updated_at,
                                  last_import_id)
         SELECT u.id, u.email, u.email_norm, u.email_hash, u.name, u.attributes, $7, $7, $8
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
              AS u(id, email, email_norm, email_hash, name, attributes)",
        |b| {
            b.bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.email.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.email_norm.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.email_hash.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.attributes.as_str()).collect::<Vec<_>>())
                .bind(now)
                .bind(import_id);
        },
    )
}

/// The SQLite form of [`Tx::insert_subscribers`], for a script.
pub(super) fn push_new_subscribers(
    script: &mut SqliteScript,
    import_id: Option<Uuid>,
    rows: &[NewImportedSubscriber],
    now: DateTime<Utc>,
) -> Result<()> {
    script.push(
        rows,
        "INSERT INTO subscribers (id, email, email_norm, email_hash, name, attributes, created_at, updated_at,
                                  last_import_id)
         SELECT unhex(j.value ->> 0), j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4,
                j.value ->> 5, $2, $2, $3
         FROM json_each($1) j",
        |b| {
            b.bind(json_text(
                rows.iter().map(|r| (r.id.simple(), &r.email, &r.email_norm, &r.email_hash, &r.name, &r.attributes)),
            ))
            .bind(now)
            .bind(import_id);
        },
    )
}
