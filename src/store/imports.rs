//! CSV imports: the job rows (definition, checkpoint, counts, lease), the
//! stored upload in chunks, the per-row error report, and the set-based
//! statements one batch of rows is written with.
//!
//! A batch travels to the database as a table bound to one or a few
//! parameters (`super::batch`: typed arrays on PostgreSQL, one JSON array
//! on SQLite), so each statement is written once, is fixed text whatever
//! the batch size, and a batch of thousands of rows costs a handful of
//! statements, not thousands.

use super::batch::{Rows, Statement};
use super::{Result, Tx, execute, on_backend};
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
        execute!(
            self,
            sqlx::query(
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
        );
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
        execute!(
            self,
            sqlx::query("INSERT INTO import_chunks (import_id, start_offset, data) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(start_offset)
                .bind(data)
        );
        execute!(self, sqlx::query("UPDATE imports SET updated_at = $2 WHERE id = $1").bind(id).bind(now));
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
        let n = execute!(self, sqlx::query(
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
        .bind(basis.1));
        Ok(n == 1)
    }

    /// Removes an import that never got going (an upload refused part-way).
    pub async fn delete_import(&mut self, id: Uuid) -> Result<()> {
        execute!(self, sqlx::query("DELETE FROM import_chunks WHERE import_id = $1").bind(id));
        execute!(self, sqlx::query("DELETE FROM imports WHERE id = $1").bind(id));
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
        let n =
            execute!(self, sqlx::query(
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
        .bind(now));
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
        let n = execute!(
            self,
            sqlx::query(
                "UPDATE imports SET state = $3, error = $4, finished_at = $5, updated_at = $5, lease_owner = NULL,
                    lease_until = NULL
             WHERE id = $1 AND ($2 IS NULL OR lease_owner = $2) AND state NOT IN ('done', 'failed')",
            )
            .bind(id)
            .bind(owner)
            .bind(ImportState::from(state))
            .bind(error)
            .bind(now)
        );
        execute!(self, sqlx::query("DELETE FROM import_chunks WHERE import_id = $1").bind(id));
        Ok(n == 1)
    }

    /// Gives a running import back (shutdown): another worker may continue
    /// it at once from its checkpoint.
    pub async fn release_import(&mut self, id: Uuid, owner: &str, now: DateTime<Utc>) -> Result<()> {
        execute!(
            self,
            sqlx::query(
                "UPDATE imports SET lease_owner = NULL, lease_until = NULL, updated_at = $3
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
            )
            .bind(id)
            .bind(owner)
            .bind(now)
        );
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
            execute!(self, sqlx::query("DELETE FROM import_chunks WHERE import_id = $1").bind(*id));
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
        self.write_rows(
            Statement::new(
                "INSERT INTO import_errors (import_id, line, outcome, code, message)
                 SELECT $1, u.line, u.outcome, u.code, u.message FROM {rows}",
            )
            .bind(id)
            .rows(
                Rows::new()
                    .int("line", errors.iter().map(|e| e.line))
                    .text("outcome", errors.iter().map(|e| e.outcome.as_str()))
                    .text("code", errors.iter().map(|e| e.code.as_str()))
                    .text("message", errors.iter().map(|e| e.message.as_str())),
            ),
        )
        .await
    }

    /// Which of these suppression hashes are on the suppression list.
    pub async fn suppressed_among(&mut self, hashes: &[String]) -> Result<HashSet<String>> {
        let found: Vec<(String,)> = self
            .fetch_rows(
                Statement::new("SELECT email_hash FROM suppressions WHERE email_hash {in_set}")
                    .rows(Rows::new().text("email_hash", hashes.iter().map(String::as_str)))
                    .unprepared(),
            )
            .await?;
        Ok(found.into_iter().map(|(hash,)| hash).collect())
    }

    /// The subscribers with these normalised addresses.
    pub async fn subscribers_among(&mut self, emails_norm: &[String]) -> Result<Vec<ImportedSubscriber>> {
        self.fetch_rows(
            Statement::new(
                "SELECT id, email, email_norm, name, attributes, last_import_id FROM subscribers
                 WHERE email_norm {in_set}",
            )
            .rows(Rows::new().text("email_norm", emails_norm.iter().map(String::as_str)))
            .unprepared(),
        )
        .await
    }

    /// Every subscription of these subscribers.
    pub async fn subscriptions_among(&mut self, subscriber_ids: &[Uuid]) -> Result<Vec<ImportedSubscription>> {
        self.fetch_rows(
            Statement::new("SELECT subscriber_id, list_id, status FROM subscriptions WHERE subscriber_id {in_set}")
                .rows(Rows::new().uuid("id", subscriber_ids.iter().copied())),
        )
        .await
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
        // Ordered oldest first, so the last row per (subscriber, list) wins.
        let rows: Vec<LatestDecision> = self
            .fetch_rows(
                Statement::new(
                    "SELECT subscriber_id, list_id, kind FROM consent_events
                     WHERE subscriber_id {in_set}
                       AND kind IN ('withdrawn', 'bounced', 'complained', 'confirmed', 'resubscribed')
                     ORDER BY occurred_at, id",
                )
                .rows(Rows::new().uuid("id", subscriber_ids.iter().copied())),
            )
            .await?;
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
        self.write_rows(new_subscribers(import_id, rows, now, now)).await
    }

    /// Sets name and attributes of matched subscribers and marks them seen
    /// by import `import_id`.
    pub async fn update_imported_subscribers(
        &mut self,
        import_id: Uuid,
        rows: &[ImportedChange],
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write_rows(
            Statement::new(
                "UPDATE subscribers SET name = u.name, attributes = u.attributes, updated_at = $1, last_import_id = $2
                 FROM {rows}
                 WHERE subscribers.id = u.id",
            )
            .bind(now)
            .bind(import_id)
            .rows(
                Rows::new()
                    .uuid("id", rows.iter().map(|r| r.id))
                    .text("name", rows.iter().map(|r| r.name.as_str()))
                    .text("attributes", rows.iter().map(|r| r.attributes.as_str())),
            ),
        )
        .await
    }

    /// Marks subscribers as seen by import `import_id` without changing them.
    pub async fn mark_seen_by_import(&mut self, import_id: Uuid, ids: &[Uuid]) -> Result<()> {
        self.write_rows(
            Statement::new("UPDATE subscribers SET last_import_id = $1 WHERE id {in_set}")
                .bind(import_id)
                .rows(Rows::new().uuid("id", ids.iter().copied())),
        )
        .await
    }

    /// Moves each (subscriber, list) pair to `confirmed`, creating the
    /// subscription where there is none: the set form of
    /// [`Tx::set_subscription_status`] with status `confirmed`.
    pub async fn confirm_subscriptions(&mut self, pairs: &[(Uuid, Uuid)], now: DateTime<Utc>) -> Result<()> {
        // `WHERE true`: SQLite's parser needs it before an upsert's ON CONFLICT.
        self.write_rows(
            Statement::new(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at, confirmed_at)
                 SELECT u.s, u.l, 'confirmed', $1, $1, $1 FROM {rows}
                 WHERE true
                 ON CONFLICT (subscriber_id, list_id) DO UPDATE
                 SET status = excluded.status, updated_at = excluded.updated_at,
                     confirmed_at = COALESCE(excluded.confirmed_at, subscriptions.confirmed_at)",
            )
            .bind(now)
            .rows(Rows::new().uuid("s", pairs.iter().map(|p| p.0)).uuid("l", pairs.iter().map(|p| p.1))),
        )
        .await
    }

    /// Appends `imported` ledger entries sharing `t`'s facts: the set form
    /// of [`Tx::append_consent_event`].
    pub async fn append_imported_events(&mut self, events: &[ImportedEvent], t: &ImportedEventTemplate) -> Result<()> {
        self.write_rows(
            Statement::new(
                "INSERT INTO consent_events (id, subscriber_id, list_id, kind, statement_id, notice_version,
                     occurred_at, ip, user_agent, source, actor, detail, controller_name, controller_contact, basis_kind)
                 SELECT u.id, u.s, u.l, 'imported', u.st, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                 FROM {rows}",
            )
            .bind(t.notice_version)
            .bind(t.occurred_at)
            .bind(t.ip.as_deref())
            .bind(t.user_agent.as_deref())
            .bind(t.source.as_deref())
            .bind(t.actor.as_str())
            .bind(t.detail.as_deref())
            .bind(t.controller_name.as_deref())
            .bind(t.controller_contact.as_deref())
            .bind(t.basis_kind.map(BasisKind::as_str))
            .rows(
                Rows::new()
                    .uuid("id", events.iter().map(|e| e.0))
                    .uuid("s", events.iter().map(|e| e.1))
                    .uuid("l", events.iter().map(|e| e.2))
                    .uuid("st", events.iter().map(|e| e.3)),
            ),
        )
        .await
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

/// The statement of [`Tx::insert_subscribers`] and [`Tx::insert_subscriber`].
pub(super) fn new_subscribers(
    import_id: Option<Uuid>,
    rows: &[NewImportedSubscriber],
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Statement<'_> {
    Statement::new(
        "INSERT INTO subscribers (id, email, email_norm, email_hash, name, attributes, created_at, updated_at,
                                  last_import_id)
         SELECT u.id, u.email, u.email_norm, u.email_hash, u.name, u.attributes, $1, $2, $3
         FROM {rows}",
    )
    .bind(created_at)
    .bind(updated_at)
    .bind(import_id)
    .rows(
        Rows::new()
            .uuid("id", rows.iter().map(|r| r.id))
            .text("email", rows.iter().map(|r| r.email.as_str()))
            .text("email_norm", rows.iter().map(|r| r.email_norm.as_str()))
            .text("email_hash", rows.iter().map(|r| r.email_hash.as_str()))
            .text("name", rows.iter().map(|r| r.name.as_str()))
            .text("attributes", rows.iter().map(|r| r.attributes.as_str())),
    )
}
