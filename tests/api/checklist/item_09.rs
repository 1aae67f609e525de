//! Checklist item 09: each ledger entry records the controller (the group's
//! name and contact address) as they were at the time, an objection to all
//! of the group's mail included. UK GDPR Art 7(1), 30.

use super::item_11::{add_confirmed, unsubscribe_from_everything};
use crate::both_backends;
use crate::imports::{run_imports, upload};
use crate::support::app::{Db, TestApp, confirm_token};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(every_ledger_entry_names_the_group_and_its_contact_as_they_were_when_written);

const GROUP: &str = "Save Our Hospital";
const CONTACT: &str = "1 High Street, Leeds LS1 1AA";

fn controllers(ledger: &[Value]) -> Vec<(String, Value)> {
    ledger.iter().map(|e| (e["kind"].as_str().unwrap_or("").to_owned(), e["controller"].clone())).collect()
}

async fn every_ledger_entry_names_the_group_and_its_contact_as_they_were_when_written(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_GROUP_NAME", GROUP), ("TIDINGS_CONTACT_ADDRESS", CONTACT)]).await;
    let expected = json!({ "name": GROUP, "contact": CONTACT });

    // A supporter's own requests, confirmation and withdrawal (the batched
    // subscribe write, the confirm path and the unsubscribe path).
    assert_eq!(app.subscribe("sam@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let token = confirm_token(&app.smtp.messages_to("sam@example.org")[0]);
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    let unsubscribe = app.unsubscribe_token("sam@example.org", "updates").await;
    assert_eq!(app.post_form(&format!("/unsubscribe/{unsubscribe}"), &[]).await.status(), 200);
    // An organiser's add and an import (the imports' set write).
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": "org@example.org", "lists": ["updates"], "status": "confirmed", "basis": "paper form"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (status, body) =
        upload(&app, &[("list", "updates"), ("basis", "stall sign-up sheet")], b"email\nimp@example.org\n").await;
    assert_eq!(status, 202, "{body}");
    run_imports(&app).await;
    // "Unsubscribe from everything": one objection, kept in its own table.
    add_confirmed(&app, "obi@example.org", &["updates"]).await;
    unsubscribe_from_everything(&app, "obi@example.org").await;

    let sam = app.ledger("sam@example.org").await;
    let kinds: Vec<String> = controllers(&sam).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["requested", "confirmed", "withdrawn"], "{sam:?}");
    let obi = app.ledger("obi@example.org").await;
    assert!(obi.iter().any(|e| e["kind"] == "objected"), "{obi:?}");
    for who in ["sam@example.org", "org@example.org", "imp@example.org", "obi@example.org"] {
        let ledger = app.ledger(who).await;
        assert!(!ledger.is_empty());
        for (kind, controller) in controllers(&ledger) {
            assert_eq!(controller, expected, "{who} {kind}: {ledger:?}");
        }
    }

    // The data export carries it too, in both forms.
    let id = app.subscriber("sam@example.org").await["id"].as_str().unwrap().to_owned();
    let export = app.api_get(&format!("/subscribers/{id}/export")).await;
    let events = export["consent_events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e["controller"] == expected), "{export}");
    let csv = app.api(Method::GET, &format!("/subscribers/{id}/export?format=csv")).send().await.unwrap();
    let csv = csv.text().await.unwrap();
    assert!(csv.lines().next().unwrap().contains(",controller_name,controller_contact,basis_kind,"), "{csv}");
    assert!(csv.contains(&format!("{GROUP},\"{CONTACT}\"")), "{csv}");

    // What was written stays as it was: the entries hold the values, they
    // are not looked up from today's settings.
    let stored: i64 = match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM consent_events WHERE controller_name = 'Save Our Hospital' AND controller_contact = '1 High Street, Leeds LS1 1AA'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
        tidings::store::Store::Postgres(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM consent_events WHERE controller_name = 'Save Our Hospital' AND controller_contact = '1 High Street, Leeds LS1 1AA'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
    };
    assert_eq!(stored, 6, "three of sam's, one organiser add, one import, obi's add");
    let objections: i64 = match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM objections WHERE controller_name = 'Save Our Hospital' AND controller_contact = '1 High Street, Leeds LS1 1AA'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
        tidings::store::Store::Postgres(pool) => sqlx::query_scalar(
            "SELECT COUNT(*) FROM objections WHERE controller_name = 'Save Our Hospital' AND controller_contact = '1 High Street, Leeds LS1 1AA'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
    };
    assert_eq!(objections, 1, "obi's objection holds the controller as it was");
}
