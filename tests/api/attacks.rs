//! Attack tests (issue 6, item 5), each on both databases. What
//! tests/api/admin/access.rs and tests/api/api.rs already prove (anonymous
//! and forged-token requests on every route, CSRF on every admin POST,
//! editors on every admin-only route) is not repeated here.

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, html_body, html_escaped, text_body, urlencode};
use reqwest::Method;
use serde_json::json;
use std::time::Instant;

both_backends!(
    a_revoked_api_token_is_refused_on_every_api_route,
    sql_injection_through_every_filter_changes_nothing,
    stored_html_in_names_is_escaped_in_admin_pages_and_mail,
    header_injection_never_adds_a_mail_header,
    confirmation_tokens_cannot_be_replayed_and_signed_links_cannot_be_forged,
    subscription_bombing_from_many_addresses_sends_one_mail,
    subscribe_answers_for_known_and_unknown_addresses_take_the_same_time,
);

const SCRIPT_NAME: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>";

async fn a_revoked_api_token_is_refused_on_every_api_route(db: Db) {
    let app = TestApp::spawn(db).await;
    let token = tidings::services::accounts::create_token(&app.ctx.store, &app.ctx.clock, "doomed").await.unwrap();
    let ok = app.http.get(app.url("/api/v1/lists")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let id = {
        let mut tx = app.ctx.store.read().await.unwrap();
        tx.api_tokens().await.unwrap().into_iter().find(|t| t.name == "doomed").unwrap().id
    };
    tidings::services::accounts::revoke_token(&app.ctx, id).await.unwrap();
    let paths: Vec<String> = tidings::web::api_paths().iter().map(|p| p.replace("{id}", "updates")).collect();
    for path in &paths {
        for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let res = app
                .http
                .request(method.clone(), app.url(&format!("/api/v1{path}")))
                .bearer_auth(&token)
                .json(&json!({"slug": "intruder", "name": "x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{method} {path} with a revoked token");
        }
    }
    assert_eq!(app.api_get("/lists/updates").await["slug"], "updates");
    assert!(app.api_get("/lists").await.as_array().unwrap().iter().all(|l| l["slug"] != "intruder"));
}

const INJECTIONS: &[&str] = &[
    "' OR '1'='1",
    "x' OR 1=1 --",
    "'; DROP TABLE subscribers; --",
    "\" OR \"\"=\"",
    "%' OR email LIKE '%",
    "1) UNION SELECT NULL, NULL --",
    "\\'; SELECT pg_sleep(5); --",
    "updates' --",
];

async fn sql_injection_through_every_filter_changes_nothing(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("row", 3, "updates").await;
    let admin = app.login_as_admin().await;
    let subscriber_filters = ["list", "status", "q", "created_from", "created_to", "cursor", "limit", "email"];
    let audit_filters = ["actor", "action", "from", "until", "before", "cursor", "limit"];
    for bad in INJECTIONS {
        let value = urlencode(bad);
        for f in subscriber_filters {
            let res = app.api(Method::GET, &format!("/subscribers?{f}={value}")).send().await.unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap_or(json!(null));
            assert!([200, 400, 404, 422].contains(&status), "/api/v1/subscribers?{f}={bad}: {status} {body}");
            if status == 200 && f != "email" {
                // A substring filter may legitimately match nothing; it
                // must never widen to rows it should not include.
                let n = body["subscribers"].as_array().map_or(0, Vec::len);
                assert!(n == 0 || f == "limit" || f == "cursor", "/subscribers?{f}={bad} matched {n} rows: {body}");
            }
            if f != "email" {
                let page = admin.get(&format!("/admin/subscribers?{f}={value}")).await;
                assert!([200, 400, 422].contains(&page.status), "/admin/subscribers?{f}={bad}: {}", page.status);
                assert!(!page.body.contains("row0@example.org") || f == "limit" || f == "cursor", "{f}={bad}");
            }
        }
        for f in audit_filters {
            let res = app.api(Method::GET, &format!("/audit-log?{f}={value}")).send().await.unwrap();
            let status = res.status().as_u16();
            assert!([200, 400, 422].contains(&status), "/api/v1/audit-log?{f}={bad}: {status}");
            if status == 200 && f != "limit" && f != "cursor" {
                let body: serde_json::Value = res.json().await.unwrap();
                let n = body["entries"].as_array().map_or(0, Vec::len);
                assert_eq!(n, 0, "/audit-log?{f}={bad}: {body}");
            }
            let page = admin.get(&format!("/admin/audit?{f}={value}")).await;
            assert!([200, 400, 422].contains(&page.status), "/admin/audit?{f}={bad}: {}", page.status);
        }
    }
    // The tables are intact and hold exactly what they held.
    let page = app.api_get("/subscribers").await;
    assert_eq!(page["subscribers"].as_array().unwrap().len(), 3, "{page}");
    assert_eq!(app.api_get("/lists").await.as_array().unwrap().len(), 1);
}

async fn stored_html_in_names_is_escaped_in_admin_pages_and_mail(db: Db) {
    let app = TestApp::spawn(db).await;
    let list_name = "<b>Bold</b> & <script>alert('list')</script>";
    let list = app.create_list("xss", list_name).await;
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "xss@example.org"), ("name", SCRIPT_NAME), ("lists", "xss"), ("consent", "xss")],
        )
        .await;
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    app.drain_outbox().await;
    let mail = app.smtp.messages_to("xss@example.org").pop().expect("a confirmation mail");
    let html = html_body(&mail);
    assert!(!html.contains("<script>") && !html.contains("<img src=x"), "mail HTML: {html}");
    let confirm = app.http.post(app.url(&format!("/confirm/{}", confirm_token(&mail)))).send().await.unwrap();
    assert!(confirm.status().is_success() || confirm.status().is_redirection());

    let subject = "<img src=x onerror=alert('subject')>";
    let body = "Hello\n\n<script>alert('body')</script>\n\n<img src=x onerror=alert(2)>\n\n**bold**";
    let update = app.create_update(subject, body, &["xss"]).await;
    let sent = app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap();
    assert!(sent.status().is_success(), "{}", sent.status());
    app.drive_delivery(&update, 20).await;
    let mails = app.smtp.messages_to("xss@example.org");
    let update_mail = mails.iter().find(|m| !text_body(m).contains("/confirm/")).expect("the update arrived");
    let html = html_body(update_mail);
    assert!(!html.contains("<script>") && !html.contains("<img src=x"), "update HTML passes raw HTML: {html}");
    assert!(html.contains("<strong>bold</strong>"), "markdown still renders: {html}");

    let admin = app.login_as_admin().await;
    let subscriber = app.subscriber("xss@example.org").await;
    let id = subscriber["id"].as_str().unwrap();
    // A rights request whose subject and notes are hostile, too.
    let logged = admin
        .submit(
            "/admin/rights",
            "/admin/rights",
            &[("kind", "access"), ("subject", SCRIPT_NAME), ("received_at", ""), ("notes", SCRIPT_NAME)],
        )
        .await;
    assert_eq!(logged.status, 303, "{}", logged.body);
    let request_page = logged.location().unwrap().split('?').next().unwrap().to_owned();
    assert!(admin.get(&request_page).await.body.contains(&html_escaped(SCRIPT_NAME)), "shown, escaped");
    let pages = [
        request_page,
        "/admin/subscribers".to_owned(),
        format!("/admin/subscribers/{id}"),
        "/admin/lists".to_owned(),
        format!("/admin/updates/{update}"),
        "/admin/updates".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/rights".to_owned(),
    ];
    for page in &pages {
        let res = admin.get(page).await;
        assert_eq!(res.status, 200, "GET {page}");
        for raw in ["<script>alert", "<img src=x", "<b>Bold</b>"] {
            assert!(!res.body.contains(raw), "GET {page} carries raw {raw:?}");
        }
    }
    let subscribers = admin.get(&format!("/admin/subscribers/{id}")).await;
    assert!(subscribers.body.contains(&html_escaped(SCRIPT_NAME)), "the name is shown, escaped");
    let lists = admin.get("/admin/lists").await;
    assert!(lists.body.contains(&html_escaped(list_name)), "the list name is shown, escaped");
    // The public archive and the preferences page.
    let _ = list;
    app.api(Method::PATCH, "/lists/xss").json(&json!({"archive": true})).send().await.unwrap();
    for path in ["/archive".to_owned(), format!("/archive/{update}"), "/".to_owned()] {
        let res = app.http.get(app.url(&path)).send().await.unwrap();
        let text = res.text().await.unwrap();
        for raw in ["<script>alert", "<img src=x", "<b>Bold</b>"] {
            assert!(!text.contains(raw), "GET {path} carries raw {raw:?}");
        }
    }
    let s = uuid::Uuid::parse_str(id).unwrap();
    let token = tidings::domain::SignedToken::preferences(s).encode(&app.ctx.secret_key);
    let prefs = app.http.get(app.url(&format!("/preferences/{token}"))).send().await.unwrap();
    assert_eq!(prefs.status(), 200);
    let text = prefs.text().await.unwrap();
    for raw in ["<script>alert", "<img src=x", "<b>Bold</b>"] {
        assert!(!text.contains(raw), "preferences page carries raw {raw:?}");
    }
}

async fn header_injection_never_adds_a_mail_header(db: Db) {
    let app = TestApp::spawn(db).await;
    // A list name with CR/LF is refused or neutralised.
    let res = app
        .api(Method::POST, "/lists")
        .json(&json!({"slug": "crlf", "name": "Court\r\nBcc: victim@example.net"}))
        .send()
        .await
        .unwrap();
    let list_refused = res.status() == 422;
    if !list_refused {
        assert_eq!(res.status(), 201);
    }
    // A name with CR/LF through the public form.
    let res = app
        .post_form(
            "/subscribe",
            &[
                ("email", "crlf@example.org"),
                ("name", "Sam\r\nBcc: victim@example.net"),
                ("lists", "updates"),
                ("consent", "updates"),
            ],
        )
        .await;
    assert!(res.status().as_u16() < 500, "{}", res.status());
    let name = {
        let mut tx = app.ctx.store.read().await.unwrap();
        tx.subscriber_by_email("crlf@example.org").await.unwrap().map(|s| s.name)
    };
    assert!(name.as_deref().is_none_or(|n| !n.contains(['\r', '\n'])), "a name kept its CR/LF: {name:?}");
    // A name that got past every check (written straight to the store, as
    // an old import might have) is still no way into the headers.
    {
        let now = app.ctx.clock.now();
        let mut tx = app.ctx.store.write().await.unwrap();
        let list = tx.list_by_slug("updates").await.unwrap().unwrap();
        let row = tidings::store::SubscriberRow {
            id: uuid::Uuid::now_v7(),
            email: "raw-crlf@example.org".into(),
            email_norm: "raw-crlf@example.org".into(),
            name: "Raw\r\nBcc: victim@example.net\r\nX-Injected: yes".into(),
            attributes: "{}".into(),
            created_at: now,
            updated_at: now,
        };
        tx.insert_subscriber(&row, &app.ctx.address_key.fingerprint(&row.email_norm)).await.unwrap();
        tx.set_subscription_status(row.id, list.id, tidings::domain::SubscriptionStatus::Confirmed, now).await.unwrap();
        tx.commit().await.unwrap();
    }
    // A subject with CR/LF is refused.
    let res = app
        .api(Method::POST, "/updates")
        .json(&json!({"subject": "Hi\r\nBcc: victim@example.net", "body_markdown": "x", "lists": ["updates"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "a subject with CR/LF");
    app.confirmed_subscribers("hdr", 1, "updates").await;
    if !list_refused {
        app.confirmed_subscribers("hdr-crlf", 1, "crlf").await;
    }
    let lists: Vec<&str> = if list_refused { vec!["updates"] } else { vec!["updates", "crlf"] };
    let update = app.create_update("Plain subject", "Body", &lists).await;
    app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap();
    app.drive_delivery(&update, 20).await;
    app.drain_outbox().await;
    let all = app.smtp.messages();
    assert!(all.iter().any(|m| m.to.iter().any(|r| r == "raw-crlf@example.org")), "the raw name was mailed too");
    for mail in &all {
        assert!(mail.to.iter().all(|r| !r.contains("victim")), "a victim recipient");
        let parsed = mail_parser::MessageParser::default().parse(&mail.data).unwrap();
        assert!(parsed.header_raw("Bcc").is_none(), "an injected Bcc header: {}", mail.text());
        assert!(parsed.header_raw("X-Injected").is_none(), "an injected header: {}", mail.text());
        for (name, value) in parsed.headers_raw() {
            assert!(!value.contains("victim@example.net") || name.eq_ignore_ascii_case("x-none"), "{name}: {value}");
        }
    }
}

async fn confirmation_tokens_cannot_be_replayed_and_signed_links_cannot_be_forged(db: Db) {
    let app = TestApp::spawn(db).await;
    app.subscribe("replay@example.org", "updates").await;
    app.drain_outbox().await;
    let token = confirm_token(&app.smtp.messages_to("replay@example.org").pop().unwrap());
    let first = app.http.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert!(first.status().is_success() || first.status().is_redirection());
    // Unsubscribe, then replay the old confirmation: it must not resubscribe.
    let unsub = app.unsubscribe_token("replay@example.org", "updates").await;
    let res = app.http.post(app.url(&format!("/unsubscribe/{unsub}"))).send().await.unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());
    assert_eq!(app.status("replay@example.org", "updates").await, "unsubscribed");
    let again = app.http.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert_eq!(again.status(), 410, "a used confirmation token");
    assert_eq!(app.status("replay@example.org", "updates").await, "unsubscribed");

    // Flip every byte position of a signed link once: none verifies.
    let s = uuid::Uuid::parse_str(app.subscriber("replay@example.org").await["id"].as_str().unwrap()).unwrap();
    let prefs = tidings::domain::SignedToken::preferences(s).encode(&app.ctx.secret_key);
    for (i, kind) in [(prefs.clone(), "preferences"), (unsub.clone(), "unsubscribe")].iter().map(|(t, k)| (t, *k)) {
        let bytes = i.as_bytes();
        for pos in 0..bytes.len() {
            let mut forged = bytes.to_vec();
            forged[pos] = if forged[pos] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).unwrap();
            if forged == *i {
                continue;
            }
            let path = format!("/{kind}/{forged}");
            let res = app.http.get(app.url(&path)).send().await.unwrap();
            assert!([400, 404, 410].contains(&res.status().as_u16()), "GET {path}: {}", res.status());
        }
    }
    // A token signed with another key is refused.
    let other = tidings::domain::SignedToken::preferences(s).encode(b"another key of the same length, 32b");
    let res = app.http.get(app.url(&format!("/preferences/{other}"))).send().await.unwrap();
    assert!([400, 404, 410].contains(&res.status().as_u16()), "{}", res.status());
}

async fn subscription_bombing_from_many_addresses_sends_one_mail(db: Db) {
    use futures_util::StreamExt;
    // 10,000 requests for one victim, 64 at a time, each from its own
    // client address (and network) through the trusted proxy header.
    const REQUESTS: u32 = 10_000;
    let app = TestApp::spawn_with(
        db,
        &[("TIDINGS_TRUSTED_PROXY_HEADER", "X-Forwarded-For"), ("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "5")],
    )
    .await;
    let statuses: Vec<u16> = futures_util::stream::iter(0..REQUESTS)
        .map(|i| {
            // Each from its own /24 too, so the per-network limit never
            // fires either.
            let ip = format!("10.{}.{}.1", i / 256, i % 256);
            let req =
                app.http.post(app.url("/subscribe")).header("x-forwarded-for", ip).header("accept", "application/json");
            async move {
                let res = req.form(&[("email", "victim@example.org"), ("lists", "updates"), ("consent", "updates")]);
                res.send().await.unwrap().status().as_u16()
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    // Every request is answered as a normal subscribe: the per-address
    // limit never fires (each comes from its own address), so only the
    // resend limit stands between the victim and 10,000 mails.
    assert!(
        statuses.iter().all(|&s| s == 202),
        "{:?}",
        statuses.iter().filter(|&&s| s != 202).take(5).collect::<Vec<_>>()
    );
    app.drain_outbox().await;
    let mails = app.smtp.messages_to("victim@example.org");
    assert_eq!(mails.len(), 1, "one confirmation mail per list per 24 h");
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn subscribe_answers_for_known_and_unknown_addresses_take_the_same_time(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "100000")]).await;
    app.confirmed_subscribers("known", 1, "updates").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..200 {
        for (addr, into) in
            [("known0@example.org".to_owned(), &mut known), (format!("new{i}@example.org"), &mut unknown)]
        {
            let start = Instant::now();
            let res = app.subscribe(&addr, "updates").await;
            let elapsed = start.elapsed();
            assert!(res.status().is_success() || res.status().is_redirection());
            into.push(elapsed.as_secs_f64() * 1000.0);
        }
    }
    let (mk, mu) = (median(&mut known), median(&mut unknown));
    let iqr = |v: &[f64]| v[v.len() * 3 / 4] - v[v.len() / 4];
    let spread = iqr(&known).max(iqr(&unknown));
    eprintln!("subscribe timing: known median {mk:.3} ms, unknown median {mu:.3} ms, larger IQR {spread:.3} ms");
    // A new address costs more writes than a known one; alone on a quiet
    // server (the only place one request can be timed by itself) the
    // answer waits for a floor longer than either path, so the medians
    // differ only by noise. The floor is really there:
    let floor = tidings::services::subscribe_queue::QUIET_ANSWER_FLOOR.as_secs_f64() * 1000.0;
    assert!(mk >= floor && mu >= floor, "known {mk:.3} ms, unknown {mu:.3} ms, floor {floor} ms");
    let bound = (spread / 2.0).max(1.5);
    assert!((mk - mu).abs() <= bound, "known {mk:.3} ms vs unknown {mu:.3} ms (IQR {spread:.3}, bound {bound:.1})");
}
