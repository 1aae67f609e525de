//! CSV imports (README, "Imports and exports"): one engine behind
//! `tidings import`, `POST /api/v1/imports` and the admin UI.
//!
//! An import is a row in `imports` holding its definition (lists, terms,
//! column mapping), a checkpoint (the byte offset and line of the next
//! unread row) and its counts. The file is read in batches; each batch is
//! written in **one transaction that also moves the checkpoint and adds the
//! counts**, so a crash at any moment leaves either all of a batch or none
//! of it, and a restart carries on from the checkpoint without losing or
//! doubling a row. The transaction also checks that its runner still holds
//! the import's lease, so a runner that stalled past its lease cannot write
//! a batch its successor is writing too.
//!
//! Rules, shared with adding one subscriber (`services::subscribers`):
//! `confirmed` needs a basis and records one `imported` ledger entry per
//! person and list (nothing when already confirmed); `pending` sends the
//! same confirmation mail as the subscribe form (a re-permission campaign).
//! On top of those, an import never overrides a withdrawal: someone who
//! unsubscribed, bounced or complained on one of the lists is skipped, with
//! the reason in the report, also when an anonymous subscribe has since
//! put them back to pending (only their own confirmation undoes it; see
//! `subscribers::standing_for_basis`).
//! Suppressed addresses are refused. A later row with an address seen
//! earlier in the same file (in any letter case) is skipped as a duplicate:
//! found within a batch in memory, and across batches by the import id
//! stamped on each subscriber the import touched, so memory stays bounded
//! whatever the file's size.
//!
//! Layout: `parse` (header, column mapping, rows; no I/O), `source` (the
//! stored upload as a reader), this module (requests, uploads, the runner).

pub mod parse;
pub mod source;

pub use parse::{ColumnChoice, Columns};

use super::standing;
use super::subscribers::{self, AddTerms, BasisOutcome};
use super::supporter::{self, Origin};
use super::{Context, FieldError, RequestMeta, ServiceError, ensure_valid};
use crate::domain::{Actor, BasisKind, ConsentKind, ImportState, ListSlug, SubscriptionStatus};
use crate::store::{
    BatchProgress, ImportEnd, ImportErrorRow, ImportRow, ImportedChange, ImportedEvent, ImportedEventTemplate, ListRow,
    NewImport, NewImportedSubscriber, StoreError, SubscriberRow, Tx,
};
use chrono::{DateTime, Utc};
use parse::{Batch, Header, RowData};
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use tokio::sync::watch;
use uuid::Uuid;

/// Rows per batch (one transaction) for `confirmed` imports. Each batch
/// writes every index page it touches once, however many of its rows land
/// there, so bigger batches write much less (see BENCHMARKS.md, "Imports");
/// 10,000 rows hold SQLite's write lock for about a second, which other
/// writers wait out (busy timeout 10 s).
pub const BATCH_ROWS: usize = 10_000;
/// `pending` imports compose and queue one mail per row, so their batches
/// are smaller to keep each transaction short.
pub const PENDING_BATCH_ROWS: usize = 200;
/// Size of each stored piece of an upload.
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Row errors shown per page (API and admin UI).
pub const ERRORS_PAGE: i64 = 100;
pub const MAX_ERRORS_PAGE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The file could not be read (after the import started).
    #[error("{0}")]
    Read(String),
    #[error("the import's stored definition cannot be read: {0}")]
    Definition(String),
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        ImportError::Service(e.into())
    }
}

type Result<T, E = ImportError> = std::result::Result<T, E>;

/// What an organiser asks for, before parsing.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// List slugs (at least one).
    pub lists: Vec<String>,
    /// `confirmed` (the default when a basis is given) or `pending`.
    pub status: Option<String>,
    pub basis: Option<String>,
    /// The kind of basis (`unspecified` when absent).
    pub basis_kind: Option<String>,
    /// The organiser confirmed that a pending import (a re-permission
    /// campaign, itself marketing in the ICO's view) may mail everyone in it.
    pub confirm_repermission: bool,
    pub columns: ColumnChoice,
}

/// Shown before a pending import: why it needs an explicit confirmation.
pub const REPERMISSION_WARNING: &str = "A pending import mails everyone in the file a request to confirm. In the \
     ICO's view that mail is itself direct marketing: it may only go to people you already have consent to mail \
     (the ICO fined Honda and Flybe for exactly this). Confirm only if everyone in the file may be mailed.";

impl ImportRequest {
    /// Whether this import would be pending (a re-permission campaign):
    /// asked for, or the default when no basis is given.
    pub fn is_pending(&self) -> bool {
        match self.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => s == "pending",
            None => self.basis.as_deref().is_none_or(|b| b.trim().is_empty()),
        }
    }

    /// The terms and list slugs, checked without the database. `confirmed`
    /// is the default when a basis is given, `pending` otherwise.
    fn parse(&self, errors: &mut Vec<FieldError>) -> (Option<AddTerms>, Vec<ListSlug>) {
        let has_basis = self.basis.as_deref().is_some_and(|b| !b.trim().is_empty());
        let status = self.status.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or(if has_basis {
            "confirmed"
        } else {
            "pending"
        });
        let terms = subscribers::parse_terms(Some(status), self.basis.as_deref(), self.basis_kind.as_deref(), errors);
        (terms, subscribers::parse_list_slugs(&self.lists, errors))
    }
}

/// An import's definition as the runner needs it.
struct Definition {
    id: Uuid,
    lists: Vec<ListRow>,
    terms: AddTerms,
    columns: Columns,
    actor: Actor,
    meta: RequestMeta,
    /// The ledger's `source` for every entry this import writes.
    source: String,
}

fn bad_definition(what: &str) -> ImportError {
    ImportError::Definition(what.to_owned())
}

impl Definition {
    async fn load(tx: &mut Tx, job: &ImportRow) -> Result<Self> {
        let list_ids: Vec<Uuid> = serde_json::from_str(&job.lists).map_err(|_| bad_definition("lists"))?;
        let mut lists = Vec::with_capacity(list_ids.len());
        for id in list_ids {
            lists.push(tx.list_by_id(id).await?.ok_or_else(|| {
                ImportError::Read("a list this import was adding people to has been deleted".to_owned())
            })?);
        }
        let status = job.mode;
        Ok(Self {
            id: job.id,
            lists,
            terms: AddTerms { status, basis: job.basis.clone(), basis_kind: job.basis_kind },
            columns: serde_json::from_str(&job.columns).map_err(|_| bad_definition("columns"))?,
            actor: Actor::from_db(&job.actor).ok_or_else(|| bad_definition("actor"))?,
            meta: RequestMeta { ip: job.ip.clone(), user_agent: job.user_agent.clone() },
            source: format!("import:{}", job.id),
        })
    }

    fn batch_rows(&self) -> usize {
        if self.terms.status == SubscriptionStatus::Confirmed { BATCH_ROWS } else { PENDING_BATCH_ROWS }
    }
}

/// Progress and counts, as the API, the admin UI and the CLI show them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportView {
    pub id: Uuid,
    /// `uploading`, `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// `upload` (API or admin UI) or `cli`.
    pub source: String,
    pub filename: String,
    pub lists: Vec<String>,
    /// The terms: `confirmed` or `pending`.
    pub status: String,
    pub basis: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the import failed as a whole.
    pub error: Option<String>,
    pub progress: ProgressView,
    pub summary: Summary,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub added: i64,
    pub updated: i64,
    pub skipped: i64,
    pub suppressed: i64,
    pub invalid: i64,
}

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ProgressView {
    /// Data rows read so far (blank rows are not counted).
    pub rows_done: i64,
    /// Bytes of the file read so far, of `total_bytes`.
    pub bytes_done: i64,
    pub total_bytes: i64,
    /// `bytes_done / total_bytes`, 0–100.
    pub percent: f64,
}

impl ImportView {
    pub fn finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed")
    }
}

fn summary(job: &ImportRow) -> Summary {
    Summary {
        added: job.added,
        updated: job.updated,
        skipped: job.skipped,
        suppressed: job.suppressed,
        invalid: job.invalid,
    }
}

async fn view(tx: &mut Tx, job: ImportRow) -> Result<ImportView, ServiceError> {
    let ids: Vec<Uuid> = serde_json::from_str(&job.lists).unwrap_or_default();
    let mut lists = Vec::with_capacity(ids.len());
    for id in ids {
        // A list deleted since still has a name to show: its id.
        lists.push(tx.list_by_id(id).await?.map_or_else(|| id.to_string(), |l| l.slug));
    }
    let percent = if job.total_bytes > 0 {
        (job.bytes_done as f64 * 100.0 / job.total_bytes as f64).clamp(0.0, 100.0)
    } else {
        0.0
    };
    let percent = if job.state == ImportState::Done { 100.0 } else { (percent * 10.0).floor() / 10.0 };
    Ok(ImportView {
        id: job.id,
        state: job.state.to_string(),
        source: job.source.clone(),
        filename: job.filename.clone(),
        lists,
        status: job.mode.to_string(),
        basis: job.basis.clone(),
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        error: job.error.clone(),
        progress: ProgressView {
            rows_done: job.rows_done,
            bytes_done: job.bytes_done,
            total_bytes: job.total_bytes,
            percent,
        },
        summary: summary(&job),
    })
}

/// One import with a page of its row errors.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportDetail {
    #[serde(flatten)]
    pub import: ImportView,
    /// Row errors by line, at most `limit` after line `errors_after`.
    pub errors: Vec<ImportErrorRow>,
    /// The `errors_after` for the next page, when there is one.
    pub errors_next: Option<i64>,
}

pub async fn get(ctx: &Context, id: Uuid, errors_after: i64, limit: i64) -> Result<ImportDetail, ServiceError> {
    let limit = limit.clamp(1, MAX_ERRORS_PAGE);
    let mut tx = ctx.store.read().await?;
    let job = tx.import_by_id(id).await?.ok_or(ServiceError::NotFound("import"))?;
    let mut errors = tx.import_errors(id, errors_after.max(0), limit + 1).await?;
    let errors_next = if errors.len() as i64 > limit {
        errors.truncate(limit as usize);
        errors.last().map(|e| e.line)
    } else {
        None
    };
    Ok(ImportDetail { import: view(&mut tx, job).await?, errors, errors_next })
}

pub async fn recent(ctx: &Context, limit: i64) -> Result<Vec<ImportView>, ServiceError> {
    let mut tx = ctx.store.read().await?;
    let mut out = Vec::new();
    for job in tx.recent_imports(limit.clamp(1, 500)).await? {
        out.push(view(&mut tx, job).await?);
    }
    Ok(out)
}

/// Checks a request against the database and the file's header: the terms,
/// the lists (which must exist), and the column mapping.
async fn plan(
    tx: &mut Tx,
    req: &ImportRequest,
    header: std::result::Result<Header, String>,
) -> Result<(AddTerms, Vec<ListRow>, Header, Columns), ServiceError> {
    let mut errors = Vec::new();
    let (terms, slugs) = req.parse(&mut errors);
    let header = header.map_err(|e| errors.push(FieldError::new("file", e))).ok();
    let columns = header.as_ref().and_then(|h| {
        parse::resolve_columns(h.names.clone(), &req.columns)
            .map(|c| Columns { cr_only: h.cr_only, ..c })
            .map_err(|e| errors.push(FieldError::new("file", e)))
            .ok()
    });
    ensure_valid(errors)?;
    let (Some(terms), Some(header), Some(columns)) = (terms, header, columns) else {
        unreachable!("errors were checked")
    };
    let lists = subscribers::resolve_lists(tx, &slugs).await?;
    Ok((terms, lists, header, columns))
}

fn list_ids_json(lists: &[ListRow]) -> String {
    serde_json::Value::from(lists.iter().map(|l| l.id.to_string()).collect::<Vec<_>>()).to_string()
}

fn columns_json(columns: &Columns) -> String {
    serde_json::to_string(columns).unwrap_or_else(|_| "{}".to_owned())
}

/// An upload being stored: the file arrives in pieces and is written to
/// the database a piece at a time, so no process ever holds it whole.
pub struct Upload {
    pub id: Uuid,
    /// Bytes stored so far.
    stored: i64,
    /// Bytes received but not yet stored (less than a chunk).
    pending: Vec<u8>,
    /// The first piece, kept to read the header row from.
    head: Vec<u8>,
    max_bytes: u64,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than the {0}-byte limit")]
    TooLarge(u64),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for UploadError {
    fn from(e: StoreError) -> Self {
        UploadError::Service(e.into())
    }
}

impl Upload {
    /// Starts storing an upload named `filename` (state `uploading`).
    pub async fn begin(
        ctx: &Context,
        filename: &str,
        actor: &Actor,
        meta: &RequestMeta,
    ) -> std::result::Result<Self, UploadError> {
        let now = ctx.clock.now();
        let id = Uuid::now_v7();
        let mut tx = ctx.store.write().await?;
        tx.insert_import(
            &NewImport {
                id,
                source: "upload",
                filename: clean_filename(filename),
                lists: "[]".to_owned(),
                mode: SubscriptionStatus::Pending,
                basis: None,
                basis_kind: BasisKind::Unspecified,
                columns: "{}".to_owned(),
                state: ImportState::Uploading,
                actor: actor.to_db(),
                ip: meta.ip.clone(),
                user_agent: meta.user_agent.clone(),
                total_bytes: 0,
                bytes_done: 0,
                next_line: 1,
                lease_owner: None,
                lease_until: None,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Self {
            id,
            stored: 0,
            pending: Vec::with_capacity(CHUNK_BYTES),
            head: Vec::new(),
            max_bytes: ctx.config.import_max_bytes,
        })
    }

    /// Takes the next bytes of the file, storing each full piece.
    pub async fn push(&mut self, ctx: &Context, mut bytes: &[u8]) -> std::result::Result<(), UploadError> {
        if (self.stored as u64) + (self.pending.len() as u64) + (bytes.len() as u64) > self.max_bytes {
            return Err(UploadError::TooLarge(self.max_bytes));
        }
        while !bytes.is_empty() {
            let room = CHUNK_BYTES - self.pending.len();
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.pending.extend_from_slice(now);
            bytes = rest;
            if self.pending.len() == CHUNK_BYTES {
                self.flush(ctx).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self, ctx: &Context) -> std::result::Result<(), UploadError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut tx = ctx.store.write().await?;
        tx.add_import_chunk(self.id, self.stored, &self.pending, ctx.clock.now()).await?;
        tx.commit().await?;
        if self.stored == 0 {
            self.head = self.pending.clone();
        }
        self.stored += self.pending.len() as i64;
        self.pending.clear();
        Ok(())
    }

    /// The whole file has arrived: checks the request and the header row,
    /// and queues the import for a worker. On any refusal the upload is
    /// deleted.
    pub async fn finish(mut self, ctx: &Context, req: &ImportRequest) -> std::result::Result<ImportView, UploadError> {
        let id = self.id;
        match self.try_finish(ctx, req).await {
            Ok(view) => Ok(view),
            Err(e) => {
                Self::discard(ctx, id).await;
                Err(e)
            }
        }
    }

    async fn try_finish(&mut self, ctx: &Context, req: &ImportRequest) -> std::result::Result<ImportView, UploadError> {
        self.flush(ctx).await?;
        let whole = self.stored as usize == self.head.len();
        let header = parse::read_header(&self.head, whole);
        let now = ctx.clock.now();
        let mut tx = ctx.store.write().await?;
        let (terms, lists, header, columns) = plan(&mut tx, req, header).await?;
        tx.queue_import(
            self.id,
            &list_ids_json(&lists),
            terms.status,
            (terms.basis.as_deref(), terms.basis_kind),
            &columns_json(&columns),
            self.stored,
            header.data_offset,
            header.data_line,
            now,
        )
        .await?;
        let job = tx.import_by_id(self.id).await?.ok_or(ServiceError::NotFound("import"))?;
        let out = view(&mut tx, job).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Deletes an upload that will not be imported.
    pub async fn discard(ctx: &Context, id: Uuid) {
        let deleted = async {
            let mut tx = ctx.store.write().await?;
            tx.delete_import(id).await?;
            tx.commit().await
        };
        if let Err(e) = deleted.await {
            // The worker fails stalled uploads and deletes their pieces later.
            tracing::warn!(error = %e, import = %id, "could not delete a refused upload");
        }
    }
}

/// A file name fit to show: its last path component, one line, bounded.
fn clean_filename(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() { "upload.csv".to_owned() } else { clean.trim().to_owned() }
}

/// Starts an import that `tidings import` runs itself, reading the file
/// directly: checks everything, then records the import as running under
/// `owner`'s lease. `prefix` is the start of the file (`whole`: all of it).
pub async fn start_local(
    ctx: &Context,
    filename: &str,
    total_bytes: u64,
    prefix: &[u8],
    whole: bool,
    req: &ImportRequest,
    owner: &str,
) -> Result<ImportRow, ServiceError> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    let (terms, lists, header, columns) = plan(&mut tx, req, parse::read_header(prefix, whole)).await?;
    let id = Uuid::now_v7();
    tx.insert_import(
        &NewImport {
            id,
            source: "cli",
            filename: clean_filename(filename),
            lists: list_ids_json(&lists),
            mode: terms.status,
            basis: terms.basis.clone(),
            basis_kind: terms.basis_kind,
            columns: columns_json(&columns),
            state: ImportState::Running,
            actor: Actor::System.to_db(),
            ip: None,
            user_agent: None,
            total_bytes: total_bytes as i64,
            bytes_done: header.data_offset,
            next_line: header.data_line,
            lease_owner: Some(owner.to_owned()),
            lease_until: Some(now + lease(ctx)),
        },
        now,
    )
    .await?;
    let job = tx.import_by_id(id).await?.ok_or(ServiceError::NotFound("import"))?;
    tx.commit().await?;
    Ok(job)
}

fn lease(ctx: &Context) -> chrono::Duration {
    chrono::Duration::from_std(ctx.config.worker_lease).unwrap_or(chrono::Duration::minutes(2))
}

/// Called after each batch is committed, with the import as it now stands.
pub type ProgressFn = Arc<dyn Fn(&ImportRow) + Send + Sync>;

/// How a runner works through an import.
#[derive(Clone)]
pub struct RunOptions {
    /// The lease holder's name (unique per runner).
    pub owner: String,
    /// Stop after the current batch when this turns true, handing the
    /// import back.
    pub shutdown: Option<watch::Receiver<bool>>,
    pub on_batch: Option<ProgressFn>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Done or failed: the import has ended.
    Ended,
    /// Shutdown: handed back at its checkpoint for any runner to continue.
    Released,
    /// Another runner took over (this one stalled past its lease).
    LeaseLost,
}

/// Works through `job` from its checkpoint to the end, reading `source`
/// (positioned at the checkpoint). The file is parsed on a thread of its
/// own, at most two batches ahead, while batches are written here.
pub async fn run(
    ctx: &Context,
    job: &ImportRow,
    source: impl Read + Send + 'static,
    opts: &RunOptions,
) -> Result<RunEnd> {
    let def = {
        let mut tx = ctx.store.read().await?;
        match Definition::load(&mut tx, job).await {
            Ok(def) => def,
            Err(ImportError::Read(message) | ImportError::Definition(message)) => {
                drop(tx);
                end(ctx, job.id, &opts.owner, ImportEnd::Failed, Some(&message)).await?;
                return Ok(RunEnd::Ended);
            }
            Err(e) => return Err(e),
        }
    };
    let (sender, mut batches) = tokio::sync::mpsc::channel::<std::result::Result<Batch, String>>(2);
    let columns = def.columns.clone();
    let (offset, line, rows) = (job.bytes_done, job.next_line, def.batch_rows());
    let parser = std::thread::Builder::new()
        .name(format!("import-{}", job.id))
        .spawn(move || parse::read_batches(source, offset, line, &columns, rows, |b| sender.blocking_send(b).is_ok()))
        .map_err(|e| ImportError::Read(format!("could not start reading the file: {e}")))?;
    let mut checkpoint = job.bytes_done;
    let outcome = loop {
        if opts.shutdown.as_ref().is_some_and(|s| *s.borrow()) {
            let mut tx = ctx.store.write().await?;
            tx.release_import(def.id, &opts.owner, ctx.clock.now()).await?;
            tx.commit().await?;
            break RunEnd::Released;
        }
        let Some(batch) = batches.recv().await else {
            end(ctx, def.id, &opts.owner, ImportEnd::Done, None).await?;
            break RunEnd::Ended;
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(message) => {
                end(ctx, def.id, &opts.owner, ImportEnd::Failed, Some(&message)).await?;
                break RunEnd::Ended;
            }
        };
        let Some(now_at) = write_batch(ctx, &def, &opts.owner, checkpoint, &batch).await? else {
            break RunEnd::LeaseLost;
        };
        checkpoint = batch.end_offset;
        if let Some(report) = &opts.on_batch {
            report(&now_at);
        }
    };
    // Dropping the receiver ends the parser at its next batch.
    drop(batches);
    let _ = tokio::task::spawn_blocking(move || parser.join()).await;
    Ok(outcome)
}

async fn end(ctx: &Context, id: Uuid, owner: &str, state: ImportEnd, error: Option<&str>) -> Result<()> {
    let mut tx = ctx.store.write().await?;
    tx.finish_import(id, Some(owner), state, error, ctx.clock.now()).await?;
    tx.commit().await?;
    if let Some(e) = error {
        tracing::warn!(import = %id, error = e, "import failed");
    } else {
        tracing::info!(import = %id, "import finished");
    }
    Ok(())
}

/// Writes one batch with its checkpoint, retrying once (a concurrent
/// subscribe may have added one of its addresses meanwhile). Returns the
/// import as it now stands, or `None` when the lease was lost.
async fn write_batch(
    ctx: &Context,
    def: &Definition,
    owner: &str,
    from_offset: i64,
    batch: &Batch,
) -> Result<Option<ImportRow>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_write_batch(ctx, def, owner, from_offset, batch).await {
            Err(ImportError::Service(ServiceError::Store(e))) if attempt < 3 => {
                tracing::warn!(import = %def.id, error = %e, "import batch failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
            other => return other,
        }
    }
}

async fn try_write_batch(
    ctx: &Context,
    def: &Definition,
    owner: &str,
    from_offset: i64,
    batch: &Batch,
) -> Result<Option<ImportRow>> {
    let now = ctx.clock.now();
    let mut tx = ctx.store.write().await?;
    if def.terms.status == SubscriptionStatus::Confirmed {
        // Writes only rows and the checkpoint, nothing that leaves the
        // database: a batch lost in a crash is redone from the checkpoint.
        tx.relaxed_commit().await?;
    }
    let (mut progress, errors) = apply_batch(ctx, &mut tx, def, batch, now).await?;
    progress.from_offset = from_offset;
    progress.to_offset = batch.end_offset;
    progress.next_line = batch.end_line;
    tx.insert_import_errors(def.id, &errors).await?;
    if !tx.advance_import(def.id, owner, &progress, now + lease(ctx), now).await? {
        tracing::warn!(import = %def.id, "another worker has taken this import over");
        return Ok(None);
    }
    let job = tx.import_by_id(def.id).await?;
    tx.commit().await?;
    if def.terms.status == SubscriptionStatus::Pending {
        ctx.outbox_wakeup.notify_one();
    }
    Ok(job)
}

fn problem(line: i64, outcome: &str, code: &str, message: impl Into<String>) -> ImportErrorRow {
    ImportErrorRow { line, outcome: outcome.to_owned(), code: code.to_owned(), message: message.into() }
}

/// Existing attributes with the row's on top (the row wins).
fn merged_attributes(existing: &str, row: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut merged = match serde_json::from_str::<serde_json::Value>(existing) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    for (k, v) in row {
        merged.insert(k.clone(), v.clone());
    }
    serde_json::Value::Object(merged).to_string()
}

/// A row that will add or update a subscriber.
struct Accepted<'a> {
    data: &'a RowData,
    subscriber: SubscriberRow,
    /// Lists on which to record the basis (confirmed imports).
    to_confirm: Vec<Uuid>,
}

/// Applies one batch inside `tx`. Returns the counts and the row errors.
async fn apply_batch(
    ctx: &Context,
    tx: &mut Tx,
    def: &Definition,
    batch: &Batch,
    now: DateTime<Utc>,
) -> Result<(BatchProgress, Vec<ImportErrorRow>)> {
    let mut p = BatchProgress { rows: batch.rows.len() as i64, ..BatchProgress::default() };
    let mut errors = Vec::new();

    // Rows that parse; the rest are invalid.
    let mut rows: Vec<(i64, &RowData)> = Vec::with_capacity(batch.rows.len());
    for r in &batch.rows {
        match &r.row {
            Ok(data) => rows.push((r.line, data)),
            Err(e) => {
                p.invalid += 1;
                errors.push(problem(r.line, "invalid", e.code, e.message.clone()));
            }
        }
    }

    // Who is known already.
    let norms: Vec<String> = rows.iter().map(|(_, d)| d.email.normalised().to_owned()).collect();
    let existing: HashMap<String, crate::store::ImportedSubscriber> =
        tx.subscribers_among(&norms).await?.into_iter().map(|s| (s.email_norm.clone(), s)).collect();
    // The one withdrawal rule (`services::standing`), for every row: a
    // suppressed address is refused every time it appears; someone who
    // withdrew (from one of these lists or from everything), bounced or
    // complained is skipped, also when an anonymous subscribe has put them
    // back to pending (only their own confirmation undoes it).
    let people: Vec<standing::Person<'_>> = rows
        .iter()
        .map(|(_, d)| standing::Person {
            email: &d.email,
            subscriber: existing.get(d.email.normalised()).map(|s| s.id),
        })
        .collect();
    let standings = standing::bars(tx, &ctx.address_key, &people, standing::Purpose::Lists(&def.lists)).await?;
    let hashes: Vec<String> = rows.iter().map(|(_, d)| d.email.suppression_hash(&ctx.address_key)).collect();
    let mut first_seen: HashMap<&str, i64> = HashMap::with_capacity(rows.len());
    let mut unique: Vec<(i64, &RowData, &str)> = Vec::with_capacity(rows.len());
    let mut seen_only = Vec::new();
    for (((line, data), hash), bar) in rows.into_iter().zip(&hashes).zip(standings.bars) {
        match bar {
            Some(standing::Bar::Suppressed) => {
                p.suppressed += 1;
                errors.push(problem(
                    line,
                    "suppressed",
                    "suppressed",
                    "the address is on the suppression list (erased, complained or hard-bounced); it was not imported",
                ));
            }
            _ if first_seen.contains_key(data.email.normalised()) => {
                let first = first_seen.get(data.email.normalised()).copied().unwrap_or_default();
                p.skipped += 1;
                errors.push(problem(line, "skipped", "duplicate", format!("the same address as line {first}")));
            }
            Some(bar) => {
                first_seen.insert(data.email.normalised(), line);
                p.skipped += 1;
                let code = match &bar {
                    standing::Bar::Withdrawn { status, .. } => status.as_str(),
                    _ => "withdrawn",
                };
                errors.push(problem(line, "skipped", code, bar.reason()));
                if let Some(known) = existing.get(data.email.normalised())
                    && known.last_import_id != Some(def.id)
                {
                    seen_only.push(known.id);
                }
            }
            None => {
                first_seen.insert(data.email.normalised(), line);
                unique.push((line, data, hash));
            }
        }
    }
    let standing = standings.statuses;

    let confirming = def.terms.status == SubscriptionStatus::Confirmed;
    let mut new_rows = Vec::new();
    let mut changes = Vec::new();
    let mut accepted: Vec<Accepted<'_>> = Vec::with_capacity(unique.len());
    for (line, data, hash) in unique {
        let Some(known) = existing.get(data.email.normalised()) else {
            p.added += 1;
            let subscriber = SubscriberRow {
                id: Uuid::now_v7(),
                email: data.email.as_str().to_owned(),
                email_norm: data.email.normalised().to_owned(),
                name: data.name.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
                attributes: serde_json::Value::Object(data.attributes.clone()).to_string(),
                created_at: now,
                updated_at: now,
            };
            new_rows.push(NewImportedSubscriber {
                id: subscriber.id,
                email: subscriber.email.clone(),
                email_norm: subscriber.email_norm.clone(),
                email_hash: hash.to_owned(),
                name: subscriber.name.clone(),
                attributes: subscriber.attributes.clone(),
            });
            let to_confirm = if confirming { def.lists.iter().map(|l| l.id).collect() } else { Vec::new() };
            accepted.push(Accepted { data, subscriber, to_confirm });
            continue;
        };
        if known.last_import_id == Some(def.id) {
            p.skipped += 1;
            errors.push(problem(line, "skipped", "duplicate", "the same address as an earlier row"));
            continue;
        }
        let outcomes: Vec<(&ListRow, BasisOutcome)> = def
            .lists
            .iter()
            .map(|l| (l, subscribers::basis_outcome(standing.get(&(known.id, l.id)).copied())))
            .collect();
        p.updated += 1;
        let name = data.name.as_ref().map_or_else(|| known.name.clone(), |n| n.as_str().to_owned());
        let attributes = merged_attributes(&known.attributes, &data.attributes);
        changes.push(ImportedChange { id: known.id, name: name.clone(), attributes: attributes.clone() });
        let to_confirm = if confirming {
            outcomes.iter().filter(|(_, o)| *o == BasisOutcome::Confirm).map(|(l, _)| l.id).collect()
        } else {
            Vec::new()
        };
        let subscriber = SubscriberRow {
            id: known.id,
            email: known.email.clone(),
            email_norm: known.email_norm.clone(),
            name,
            attributes,
            created_at: now,
            updated_at: now,
        };
        accepted.push(Accepted { data, subscriber, to_confirm });
    }

    tx.insert_subscribers(Some(def.id), &new_rows, now).await?;
    tx.update_imported_subscribers(def.id, &changes, now).await?;
    tx.mark_seen_by_import(def.id, &seen_only).await?;

    let notice_version = supporter::current_notice_version(tx, now).await?;
    let origin = Origin {
        meta: &def.meta,
        source: Some(&def.source),
        actor: def.actor.clone(),
        controller: &ctx.config,
        basis_kind: subscribers::confirmed_basis_kind(&def.terms),
    };
    if confirming {
        let mut statements = HashMap::with_capacity(def.lists.len());
        for list in &def.lists {
            statements.insert(list.id, tx.current_statement(list.id).await?.map(|s| s.id));
        }
        let pairs: Vec<(Uuid, Uuid)> =
            accepted.iter().flat_map(|a| a.to_confirm.iter().map(|l| (a.subscriber.id, *l))).collect();
        let events: Vec<ImportedEvent> =
            pairs.iter().map(|(s, l)| (Uuid::now_v7(), *s, *l, statements.get(l).copied().flatten())).collect();
        // The same entry change_status writes for one person; only the
        // subscriber, list and statement differ from row to row.
        let entry = supporter::ledger_entry(
            Uuid::nil(),
            Uuid::nil(),
            ConsentKind::Imported,
            None,
            &origin,
            notice_version,
            def.terms.basis.as_deref(),
            now,
        );
        let template = ImportedEventTemplate {
            notice_version: entry.notice_version,
            occurred_at: entry.occurred_at,
            ip: entry.ip,
            user_agent: entry.user_agent,
            source: entry.source,
            actor: entry.actor,
            detail: entry.detail,
            controller_name: entry.controller_name,
            controller_contact: entry.controller_contact,
            basis_kind: entry.basis_kind,
        };
        tx.confirm_subscriptions(&pairs, now).await?;
        tx.append_imported_events(&events, &template).await?;
    } else {
        let ids: Vec<Uuid> = accepted.iter().map(|a| a.subscriber.id).collect();
        let lists: Vec<&ListRow> = def.lists.iter().collect();
        let mut confirmations =
            supporter::ConfirmationRequests::load(ctx, tx, &ids, &lists, notice_version, now).await?;
        for a in &accepted {
            confirmations.request(a.subscriber.id, &a.subscriber.name, &a.data.email, &lists, &origin)?;
        }
        confirmations.write(tx, &[]).await?;
    }
    Ok((p, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmed_is_the_default_with_a_basis_and_needs_one() {
        let mut errors = Vec::new();
        let req = ImportRequest { lists: vec!["news".into()], basis: Some("paper forms".into()), ..Default::default() };
        let (terms, slugs) = req.parse(&mut errors);
        assert!(errors.is_empty());
        assert_eq!(terms.unwrap().status, SubscriptionStatus::Confirmed);
        assert_eq!(slugs.len(), 1);

        let req = ImportRequest { lists: vec!["news".into()], ..Default::default() };
        assert_eq!(req.parse(&mut errors).0.unwrap().status, SubscriptionStatus::Pending);

        let req = ImportRequest { lists: vec![], status: Some("confirmed".into()), ..Default::default() };
        req.parse(&mut errors);
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["basis", "lists"]);
    }

    #[test]
    fn attributes_merge_with_the_row_winning_and_filenames_are_tamed() {
        let mut row = serde_json::Map::new();
        row.insert("town".into(), "Leeds".into());
        let merged: serde_json::Value =
            serde_json::from_str(&merged_attributes(r#"{"town":"York","ward":"3"}"#, &row)).unwrap();
        assert_eq!(merged, serde_json::json!({"town": "Leeds", "ward": "3"}));
        assert_eq!(clean_filename("C:\\Users\\ann\\list.csv"), "list.csv");
        assert_eq!(clean_filename("../../etc/x\n.csv"), "x.csv");
        assert_eq!(clean_filename(""), "upload.csv");
    }
}
