//! Item 12: "Unsubscribe from everything" is one objection to all of the
//! group's mail (one ledger entry, kind `objected`, not one withdrawal per
//! list), becomes a suppression (keyed fingerprint), and retention never
//! purges the suppression or the record of the objection (when and how).
//! Source: UK GDPR Art 21(2)-(3) (the right to object to direct marketing,
//! after which the data is no longer processed for it).

use super::item_11::{add_confirmed, unsubscribe_from_everything};
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

both_backends!(unsubscribe_from_everything_is_one_objection_and_a_suppression_that_retention_never_purges);

/// The suppression reason stored for `email`'s keyed fingerprint, if any.
async fn suppression(app: &TestApp, email: &str) -> Option<String> {
    let fingerprint = app.ctx.address_key.fingerprint(email);
    let mut tx = app.ctx.store.read().await.unwrap();
    tx.suppression_reasons_among(&[fingerprint]).await.unwrap().into_values().next()
}

async fn unsubscribe_from_everything_is_one_objection_and_a_suppression_that_retention_never_purges(db: Db) {
    let settings = [("TIDINGS_RETENTION_WITHDRAWN_DAYS", "30"), ("TIDINGS_RETENTION_PENDING_DAYS", "30")];
    let app = TestApp::spawn_with(db, &settings).await;
    app.create_list("events", "Events").await;
    add_confirmed(&app, "ann@example.org", &["updates", "events"]).await;
    let before = app.ledger("ann@example.org").await.len();
    unsubscribe_from_everything(&app, "ann@example.org").await;

    let ledger = app.ledger("ann@example.org").await;
    let added: Vec<&Value> = ledger.iter().skip(before).collect();
    assert_eq!(added.len(), 1, "one entry for the objection, not one per list: {ledger:?}");
    assert_eq!(added[0]["kind"], "objected");
    assert_eq!(added[0]["list"], "*", "an objection to all of the group's mail");
    assert_eq!(added[0]["detail"], "preferences", "how the person objected");
    assert_eq!(added[0]["actor"], "supporter");
    let when = added[0]["occurred_at"].clone();
    assert!(ledger.iter().all(|e| e["kind"] != "withdrawn"), "{ledger:?}");
    assert_eq!(app.status("ann@example.org", "updates").await, "unsubscribed");
    assert_eq!(app.status("ann@example.org", "events").await, "unsubscribed");
    assert_eq!(suppression(&app, "ann@example.org").await.as_deref(), Some("objected"));

    // Years later, after the retention purge has run.
    app.ctx.clock.advance(Duration::from_secs(10 * 365 * 86400));
    let worker = tidings::workers::maintenance::MaintenanceWorker::new(app.ctx.clone());
    let counts = worker.run_once().await.unwrap().expect("due");
    assert!(counts.withdrawn_events >= 2, "the per-list evidence is purged: {counts:?}");
    let ledger = app.ledger("ann@example.org").await;
    let objections: Vec<&Value> = ledger.iter().filter(|e| e["kind"] == "objected").collect();
    assert_eq!(objections.len(), 1, "the record of the objection stays: {ledger:?}");
    assert_eq!(objections[0]["occurred_at"], when);
    assert_eq!(objections[0]["detail"], "preferences");
    assert_eq!(suppression(&app, "ann@example.org").await.as_deref(), Some("objected"), "the suppression stays");
    // And it still wins.
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": "ann@example.org", "lists": ["updates"], "status": "confirmed", "basis": "old list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "withdrawn", "{body}");
}
