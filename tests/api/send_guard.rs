//! Issue 16 §7: a send stops itself when recipients complain. Complaints
//! (webhook, ARF) and hard bounces (DSN) tied to an update's copies are
//! counted; past 0.3% complaints or 5% hard bounces, after the minimum
//! number of attempts, the send pauses with an alert saying why, on the
//! dashboard and the update's page, and sends nothing more; the figures
//! are in the API stats and `/metrics`; an organiser may resume.

use crate::admin::AdminClient;
use crate::both_backends;
use crate::support::app::{Db, PUBLIC_METRICS, TestApp, header};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use tidings::services::bounces;

both_backends!(
    four_complaints_in_a_thousand_pause_the_send_with_an_alert_and_nothing_more_goes_out,
    an_arf_complaint_before_the_minimum_pauses_the_send_at_the_next_batch,
    hard_bounces_reported_by_dsn_past_five_percent_pause_the_send,
);

const SECRET: &str = "a-long-webhook-secret-for-tests";

async fn spawn(db: Db, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("TIDINGS_WEBHOOK_SECRET", SECRET), PUBLIC_METRICS[0], PUBLIC_METRICS[1]];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(db, &settings).await
}

/// Starts sending a new update to `updates`; returns its id.
async fn start_send(app: &TestApp, subject: &str) -> String {
    let id = app.create_update(subject, "Dear {{name}}, news.", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    id
}

/// Each recipient's Message-ID, from the copies the relay received.
fn message_ids(app: &TestApp) -> HashMap<String, String> {
    app.smtp
        .messages()
        .iter()
        .map(|m| (m.to[0].to_lowercase(), header(m, "Message-ID").expect("a Message-ID")))
        .collect()
}

async fn status(app: &TestApp, id: &str) -> String {
    app.api_get(&format!("/updates/{id}")).await["status"].as_str().unwrap().to_owned()
}

async fn stats(app: &TestApp, id: &str) -> Value {
    app.api_get(&format!("/updates/{id}/stats")).await
}

async fn complain_by_webhook(app: &TestApp, email: &str, message_id: &str) {
    let body =
        json!([{"type": "complaint", "email": email, "message_id": message_id, "event_id": format!("c-{email}")}]);
    let res = app
        .http
        .post(app.url("/webhooks/generic"))
        .basic_auth("tidings", Some(SECRET))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn ingest(app: &TestApp, raw: &str) -> Vec<bounces::Outcome> {
    let parsed = bounces::dsn::parse(raw.as_bytes()).expect("a readable report");
    bounces::ingest(&app.ctx, &parsed).await.expect("applied")
}

fn report(template: &str, recipient: &str, message_id: &str, report_id: &str) -> String {
    fixture(&format!("dsn/{template}"))
        .replace("{{recipient}}", recipient)
        .replace("{{message_id}}", message_id)
        .replace("{{dsn_id}}", report_id)
        .replace("{{to}}", "news@hospital.test")
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The default limits: 1,000 attempts, then more than 0.3% complaints.
async fn four_complaints_in_a_thousand_pause_the_send_with_an_alert_and_nothing_more_goes_out(db: Db) {
    // Four sessions: 200 copies a batch.
    let app = spawn(db, &[("TIDINGS_SEND_CONCURRENCY", "4")]).await;
    app.confirmed_subscribers("g", 1200, "updates").await;
    let id = start_send(&app, "Hospital news").await;
    for _ in 0..5 {
        assert_eq!(app.delivery_step().await.sent, 200);
    }
    assert_eq!(app.smtp.message_count(), 1000);
    let ids = message_ids(&app);
    let complainers: Vec<&String> = ids.keys().take(4).collect();
    for who in &complainers[..3] {
        complain_by_webhook(&app, who, &ids[*who]).await;
    }
    assert_eq!(status(&app, &id).await, "sending", "3 of 1,000 is 0.3%: not past the limit");
    complain_by_webhook(&app, complainers[3], &ids[complainers[3]]).await;
    assert_eq!(status(&app, &id).await, "paused", "the fourth complaint passes 0.3%");

    let s = stats(&app, &id).await;
    assert_eq!(
        (s["attempted"].as_i64(), s["complained"].as_i64(), s["hard_bounced"].as_i64()),
        (Some(1000), Some(4), Some(0)),
        "{s}"
    );
    assert_eq!(s["complaint_rate"].as_f64(), Some(0.004), "{s}");
    assert_eq!(s["sent"], 1000, "the old fields are still there: {s}");
    let title = "Sending paused: complaints reached 0.4% (4 of 1,000)";
    assert_eq!(s["paused_reason"], title, "{s}");

    // Nothing more goes out while it is paused.
    for _ in 0..3 {
        assert_eq!(app.delivery_step().await.sent, 0);
    }
    assert_eq!(app.smtp.message_count(), 1000);

    // The alert: on the dashboard and on the update's page.
    let admin = app.login_as_admin().await;
    let dashboard = admin.get("/admin").await;
    assert!(dashboard.body.contains(title), "{}", dashboard.body);
    assert!(dashboard.body.contains(&format!("/admin/updates/{id}")));
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(page.body.contains("id=\"auto-paused\""), "{}", page.body);
    assert!(page.body.contains(title) && page.body.contains("Gmail and Yahoo"), "{}", page.body);
    assert!(page.body.contains("4 (0.4%)"), "the rate on the page: {}", page.body);

    // And in /metrics, as sums only.
    let text = app.scrape_metrics().await.text().await.unwrap();
    assert_eq!(sample(&text, r#"tidings_sends_30d{measure="complaints"}"#), Some(4.0), "{text}");
    assert_eq!(sample(&text, r#"tidings_sends_30d{measure="attempted"}"#), Some(1000.0), "{text}");
    assert_eq!(sample(&text, r#"tidings_sends_30d{measure="auto_paused"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, "tidings_complaint_rate_30d"), Some(0.004), "{text}");
    assert_eq!(sample(&text, r#"tidings_bounce_reports_total{class="complaint"}"#), Some(4.0), "{text}");
    assert!(!text.contains("@example.org") && !text.contains(&id), "nothing about a person or an update");

    // An organiser resumes: the limit applies to what is sent from now on,
    // so the rest goes out, and the pause stays in the update's history.
    let res = app.api(Method::POST, &format!("/updates/{id}/resume")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.drive_delivery(&id, 10).await;
    assert_eq!(status(&app, &id).await, "sent");
    assert_eq!(app.smtp.message_count(), 1200, "the other 200 got it too");
    assert_eq!(app.smtp.copies().values().max(), Some(&1), "nobody twice");
    let dashboard = admin.get("/admin").await;
    assert!(!dashboard.body.contains(title), "dismissed by the resume");
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(!page.body.contains("id=\"auto-paused\""));
    assert!(page.body.contains("id=\"pause-history\"") && page.body.contains(title), "{}", page.body);
    assert!(stats(&app, &id).await["paused_reason"].is_null());
}

/// A complaint (ARF) arrives before the minimum: nothing happens then; the
/// worker's check before its next batch pauses the send once the minimum is
/// reached.
async fn an_arf_complaint_before_the_minimum_pauses_the_send_at_the_next_batch(db: Db) {
    // One session: 50 copies a batch; the limits apply from 100 attempts.
    let app = spawn(db, &[("TIDINGS_SEND_CONCURRENCY", "1"), ("TIDINGS_PAUSE_MIN_ATTEMPTS", "100")]).await;
    app.confirmed_subscribers("a", 200, "updates").await;
    let id = start_send(&app, "Court news").await;
    assert_eq!(app.delivery_step().await.sent, 50);
    let ids = message_ids(&app);
    let (who, mid) = ids.iter().next().unwrap();
    let out = ingest(&app, &report("arf-complaint.eml", who, mid, "arf-1")).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Complaint, .. }]), "{out:?}");
    assert_eq!(status(&app, &id).await, "sending", "1 of 50: too few attempts to judge");
    assert_eq!(app.delivery_step().await.sent, 50);
    assert_eq!(status(&app, &id).await, "sending");
    // 1 of 100 is 1%: the next batch does not start.
    assert_eq!(app.delivery_step().await.sent, 0);
    assert_eq!(status(&app, &id).await, "paused");
    assert_eq!(app.delivery_step().await.sent, 0);
    assert_eq!(app.smtp.message_count(), 100);
    let s = stats(&app, &id).await;
    assert_eq!(s["paused_reason"], "Sending paused: complaints reached 1% (1 of 100)", "{s}");
    assert_eq!(s["complained"], 1);
    let alerts = tidings::services::bounces::open_alerts(&app.ctx).await.unwrap();
    assert!(alerts.iter().any(|a| a.kind == tidings::domain::AlertKind::SendPaused && a.subject == id), "{alerts:?}");
}

/// Hard bounces reported later by DSN count against the update they are
/// tied to (by Message-ID); past 5% the send pauses.
async fn hard_bounces_reported_by_dsn_past_five_percent_pause_the_send(db: Db) {
    let app = spawn(db, &[("TIDINGS_SEND_CONCURRENCY", "1"), ("TIDINGS_PAUSE_MIN_ATTEMPTS", "100")]).await;
    app.confirmed_subscribers("h", 200, "updates").await;
    let id = start_send(&app, "Ward news").await;
    assert_eq!(app.delivery_step().await.sent, 50);
    assert_eq!(app.delivery_step().await.sent, 50);
    let ids = message_ids(&app);
    let bounced: Vec<(&String, &String)> = ids.iter().take(6).collect();
    for (i, (who, mid)) in bounced[..5].iter().enumerate() {
        ingest(&app, &report("hard-5.1.1.eml", who, mid, &format!("h{i}"))).await;
    }
    // The same report twice counts once.
    ingest(&app, &report("hard-5.1.1.eml", bounced[0].0, bounced[0].1, "h0")).await;
    assert_eq!(stats(&app, &id).await["hard_bounced"], 5);
    assert_eq!(status(&app, &id).await, "sending", "5 of 100 is 5%: not past the limit");
    ingest(&app, &report("hard-5.1.1.eml", bounced[5].0, bounced[5].1, "h5")).await;
    assert_eq!(status(&app, &id).await, "paused");
    let s = stats(&app, &id).await;
    assert_eq!(s["paused_reason"], "Sending paused: hard bounces reached 6% (6 of 100)", "{s}");
    assert_eq!(s["hard_bounce_rate"].as_f64(), Some(0.06));
    assert_eq!(app.delivery_step().await.sent, 0);
    assert_eq!(app.smtp.message_count(), 100);
    let admin: AdminClient = app.login_as_admin().await;
    assert!(admin.get("/admin").await.body.contains("Sending paused: hard bounces reached 6% (6 of 100)"));
}

/// What an organiser sees of a send that paused itself, in a real browser
/// at desktop and phone widths (axe-checked): the dashboard's alert and the
/// update page's banner and figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_send_is_explained_on_the_dashboard_and_the_update_page_in_a_browser() {
    let Some(browser) = crate::support::browser::Browser::start().await else { return };
    let app = spawn(
        Db::Sqlite,
        &[("TIDINGS_BASE_URL", "self"), ("TIDINGS_SEND_CONCURRENCY", "1"), ("TIDINGS_PAUSE_MIN_ATTEMPTS", "50")],
    )
    .await;
    app.confirmed_subscribers("a", 100, "updates").await;
    let id = start_send(&app, "Court news").await;
    assert_eq!(app.delivery_step().await.sent, 50);
    let ids = message_ids(&app);
    let (who, mid) = ids.iter().next().unwrap();
    let out = ingest(&app, &report("arf-complaint.eml", who, mid, "arf-1")).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Complaint, .. }]), "{out:?}");
    assert_eq!(status(&app, &id).await, "paused");

    let password = app.add_organiser("looker@hospital.test", tidings::services::accounts::Role::Admin).await;
    browser.goto(&app.url("/admin/login")).await;
    browser.type_into("#email", "looker@hospital.test").await;
    browser.type_into("#password", &password).await;
    browser.click("main button[type=submit]").await;
    assert!(browser.shows("Sending paused: complaints reached 2%").await);
    browser.screenshot("admin-send-paused-dashboard").await;
    browser.goto(&app.url(&format!("/admin/updates/{id}"))).await;
    assert!(browser.shows("Sending paused: complaints reached 2%").await);
    browser.screenshot("admin-send-paused-update").await;
}
