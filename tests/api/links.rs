//! Links in mail: confirmation tokens (random, hashed, single-use,
//! expiring) and signed unsubscribe/preference tokens (unforgeable).

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token};
use std::time::Duration;

both_backends!(
    a_confirmation_link_expires_after_72_hours,
    a_confirmation_link_works_once,
    forged_and_malformed_confirmation_links_are_gone_not_errors,
    forged_unsubscribe_and_preference_links_are_refused,
);

async fn pending_token(app: &TestApp, email: &str) -> String {
    assert_eq!(app.subscribe(email, "updates").await.status(), 200);
    app.drain_outbox().await;
    confirm_token(app.smtp.messages_to(email).last().expect("a confirmation mail"))
}

async fn a_confirmation_link_expires_after_72_hours(db: Db) {
    let app = TestApp::spawn(db).await;
    let token = pending_token(&app, "fay@example.org").await;
    app.ctx.clock.advance(Duration::from_secs(72 * 3600 + 60));
    let page = app.http.get(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("subscribe again"));
    let res = app.post_form(&format!("/confirm/{token}"), &[]).await;
    assert_eq!(res.status(), 410);
    assert_eq!(app.status("fay@example.org", "updates").await, "pending");
}

async fn a_confirmation_link_works_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let token = pending_token(&app, "gus@example.org").await;
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 410);
    let res =
        app.http.post(app.url(&format!("/confirm/{token}"))).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 410);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "gone");
    let kinds: Vec<String> =
        app.ledger("gus@example.org").await.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["requested", "confirmed"], "one confirmation, recorded once");
}

async fn forged_and_malformed_confirmation_links_are_gone_not_errors(db: Db) {
    let app = TestApp::spawn(db).await;
    let real = pending_token(&app, "hal@example.org").await;
    let mut forged = real.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let long = "A".repeat(5000);
    for token in [forged.as_str(), "abc", "%27%20OR%201%3D1%20--", long.as_str(), "..%2F..%2Fetc%2Fpasswd"] {
        let get = app.http.get(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
        assert_eq!(get.status(), 410, "GET {token}");
        let post = app.post_form(&format!("/confirm/{token}"), &[]).await;
        assert_eq!(post.status(), 410, "POST {token}");
    }
    assert_eq!(app.status("hal@example.org", "updates").await, "pending");
}

async fn forged_unsubscribe_and_preference_links_are_refused(db: Db) {
    let app = TestApp::spawn(db).await;
    app.api(reqwest::Method::POST, "/subscribers")
        .json(&serde_json::json!({"email": "ivy@example.org", "lists": ["updates"], "status": "confirmed", "basis": "petition"}))
        .send()
        .await
        .unwrap();
    let real = app.unsubscribe_token("ivy@example.org", "updates").await;
    let mut bytes = real.clone().into_bytes();
    let last = bytes.len() - 1;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    for token in [tampered.as_str(), "nonsense", "AAAA"] {
        let res = app.post_form(&format!("/unsubscribe/{token}"), &[("List-Unsubscribe", "One-Click")]).await;
        assert_eq!(res.status(), 404, "{token}");
        assert_eq!(app.http.get(app.url(&format!("/preferences/{token}"))).send().await.unwrap().status(), 404);
    }
    // An unsubscribe token is not a preferences token, and vice versa.
    assert_eq!(app.http.get(app.url(&format!("/preferences/{real}"))).send().await.unwrap().status(), 404);
    assert_eq!(app.status("ivy@example.org", "updates").await, "confirmed");
    // The real one works, and keeps working (no expiry).
    app.ctx.clock.advance(Duration::from_secs(3 * 365 * 24 * 3600));
    assert_eq!(app.http.get(app.url(&format!("/unsubscribe/{real}"))).send().await.unwrap().status(), 200);
    assert_eq!(app.status("ivy@example.org", "updates").await, "confirmed", "GET changes nothing");
    assert_eq!(app.post_form(&format!("/unsubscribe/{real}"), &[]).await.status(), 200);
    assert_eq!(app.status("ivy@example.org", "updates").await, "unsubscribed");
}
