//! Import benchmark (issue 4, "Imports and exports"): the real release
//! binary's `tidings import` of an N-row CSV into a fresh database.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/bench-target-imports cargo bench --bench import -- --n 1000000 --db both --runs 3
//! ```
//!
//! Once: generate an N-row CSV (address, first and last name, two more
//! columns that become attributes; every 1,000th row repeats an earlier
//! address in capitals, every 5,000th is not an address). Then, for each
//! database and run:
//! 1. make a fresh database (a SQLite file in a temporary folder, or the
//!    PostgreSQL database `tidings_bench_imports`, dropped and re-created)
//!    and run `tidings migrate` (not timed);
//! 2. **time `tidings import FILE --list updates --basis …`** (`confirmed`:
//!    one `imported` ledger entry per person), from spawning the process to
//!    its exit; its **peak RSS** is the kernel's `VmHWM` from
//!    `/proc/PID/status`, polled every 10 ms until it exits;
//! 3. check the outcome: the summary line, and in the database the
//!    subscribers, confirmed subscriptions and `imported` entries, each of
//!    which must equal the number of rows added.
//!
//! It prints one line per run and then the medians.

mod common;

use clap::Parser;
use common::{BoxResult, Db, DbChoice, fresh_database, median, proc_status_kb};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(about = "Times `tidings import` of an N-row CSV into a fresh SQLite and PostgreSQL database")]
struct Args {
    /// Rows in the CSV (comma-separated for several sizes).
    #[arg(long, value_delimiter = ',', default_value = "1000000")]
    n: Vec<u64>,
    #[arg(long, value_enum, default_value_t = DbChoice::Both)]
    db: DbChoice,
    /// Runs per database and size (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A PostgreSQL URL allowed to drop and create the database `tidings_bench_imports`.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_admin_url: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct RunResult {
    seconds: f64,
    peak_rss_kb: u64,
    load: f64,
}

const BASIS: &str = "paper sign-up sheets collected at stalls, 2019-2026";

/// Writes the CSV; returns (rows, rows that will be added).
fn write_csv(path: &Path, n: u64) -> BoxResult<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "Email,First name,Last name,Postcode,Joined")?;
    let mut added = 0;
    for i in 0..n {
        if i % 5000 == 4999 {
            writeln!(out, "not-an-address-{i},Nobody,Here,LS1 1AA,2024-01-01")?;
        } else if i % 1000 == 999 {
            // An address from 500 rows earlier, in capitals: a duplicate.
            writeln!(out, "SUPPORTER{}@EXAMPLE.ORG,Again,Twice,LS1 1AA,2024-01-01", i - 500)?;
        } else {
            added += 1;
            writeln!(
                out,
                "supporter{i}@example.org,First{i},\"Last, {i}\",LS{} {}AB,20{:02}-{:02}-{:02}",
                i % 30,
                i % 10,
                i % 26,
                1 + i % 12,
                1 + i % 28
            )?;
        }
    }
    out.flush()?;
    Ok(added)
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn tidings(database_url: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    cmd.env("TIDINGS_DATABASE_URL", database_url)
        .env("TIDINGS_LOG", std::env::var("TIDINGS_LOG").unwrap_or_else(|_| "warn".to_owned()))
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("none.toml"));
    cmd
}

/// (subscribers, confirmed subscriptions, imported ledger entries).
async fn counts(database_url: &str) -> BoxResult<(i64, i64, i64)> {
    let store = tidings::store::Store::connect(database_url).await?;
    let queries = [
        "SELECT COUNT(*) FROM subscribers",
        "SELECT COUNT(*) FROM subscriptions WHERE status = 'confirmed'",
        "SELECT COUNT(*) FROM consent_events WHERE kind = 'imported'",
    ];
    let mut out = [0i64; 3];
    for (q, slot) in queries.into_iter().zip(out.iter_mut()) {
        *slot = match &store {
            tidings::store::Store::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
            tidings::store::Store::Postgres(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
        };
    }
    store.close().await;
    Ok((out[0], out[1], out[2]))
}

async fn one_run(args: &Args, db: Db, csv: &Path, n: u64, added: u64) -> BoxResult<RunResult> {
    let dir = tempfile::tempdir()?;
    let database_url = fresh_database(db, dir.path(), &args.pg_admin_url, "tidings_bench_imports").await?;
    let migrated = tidings(&database_url, dir.path()).arg("migrate").stdout(Stdio::null()).status()?;
    if !migrated.success() {
        return Err("tidings migrate failed".into());
    }
    let load = load_average();
    let started = Instant::now();
    let mut child = tidings(&database_url, dir.path())
        .args(["import", &csv.display().to_string(), "--list", "updates", "--basis", BASIS])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = proc_status_kb(pid, "VmHWM:") {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().ok_or("no stdout")?, &mut stdout)?;
    if !status.success() {
        return Err(format!("tidings import failed: {status}").into());
    }
    let expected = format!("{n} rows read: {added} added, 0 updated");
    if !stdout.contains(&expected) {
        return Err(format!("unexpected summary (wanted \"{expected}\"): {stdout}").into());
    }
    let (subscribers, confirmed, imported) = counts(&database_url).await?;
    let added = added as i64;
    if (subscribers, confirmed, imported) != (added, added, added) {
        return Err(format!(
            "wrong outcome: {subscribers} subscribers, {confirmed} confirmed, {imported} imported entries (want {added})"
        )
        .into());
    }
    Ok(RunResult { seconds, peak_rss_kb: peak, load })
}

#[tokio::main]
async fn main() -> BoxResult<()> {
    let args = Args::parse();
    let dbs = Db::chosen(args.db);
    let data = tempfile::tempdir()?;
    for &n in &args.n {
        let csv = data.path().join(format!("import-{n}.csv"));
        let added = write_csv(&csv, n)?;
        let bytes = std::fs::metadata(&csv)?.len();
        println!("CSV: {n} rows, {added} to add, {:.1} MB", bytes as f64 / 1e6);
        for &db in dbs {
            let mut results = Vec::new();
            for run in 1..=args.runs {
                let r = one_run(&args, db, &csv, n, added).await?;
                println!(
                    "{:<8} n={n} run {run}: {:.2} s, {:.0} rows/s, peak RSS {:.1} MB (load {:.2})",
                    db.name(),
                    r.seconds,
                    n as f64 / r.seconds,
                    r.peak_rss_kb as f64 / 1024.0,
                    r.load
                );
                results.push(r);
            }
            let secs = median(results.iter().map(|r| r.seconds).collect());
            let rss = median(results.iter().map(|r| r.peak_rss_kb as f64 / 1024.0).collect());
            println!(
                "{:<8} n={n} median of {}: {secs:.2} s, {:.0} rows/s, peak RSS {rss:.1} MB",
                db.name(),
                results.len(),
                n as f64 / secs
            );
        }
    }
    Ok(())
}
