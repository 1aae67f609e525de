//! The real `tidings` binary as separate processes: `kill -9` between a
//! subscribe and its confirmation mail, graceful shutdown on SIGTERM, and
//! the CLI commands.

use crate::both_backends;
use crate::support::app::Db;
use crate::support::smtp::TestSmtp;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

both_backends!(
    a_crash_between_subscribe_and_send_still_sends_the_confirmation_exactly_once,
    kill_9_during_a_send_loses_nobody_and_repeats_at_most_the_batch_in_flight,
    three_worker_processes_share_a_send_and_never_double_send,
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

fn spawn(env: &Env, args: &[&str]) -> Child {
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
    const CONCURRENCY: usize = 2;
    // The worker claims 50 per session per batch: the in-flight window.
    const BATCH: usize = 50 * CONCURRENCY;
    const KILLS: usize = 3;
    let smtp = TestSmtp::start();
    let (mut env, port) = env(&db, &smtp.url()).await;
    env.vars.push(("TIDINGS_SEND_CONCURRENCY".into(), CONCURRENCY.to_string()));
    env.vars.push(("TIDINGS_WORKER_LEASE_SECONDS".into(), "4".into()));
    assert!(run(&env, &["migrate"], None).status.success());
    let token_out = run(&env, &["token", "create", "--name", "crash-test"], None);
    let token = String::from_utf8(token_out.stdout).unwrap().lines().last().unwrap().to_owned();
    // `serve` bootstraps the default list; seed once it exists.
    let mut server = spawn(&env, &["serve"]);
    wait_healthy(port).await;
    let url = env.vars.iter().find(|(k, _)| k == "TIDINGS_DATABASE_URL").unwrap().1.clone();
    let store = tidings::store::Store::connect(&url).await.unwrap();
    crate::support::app::seed_confirmed(&store, chrono::Utc::now(), "k", N, "updates").await;
    store.close().await;

    let http = reqwest::Client::new();
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/v1{path}");
    let created: serde_json::Value = http
        .post(api("/updates"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"subject": "Crash test", "body_markdown": "Hello {{name}}", "lists": ["updates"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let res = http.post(api(&format!("/updates/{id}/send"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 202);

    for kill in 1..=KILLS {
        // Let some mail through, then pull the plug mid-send.
        let target = kill * N / (KILLS + 1);
        smtp.wait_for(target, Duration::from_secs(60)).await;
        server.kill().unwrap();
        server.wait().unwrap();
        server = spawn(&env, &["serve"]);
        wait_healthy(port).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let u: serde_json::Value =
            http.get(api(&format!("/updates/{id}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if u["status"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "the send did not finish after the restarts: {u}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats: serde_json::Value =
        http.get(api(&format!("/updates/{id}/stats"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(stats["sent"], N, "every recipient recorded as sent: {stats}");

    let mut copies = std::collections::HashMap::new();
    for m in smtp.messages() {
        for to in m.to {
            *copies.entry(to).or_insert(0usize) += 1;
        }
    }
    assert_eq!(copies.len(), N, "nobody was lost");
    let repeats: usize = copies.values().map(|n| n - 1).sum();
    assert!(repeats <= KILLS * BATCH, "{repeats} repeats after {KILLS} kills exceed the in-flight window");
    eprintln!("kill -9 x{KILLS}: {N} recipients, {repeats} repeated copies (window {BATCH} per kill)");
}

async fn three_worker_processes_share_a_send_and_never_double_send(db: Db) {
    const N: usize = 1200;
    let smtp = TestSmtp::start();
    let (mut env, port) = env(&db, &smtp.url()).await;
    env.vars.push(("TIDINGS_SEND_CONCURRENCY".into(), "2".into()));
    let token_out = run(&env, &["token", "create", "--name", "workers"], None);
    let token = String::from_utf8(token_out.stdout).unwrap().lines().last().unwrap().to_owned();
    let mut web = spawn(&env, &["serve", "--no-workers"]);
    wait_healthy(port).await;
    let url = env.vars.iter().find(|(k, _)| k == "TIDINGS_DATABASE_URL").unwrap().1.clone();
    let store = tidings::store::Store::connect(&url).await.unwrap();
    crate::support::app::seed_confirmed(&store, chrono::Utc::now(), "m", N, "updates").await;
    store.close().await;

    let http = reqwest::Client::new();
    let api = |path: &str| format!("http://127.0.0.1:{port}/api/v1{path}");
    let created: serde_json::Value = http
        .post(api("/updates"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"subject": "Shared", "body_markdown": "Body", "lists": ["updates"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let mut workers: Vec<Child> = (0..3).map(|_| spawn(&env, &["worker"])).collect();
    assert_eq!(http.post(api(&format!("/updates/{id}/send"))).bearer_auth(&token).send().await.unwrap().status(), 202);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let u: serde_json::Value =
            http.get(api(&format!("/updates/{id}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if u["status"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "three workers did not finish: {u}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for w in &mut workers {
        w.kill().unwrap();
        w.wait().unwrap();
    }
    web.kill().unwrap();
    web.wait().unwrap();
    let mut copies = std::collections::HashMap::new();
    for m in smtp.messages() {
        for to in m.to {
            *copies.entry(to).or_insert(0usize) += 1;
        }
    }
    assert_eq!(copies.len(), N);
    assert!(copies.values().all(|&n| n == 1), "no recipient got two copies");
}
