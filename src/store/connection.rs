//! How Tidings connects to each database, with every connection setting and
//! the reason for it in one place: the SQLite pragmas (the shared pool's
//! and the dedicated subscribe writer's), the PostgreSQL pools, and which
//! PostgreSQL statements are not prepared ([`PREPARE_GROWING_READS`]).
//! Code elsewhere in `store/` refers here rather than repeating a reason.
//! (One setting is per transaction, not per connection, and documented
//! where it is made: `Tx::relaxed_commit`, for import batches.)

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Connections in the shared SQLite pool: readers run side by side under
/// WAL; writers queue for SQLite's one write lock (`BEGIN IMMEDIATE`,
/// [`super::Store::write`]) however many there are.
const SQLITE_CONNECTIONS: u32 = 8;

/// Connections in the shared PostgreSQL pool of each process.
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long a statement waits for SQLite's write lock (`busy_timeout`), and
/// a task for a pooled PostgreSQL connection, before failing.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(10);

/// Whether PostgreSQL reads of a table that grows with the list, looked up
/// `= ANY($1)` by a batch's values, are prepared statements: **no**
/// (`persistent(false)`). They are the subscribe path's reads of the
/// addresses already known (`Tx::subscribers_among`), their subscriptions
/// (`Tx::subscriptions_of`) and suppressions (`Tx::suppressed_among`).
///
/// A prepared statement's generic plan is fixed when the connection first
/// runs it a few times, and on a young database (tables a few pages long,
/// not yet analysed) that plan is a sequential scan, kept while the table
/// grows to millions of rows. Unprepared, each run is planned for the
/// table as it is. Forcing custom plans for the whole session instead
/// (`plan_cache_mode`) also re-planned every foreign-key check of every
/// inserted row: half the server's CPU under load. The cost is one more
/// round trip for each of these reads; every other statement is prepared
/// once per connection, as sqlx does by default. RELIABILITY.md ("Load:
/// the subscribe endpoint") has the measurements.
pub(crate) const PREPARE_GROWING_READS: bool = false;

/// The shared SQLite pool for `url`, creating the file if it is missing.
pub(crate) async fn sqlite_pool(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        // Readers do not block the writer, nor it them; one file beside
        // the database holds what is not yet checkpointed.
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: an acknowledged subscribe must survive an OS crash or
        // power cut, not only a process crash.
        .synchronous(SqliteSynchronous::Full)
        // The schema's references (a subscription's subscriber and list…)
        // hold, and its `ON DELETE CASCADE`s run: SQLite checks neither
        // unless asked, per connection.
        .foreign_keys(true)
        // Deleted rows are overwritten with zeros, so an erased person's
        // details do not linger in free space of the file (issue 16 §5;
        // the WAL is checkpointed after an erasure,
        // `Store::checkpoint_truncate`).
        .pragma("secure_delete", "ON")
        // A writer waits its turn rather than failing with SQLITE_BUSY.
        .busy_timeout(WAIT_FOR_CONNECTION);
    SqlitePoolOptions::new().max_connections(SQLITE_CONNECTIONS).connect_with(options).await
}

/// The SQLite subscribe committer's pool ([`super::Store::dedicated_writer`]):
/// the shared pool's settings and two more, on one connection that is never
/// recycled. A connection's page cache is dropped whenever another
/// connection has written since it last ran, so taking "any" connection
/// from the shared pool for every batch would re-read the pages each time.
pub(crate) fn sqlite_dedicated_writer(shared: &SqlitePool) -> SqlitePool {
    let options = (*shared.connect_options())
        .clone()
        // 32 MiB of cache: the indexes a busy signup page touches.
        .pragma("cache_size", "-32768")
        // A batch's multi-row statements keep a statement journal; past
        // 64 KiB SQLite spills it to a temporary file (opened, written and
        // deleted per batch). In memory it costs a few hundred KiB at most.
        .pragma("temp_store", "MEMORY");
    SqlitePoolOptions::new().max_connections(1).idle_timeout(None).max_lifetime(None).connect_lazy_with(options)
}

/// The shared PostgreSQL pool for `url`; fails now, not at the first query,
/// if the server is not there.
pub(crate) async fn postgres_pool(url: &str) -> Result<PgPool, sqlx::Error> {
    let pool = postgres_pool_with(PgConnectOptions::from_str(url)?, POSTGRES_CONNECTIONS);
    pool.acquire().await?;
    Ok(pool)
}

/// The PostgreSQL subscribe committer's pool ([`super::Store::dedicated_writer`]):
/// `lanes` connections of its own, with the shared pool's settings and the
/// server's usual plan caching (its reads of growing tables are not
/// prepared: [`PREPARE_GROWING_READS`]).
pub(crate) fn postgres_dedicated_writer(shared: &PgPool, lanes: u32) -> PgPool {
    postgres_pool_with((*shared.connect_options()).clone(), lanes)
}

/// A PostgreSQL pool that connects when first used. sqlx (0.9.1 and later)
/// sets `TCP_NODELAY` on each connection's socket itself (without it, a
/// large statement's last segment waited 40–50 ms for the server's delayed
/// ACK: RELIABILITY.md, "Load: the subscribe endpoint"); the test
/// `store::postgres_connections_have_tcp_nodelay_set` (tests/api) guards it.
fn postgres_pool_with(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(WAIT_FOR_CONNECTION)
        .connect_lazy_with(options)
}
