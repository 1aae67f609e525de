//! What operators see: Prometheus metrics that move with real traffic,
//! request ids (echoed, and in every JSON log line of the real binary),
//! readiness that fails when the database goes away, and the security
//! headers and cookie flags of each class of route.

use crate::both_backends;
use crate::process;
use crate::support::app::{Db, METRICS_TOKEN, PUBLIC_METRICS, TestApp, confirm_token};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

both_backends!(
    metrics_move_with_subscribes_confirmations_unsubscribes_and_sends,
    the_request_id_is_echoed_or_made,
    readyz_fails_while_the_database_is_unreachable,
    security_headers_cover_every_class_of_route,
    hsts_and_secure_cookies_only_when_the_base_url_is_https,
    the_real_binary_logs_json_lines_carrying_the_request_id,
    a_worker_process_serves_its_metrics_on_the_metrics_address,
    metrics_stay_off_the_public_listener_unless_enabled_and_then_need_the_token,
);

/// One scrape, parsed strictly: every line must be a comment OpenMetrics
/// allows or a `name{labels} value` sample of a family declared by a
/// `# TYPE` line, and the text must end with `# EOF`. Returns the samples
/// keyed by `name{labels}` exactly as written.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "no EOF marker:\n{text}");
    let mut families: Vec<(String, String)> = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut words = rest.splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                    families.push((name.to_owned(), kind.to_owned()));
                }
                (Some("HELP"), Some(_), Some(_)) | (Some("UNIT"), Some(_), Some(_)) | (Some("EOF"), None, None) => {}
                _ => panic!("unexpected comment line: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        let name = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                check_labels(labels, line);
                name
            }
            None => series,
        };
        assert!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name: {line}"
        );
        let declared = families.iter().any(|(family, kind)| {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                _ => &[""],
            };
            suffixes.iter().any(|s| name == format!("{family}{s}"))
        });
        assert!(declared, "sample of an undeclared family: {line}");
        assert!(samples.insert(series.to_owned(), value).is_none(), "duplicate series: {line}");
    }
    samples
}

/// `key="value",…` with only `\\`, `\"` and `\n` escapes.
fn check_labels(labels: &str, line: &str) {
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad label name: {line}");
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => assert!(matches!(chars.next(), Some((_, '\\' | '"' | 'n'))), "bad escape: {line}"),
                Some((i, '"')) => break i,
                Some(_) => {}
                None => panic!("unterminated label value: {line}"),
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

async fn scrape(app: &TestApp) -> (String, BTreeMap<String, f64>) {
    let res = app.scrape_metrics().await;
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text; version=1.0.0"), "{content_type}");
    let text = res.text().await.unwrap();
    let samples = parse_exposition(&text);
    (text, samples)
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples.get(series).unwrap_or_else(|| panic!("no series {series} in {samples:#?}"))
}

async fn metrics_move_with_subscribes_confirmations_unsubscribes_and_sends(db: Db) {
    let app = TestApp::spawn_with(db, &PUBLIC_METRICS).await;
    let (_, before) = scrape(&app).await;
    for series in [
        r#"tidings_subscribe_requests_total{outcome="accepted"}"#,
        r#"tidings_confirmations_total{outcome="confirmed"}"#,
        r#"tidings_unsubscribes_total{method="one-click"}"#,
        r#"tidings_deliveries_total{outcome="sent"}"#,
        r#"tidings_transactional_mail_total{outcome="sent"}"#,
    ] {
        assert_eq!(value(&before, series), 0.0, "{series} starts at zero");
    }

    // Two accepted subscribes, one refused for want of consent.
    assert_eq!(app.subscribe("ann@example.org", "updates").await.status(), 200);
    assert_eq!(app.subscribe("bob@example.org", "updates").await.status(), 200);
    let refused = app.post_form("/subscribe", &[("email", "cy@example.org"), ("lists", "updates")]).await;
    assert_eq!(refused.status(), 422);
    app.drain_outbox().await;
    let token = confirm_token(&app.smtp.messages_to("ann@example.org")[0]);
    assert_eq!(app.http.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap().status(), 200);
    let again = app.http.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert_eq!(again.status(), 410, "a used link is gone");
    app.confirmed_subscribers("backer", 3, "updates").await;

    // An update to four confirmed people: queued, then sent.
    let update = app.create_update("News", "Hello {{name}}", &["updates"]).await;
    let res = app.api(reqwest::Method::POST, &format!("/updates/{update}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let (_, queued) = scrape(&app).await;
    assert_eq!(value(&queued, r#"tidings_queue_depth{queue="deliveries_pending"}"#), 4.0);
    assert_eq!(value(&queued, r#"tidings_queue_depth{queue="outbox_pending"}"#), 0.0);
    app.drive_delivery(&update, 20).await;

    let unsub = app.unsubscribe_token("ann@example.org", "updates").await;
    let res = app.post_form(&format!("/unsubscribe/{unsub}"), &[("List-Unsubscribe", "One-Click")]).await;
    assert_eq!(res.status(), 200);

    let (text, after) = scrape(&app).await;
    let delta = |series: &str| value(&after, series) - before.get(series).copied().unwrap_or(0.0);
    assert_eq!(delta(r#"tidings_subscribe_requests_total{outcome="accepted"}"#), 2.0);
    assert_eq!(delta(r#"tidings_subscribe_requests_total{outcome="invalid"}"#), 1.0);
    assert_eq!(delta(r#"tidings_confirmations_total{outcome="confirmed"}"#), 1.0);
    assert_eq!(delta(r#"tidings_confirmations_total{outcome="gone"}"#), 1.0);
    assert_eq!(delta(r#"tidings_unsubscribes_total{method="one-click"}"#), 1.0);
    assert_eq!(delta(r#"tidings_deliveries_total{outcome="sent"}"#), 4.0);
    assert_eq!(delta(r#"tidings_deliveries_total{outcome="failed"}"#), 0.0);
    assert_eq!(delta(r#"tidings_transactional_mail_total{outcome="sent"}"#), 2.0, "two confirmation mails");
    assert_eq!(value(&after, r#"tidings_queue_depth{queue="deliveries_pending"}"#), 0.0);
    assert_eq!(value(&after, r#"tidings_queue_depth{queue="deliveries_sending"}"#), 0.0);
    let rate = value(&after, "tidings_send_rate_messages_per_second");
    assert!((rate - 4.0 / 60.0).abs() < 1e-9, "4 messages in the last minute: {rate}");

    // Latency by route template and status class, never by raw path.
    let confirm_ok =
        r#"tidings_http_request_duration_seconds_count{method="POST",route="/confirm/{token}",status="2xx"}"#;
    assert_eq!(value(&after, confirm_ok), 1.0);
    let confirm_gone =
        r#"tidings_http_request_duration_seconds_count{method="POST",route="/confirm/{token}",status="4xx"}"#;
    assert_eq!(value(&after, confirm_gone), 1.0);
    let subscribes = r#"tidings_http_request_duration_seconds_count{method="POST",route="/subscribe",status="2xx"}"#;
    assert_eq!(value(&after, subscribes), 2.0);
    let api_send =
        r#"tidings_http_request_duration_seconds_count{method="POST",route="/api/v1/updates/{id}/send",status="2xx"}"#;
    assert_eq!(value(&after, api_send), 1.0);
    let inf =
        r#"tidings_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/subscribe",status="2xx"}"#;
    assert_eq!(value(&after, inf), 2.0);
    assert!(!text.contains(&token) && !text.contains(&unsub) && !text.contains(&update), "no raw paths in labels");
    let unknown = app.http.get(app.url(&format!("/no/such/{token}"))).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let (text, after) = scrape(&app).await;
    assert_eq!(
        value(&after, r#"tidings_http_request_duration_seconds_count{method="GET",route="unmatched",status="4xx"}"#),
        1.0
    );
    assert!(!text.contains(&token));
}

async fn the_request_id_is_echoed_or_made(db: Db) {
    let app = TestApp::spawn(db).await;
    for path in ["/", "/healthz", "/api/v1/lists", "/admin/login", "/no-such-page"] {
        let res = app.http.get(app.url(path)).header("X-Request-Id", "campaign-42:a.b_c").send().await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "campaign-42:a.b_c", "{path}");
        let res = app.http.get(app.url(path)).send().await.unwrap();
        let made = res.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(made).is_ok(), "{path}: a uuid is made: {made}");
    }
    // Ids we would not repeat in logs are replaced, not echoed.
    let long = "a".repeat(200);
    for bad in ["has space", "quote\"d", long.as_str()] {
        let res = app.http.get(app.url("/healthz")).header("X-Request-Id", bad).send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{bad:?} replaced by a uuid, got {id}");
    }
    let first = app.http.get(app.url("/healthz")).send().await.unwrap().headers()["x-request-id"].clone();
    let second = app.http.get(app.url("/healthz")).send().await.unwrap().headers()["x-request-id"].clone();
    assert_ne!(first, second, "each request gets its own id");
}

async fn readyz_fails_while_the_database_is_unreachable(db: Db) {
    match db {
        Db::Sqlite => {
            let app = TestApp::spawn_with(Db::Sqlite, &PUBLIC_METRICS).await;
            assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);
            // The pool is what the server reaches the database through:
            // closed, nothing can be queried.
            app.ctx.store.close().await;
            assert_not_ready(&app).await;
        }
        Db::Postgres(base) => {
            // A database of its own, so it can be dropped under the server.
            let name = format!("tidings_ready_{}", uuid::Uuid::now_v7().simple());
            let admin = tidings::store::Store::connect(&base).await.unwrap();
            let tidings::store::Store::Postgres(pool) = &admin else { unreachable!() };
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(pool).await.unwrap();
            let mut url = url::Url::parse(&base).unwrap();
            url.set_path(&format!("/{name}"));
            url.set_query(None);
            let app = TestApp::spawn_with(
                Db::Postgres(base.clone()),
                &[("TIDINGS_DATABASE_URL", url.as_str()), PUBLIC_METRICS[0], PUBLIC_METRICS[1]],
            )
            .await;
            assert_eq!(app.http.get(app.url("/readyz")).send().await.unwrap().status(), 200);
            // FORCE terminates the server's connections; reconnecting then
            // fails because the database no longer exists.
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(pool).await.unwrap();
            assert_not_ready(&app).await;
            admin.close().await;
        }
    }
}

async fn assert_not_ready(app: &TestApp) {
    let started = Instant::now();
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5), "answered within the readiness timeout");
    assert_eq!(res.text().await.unwrap(), "database unreachable");
    assert_eq!(app.http.get(app.url("/healthz")).send().await.unwrap().status(), 200, "still alive");
    // Metrics still answer, without queue depths they could not sample.
    let (_, samples) = scrape(app).await;
    assert!(samples.keys().all(|k| !k.starts_with("tidings_queue_depth")), "{samples:#?}");
    assert!(samples.contains_key(r#"tidings_subscribe_requests_total{outcome="accepted"}"#));
}

/// The headers every response carries, whatever route answered.
fn assert_common_headers(h: &reqwest::header::HeaderMap, what: &str) {
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("script-src") && !csp.contains("unsafe-inline"), "{what}: no script allowed: {csp}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
}

async fn security_headers_cover_every_class_of_route(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    let requests = [
        ("public page", app.http.get(app.url("/subscribe"))),
        ("public JSON", app.http.get(app.url("/subscribe")).header("Accept", "application/json")),
        ("public error page", app.http.get(app.url("/confirm/not-a-token"))),
        ("probe", app.http.get(app.url("/readyz"))),
        ("metrics", app.http.get(app.url("/metrics"))),
        ("admin login", app.http.get(app.url("/admin/login"))),
        ("admin anonymous", app.http.get(app.url("/admin/lists"))),
        ("api", app.api(reqwest::Method::GET, "/lists")),
        ("api error", app.http.get(app.url("/api/v1/lists"))),
        ("stylesheet", app.http.get(app.url("/assets/style.css"))),
    ];
    for (what, req) in requests {
        let res = req.send().await.unwrap();
        assert!(res.status().as_u16() < 500, "{what}: {}", res.status());
        assert_common_headers(res.headers(), what);
        assert!(res.headers().get("strict-transport-security").is_none(), "{what}: no HSTS over http");
    }
    // A signed-in admin page, its form pages, and the email preview (which
    // sets a stricter policy of its own) are never framed either.
    let update = app.create_update("Framed?", "Body", &["updates"]).await;
    for path in ["/admin", "/admin/lists"] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert_common_headers(&page.headers, path);
    }
    // The editor and an update's page run our one script (live preview,
    // live progress) and show the email's inline styles in a `srcdoc`
    // frame: script from this origin only, never inline, still unframed.
    for path in ["/admin/updates/new", &format!("/admin/updates/{update}")] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        let script = csp.split(';').find(|d| d.trim().starts_with("script-src")).unwrap_or_default();
        assert!(!script.contains("unsafe-inline"), "{path}: no inline script: {csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(page.headers["x-content-type-options"], "nosniff", "{path}");
    }
    let preview = admin.get(&format!("/admin/updates/{update}/preview")).await;
    let csp = preview.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("sandbox"), "{csp}");
    assert_eq!(preview.headers["x-frame-options"], "DENY");
}

async fn hsts_and_secure_cookies_only_when_the_base_url_is_https(db: Db) {
    for (base, https) in [("https://news.hospital.example", true), ("http://news.hospital.example", false)] {
        let app = TestApp::spawn_with(db.clone(), &[("TIDINGS_BASE_URL", base)]).await;
        for path in ["/", "/admin/login", "/api/v1/lists", "/healthz"] {
            let res = app.http.get(app.url(path)).send().await.unwrap();
            let hsts = res.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(hsts.as_deref(), https.then_some("max-age=31536000"), "{base}{path}");
            assert_common_headers(res.headers(), path);
        }
        let password = app.add_organiser("cookie@hospital.test", tidings::services::accounts::Role::Admin).await;
        let admin = crate::admin::AdminClient::new(&app);
        let mut cookies = admin.get("/admin/login").await.set_cookies();
        let login = admin.log_in("cookie@hospital.test", &password).await;
        assert_eq!(login.status, 303);
        cookies.extend(login.set_cookies());
        assert!(cookies.iter().any(|c| c.starts_with(tidings::web::admin::SESSION_COOKIE)), "{cookies:?}");
        for cookie in &cookies {
            let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
            assert!(attributes.contains(&"HttpOnly"), "{cookie}");
            assert!(attributes.contains(&"SameSite=Lax"), "{cookie}");
            assert_eq!(attributes.contains(&"Secure"), https, "{cookie} on {base}");
        }
    }
}

async fn the_real_binary_logs_json_lines_carrying_the_request_id(db: Db) {
    let smtp = crate::support::smtp::TestSmtp::start();
    let (mut env, port) = process::env(&db, &smtp.url()).await;
    env.vars.retain(|(k, _)| k != "TIDINGS_LOG");
    env.vars.push(("TIDINGS_LOG".into(), "info".into()));
    env.vars.push(("TIDINGS_LOG_FORMAT".into(), "json".into()));
    let log_path = env.dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = process::tidings(&env, &["serve", "--no-workers"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn tidings");
    process::wait_healthy(port).await;
    let http = reqwest::Client::new();
    let res = http
        .post(format!("http://127.0.0.1:{port}/subscribe"))
        .header("X-Request-Id", "req-json-log-1")
        .form(&[("email", "log@example.org"), ("lists", "updates"), ("consent", "updates")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "req-json-log-1");
    let res =
        http.get(format!("http://127.0.0.1:{port}/confirm/a-token-that-must-not-be-logged")).send().await.unwrap();
    let made = res.headers()["x-request-id"].to_str().unwrap().to_owned();

    let deadline = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&log_path).unwrap();
        if text.contains(&made) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let mut found_given = false;
    let mut found_made = false;
    for line in lines.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
        if v["span"]["name"] == "request" {
            // Every line written while serving a request names it.
            assert!(v["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
        }
        if v["span"]["request_id"] == "req-json-log-1" && v["fields"]["message"] == "finished processing request" {
            assert_eq!(v["fields"]["status"], 200, "{line}");
            assert_eq!(v["span"]["route"], "/subscribe", "{line}");
            found_given = true;
        }
        if v["span"]["request_id"] == made.as_str() {
            assert_eq!(v["span"]["route"], "/confirm/{token}", "{line}");
            found_made = true;
        }
    }
    assert!(found_given && found_made, "request ids in the logs:\n{lines}");
    assert!(!lines.contains("a-token-that-must-not-be-logged"), "tokens in paths stay out of the logs");
}

async fn a_worker_process_serves_its_metrics_on_the_metrics_address(db: Db) {
    let smtp = crate::support::smtp::TestSmtp::start();
    let (mut env, _) = process::env(&db, &smtp.url()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    env.vars.push(("TIDINGS_METRICS_BIND".into(), format!("127.0.0.1:{port}")));
    let mut child = process::tidings(&env, &["worker"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn tidings worker");
    process::wait_healthy(port).await;
    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("http://127.0.0.1:{port}/readyz")).send().await.unwrap().status(), 200);
    let text = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap();
    let samples = parse_exposition(&text);
    assert_eq!(value(&samples, r#"tidings_deliveries_total{outcome="sent"}"#), 0.0);
    assert!(samples.contains_key(r#"tidings_queue_depth{queue="outbox_pending"}"#), "{text}");
    // Only the operator's endpoints: no public pages on this address.
    assert_eq!(http.get(format!("http://127.0.0.1:{port}/subscribe")).send().await.unwrap().status(), 404);
    let _ = child.kill();
    let _ = child.wait();
}

/// Issue 16 §3: the confirmation counter and the outbox depth rise only for
/// someone new, so a public `/metrics` tells anyone whether an address was
/// already subscribed. Off the public listener by default; on the metrics
/// listener or (when asked for) the public one, the token is required.
async fn metrics_stay_off_the_public_listener_unless_enabled_and_then_need_the_token(db: Db) {
    let app = TestApp::spawn(db.clone()).await;
    assert_eq!(app.subscribe("probe@example.org", "updates").await.status(), 200);
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404, "no metrics on the public listener by default");
    assert!(!res.text().await.unwrap().contains("tidings_"), "nothing of the metrics in the 404 page");
    assert_eq!(app.scrape_metrics().await.status(), 404, "not even with a token");
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(app.http.get(app.url(probe)).send().await.unwrap().status(), 200, "{probe} stays");
    }
    drop(app);

    // The metrics listener, with a token: the public listener still has none.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let app =
        TestApp::spawn_with(db.clone(), &[("TIDINGS_METRICS_BIND", &bind), ("TIDINGS_METRICS_TOKEN", METRICS_TOKEN)])
            .await;
    process::wait_healthy(port).await;
    assert_eq!(app.scrape_metrics().await.status(), 404);
    let ops = format!("http://{bind}/metrics");
    let res = app.http.get(&ops).send().await.unwrap();
    assert_eq!(res.status(), 401, "the token is required on the metrics listener too");
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert!(!res.text().await.unwrap().contains("tidings_"));
    let wrong = app.http.get(&ops).bearer_auth("test-metrics-token-012345678X").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = app.http.get(&ops).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(right.status(), 200);
    assert!(
        parse_exposition(&right.text().await.unwrap())
            .contains_key(r#"tidings_confirmations_total{outcome="confirmed"}"#)
    );
    drop(app);

    // Explicitly public, behind the token.
    let app = TestApp::spawn_with(db, &PUBLIC_METRICS).await;
    assert_eq!(app.http.get(app.url("/metrics")).send().await.unwrap().status(), 401);
    let wrong = app.http.get(app.url("/metrics")).bearer_auth("not-the-token-at-all").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.scrape_metrics().await.status(), 200);
}

#[test]
fn the_parser_refuses_what_prometheus_would_refuse() {
    let ok = "# HELP a_total x\n# TYPE a counter\na_total{k=\"v \\\"q\\\"\"} 1\n# EOF\n";
    assert_eq!(parse_exposition(ok)["a_total{k=\"v \\\"q\\\"\"}"], 1.0);
    for bad in [
        "# TYPE a counter\na_total 1\n",
        "# TYPE a counter\na_total one\n# EOF\n",
        "# TYPE a counter\nb_total 1\n# EOF\n",
        "# TYPE a counter\na_total{k=v} 1\n# EOF\n",
        "# TYPE a counter\na_total{k=\"v} 1\n# EOF\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse_exposition(bad)).is_err(), "{bad:?} must be refused");
    }
}
