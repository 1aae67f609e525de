//! The real `tidings` binary as separate processes: `kill -9` between a
//! subscribe and its confirmation mail, graceful shutdown on SIGTERM, and
//! the CLI commands.

use crate::both_backends;
use crate::support::app::Db;
use crate::support::smtp::TestSmtp;
use std::collections::HashMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

both_backends!(
    a_crash_between_subscribe_and_send_still_sends_the_confirmation_exactly_once,
    kill_9_during_a_send_loses_nobody_and_repeats_at_most_the_batch_in_flight,
    three_worker_processes_share_a_send_and_never_double_send,
    three_worker_processes_never_pass_the_hourly_cap_together,
    sigterm_stops_the_server_gracefully,
    the_cli_creates_tokens_and_users_and_checks_its_setup,
);

pub(crate) struct Env {
    pub(crate) vars: Vec<(String, String)>,
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) async fn env(db: &Db, smtp_url: &str) -> (Env, u16) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url(dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let vars = vec![
        ("TIDINGS_DATABASE_URL".to_owned(), url),
        ("TIDINGS_BIND".to_owned(), format!("127.0.0.1:{port}")),
        ("TIDINGS_SMTP_URL".to_owned(), smtp_url.to_owned()),
        ("TIDINGS_LOG".to_owned(), "error".to_owned()),
        // A loopback rig without DNS or DKIM: show the sender-authentication
        // failures but send (as TestApp does); the gate has its own tests.
        ("TIDINGS_SENDER_AUTH".to_owned(), "warn".to_owned()),
        ("TIDINGS_DNS_SERVER".to_owned(), "127.0.0.1:9".to_owned()),
    ];
    (Env { vars, dir }, port)
}

pub(crate) fn tidings(env: &Env, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    cmd.args(args).envs(env.vars.iter().map(|(k, v)| (k, v))).current_dir(env.dir.path());
    // Never read tidings.toml from the developer's checkout.
    cmd.arg("--config").arg(env.dir.path().join("none.toml"));
    cmd
}

pub(crate) fn spawn(env: &Env, args: &[&str]) -> Child {
    tidings(env, args).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().expect("spawn tidings")
}

pub(crate) fn run(env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = tidings(env, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidings");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

pub(crate) async fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = reqwest::Client::new();
    while Instant::now() < deadline {
        if let Ok(res) = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await
            && res.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tidings did not become healthy on port {port}");
}

impl Env {
    /// The `TIDINGS_DATABASE_URL` the processes use.
    pub(crate) fn database_url(&self) -> String {
        self.var("TIDINGS_DATABASE_URL").expect("a database URL").to_owned()
    }

    pub(crate) fn var(&self, key: &str) -> Option<&str> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing an earlier value), or removes it with `None`.
    pub(crate) fn set(&mut self, key: &str, value: Option<&str>) {
        self.vars.retain(|(k, _)| k != key);
        if let Some(v) = value {
            self.vars.push((key.to_owned(), v.to_owned()));
        }
    }
}

/// An API token made with `tidings token create`.
pub(crate) fn create_token(env: &Env) -> String {
    let out = run(env, &["token", "create", "--name", "process-test"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned()
}

/// The organiser API of a running `tidings` on `port`.
/// Seeds `n` confirmed backers on `updates` in the environment's database
/// (once `serve` has made that list).
pub(crate) async fn seed_backers(env: &Env, prefix: &str, n: usize) {
    let store = tidings::store::Store::connect(&env.database_url()).await.unwrap();
    // The key the server derives its address fingerprints from.
    let secret = match env.var("TIDINGS_SECRET_KEY") {
        Some(key) => key.to_owned(),
        None => store.write().await.unwrap().setting("secret_key").await.unwrap().expect("serve made a key"),
    };
    let key = tidings::domain::AddressKey::derive(secret.as_bytes());
    crate::support::app::seed_confirmed(&store, &key, chrono::Utc::now(), prefix, n, "updates").await;
    store.close().await;
}

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub(crate) fn new(port: u16, token: &str) -> Api {
        Api { http: reqwest::Client::new(), base: format!("http://127.0.0.1:{port}/api/v1"), token: token.to_owned() }
    }

    pub(crate) async fn get(&self, path: &str) -> serde_json::Value {
        let res = self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap();
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.unwrap()
    }

    /// POSTs `body` as JSON to `path` (under `/api/v1`).
    pub(crate) async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token).json(body).send().await.unwrap()
    }

    /// Creates a draft update to the `updates` list; returns its id.
    pub(crate) async fn create_update(&self, subject: &str, body_markdown: &str) -> String {
        let body = serde_json::json!({"subject": subject, "body_markdown": body_markdown, "lists": ["updates"]});
        let created: serde_json::Value = self.post("/updates", &body).await.json().await.unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    /// Creates an update to the `updates` list and starts sending it; returns its id.
    pub(crate) async fn send_update(&self, subject: &str) -> String {
        let id = self.create_update(subject, "Hello {{name}}").await;
        let res = self.post(&format!("/updates/{id}/send"), &serde_json::json!({})).await;
        assert_eq!(res.status(), 202);
        id
    }

    /// Polls until update `id` is `sent`; panics after `timeout`, or at once when `alive` says the process
    /// sending it has exited.
    pub(crate) async fn wait_until_sent(&self, id: &str, timeout: Duration, mut alive: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            assert!(alive(), "tidings exited while update {id} was sending");
            // The server may be between restarts or its database briefly away: keep asking.
            if let Ok(res) = self.http.get(format!("{}/updates/{id}", self.base)).bearer_auth(&self.token).send().await
                && let Ok(u) = res.json::<serde_json::Value>().await
            {
                if u["status"] == "sent" {
                    return;
                }
                assert!(Instant::now() < deadline, "update {id} did not finish within {timeout:?}: {u}");
            }
            assert!(Instant::now() < deadline, "update {id} did not finish within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn a_crash_between_subscribe_and_send_still_sends_the_confirmation_exactly_once(db: Db) {
    let smtp = TestSmtp::start();
    let (env, port) = env(&db, &smtp.url()).await;
    // Web only, so nothing can send before the kill.
    let mut web = spawn(&env, &["serve", "--no-workers"]);
    wait_healthy(port).await;
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/subscribe"))
        .form(&[("email", "crash@example.org"), ("lists", "updates"), ("consent", "updates")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    web.kill().unwrap(); // SIGKILL
    web.wait().unwrap();
    assert!(smtp.messages().is_empty());

    let mut worker = spawn(&env, &["worker"]);
    assert_eq!(smtp.wait_for(1, Duration::from_secs(30)).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    worker.kill().unwrap();
    worker.wait().unwrap();

    // A full restart finds nothing left to send.
    let mut all = spawn(&env, &["serve"]);
    wait_healthy(port).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    all.kill().unwrap();
    all.wait().unwrap();
    let mails = smtp.messages_to("crash@example.org");
    assert_eq!(mails.len(), 1, "exactly one confirmation after a crash and two restarts");
}

async fn sigterm_stops_the_server_gracefully(db: Db) {
    let smtp = TestSmtp::start();
    let (env, port) = env(&db, &smtp.url()).await;
    let mut server = spawn(&env, &["serve"]);
    wait_healthy(port).await;
    let status = Command::new("kill").arg("-TERM").arg(server.id().to_string()).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(exit) = server.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit:?}");
            break;
        }
        assert!(Instant::now() < deadline, "tidings did not stop within 15 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_cli_creates_tokens_and_users_and_checks_its_setup(db: Db) {
    let smtp = TestSmtp::start();
    let (env, port) = env(&db, &smtp.url()).await;
    let out = run(&env, &["migrate"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(run(&env, &["migrate"], None).status.success(), "migrate is idempotent");

    let out = run(&env, &["token", "create", "--name", "website"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().to_owned();
    assert!(token.starts_with("tdg_") && !token.contains(' '), "the token alone on the last line: {stdout:?}");

    let out = run(&env, &["user", "add", "--email", "org@example.org", "--role", "editor"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("password: "));
    let out = run(&env, &["user", "add", "--email", "org2@example.org", "--password-stdin"], Some("short\n"));
    assert!(!out.status.success(), "a short password is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 characters"));
    let out = run(
        &env,
        &["user", "add", "--email", "org@example.org", "--password-stdin"],
        Some("a long enough passphrase\n"),
    );
    assert!(!out.status.success(), "the same organiser twice is refused");

    let out = run(&env, &["check"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("mail: ok"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("bounces: VERP off"), "no bounce domain set");

    // The token works against the server.
    let mut server = spawn(&env, &["serve"]);
    wait_healthy(port).await;
    let res = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/lists"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();

    smtp.stop();
    let out = run(&env, &["check"], None);
    assert!(!out.status.success(), "check fails when the relay is down");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unavailable"));
}

async fn kill_9_during_a_send_loses_nobody_and_repeats_at_most_the_batch_in_flight(db: Db) {
    const N: usize = 1500;
    const CONCURRENCY: u32 = 2;
    const KILLS: usize = 3;
    let window = tidings::workers::delivery::batch_size(CONCURRENCY);
    let smtp = TestSmtp::start();
    let (mut env, port) = env(&db, &smtp.url()).await;
    env.set("TIDINGS_SEND_CONCURRENCY", Some(&CONCURRENCY.to_string()));
    env.set("TIDINGS_WORKER_LEASE_SECONDS", Some("4"));
    assert!(run(&env, &["migrate"], None).status.success());
    let token = create_token(&env);
    // `serve` bootstraps the default list; seed once it exists.
    let mut server = spawn(&env, &["serve"]);
    wait_healthy(port).await;
    seed_backers(&env, "k", N).await;

    let api = Api::new(port, &token);
    let id = api.send_update("Crash test").await;
    for kill in 1..=KILLS {
        // Let some mail through, then pull the plug mid-send.
        let target = kill * N / (KILLS + 1);
        smtp.wait_for_count(target, Duration::from_secs(60)).await;
        server.kill().unwrap();
        server.wait().unwrap();
        server = spawn(&env, &["serve"]);
        wait_healthy(port).await;
    }
    api.wait_until_sent(&id, Duration::from_secs(120), || server.try_wait().unwrap().is_none()).await;
    let stats = api.get(&format!("/updates/{id}/stats")).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(stats["sent"], N, "every recipient recorded as sent: {stats}");

    let copies = smtp.copies();
    assert_eq!(copies.len(), N, "nobody was lost");
    let repeats: usize = copies.values().map(|n| n - 1).sum();
    assert!(repeats <= KILLS * window, "{repeats} repeats after {KILLS} kills exceed the in-flight window");
    eprintln!("kill -9 x{KILLS}: {N} recipients, {repeats} repeated copies (window {window} per kill)");
}

async fn three_worker_processes_share_a_send_and_never_double_send(db: Db) {
    const N: usize = 1200;
    // One capture server per worker process, so that what each received is
    // what that process sent.
    let relays: Vec<TestSmtp> = (0..3).map(|_| TestSmtp::start()).collect();
    let (mut env, port) = env(&db, &relays[0].url()).await;
    env.set("TIDINGS_SEND_CONCURRENCY", Some("2"));
    let token = create_token(&env);
    let mut web = spawn(&env, &["serve", "--no-workers"]);
    wait_healthy(port).await;
    seed_backers(&env, "m", N).await;

    let api = Api::new(port, &token);
    let mut workers: Vec<Child> = relays
        .iter()
        .map(|relay| {
            let mut cmd = tidings(&env, &["worker"]);
            cmd.env("TIDINGS_SMTP_URL", relay.url()).stdout(Stdio::null()).stderr(Stdio::inherit());
            cmd.spawn().expect("spawn tidings worker")
        })
        .collect();
    let id = api.send_update("Shared").await;
    api.wait_until_sent(&id, Duration::from_secs(120), || true).await;
    for w in &mut workers {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    web.kill().unwrap();
    web.wait().unwrap();
    let per_process: Vec<HashMap<String, usize>> = relays.iter().map(TestSmtp::copies).collect();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for (to, n) in per_process.iter().flatten() {
        *copies.entry(to.clone()).or_insert(0) += n;
    }
    assert_eq!(copies.len(), N);
    assert!(copies.values().all(|&n| n == 1), "no recipient got two copies");
    let sent: Vec<usize> = per_process.iter().map(|c| c.values().sum()).collect();
    assert!(sent.iter().filter(|&&n| n > 0).count() >= 2, "at least two of the three processes sent: {sent:?}");
    eprintln!("three worker processes sent {sent:?}");
}

/// Issue 16 §7: the hourly cap holds across worker processes. Three real
/// `tidings worker` processes share one database and a slow relay (so their
/// batches overlap in time); before each batch they reserve room under the
/// cap, so together they send exactly the cap, never a batch more per
/// worker, and each process's log shows what it sent.
async fn three_worker_processes_never_pass_the_hourly_cap_together(db: Db) {
    const N: usize = 300;
    const CAP: usize = 100;
    let smtp = TestSmtp::start();
    // 50 messages a batch (one session) at 40 ms each: a batch takes 2 s,
    // while an idle worker looks for work every second.
    smtp.set_data_delay(Some(Duration::from_millis(40)));
    let (mut env, port) = env(&db, &smtp.url()).await;
    env.set("TIDINGS_SEND_CONCURRENCY", Some("1"));
    env.set("TIDINGS_SEND_HOURLY_CAP", Some(&CAP.to_string()));
    let token = create_token(&env);
    let mut web = spawn(&env, &["serve", "--no-workers"]);
    wait_healthy(port).await;
    seed_backers(&env, "cap", N).await;

    env.set("TIDINGS_LOG", Some("error,tidings::workers::delivery=debug"));
    env.set("TIDINGS_LOG_FORMAT", Some("json"));
    let logs: Vec<std::path::PathBuf> = (0..3).map(|i| env.dir.path().join(format!("worker-{i}.log"))).collect();
    let ports: Vec<u16> =
        (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let mut workers: Vec<Child> = logs
        .iter()
        .zip(&ports)
        .map(|(log, port)| {
            let file = std::fs::File::create(log).unwrap();
            tidings(&env, &["worker"])
                .env("TIDINGS_METRICS_BIND", format!("127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("spawn tidings worker")
        })
        .collect();
    // All three are up (and polling for work every second) before the send starts.
    for port in &ports {
        wait_healthy(*port).await;
    }
    let api = Api::new(port, &token);
    let id = api.send_update("Capped").await;
    smtp.wait_for_count(CAP, Duration::from_secs(60)).await;
    // Long enough for every worker to have tried again (and again) after
    // the cap was reached.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = api.get(&format!("/updates/{id}/stats")).await;
    let update = api.get(&format!("/updates/{id}")).await;
    for w in &mut workers {
        assert!(w.try_wait().unwrap().is_none(), "a worker exited");
        w.kill().unwrap();
        w.wait().unwrap();
    }
    web.kill().unwrap();
    web.wait().unwrap();

    let received = smtp.message_count();
    assert_eq!(received, CAP, "the relay got exactly the cap, no batch more: {stats}");
    assert_eq!(stats["sent"], CAP, "{stats}");
    assert_eq!(update["status"], "sending", "the rest waits for the next hour");
    let per_worker: Vec<u64> = logs
        .iter()
        .map(|log| {
            std::fs::read_to_string(log)
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| v["fields"]["message"] == "batch sent")
                .map(|v| v["fields"]["accepted"].as_u64().unwrap())
                .sum()
        })
        .collect();
    assert_eq!(per_worker.iter().sum::<u64>(), CAP as u64, "the logs account for every message: {per_worker:?}");
    assert!(per_worker.iter().filter(|&&n| n > 0).count() >= 2, "more than one process sent: {per_worker:?}");
    eprintln!("hourly cap {CAP} across three workers: sent {per_worker:?}");
}
