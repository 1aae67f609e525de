//! Checklist item 13 — an erased or complaining address stays suppressed,
//! however it is spelt: the suppression is kept as a keyed fingerprint of
//! the normalised address (not the address, not a bare hash), and no
//! subscribe, organiser add or send gets past it (UK GDPR Art 17, 21; ICO
//! guidance on suppression lists).

use super::common::{copies, send_update, subscribe_and_confirm};
use crate::both_backends;
use crate::support::app::{Db, TestApp, header};
use reqwest::Method;
use serde_json::json;

both_backends!(erased_and_complaining_addresses_stay_suppressed_however_they_are_spelt);

const SECRET: &str = "a-long-webhook-secret-for-tests";

async fn suppression_hashes(app: &TestApp) -> Vec<String> {
    const SQL: &str = "SELECT email_hash FROM suppressions ORDER BY email_hash";
    match &app.ctx.store {
        tidings::store::Store::Sqlite(p) => sqlx::query_scalar(SQL).fetch_all(p).await.unwrap(),
        tidings::store::Store::Postgres(p) => sqlx::query_scalar(SQL).fetch_all(p).await.unwrap(),
    }
}

async fn erased_and_complaining_addresses_stay_suppressed_however_they_are_spelt(db: Db) {
    let app =
        TestApp::spawn_with(db, &[("TIDINGS_WEBHOOK_SECRET", SECRET), ("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await;
    subscribe_and_confirm(&app, "cole@example.org", "updates").await;
    subscribe_and_confirm(&app, "dana@example.org", "updates").await;
    app.confirmed_subscribers("other", 1, "updates").await;

    // Cole complains about an update; Dana is erased.
    send_update(&app, "First news", &["updates"]).await;
    let copy = copies(&app, "cole@example.org", "First news").pop().expect("Cole's copy");
    let message_id = header(&copy, "Message-ID").unwrap();
    let res = app
        .http
        .post(app.url("/webhooks/generic"))
        .basic_auth("tidings", Some(SECRET))
        .json(&json!([{"type": "complaint", "email": "cole@example.org", "message_id": message_id, "event_id": "c-1"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let dana = app.subscriber("dana@example.org").await["id"].as_str().unwrap().to_owned();
    let res = app.api(Method::POST, &format!("/subscribers/{dana}/erase")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Both are kept as keyed fingerprints of the normalised address.
    let mut expected: Vec<String> =
        ["cole@example.org", "dana@example.org"].iter().map(|a| app.ctx.address_key.fingerprint(a)).collect();
    expected.sort();
    let stored = suppression_hashes(&app).await;
    assert_eq!(stored, expected);
    assert!(!stored.contains(&tidings::domain::sha256_hex("dana@example.org")), "not a bare hash");

    // No spelling gets back in: not by the form, not by an organiser.
    let before = app.smtp.message_count();
    for spelling in
        ["COLE@Example.ORG", "cole@example.org.", "ｃｏｌｅ@example.org", "Dana@EXAMPLE.org", "dana@ｅｘａｍｐｌｅ.org"]
    {
        assert_eq!(app.subscribe(spelling, "updates").await.status(), 200, "the usual answer: {spelling}");
        let res = app
            .api(Method::POST, "/subscribers")
            .json(&json!({"email": spelling, "lists": ["updates"], "status": "confirmed", "basis": "paper form"}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "an organiser cannot add {spelling}: {}", res.status());
    }
    app.drain_outbox().await;
    send_update(&app, "Second news", &["updates"]).await;
    assert_eq!(copies(&app, "other0@example.org", "Second news").len(), 1, "the send ran");
    let after: Vec<_> = app.smtp.messages().into_iter().skip(before).flat_map(|m| m.to).collect();
    assert_eq!(after, ["other0@example.org"], "nothing reached either suppressed person");
}
