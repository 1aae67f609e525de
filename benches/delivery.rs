//! Delivery benchmark (issue 3, "Performance"): one update sent to N
//! confirmed subscribers through Postfix's `smtp-sink` on loopback, compared
//! with Postfix's own `smtp-source` pushing the same number of the same
//! messages into the same sink.
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/bench-target cargo bench --bench delivery -- --n 100000 --db both --runs 3
//! ```
//!
//! One run, for each database and size:
//! 1. start `smtp-sink` on a free loopback port;
//! 2. make a fresh database (a SQLite file in a temporary folder, or the
//!    PostgreSQL database `tidings_bench`, dropped and re-created), migrate
//!    and bootstrap it with the library, and generate N subscribers confirmed
//!    on the default list with plain SQL (`generate_series` / a recursive
//!    CTE: fixture data, not the code under test);
//! 3. create an update and **time the send request** (`services::updates::send`:
//!    the status change plus the audience snapshot, in one transaction);
//! 4. **time the delivery**: start the real release binary `tidings worker`
//!    as a subprocess against that database and wait until the update is
//!    `sent` (polled every 50 ms); its **peak RSS** is the kernel's `VmHWM`
//!    from `/proc/PID/status`, read just before stopping it;
//! 5. write one recipient's real rendered message to a file and **time
//!    `smtp-source -d -s C -m N -F FILE`** (the same bytes, the same number of
//!    sessions, connections reused as our pool does) into the same sink, just
//!    before and just after step 4; the mean of the two is the yardstick.
//!
//! It prints one line per run and then the medians. Needs `smtp-sink` and
//! `smtp-source` (Debian's `postfix` package; no daemon) and, for PostgreSQL,
//! a server where the admin URL may create databases.

mod common;

use clap::Parser;
use common::{
    BoxResult, Db, DbChoice, Guard, free_port, fresh_database, generate_subscribers, machine_jiffies, median, proc_cpu,
    proc_status_kb,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tidings::app::App;
use tidings::clock::Clock;
use tidings::config::Config;
use tidings::domain::{Actor, SignedToken};
use tidings::mail::update::{PreparedUpdate, Recipient};
use tidings::services::updates::{self, UpdateInput};

#[derive(Debug, Parser)]
#[command(about = "Times one update to N subscribers through smtp-sink, against smtp-source")]
struct Args {
    /// Number of confirmed subscribers (comma-separated for several sizes).
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    n: Vec<u64>,
    /// Which database(s).
    #[arg(long, value_enum, default_value_t = DbChoice::Both)]
    db: DbChoice,
    /// Runs per database and size (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// TIDINGS_SEND_CONCURRENCY (comma-separated to compare several); also smtp-source's `-s`.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    concurrency: Vec<u32>,
    /// A PostgreSQL URL allowed to drop and create the database `tidings_bench`.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_admin_url: String,
    /// Where smtp-sink and smtp-source are.
    #[arg(long, default_value = "/usr/sbin")]
    postfix_bin: PathBuf,
    /// Give up on one send after this many seconds.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
    /// Skip the smtp-source comparison.
    #[arg(long)]
    no_source: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What one run measured.
#[derive(Debug, Clone)]
struct RunResult {
    fixtures: Duration,
    snapshot: Duration,
    send: Duration,
    peak_rss_kb: u64,
    worker_cpu: Duration,
    sink_cpu: Duration,
    busy_percent: f64,
    /// The 1-minute load average when the worker started.
    load: f64,
    message_bytes: usize,
    source: Option<Duration>,
}

const SUBJECT: &str = "The hearing is on Tuesday: what happens next";
const BODY: &str = "Dear {{name}},

Thank you for standing with us. Here is where the case stands and what happens next.

## The hearing

The High Court has listed our judicial review for **Tuesday 14 October at 10:30**, in Court 3 of the Royal
Courts of Justice. The hearing is public: if you can come, please arrive by 10:00 and bring photo ID for
security. We expect the judge to reserve judgment, which usually means a written decision within six weeks.

## What we are asking the court

1. To declare that the consultation on closing the maternity unit was unlawful, because the options were
   decided before anyone was asked.
2. To quash the decision, so that the unit stays open while a fair consultation takes place.
3. To order the trust to publish the travel-time analysis it relied on.

## Money

Your donations have raised **£38,420** of the £45,000 we need for the hearing. Our barristers have agreed to
cap their fees, and every pound you give goes to the legal costs. If you can, please
[chip in again](https://campaign.example.org/donate) or share the appeal with a friend.

> \"We are not against change. We are against decisions taken behind closed doors.\" — Amira, campaign chair

Thank you, {{name}}. We will write again on the day of the hearing.

Save Our Maternity Unit
";

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn start_sink(postfix_bin: &Path, port: u16) -> BoxResult<Guard> {
    let mut cmd = Command::new(postfix_bin.join("smtp-sink"));
    if running_as_root() {
        cmd.args(["-u", "nobody"]);
    }
    cmd.arg(format!("127.0.0.1:{port}")).arg("1024").stdout(Stdio::null()).stderr(Stdio::null());
    let sink = Guard(cmd.spawn().map_err(|e| format!("cannot start smtp-sink (apt-get install postfix): {e}"))?);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("smtp-sink did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(sink)
}

/// The settings shared by the in-process setup and the worker subprocess.
fn settings(database_url: &str, smtp_port: u16, concurrency: u32) -> BTreeMap<String, String> {
    [
        ("TIDINGS_DATABASE_URL", database_url.to_owned()),
        ("TIDINGS_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        // A benchmark rig on loopback: no DKIM key or DNS records to check.
        ("TIDINGS_SENDER_AUTH", "off".to_owned()),
        ("TIDINGS_SEND_CONCURRENCY", concurrency.to_string()),
        ("TIDINGS_BASE_URL", "https://campaign.example.org".to_owned()),
        ("TIDINGS_FROM", "Save Our Maternity Unit <news@campaign.example.org>".to_owned()),
        ("TIDINGS_CONTACT_ADDRESS", "Save Our Maternity Unit, 1 High Street, Leeds LS1 1AA".to_owned()),
        ("TIDINGS_LOG", std::env::var("TIDINGS_LOG").unwrap_or_else(|_| "warn".to_owned())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn one_run(args: &Args, db: Db, n: u64, concurrency: u32) -> BoxResult<RunResult> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let sink = start_sink(&args.postfix_bin, port)?;
    let database_url = fresh_database(db, dir.path(), &args.pg_admin_url, "tidings_bench").await?;
    let env = settings(&database_url, port, concurrency);

    // Schema, first-run setup (secret key, the "updates" list), fixtures.
    let app = App::build(Config::from_map(&env)?, Clock::system()).await?;
    let ctx = app.ctx.clone();
    let list = ctx.store.read().await?.list_by_slug("updates").await?.ok_or("no default list")?;
    let started = Instant::now();
    generate_subscribers(&ctx.store, list.id, n).await?;
    let fixtures = started.elapsed();

    // The organiser's "send now": status change + audience snapshot.
    let input = UpdateInput {
        subject: Some(SUBJECT.to_owned()),
        body_markdown: Some(BODY.to_owned()),
        lists: Some(vec!["updates".to_owned()]),
    };
    let update = updates::create(&ctx, &input, &Actor::System).await?;
    let started = Instant::now();
    let request = updates::SendRequest { at: None, override_authentication: false, actor: &Actor::System };
    updates::send(&ctx, update.id, &request).await?;
    let snapshot = started.elapsed();
    let total = ctx.store.read().await?.delivery_stats(update.id).await?.total;
    if total != i64::try_from(n)? {
        return Err(format!("the snapshot holds {total} recipients, not {n}").into());
    }

    // One recipient's real copy, exactly as the worker renders it.
    let first = ctx.store.read().await?.deliveries_page(update.id, None, 1).await?;
    let first = first.first().ok_or("no deliveries")?;
    let prepared = PreparedUpdate::new(update.id, SUBJECT, BODY)?;
    let key = ctx.secret_key.as_slice();
    let recipient = Recipient {
        subscriber_id: first.subscriber_id,
        email: &first.email,
        name: "Backer 1",
        list_slug: &list.slug,
        list_name: &list.name,
        other_list_names: Vec::new(),
        unsubscribe_url: ctx
            .config
            .link(&format!("/unsubscribe/{}", SignedToken::unsubscribe(first.subscriber_id, list.id).encode(key))),
        preferences_url: ctx
            .config
            .link(&format!("/preferences/{}", SignedToken::preferences(first.subscriber_id).encode(key))),
        test: false,
    };
    let sample = ctx.composer.update(&prepared, &recipient)?;
    let message_bytes = sample.bytes.len();
    let message_file = dir.path().join("message.eml");
    // smtp-source appends CRLF to each line of the file: give it LF lines.
    std::fs::write(&message_file, String::from_utf8_lossy(&sample.bytes).replace("\r\n", "\n"))?;
    // smtp-source runs just before and just after our send, and the mean of
    // the two is the yardstick: other load on the machine then weighs on both.
    let source_before =
        if args.no_source { None } else { Some(smtp_source(args, &message_file, n, concurrency, port)?) };

    // The real worker binary sends it.
    // BENCH_WORKER_LOG=PATH keeps the worker's log (and TIDINGS_LOG sets its filter).
    let log_path = std::env::var_os("BENCH_WORKER_LOG").map(PathBuf::from).unwrap_or(dir.path().join("worker.log"));
    let log = std::fs::File::create(&log_path)?;
    let load = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split(' ').next()?.parse().ok());
    let (busy0, total0) = machine_jiffies();
    let sink_cpu0 = proc_cpu(sink.0.id());
    let started = Instant::now();
    let mut worker = Guard(
        Command::new(env!("CARGO_BIN_EXE_tidings"))
            .arg("worker")
            .current_dir(dir.path())
            .envs(&env)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    let pid = worker.0.id();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let (send, peak_rss_kb, worker_cpu) = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let status = ctx.store.read().await?.update_by_id(update.id).await?.map(|u| u.status);
        if status == Some(tidings::domain::UpdateStatus::Sent) {
            let elapsed = started.elapsed();
            let hwm = proc_status_kb(pid, "VmHWM:").ok_or("cannot read the worker's VmHWM")?;
            break (elapsed, hwm, proc_cpu(pid));
        }
        if let Some(exit) = worker.0.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("the worker exited ({exit}) before finishing:\n{log}").into());
        }
        if Instant::now() > deadline {
            return Err(format!("gave up after {} s", args.timeout_secs).into());
        }
    };
    let (busy1, total1) = machine_jiffies();
    let sink_cpu = proc_cpu(sink.0.id()).saturating_sub(sink_cpu0);
    drop(worker);
    let stats = ctx.store.read().await?.delivery_stats(update.id).await?;
    if stats.sent != i64::try_from(n)? {
        return Err(format!("only {} of {n} were sent: {stats:?}", stats.sent).into());
    }
    ctx.store.close().await;

    let source = match source_before {
        Some(before) => Some((before + smtp_source(args, &message_file, n, concurrency, port)?) / 2),
        None => None,
    };
    drop(sink);
    if db == Db::Postgres {
        // Leave nothing big behind.
        let admin = sqlx::PgPool::connect(&args.pg_admin_url).await?;
        sqlx::query("DROP DATABASE IF EXISTS tidings_bench WITH (FORCE)").execute(&admin).await?;
        admin.close().await;
    }
    let busy_percent = if total1 > total0 { 100.0 * (busy1 - busy0) as f64 / (total1 - total0) as f64 } else { 0.0 };
    Ok(RunResult {
        fixtures,
        snapshot,
        send,
        peak_rss_kb,
        worker_cpu,
        sink_cpu,
        busy_percent,
        load: load.unwrap_or(f64::NAN),
        message_bytes,
        source,
    })
}

/// Times `smtp-source` sending `n` copies of the message in `file` over
/// `sessions` parallel sessions, reusing each connection (`-d`) as our pool does.
fn smtp_source(args: &Args, file: &Path, n: u64, sessions: u32, port: u16) -> BoxResult<Duration> {
    let started = Instant::now();
    let status = Command::new(args.postfix_bin.join("smtp-source"))
        .args(["-4", "-d", "-s", &sessions.to_string(), "-m", &n.to_string(), "-M", "campaign.example.org"])
        .args(["-f", "news@campaign.example.org", "-t", "backer@example.org", "-F"])
        .arg(file)
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("smtp-source failed: {status}").into());
    }
    Ok(started.elapsed())
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() -> BoxResult<()> {
    let args = Args::parse();
    let dbs = Db::chosen(args.db);
    let runtime = tokio::runtime::Runtime::new()?;
    let mut results: BTreeMap<(Db, u64, u32), Vec<RunResult>> = BTreeMap::new();
    println!(
        "{:<8} {:>8} {:>4} {:>3} | {:>9} {:>9} {:>9} {:>8} {:>9} | {:>8} {:>6} | {:>8} {:>8} {:>5} {:>5} {:>6}",
        "db",
        "N",
        "conc",
        "run",
        "fixtures",
        "snapshot",
        "send",
        "msg/s",
        "peak RSS",
        "source/s",
        "ratio",
        "wrk CPU",
        "sink CPU",
        "busy",
        "load",
        "bytes"
    );
    for &n in &args.n {
        for &db in dbs {
            for &concurrency in &args.concurrency {
                for run in 1..=args.runs {
                    let r = runtime.block_on(one_run(&args, db, n, concurrency))?;
                    let ours = rate(n, r.send);
                    let theirs = r.source.map(|s| rate(n, s));
                    println!(
                        "{:<8} {:>8} {:>4} {:>3} | {:>8.2}s {:>8.3}s {:>8.2}s {:>8.0} {:>6.1} MB | {:>8} {:>6} | {:>7.1}s {:>7.1}s {:>4.0}% {:>5.1} {:>6}",
                        db.name(),
                        n,
                        concurrency,
                        run,
                        r.fixtures.as_secs_f64(),
                        r.snapshot.as_secs_f64(),
                        r.send.as_secs_f64(),
                        ours,
                        r.peak_rss_kb as f64 / 1024.0,
                        theirs.map(|t| format!("{t:.0}")).unwrap_or_else(|| "-".into()),
                        theirs.map(|t| format!("{:.2}", ours / t)).unwrap_or_else(|| "-".into()),
                        r.worker_cpu.as_secs_f64(),
                        r.sink_cpu.as_secs_f64(),
                        r.busy_percent,
                        r.load,
                        r.message_bytes,
                    );
                    results.entry((db, n, concurrency)).or_default().push(r);
                }
            }
        }
    }
    println!();
    println!("medians (send = `tidings worker` start to the update being `sent`; peak RSS = its VmHWM)");
    println!(
        "{:<8} {:>8} {:>4} {:>4} | {:>9} {:>9} {:>8} {:>9} | {:>8} {:>6}",
        "db", "N", "conc", "runs", "snapshot", "send", "msg/s", "peak RSS", "source/s", "ratio"
    );
    for ((db, n, concurrency), runs) in &results {
        let ours: Vec<f64> = runs.iter().map(|r| rate(*n, r.send)).collect();
        let theirs: Vec<f64> = runs.iter().filter_map(|r| r.source.map(|s| rate(*n, s))).collect();
        let ratios: Vec<f64> =
            runs.iter().filter_map(|r| r.source.map(|s| s.as_secs_f64() / r.send.as_secs_f64())).collect();
        println!(
            "{:<8} {:>8} {:>4} {:>4} | {:>8.3}s {:>8.2}s {:>8.0} {:>6.1} MB | {:>8} {:>6}",
            db.name(),
            n,
            concurrency,
            runs.len(),
            median(runs.iter().map(|r| r.snapshot.as_secs_f64()).collect()),
            median(runs.iter().map(|r| r.send.as_secs_f64()).collect()),
            median(ours),
            median(runs.iter().map(|r| r.peak_rss_kb as f64 / 1024.0).collect()),
            if theirs.is_empty() { "-".into() } else { format!("{:.0}", median(theirs)) },
            if ratios.is_empty() { "-".into() } else { format!("{:.2}", median(ratios)) },
        );
    }
    Ok(())
}
