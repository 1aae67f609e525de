//! Load benchmark: the public subscribe endpoint under many concurrent
//! connections, and the organiser's subscriber list beside it.
//!
//! ```sh
//! apt-get install -y wrk   # once
//! CARGO_TARGET_DIR=/work/bench-target cargo bench --bench subscribe -- --db both --seconds 60 --runs 3
//! ```
//!
//! One run, for each database:
//! 1. a fresh database (a SQLite file in a temporary folder, or the
//!    PostgreSQL database `tidings_bench_load`), migrated by `tidings
//!    migrate`, with an admin organiser made by `tidings user add`;
//! 2. the real binary `tidings serve --no-workers` on a free loopback port,
//!    trusting `X-Forwarded-For` (each request then comes from its own
//!    client address on its own /24 network, as a crowd would, and the
//!    per-address and per-network limits apply as in production);
//! 3. with `--admin-subscribers N`, N confirmed subscribers generated with
//!    plain SQL, an organiser logged in, and a second `wrk` reading the
//!    subscriber list (first page, list + status, address search, date
//!    filter, a later keyset page) for the whole run;
//! 4. `wrk -c CONNECTIONS -d SECONDS` with `benches/load/subscribe.lua`:
//!    every request a new address;
//! 5. afterwards, in the database: one subscriber, one pending subscription,
//!    one `requested` consent event and one confirmation mail in the outbox
//!    for every `202` answer, and none for anything else (an answer is only
//!    sent after its commit, so more rows than answers can only be requests
//!    wrk gave up on);
//! 6. with `--drain`, the real `tidings worker` then writes every queued
//!    confirmation to the outbox folder, and the files are counted.
//!
//! `cargo test --bench subscribe -- --seconds 5 --runs 1 --drain` runs the
//! same checks against the debug binary (correctness under load, no
//! figures); CI does that.

mod common;

use clap::Parser;
use common::{
    BoxResult, Db, DbChoice, Guard, free_port, fresh_database, generate_subscribers, machine_jiffies, median,
};
use common::{proc_cpu, proc_status_kb};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tidings::store::Store;

#[derive(Parser, Debug)]
#[command(about = "Subscribe endpoint under load (wrk), on SQLite and PostgreSQL")]
struct Args {
    /// Which database(s).
    #[arg(long, value_enum, default_value_t = DbChoice::Both)]
    db: DbChoice,
    /// Runs per database (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// How long wrk runs.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// wrk's open connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Confirmed subscribers to create first; with more than 0 the
    /// subscriber list is read under the load too.
    #[arg(long, default_value_t = 0)]
    admin_subscribers: u64,
    /// wrk connections reading the subscriber list.
    #[arg(long, default_value_t = 4)]
    admin_connections: u32,
    /// Let `tidings worker` send every confirmation into the outbox folder
    /// afterwards, and count the files.
    #[arg(long)]
    drain: bool,
    /// A PostgreSQL URL allowed to drop and create the database `tidings_bench_load`.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_admin_url: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// One wrk run's summary (the `WRK_JSON` line of benches/load/report.lua).
#[derive(Debug, Clone, serde::Deserialize)]
struct Wrk {
    requests: u64,
    duration_us: u64,
    connect_errors: u64,
    read_errors: u64,
    write_errors: u64,
    timeouts: u64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    codes: BTreeMap<String, u64>,
}

impl Wrk {
    fn per_second(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }

    fn answered(&self, code: &str) -> u64 {
        self.codes.get(code).copied().unwrap_or(0)
    }

    fn socket_errors(&self) -> u64 {
        self.connect_errors + self.read_errors + self.write_errors + self.timeouts
    }

    /// Every answer whose code is not `expected`, as `code×count`.
    fn unexpected(&self, expected: &str) -> String {
        let odd: Vec<String> =
            self.codes.iter().filter(|(c, _)| *c != expected).map(|(c, n)| format!("{c}×{n}")).collect();
        odd.join(" ")
    }
}

#[derive(Debug)]
struct RunResult {
    subscribe: Wrk,
    admin: Option<Wrk>,
    /// Rows found afterwards: subscribers, pending subscriptions, consent
    /// events, confirmation mails queued.
    committed: [u64; 4],
    mails_written: Option<u64>,
    server_cpu: Duration,
    peak_rss_kb: u64,
    busy_percent: f64,
    load: f64,
}

const ADMIN_EMAIL: &str = "load-admin@example.org";
const ADMIN_PASSWORD: &str = "a long enough load-test passphrase";

fn settings(database_url: &str, port: u16, outbox: &Path) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("TIDINGS_DATABASE_URL", database_url.to_owned()),
        ("TIDINGS_BIND", format!("127.0.0.1:{port}")),
        ("TIDINGS_OUTBOX_DIR", outbox.display().to_string()),
        ("TIDINGS_TRUSTED_PROXY_HEADER", "X-Forwarded-For".to_owned()),
        ("TIDINGS_BASE_URL", "https://campaign.example.org".to_owned()),
        ("TIDINGS_FROM", "Save Our Maternity Unit <news@campaign.example.org>".to_owned()),
        ("TIDINGS_CONTACT_ADDRESS", "Save Our Maternity Unit, 1 High Street, Leeds LS1 1AA".to_owned()),
        ("TIDINGS_LOG", std::env::var("TIDINGS_LOG").unwrap_or_else(|_| "warn".to_owned())),
    ])
}

fn tidings(env: &BTreeMap<&'static str, String>, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    cmd.args(args).arg("--config").arg(dir.join("none.toml")).current_dir(dir).envs(env);
    cmd
}

async fn wait_healthy(port: u16) -> BoxResult<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let http = reqwest::Client::new();
    while Instant::now() < deadline {
        if let Ok(res) = http.get(format!("http://127.0.0.1:{port}/healthz")).send().await
            && res.status() == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("tidings did not become healthy".into())
}

/// Logs the organiser in through the login form; returns the `Cookie`
/// header value for later requests.
async fn log_in(port: u16) -> BoxResult<String> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let base = format!("http://127.0.0.1:{port}");
    let page = http.get(format!("{base}/admin/login")).send().await?;
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    keep_cookies(&mut jar, &page);
    let html = page.text().await?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or("no CSRF field on the login page")?
        .to_owned();
    let cookie = |jar: &BTreeMap<String, String>| jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
    let res = http
        .post(format!("{base}/admin/login"))
        .header("cookie", cookie(&jar).join("; "))
        .form(&[("csrf", csrf.as_str()), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await?;
    if !res.status().is_redirection() {
        return Err(format!("login failed: {}", res.status()).into());
    }
    keep_cookies(&mut jar, &res);
    Ok(cookie(&jar).join("; "))
}

fn keep_cookies(jar: &mut BTreeMap<String, String>, res: &reqwest::Response) {
    for c in res.headers().get_all("set-cookie") {
        if let Some((name, value)) = c.to_str().ok().and_then(|c| c.split(';').next()?.split_once('=')) {
            jar.insert(name.to_owned(), value.to_owned());
        }
    }
}

/// Starts wrk; its summary is read from its output when it ends.
fn start_wrk(
    args: &Args,
    script: &str,
    connections: u32,
    threads: u32,
    port: u16,
    env: &[(&str, String)],
) -> BoxResult<Guard> {
    let child = Command::new("wrk")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-t", &threads.to_string(), "-c", &connections.to_string(), "-d", &format!("{}s", args.seconds)])
        .args(["--timeout", "10s", "-s", script, &format!("http://127.0.0.1:{port}")])
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start wrk (apt-get install wrk): {e}"))?;
    Ok(Guard(child))
}

fn wrk_summary(mut wrk: Guard) -> BoxResult<Wrk> {
    let mut out = String::new();
    if let Some(mut stdout) = wrk.0.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut out)?;
    }
    let status = wrk.0.wait()?;
    if !status.success() {
        return Err(format!("wrk failed ({status}): {out}").into());
    }
    let line = out.lines().find_map(|l| l.strip_prefix("WRK_JSON ")).ok_or_else(|| format!("no summary: {out}"))?;
    Ok(serde_json::from_str(line)?)
}

async fn count(store: &Store, sql: &str, prefix: &str) -> BoxResult<u64> {
    let n: i64 = match store {
        Store::Sqlite(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(prefix).fetch_one(pool).await?,
        Store::Postgres(pool) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(prefix).fetch_one(pool).await?,
    };
    Ok(u64::try_from(n)?)
}

/// What the run left in the database, for addresses starting `prefix`.
async fn committed(url: &str, prefix: &str) -> BoxResult<[u64; 4]> {
    let store = Store::connect(url).await?;
    let pattern = format!("{prefix}%");
    let subscribers = count(&store, "SELECT COUNT(*) FROM subscribers WHERE email LIKE $1", &pattern).await?;
    let pending = count(
        &store,
        "SELECT COUNT(*) FROM subscriptions s JOIN subscribers p ON p.id = s.subscriber_id
         WHERE p.email LIKE $1 AND s.status = 'pending'",
        &pattern,
    )
    .await?;
    let events = count(
        &store,
        "SELECT COUNT(*) FROM consent_events e JOIN subscribers p ON p.id = e.subscriber_id
         WHERE p.email LIKE $1 AND e.kind = 'requested'",
        &pattern,
    )
    .await?;
    let mails =
        count(&store, "SELECT COUNT(*) FROM outbox WHERE kind = 'confirmation' AND recipient LIKE $1", &pattern)
            .await?;
    store.close().await;
    Ok([subscribers, pending, events, mails])
}

/// Runs `tidings worker` until the outbox is empty; returns how many mail
/// files it wrote.
async fn drain(env: &BTreeMap<&'static str, String>, dir: &Path, outbox: &Path, url: &str) -> BoxResult<u64> {
    let _worker = Guard(tidings(env, dir, &["worker"]).stdout(Stdio::null()).spawn()?);
    let store = Store::connect(url).await?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let waiting = count(&store, "SELECT COUNT(*) FROM outbox WHERE status <> $1", "sent").await?;
        if waiting == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("{waiting} mails still in the outbox after 30 minutes").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    store.close().await;
    Ok(std::fs::read_dir(outbox)?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml")))
        .count() as u64)
}

async fn one_run(args: &Args, db: Db, run: usize) -> BoxResult<RunResult> {
    let dir = tempfile::tempdir()?;
    let outbox = dir.path().join("outbox");
    let url = fresh_database(db, dir.path(), &args.pg_admin_url, "tidings_bench_load").await?;
    let port = free_port()?;
    let env = settings(&url, port, &outbox);
    let status = tidings(&env, dir.path(), &["migrate"]).stdout(Stdio::null()).status()?;
    if !status.success() {
        return Err("tidings migrate failed".into());
    }
    let mut add =
        tidings(&env, dir.path(), &["user", "add", "--email", ADMIN_EMAIL, "--role", "admin", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
    if let Some(mut stdin) = add.stdin.take() {
        std::io::Write::write_all(&mut stdin, format!("{ADMIN_PASSWORD}\n").as_bytes())?;
    }
    if !add.wait()?.success() {
        return Err("tidings user add failed".into());
    }
    let server = Guard(tidings(&env, dir.path(), &["serve", "--no-workers"]).stdout(Stdio::null()).spawn()?);
    wait_healthy(port).await?;

    let admin = if args.admin_subscribers > 0 {
        let store = Store::connect(&url).await?;
        let list = store.read().await?.list_by_slug("updates").await?.ok_or("no default list")?;
        generate_subscribers(&store, list.id, args.admin_subscribers).await?;
        store.close().await;
        let cookie = log_in(port).await?;
        // The views an organiser uses, on the generated backers.
        let paths = [
            "/admin/subscribers".to_owned(),
            "/admin/subscribers?list=updates&status=confirmed".to_owned(),
            format!("/admin/subscribers?q=backer{}", args.admin_subscribers / 2),
            "/admin/subscribers?created_from=2020-01-01&status=confirmed".to_owned(),
            later_page(port, &cookie).await?,
        ];
        Some(start_wrk(
            args,
            "benches/load/admin.lua",
            args.admin_connections,
            1,
            port,
            &[("ADMIN_COOKIE", cookie), ("ADMIN_PATHS", paths.join("|"))],
        )?)
    } else {
        None
    };

    let tag = format!("r{run}x{}", std::process::id());
    let load = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split(' ').next()?.parse().ok());
    let (busy0, total0) = machine_jiffies();
    let cpu0 = proc_cpu(server.0.id());
    let wrk = start_wrk(
        args,
        "benches/load/subscribe.lua",
        args.connections,
        args.threads,
        port,
        &[("LOAD_RUN", tag.clone())],
    )?;
    let subscribe = wrk_summary(wrk)?;
    let admin = admin.map(wrk_summary).transpose()?;
    let (busy1, total1) = machine_jiffies();
    let server_cpu = proc_cpu(server.0.id()).saturating_sub(cpu0);
    let peak_rss_kb = proc_status_kb(server.0.id(), "VmHWM").unwrap_or(0);
    drop(server);

    let committed = committed(&url, &format!("load-{tag}-")).await?;
    let mails_written = if args.drain { Some(drain(&env, dir.path(), &outbox, &url).await?) } else { None };
    Ok(RunResult {
        subscribe,
        admin,
        committed,
        mails_written,
        server_cpu,
        peak_rss_kb,
        busy_percent: 100.0 * (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64,
        load: load.unwrap_or(f64::NAN),
    })
}

/// The address of the subscriber list's fifth page (keyset cursor), for
/// the "later page" view.
async fn later_page(port: u16, cookie: &str) -> BoxResult<String> {
    let http = reqwest::Client::new();
    let mut path = "/admin/subscribers".to_owned();
    for _ in 0..4 {
        let html =
            http.get(format!("http://127.0.0.1:{port}{path}")).header("cookie", cookie).send().await?.text().await?;
        let (before, _) = html.split_once("\" rel=\"next\"").ok_or("the subscriber list has fewer than five pages")?;
        let href = before.rsplit_once("href=\"").ok_or("no link to the next page")?.1;
        path = href.replace("&amp;", "&");
    }
    Ok(path)
}

/// Checks what must hold whatever the speed; returns the problems found.
fn problems(r: &RunResult, connections: u32) -> Vec<String> {
    let mut found = Vec::new();
    let accepted = r.subscribe.answered("202");
    let odd = r.subscribe.unexpected("202");
    if !odd.is_empty() {
        found.push(format!("answers other than 202: {odd}"));
    }
    if r.subscribe.socket_errors() > 0 {
        found.push(format!("{} socket errors or timeouts", r.subscribe.socket_errors()));
    }
    // wrk counts an answer only if it arrived; a request cut off when wrk
    // stops (one per connection at most) may still have committed, so there
    // may be a few more rows, never fewer.
    let unanswered = u64::from(connections) + r.subscribe.socket_errors();
    let [subscribers, pending, events, mails] = r.committed;
    for (what, n) in [
        ("subscribers", subscribers),
        ("pending subscriptions", pending),
        ("requested events", events),
        ("confirmation mails", mails),
    ] {
        if n < accepted || n > accepted + unanswered {
            found.push(format!("{n} {what} for {accepted} accepted subscribes"));
        }
    }
    if let Some(written) = r.mails_written
        && written != mails
    {
        found.push(format!("{written} mail files written for {mails} queued confirmations"));
    }
    if let Some(admin) = &r.admin
        && (!admin.unexpected("200").is_empty() || admin.socket_errors() > 0)
    {
        found.push(format!("subscriber list: {} {} socket errors", admin.unexpected("200"), admin.socket_errors()));
    }
    found
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn main() -> BoxResult<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let mut all: BTreeMap<Db, Vec<RunResult>> = BTreeMap::new();
    let mut failed = false;
    println!(
        "{:<8} {:>3} | {:>8} {:>8} {:>7} {:>7} {:>7} {:>6} | {:>8} {:>8} | {:>8} {:>7} {:>7} | {:>7} {:>8} {:>5} {:>5}",
        "db",
        "run",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "committed",
        "mails",
        "list r/s",
        "p50 ms",
        "p99 ms",
        "CPU s",
        "RSS",
        "busy",
        "load"
    );
    for &db in Db::chosen(args.db) {
        for run in 1..=args.runs {
            let r = runtime.block_on(one_run(&args, db, run))?;
            let s = &r.subscribe;
            println!(
                "{:<8} {:>3} | {:>8} {:>8.0} {:>7.2} {:>7.2} {:>7.1} {:>6} | {:>8} {:>8} | {:>8} {:>7} {:>7} | {:>7.1} {:>5.1} MB {:>4.0}% {:>5.1}",
                db.name(),
                run,
                s.requests,
                s.per_second(),
                ms(s.p50_us),
                ms(s.p99_us),
                ms(s.max_us),
                s.requests - s.answered("202") + s.socket_errors(),
                r.committed[0],
                r.mails_written.map_or_else(|| r.committed[3].to_string(), |w| format!("{w}✓")),
                r.admin.as_ref().map_or("-".into(), |a| format!("{:.0}", a.per_second())),
                r.admin.as_ref().map_or("-".into(), |a| format!("{:.1}", ms(a.p50_us))),
                r.admin.as_ref().map_or("-".into(), |a| format!("{:.1}", ms(a.p99_us))),
                r.server_cpu.as_secs_f64(),
                r.peak_rss_kb as f64 / 1024.0,
                r.busy_percent,
                r.load,
            );
            for p in problems(&r, args.connections) {
                failed = true;
                eprintln!("PROBLEM ({} run {run}): {p}", db.name());
            }
            all.entry(db).or_default().push(r);
        }
    }
    println!();
    println!("medians: subscribe req/s, p50, p99 (ms); subscriber list req/s, p50, p99 (ms)");
    for (db, runs) in &all {
        let m = |f: &dyn Fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
        let admin = |f: &dyn Fn(&Wrk) -> f64| median(runs.iter().filter_map(|r| r.admin.as_ref().map(f)).collect());
        println!(
            "{:<8} {:>8.0} {:>7.2} {:>7.2} | {:>7.0} {:>7.1} {:>7.1}",
            db.name(),
            m(&|r| r.subscribe.per_second()),
            m(&|r| ms(r.subscribe.p50_us)),
            m(&|r| ms(r.subscribe.p99_us)),
            admin(&|a| a.per_second()),
            admin(&|a| ms(a.p50_us)),
            admin(&|a| ms(a.p99_us)),
        );
    }
    if failed {
        return Err("the load run found problems (above)".into());
    }
    Ok(())
}
