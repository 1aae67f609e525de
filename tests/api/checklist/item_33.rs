//! Checklist item 33 — a send pauses itself when spam complaints pass 0.3%
//! of the copies it sent, or hard bounces pass 5% (the Gmail and Yahoo
//! bulk-sender rules). The minimum number of copies before the rates are
//! judged is lowered to 100 here, so that 1 complaint (1%) or 6 hard
//! bounces (6%) is past the limit.

use crate::both_backends;
use crate::support::app::{Db, TestApp, header};
use reqwest::Method;
use serde_json::json;

both_backends!(a_send_pauses_itself_past_the_complaint_or_hard_bounce_rate);

const SECRET: &str = "a-long-webhook-secret-for-tests";

async fn start(app: &TestApp, subject: &str) -> String {
    let id = app.create_update(subject, "Hello {{name}}.", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    id
}

async fn status(app: &TestApp, id: &str) -> String {
    app.api_get(&format!("/updates/{id}")).await["status"].as_str().unwrap().to_owned()
}

/// Reports `kind` for `n` copies of `subject` (after the first `skip`)
/// through the webhook, tied to each copy by its Message-ID.
async fn report(app: &TestApp, subject: &str, kind: &str, skip: usize, n: usize) {
    let events: Vec<_> = app
        .smtp
        .messages()
        .iter()
        .filter(|m| header(m, "Subject").as_deref() == Some(subject))
        .skip(skip)
        .take(n)
        .map(|m| {
            let mid = header(m, "Message-ID").unwrap();
            json!({"type": kind, "email": m.to[0], "message_id": mid, "status": "5.1.1", "event_id": format!("{kind}-{mid}")})
        })
        .collect();
    assert_eq!(events.len(), n);
    let res = app
        .http
        .post(app.url("/webhooks/generic"))
        .basic_auth("tidings", Some(SECRET))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn a_send_pauses_itself_past_the_complaint_or_hard_bounce_rate(db: Db) {
    // One SMTP session: 50 copies a batch.
    let app = TestApp::spawn_with(
        db,
        &[("TIDINGS_WEBHOOK_SECRET", SECRET), ("TIDINGS_SEND_CONCURRENCY", "1"), ("TIDINGS_PAUSE_MIN_ATTEMPTS", "100")],
    )
    .await;
    app.confirmed_subscribers("r", 300, "updates").await;

    // Complaints: 1 of 100 copies is 1%, past 0.3%.
    let first = start(&app, "First").await;
    assert_eq!(app.delivery_step().await.sent, 50);
    assert_eq!(app.delivery_step().await.sent, 50);
    report(&app, "First", "complaint", 0, 1).await;
    assert_eq!(app.delivery_step().await.sent, 0, "the next batch does not start");
    assert_eq!(status(&app, &first).await, "paused");
    let reason = app.stats(&first).await["paused_reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("complaints"), "{reason}");
    assert_eq!(app.smtp.message_count(), 100);
    let res = app.api(Method::POST, &format!("/updates/{first}/cancel")).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    // Hard bounces: 5 of 100 is exactly 5%, not past it; 8 of 150 is.
    let second = start(&app, "Second").await;
    assert_eq!(app.delivery_step().await.sent, 50);
    assert_eq!(app.delivery_step().await.sent, 50);
    report(&app, "Second", "bounce", 0, 5).await;
    assert_eq!(app.delivery_step().await.sent, 50, "5 of 100 is 5%: not past the limit");
    assert_eq!(status(&app, &second).await, "sending");
    // 8 of 150 is 5.3%.
    report(&app, "Second", "bounce", 5, 3).await;
    assert_eq!(app.delivery_step().await.sent, 0, "past 5%: the next batch does not start");
    assert_eq!(status(&app, &second).await, "paused");
    let reason = app.stats(&second).await["paused_reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason.contains("hard bounces"), "{reason}");
}
