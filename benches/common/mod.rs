//! What the benchmarks share: the database choice, a fresh database,
//! fixture subscribers, child processes, reading `/proc` and medians.

// Each bench uses its own subset.
#![allow(dead_code)]

use clap::ValueEnum;
use std::error::Error;
use std::path::Path;
use std::process::Child;
use std::time::Duration;
use tidings::store::Store;

pub type BoxResult<T> = Result<T, Box<dyn Error>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DbChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }

    /// The databases a `--db` choice names.
    pub fn chosen(choice: DbChoice) -> &'static [Db] {
        match choice {
            DbChoice::Sqlite => &[Db::Sqlite],
            DbChoice::Postgres => &[Db::Postgres],
            DbChoice::Both => &[Db::Sqlite, Db::Postgres],
        }
    }
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// A field of `/proc/PID/status` in kB (`VmHWM`, `VmRSS`).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A fresh, empty database: a SQLite file in `dir`, or the PostgreSQL
/// database `pg_name` dropped and created again; returns its URL.
pub async fn fresh_database(db: Db, dir: &Path, pg_admin_url: &str, pg_name: &str) -> BoxResult<String> {
    match db {
        Db::Sqlite => Ok(format!("sqlite://{}", dir.join("bench.db").display())),
        Db::Postgres => {
            let admin = sqlx::PgPool::connect(pg_admin_url).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")))
                .execute(&admin)
                .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {pg_name}"))).execute(&admin).await?;
            admin.close().await;
            let mut url = url::Url::parse(pg_admin_url)?;
            url.set_path(&format!("/{pg_name}"));
            Ok(url.to_string())
        }
    }
}

/// User + system CPU time a process has used so far.
pub fn proc_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Duration::ZERO };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return Duration::ZERO };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// (busy, total) jiffies of the whole machine.
pub fn machine_jiffies() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return (0, 0) };
    let Some(cpu) = stat.lines().next() else { return (0, 0) };
    let v: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

pub fn free_port() -> BoxResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process that is killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// N subscribers confirmed on `list_id`, in two statements. Ids are
/// UUIDv7-shaped and increasing, as the application's own are.
pub async fn generate_subscribers(store: &Store, list_id: uuid::Uuid, n: u64) -> BoxResult<()> {
    let now = chrono::Utc::now();
    let n = i64::try_from(n)?;
    match store {
        Store::Sqlite(pool) => {
            sqlx::query(
                "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1)
                 INSERT INTO subscribers (id, email, email_norm, email_hash, name, attributes, created_at, updated_at)
                 SELECT unhex(printf('%012x70008000%012x', 1700000000000 + i, i)),
                        'backer' || i || '@example.org', 'backer' || i || '@example.org',
                        lower(hex(randomblob(32))), 'Backer ' || i, '{}', $2, $2
                 FROM seq",
            )
            .bind(n)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at, confirmed_at)
                 SELECT id, $1, 'confirmed', $2, $2, $2 FROM subscribers",
            )
            .bind(list_id)
            .bind(now)
            .execute(pool)
            .await?;
        }
        Store::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO subscribers (id, email, email_norm, email_hash, name, attributes, created_at, updated_at)
                 SELECT (lpad(to_hex(1700000000000 + i), 12, '0') || '70008000' || lpad(to_hex(i), 12, '0'))::uuid,
                        'backer' || i || '@example.org', 'backer' || i || '@example.org',
                        encode(sha256(convert_to('backer' || i || '@example.org', 'UTF8')), 'hex'),
                        'Backer ' || i, '{}', $2, $2
                 FROM generate_series(1, $1) AS i",
            )
            .bind(n)
            .bind(now)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at, confirmed_at)
                 SELECT id, $1, 'confirmed', $2, $2, $2 FROM subscribers",
            )
            .bind(list_id)
            .bind(now)
            .execute(pool)
            .await?;
            // What autovacuum would have done long before anyone sends.
            sqlx::query("ANALYZE subscribers").execute(pool).await?;
            sqlx::query("ANALYZE subscriptions").execute(pool).await?;
        }
    }
    Ok(())
}
