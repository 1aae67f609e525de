//! What the benchmarks share: the database choice, a fresh database, and
//! reading `/proc` and medians.

use clap::ValueEnum;
use std::error::Error;
use std::path::Path;

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
