//! Issue 16 §6, "organisers' powers have limits": an editor's edit takes a
//! scheduled update out of the schedule, test sends are bounded and never
//! reach a suppressed or withdrawn address, logins are throttled by address
//! and account together (and `tidings user unlock` clears an account), a
//! weak secret key stops startup, slow or idle connections are closed and
//! their number bounded, webhooks throttle wrong secrets and refuse replayed
//! Mailgun signatures, and the per-subscriber CSV export is defused.

use crate::admin::AdminClient;
use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header, text_body};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tidings::services::accounts::Role;

both_backends!(
    an_editors_edit_takes_a_scheduled_update_out_of_the_schedule,
    test_sends_are_bounded_and_never_reach_suppressed_or_withdrawn_addresses,
    the_cli_unlocks_an_account_and_unknown_accounts_are_throttled_alike,
    a_weak_secret_key_stops_serve_worker_and_check,
    the_per_subscriber_csv_export_defuses_formulas,
    webhooks_throttle_wrong_secrets_take_a_bearer_secret_and_refuse_old_or_replayed_mailgun_signatures,
    a_query_secret_is_warned_about_at_start_and_on_use,
    silent_and_half_sent_connections_are_closed_while_the_server_keeps_answering,
    connections_beyond_the_limit_wait_in_the_backlog_and_do_not_crash_the_server,
    three_hundred_silent_connections_do_not_stop_a_server_with_256_open_files,
);

async fn draft_via_api(app: &TestApp, subject: &str) -> String {
    app.create_update(subject, "Dear {{name}},\n\nThe hearing moved.", &["updates"]).await
}

async fn an_editors_edit_takes_a_scheduled_update_out_of_the_schedule(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("s", 3, "updates").await;
    app.create_list("everyone", "Everyone").await;
    let id = draft_via_api(&app, "Approved wording").await;
    let at = app.ctx.clock.now() + chrono::Duration::hours(2);
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).json(&json!({"at": at})).send().await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "scheduled");

    // The editor rewrites what the admin approved…
    let editor = app.login_as_editor().await;
    let res = editor
        .submit(
            &format!("/admin/updates/{id}/edit"),
            &format!("/admin/updates/{id}"),
            &[("subject", "Something else entirely"), ("body_markdown", "Not approved"), ("lists", "everyone")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some(format!("/admin/updates/{id}?notice=unscheduled").as_str()));
    // …which takes it back to a draft, out of the schedule, and says so.
    let u = app.api_get(&format!("/updates/{id}")).await;
    assert_eq!((u["status"].as_str(), u["send_at"].as_str()), (Some("draft"), None), "{u}");
    assert_eq!(u["subject"], "Something else entirely");
    let page = editor.get(&format!("/admin/updates/{id}?notice=unscheduled")).await;
    assert!(page.body.contains("Editing took it out of the schedule"), "{}", page.body);
    assert!(page.body.contains("<strong id=\"status\">draft</strong>"), "{}", page.body);

    // When the time comes nothing goes out.
    app.advance_clock_to(at + chrono::Duration::minutes(1));
    app.drive_delivery(&id, 3).await;
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("s0@example.org").is_empty(), "nothing was sent");

    // Someone who may send keeps the schedule: an admin in the UI, and an
    // API token (full power).
    let later = app.ctx.clock.now() + chrono::Duration::hours(2);
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).json(&json!({"at": later})).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let admin = app.login_as_admin().await;
    let res = admin
        .submit(
            &format!("/admin/updates/{id}/edit"),
            &format!("/admin/updates/{id}"),
            &[("subject", "Approved, corrected"), ("body_markdown", "Fine"), ("lists", "updates")],
        )
        .await;
    assert_eq!(res.location(), Some(format!("/admin/updates/{id}?notice=saved").as_str()));
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "scheduled");
    let res =
        app.api(Method::PATCH, &format!("/updates/{id}")).json(&json!({"subject": "By token"})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!((body["status"].as_str(), body["subject"].as_str()), (Some("scheduled"), Some("By token")));
}

async fn test_send(app: &TestApp, id: &str, emails: &[&str]) -> (u16, Value) {
    let res =
        app.api(Method::POST, &format!("/updates/{id}/test")).json(&json!({ "emails": emails })).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn test_sends_are_bounded_and_never_reach_suppressed_or_withdrawn_addresses(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_TEST_SEND_HOURLY_CAP", "12")]).await;
    app.confirmed_subscribers("p", 3, "updates").await;
    let id = draft_via_api(&app, "Hearing news").await;

    // At most ten addresses a request.
    let eleven: Vec<String> = (0..11).map(|i| format!("t{i}@example.org")).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let (status, body) = test_send(&app, &id, &eleven).await;
    assert_eq!(status, 422, "{body}");

    // An erased person and one who unsubscribed get nothing, and the
    // answer (to an organiser) says which were skipped.
    let erased = app.subscriber("p0@example.org").await["id"].as_str().unwrap().to_owned();
    let res = app.api(Method::POST, &format!("/subscribers/{erased}/erase")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let unsub = app.unsubscribe_token("p1@example.org", "updates").await;
    assert_eq!(app.post_form(&format!("/unsubscribe/{unsub}"), &[]).await.status(), 200);
    let (status, body) = test_send(&app, &id, &["P0@example.org", "p1@example.org", "me@example.org"]).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["queued"], 1, "{body}");
    assert_eq!(body["skipped"], json!(["P0@example.org", "p1@example.org"]), "{body}");
    // Issue 24: the answer also says which were suppressed and which withdrew.
    assert_eq!(body["suppressed"], json!(["P0@example.org"]), "{body}");
    assert_eq!(body["withdrawn"], json!(["p1@example.org"]), "{body}");
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("p0@example.org").is_empty(), "never to an erased address");
    assert!(app.smtp.messages_to("p1@example.org").is_empty(), "never to someone who withdrew");

    // The test copy says it is one, and its unsubscribe link unsubscribes
    // nobody: it leads to a page saying so.
    let mail = &app.smtp.messages_to("me@example.org")[0];
    assert_eq!(header(mail, "Subject").as_deref(), Some("[TEST] Hearing news"));
    let list_unsubscribe = header(mail, "List-Unsubscribe").unwrap();
    assert!(list_unsubscribe.contains("http://tidings.test/test-copy"), "{list_unsubscribe}");
    assert!(text_body(mail).contains("http://tidings.test/test-copy"));
    assert!(!text_body(mail).contains("/unsubscribe/"));
    for method in [Method::GET, Method::POST] {
        let res = app.http.request(method, app.url("/test-copy")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("This was a test copy"));
    }
    assert_eq!(app.status("p2@example.org", "updates").await, "confirmed");

    // The hourly cap (12 here), per organiser, counted in the database: 1
    // used, ten more pass, two more would pass it.
    let ten: Vec<String> = (0..10).map(|i| format!("t{i}@example.org")).collect();
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    assert_eq!(test_send(&app, &id, &ten).await.0, 202);
    let (status, body) = test_send(&app, &id, &["a@example.org", "b@example.org"]).await;
    assert_eq!(status, 429, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("12 copies an hour") && message.contains("1 are left"), "{message}");
    assert_eq!(test_send(&app, &id, &["a@example.org"]).await.0, 202);
    assert_eq!(test_send(&app, &id, &["b@example.org"]).await.0, 429);
    // Another organiser has a cap of their own; in the admin UI a skipped
    // address is named on the page.
    let editor = app.login_as_editor().await;
    let page = format!("/admin/updates/{id}");
    let res = editor.submit(&page, &format!("{page}/test"), &[("emails", "ed@example.org p1@example.org")]).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("No test copy to p1@example.org"), "{}", res.body);
    let eleven_more = (0..11).map(|i| format!("e{i}@example.org")).collect::<Vec<_>>();
    let res = editor.submit(&page, &format!("{page}/test"), &[("emails", &eleven_more[..10].join(","))]).await;
    assert_eq!(res.status, 303);
    let res = editor.submit(&page, &format!("{page}/test"), &[("emails", "x@example.org,y@example.org")]).await;
    assert_eq!(res.status, 429);
    assert!(res.body.contains("12 copies an hour"), "{}", res.body);
    // An hour later the API token may send again.
    app.ctx.clock.advance(Duration::from_secs(3601));
    assert_eq!(test_send(&app, &id, &["b@example.org"]).await.0, 202);
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("a@example.org").len(), 1);
    assert_eq!(app.smtp.messages_to("x@example.org").len(), 0);
}

fn cli(database_url: &str, dir: &std::path::Path, args: &[&str], extra: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(args)
        .arg("--config")
        .arg(dir.join("none.toml"))
        .env("TIDINGS_DATABASE_URL", database_url)
        .env("TIDINGS_LOG", "error")
        .envs(extra.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run tidings")
}

async fn the_cli_unlocks_an_account_and_unknown_accounts_are_throttled_alike(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_TRUSTED_PROXY_HEADER", "X-Forwarded-For")]).await;
    let password = app.add_organiser("admin@hospital.test", Role::Admin).await;
    let known = AdminClient::from_address(&app, "192.0.2.10");
    let unknown = AdminClient::from_address(&app, "192.0.2.11");
    let mut answers = Vec::new();
    for _ in 0..5 {
        assert_eq!(known.log_in("admin@hospital.test", "wrong wrong wrong").await.status, 401);
        assert_eq!(unknown.log_in("nobody@hospital.test", "wrong wrong wrong").await.status, 401);
    }
    for (client, email) in [(&known, "admin@hospital.test"), (&unknown, "nobody@hospital.test")] {
        let res = client.log_in(email, "wrong wrong wrong").await;
        answers.push((
            res.status,
            res.headers.get("retry-after").cloned(),
            res.body.contains("Too many failed attempts"),
        ));
    }
    assert_eq!(answers[0], answers[1], "an organiser's address is throttled exactly like an unknown one");
    assert_eq!(answers[0].0, 429);
    assert_eq!(known.log_in("admin@hospital.test", &password).await.status, 429);

    let dir = tempfile::tempdir().unwrap();
    let out = cli(&app.ctx.config.database_url, dir.path(), &["user", "unlock", "--email", "Admin@Hospital.test"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("unlocked Admin@Hospital.test"), "{stdout}");
    assert_eq!(known.log_in("admin@hospital.test", &password).await.status, 303, "unlocked");
    let audit = app.api_get("/audit-log?action=cli.user.unlock").await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["action"] == "cli.user.unlock"), "{audit}");
}

async fn a_weak_secret_key_stops_serve_worker_and_check(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url(dir.path()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    for key in ["changeme", &"changeme".repeat(5)] {
        for command in [&["check"][..], &["serve"], &["worker"]] {
            let out = cli(&url, dir.path(), command, &[("TIDINGS_SECRET_KEY", key), ("TIDINGS_BIND", &bind)]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} with key {key:?} must refuse to start");
            assert!(stderr.contains("TIDINGS_SECRET_KEY"), "{command:?}: {stderr}");
            assert!(stderr.contains("openssl rand -hex 32"), "the message says what to do: {stderr}");
        }
    }
    let strong = "3f9a0c1be27d4856aa10ff93c4e5d7b2061e8c9d3a5b7f1e2c4d6a8b0e1f2a3b";
    let out = cli(&url, dir.path(), &["check"], &[("TIDINGS_SECRET_KEY", strong)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Without a key of its own, the one generated and stored at first run is used.
    let out = cli(&url, dir.path(), &["check"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn the_per_subscriber_csv_export_defuses_formulas(db: Db) {
    let app = TestApp::spawn(db).await;
    let name = "=HYPERLINK(\"http://evil.example\",\"Click\")";
    let agent = "=cmd|' /C calc'!A0";
    let source = "+SUM(1,2)";
    let res = app
        .http
        .post(app.url("/subscribe"))
        .header("user-agent", agent)
        .form(&[
            ("email", "ann@example.org"),
            ("name", name),
            ("lists", "updates"),
            ("consent", "updates"),
            ("source", source),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(&app.smtp.messages_to("ann@example.org")[0]);
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    let id = app.subscriber("ann@example.org").await["id"].as_str().unwrap().to_owned();

    let res = app.api(Method::GET, &format!("/subscribers/{id}/export?format=csv")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    assert_eq!(&rows[0][col("name")], format!("'{name}"), "{body}");
    let requested = rows.iter().find(|r| &r[col("kind")] == "requested").expect("the request in the ledger");
    assert_eq!(&requested[col("user_agent")], format!("'{agent}"), "{body}");
    assert_eq!(&requested[col("source")], format!("'{source}"), "{body}");
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "an undefused cell {cell:?} in {body}");
        }
    }
}

const WEBHOOK_SECRET: &str = "a-long-webhook-secret-for-tests";
const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
const UNKNOWN: &str = r#"{"type":"bounce","email":"nobody@example.org","status":"5.1.1"}"#;

/// A Mailgun "failed" event for an unknown address, signed at `timestamp`
/// with `token`.
fn mailgun_payload(timestamp: i64, token: &str) -> String {
    let path = format!("{}/tests/fixtures/webhooks/mailgun-failed-permanent.json", env!("CARGO_MANIFEST_DIR"));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["event-data"]["recipient"] = json!("nobody@example.org");
    v["signature"]["timestamp"] = json!(timestamp.to_string());
    v["signature"]["token"] = json!(token);
    let signature = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(MAILGUN_KEY.as_bytes()).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    v["signature"]["signature"] = json!(signature);
    v.to_string()
}

async fn webhooks_throttle_wrong_secrets_take_a_bearer_secret_and_refuse_old_or_replayed_mailgun_signatures(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[
            ("TIDINGS_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("TIDINGS_MAILGUN_SIGNING_KEY", MAILGUN_KEY),
            ("TIDINGS_TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
        ],
    )
    .await;
    let post = |path: &str, from: &str| app.http.post(app.url(path)).header("x-forwarded-for", from).body(UNKNOWN);

    // The secret as a bearer token.
    let res = post("/webhooks/generic", "198.51.100.1").bearer_auth(WEBHOOK_SECRET).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    // Guessing from one address: five wrong tries a minute, then 429 even
    // for the right secret, while another address is unaffected.
    for i in 0..5 {
        let res = post("/webhooks/generic", "192.0.2.66").bearer_auth(format!("guess-{i}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "try {i}");
    }
    let res = post("/webhooks/generic", "192.0.2.66").bearer_auth("guess-6").send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    let res = post("/webhooks/generic", "192.0.2.66")
        .header("X-Tidings-Webhook-Secret", WEBHOOK_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "refused without checking the secret");
    let res = post("/webhooks/generic", "198.51.100.2")
        .header("X-Tidings-Webhook-Secret", WEBHOOK_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // `?secret=` still works.
    let res = post(&format!("/webhooks/generic?secret={WEBHOOK_SECRET}"), "198.51.100.3").send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Mailgun: a fresh signature once; the same request again is a replay;
    // a signature made more than five minutes ago is refused.
    let mailgun = |body: String| {
        app.http
            .post(app.url("/webhooks/mailgun"))
            .header("x-forwarded-for", "198.51.100.4")
            .bearer_auth(WEBHOOK_SECRET)
            .body(body)
    };
    let now = app.ctx.clock.now().timestamp();
    let fresh = mailgun_payload(now, "token-fresh-0123456789abcdef0123456789abcdef01");
    let res = mailgun(fresh.clone()).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = mailgun(fresh).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let message = res.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("already used"), "{message}");
    let old = mailgun_payload(now - 301, "token-old-0123456789abcdef0123456789abcdef0123");
    let res = mailgun(old).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let message = res.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("too old"), "{message}");
    let ahead = mailgun_payload(now + 600, "token-ahead-0123456789abcdef0123456789abcdef01");
    assert_eq!(mailgun(ahead).send().await.unwrap().status(), 401);
    // The seen tokens are in the database, so another instance refuses the
    // replay too.
    let mut tx = app.ctx.store.write().await.unwrap();
    assert!(
        !tx.note_webhook_signature(
            "token-fresh-0123456789abcdef0123456789abcdef01",
            app.ctx.clock.now(),
            app.ctx.clock.now() - chrono::Duration::minutes(10)
        )
        .await
        .unwrap()
    );
}

async fn a_query_secret_is_warned_about_at_start_and_on_use(db: Db) {
    use crate::process::{env, tidings, wait_healthy};
    let smtp = crate::support::smtp::TestSmtp::start();
    let (mut env, port) = env(&db, &smtp.url()).await;
    env.vars.push(("TIDINGS_LOG".to_owned(), "warn".to_owned()));
    env.vars.push(("TIDINGS_WEBHOOK_SECRET".to_owned(), WEBHOOK_SECRET.to_owned()));
    let log_path = env.dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = tidings(&env, &["serve", "--no-workers"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn tidings");
    wait_healthy(port).await;
    let started = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(started.matches("lands in proxy and access logs").count(), 1, "one warning at start: {started}");
    let http = reqwest::Client::new();
    let res = http
        .post(format!("http://127.0.0.1:{port}/webhooks/generic?secret={WEBHOOK_SECRET}"))
        .body(UNKNOWN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http
        .post(format!("http://127.0.0.1:{port}/webhooks/generic"))
        .header("X-Tidings-Webhook-Secret", WEBHOOK_SECRET)
        .body(UNKNOWN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(logged.matches("passed its secret as ?secret=").count(), 1, "each query use, not header use: {logged}");
    assert!(!logged.contains(WEBHOOK_SECRET), "the secret itself is never logged");
}

/// Reads until the server closes the connection; `true` if it did within `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 answer before the close is fine.
            Ok(Ok(_)) => continue,
        }
    }
}

/// Opens `n` connections to `addr`; every other one sends half a request
/// line and a header, then nothing more.
async fn hanging_connections(addr: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        if i % 2 == 1 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: tidings.test\r\nX-Slow: ").await.expect("write");
        }
        streams.push(stream);
    }
    streams
}

/// A client that opens a fresh connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

async fn silent_and_half_sent_connections_are_closed_while_the_server_keeps_answering(db: Db) {
    let app =
        TestApp::spawn_with(db, &[("TIDINGS_HEADER_READ_TIMEOUT_SECONDS", "1"), ("TIDINGS_IDLE_TIMEOUT_SECONDS", "2")])
            .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut streams = hanging_connections(&addr, 50).await;
    // Meanwhile a normal request is answered at once.
    let started = std::time::Instant::now();
    let res = fresh_client().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(900), "answered while 50 connections hang");
    // Every hanging connection is closed after the header-read timeout.
    let started = std::time::Instant::now();
    for (i, stream) in streams.iter_mut().enumerate() {
        assert!(closed_within(stream, Duration::from_secs(5)).await, "connection {i} was held open");
    }
    assert!(started.elapsed() < Duration::from_secs(4), "closed after about a second: {:?}", started.elapsed());
    // A kept-alive connection waiting for its next request is closed too.
    let mut kept = tokio::net::TcpStream::connect(&addr).await.unwrap();
    {
        use tokio::io::AsyncWriteExt;
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: tidings.test\r\n\r\n").await.unwrap();
    }
    assert!(closed_within(&mut kept, Duration::from_secs(5)).await, "an idle kept-alive connection is closed");
    assert_eq!(fresh_client().get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

async fn connections_beyond_the_limit_wait_in_the_backlog_and_do_not_crash_the_server(db: Db) {
    let app =
        TestApp::spawn_with(db, &[("TIDINGS_MAX_CONNECTIONS", "10"), ("TIDINGS_HEADER_READ_TIMEOUT_SECONDS", "30")])
            .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let holders = hanging_connections(&addr, 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // All ten places are taken: the next client is not served (it waits in
    // the backlog)…
    let waiting = fresh_client().get(app.url("/healthz")).timeout(Duration::from_millis(700)).send().await;
    assert!(waiting.is_err(), "an eleventh connection must wait: {waiting:?}");
    // …and a hundred more (within the listen backlog of 128) do not bring
    // the server down.
    let crowd = hanging_connections(&addr, 100).await;
    drop(crowd);
    // Once places free up, the server answers again.
    drop(holders);
    let res = fresh_client().get(app.url("/healthz")).timeout(Duration::from_secs(10)).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

async fn three_hundred_silent_connections_do_not_stop_a_server_with_256_open_files(db: Db) {
    use crate::process::{env, wait_healthy};
    let smtp = crate::support::smtp::TestSmtp::start();
    let (env, port) = env(&db, &smtp.url()).await;
    // The open-file limit of the report, set for the server alone.
    let mut server = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_tidings"))
        .args(["serve", "--no-workers", "--config"])
        .arg(env.dir.path().join("none.toml"))
        .envs(env.vars.iter().map(|(k, v)| (k, v)))
        .env("TIDINGS_HEADER_READ_TIMEOUT_SECONDS", "1")
        .current_dir(env.dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn tidings");
    wait_healthy(port).await;
    let addr = format!("127.0.0.1:{port}");
    let streams = hanging_connections(&addr, 300).await;
    // The server still answers, within a few header-read timeouts.
    let res = fresh_client()
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the server answers while 300 connections hang");
    assert_eq!(res.status(), 200);
    let res = fresh_client().get(format!("http://{addr}/")).timeout(Duration::from_secs(10)).send().await.unwrap();
    assert_eq!(res.status(), 200, "and serves pages that need the database");
    drop(streams);
    assert!(server.try_wait().unwrap().is_none(), "the server did not crash");
    server.kill().unwrap();
    server.wait().unwrap();
}
