//! The audit log, the rights-request log and the daily retention purge.

use crate::admin::AdminClient;
use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_backends!(
    organiser_actions_are_audited_with_who_what_where_and_result,
    the_audit_log_filters_pages_and_exports_csv,
    rights_requests_are_due_in_a_month_extend_once_and_close_once,
    rights_requests_in_the_admin_ui,
    erasure_leaves_rights_requests_with_only_the_hash,
    retention_purges_stale_pending_and_withdrawn_evidence_once_a_day,
    a_new_privacy_notice_shows_its_diff_and_re_permission_is_recorded,
);

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let page = app.api_get(&format!("/audit-log?{query}")).await;
    page["entries"].as_array().expect("entries").clone()
}

async fn organiser_actions_are_audited_with_who_what_where_and_result(db: Db) {
    let app = TestApp::spawn(db).await;
    let list = app.create_list("court", "Court case").await;
    let _ = app.api_get("/lists").await;

    let entries = audit(&app, "").await;
    assert_eq!(entries.len(), 1, "reads are not audited: {entries:?}");
    let e = &entries[0];
    assert_eq!(e["action"], "POST /api/v1/lists");
    assert_eq!(e["target"], "/api/v1/lists");
    assert_eq!(e["status"], 201);
    assert_eq!(e["actor_label"], "tests", "the token's name");
    assert!(e["actor"].as_str().unwrap().starts_with("api-token:"));
    assert_eq!(e["ip"], "127.0.0.1");

    // A refused call is audited too, with its status.
    let res = app.api(Method::DELETE, &format!("/lists/{}", uuid::Uuid::now_v7())).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(audit(&app, "").await[0]["status"], 404);

    // Admin UI: a failed login is named by a keyed fingerprint of what was
    // typed, never what was typed (issue 16 §5: it may be a supporter's
    // address, or a password in the wrong box); a success and what the
    // organiser then does name the organiser.
    let client = AdminClient::new(&app);
    assert_eq!(client.log_in("someone@hospital.test", "wrong password").await.status, 401);
    let admin = app.login_as_admin().await;
    let edit = format!("/admin/lists/{}", list["id"].as_str().unwrap());
    let res = admin.submit(&edit, &edit, &[("name", "Court case <2>"), ("description", ""), ("public", "on")]).await;
    assert!(res.status < 400, "{}", res.body);

    let entries = audit(&app, "").await;
    let failed = entries.iter().find(|e| e["status"] == 401).expect("the failed login");
    assert_eq!((failed["action"].as_str(), failed["actor"].as_str()), (Some("POST /admin/login"), Some("anonymous")));
    let fingerprint = app.ctx.address_key.fingerprint("someone@hospital.test");
    assert_eq!(failed["actor_label"], format!("login attempt {}", &fingerprint[..16]));
    assert!(!failed.to_string().contains("someone"), "{failed}");
    let edited = entries.iter().find(|e| e["action"] == "POST /admin/lists/{id}").expect("the edit");
    assert_eq!(edited["actor_label"], "admin@hospital.test");
    assert_eq!(edited["target"], edit);
    assert!(edited["actor"].as_str().unwrap().starts_with("organiser:"));
}

async fn the_audit_log_filters_pages_and_exports_csv(db: Db) {
    let app = TestApp::spawn(db).await;
    for i in 0..5 {
        app.create_list(&format!("l{i}"), "A list").await;
    }
    // A token whose name a spreadsheet would run as a formula.
    let token =
        tidings::services::accounts::create_token(&app.ctx.store, &app.ctx.clock, "=HYPERLINK(\"x\")").await.unwrap();
    let res = app
        .http
        .post(app.url("/api/v1/lists"))
        .bearer_auth(&token)
        .json(&json!({"slug": "evil", "name": "Evil"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    assert_eq!(audit(&app, "").await.len(), 6);
    assert_eq!(audit(&app, "actor=hyperlink").await.len(), 1, "by who, case-insensitively");
    assert_eq!(audit(&app, "action=%2Fl3").await.len(), 0, "the path template, not the slug, is the action");
    assert_eq!(audit(&app, "action=post").await.len(), 6);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    assert_eq!(audit(&app, &format!("from={tomorrow}")).await.len(), 0);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(audit(&app, &format!("from={today}&until={today}")).await.len(), 6);

    // Keyset pages, newest first.
    let first = app.api_get("/audit-log?limit=4").await;
    let next = first["next"].as_str().expect("a next page");
    let second = app.api_get(&format!("/audit-log?limit=4&before={next}")).await;
    assert_eq!(second["entries"].as_array().unwrap().len(), 2);
    assert!(second["next"].is_null());

    let res = app.api(Method::GET, "/audit-log?from=yesterday").send().await.unwrap();
    assert_eq!(res.status(), 422);
    assert!(res.json::<Value>().await.unwrap()["error"]["fields"]["from"].is_string());

    let res = app.api(Method::GET, "/audit-log?format=csv").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,occurred_at,actor,actor_label,action,target,status,ip,detail");
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(csv.contains("'=HYPERLINK"), "formulas are defused: {csv}");

    // The admin page and its CSV, for admins.
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin/audit?action=lists").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("POST /api/v1/lists"), "{}", page.body);
    assert!(page.body.contains("=HYPERLINK(&#34;x&#34;)"), "the token's name is shown, escaped: {}", page.body);
    assert!(!page.body.contains("=HYPERLINK(\"x\")"), "names are escaped in the page");
    let bad = admin.get("/admin/audit?until=never").await;
    assert_eq!(bad.status, 422);
    let csv = admin.get("/admin/audit.csv?actor=hyperlink").await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    let editor = app.login_as_editor().await;
    assert_eq!(editor.get("/admin/audit").await.status, 403);
}

async fn rights_requests_are_due_in_a_month_extend_once_and_close_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let res = app
        .api(Method::POST, "/rights-requests")
        .json(&json!({"kind": "access", "subject": "Ann <ann@example.org>", "received_at": "2026-01-31T10:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["due_at"], "2026-02-28T10:00:00Z", "one calendar month, to the month's end");
    assert_eq!(r["status"], "open");
    assert_eq!(r["overdue"], true, "February 2026 is past");
    let id = r["id"].as_str().unwrap();

    let patch = |body: Value| app.api(Method::PATCH, &format!("/rights-requests/{id}")).json(&body).send();
    let res = patch(json!({"action": "extend", "reason": ""})).await.unwrap();
    assert_eq!(res.status(), 422, "an extension needs its reason");
    let r: Value =
        patch(json!({"action": "extend", "reason": "several requests at once"})).await.unwrap().json().await.unwrap();
    assert_eq!(r["extended_due_at"], "2026-04-28T10:00:00Z");
    assert_eq!(r["effective_due_at"], "2026-04-28T10:00:00Z");
    assert_eq!(patch(json!({"action": "extend", "reason": "again"})).await.unwrap().status(), 409, "once only");
    let r: Value = patch(json!({"action": "complete", "outcome": "copy sent"})).await.unwrap().json().await.unwrap();
    assert_eq!((r["status"].as_str(), r["overdue"].as_bool()), (Some("completed"), Some(false)));
    assert_eq!(patch(json!({"action": "refuse", "outcome": "no"})).await.unwrap().status(), 409);

    for bad in [
        json!({"kind": "gossip", "subject": "x"}),
        json!({"kind": "erasure", "subject": " "}),
        json!({"kind": "access", "subject": "x", "received_at": "2999-01-01T00:00:00Z"}),
    ] {
        let res = app.api(Method::POST, "/rights-requests").json(&bad).send().await.unwrap();
        assert_eq!(res.status(), 422, "{bad}");
    }
    let res = app
        .api(Method::PATCH, &format!("/rights-requests/{id}"))
        .json(&json!({"action": "shred"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(app.api(Method::GET, "/rights-requests/not-an-id").send().await.unwrap().status(), 404);
    let all = app.api_get("/rights-requests?status=completed").await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(app.api(Method::GET, "/rights-requests?status=weird").send().await.unwrap().status(), 422);
}

async fn rights_requests_in_the_admin_ui(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    let res = admin
        .submit(
            "/admin/rights",
            "/admin/rights",
            &[("kind", "erasure"), ("subject", "<b>Bob</b>"), ("received_at", ""), ("notes", "by phone")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let page_url = res.location().unwrap().to_owned();
    let page = admin.get(&page_url).await;
    assert!(page.body.contains("&#60;b&#62;Bob&#60;/b&#62;") && !page.body.contains("<b>Bob</b>"), "escaped");
    assert!(page.body.contains("has been logged"));
    let path = page_url.split('?').next().unwrap().to_owned();
    let res = admin.submit(&path, &path, &[("action", "extend"), ("reason", "complex")]).await;
    assert_eq!(res.status, 303);
    let page = admin.get(&path).await;
    assert!(
        page.body.contains("Extended because")
            && page.body.contains("complex")
            && page.body.contains("extended by two months")
    );
    let res = admin.submit(&path, &path, &[("action", "complete"), ("outcome", "erased")]).await;
    assert_eq!(res.status, 303);
    let list = admin.get("/admin/rights").await;
    assert!(list.body.contains("completed"));
    let res = admin
        .submit(
            "/admin/rights",
            "/admin/rights",
            &[("kind", "access"), ("subject", "x"), ("received_at", "31/01/2026")],
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(app.login_as_editor().await.get("/admin/rights").await.status, 403);
}

async fn erasure_leaves_rights_requests_with_only_the_hash(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("erase", 1, "updates").await;
    let email = "erase0@example.org";
    let id = app.subscriber(email).await["id"].as_str().unwrap().to_owned();
    let res = app
        .api(Method::POST, "/rights-requests")
        .json(&json!({"kind": "erasure", "subject": email}))
        .send()
        .await
        .unwrap();
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["subscriber_id"], id.as_str(), "linked to the person");
    let res = app.api(Method::POST, &format!("/subscribers/{id}/erase")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let r = app.api_get(&format!("/rights-requests/{}", r["id"].as_str().unwrap())).await;
    assert!(r["subject"].as_str().unwrap().starts_with("erased address, fingerprint "), "{r}");
    assert!(r["subscriber_id"].is_null());
    assert!(!r.to_string().contains(email));
}

async fn retention_purges_stale_pending_and_withdrawn_evidence_once_a_day(db: Db) {
    let app = TestApp::spawn(db).await;
    app.ctx.clock.freeze();
    // Stale: asked 31 days ago, never confirmed.
    assert_eq!(app.subscribe("stale@example.org", "updates").await.status(), 200);
    // Withdrawn long ago: confirmed, then unsubscribed.
    assert_eq!(app.subscribe("gone@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to("gone@example.org").last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    let unsub = app.unsubscribe_token("gone@example.org", "updates").await;
    assert_eq!(app.post_form(&format!("/unsubscribe/{unsub}"), &[]).await.status(), 200);
    // Erased long ago: only the suppression remains, and must stay.
    app.confirmed_subscribers("erased", 1, "updates").await;
    let erased = app.subscriber("erased0@example.org").await["id"].as_str().unwrap().to_owned();
    assert_eq!(app.api(Method::POST, &format!("/subscribers/{erased}/erase")).send().await.unwrap().status(), 200);

    app.ctx.clock.advance(Duration::from_secs(29 * 86400));
    // Recent: asked two days before the purge, and a confirmed supporter.
    assert_eq!(app.subscribe("recent@example.org", "updates").await.status(), 200);
    assert_eq!(app.subscribe("kept@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to("kept@example.org").last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    app.ctx.clock.advance(Duration::from_secs(2 * 86400));

    let worker = tidings::workers::maintenance::MaintenanceWorker::new(app.ctx.clone());
    let counts = worker.run_once().await.unwrap().expect("due on first start");
    assert_eq!(counts.unconfirmed_subscriptions, 1);
    assert_eq!(counts.subscribers, 1);
    assert_eq!(counts.withdrawn_events, 0, "withdrawn only 31 days ago");
    assert_eq!(worker.run_once().await.unwrap(), None, "once a day, however often it is asked");

    let find = |email: &str| app.api(Method::GET, &format!("/subscribers?email={email}")).send();
    assert_eq!(find("stale@example.org").await.unwrap().status(), 404, "never confirmed: gone");
    assert_eq!(app.status("recent@example.org", "updates").await, "pending");
    assert_eq!(app.status("kept@example.org", "updates").await, "confirmed");
    assert!(!app.ledger("gone@example.org").await.is_empty());

    // Two years on, the withdrawn subscription's evidence goes; the
    // subscription stays, marked unsubscribed; the suppression stays.
    app.ctx.clock.advance(Duration::from_secs(730 * 86400));
    let counts = worker.run_once().await.unwrap().expect("a day has passed");
    assert!(counts.withdrawn_events >= 3, "{counts:?}");
    assert!(app.ledger("gone@example.org").await.is_empty());
    assert_eq!(app.status("gone@example.org", "updates").await, "unsubscribed");
    assert!(!app.ledger("kept@example.org").await.is_empty(), "a confirmed supporter's evidence stays");
    let res = app.subscribe("erased0@example.org", "updates").await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("erased0@example.org").is_empty(), "the suppression outlives every purge");

    let purges = audit(&app, "action=retention").await;
    assert_eq!(purges.len(), 2);
    assert_eq!(purges[0]["actor"], "system");
    let detail: Value = serde_json::from_str(purges[1]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["counts"]["unconfirmed_subscriptions"], 1);
}

async fn a_new_privacy_notice_shows_its_diff_and_re_permission_is_recorded(db: Db) {
    let app = TestApp::spawn(db).await;
    // A supporter who agreed under the first notice.
    assert_eq!(app.subscribe("ann@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(app.smtp.messages_to("ann@example.org").last().unwrap());
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    let first = app.api_get("/privacy-notices").await;
    let v1 = first["version"].as_i64().unwrap();
    let old_text = first["text"].as_str().unwrap().to_owned();
    let old_first_line = old_text.lines().next().unwrap().to_owned();

    let admin = app.login_as_admin().await;
    let new_text = format!("{old_text}\nWe now also keep <b>which updates you open</b>.");
    let res = admin.submit("/admin/privacy", "/admin/privacy/preview", &[("text", &new_text), ("url", "")]).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.contains("<ins>+ We now also keep &#60;b&#62;which updates you open&#60;/b&#62;.</ins>"),
        "{}",
        res.body
    );
    assert!(!res.body.contains("<del>"), "nothing removed");
    assert!(res.body.contains(&format!("  {}", crate::support::app::html_escaped(&old_first_line))));
    let res = admin.submit("/admin/privacy", "/admin/privacy", &[("text", &new_text), ("url", "")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let v2 = v1 + 1;
    assert_eq!(res.location(), Some(format!("/admin/privacy?published={v2}").as_str()));
    assert_eq!(app.api_get("/privacy-notices").await["version"], v2);

    let page = admin.get(&format!("/admin/privacy?published={v2}")).await;
    assert!(page.body.contains("Draft a re-permission update"));
    let res = admin.submit("/admin/privacy", "/admin/privacy/announce", &[("kind", "repermission")]).await;
    assert_eq!(res.status, 303);
    let id = res.location().unwrap().trim_start_matches("/admin/updates/").trim_end_matches("/edit").to_owned();
    let update = app.api_get(&format!("/updates/{id}")).await;
    assert_eq!(update["status"], "draft");
    assert!(update["subject"].as_str().unwrap().starts_with("Please confirm"));
    assert!(update["body_markdown"].as_str().unwrap().contains("/privacy"));

    // Ann saves her choices unchanged: one new ledger entry, naming v2.
    let sid: uuid::Uuid = app.subscriber("ann@example.org").await["id"].as_str().unwrap().parse().unwrap();
    let prefs = tidings::domain::SignedToken::preferences(sid).encode(&app.ctx.secret_key);
    let before = app.ledger("ann@example.org").await.len();
    let save = [("name", ""), ("lists", "updates"), ("action", "save")];
    assert_eq!(app.post_form(&format!("/preferences/{prefs}"), &save).await.status(), 200);
    let ledger = app.ledger("ann@example.org").await;
    assert_eq!(ledger.len(), before + 1);
    let newest = ledger.iter().max_by_key(|e| e["occurred_at"].as_str().unwrap().to_owned()).unwrap();
    assert_eq!((newest["kind"].as_str(), newest["privacy_notice"]["version"].as_i64()), (Some("confirmed"), Some(v2)));
    assert_eq!(app.post_form(&format!("/preferences/{prefs}"), &save).await.status(), 200);
    assert_eq!(app.ledger("ann@example.org").await.len(), before + 1, "once per version");
    assert_eq!(app.login_as_editor().await.get("/admin/privacy").await.status, 403);
}
