//! All SQL lives here, and nowhere else.
//!
//! One interface, two backends. [`Store`] owns a connection pool for SQLite
//! (the zero-configuration default) or PostgreSQL (production, several
//! instances). Every operation is a method on [`Tx`], a transaction on either
//! backend, and is written once: the [`on_backend!`] macro expands the same
//! body for each backend's concrete connection type, [`execute!`] does so
//! for a statement that writes, and a statement over a batch of rows names
//! it as a table (`batch`: `json_each` on SQLite, `UNNEST` on PostgreSQL).
//! Queries use `$N` placeholders, which both drivers accept. Where the SQL
//! itself must differ (claiming work with `FOR UPDATE SKIP LOCKED`), the
//! method matches on the backend explicitly.
//!
//! Layout (ARCHITECTURE.md has the same list as a table): `mod.rs`
//! (migrating, transactions, errors), `connection` (connecting: every
//! SQLite pragma and pool setting, and which PostgreSQL statements are not
//! prepared, each with its reason), `batch` (a batch of rows as a table),
//! `script` (several statements as one query), and one module per area:
//! `accounts` (users,
//! sessions, API tokens), `archive` (the public archive's reads), `audience`
//! (counting a send's audience from its snapshot), `audit`
//! (audit and rights-request logs), `bounces` (bounce events, alerts),
//! `confirmations`, `consent` (notices, statements, ledger), `data_copies`,
//! `deliveries` (snapshot, claims, outcomes, rate bucket), `directory`
//! (organiser search), `erasure` (a person's data: copy and erase),
//! `exports` (keyset pages for CSV exports), `imports` (import jobs and the
//! set-based subscriber reads and writes), `lists`, `outbox`, `queue` (queue
//! depths for `/metrics`), `retention`, `schedules`, `settings`,
//! `subscribers` (subscribers, subscriptions, a subscribe batch's writes),
//! `suppressions`, `updates`.

mod accounts;
mod archive;
mod audience;
mod audit;
mod batch;
mod bounces;
mod columns;
mod confirmations;
mod connection;
mod consent;
mod data_copies;
mod deliveries;
mod directory;
mod erasure;
mod exports;
mod fingerprints;
mod imports;
mod limits;
mod lists;
mod objections;
mod outbox;
mod queue;
mod record_copy;
mod retention;
mod schedules;
mod script;
mod send_guard;
mod settings;
mod subscribers;
mod suppressions;
mod updates;

pub use accounts::{ApiTokenRow, ApiTokenSummary, NewSession, SessionRow, UserRow};
pub use audience::AudienceListRow;
pub use audit::{AuditFilter, AuditRow, RightsEventRow, RightsRequestRow};
pub use bounces::{AlertRow, BounceEventRow, BouncedDelivery, HeldReport, NewAlert, NewBounceEvent};
pub use confirmations::NewConfirmationToken;
pub use consent::{ConsentEventRow, ConsentStatementRow, NewConsentEvent, PrivacyNoticeRow, StatementUse};
pub use deliveries::{AcceptedDelivery, DeliveryClaim, DeliveryRow, DeliveryStats};
pub use directory::SubscriberSearch;
pub use erasure::{
    AuditText, ErasureCounts, ExportDeliveryRow, ExportNoticeRow, ExportSubscriptionRow, RightsEventText,
    RightsRequestText,
};
pub use exports::ExportRow;
pub use fingerprints::StoredAddress;
pub use imports::{
    BatchProgress, ImportEnd, ImportErrorRow, ImportRow, ImportedChange, ImportedEvent, ImportedEventTemplate,
    ImportedSubscriber, ImportedSubscription, LatestDecision, NewImport, NewImportedSubscriber,
};
pub use lists::{ListChanges, ListRow};
pub use objections::{NewObjection, OBJECTED};
pub use outbox::{BouncedMail, NewOutboxMessage, OutboxBody, OutboxRow};
pub use queue::QueueDepth;
pub use record_copy::{CopyAction, CopyBounce, CopyMail};
pub use retention::PurgeCounts;
pub use schedules::{ScheduleRow, ScheduleRun};
pub use send_guard::{SendCounts, SendQuality};
pub use subscribers::{RequestedSubscription, SignupWrites, SubscriberRow, SubscriptionRow};
pub use updates::{UpdateListRow, UpdateRow};

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL (use sqlite://… or postgres://…)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0} already exists")]
    Conflict(&'static str),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Turns a unique-constraint violation into [`StoreError::Conflict`].
pub(crate) fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

/// [`conflict_on_unique`] for an error that is already a [`StoreError`]
/// (from a statement run through `batch`).
pub(crate) fn unique_as_conflict(what: &'static str) -> impl FnOnce(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Database(e) => conflict_on_unique(what)(e),
        other => other,
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool on one of the two backends.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on one of the two backends. Dropping it without
/// [`Tx::commit`] rolls it back.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Expands `$body` once per backend with `$conn` bound to that backend's
/// `&mut Connection`, so each query is written once.
macro_rules! on_backend {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $conn = &mut **t;
                $body
            }
        }
    };
}
pub(crate) use on_backend;

/// Runs one statement that is the same on both backends and evaluates to
/// the number of rows it changed (callers that only write ignore it).
/// `$query` is the `sqlx::query(…).bind(…)` builder, expanded once per
/// backend; `$on_error`, if given, maps its `sqlx::Error`.
macro_rules! execute {
    ($tx:expr, $query:expr) => {
        $crate::store::execute!($tx, $query, $crate::store::StoreError::from)
    };
    ($tx:expr, $query:expr, $on_error:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => $query.execute(&mut **t).await.map_err($on_error)?.rows_affected(),
            $crate::store::Tx::Postgres(t) => $query.execute(&mut **t).await.map_err($on_error)?.rows_affected(),
        }
    };
}
pub(crate) use execute;

impl Store {
    /// Connects (creating the SQLite file if missing) without migrating,
    /// with the settings `store::connection` gives reasons for.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(connection::sqlite_pool(url).await?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Store::Postgres(connection::postgres_pool(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Applies every pending migration for this backend.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// A transaction that will write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`): a deferred transaction that reads and then
    /// writes can fail with SQLITE_BUSY instead of waiting its turn.
    pub async fn write(&self) -> Result<Tx> {
        Ok(match self {
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Store::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that only reads (a consistent snapshot).
    pub async fn read(&self) -> Result<Tx> {
        Ok(match self {
            Store::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Store::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Copies the SQLite write-ahead log into the database file and empties
    /// it (`wal_checkpoint(TRUNCATE)`), so pages that held erased data leave
    /// the WAL; returns whether the checkpoint completed (a reader still in
    /// a transaction can hold it back; the next automatic checkpoint then
    /// finishes the job). Nothing to do on PostgreSQL.
    pub async fn checkpoint_truncate(&self) -> Result<bool> {
        match self {
            Store::Sqlite(pool) => {
                let (busy, _, _): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(pool).await?;
                Ok(busy == 0)
            }
            Store::Postgres(_) => Ok(true),
        }
    }

    /// Readiness probe: can we run a query right now?
    pub async fn ping(&self) -> Result<()> {
        match self {
            Store::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Store::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    /// A store for one task that writes all the time (the subscribe
    /// committer): on SQLite one connection of its own, never recycled; on
    /// PostgreSQL `lanes` connections of its own (`store::connection` says
    /// why, and with which settings).
    pub fn dedicated_writer(&self, lanes: usize) -> Store {
        match self {
            Store::Sqlite(pool) => Store::Sqlite(connection::sqlite_dedicated_writer(pool)),
            Store::Postgres(pool) => {
                Store::Postgres(connection::postgres_dedicated_writer(pool, u32::try_from(lanes).unwrap_or(u32::MAX)))
            }
        }
    }

    /// Copies what the SQLite write-ahead log holds into the database
    /// without waiting for (or blocking) writers, for a writer that does not
    /// checkpoint itself ([`Store::dedicated_writer`]). Nothing to do on
    /// PostgreSQL.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Store::Sqlite(pool) = self {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(pool).await?;
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(pool) => pool.close().await,
            Store::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}
