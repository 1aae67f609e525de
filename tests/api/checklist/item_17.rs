//! Checklist item 17: retention purges never-confirmed requests, and the
//! consent evidence of withdrawn, complained and bounced subscriptions after
//! the configured period; suppressions are kept. UK GDPR Art 5(1)(e).

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_backends!(
    the_consent_evidence_of_complained_and_bounced_subscriptions_is_purged_after_the_period_and_the_suppression_kept
);

const SECRET: &str = "a-long-webhook-secret-for-tests";

fn kinds(ledger: &[Value]) -> Vec<String> {
    ledger.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

async fn the_consent_evidence_of_complained_and_bounced_subscriptions_is_purged_after_the_period_and_the_suppression_kept(
    db: Db,
) {
    let app =
        TestApp::spawn_with(db, &[("TIDINGS_WEBHOOK_SECRET", SECRET), ("TIDINGS_RETENTION_WITHDRAWN_DAYS", "30")])
            .await;
    app.ctx.clock.freeze();
    for who in ["bounced@example.org", "complained@example.org", "kept@example.org"] {
        assert_eq!(app.subscribe(who, "updates").await.status(), 200);
        app.drain_outbox().await;
        let token = confirm_token(app.smtp.messages_to(who).last().unwrap());
        assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    }
    let update = app.create_update("Spring news", "Dear {{name}}, news.", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    app.drive_delivery(&update, 50).await;
    let message_id = |who: &str| {
        let copy =
            app.smtp.messages_to(who).into_iter().find(|m| header(m, "Subject").as_deref() == Some("Spring news"));
        header(&copy.expect("the update reached them"), "Message-ID").unwrap()
    };
    let reports = json!([
        {"type": "bounce", "email": "bounced@example.org", "message_id": message_id("bounced@example.org"), "status": "5.1.1", "event_id": "r-1"},
        {"type": "complaint", "email": "complained@example.org", "message_id": message_id("complained@example.org"), "event_id": "r-2"},
    ]);
    let res = app
        .http
        .post(app.url("/webhooks/generic"))
        .basic_auth("tidings", Some(SECRET))
        .json(&reports)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.status("bounced@example.org", "updates").await, "bounced");
    assert_eq!(app.status("complained@example.org", "updates").await, "complained");

    let worker = tidings::workers::maintenance::MaintenanceWorker::new(app.ctx.clone());
    let counts = worker.run_once().await.unwrap().expect("due on first start");
    assert_eq!(counts.complained_bounced_events, 0, "within the period nothing goes");
    assert_eq!(kinds(&app.ledger("bounced@example.org").await), ["requested", "confirmed", "bounced"]);

    app.ctx.clock.advance(Duration::from_secs(31 * 86400));
    let counts = worker.run_once().await.unwrap().expect("a day has passed");
    assert_eq!(counts.complained_bounced_events, 4, "{counts:?}");
    // The consent evidence is gone; the entry recording the bounce or
    // complaint stays, and so does the suppression.
    assert_eq!(kinds(&app.ledger("bounced@example.org").await), ["bounced"]);
    assert_eq!(kinds(&app.ledger("complained@example.org").await), ["complained"]);
    assert_eq!(
        kinds(&app.ledger("kept@example.org").await),
        ["requested", "confirmed"],
        "a confirmed supporter's stays"
    );
    let before = app.smtp.message_count();
    for who in ["bounced@example.org", "complained@example.org"] {
        assert_eq!(app.subscribe(who, "updates").await.status(), 200);
    }
    app.drain_outbox().await;
    assert_eq!(app.smtp.message_count(), before, "the suppressions outlive the purge");
}
