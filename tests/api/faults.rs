//! Fault injection against the real `tidings` binary: `kill -9` at random
//! moments of a large send, the database going away mid-send, the SMTP
//! relay refusing service, a full disk under the outbox folder, and the
//! clock jumping around a scheduled send.
//!
//! Each test proves the same two things. **Nothing lost**: every recipient
//! is recorded `sent` and reached the SMTP server (or the outbox folder) at
//! least once, and every supporter who was told "check your inbox" while the
//! fault was on has their subscription, their consent record and their
//! confirmation mail. **Nothing doubled beyond the in-flight window**: the
//! extra copies are at most (faults injected) × (one claim batch,
//! [`batch_size`]: what is sent but not yet recorded never exceeds it), and
//! at most one extra confirmation per fault (the outbox records each message
//! as soon as it is sent).
//!
//! `TIDINGS_FAULTS_LONG=1` runs bigger and longer variants (more
//! recipients, more kills, a one-minute SMTP outage, longer database
//! outages); `TIDINGS_FAULTS_SEED=N` repeats the random kill moments of an
//! earlier run (each run prints its seed).

use crate::both_backends;
use crate::process::{Api, Env, create_token, env, run, seed_backers, spawn, wait_healthy};
use crate::support::app::{Db, TestApp};
use crate::support::smtp::{Outage, TestSmtp};
use reqwest::Method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tidings::store::Store;
use tidings::workers::delivery::batch_size;

both_backends!(
    kill_9_at_random_moments_of_a_large_send_loses_nobody_and_doubles_at_most_the_window,
    the_database_going_away_mid_send_loses_nobody_and_the_worker_carries_on,
    an_smtp_relay_refusing_service_mid_send_loses_nobody_and_spends_no_attempts,
    a_full_disk_under_the_outbox_folder_delays_mail_then_writes_each_once_and_whole,
    clock_jumps_around_a_scheduled_send_neither_repeat_it_nor_send_it_early,
    clock_jumps_in_the_real_binary_neither_repeat_a_scheduled_send_nor_send_it_early,
);

/// `TIDINGS_FAULTS_LONG=1`: the bigger, longer variants.
fn long() -> bool {
    std::env::var("TIDINGS_FAULTS_LONG").is_ok_and(|v| v == "1")
}

fn backend(db: &Db) -> &'static str {
    match db {
        Db::Sqlite => "SQLite",
        Db::Postgres(_) => "PostgreSQL",
    }
}

/// Prints how long a test took when it ends (for the figures in the
/// reliability notes).
struct Timed(&'static str, &'static str, Instant);

impl Timed {
    fn start(what: &'static str, db: &Db) -> Timed {
        Timed(what, backend(db), Instant::now())
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        eprintln!("FAULTS TIME {} ({}): {:.1} s", self.0, self.1, self.2.elapsed().as_secs_f64());
    }
}

/// `TIDINGS_SEND_CONCURRENCY` in these tests (the default).
const CONCURRENCY: u32 = 4;

/// A small seeded generator (SplitMix64): fault moments are random, and the
/// printed seed repeats them.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = match std::env::var("TIDINGS_FAULTS_SEED") {
            Ok(s) => s.parse().expect("TIDINGS_FAULTS_SEED is a number"),
            Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
        };
        eprintln!("{test}: seed {seed} (TIDINGS_FAULTS_SEED={seed} repeats these moments)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Rows of a one-column query, on either backend.
async fn column<T>(url: &str, sql: &'static str) -> Vec<T>
where
    T: Send + Unpin + for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    let store = Store::connect(url).await.expect("connect to the test database");
    let rows = match &store {
        Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
    }
    .expect("query");
    store.close().await;
    rows
}

async fn count(url: &str, sql: &'static str) -> i64 {
    column::<i64>(url, sql).await.first().copied().unwrap_or_default()
}

/// Supporters subscribing through the public form, one every 100 ms, while
/// a fault is on. Only the requests answered "check your inbox" (200) count
/// as accepted: each of those must end with a pending subscription, a
/// `requested` consent record and a confirmation mail.
struct Joiners {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

const JOINER_DOMAIN: &str = "joiners.example.net";

impl Joiners {
    fn start(port: u16) -> Joiners {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
            let mut accepted = Vec::new();
            for i in 0.. {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let email = format!("j{i}@{JOINER_DOMAIN}");
                let res = http
                    .post(format!("http://127.0.0.1:{port}/subscribe"))
                    .form(&[("email", email.as_str()), ("lists", "updates"), ("consent", "updates")])
                    .send()
                    .await;
                if res.is_ok_and(|r| r.status() == 200) {
                    accepted.push(email);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            accepted
        });
        Joiners { stop, task }
    }

    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the joiners' task")
    }
}

/// Checks that every accepted joiner has a pending subscription, a
/// `requested` consent record and a confirmation mail (waiting for the
/// outbox to drain), with at most `faults` extra copies in all. Returns the
/// extra copies.
async fn check_joiners(
    url: &str,
    accepted: &[String],
    copies: impl Fn() -> HashMap<String, usize>,
    faults: usize,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(90);
    while count(url, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain after the faults");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let recorded: Vec<String> = column(
        url,
        "SELECT s.email FROM subscribers s
         WHERE s.email LIKE '%@joiners.example.net'
           AND EXISTS (SELECT 1 FROM subscriptions sub WHERE sub.subscriber_id = s.id AND sub.status = 'pending')
           AND EXISTS (SELECT 1 FROM consent_events e WHERE e.subscriber_id = s.id AND e.kind = 'requested')",
    )
    .await;
    let copies = copies();
    let mut extra = 0;
    for email in accepted {
        assert!(
            recorded.contains(email),
            "{email} was told to check their inbox, but the subscription or consent record is missing"
        );
        let n = copies.get(email).copied().unwrap_or(0);
        assert!(n >= 1, "{email} never got a confirmation mail");
        extra += n - 1;
    }
    assert!(
        extra <= faults,
        "{extra} extra confirmation mails after {faults} faults (at most one in flight per fault)"
    );
    extra
}

/// A `tidings` process that is killed when the test ends, even by a panic
/// (an orphan would keep the test run's output open).
struct Guarded(Child);

impl Guarded {
    fn spawn(env: &Env, args: &[&str]) -> Guarded {
        Guarded(spawn(env, args))
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().expect("wait on tidings").is_none()
    }

    fn id(&self) -> u32 {
        self.0.id()
    }

    /// `kill -9`, and reap it.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real `tidings serve` sending one update to `n` confirmed backers
/// (`b{i}@example.org`) through a [`TestSmtp`], with supporters joining
/// meanwhile.
struct BulkSend {
    smtp: TestSmtp,
    env: Env,
    port: u16,
    server: Guarded,
    api: Api,
    id: String,
    n: usize,
    joiners: Option<Joiners>,
    started: Instant,
}

impl BulkSend {
    /// `settings` override the environment of the processes.
    async fn start(db: &Db, n: usize, settings: &[(&str, &str)]) -> BulkSend {
        let smtp = TestSmtp::start();
        let (mut env, port) = env(db, &smtp.url()).await;
        env.set("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", Some("0"));
        for (k, v) in settings {
            env.set(k, Some(v));
        }
        let migrated = run(&env, &["migrate"], None);
        assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
        let token = create_token(&env);
        // `serve` makes the default list; seed once it exists.
        let server = Guarded::spawn(&env, &["serve"]);
        wait_healthy(port).await;
        let seeding = Instant::now();
        seed_backers(&env, "b", n).await;
        eprintln!("seeded {n} backers in {:.1} s", seeding.elapsed().as_secs_f64());
        let api = Api::new(port, &token);
        let started = Instant::now();
        let id = api.send_update("Faults").await;
        let joiners = Joiners::start(port);
        BulkSend { smtp, env, port, server, api, id, n, joiners: Some(joiners), started }
    }

    fn alive(&mut self) -> bool {
        self.server.alive()
    }

    /// `kill -9`, then start again at once.
    fn kill_and_restart(&mut self) {
        self.server.kill();
        self.server = Guarded::spawn(&self.env, &["serve"]);
    }

    /// Waits for the send to finish and checks everything; `faults` is how
    /// many faults were injected. Returns what was observed.
    async fn finish(&mut self, faults: usize, timeout: Duration) -> Observed {
        let server = &mut self.server;
        self.api.wait_until_sent(&self.id, timeout, || server.alive()).await;
        let elapsed = self.started.elapsed();
        let accepted = self.joiners.take().expect("finished once").stop().await;
        let url = self.env.database_url();
        let stats = self.api.get(&format!("/updates/{}/stats", self.id)).await;
        assert_eq!(
            (stats["sent"].as_u64(), stats["failed"].as_u64(), stats["pending"].as_u64()),
            (Some(self.n as u64), Some(0), Some(0)),
            "every backer recorded as sent: {stats}"
        );
        let smtp = &self.smtp;
        let joiner_extra = check_joiners(&url, &accepted, || smtp.copies(), faults).await;
        let copies = smtp.copies();
        let mut extra = 0;
        for i in 0..self.n {
            let n = copies.get(&format!("b{i}@example.org")).copied().unwrap_or(0);
            assert!(n >= 1, "b{i}@example.org was recorded as sent but never reached the SMTP server");
            extra += n - 1;
        }
        let window = batch_size(CONCURRENCY);
        assert!(
            extra <= faults * window,
            "{extra} extra copies after {faults} faults exceed {faults} × the in-flight window of {window}"
        );
        assert!(self.server.alive(), "tidings is still running");
        self.server.kill();
        Observed { n: self.n, faults, window, extra, joiners: accepted.len(), joiner_extra, elapsed }
    }
}

/// What a bulk fault test saw.
struct Observed {
    n: usize,
    faults: usize,
    window: usize,
    extra: usize,
    joiners: usize,
    joiner_extra: usize,
    elapsed: Duration,
}

impl Observed {
    fn report(&self, what: &str) {
        eprintln!(
            "FAULTS {what}: {} recipients, {} faults, {} extra copies (bound {} = {} × window {}); \
             {} supporters joined meanwhile, {} extra confirmations; send took {:.1} s",
            self.n,
            self.faults,
            self.extra,
            self.faults * self.window,
            self.faults,
            self.window,
            self.joiners,
            self.joiner_extra,
            self.elapsed.as_secs_f64()
        );
    }
}

async fn kill_9_at_random_moments_of_a_large_send_loses_nobody_and_doubles_at_most_the_window(db: Db) {
    let _timed = Timed::start("kill -9", &db);
    let (n, kills) = if long() { (100_000, 50) } else { (20_000, 20) };
    let mut rng = Rng::from_env("kill -9");
    // A short lease, so a killed process's batch is taken up again within seconds.
    let mut send = BulkSend::start(&db, n, &[("TIDINGS_WORKER_LEASE_SECONDS", "4")]).await;
    // The moments: after a random number of messages has gone out, or (one
    // kill in four) a random instant after the restart, which often falls
    // while the process is still starting.
    let mut moments: Vec<usize> = (0..kills).map(|_| rng.below(n as u64 * 19 / 20) as usize).collect();
    moments.sort_unstable();
    let mut plan = Vec::new();
    for at in moments {
        let moment = if rng.below(4) == 0 {
            Moment::AfterStart(Duration::from_millis(rng.below(1500)))
        } else {
            Moment::AfterMessages(at, Duration::from_millis(rng.below(300)))
        };
        match moment {
            Moment::AfterStart(delay) => tokio::time::sleep(delay).await,
            Moment::AfterMessages(at, delay) => {
                wait_healthy(send.port).await;
                let reached = send.smtp.wait_for_count(at, Duration::from_secs(120)).await;
                assert!(reached >= at, "the send stalled at {reached} messages");
                tokio::time::sleep(delay).await;
            }
        }
        plan.push((moment, send.smtp.message_count()));
        assert!(send.alive(), "tidings died by itself before kill {}", plan.len());
        send.kill_and_restart();
    }
    eprintln!("kill -9 moments (and messages out at each kill): {plan:?}");
    let observed = send.finish(kills, Duration::from_secs(600)).await;
    observed.report(&format!("kill -9 x{kills} ({})", backend(&db)));
}

#[derive(Debug, Clone, Copy)]
enum Moment {
    /// This long after the process was started.
    AfterStart(Duration),
    /// This long after this many messages reached the SMTP server.
    AfterMessages(usize, Duration),
}

/// The database going away mid-send, with the same `tidings` process
/// running throughout.
///
/// PostgreSQL: a private cluster of the test's own (the shared server must
/// stay up for the other tests) is restarted in immediate mode, which
/// aborts every open connection and transaction, and later stopped for
/// a few seconds and started again. SQLite has no server to restart: its
/// equivalent is another process holding the write lock, first for less
/// than the application's busy timeout (writers wait) and then for longer
/// (writers fail with `SQLITE_BUSY`).
async fn the_database_going_away_mid_send_loses_nobody_and_the_worker_carries_on(db: Db) {
    let _timed = Timed::start("database outage", &db);
    let n = if long() { 20_000 } else { 5_000 };
    let outage = if long() { Duration::from_secs(30) } else { Duration::from_secs(5) };
    let cluster = match &db {
        Db::Sqlite => None,
        Db::Postgres(_) => Some(PrivatePg::start()),
    };
    let db_for_app = match &cluster {
        Some(pg) => Db::Postgres(pg.url()),
        None => Db::Sqlite,
    };
    let mut send = BulkSend::start(&db_for_app, n, &[("TIDINGS_WORKER_LEASE_SECONDS", "4")]).await;
    let mut faults = 0;
    let moments = [n / 5, n / 2];
    for (i, at) in moments.into_iter().enumerate() {
        let reached = send.smtp.wait_for_count(at, Duration::from_secs(120)).await;
        assert!(reached >= at, "the send stalled at {reached} messages");
        let down = Instant::now();
        match (&cluster, i) {
            (Some(pg), 0) => pg.restart_immediate(),
            (Some(pg), _) => {
                pg.stop_immediate();
                tokio::time::sleep(outage).await;
                pg.start_again();
            }
            (None, 0) => hold_sqlite_write_lock(&send.env.database_url(), Duration::from_secs(3)).await,
            (None, _) => hold_sqlite_write_lock(&send.env.database_url(), Duration::from_secs(10) + outage).await,
        }
        faults += 1;
        let back = send.smtp.message_count();
        eprintln!("database fault {faults}: {:.1} s, {back} messages out when it ended", down.elapsed().as_secs_f64());
        assert!(send.alive(), "tidings must ride out the database outage, not exit");
    }
    let resumed_from = send.smtp.message_count();
    let resumed = send.smtp.wait_for_count(resumed_from + 1, Duration::from_secs(90)).await;
    assert!(resumed > resumed_from, "sending resumed after the database came back");
    let observed = send.finish(faults, Duration::from_secs(300)).await;
    observed.report(&format!("database outage x{faults} ({})", backend(&db)));
}

/// Holds SQLite's write lock on the database at `url` from a connection of
/// this (another) process for `hold`, as a backup tool or a stuck writer
/// would.
async fn hold_sqlite_write_lock(url: &str, hold: Duration) {
    use sqlx::Connection;
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).unwrap().busy_timeout(Duration::from_secs(30));
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.expect("open the database file");
    // In WAL mode EXCLUSIVE takes the write lock; readers carry on.
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await.expect("take the write lock");
    tokio::time::sleep(hold).await;
    sqlx::query("COMMIT").execute(&mut conn).await.expect("release the write lock");
    conn.close().await.expect("close");
}

/// A PostgreSQL cluster of the test's own in a temporary directory, run as
/// the `postgres` user when the tests run as root (PostgreSQL refuses to
/// run as root), with trust authentication on 127.0.0.1.
struct PrivatePg {
    _dir: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePg {
    fn start() -> PrivatePg {
        let bin = ["15", "16", "17", "14", "13"]
            .iter()
            .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
            .find(|b| b.join("initdb").exists())
            .expect("PostgreSQL's server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let chown = Command::new("chown").arg("postgres:postgres").arg(dir.path()).status().unwrap();
            assert!(chown.success(), "chown the private cluster's directory to postgres");
        }
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePg { _dir: dir, data, bin, port };
        let init = pg
            .as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&pg.data)
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        pg.start_again();
        pg
    }

    /// A command running PostgreSQL's `program`, as the `postgres` user if we are root.
    fn as_postgres(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `pg_ctl` with this cluster's options. Its output, and the
    /// server's, go to files: a server it starts must not hold a pipe of
    /// ours open.
    fn pg_ctl(&self, args: &[&str]) {
        let dir = self.data.parent().unwrap();
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, dir.display());
        let out_path = dir.join("pg_ctl.out");
        let out = std::fs::File::create(&out_path).unwrap();
        let status = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        let said = std::fs::read_to_string(&out_path).unwrap_or_default();
        assert!(status.success(), "pg_ctl {args:?}: {said}");
    }

    fn start_again(&self) {
        self.pg_ctl(&["start"]);
    }

    /// Every backend is killed at once, open transactions are lost, and the
    /// server starts again with crash recovery.
    fn restart_immediate(&self) {
        self.pg_ctl(&["-m", "immediate", "restart"]);
    }

    fn stop_immediate(&self) {
        self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The relay keeps listening but refuses service for a while: the open
/// sessions are cut, then every `MAIL`/`RCPT`/`DATA` is answered `421`, then
/// every new connection is greeted with `421`; then it recovers.
async fn an_smtp_relay_refusing_service_mid_send_loses_nobody_and_spends_no_attempts(db: Db) {
    let _timed = Timed::start("SMTP 421 outage", &db);
    let (n, outage) = if long() { (20_000, Duration::from_secs(60)) } else { (5_000, Duration::from_secs(10)) };
    let mut send = BulkSend::start(&db, n, &[]).await;
    let at = n / 4;
    let reached = send.smtp.wait_for_count(at, Duration::from_secs(120)).await;
    assert!(reached >= at, "the send stalled at {reached} messages");
    let connections_before = send.smtp.connections();
    send.smtp.set_outage(Some(Outage::Command421));
    tokio::time::sleep(outage / 2).await;
    send.smtp.set_outage(Some(Outage::Greeting421));
    tokio::time::sleep(outage / 2).await;
    let during = send.smtp.message_count();
    let attempts = send.smtp.connections() - connections_before;
    send.smtp.set_outage(None);
    let recovered = Instant::now();
    let resumed = send.smtp.wait_for_count(during + 1, Duration::from_secs(90)).await;
    assert!(resumed > during, "sending resumed after the relay recovered");
    let resumed_after = recovered.elapsed();
    eprintln!(
        "SMTP outage of {} s: {attempts} connections tried during it; sending resumed {:.1} s after recovery",
        outage.as_secs(),
        resumed_after.as_secs_f64()
    );
    // The workers pause, doubling from a second up to a minute, rather than
    // try every queued message or knock again on every new subscribe: at
    // most (tries that fit in the outage) × (a new session per sender plus a
    // pooled one, for the delivery and the outbox workers) connections.
    let tries = outage.as_secs_f64().log2().ceil() as usize + 2;
    let bound = tries * (2 * CONCURRENCY as usize + 2);
    assert!(
        attempts <= bound,
        "{attempts} connections during a {outage:?} outage (at most {bound}): the relay was hammered"
    );
    assert!(resumed_after <= Duration::from_secs(65), "the longest pause is a minute");
    let url = send.env.database_url();
    let observed = send.finish(1, Duration::from_secs(300)).await;
    // An outage is never charged to the messages: each was tried once.
    let retried = count(&url, "SELECT COUNT(*) FROM deliveries WHERE attempts <> 1").await;
    assert_eq!(retried, 0, "deliveries whose attempts the outage spent");
    let outbox_retried = count(&url, "SELECT COUNT(*) FROM outbox WHERE attempts > 1").await;
    assert_eq!(outbox_retried, 0, "confirmation mails whose attempts the outage spent");
    observed.report(&format!("SMTP 421 outage of {} s ({})", outage.as_secs(), backend(&db)));
}

/// A small tmpfs, mounted for one test and unmounted when dropped.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    /// `None` (test skipped) when mounting is not possible here; under CI
    /// that is a failure, so the fault is never silently left untested.
    fn mount(bytes: usize) -> Option<TinyDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0755"), "tidings-faults"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(TinyDisk { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").is_err(),
                    "the disk-full test needs to mount a tmpfs (root, CAP_SYS_ADMIN): {why}"
                );
                eprintln!("cannot mount a tmpfs ({why}): disk-full test not run");
                crate::support::skip::case("disk-full tests", "cannot mount a tmpfs");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with `filler`, leaving one page free: the next message
    /// starts to be written and then runs out of space.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![b'x'; 4096];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(k) => written += k as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        f.set_len(written.saturating_sub(4096)).unwrap();
        filler
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// CPU seconds (user + system) the process `pid` has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// The `.eml` files and anything else left in the outbox folder.
fn outbox_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut eml = Vec::new();
    let mut other = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".eml") && !name.starts_with('.') { eml.push(path) } else { other.push(path) }
    }
    (eml, other)
}

/// The recipient of a written message, after checking it is whole: it
/// parses, and a multipart message ends with its closing boundary.
fn whole_message_recipient(path: &Path) -> String {
    use mail_parser::MimeHeaders;
    let data = std::fs::read(path).unwrap();
    let parsed =
        mail_parser::MessageParser::default().parse(&data).unwrap_or_else(|| panic!("{} parses", path.display()));
    let text = String::from_utf8_lossy(&data);
    if let Some(boundary) = parsed.content_type().and_then(|ct| ct.attribute("boundary")) {
        assert!(text.contains(&format!("--{boundary}--")), "{} is cut short", path.display());
    }
    assert!(text.ends_with("\r\n") || text.ends_with('\n'), "{} is cut short", path.display());
    parsed.to().and_then(|to| to.first()).and_then(|a| a.address()).expect("a To address").to_lowercase()
}

/// No SMTP relay: mail goes to the outbox folder, which is on a disk that
/// is full. Confirmations and an update wait (the process neither exits nor
/// spins) and nothing half-written is left; once space is freed every
/// message is written, once, whole.
async fn a_full_disk_under_the_outbox_folder_delays_mail_then_writes_each_once_and_whole(db: Db) {
    let _timed = Timed::start("full disk", &db);
    const JOINERS: usize = 5;
    const BACKERS: usize = 20;
    let full_for = if long() { Duration::from_secs(60) } else { Duration::from_secs(6) };
    let Some(disk) = TinyDisk::mount(256 * 1024) else { return };
    let outbox = disk.path().join("outbox");
    std::fs::create_dir(&outbox).unwrap();
    let (mut env, port) = env(&db, "").await;
    env.set("TIDINGS_SMTP_URL", None);
    env.set("TIDINGS_OUTBOX_DIR", Some(&outbox.display().to_string()));
    env.set("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", Some("0"));
    env.set("TIDINGS_WORKER_LEASE_SECONDS", Some("4"));
    let token = create_token(&env);
    let mut server = Guarded::spawn(&env, &["serve"]);
    wait_healthy(port).await;
    seed_backers(&env, "d", BACKERS).await;
    let url = env.database_url();

    let filler = disk.fill();
    let cpu_before = cpu_seconds(server.id());
    let http = reqwest::Client::new();
    let mut joiners = Vec::new();
    for i in 0..JOINERS {
        let email = format!("j{i}@{JOINER_DOMAIN}");
        let res = http
            .post(format!("http://127.0.0.1:{port}/subscribe"))
            .form(&[("email", email.as_str()), ("lists", "updates"), ("consent", "updates")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "subscribing does not need the disk");
        joiners.push(email);
    }
    let api = Api::new(port, &token);
    let id = api.send_update("Disk full").await;
    let full_since = Instant::now();
    tokio::time::sleep(full_for).await;
    let cpu = cpu_seconds(server.id()) - cpu_before;
    let (written, leftovers) = outbox_files(&outbox);
    eprintln!(
        "disk full for {:.1} s: {} messages written whole, {} other files, {cpu:.2} s of CPU",
        full_since.elapsed().as_secs_f64(),
        written.len(),
        leftovers.len()
    );
    assert!(server.alive(), "tidings must not exit on a full disk");
    assert!(leftovers.is_empty(), "half-written files left on the full disk: {leftovers:?}");
    for path in &written {
        whole_message_recipient(path);
    }
    assert!(written.len() < JOINERS + BACKERS, "the disk really was full");
    // Waiting, not spinning: a busy loop would use a core for the whole time.
    assert!(cpu < full_for.as_secs_f64() * 0.2, "{cpu:.2} s of CPU in {full_for:?} on a full disk: spinning");

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    api.wait_until_sent(&id, Duration::from_secs(120), || server.alive()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(&url, "SELECT COUNT(*) FROM outbox WHERE status <> 'sent'").await > 0 {
        assert!(Instant::now() < deadline, "the confirmations were not written after space was freed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered_in = freed.elapsed();
    server.kill();

    let (written, leftovers) = outbox_files(&outbox);
    assert!(leftovers.is_empty(), "nothing half-written left behind: {leftovers:?}");
    let mut per_recipient: BTreeMap<String, usize> = BTreeMap::new();
    for path in &written {
        *per_recipient.entry(whole_message_recipient(path)).or_default() += 1;
    }
    for email in joiners.iter().cloned().chain((0..BACKERS).map(|i| format!("d{i}@example.org"))) {
        assert_eq!(per_recipient.get(&email), Some(&1), "{email}: exactly one message written");
    }
    assert_eq!(written.len(), JOINERS + BACKERS, "{per_recipient:?}");
    let recorded =
        check_joiners(&url, &joiners, || per_recipient.iter().map(|(k, v)| (k.clone(), *v)).collect(), 0).await;
    assert_eq!(recorded, 0);
    let sent = count(&url, "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'").await;
    assert_eq!(sent, BACKERS as i64, "every copy of the update recorded as sent");
    eprintln!(
        "FAULTS disk full ({}): {} messages ({JOINERS} confirmations, {BACKERS} update copies) held {:.0} s, \
         written within {:.1} s of freeing space, 0 duplicates, 0 partial files, {cpu:.2} s CPU while full",
        backend(&db),
        JOINERS + BACKERS,
        full_for.as_secs_f64(),
        recovered_in.as_secs_f64()
    );
}

/// Runs the scheduler and delivery steps as the workers would at this
/// instant, a few times over.
async fn step_everything(app: &TestApp) {
    let no_stop = tokio::sync::watch::channel(false).1;
    for _ in 0..3 {
        app.scheduler.run_once(&no_stop).await.unwrap();
        app.delivery.run_once(&no_stop).await.unwrap();
    }
}

async fn schedule_made_updates(app: &TestApp) -> Vec<serde_json::Value> {
    let all = app.api_get("/updates").await;
    all.as_array().unwrap().iter().filter(|u| u["subject"] == "Daily note").cloned().collect()
}

/// In-process, with the application's clock moved both ways around a daily
/// schedule and a one-off scheduled update: a jump back before the time
/// sends nothing early, a jump forward past several ticks sends once (not
/// once per missed tick), and a jump back after the send (even one that
/// lands mid-send) sends nothing again and lets the send finish.
async fn clock_jumps_around_a_scheduled_send_neither_repeat_it_nor_send_it_early(db: Db) {
    let _timed = Timed::start("clock jumps (in-process)", &db);
    const BACKERS: usize = 120;
    let app = TestApp::spawn_with(db, &[("TIDINGS_SEND_CONCURRENCY", "1")]).await;
    app.confirmed_subscribers("c", BACKERS, "updates").await;
    let clock = &app.ctx.clock;
    let schedule = app
        .create_schedule(&json!({"name": "Daily", "cron": "0 9 * * *", "lists": ["updates"], "subject": "Daily note"}))
        .await;
    let tick: chrono::DateTime<chrono::Utc> = schedule["next_run_at"].as_str().unwrap().parse().unwrap();
    let one_off = app.create_update("Hearing result", "Body", &["updates"]).await;
    let send_at = tick + chrono::Duration::days(1) + chrono::Duration::hours(5);
    let res =
        app.api(Method::POST, &format!("/updates/{one_off}/send")).json(&json!({"at": send_at})).send().await.unwrap();
    assert_eq!(res.status(), 202);

    // Back before the tick: ten minutes before it the clock is put back an hour.
    app.advance_clock_to(tick - chrono::Duration::minutes(10));
    step_everything(&app).await;
    clock.rewind(Duration::from_secs(3600));
    step_everything(&app).await;
    app.advance_clock_to(tick - chrono::Duration::seconds(1));
    step_everything(&app).await;
    assert!(schedule_made_updates(&app).await.is_empty() && app.smtp.message_count() == 0, "nothing is sent early");
    app.advance_clock_to(tick + chrono::Duration::seconds(1));
    step_everything(&app).await;
    assert_eq!(schedule_made_updates(&app).await.len(), 1, "sent at its time");

    // Forward three days: three ticks and the one-off's time are skipped over.
    app.advance_clock_to(tick + chrono::Duration::days(3) + chrono::Duration::hours(1));
    let no_stop = tokio::sync::watch::channel(false).1;
    // One delivery step only: the sends are left half done.
    assert_eq!(app.scheduler.run_once(&no_stop).await.unwrap().sent, 1, "the missed ticks run once");
    app.delivery.run_once(&no_stop).await.unwrap();
    assert!(app.smtp.message_count() < 3 * BACKERS, "a send is still under way");

    // Back three days, mid-send: the sends still finish, and nothing is sent again.
    clock.rewind(Duration::from_secs(3 * 24 * 3600));
    for _ in 0..20 {
        step_everything(&app).await;
    }
    let made = schedule_made_updates(&app).await;
    assert_eq!(made.len(), 2, "one run at the tick, one for the three missed: {made:?}");
    for u in made.iter().chain([&app.api_get(&format!("/updates/{one_off}")).await]) {
        assert_eq!(u["status"], "sent", "finished despite the clock going back: {u}");
    }
    // Living through the skipped ticks again runs none of them.
    for day in 1..=3 {
        app.advance_clock_to(tick + chrono::Duration::days(day) + chrono::Duration::minutes(1));
        step_everything(&app).await;
    }
    assert_eq!(schedule_made_updates(&app).await.len(), 2, "no tick runs twice");
    let copies = app.smtp.copies();
    assert_eq!(copies.len(), BACKERS);
    assert!(copies.values().all(|&n| n == 3), "each backer got each of the three updates once: {copies:?}");
}

/// Where Debian's `libfaketime` puts its preload library.
fn libfaketime() -> Option<PathBuf> {
    let found =
        ["/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "the clock-jump test of the real binary needs the Debian package faketime"
        );
        eprintln!("libfaketime not installed (apt-get install faketime): real-binary clock test not run");
        crate::support::skip::case("real-binary clock tests", "libfaketime not installed");
    }
    found
}

/// The real binary under libfaketime, its wall clock moved at run time by
/// rewriting the offset file (its monotonic clock, which timers use, is
/// left alone, as on a machine whose clock is stepped): the same three jumps
/// as the in-process test, around a daily schedule and a one-off update set
/// for the same instant.
async fn clock_jumps_in_the_real_binary_neither_repeat_a_scheduled_send_nor_send_it_early(db: Db) {
    let _timed = Timed::start("clock jumps (libfaketime)", &db);
    const BACKERS: usize = 20;
    let Some(lib) = libfaketime() else { return };
    let smtp = TestSmtp::start();
    let (mut env, port) = env(&db, &smtp.url()).await;
    let offset_file = env.dir.path().join("faketime");
    let offset = FakeOffset(offset_file.clone());
    offset.set(chrono::Duration::zero());
    env.set("LD_PRELOAD", Some(&lib.display().to_string()));
    env.set("FAKETIME_TIMESTAMP_FILE", Some(&offset_file.display().to_string()));
    env.set("FAKETIME_NO_CACHE", Some("1"));
    env.set("DONT_FAKE_MONOTONIC", Some("1"));
    let token = create_token(&env);
    let mut server = Guarded::spawn(&env, &["serve"]);
    wait_healthy(port).await;
    seed_backers(&env, "f", BACKERS).await;
    let api = Api::new(port, &token);
    let schedule = json!({"name": "Daily", "cron": "0 9 * * *", "lists": ["updates"], "subject": "Daily note"});
    let created: serde_json::Value = api.post("/schedules", &schedule).await.json().await.unwrap();
    let tick: chrono::DateTime<chrono::Utc> = created["next_run_at"].as_str().expect("a next run").parse().unwrap();
    let one_off = api.create_update("Hearing result", "Body").await;
    let res = api.post(&format!("/updates/{one_off}/send"), &json!({"at": tick})).await;
    assert_eq!(res.status(), 202);
    let made = async || -> usize {
        let all = api.get("/updates").await;
        all.as_array().unwrap().iter().filter(|u| u["subject"] == "Daily note").count()
    };

    // Five seconds before the time, the clock is put back an hour: the
    // workers, which may have planned to wake at the time, send nothing.
    offset.set_now(tick - chrono::Duration::seconds(5));
    tokio::time::sleep(Duration::from_secs(2)).await;
    offset.set_now(tick - chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!((smtp.message_count(), made().await), (0, 0), "nothing is sent early");

    // Forward past three ticks: one run, and the one-off goes once.
    offset.set_now(tick + chrono::Duration::days(3) + chrono::Duration::hours(1));
    let deadline = Instant::now() + Duration::from_secs(40);
    while smtp.message_count() < 2 * BACKERS {
        assert!(Instant::now() < deadline, "the due sends did not happen after the clock jumped forward");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    api.wait_until_sent(&one_off, Duration::from_secs(30), || true).await;

    // Back into the skipped days, after the time: nothing runs again. The
    // scheduler sleeps at most 15 s between looks, so wait longer than that.
    offset.set_now(tick + chrono::Duration::days(1) + chrono::Duration::minutes(1));
    tokio::time::sleep(tidings::workers::scheduler::MAX_SLEEP + Duration::from_secs(3)).await;
    assert!(server.alive(), "tidings runs on");
    assert_eq!(made().await, 1, "one run for the three skipped ticks, none again after the jump back");
    server.kill();
    let copies = smtp.copies();
    assert_eq!(copies.len(), BACKERS);
    assert!(copies.values().all(|&n| n == 2), "each backer got the scheduled and the one-off update once: {copies:?}");
    eprintln!(
        "FAULTS clock jumps, real binary under libfaketime ({}): {BACKERS} backers × 2 updates, 0 early, 0 repeated",
        backend(&db)
    );
}

/// libfaketime's offset file: the faked wall clock is the real one plus
/// this, re-read on every clock call (`FAKETIME_NO_CACHE=1`).
struct FakeOffset(PathBuf);

impl FakeOffset {
    fn set(&self, by: chrono::Duration) {
        std::fs::write(&self.0, format!("{:+}\n", by.num_seconds())).unwrap();
    }

    /// Makes the faked clock read `at` now.
    fn set_now(&self, at: chrono::DateTime<chrono::Utc>) {
        self.set(at - chrono::Utc::now());
    }
}
