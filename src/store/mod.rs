//! All SQL lives here, and nowhere else.
//!
//! One interface, two backends. [`Store`] owns a connection pool for SQLite
//! (the zero-configuration default) or PostgreSQL (production, several
//! instances). Every operation is a method on [`Tx`], a transaction on either
//! backend, and is written once: the [`on_backend!`] macro expands the same
//! body for each backend's concrete connection type. Queries use `$N`
//! placeholders, which both drivers accept. Where the SQL itself must differ
//! (claiming work with `FOR UPDATE SKIP LOCKED`), the method matches on the
//! backend explicitly.
//!
//! Layout (ARCHITECTURE.md has the same list as a table): `mod.rs`
//! (connecting, migrating, transactions, errors), `script` (several
//! statements as one query), and one module per area: `accounts` (users,
//! sessions, API tokens), `archive` (the public archive's reads), `audit`
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
mod audit;
mod bounces;
mod columns;
mod confirmations;
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

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::time::Duration;

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

/// Rows as one JSON array (each row an array of its values, ids as 32 hex
/// digits for `unhex`), for SQLite statements that read a whole batch from
/// one parameter through `json_each`: fixed text whatever the batch size, so
/// each is prepared once per connection.
pub(crate) fn json_text<T: serde::Serialize>(rows: impl Iterator<Item = T>) -> String {
    serde_json::to_string(&rows.collect::<Vec<T>>()).unwrap_or_else(|_| "[]".to_owned())
}

/// A timestamp as sqlx writes one to SQLite, for rows passed as JSON (text
/// columns compare as text, so the form must be the same).
pub(crate) fn sqlite_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
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

/// A PostgreSQL pool that connects when first used. sqlx (0.9.1 and later)
/// sets `TCP_NODELAY` on each connection's socket itself; the test
/// `store::postgres_connections_have_tcp_nodelay_set` (tests/api) guards it.
fn postgres_pool(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options)
}

impl Store {
    /// Connects (creating the SQLite file if missing) without migrating.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: an acknowledged subscribe must survive an OS crash
                // or power cut, not only a process crash.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                // Deleted rows are overwritten with zeros, so an erased
                // person's details do not linger in free space of the file
                // (issue 16 §5; the WAL is checkpointed after an erasure).
                .pragma("secure_delete", "ON")
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = postgres_pool(options, 16);
            // Fail now, not at the first query, if the server is not there.
            pool.acquire().await?;
            Ok(Store::Postgres(pool))
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
            Store::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await?.rows_affected(),
            Store::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await?.rows_affected(),
        };
        Ok(())
    }

    /// A store for one task that writes all the time (the subscribe
    /// committer). On SQLite it is a pool of one connection that is never
    /// recycled: a connection's page cache is dropped whenever another
    /// connection has written since it last ran, so taking "any" connection
    /// from the shared pool for every batch re-reads the pages each time.
    /// On PostgreSQL it is a pool of `lanes` connections of its own.
    pub fn dedicated_writer(&self, lanes: usize) -> Store {
        match self {
            Store::Sqlite(pool) => {
                // The cache holds the indexes a busy signup page touches.
                let options = (*pool.connect_options())
                    .clone()
                    .pragma("cache_size", "-32768")
                    // A batch's multi-row statements keep a statement
                    // journal; past 64 KiB SQLite spills it to a temporary
                    // file (opened, written and deleted per batch). In
                    // memory it costs a few hundred KiB at most.
                    .pragma("temp_store", "MEMORY");
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_lazy_with(options);
                Store::Sqlite(pool)
            }
            Store::Postgres(pool) => {
                // A pool of its own, with the server's usual plan caching.
                // The reads of a table that grows with the list (addresses,
                // subscriptions, suppressions) are not prepared statements
                // (`persistent(false)`): a prepared statement's generic plan
                // is fixed when the connection first runs it a few times,
                // and on a young database (tables a few pages long, not yet
                // analysed) that plan is a sequential scan, kept while the
                // table grows to millions of rows. Forcing custom plans for
                // the whole session instead (`plan_cache_mode`) also
                // re-planned every foreign-key check of every inserted row:
                // half the server's CPU under load.
                let options = (*pool.connect_options()).clone();
                Store::Postgres(postgres_pool(options, lanes as u32))
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
