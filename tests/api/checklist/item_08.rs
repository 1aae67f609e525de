//! Checklist item 08 — the consent record is append-only, and the wording
//! it points to cannot be altered or deleted: new wording is a new version,
//! the API offers no way to change or remove either, and the database
//! itself refuses (UK GDPR Art 5(2), accountability).

use super::common::exec;
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::json;

both_backends!(the_ledger_is_append_only_and_the_wording_it_names_can_be_neither_changed_nor_deleted);

async fn the_ledger_is_append_only_and_the_wording_it_names_can_be_neither_changed_nor_deleted(db: Db) {
    let app = TestApp::spawn(db).await;
    assert_eq!(app.subscribe("ann@example.org", "updates").await.status(), 200);
    let before = app.ledger("ann@example.org").await;
    assert_eq!(before.len(), 1);
    let shown = before[0]["statement"].clone();

    // New wording is a new version; the entry still names what was shown.
    let res = app
        .api(Method::POST, "/consent-statements")
        .json(&json!({"list": "updates", "text": "Save Our Hospital may email me campaign news."}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let new: serde_json::Value = res.json().await.unwrap();
    assert_eq!(new["version"].as_i64(), shown["version"].as_i64().map(|v| v + 1));
    assert_eq!(app.ledger("ann@example.org").await, before, "the entry is unchanged");

    // The API has no route to rewrite or remove wording.
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let res = app.api(method.clone(), "/consent-statements").json(&json!({"text": "x"})).send().await.unwrap();
        assert_eq!(res.status(), 405, "{method} /consent-statements");
    }

    // And the database refuses, with its own reason, every rewrite.
    for (sql, reason) in [
        ("UPDATE consent_events SET kind = 'confirmed'", "append-only"),
        ("UPDATE consent_statements SET body = 'rewritten'", "immutable"),
        ("UPDATE privacy_notices SET body = 'rewritten'", "immutable"),
        ("DELETE FROM consent_statements", "a ledger entry refers to this statement"),
        ("DELETE FROM privacy_notices", "a ledger entry refers to this notice"),
    ] {
        let error = exec(&app, sql).await.expect_err(sql);
        assert!(error.contains(reason), "{sql}: {error}");
    }
    assert_eq!(app.ledger("ann@example.org").await, before);
}
